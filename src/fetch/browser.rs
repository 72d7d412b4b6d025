//! Browser watches (`browser = true`): the page is loaded in headless Chromium over the
//! DevTools protocol, and its rendered DOM is what the rest of the pipeline reads, as if the
//! server had sent it. One browser per process, started on the first browser watch; each
//! page gets its own tab, closed when it is read, on a bounded number of tabs at once.
//!
//! The protocol client is the few commands forewarn needs over one WebSocket (flattened
//! sessions), not a generated binding of the whole protocol.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Mutex, Semaphore, broadcast, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::{FetchError, Fetched};
use crate::config::{BrowserSettings, BrowserSpec, Step};

/// The largest screenshot taken, in CSS pixels.
const SHOT_WIDTH: f64 = 1920.0;
const SHOT_HEIGHT: f64 = 8000.0;

/// How long the network must be quiet after the load event, when no `wait_for` is given.
const IDLE: Duration = Duration::from_millis(500);
/// How long the browser may take to start and say where it listens (on a loaded 2-core
/// machine, with other browsers starting, 20 s was not always enough).
const START: Duration = Duration::from_secs(60);

/// The process's browser: started on first use, restarted when it died.
pub struct Browser {
    running: Mutex<Option<Arc<Session>>>,
    tabs: Semaphore,
    /// Where `session = "NAME"` keeps each session's cookies (`NAME/cookies.json`).
    sessions: Option<PathBuf>,
    /// `[browser]`: the executable to start, or the endpoint of one running.
    settings: BrowserSettings,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Browser {
    pub fn new(tabs: usize, sessions: Option<PathBuf>, settings: BrowserSettings) -> Browser {
        Browser {
            running: Mutex::new(None),
            tabs: Semaphore::new(tabs.max(1)),
            sessions,
            settings,
        }
    }

    /// Loads `url` in a new tab and returns its rendered DOM as an HTML body.
    pub async fn render(
        &self,
        url: &url::Url,
        render: &BrowserSpec,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Browser(format!(
                "a browser watch loads http(s) pages only, not `{}:`",
                url.scheme()
            )));
        }
        let _tab = self
            .tabs
            .acquire()
            .await
            .map_err(|e| FetchError::Browser(e.to_string()))?;
        let session = self.session().await?;
        let deadline = Instant::now() + timeout;
        let context = match (&render.session, &self.sessions) {
            (Some(name), Some(dir)) => Some(session.context(name, dir).await?),
            _ => None,
        };
        let mut tab = Tab::take(&session, context.as_deref()).await?;
        let login = context.as_ref().map(|c| &c.login);
        let result = tab.load(url, render, login, deadline, timeout).await;
        // A good tab is kept for the next page: opening one is a renderer and five round
        // trips. Closed are a tab whose page failed (it may still be running away), and one
        // whose page had login steps (clicked and typed into, it may ask whether to leave).
        match result {
            Ok(_) if render.steps.is_empty() => tab.put_back().await,
            _ => tab.close().await,
        }
        if let Some(c) = &context {
            c.save(&session).await;
        }
        result
    }

    /// The running browser, started (again) when there is none or it died.
    async fn session(&self) -> Result<Arc<Session>, FetchError> {
        let mut running = self.running.lock().await;
        if let Some(s) = running.as_ref().filter(|s| !s.dead()) {
            return Ok(s.clone());
        }
        let s = Arc::new(Session::start(&self.settings).await?);
        *running = Some(s.clone());
        Ok(s)
    }
}

/// The Chromium to run: `[browser] executable`, else `FOREWARN_BROWSER`, else the first of
/// the usual names on `PATH`.
fn executable(settings: &BrowserSettings) -> Result<PathBuf, FetchError> {
    if let Some(p) = &settings.executable {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("FOREWARN_BROWSER") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(FetchError::Browser(
        "no Chromium found on PATH for this browser watch: install it (Debian: apt-get install chromium) or set FOREWARN_BROWSER to its path; the other watches run".into(),
    ))
}

/// Calls waiting for their answer, by id.
type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// One running browser and the WebSocket to it.
struct Session {
    /// The browser forewarn started (none for an `endpoint`: that one is not stopped).
    child: std::sync::Mutex<Option<tokio::process::Child>>,
    profile: Option<PathBuf>,
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    events: broadcast::Sender<Arc<Value>>,
    next: AtomicU64,
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// `session = "NAME"`: one browser context per name, created on first use.
    contexts: Mutex<HashMap<String, Arc<Context>>>,
    /// Tabs done with their page, by the browser context they belong to (`None`: the
    /// default one): the next page of that context loads in one of them.
    idle: std::sync::Mutex<Vec<Idle>>,
}

/// A tab kept open for the next page: its target and its flattened session.
struct Idle {
    context: Option<String>,
    target: String,
    id: String,
    /// When it was kept, as a number no other kept tab has: its reaper closes it only if
    /// it is still the tab it was told about.
    parked: u64,
}

/// How long a kept tab waits for a next page before it is closed.
const KEEP_IDLE: Duration = Duration::from_secs(2);

/// Idle tabs kept at most: a pass loads `--browser-tabs` pages at once, and a few contexts.
const IDLE_TABS: usize = 8;

/// A named session's browser context: its own cookies, loaded from and saved to its file.
struct Context {
    id: String,
    file: PathBuf,
    /// Held while a watch of the session logs in, so that the others wait and find it
    /// logged in rather than log in at the same time.
    login: Mutex<()>,
}

impl Context {
    /// Saves the context's cookies (mode 0600, in a folder of mode 0700).
    async fn save(&self, session: &Session) {
        let Ok(v) = session
            .call(
                None,
                "Storage.getCookies",
                json!({"browserContextId": self.id}),
            )
            .await
        else {
            return;
        };
        let cookies = v["cookies"].clone();
        if let Err(e) = write_private(&self.file, cookies.to_string().as_bytes()) {
            eprintln!(
                "forewarn: cannot keep the browser session's cookies in {}: {e}; its watches will log in again next time",
                self.file.display()
            );
        }
    }
}

/// Writes `bytes` to `file` whole (a temporary file renamed over it), readable by the user
/// only, in a folder only the user can enter.
fn write_private(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = file.parent().expect("a session file is in a folder");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = dir.join(".cookies.json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}

/// The cookies kept for a session, as `Storage.setCookies` takes them.
fn kept_cookies(file: &std::path::Path) -> Vec<Value> {
    const FIELDS: &[&str] = &[
        "name",
        "value",
        "domain",
        "path",
        "secure",
        "httpOnly",
        "sameSite",
        "priority",
        "sourceScheme",
        "sourcePort",
    ];
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let Ok(Value::Array(cookies)) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    cookies
        .iter()
        .map(|c| {
            let mut p: serde_json::Map<String, Value> = FIELDS
                .iter()
                .filter_map(|k| c.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            // A session cookie (no expiry) is kept too: that is what a login usually sets.
            if c["session"] != json!(true)
                && let Some(e) = c
                    .get("expires")
                    .filter(|e| e.as_f64().is_some_and(|x| x > 0.0))
            {
                p.insert("expires".into(), e.clone());
            }
            Value::Object(p)
        })
        .collect()
}

impl Session {
    /// The browser context of the session `name`, with its kept cookies.
    async fn context(&self, name: &str, dir: &std::path::Path) -> Result<Arc<Context>, FetchError> {
        let mut contexts = self.contexts.lock().await;
        if let Some(c) = contexts.get(name) {
            return Ok(c.clone());
        }
        let err = |e: String| {
            FetchError::Browser(format!("cannot open the browser session `{name}`: {e}"))
        };
        let id = self
            .call(None, "Target.createBrowserContext", json!({}))
            .await
            .map_err(err)?["browserContextId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.deny_downloads(Some(&id)).await?;
        let file = dir.join(name).join("cookies.json");
        let cookies = kept_cookies(&file);
        if !cookies.is_empty() {
            // Cookies that no longer parse are dropped: the watch logs in again.
            let _ = self
                .call(
                    None,
                    "Storage.setCookies",
                    json!({"cookies": cookies, "browserContextId": id}),
                )
                .await;
        }
        let c = Arc::new(Context {
            id,
            file,
            login: Mutex::new(()),
        });
        contexts.insert(name.to_string(), c.clone());
        Ok(c)
    }

    async fn start(settings: &BrowserSettings) -> Result<Session, FetchError> {
        let (child, ws, profile) = match &settings.endpoint {
            Some(endpoint) => (None, remote(endpoint).await?, None),
            None => {
                let profile = std::env::temp_dir().join(format!(
                    "forewarn-browser-{}-{}",
                    std::process::id(),
                    PROFILES.fetch_add(1, Ordering::Relaxed)
                ));
                let (child, ws) = launch(&profile, settings).await?;
                (Some(child), ws, Some(profile))
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(ws.as_str())
            .await
            .map_err(|e| {
                FetchError::Browser(format!("cannot reach the browser's DevTools socket: {e}"))
            })?;
        let (mut sink, stream) = socket.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = outgoing.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Default::default();
        let (events, _) = broadcast::channel(1024);
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        tokio::spawn(read(
            stream,
            pending.clone(),
            events.clone(),
            closed.clone(),
        ));
        let session = Session {
            child: std::sync::Mutex::new(child),
            profile,
            out,
            pending,
            events,
            next: AtomicU64::new(1),
            closed,
            contexts: Mutex::new(HashMap::new()),
            idle: std::sync::Mutex::new(Vec::new()),
        };
        session.deny_downloads(None).await?;
        Ok(session)
    }

    /// A page that starts a download gets nothing written: a watched page has no business
    /// putting files on this machine.
    async fn deny_downloads(&self, context: Option<&str>) -> Result<(), FetchError> {
        let mut params = json!({"behavior": "deny"});
        if let Some(c) = context {
            params["browserContextId"] = json!(c);
        }
        self.call(None, "Browser.setDownloadBehavior", params)
            .await
            .map(drop)
            .map_err(|e| FetchError::Browser(format!("cannot refuse downloads: {e}")))
    }

    /// Closes the kept tab `parked` names, if it still waits.
    async fn reap(&self, parked: u64) {
        let tab = {
            let mut idle = self.idle.lock().expect("not poisoned");
            let at = idle.iter().position(|t| t.parked == parked);
            at.map(|i| idle.remove(i))
        };
        if let Some(tab) = tab {
            self.close_target(&tab.target).await;
        }
    }

    /// Closes a tab, waiting at most 5 s for the browser to say so.
    async fn close_target(&self, target: &str) {
        let close = self.call(None, "Target.closeTarget", json!({"targetId": target}));
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    }

    fn dead(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// One protocol command (in a tab's session, or the browser's), and its result.
    async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("not poisoned").insert(id, tx);
        // The reader marks the session dead, then drops what waits: a call that came in
        // between would wait forever.
        if self.dead() {
            self.pending.lock().expect("not poisoned").remove(&id);
            return Err("the browser is gone".into());
        }
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.out
            .send(Message::Text(msg.to_string().into()))
            .map_err(|_| "the browser is gone".to_string())?;
        rx.await.map_err(|_| {
            "the browser closed while answering (it crashed or was killed)".to_string()
        })?
    }
}

static PROFILES: AtomicU64 = AtomicU64::new(0);

/// Starts Chromium with a fresh profile and returns it with its DevTools socket's address.
async fn launch(
    profile: &std::path::Path,
    settings: &BrowserSettings,
) -> Result<(tokio::process::Child, String), FetchError> {
    let exe = executable(settings)?;
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--mute-audio",
        // A kept tab moving to its next page does not keep the last one alive, frozen, for
        // a Back that never comes.
        "--disable-features=BackForwardCache",
        "--remote-debugging-port=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    // The sandbox needs unprivileged user namespaces; as root Chromium refuses to start with
    // it (README: "Browser watches").
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.arg("--no-sandbox");
    }
    cmd.arg("about:blank")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        FetchError::Browser(format!(
            "cannot start the browser {}: {e}; install Chromium (Debian: apt-get install chromium) or set FOREWARN_BROWSER to its path; the other watches run",
            exe.display()
        ))
    })?;
    let stderr = child.stderr.take().expect("piped");
    let ws = tokio::time::timeout(START, listening(stderr))
        .await
        .map_err(|_| {
            FetchError::Browser(format!(
                "the browser {} did not start within {}s",
                exe.display(),
                START.as_secs()
            ))
        })??;
    Ok((child, ws))
}

/// The DevTools socket of a running browser (`[browser] endpoint`): a `ws://` address as
/// is, an `http://host:port` one through its `/json/version`.
async fn remote(endpoint: &str) -> Result<String, FetchError> {
    if endpoint.starts_with("ws://") || endpoint.starts_with("wss://") {
        return Ok(endpoint.to_string());
    }
    let err = |e: String| {
        FetchError::Browser(format!(
            "cannot reach the browser at `[browser] endpoint` {endpoint}: {e}; is it running with --remote-debugging-port?"
        ))
    };
    let version = format!("{}/json/version", endpoint.trim_end_matches('/'));
    let v: Value = tokio::time::timeout(Duration::from_secs(10), async {
        reqwest::get(&version)
            .await?
            .error_for_status()?
            .json()
            .await
    })
    .await
    .map_err(|_| err("no answer within 10s".into()))?
    .map_err(|e| err(e.to_string()))?;
    v["webSocketDebuggerUrl"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| err("its /json/version names no webSocketDebuggerUrl".into()))
}

/// Reads the browser's messages: answers go to their callers, events to every tab. When
/// the socket closes, the waiting calls fail and the session is marked dead.
async fn read(
    mut stream: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
    pending: Pending,
    events: broadcast::Sender<Arc<Value>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
) {
    while let Some(Ok(m)) = stream.next().await {
        let Message::Text(text) = m else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(id) = v.get("id").and_then(Value::as_u64) else {
            let _ = events.send(Arc::new(v));
            continue;
        };
        if let Some(tx) = pending.lock().expect("not poisoned").remove(&id) {
            let r = match v.get("error") {
                Some(e) => Err(e["message"].as_str().unwrap_or("error").to_string()),
                None => Ok(v["result"].clone()),
            };
            let _ = tx.send(r);
        }
    }
    closed.store(true, Ordering::Relaxed);
    pending.lock().expect("not poisoned").clear();
}

/// Reads the browser's stderr until it says where its DevTools socket listens.
async fn listening(stderr: tokio::process::ChildStderr) -> Result<String, FetchError> {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut said = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(at) = line.find("ws://") {
            // Keep draining stderr so the browser never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(line[at..].trim().to_string());
        }
        said.push(line);
    }
    Err(FetchError::Browser(format!(
        "the browser exited before it was ready: {}",
        said.iter()
            .rev()
            .take(3)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" / ")
    )))
}

impl Drop for Session {
    fn drop(&mut self) {
        // The whole process group: Chromium's renderers and helpers go with it.
        if let Some(child) = self.child.lock().expect("not poisoned").take()
            && let Some(pid) = child.id()
        {
            // SAFETY: a plain signal to the process group this session started.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        if let Some(p) = &self.profile {
            remove_profile(p);
        }
    }
}

/// Removes a profile and the folder Chromium keeps its singleton socket in (under the
/// system's temporary folder, linked from the profile): killed browsers do not remove it,
/// and a test run left hundreds behind.
fn remove_profile(profile: &std::path::Path) {
    if let Ok(socket) = std::fs::read_link(profile.join("SingletonSocket"))
        && let Some(dir) = socket.parent()
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("org.chromium.Chromium."))
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(profile);
}

/// A tab attached over a flattened session.
struct Tab {
    session: Arc<Session>,
    /// The browser context it belongs to (`None`: the default one).
    context: Option<String>,
    target: String,
    id: String,
    events: broadcast::Receiver<Arc<Value>>,
    /// The fetch and XHR requests seen while recording (`track_requests`).
    recorded: Option<std::collections::BTreeSet<String>>,
}

impl Tab {
    /// An idle tab of the context, or a new one. A kept tab listens to events from now on
    /// (what its last page sent is not read as this page's), and a dialog its last page
    /// opened while it waited is dismissed.
    async fn take(session: &Arc<Session>, context: Option<&Context>) -> Result<Tab, FetchError> {
        let want = context.map(|c| c.id.as_str());
        let kept = {
            let mut idle = session.idle.lock().expect("not poisoned");
            let at = idle.iter().rposition(|t| t.context.as_deref() == want);
            at.map(|i| idle.remove(i))
        };
        let Some(kept) = kept else {
            return Tab::open(session, context).await;
        };
        let tab = Tab {
            session: session.clone(),
            context: kept.context,
            target: kept.target,
            id: kept.id,
            events: session.events.subscribe(),
            recorded: None,
        };
        let dismiss = tab.call("Page.handleJavaScriptDialog", json!({"accept": false}));
        let _ = tokio::time::timeout(Duration::from_secs(5), dismiss).await;
        Ok(tab)
    }

    /// Keeps the tab, its page as it is, for the next page of its context (navigating away
    /// from a page costs what loading the next one does, and nothing when there is one).
    /// Closed instead when enough tabs are kept, or the browser is not forewarn's own: a
    /// check that ends leaves no tab behind in a browser it did not start. A tab not used
    /// again within [`KEEP_IDLE`] is closed: its page stops running.
    async fn put_back(self) {
        let full = self.session.idle.lock().expect("not poisoned").len() >= IDLE_TABS;
        if full || self.session.dead() || self.session.profile.is_none() {
            return self.close().await;
        }
        let parked = self.session.next.fetch_add(1, Ordering::Relaxed);
        self.session.idle.lock().expect("not poisoned").push(Idle {
            context: self.context,
            target: self.target,
            id: self.id,
            parked,
        });
        let session = Arc::downgrade(&self.session);
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_IDLE).await;
            if let Some(session) = session.upgrade() {
                session.reap(parked).await;
            }
        });
    }

    async fn open(session: &Arc<Session>, context: Option<&Context>) -> Result<Tab, FetchError> {
        let err = |e: String| FetchError::Browser(format!("cannot open a tab: {e}"));
        let events = session.events.subscribe();
        let mut params = json!({"url": "about:blank"});
        if let Some(c) = context {
            params["browserContextId"] = json!(c.id);
        }
        let target = session
            .call(None, "Target.createTarget", params)
            .await
            .map_err(err)?["targetId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = session
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await
            .map_err(err)?["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let tab = Tab {
            session: session.clone(),
            context: context.map(|c| c.id.clone()),
            target,
            id,
            events,
            recorded: None,
        };
        for method in ["Page.enable", "Network.enable"] {
            tab.call(method, json!({})).await.map_err(err)?;
        }
        Ok(tab)
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.session.call(Some(&self.id), method, params).await
    }

    async fn close(self) {
        self.session.close_target(&self.target).await;
    }

    /// Logs in when it must, navigates, waits until the page is ready, and reads its DOM,
    /// all before `deadline`.
    async fn load(
        &mut self,
        url: &url::Url,
        spec: &BrowserSpec,
        login: Option<&Mutex<()>>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Fetched, FetchError> {
        let wait_for = spec.wait_for.as_deref();
        let mut status = None;
        if !spec.steps.is_empty() {
            // One watch of a session logs in at a time; the others then find it logged in.
            let _login = match login {
                Some(m) => Some(m.lock().await),
                None => None,
            };
            // `logged_in` there already: the session is logged in, the steps are skipped.
            // A third of the time at most to see whether `logged_in` is there (a page that is
            // not logged in often redirects to its login form): the steps need the rest.
            if let Some(sel) = &spec.logged_in {
                let probe = (Instant::now() + timeout / 3).min(deadline);
                match self.visit(url.as_str(), Some(sel), probe, timeout).await {
                    Ok(s) => {
                        self.settle("", wait_for, true, deadline, timeout).await?;
                        status = Some(s);
                    }
                    Err(_) if self.session.dead() => return Err(gone()),
                    Err(_) => {}
                }
            }
            if status.is_none() {
                self.run_steps(&spec.steps, deadline, timeout).await?;
            }
        }
        // `track_requests`: what the page's scripts ask for while it is read.
        self.recorded = spec.track_requests.then(Default::default);
        let status = match status {
            Some(s) => s,
            None => {
                self.visit(url.as_str(), wait_for, deadline, timeout)
                    .await?
            }
        };
        if !(200..300).contains(&status) {
            let code =
                reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
            return Err(super::http_error(code, None));
        }
        let html = self
            .bounded(
                deadline,
                "Runtime.evaluate",
                json!({"expression": "[location.protocol, document.documentElement.outerHTML]", "returnByValue": true}),
            )
            .await
            .map_err(|e| e.unwrap_or_else(|| late(timeout, "the page did not answer")))?;
        let (protocol, html) = (&html["result"]["value"][0], &html["result"]["value"][1]);
        // Only http(s) pages are read, wherever the page's scripts went.
        if !matches!(protocol.as_str(), Some("http:" | "https:")) {
            return Err(navigated_away(protocol.as_str().unwrap_or("non-web")));
        }
        let html = html.as_str().unwrap_or_default();
        let screenshot = match spec.screenshot {
            true => Some(self.screenshot(deadline, timeout).await?),
            false => None,
        };
        Ok(Fetched::Body {
            status,
            body: format!("<!DOCTYPE html>{html}").into_bytes(),
            content_type: Some("text/html; charset=utf-8".into()),
            etag: None,
            last_modified: None,
            requests: self.recorded.take().map(|r| r.into_iter().collect()),
            screenshot,
        })
    }

    /// The page as PNG: its whole width up to [`SHOT_WIDTH`], its height up to
    /// [`SHOT_HEIGHT`] (a long page is cut, not scaled down to a strip).
    async fn screenshot(
        &self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let late = || late(timeout, "the screenshot was not taken");
        let metrics = self
            .bounded(deadline, "Page.getLayoutMetrics", json!({}))
            .await
            .map_err(|e| e.unwrap_or_else(late))?;
        let size = &metrics["cssContentSize"];
        let side = |v: &Value, max: f64| v.as_f64().unwrap_or(max).clamp(1.0, max);
        let clip = json!({
            "x": 0, "y": 0, "scale": 1,
            "width": side(&size["width"], SHOT_WIDTH),
            "height": side(&size["height"], SHOT_HEIGHT),
        });
        let shot = self
            .bounded(
                deadline,
                "Page.captureScreenshot",
                json!({"format": "png", "clip": clip, "captureBeyondViewport": true}),
            )
            .await
            .map_err(|e| e.unwrap_or_else(late))?;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| FetchError::Browser(format!("the screenshot did not decode: {e}")))
    }

    /// Navigates to `url` and waits until it is ready; returns the document's status.
    async fn visit(
        &mut self,
        url: &str,
        wait_for: Option<&str>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u16, FetchError> {
        let mut loader = self.navigate(url, deadline, timeout).await?;
        if loader.is_empty() {
            // A jump within the document the tab holds (a kept tab, and a URL that differs
            // from its page's only in the fragment): the page is loaded afresh.
            self.navigate("about:blank", deadline, timeout).await?;
            loader = self.navigate(url, deadline, timeout).await?;
        }
        self.settle(&loader, wait_for, false, deadline, timeout)
            .await
    }

    /// Starts loading `url`; returns the loader of its document (empty for a jump within
    /// the document there).
    async fn navigate(
        &self,
        url: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<String, FetchError> {
        let nav = self
            .bounded(deadline, "Page.navigate", json!({"url": url}))
            .await
            .map_err(|e| e.unwrap_or_else(|| late(timeout, "the navigation did not start")))?;
        if let Some(e) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(FetchError::Connect(format!(
                "the browser could not load the page: {e}"
            )));
        }
        Ok(nav["loaderId"].as_str().unwrap_or_default().to_string())
    }

    /// Runs the login steps in order; a failure names the step, never a value typed.
    async fn run_steps(
        &mut self,
        steps: &[Step],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), FetchError> {
        for (i, step) in steps.iter().enumerate() {
            self.step(step, deadline, timeout).await.map_err(|e| {
                FetchError::Browser(format!("login step {} ({}): {e}", i + 1, describe(step)))
            })?;
        }
        Ok(())
    }

    async fn step(
        &mut self,
        step: &Step,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), String> {
        match step {
            Step::Goto(u) => {
                let u = crate::config::types::expand_env(u)?;
                self.visit(&u, None, deadline, timeout)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Step::Fill { selector, value } => {
                self.appear(selector, deadline).await?;
                let value = crate::config::types::expand_env(value)?;
                let js = format!(
                    "(() => {{ const e = document.querySelector({}); e.focus(); e.value = {}; e.dispatchEvent(new Event('input', {{bubbles: true}})); e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
                    json!(selector),
                    json!(value)
                );
                self.evaluate(&js, deadline).await?;
            }
            Step::Click(selector) => {
                self.appear(selector, deadline).await?;
                let js = format!("document.querySelector({}).click()", json!(selector));
                self.evaluate(&js, deadline).await?;
                self.pause(IDLE, deadline).await;
            }
            Step::Press(key) => {
                let text = if key == "Enter" {
                    "\r".to_string()
                } else {
                    key.clone()
                };
                for kind in ["keyDown", "keyUp"] {
                    let code = if key == "Enter" { 13 } else { 0 };
                    let params = json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code, "text": if kind == "keyDown" { text.as_str() } else { "" }});
                    self.bounded(deadline, "Input.dispatchKeyEvent", params)
                        .await
                        .map_err(|e| {
                            e.map_or("the page did not answer".into(), |e| e.to_string())
                        })?;
                }
                self.pause(IDLE, deadline).await;
            }
            Step::WaitFor(selector) => self.appear(selector, deadline).await?,
            Step::Wait(d) => {
                tokio::time::sleep((*d).min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
        }
        Ok(())
    }

    /// Lets the page react to a click or a key for `d` (a navigation it starts is waited
    /// for by the next step), dismissing dialogs meanwhile.
    async fn pause(&mut self, d: Duration, deadline: Instant) {
        let until = (Instant::now() + d).min(deadline);
        while let Ok(Ok(ev)) = tokio::time::timeout_at(until.into(), self.events.recv()).await {
            if ev["sessionId"].as_str() == Some(self.id.as_str())
                && ev["method"] == "Page.javascriptDialogOpening"
            {
                let _ = self
                    .call("Page.handleJavaScriptDialog", json!({"accept": false}))
                    .await;
            }
        }
    }

    /// Waits until `selector` matches, before `deadline`.
    async fn appear(&self, selector: &str, deadline: Instant) -> Result<(), String> {
        loop {
            if self.present(selector, deadline).await {
                return Ok(());
            }
            if self.session.dead() {
                return Err("the browser closed (it crashed or was killed)".into());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`{selector}` did not appear within the watch's `timeout`"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a script in the page; a thrown exception is an error.
    async fn evaluate(&self, js: &str, deadline: Instant) -> Result<(), String> {
        let r = self
            .bounded(
                deadline,
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true}),
            )
            .await
            .map_err(|e| e.map_or("the page did not answer".into(), |e| e.to_string()))?;
        match r.get("exceptionDetails") {
            Some(x) => Err(format!(
                "the page threw: {}",
                x["exception"]["description"]
                    .as_str()
                    .unwrap_or("an exception")
            )),
            None => Ok(()),
        }
    }

    /// Follows the tab's events until the page is ready: `wait_for` present, or the network
    /// quiet for [`IDLE`] after the load event. Dialogs are dismissed. Returns the document's
    /// HTTP status.
    async fn settle(
        &mut self,
        loader: &str,
        wait_for: Option<&str>,
        mut loaded: bool,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<u16, FetchError> {
        let mut status = 200;
        // The load event counts once the page's own document is in the frame: a kept tab's
        // last page (or the `about:blank` it passes through) may still report its load
        // while this page starts.
        let mut committed = loader.is_empty();
        let mut inflight: std::collections::HashSet<String> = Default::default();
        let mut quiet_since = Instant::now();
        loop {
            if loaded {
                let ready = match wait_for {
                    Some(sel) => self.present(sel, deadline).await,
                    None => inflight.is_empty() && quiet_since.elapsed() >= IDLE,
                };
                if ready {
                    self.record_queued();
                    return Ok(status);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(late(
                    timeout,
                    &match (wait_for, loaded) {
                        (Some(sel), _) => format!("`wait_for` selector `{sel}` did not appear"),
                        (None, false) => "the page never finished loading".to_string(),
                        (None, true) => {
                            "its network never went quiet (set `wait_for` to the selector you need)"
                                .to_string()
                        }
                    },
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let ev = match tokio::time::timeout(wait, self.events.recv()).await {
                _ if self.session.dead() => return Err(gone()),
                Err(_) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(gone()),
                Ok(Ok(ev)) => ev,
            };
            if ev["sessionId"].as_str() != Some(self.id.as_str()) {
                continue;
            }
            let p = &ev["params"];
            match ev["method"].as_str().unwrap_or_default() {
                "Page.loadEventFired" => loaded |= committed,
                // Dismissed, but a page asking whether to leave it is left: that is where
                // the watch goes.
                "Page.javascriptDialogOpening" => {
                    let accept = p["type"] == "beforeunload";
                    let _ = self
                        .call("Page.handleJavaScriptDialog", json!({"accept": accept}))
                        .await;
                }
                // The page left the web (a `blob:` or `data:` document): nothing to wait for
                // (and its new document may not answer yet: the URL says where it went).
                // (Before the page's own document, it is a kept tab's `about:blank`.)
                "Page.frameNavigated"
                    if committed
                        && p["frame"]["parentId"].is_null()
                        && !is_web(p["frame"]["url"].as_str().unwrap_or_default()) =>
                {
                    let url = p["frame"]["url"].as_str().unwrap_or_default();
                    let scheme = url.split_once(':').map_or("non-web", |(s, _)| s);
                    return Err(navigated_away(&format!("{scheme}:")));
                }
                "Page.frameNavigated" if p["frame"]["parentId"].is_null() => {
                    committed |= p["frame"]["loaderId"] == loader;
                }
                // Requests that never touch the network (blob:, data:) are not waited for,
                // nor those a kept tab's last page makes before this one replaces it.
                "Network.requestWillBeSent"
                    if !is_web(p["request"]["url"].as_str().unwrap_or_default())
                        || !(committed || p["loaderId"] == loader) => {}
                "Network.requestWillBeSent" => {
                    inflight.insert(p["requestId"].as_str().unwrap_or_default().to_string());
                    quiet_since = Instant::now();
                    if let Some(seen) = &mut self.recorded
                        && matches!(p["type"].as_str(), Some("XHR" | "Fetch"))
                    {
                        seen.extend(request_of(p, loader_url(p)));
                    }
                }
                "Network.loadingFinished" | "Network.loadingFailed" => {
                    inflight.remove(p["requestId"].as_str().unwrap_or_default());
                    quiet_since = Instant::now();
                }
                "Network.responseReceived"
                    if p["type"] == "Document" && p["loaderId"] == loader =>
                {
                    status = p["response"]["status"].as_u64().unwrap_or(200) as u16;
                }
                _ => {}
            }
        }
    }

    /// Records the script requests among the events still queued (a page can be ready
    /// before its events were read).
    fn record_queued(&mut self) {
        let Some(seen) = &mut self.recorded else {
            return;
        };
        while let Ok(ev) = self.events.try_recv() {
            let p = &ev["params"];
            if ev["sessionId"].as_str() == Some(self.id.as_str())
                && ev["method"] == "Network.requestWillBeSent"
                && matches!(p["type"].as_str(), Some("XHR" | "Fetch"))
            {
                seen.extend(request_of(p, loader_url(p)));
            }
        }
    }

    /// The selector matches something in the page now.
    async fn present(&self, selector: &str, deadline: Instant) -> bool {
        let expression = format!("!!document.querySelector({})", json!(selector));
        self.bounded(
            deadline,
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )
        .await
        .is_ok_and(|v| v["result"]["value"] == json!(true))
    }

    /// A command that must answer before `deadline`: `Err(None)` when it did not.
    async fn bounded(
        &self,
        deadline: Instant,
        method: &str,
        params: Value,
    ) -> Result<Value, Option<FetchError>> {
        match tokio::time::timeout_at(deadline.into(), self.call(method, params)).await {
            Err(_) => Err(None),
            Ok(Err(e)) => Err(Some(FetchError::Browser(e))),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

/// The per-watch failure of a page that was not ready within the watch's `timeout`.
fn late(timeout: Duration, what: &str) -> FetchError {
    FetchError::Browser(format!(
        "{what} within {} (the watch's `timeout`): the page is still loading, or a script never lets it settle",
        humantime::format_duration(timeout)
    ))
}

/// A step in words, without the value it types.
fn describe(step: &Step) -> String {
    match step {
        Step::Goto(u) => format!("goto {u}"),
        Step::Fill { selector, .. } => format!("fill `{selector}`"),
        Step::Click(s) => format!("click `{s}`"),
        Step::Press(k) => format!("press {k}"),
        Step::WaitFor(s) => format!("wait_for `{s}`"),
        Step::Wait(d) => format!("wait {}", humantime::format_duration(*d)),
    }
}

/// The browser died under a page.
fn gone() -> FetchError {
    FetchError::Browser(
        "the browser closed while loading the page (it crashed or was killed); the next check starts a new one".into(),
    )
}

/// The page a request was made from (its `documentURL`).
fn loader_url(p: &Value) -> Option<url::Url> {
    p["documentURL"]
        .as_str()
        .and_then(|u| url::Url::parse(u).ok())
}

/// A script request as compared: `GET /api/v2/items.json?limit&page` (its query's keys,
/// never their values), with the host in front for another host's API.
fn request_of(p: &Value, page: Option<url::Url>) -> Option<String> {
    let r = &p["request"];
    let url = url::Url::parse(r["url"].as_str()?).ok()?;
    let method = r["method"].as_str().unwrap_or("GET");
    let mut keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    keys.sort();
    keys.dedup();
    let query = if keys.is_empty() {
        String::new()
    } else {
        format!("?{}", keys.join("&"))
    };
    let same = page.is_some_and(|p| p.host_str() == url.host_str() && p.port() == url.port());
    let place = if same {
        url.path().to_string()
    } else {
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.path()
        )
    };
    Some(format!("{method} {place}{query}"))
}

/// The error of a page that left the web for a `protocol` (`blob:`) address.
fn navigated_away(protocol: &str) -> FetchError {
    FetchError::Browser(format!(
        "the page navigated away to a {protocol} address; only http(s) pages are read"
    ))
}

/// An http(s) URL: what goes over the network, and the only pages read.
fn is_web(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}
