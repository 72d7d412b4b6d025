//! `forewarn watch`: the scheduler. Runs every watch on its own schedule until stopped.
//!
//! A loop that never spins: it computes each watch's next fire time (plus a deterministic
//! jitter), sleeps until the earliest inside `select!` beside the signals, checks what is due
//! in one pass, and repeats. A watch in a pass is never started again before the pass ends;
//! fire times missed while the machine slept run once. Watchlist edits are picked up (the
//! files are polled, and SIGHUP reloads at once); an invalid edit is reported and the previous
//! configuration keeps running. SIGINT / SIGTERM let the pass in flight finish its checks and
//! writes (bounded), then exit 0.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use super::metrics::Metrics;
use super::worker::Worker;
use crate::Exit;
use crate::cli::{LogFormat, WatchArgs};
use crate::config::{self, Config};
use crate::event::rfc3339;
use crate::pipeline::{self, Limits, PassReport, Shown, Sink};
use crate::report::{self, Format};
use crate::store::{Store, lock};

/// How often the watchlist files are looked at for edits.
const POLL: Duration = Duration::from_secs(2);
/// How long a stop waits for the pass in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);
/// How long an idle moment re-encodes snapshots at most (a signal waits that long).
const COMPACT_FOR: Duration = Duration::from_secs(1);

pub fn run(db: &Path, watchlists: &[PathBuf], args: WatchArgs) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let _lock = lock::acquire(db, "watch", Duration::ZERO)?;
    let store = Store::open(db)?;
    let log = Log {
        json: args.log_format == LogFormat::Json,
    };
    let worker = join_workers(&store, &config, &log)?;
    super::runtime()?.block_on(daemon(store, worker, watchlists, config, &args, &log))
}

/// On a shared database, this daemon is one of its workers: registered, and warned when its
/// watchlist differs from the others'.
fn join_workers(store: &Store, config: &Config, log: &Log) -> anyhow::Result<Option<Worker>> {
    let Some((worker, warning)) = Worker::join(store, "watch", config)? else {
        return Ok(None);
    };
    log.line(
        "info",
        "joined the workers on this database",
        json!({"worker": worker.id, "live_workers": worker.live()}),
    );
    if let Some(w) = warning {
        log.line("warn", &w, json!({}));
    }
    Ok(Some(worker))
}

#[derive(Debug, Clone, Copy)]
struct Log {
    json: bool,
}

impl Log {
    fn line(&self, level: &str, message: &str, fields: serde_json::Value) {
        let now = rfc3339(Utc::now());
        let text = if self.json {
            let mut obj = json!({"at": now, "level": level, "message": message});
            if let (Some(o), Some(f)) = (obj.as_object_mut(), fields.as_object()) {
                for (k, v) in f {
                    o.insert(k.clone(), v.clone());
                }
            }
            obj.to_string()
        } else {
            let mut s = format!("{now} {:<5} {message}", level.to_uppercase());
            if let Some(f) = fields.as_object() {
                for (k, v) in f {
                    match v {
                        serde_json::Value::Null => {}
                        serde_json::Value::String(t) => s.push_str(&format!(" {k}={t:?}")),
                        other => s.push_str(&format!(" {k}={other}")),
                    }
                }
            }
            s
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }

    /// One line per check: watch, outcome, status, time taken.
    fn check(&self, o: &crate::judge::Outcome) {
        let (outcome, error) = pipeline::check_outcome(o);
        let level = if error.is_some() { "warn" } else { "info" };
        if self.json {
            self.line(
                level,
                "check",
                json!({
                    "watch": o.name,
                    "outcome": outcome,
                    "status": o.status,
                    "duration_ms": o.duration_ms,
                    "error": error,
                }),
            );
        } else {
            let status = o.status.map(|s| format!("HTTP {s}, ")).unwrap_or_default();
            let error = error.map(|e| format!(": {e}")).unwrap_or_default();
            self.line(
                level,
                &format!(
                    "{}: {outcome} ({status}{} ms){error}",
                    o.name, o.duration_ms
                ),
                json!({}),
            );
        }
    }
}

/// A daemon pass: a log line per check as it is committed; the changes, in watchlist order,
/// when the pass ends.
struct PassLog {
    log: Log,
    shown: Shown,
    metrics: Option<std::sync::Arc<Metrics>>,
}

impl Sink for PassLog {
    fn check(
        &mut self,
        position: usize,
        o: &crate::judge::Outcome,
        events: &[crate::event::Event],
    ) {
        self.log.check(o);
        if let Some(m) = &self.metrics {
            m.check(o);
        }
        self.shown.check(position, o, events);
    }
}

/// The files and folders whose modification times say "the watchlists were edited".
fn stamps(roots: &[PathBuf], config: &Config) -> Vec<(PathBuf, Option<SystemTime>)> {
    let roots = if roots.is_empty() {
        vec![config::default_watchlist_dir()]
    } else {
        roots.to_vec()
    };
    roots
        .iter()
        .chain(&config.files)
        .map(|p| {
            let t = std::fs::metadata(p).and_then(|m| m.modified()).ok();
            (p.clone(), t)
        })
        .collect()
}

async fn daemon(
    store: Store,
    worker: Option<Worker>,
    watchlists: &[PathBuf],
    mut config: Config,
    args: &WatchArgs,
    log: &Log,
) -> anyhow::Result<Exit> {
    let mut d = Daemon {
        signals: Signals::new()?,
        store: Some(store),
        seen: stamps(watchlists, &config),
        // The list each pass is handed (with the positions of the due watches), shared, not
        // copied.
        all: std::sync::Arc::new(std::mem::take(&mut config.watches)),
        config,
        watchlists,
        args,
        log: *log,
        // Anything left queued by an earlier run (a crash, a failed delivery) goes out first.
        outbox_due: Some(Utc::now()),
        browser: None,
        worker,
        metrics: None,
        compacted_to: 0,
    };
    if let Some(addr) = args.metrics {
        let m = Metrics::new();
        let bound = super::metrics::serve(addr, m.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
        log.line(
            "info",
            "serving metrics",
            json!({"metrics": format!("http://{bound}/metrics"), "healthz": format!("http://{bound}/healthz")}),
        );
        d.metrics = Some(m);
    }
    log.line(
        "info",
        "forewarn watch started",
        json!({"watches": d.all.len(), "pid": std::process::id()}),
    );
    crate::notify::keep_desktop_actions(true);
    loop {
        if let Some(m) = &d.metrics {
            m.tick();
        }
        if d.outbox_due.is_some_and(|t| t <= Utc::now()) {
            let store = d.store.as_mut().expect("store is back");
            d.outbox_due = deliver(store, &d.config, log, d.metrics.as_deref()).await;
        }
        let (due, wake) = d.due(Utc::now())?;
        let due = d.claim(due)?;
        let stop = if due.is_empty() {
            d.idle(wake).await
        } else {
            d.pass(due).await?
        };
        if let Some(exit) = stop {
            if let (Some(w), Some(s)) = (d.worker.take(), d.store.as_ref()) {
                w.leave(s);
            }
            return Ok(exit);
        }
    }
}

/// A due watch: its position in the list, and the last check its due time came from.
type Due = (u32, Option<chrono::DateTime<Utc>>);

/// The signals that stop the daemon (TERM, INT) or reload its watchlists (HUP).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next stop signal's name.
    async fn stop(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// The next signal's name, SIGHUP included.
    async fn any(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// The scheduler's state between passes.
struct Daemon<'a> {
    signals: Signals,
    /// Lent to each pass, and back when it ends.
    store: Option<Store>,
    config: Config,
    all: std::sync::Arc<Vec<config::Watch>>,
    /// The watchlists' modification times at the last load.
    seen: Vec<(PathBuf, Option<SystemTime>)>,
    watchlists: &'a [PathBuf],
    args: &'a WatchArgs,
    log: Log,
    outbox_due: Option<chrono::DateTime<Utc>>,
    /// On a shared database: this daemon as one of its workers.
    worker: Option<Worker>,
    /// `--metrics`: what `/metrics` and `/healthz` report.
    metrics: Option<std::sync::Arc<Metrics>>,
    /// The last snapshot id looked at for re-encoding between passes.
    compacted_to: i64,
    /// One browser for the daemon's life (started by the first browser watch), replaced
    /// when a reload changes `[browser]`.
    browser: Option<(
        config::BrowserSettings,
        std::sync::Arc<crate::fetch::browser::Browser>,
    )>,
}

impl Daemon<'_> {
    /// The daemon's browser, for `[browser]` as the watchlists say now.
    fn browser(&mut self) -> std::sync::Arc<crate::fetch::browser::Browser> {
        let settings = self.config.browser.clone().unwrap_or_default();
        match &self.browser {
            Some((s, b)) if *s == settings => b.clone(),
            _ => {
                let db = self.store.as_ref().expect("store is back").path();
                let b = std::sync::Arc::new(crate::fetch::browser::Browser::new(
                    self.args.browser_tabs as usize,
                    Some(pipeline::sessions_dir(db)),
                    settings.clone(),
                ));
                self.browser = Some((settings, b.clone()));
                b
            }
        }
    }

    /// The positions of the watches due at `now`, and when the next one (or the outbox, or
    /// the next look at the watchlists) is. Stored schedules are read a group of watches at
    /// a time: a large list never has them all in memory at once.
    fn due(&self, now: chrono::DateTime<Utc>) -> anyhow::Result<(Vec<Due>, chrono::DateTime<Utc>)> {
        let mut due: Vec<Due> = Vec::new();
        let mut wake = crate::schedule::add(now, POLL);
        for (g, group) in self.all.chunks(super::SCHEDULE_GROUP).enumerate() {
            let states = super::schedules_of(self.store.as_ref(), group)?;
            for (i, w) in group.iter().enumerate() {
                let s = states.get(w.name());
                let timing = &w.settings.timing;
                let at = timing.due(s.and_then(|s| s.0), s.map_or(0, |s| s.1));
                let at = if at == chrono::DateTime::<Utc>::MIN_UTC {
                    at
                } else {
                    crate::schedule::add(at, timing.jitter(w.name(), at))
                };
                if at <= now {
                    due.push(((g * super::SCHEDULE_GROUP + i) as u32, s.and_then(|s| s.0)));
                } else {
                    wake = wake.min(at);
                }
            }
        }
        if let Some(t) = self.outbox_due {
            wake = wake.min(t);
        }
        Ok((due, wake))
    }

    /// The due watches this daemon checks: all of them, or on a shared database the share
    /// it could claim (the others are another worker's, or being checked by one).
    fn claim(&mut self, due: Vec<Due>) -> anyhow::Result<Vec<u32>> {
        let (Some(worker), Some(store)) = (self.worker.as_ref(), self.store.as_mut()) else {
            return Ok(due.into_iter().map(|(i, _)| i).collect());
        };
        if due.is_empty() {
            return Ok(Vec::new());
        }
        worker.claim(store, &self.all, &due)
    }

    /// Checks the due watches in one pass. A stop signal lets the pass in flight finish
    /// (bounded), then stops the daemon.
    async fn pass(&mut self, due: Vec<u32>) -> anyhow::Result<Option<Exit>> {
        let limits = Limits {
            concurrency: self.args.concurrency as usize,
            per_host: self.args.per_host as usize,
            hosts: self.config.hosts.clone(),
            progress: false,
            browser_tabs: self.args.browser_tabs as usize,
            browser: self.config.browser.clone().unwrap_or_default(),
            shared_browser: Some(self.browser()),
        };
        let mut limits = limits;
        if let Some(w) = &self.worker {
            w.share(&mut limits);
        }
        let sink = PassLog {
            log: self.log,
            shown: Shown::default(),
            metrics: self.metrics.clone(),
        };
        let store = self.store.take().expect("store is back");
        let pass = pipeline::run_pass(self.all.clone(), Some(due), store, limits, sink);
        tokio::pin!(pass);
        let sig = tokio::select! {
            r = &mut pass => {
                finish(r, &mut self.store, &self.config).await?;
                crate::release_memory();
                self.outbox_due = Some(Utc::now());
                return Ok(None);
            }
            sig = self.signals.stop() => sig,
        };
        let log = self.log;
        log.line(
            "info",
            "stopping: finishing the checks in flight",
            json!({"signal": sig}),
        );
        match tokio::time::timeout(SHUTDOWN_WAIT, pass).await {
            Ok(r) => {
                finish(r, &mut self.store, &self.config).await?;
                // What the last pass found goes out before we stop (briefly: what does not
                // make it stays queued for the next start).
                if let Some(s) = self.store.as_mut() {
                    let sending = deliver(s, &self.config, &log, self.metrics.as_deref());
                    let _ = tokio::time::timeout(Duration::from_secs(10), sending).await;
                }
            }
            Err(_) => log.line(
                "warn",
                "gave up waiting for the checks in flight; their results are not stored and will be found again",
                json!({"waited_s": SHUTDOWN_WAIT.as_secs()}),
            ),
        }
        log.line("info", "forewarn watch stopped", json!({}));
        Ok(Some(Exit::Ok))
    }

    /// Sleeps until `wake` or a signal; reloads the watchlists on SIGHUP or an edit.
    async fn idle(&mut self, wake: chrono::DateTime<Utc>) -> Option<Exit> {
        self.compact(wake);
        let sleep = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let reload = tokio::select! {
            _ = tokio::time::sleep(sleep) => false,
            sig = self.signals.any() => match sig {
                "SIGHUP" => true,
                _ => {
                    self.log.line("info", "forewarn watch stopped", json!({"signal": sig}));
                    return Some(Exit::Ok);
                }
            },
        };
        if reload || stamps(self.watchlists, &self.config) != self.seen {
            self.reload(if reload { "SIGHUP" } else { "edit" });
        }
        None
    }

    /// Re-encodes with zstd what the checks stored with lz4 (as `forewarn gc` does), for at
    /// most [`COMPACT_FOR`] and never into the time of the next pass; a signal waits in its
    /// queue meanwhile. A failure is logged: the snapshots read as they are.
    fn compact(&mut self, wake: chrono::DateTime<Utc>) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let left = (wake - Utc::now()).to_std().unwrap_or_default();
        let budget = left
            .saturating_sub(Duration::from_millis(100))
            .min(COMPACT_FOR);
        if budget.is_zero() {
            return;
        }
        let until = std::time::Instant::now() + budget;
        let after = self.compacted_to;
        match tokio::task::block_in_place(|| store.compact_snapshots(after, Some(until))) {
            Ok((_, last)) => self.compacted_to = last,
            Err(e) => {
                // Not tried again until a restart (a warning every idle moment is noise).
                self.compacted_to = i64::MAX;
                self.log.line(
                    "warn",
                    "snapshots were not re-encoded; `forewarn gc` does it too",
                    json!({"error": e.to_string()}),
                );
            }
        }
    }

    /// Loads the watchlists again; an invalid edit is reported and the previous
    /// configuration keeps running.
    fn reload(&mut self, trigger: &str) {
        match config::load(self.watchlists) {
            Ok(new) => {
                self.log.line(
                    "info",
                    "watchlists reloaded",
                    json!({"watches": new.watches.len(), "trigger": trigger}),
                );
                self.config = new;
                if let (Some(w), Some(s)) = (self.worker.as_mut(), self.store.as_ref()) {
                    match w.rejoin(s, &self.config) {
                        Ok(Some(warning)) => self.log.line("warn", &warning, json!({})),
                        Ok(None) => {}
                        Err(e) => self.log.line("warn", &format!("{e:#}"), json!({})),
                    }
                }
                self.all = std::sync::Arc::new(std::mem::take(&mut self.config.watches));
            }
            Err(e) => {
                // Each problem, without the "nothing was fetched" a one-off run ends with:
                // the daemon goes on with the configuration it has.
                let problems: Vec<String> = e.0.iter().map(ToString::to_string).collect();
                self.log.line(
                    "error",
                    "watchlists not reloaded: the previous configuration keeps running; fix the problems and save again",
                    json!({"problems": problems.join("\n")}),
                )
            }
        }
        self.seen = stamps(self.watchlists, &self.config);
    }
}

/// Sends what is due; returns when to come back for the rest.
async fn deliver(
    store: &mut Store,
    config: &Config,
    log: &Log,
    metrics: Option<&Metrics>,
) -> Option<chrono::DateTime<Utc>> {
    let d = super::notify::deliver_after_pass(store, config, Duration::from_secs(60)).await;
    if let Some(m) = metrics {
        if let Ok(n) = store.outbox_count_pending() {
            m.outbox(n);
        }
        for (channel, _) in d.iter().flat_map(|d| &d.failures) {
            m.notification_failed(channel);
        }
    }
    let d = d?;
    for (channel, n) in &d.sent {
        log.line("info", "notified", json!({"channel": channel, "events": n}));
    }
    for (channel, err) in &d.failures {
        log.line(
            "warn",
            "notification failed; it stays queued and is retried",
            json!({"channel": channel, "error": err}),
        );
    }
    if d.given_up > 0 {
        log.line(
            "error",
            "notifications given up after repeated failures (`forewarn notify retry` queues them again)",
            json!({"count": d.given_up}),
        );
    }
    d.next_due
}

/// After a pass: the store back, its changes on stdout (each check was logged as it was
/// committed), the heartbeat.
async fn finish(
    result: anyhow::Result<(PassReport, Store, PassLog)>,
    store: &mut Option<Store>,
    config: &Config,
) -> anyhow::Result<()> {
    let (pass, mut s, sink) = result?;
    s.hold(None);
    super::due_gate::clear(&s);
    *store = Some(s);
    for v in &pass.verified {
        let level = if v.passed() { "info" } else { "warn" };
        let message = format!("{}: {}", v.watch, crate::event::verify_line(&v.verdict));
        sink.log.line(
            level,
            &message,
            json!({"watch": v.watch, "events": v.events, "verify": v.verdict}),
        );
    }
    let shown = sink.shown.into_events();
    if !shown.is_empty() {
        let mut out = String::new();
        let text = report::Text { with_time: true };
        for e in &shown {
            text.event(e, &mut out);
        }
        let out = report::color::for_stdout(out);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
    }
    if let Some(url) = &config.heartbeat_url {
        super::heartbeat(url).await;
    }
    Ok(())
}
