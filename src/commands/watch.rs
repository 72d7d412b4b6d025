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

pub fn run(db: &Path, watchlists: &[PathBuf], args: WatchArgs) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let _lock = lock::acquire(db, "watch", Duration::ZERO)?;
    let store = Store::open(db)?;
    let log = Log {
        json: args.log_format == LogFormat::Json,
    };
    super::runtime()?.block_on(daemon(store, watchlists, config, &args, &log))
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
}

impl Sink for PassLog {
    fn check(
        &mut self,
        position: usize,
        o: &crate::judge::Outcome,
        events: &[crate::event::Event],
    ) {
        self.log.check(o);
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
    watchlists: &[PathBuf],
    mut config: Config,
    args: &WatchArgs,
    log: &Log,
) -> anyhow::Result<Exit> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut store = Some(store);
    let mut seen = stamps(watchlists, &config);
    // The list each pass is handed (with the positions of the due watches), shared, not copied.
    let mut all = std::sync::Arc::new(std::mem::take(&mut config.watches));
    log.line(
        "info",
        "forewarn watch started",
        json!({"watches": all.len(), "pid": std::process::id()}),
    );
    crate::notify::keep_desktop_actions(true);
    // Anything left queued by an earlier run (a crash, a failed delivery) goes out first.
    let mut outbox_due: Option<chrono::DateTime<Utc>> = Some(Utc::now());
    loop {
        if outbox_due.is_some_and(|t| t <= Utc::now()) {
            outbox_due = deliver(store.as_mut().expect("store is back"), &config, log).await;
        }
        let now = Utc::now();
        let mut due: Vec<u32> = Vec::new();
        let mut wake = now + chrono::Duration::from_std(POLL).unwrap_or_default();
        // Stored schedules a group of watches at a time: a large list never has them all in
        // memory at once.
        for (g, group) in all.chunks(super::SCHEDULE_GROUP).enumerate() {
            let states = super::schedules_of(store.as_ref(), group)?;
            for (i, w) in group.iter().enumerate() {
                let s = states.get(w.name());
                let at = w
                    .settings
                    .timing
                    .due(s.and_then(|s| s.0), s.map_or(0, |s| s.1));
                let at = if at == chrono::DateTime::<Utc>::MIN_UTC {
                    at
                } else {
                    at + chrono::Duration::from_std(w.settings.timing.jitter(w.name(), at))
                        .unwrap_or_default()
                };
                if at <= now {
                    due.push((g * super::SCHEDULE_GROUP + i) as u32);
                } else {
                    wake = wake.min(at);
                }
            }
        }
        if let Some(t) = outbox_due {
            wake = wake.min(t);
        }

        if !due.is_empty() {
            let limits = Limits {
                concurrency: args.concurrency as usize,
                per_host: args.per_host as usize,
                hosts: config.hosts.clone(),
                progress: false,
            };
            let sink = PassLog {
                log: *log,
                shown: Shown::default(),
            };
            let pass = pipeline::run_pass(
                all.clone(),
                Some(due),
                store.take().expect("store is back"),
                limits,
                sink,
            );
            tokio::pin!(pass);
            let stop = tokio::select! {
                r = &mut pass => {
                    finish(r, &mut store, &config).await?;
                    crate::release_memory();
                    outbox_due = Some(Utc::now());
                    None
                }
                _ = sigterm.recv() => Some("SIGTERM"),
                _ = sigint.recv() => Some("SIGINT"),
            };
            if let Some(sig) = stop {
                log.line(
                    "info",
                    "stopping: finishing the checks in flight",
                    json!({"signal": sig}),
                );
                match tokio::time::timeout(SHUTDOWN_WAIT, pass).await {
                    Ok(r) => {
                        finish(r, &mut store, &config).await?;
                        // What the last pass found goes out before we stop (briefly: what
                        // does not make it stays queued for the next start).
                        if let Some(s) = store.as_mut() {
                            let _ = tokio::time::timeout(
                                Duration::from_secs(10),
                                deliver(s, &config, log),
                            )
                            .await;
                        }
                    }
                    Err(_) => log.line(
                        "warn",
                        "gave up waiting for the checks in flight; their results are not stored and will be found again",
                        json!({"waited_s": SHUTDOWN_WAIT.as_secs()}),
                    ),
                }
                log.line("info", "forewarn watch stopped", json!({}));
                return Ok(Exit::Ok);
            }
            continue;
        }

        let sleep = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let mut reload = false;
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = sigterm.recv() => { log.line("info", "forewarn watch stopped", json!({"signal": "SIGTERM"})); return Ok(Exit::Ok); }
            _ = sigint.recv() => { log.line("info", "forewarn watch stopped", json!({"signal": "SIGINT"})); return Ok(Exit::Ok); }
            _ = sighup.recv() => { reload = true; }
        }
        let now_stamps = stamps(watchlists, &config);
        if reload || now_stamps != seen {
            match config::load(watchlists) {
                Ok(new) => {
                    log.line(
                        "info",
                        "watchlists reloaded",
                        json!({"watches": new.watches.len(), "trigger": if reload { "SIGHUP" } else { "edit" }}),
                    );
                    config = new;
                    all = std::sync::Arc::new(std::mem::take(&mut config.watches));
                }
                Err(e) => log.line(
                    "error",
                    "watchlists not reloaded: the previous configuration keeps running",
                    json!({"problems": e.to_string()}),
                ),
            }
            seen = stamps(watchlists, &config);
        }
    }
}

/// Sends what is due; returns when to come back for the rest.
async fn deliver(store: &mut Store, config: &Config, log: &Log) -> Option<chrono::DateTime<Utc>> {
    let d = super::notify::deliver_after_pass(store, config, Duration::from_secs(60)).await?;
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
    let (_, s, sink) = result?;
    super::due_gate::clear(&s);
    *store = Some(s);
    let shown = sink.shown.into_events();
    if !shown.is_empty() {
        let mut out = String::new();
        let text = report::Text { with_time: true };
        for e in &shown {
            text.event(e, &mut out);
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
    }
    if let Some(url) = &config.heartbeat_url {
        super::heartbeat(url).await;
    }
    Ok(())
}
