//! Browser watches against Debian's Chromium (headless), with local apps only: a single-page
//! app whose toolbar exists only after its script ran, dialogs, a page that never settles, an
//! endless script, and no browser at all.

use crate::util::{Page, Server, TestEnv, one_watch};

/// One browser test at a time: each starts Chromium, and several starting at once on a
/// 2-core machine beside the other tests made one wait past its start-up bound.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const APP: &str = r#"<!doctype html><html><body><div id="app"></div><script>
fetch('/config.json').then(r => r.json()).then(c => {
  const t = document.createElement('div'); t.id = 'toolbar';
  for (const b of c.buttons) {
    const e = document.createElement('button'); e.className = b.cls; e.textContent = b.label;
    t.appendChild(e);
  }
  document.getElementById('app').appendChild(t);
});
</script></body></html>"#;

fn config(cls: &str, label: &str) -> Page {
    Page::html(&format!(r#"{{"buttons": [{{"cls": "{cls}", "label": "{label}"}}, {{"cls": "archive", "label": "Archive"}}]}}"#))
        .with_type("application/json")
}

/// The toolbar an extension reads exists only after the app's script ran: a browser watch
/// sees it, its changes (text and class) are reported, and the HTTP watch beside it runs too.
#[test]
fn a_single_page_app_is_read_after_its_scripts_ran() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/app", Page::html(APP));
    srv.set("/config.json", config("send", "Send"));
    srv.set("/plain", Page::html("<p>plain page</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}{}",
        one_watch(
            "app",
            &srv.url("/app"),
            "browser = true\nwait_for = \"#toolbar\"\nselect = \"#toolbar\""
        ),
        one_watch("shell", &srv.url("/app"), "select = \"#toolbar\""),
        one_watch("plain", &srv.url("/plain"), ""),
    ));
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.events("baseline").len(), 2, "{}", first.stdout);
    // The same page fetched over HTTP is the empty shell: the toolbar is not there.
    assert_eq!(first.events("selector_missing")[0]["watch"], "shell");
    env.run(&["show", "app"])
        .says("[div#toolbar]\nSend Archive\n");
    srv.set("/config.json", config("send-btn", "Send now"));
    let run = env.run(&["check"]);
    run.says("CHANGED app");
    run.says("+Send now Archive");
    run.says("added `button.send-btn`");
    run.never_says("CHANGED shell");
    assert!(
        srv.seen("/config.json").len() >= 2,
        "the app's own request ran in the browser"
    );
}

/// `alert()` is dismissed, a page whose `wait_for` never appears and a script in an endless
/// loop fail within the watch's `timeout` with what happened, and the other watches of the
/// pass are read; the next check, once the page is fixed, recovers.
#[test]
fn dialogs_are_dismissed_and_pages_that_never_settle_fail_alone() {
    let _one = serial();
    let srv = Server::start();
    srv.set(
        "/dialog",
        Page::html("<div id=\"x\"></div><script>alert('hello'); document.getElementById('x').textContent = 'after the dialog';</script>"),
    );
    srv.set("/slow", Page::html("<p>no toolbar here</p>"));
    let looping = Server::start();
    looping.set(
        "/loop",
        Page::html("<p>spinning</p><script>for (;;) {}</script>"),
    );
    let loop_url = looping.url("/loop").replace("127.0.0.1", "localhost");
    let env = TestEnv::new().watchlist(&format!(
        "{}{}{}",
        one_watch(
            "dialog",
            &srv.url("/dialog"),
            "browser = true\nselect = \"#x\""
        ),
        one_watch(
            "never",
            &srv.url("/slow"),
            "browser = true\nwait_for = \"#toolbar\"\ntimeout = \"3s\"\nretries = 0"
        ),
        one_watch(
            "loop",
            &loop_url,
            "browser = true\nwait_for = \"#toolbar\"\ntimeout = \"3s\"\nretries = 0"
        ),
    ));
    let started = std::time::Instant::now();
    let run = env.run(&["check", "--format", "json"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded by the timeouts"
    );
    assert_eq!(run.code, 2, "{run:?}");
    let baselines = run.events("baseline");
    assert_eq!(baselines.len(), 1, "{}", run.stdout);
    assert_eq!(baselines[0]["watch"], "dialog");
    env.run(&["show", "dialog"]).says("after the dialog");
    let errors = run.events("error");
    assert_eq!(errors.len(), 2, "{}", run.stdout);
    for e in &errors {
        let msg = e["error"].as_str().unwrap();
        assert!(
            msg.contains("`wait_for` selector `#toolbar` did not appear within 3s"),
            "{msg}"
        );
    }
    srv.set("/slow", Page::html("<div id=\"toolbar\">ready</div>"));
    let again = env.run(&["check", "--format", "json", "--only", "never"]);
    assert_eq!(again.events("baseline").len(), 1, "{}", again.stdout);
}

/// Without a browser, browser watches fail with how to install one; the others run.
#[test]
fn without_a_browser_only_the_browser_watches_fail() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/app", Page::html(APP));
    srv.set("/plain", Page::html("<p>plain</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("app", &srv.url("/app"), "browser = true\nretries = 0"),
        one_watch("plain", &srv.url("/plain"), ""),
    ));
    let run = env.run_env(
        &["check", "--format", "json"],
        &[("FOREWARN_BROWSER", "/nonexistent/chromium")],
    );
    let errors = run.events("error");
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    let msg = errors[0]["error"].as_str().unwrap();
    assert!(
        msg.contains("cannot start the browser /nonexistent/chromium"),
        "{msg}"
    );
    assert!(msg.contains("apt-get install chromium"), "{msg}");
    assert_eq!(run.events("baseline")[0]["watch"], "plain");
}

/// `[browser] executable` names the browser to start, before `FOREWARN_BROWSER`.
#[test]
fn the_browser_table_names_the_executable() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/plain", Page::html("<p>plain</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "[browser]\nexecutable = \"/opt/none/chrome\"\n\n{}{}",
        one_watch("app", &srv.url("/plain"), "browser = true\nretries = 0"),
        one_watch("plain", &srv.url("/plain"), ""),
    ));
    let run = env.run_env(
        &["check", "--format", "json"],
        &[("FOREWARN_BROWSER", "/nonexistent/chromium")],
    );
    let msg = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("cannot start the browser /opt/none/chrome"),
        "{msg}"
    );
    assert_eq!(run.events("baseline")[0]["watch"], "plain");
    let both = TestEnv::new().watchlist(&format!(
        "[browser]\nexecutable = \"chromium\"\nendpoint = \"ws://127.0.0.1:9/x\"\n\n{}",
        one_watch("app", &srv.url("/plain"), "browser = true"),
    ));
    let run = both.run(&["list"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("not both") && run.stderr.contains("main.toml:1"),
        "{}",
        run.stderr
    );
}

/// `[browser] endpoint`: a browser already running (in a container, say) is used over its
/// DevTools address, and left running when forewarn exits.
#[test]
fn a_running_browser_is_used_through_its_endpoint() {
    use std::io::BufRead;
    let _one = serial();
    let srv = Server::start();
    srv.set("/app", Page::html(APP));
    srv.set("/config.json", config("send", "Send"));
    let profile = tempfile::tempdir().unwrap();
    let mut chromium = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium runs");
    let stderr = std::io::BufReader::new(chromium.stderr.take().unwrap());
    let mut ws = String::new();
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find("ws://") {
            ws = line[at..].trim().to_string();
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert!(!ws.is_empty(), "chromium said where it listens");
    // The http form, as `docker run -p 9222:9222` gives it.
    let port = ws.split(':').nth(2).unwrap().split('/').next().unwrap();
    let env = TestEnv::new().watchlist(&format!(
        "[browser]\nendpoint = \"http://127.0.0.1:{port}\"\n\n{}",
        one_watch(
            "app",
            &srv.url("/app"),
            "browser = true\nwait_for = \"#toolbar\"\nselect = \"#toolbar\""
        ),
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(
        run.events("baseline").len(),
        1,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    env.run(&["show", "app"]).says("Send Archive");
    assert!(
        chromium.try_wait().unwrap().is_none(),
        "the browser forewarn did not start is left running"
    );
    chromium.kill().unwrap();
    chromium.wait().unwrap();
}

/// A page whose script starts downloads (an attachment, a generated blob) gets nothing
/// written, and is read as usual; one that leaves the web fails.
#[test]
fn downloads_are_refused() {
    let _one = serial();
    let srv = Server::start();
    srv.set(
        "/app",
        Page::html(
            r#"<!doctype html><html><body><p id="x">ready</p><script>
const a = document.createElement('a');
a.href = URL.createObjectURL(new Blob(['payload'])); a.download = 'blob-download.txt';
document.body.appendChild(a); a.click();
const f = document.createElement('iframe'); f.src = '/file.bin'; document.body.appendChild(f);
</script></body></html>"#,
        ),
    );
    srv.set(
        "/file.bin",
        Page::raw(b"binary payload")
            .with_type("application/octet-stream")
            .header(
                "Content-Disposition",
                "attachment; filename=\"served-download.bin\"",
            ),
    );
    srv.set(
        "/away",
        Page::html("<p>x</p><script>location.href = URL.createObjectURL(new Blob(['<p>elsewhere</p>'], {type: 'text/html'}));</script>"),
    );
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("app", &srv.url("/app"), "browser = true\nretries = 0"),
        one_watch("away", &srv.url("/away"), "browser = true\nretries = 0"),
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(
        run.events("baseline").len(),
        1,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    // A page that sends the browser off the web is not read as if it were the page.
    let msg = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("navigated away to a blob: address; only http(s) pages are read"),
        "{msg}"
    );
    assert!(
        !srv.seen("/file.bin").is_empty(),
        "the page asked for the download"
    );
    let mut found = Vec::new();
    let mut dirs = vec![env.path().to_path_buf(), std::env::current_dir().unwrap()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() && d.starts_with(env.path()) {
                dirs.push(p);
            } else if name.contains("download") {
                found.push(p);
            }
        }
    }
    assert!(found.is_empty(), "downloaded: {found:?}");
}

/// `screenshot = true`: a PNG of the rendered page is kept with each stored snapshot, shown
/// by `show --screenshot`, and embedded in the HTML report beside the change.
#[test]
fn screenshots_are_kept_with_snapshots() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/app", Page::html(APP));
    srv.set("/config.json", config("send", "Send"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch(
            "app",
            &srv.url("/app"),
            "browser = true\nwait_for = \"#toolbar\"\nselect = \"#toolbar\"\nscreenshot = true"
        ),
        one_watch("plain", &srv.url("/config.json"), ""),
    ));
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(
        first.events("baseline").len(),
        2,
        "{}\n{}",
        first.stdout,
        first.stderr
    );
    let png = env.path().join("first.png");
    let shown = env.run(&["show", "app", "--screenshot", "-o", png.to_str().unwrap()]);
    assert_eq!(shown.code, 0, "{shown:?}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 500,
        "{} bytes",
        bytes.len()
    );
    srv.set("/config.json", config("send-btn", "Send now"));
    env.run(&["check"]).says("CHANGED app");
    let html = env.run(&["report", "app", "--format", "html"]);
    assert!(
        html.stdout.contains("<img alt=\"the page as rendered\"")
            && html
                .stdout
                .contains("src=\"data:image/png;base64,iVBORw0KGgo"),
        "the report embeds the screenshot"
    );
    // The newest snapshot's own screenshot, to a pipe.
    let piped = env.run(&["show", "app", "--screenshot"]);
    assert_eq!(piped.code, 0, "{piped:?}");
    assert!(piped.stdout.starts_with("\u{fffd}PNG"), "a PNG on stdout");
    let none = env.run(&["show", "plain", "--screenshot"]);
    assert_ne!(none.code, 0);
    assert!(
        none.stderr
            .contains("has no screenshot: set `screenshot = true`"),
        "{}",
        none.stderr
    );
}

/// `forewarn watch` keeps one browser across its passes instead of starting one per pass.
#[test]
fn the_daemon_keeps_one_browser_across_passes() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/p", Page::html("<p id=\"x\">page</p>"));
    let env = TestEnv::new().watchlist(&one_watch(
        "p",
        &srv.url("/p"),
        "browser = true\nevery = \"1s\"",
    ));
    let mut daemon = crate::scheduler::Daemon::start(&env);
    let start = std::time::Instant::now();
    while srv.seen("/p").len() < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "three passes: {}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let prefix = format!("forewarn-browser-{}-", daemon.pid());
    let profiles: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert_eq!(profiles, vec![format!("{prefix}0")], "one browser started");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(std::time::Duration::from_secs(30)), 0);
    assert!(
        !std::env::temp_dir().join(format!("{prefix}0")).exists(),
        "its profile is removed when the daemon stops"
    );
}

/// `wait_for` is checked when the watchlist loads, like every selector.
#[test]
fn wait_for_is_checked_at_load() {
    let _one = serial();
    let env = TestEnv::new().watchlist(&format!(
        "{}{}{}{}{}{}",
        one_watch("a", "http://127.0.0.1:9/a", "wait_for = \"#toolbar\""),
        one_watch(
            "b",
            "http://127.0.0.1:9/b",
            "browser = true\nwait_for = \"div..x\""
        ),
        one_watch("c", "http://127.0.0.1:9/c", "session = \"vendor\""),
        one_watch(
            "d",
            "http://127.0.0.1:9/d",
            "browser = true\nsession = \"../etc\""
        ),
        one_watch(
            "e",
            "http://127.0.0.1:9/e",
            "browser = true\nsession = \"vendor\"\nskip_unchanged_shell = true"
        ),
        one_watch("f", "http://127.0.0.1:9/f", "skip_unchanged_shell = true"),
    ));
    let run = env.run(&["list"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("`wait_for` applies to a browser watch: add `browser = true`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("main.toml:"), "{}", run.stderr);
    assert!(run.stderr.contains("div..x"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`session` applies to a browser watch: add `browser = true`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("invalid session name `../etc`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "`skip_unchanged_shell` asks for the page without the browser's cookies, so it cannot be used with `steps` or `session`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("`skip_unchanged_shell` applies to a browser watch: add `browser = true`"),
        "{}",
        run.stderr
    );
}

/// `skip_unchanged_shell`: the page's document is asked for first with its ETag; a 304 is
/// no change and nothing is rendered (the app's own request is not made), a new document
/// is rendered and its change reported.
#[test]
fn an_unchanged_shell_is_not_rendered_when_the_watch_allows_it() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/app", Page::html(APP).etag("\"shell-1\""));
    srv.set("/config.json", config("send", "Send"));
    let env = TestEnv::new().watchlist(&one_watch(
        "app",
        &srv.url("/app"),
        "browser = true\nskip_unchanged_shell = true\nwait_for = \"#toolbar\"\nselect = \"#toolbar\"",
    ));
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.events("baseline").len(), 1, "{}", first.stdout);
    let rendered = srv.seen("/config.json").len();
    assert!(rendered >= 1, "the first check renders the page");
    let same = env.run(&["check", "--format", "json"]);
    assert_eq!(
        same.events("summary")[0]["not_modified"],
        1,
        "{}",
        same.stdout
    );
    assert_eq!(
        srv.seen("/config.json").len(),
        rendered,
        "an unchanged shell is not rendered"
    );
    let conditional = srv.seen("/app");
    assert!(
        conditional.last().is_some_and(
            |s| s.headers.get("if-none-match").map(String::as_str) == Some("\"shell-1\"")
        ),
        "{conditional:?}"
    );
    let shell = APP.replace("<div id=\"app\">", "<div id=\"app\" class=\"v2\">");
    srv.set("/app", Page::html(&shell).etag("\"shell-2\""));
    srv.set("/config.json", config("send-btn", "Send now"));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
    assert!(srv.seen("/config.json").len() > rendered);
    let after = env.run(&["check", "--format", "json"]);
    assert_eq!(
        after.events("summary")[0]["not_modified"],
        1,
        "{}",
        after.stdout
    );
}

const LOGIN: &str = r#"<!doctype html><html><body><form id="f">
<input id="user"><input id="pass" type="password"><button id="go" type="button">Log in</button>
</form><p id="msg"></p><script>
document.getElementById('go').addEventListener('click', () => {
  if (document.getElementById('user').value === 'ann' && document.getElementById('pass').value === 's3cret-pw') {
    document.cookie = 'session=ok; path=/';
    location.href = '/inbox';
  } else { document.getElementById('msg').textContent = 'wrong password'; }
});
</script></body></html>"#;

const INBOX: &str = r#"<!doctype html><html><body><div id="app"></div><script>
if (!document.cookie.includes('session=ok')) { location.href = '/login'; }
else { document.getElementById('app').innerHTML = '<div id="toolbar"><button class="send">Send</button></div>'; }
</script></body></html>"#;

/// An app behind a login: the steps log in (the password from the environment, never
/// stored or shown), then the page is read; a failed login names the step that failed.
#[test]
fn steps_log_in_before_the_page_is_read() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/login", Page::html(LOGIN));
    srv.set("/inbox", Page::html(INBOX));
    let steps = format!(
        "browser = true\nselect = \"#toolbar\"\nwait_for = \"#toolbar\"\nlogged_in = \"#toolbar\"\ntimeout = \"5s\"\nretries = 0\nsteps = [\n  {{ goto = \"{}\" }},\n  {{ fill = \"#user\", value = \"ann\" }},\n  {{ fill = \"#pass\", value = \"${{INBOX_PASSWORD}}\" }},\n  {{ click = \"#go\" }},\n  {{ wait_for = \"#toolbar\" }},\n]",
        srv.url("/login")
    );
    let env = TestEnv::new().watchlist(&one_watch("inbox", &srv.url("/inbox"), &steps));
    let run = env.run_env(
        &["check", "--format", "json"],
        &[("INBOX_PASSWORD", "s3cret-pw")],
    );
    assert_eq!(
        run.events("baseline").len(),
        1,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    env.run(&["show", "inbox"]).says("Send");
    let db = env.stored_bytes();
    assert!(
        !db.windows(9).any(|w| w == b"s3cret-pw"),
        "the password is not stored"
    );
    assert!(!run.stdout.contains("s3cret-pw") && !run.stderr.contains("s3cret-pw"));
    let wrong = env.run_env(
        &["check", "--format", "json"],
        &[("INBOX_PASSWORD", "guess")],
    );
    let errors = wrong.events("error");
    assert_eq!(errors.len(), 1, "{}", wrong.stdout);
    let msg = errors[0]["error"].as_str().unwrap();
    assert!(msg.contains("login step 5 (wait_for `#toolbar`)"), "{msg}");
    assert!(!msg.contains("guess"), "{msg}");
    let unset = env.run(&["check", "--format", "json"]);
    let msg = unset.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("login step 3 (fill `#pass`)") && msg.contains("INBOX_PASSWORD"),
        "{msg}"
    );
}

/// `session = "NAME"`: the watches of one session log in once, in one browser context, and
/// its cookies are kept (readable by the user only) so that the next run does not log in.
#[test]
fn a_session_logs_in_once_and_is_kept_between_runs() {
    let _one = serial();
    let srv = Server::start();
    srv.set("/login", Page::html(LOGIN));
    srv.set("/inbox", Page::html(INBOX));
    let steps = format!(
        "browser = true\nsession = \"vendor\"\nselect = \"#toolbar\"\nwait_for = \"#toolbar\"\nlogged_in = \"#toolbar\"\ntimeout = \"6s\"\nretries = 0\nsteps = [\n  {{ goto = \"{}\" }},\n  {{ fill = \"#user\", value = \"ann\" }},\n  {{ fill = \"#pass\", value = \"${{INBOX_PASSWORD}}\" }},\n  {{ click = \"#go\" }},\n  {{ wait_for = \"#toolbar\" }},\n]",
        srv.url("/login")
    );
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("inbox", &srv.url("/inbox"), &steps),
        one_watch("inbox-2", &srv.url("/inbox?tab=2"), &steps),
    ));
    let pw = [("INBOX_PASSWORD", "s3cret-pw")];
    let first = env.run_env(&["check", "--format", "json"], &pw);
    assert_eq!(
        first.events("baseline").len(),
        2,
        "{}\n{}",
        first.stdout,
        first.stderr
    );
    let logins = srv.seen("/login").len();
    assert!(
        (1..=2).contains(&logins),
        "one watch logged in (its probe and its goto), the other found the session logged in: {logins}"
    );
    // Beside the SQLite file; in the data folder when the database is PostgreSQL.
    let dir = match &env.pg {
        Some(_) => env.path().join("data/forewarn/browser-sessions/vendor"),
        None => env.db().parent().unwrap().join("browser-sessions/vendor"),
    };
    let file = dir.join("cookies.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&file), 0o600);
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(
        kept.contains("\"session\"") && !kept.contains("s3cret-pw"),
        "{kept}"
    );
    // A new process (as from cron): the kept session cookie is logged in already.
    let second = env.run_env(&["check", "--format", "json"], &pw);
    assert_eq!(second.events("error").len(), 0, "{}", second.stdout);
    assert_eq!(
        srv.seen("/login").len(),
        logins,
        "no login on the second run"
    );
    env.run(&["show", "inbox-2"]).says("Send");
}

/// The browser killed in the middle of a pass: the pages that were on it fail, the next ones
/// get a new browser, and the next check recovers every watch.
#[test]
fn a_browser_killed_mid_pass_fails_only_the_pages_on_it() {
    let _one = serial();
    let srv = Server::start();
    let mut toml = String::new();
    for i in 0..6 {
        srv.set(
            &format!("/p{i}"),
            Page::html(&format!("<p id=\"x\">page {i}</p>"))
                .delay(std::time::Duration::from_millis(700)),
        );
        toml.push_str(&one_watch(
            &format!("w{i}"),
            &srv.url(&format!("/p{i}")),
            "browser = true\nretries = 0",
        ));
    }
    let env = TestEnv::new().watchlist(&toml);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_forewarn"))
        .args(["check", "--format", "json"])
        .current_dir(env.path())
        .env("FOREWARN_DB", env.db())
        .env("HOME", env.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let profile = format!("forewarn-browser-{}-", child.id());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = std::process::Command::new("pkill")
        .args(["-9", "-f", &profile])
        .status()
        .unwrap();
    assert!(killed.success(), "a browser was running");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let count = |k: &str| kinds.iter().filter(|e| e["event"] == k).count();
    assert!(
        count("error") >= 1,
        "the pages on the killed browser failed: {stdout}"
    );
    assert_eq!(
        count("error") + count("baseline"),
        6,
        "every watch was checked: {stdout}"
    );
    let again = env.run(&["check", "--format", "json"]);
    assert_eq!(again.events("error").len(), 0, "{}", again.stdout);
    assert_eq!(
        again.events("baseline").len(),
        count("error"),
        "{}",
        again.stdout
    );
}

/// `track_requests`: the app moving its API from v1 to v2 is heard, even when the page looks
/// the same; query values and tokens are not part of it.
#[test]
fn requests_the_app_makes_are_tracked() {
    let _one = serial();
    let app = |version: &str| {
        Page::html(&format!(
            r#"<div id="app"></div><script>
fetch('/api/{version}/items.json?limit=10&page=2&token=' + Math.random()).then(r => r.json()).then(items => {{
  document.getElementById('app').innerHTML = '<div id="toolbar">' + items.length + ' items</div>';
}});
</script>"#
        ))
    };
    let srv = Server::start();
    srv.set("/app", app("v1"));
    for v in ["v1", "v2"] {
        srv.set(
            &format!("/api/{v}/items.json"),
            Page::html("[1, 2]").with_type("application/json"),
        );
    }
    let env = TestEnv::new().watchlist(&one_watch(
        "app",
        &srv.url("/app"),
        "browser = true\ntrack_requests = true\nwait_for = \"#toolbar\"\nselect = \"#toolbar\"",
    ));
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.events("baseline").len(), 1, "{}", first.stdout);
    let same = env.run(&["check", "--format", "json"]);
    assert_eq!(same.events("requests_changed").len(), 0, "{}", same.stdout);
    srv.set("/app", app("v2"));
    let run = env.run(&["check", "--format", "json"]);
    let moved = run.events("requests_changed");
    assert_eq!(moved.len(), 1, "{}", run.stdout);
    assert_eq!(
        moved[0]["removed"],
        serde_json::json!(["GET /api/v1/items.json?limit&page&token"])
    );
    assert_eq!(
        moved[0]["added"],
        serde_json::json!(["GET /api/v2/items.json?limit&page&token"])
    );
    assert_eq!(
        run.events("summary")[0]["changed"],
        1,
        "a change of the watch: {}",
        run.stdout
    );
    let text = env.run(&["report"]);
    text.says("REQUESTS CHANGED app");
}

/// `--browser-tabs` bounds the pages loaded at once in the browser.
#[test]
fn browser_tabs_bound_the_pages_loaded_at_once() {
    let _one = serial();
    for tabs in ["1", "3"] {
        let srv = Server::start();
        let mut toml = String::new();
        for i in 0..3 {
            srv.set(
                &format!("/p{i}"),
                Page::html("<p id=\"x\">page</p>").delay(std::time::Duration::from_millis(600)),
            );
            toml.push_str(&one_watch(
                &format!("w{i}"),
                &srv.url(&format!("/p{i}")),
                "browser = true",
            ));
        }
        let env = TestEnv::new().watchlist(&toml);
        let run = env.run(&["check", "--format", "json", "--browser-tabs", tabs]);
        assert_eq!(run.events("baseline").len(), 3, "{}", run.stdout);
        let most = srv.max_concurrent();
        match tabs {
            "1" => assert_eq!(most, 1, "one tab: one page at a time"),
            _ => assert!(most >= 2, "three tabs: pages at once ({most})"),
        }
    }
}

/// A tab is kept for the next page: what the page it held last does while the next one
/// loads is not the next one's (its script requests, its timers), and a URL that differs
/// from the kept page's only in its fragment is loaded afresh, not jumped to.
#[test]
fn a_kept_tab_does_not_mix_its_pages() {
    let _one = serial();
    let srv = Server::start();
    srv.set(
        "/poller",
        Page::html(
            r#"<div id="ready">polling</div><script>
setInterval(() => fetch('/api/poll', {cache: 'no-store'}), 5);
</script>"#,
        ),
    );
    srv.set("/api/poll", Page::html("{}").with_type("application/json"));
    srv.set("/app", Page::html(APP));
    srv.set("/config.json", config("send", "Send"));
    let toml = format!(
        "{}{}{}{}",
        one_watch(
            "a-poller",
            &srv.url("/poller"),
            "browser = true\nwait_for = \"#ready\""
        ),
        one_watch(
            "b-app",
            &srv.url("/app"),
            "browser = true\ntrack_requests = true\nwait_for = \"#toolbar\"\nselect = \"#toolbar\""
        ),
        one_watch(
            "c-poller",
            &srv.url("/poller"),
            "browser = true\nwait_for = \"#ready\""
        ),
        one_watch(
            "d-fragment",
            &format!("{}#top", srv.url("/poller")),
            "browser = true\nwait_for = \"#ready\""
        ),
    );
    let env = TestEnv::new().watchlist(&toml);
    let args = ["check", "--format", "json", "--browser-tabs", "1"];
    let first = env.run(&args);
    assert_eq!(first.events("baseline").len(), 4, "{}", first.stdout);
    for _ in 0..3 {
        let run = env.run(&args);
        assert_eq!(run.events("error").len(), 0, "{}", run.stdout);
        assert_eq!(run.events("requests_changed").len(), 0, "{}", run.stdout);
        let summary = &run.events("summary")[0];
        assert_eq!(summary["checked"], 4, "{}", run.stdout);
        assert_eq!(summary["changed"], 0, "{}", run.stdout);
        assert_eq!(summary["failed"], 0, "{}", run.stdout);
    }
    assert!(srv.seen("/api/poll").len() > 10, "the poller polled");
}
