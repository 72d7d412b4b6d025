//! `forewarn list`: each watch's last check, last change, state and validators.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::json;

use crate::Exit;
use crate::cli::{CheckFormat, ListArgs};
use crate::config::Watch;
use crate::event::rfc3339;
use crate::report::ago;
use crate::store::{Store, WatchState, WorkerRow};

/// Watches whose stored states are read at once: `list` over 100,000 watches holds one group.
const GROUP: usize = 1024;

const HEADER: [&str; 8] = [
    "NAME",
    "STATE",
    "LAST CHECK",
    "LAST CHANGE",
    "RESPONSE",
    "VALIDATORS",
    "NOTIFIED",
    "URL",
];

pub fn run(db: &Path, watchlists: &[PathBuf], args: ListArgs) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let store = Store::open_read_only(db)?;
    let notified = match &store {
        Some(s) => s.outbox_by_watch()?,
        None => HashMap::new(),
    };
    // Response times of the last day: median and 95th percentile.
    let day = crate::schedule::sub(
        crate::schedule::now(),
        std::time::Duration::from_secs(86_400),
    );
    let times = match &store {
        Some(s) => s.response_times(day)?,
        None => HashMap::new(),
    };
    // Each group's stored states, in watchlist order; the disabled watches last.
    let all: Vec<&Watch> = config.watches.iter().chain(&config.disabled).collect();
    let disabled = |w: &Watch| {
        config
            .disabled
            .as_ptr_range()
            .contains(&std::ptr::from_ref(w))
    };
    let groups = || {
        all.chunks(GROUP).map(|group| {
            let states = match &store {
                Some(s) => {
                    let names: Vec<&str> = group.iter().map(|w| w.name()).collect();
                    s.load_states_of(&names)?
                }
                None => HashMap::new(),
            };
            Ok::<_, anyhow::Error>((group, states))
        })
    };
    let now = crate::schedule::now();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if args.format == CheckFormat::Json {
        for g in groups() {
            let (group, states) = g?;
            for w in group {
                let mut v = watch_json(w.name(), &w.url_display(), states.get(w.name()));
                if let Some((p50, p95, n)) = times.get(w.name()) {
                    v["response_p50_ms"] = json!(p50);
                    v["response_p95_ms"] = json!(p95);
                    v["responses_24h"] = json!(n);
                }
                if disabled(w) {
                    v["state"] = json!("disabled");
                }
                if let Some(n) = notified.get(w.name()) {
                    v["notifications"] = json!({
                        "delivered": n.delivered, "pending": n.pending, "failed": n.failed,
                        "last_delivered": n.last_delivered_at.map(rfc3339),
                        "last_error": n.last_error,
                    });
                }
                writeln!(stdout, "{v}")?;
            }
        }
        for w in workers(store.as_ref())? {
            writeln!(stdout, "{}", worker_json(&w, now))?;
        }
        stdout.flush()?;
        return Ok(Exit::Ok);
    }
    // A table: one round over the groups measures the columns, a second prints the rows.
    let row = |w: &Watch, s: Option<&WatchState>| -> [String; 8] {
        let t = |v: Option<chrono::DateTime<Utc>>| v.map_or("never".into(), |t| ago(t, now));
        [
            w.name().to_string(),
            if disabled(w) {
                "disabled (enabled = false)".into()
            } else {
                State::of(s).text(now, args.long)
            },
            t(s.and_then(|s| s.last_check_at)),
            t(s.and_then(|s| s.last_change_at)),
            response_text(s.and_then(|s| s.last_duration_ms), times.get(w.name())),
            validators(s).to_string(),
            notified.get(w.name()).map_or("-".into(), notified_text),
            w.url_display(),
        ]
    };
    let mut widths = HEADER.map(|h| h.chars().count());
    for g in groups() {
        let (group, states) = g?;
        for w in group {
            super::widen(&mut widths, &row(w, states.get(w.name())));
        }
    }
    let mut line = String::new();
    super::table_line(&HEADER.map(String::from), &widths, &mut line);
    stdout.write_all(line.as_bytes())?;
    for g in groups() {
        let (group, states) = g?;
        for w in group {
            line.clear();
            super::table_line(&row(w, states.get(w.name())), &widths, &mut line);
            stdout.write_all(line.as_bytes())?;
        }
    }
    let workers = workers(store.as_ref())?;
    if !workers.is_empty() {
        stdout.write_all(workers_table(&workers, now).as_bytes())?;
    }
    stdout.flush()?;
    Ok(Exit::Ok)
}

const WORKER_HEADER: [&str; 7] = [
    "WORKER HOST",
    "PID",
    "COMMAND",
    "WATCHLIST",
    "WATCHES",
    "LAST SEEN",
    "STATE",
];

/// The workers a shared database records (none on SQLite).
fn workers(store: Option<&Store>) -> anyhow::Result<Vec<WorkerRow>> {
    Ok(match store {
        Some(s) => s.workers()?,
        None => Vec::new(),
    })
}

/// "live", "stopped", or "gone" (its heartbeat not seen for 10 s: killed, or its host is
/// down).
fn worker_state(w: &WorkerRow, now: chrono::DateTime<Utc>) -> &'static str {
    if w.stopped_at.is_some() {
        "stopped"
    } else if (now - w.last_seen).num_milliseconds() < crate::store::lease::GONE_AFTER_MS {
        "live"
    } else {
        "gone"
    }
}

fn workers_table(workers: &[WorkerRow], now: chrono::DateTime<Utc>) -> String {
    let rows: Vec<[String; 7]> = workers
        .iter()
        .map(|w| {
            [
                w.host.clone(),
                w.pid.to_string(),
                w.command.clone(),
                w.watchlist.clone(),
                w.watches.to_string(),
                ago(w.last_seen, now),
                worker_state(w, now).to_string(),
            ]
        })
        .collect();
    let mut widths = WORKER_HEADER.map(|h| h.chars().count());
    for r in &rows {
        super::widen(&mut widths, r);
    }
    let mut out = String::from("\n");
    super::table_line(&WORKER_HEADER.map(String::from), &widths, &mut out);
    for r in &rows {
        super::table_line(r, &widths, &mut out);
    }
    out
}

fn worker_json(w: &WorkerRow, now: chrono::DateTime<Utc>) -> serde_json::Value {
    json!({
        "worker": w.id,
        "host": w.host,
        "pid": w.pid,
        "command": w.command,
        "watchlist": w.watchlist,
        "watches": w.watches,
        "started": rfc3339(w.started_at),
        "last_seen": rfc3339(w.last_seen),
        "state": worker_state(w, now),
    })
}

/// "120 ms (p50 95, p95 210)": the last answer, and the day's median and 95th percentile
/// once there are a few.
fn response_text(last: Option<u64>, day: Option<&(u64, u64, usize)>) -> String {
    let Some(last) = last else {
        return "-".into();
    };
    match day {
        Some((p50, p95, n)) if *n >= 3 => format!("{last} ms (p50 {p50}, p95 {p95})"),
        _ => format!("{last} ms"),
    }
}

/// "3 sent, 1 pending, 1 failed".
fn notified_text(n: &crate::store::OutboxStats) -> String {
    let mut parts = Vec::new();
    if n.delivered > 0 {
        parts.push(format!("{} sent", n.delivered));
    }
    if n.pending > 0 {
        parts.push(format!("{} pending", n.pending));
    }
    if n.failed > 0 {
        parts.push(format!("{} failed", n.failed));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// What `list` says a watch's state is, worst first: failing, a selector gone, a contract
/// broken, volatile, new, ok. These last until they clear.
enum State<'a> {
    New { checked: bool },
    Failing(&'a WatchState),
    SelectorMissing(&'a [String], &'a WatchState),
    ContractBroken(Vec<&'a str>),
    VerifyFailed(&'a (chrono::DateTime<Utc>, String)),
    Volatile(chrono::DateTime<Utc>),
    Ok,
}

impl<'a> State<'a> {
    fn of(s: Option<&'a WatchState>) -> State<'a> {
        let Some(s) = s else {
            return State::New { checked: false };
        };
        if s.consecutive_failures > 0 {
            return State::Failing(s);
        }
        if let Some(m) = &s.missing_selectors {
            return State::SelectorMissing(m, s);
        }
        let broken: Vec<&str> = s
            .contracts
            .iter()
            .filter(|(_, c)| !c.ok)
            .map(|(label, _)| label.as_str())
            .collect();
        if !broken.is_empty() {
            return State::ContractBroken(broken);
        }
        if let Some(v) = &s.verify_failed {
            return State::VerifyFailed(v);
        }
        if let Some(since) = s.volatile_since {
            return State::Volatile(since);
        }
        if s.content_hash.is_none() {
            return State::New { checked: true };
        }
        State::Ok
    }

    /// The JSON form's word.
    fn word(&self) -> &'static str {
        match self {
            State::New { .. } => "new",
            State::Failing(_) => "failing",
            State::SelectorMissing(..) => "selector_missing",
            State::ContractBroken(_) => "contract_broken",
            State::VerifyFailed(_) => "verify_failed",
            State::Volatile(_) => "volatile",
            State::Ok => "ok",
        }
    }

    /// The table's words; a long error is cut unless `long`.
    fn text(&self, now: chrono::DateTime<Utc>, long: bool) -> String {
        match self {
            State::New { checked: false } => "new (never checked)".into(),
            State::New { checked: true } => "new (no baseline yet)".into(),
            State::Failing(s) => {
                let error = s.last_error.as_deref().unwrap_or("unknown error");
                format!(
                    "failing since {} ({}x): {}",
                    s.failing_since.map_or("?".into(), |t| ago(t, now)),
                    s.consecutive_failures,
                    if long { error.to_string() } else { cut(error) }
                )
            }
            State::SelectorMissing(m, s) => format!(
                "selector {} missing since {}",
                m.join(", "),
                s.missing_since.map_or("?".into(), |t| ago(t, now))
            ),
            State::ContractBroken(labels) => format!("contract broken: {}", labels.join(", ")),
            State::VerifyFailed((at, what)) => format!("{what} ({})", ago(*at, now)),
            State::Volatile(since) => format!(
                "volatile since {}: select or remove the moving part",
                ago(*since, now)
            ),
            State::Ok => "ok".into(),
        }
    }
}

/// At most this many characters of an error in the table (`--long` shows it whole).
const ERROR_CHARS: usize = 60;

fn cut(error: &str) -> String {
    if error.chars().count() <= ERROR_CHARS {
        return error.to_string();
    }
    let head: String = error.chars().take(ERROR_CHARS).collect();
    format!("{}... (list --long)", head.trim_end())
}

fn validators(s: Option<&WatchState>) -> &'static str {
    match s {
        None => "-",
        Some(s) if s.last_ok_at.is_none() => "-",
        Some(s) => match (s.etag.is_some(), s.last_modified.is_some()) {
            (true, true) => "ETag, Last-Modified",
            (true, false) => "ETag",
            (false, true) => "Last-Modified",
            (false, false) => "hash only",
        },
    }
}

fn watch_json(name: &str, url: &str, s: Option<&WatchState>) -> serde_json::Value {
    let t = |v: Option<chrono::DateTime<Utc>>| v.map(rfc3339);
    json!({
        "watch": name,
        "url": url,
        "state": State::of(s).word(),
        "broken_expectations": match State::of(s) {
            State::ContractBroken(labels) => json!(labels),
            _ => json!([]),
        },
        "last_check": t(s.and_then(|s| s.last_check_at)),
        "last_change": t(s.and_then(|s| s.last_change_at)),
        "last_status": s.and_then(|s| s.last_status),
        "response_ms": s.and_then(|s| s.last_duration_ms),
        "consecutive_failures": s.map_or(0, |s| s.consecutive_failures),
        "failing_since": t(s.and_then(|s| s.failing_since)),
        "last_error": s.and_then(|s| s.last_error.clone()),
        "missing_selectors": s.and_then(|s| s.missing_selectors.clone()),
        "verify_failure": s.and_then(|s| s.verify_failed.as_ref().map(|v| v.1.clone())),
        "validators": validators(s),
    })
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn long_errors_are_cut_in_the_table() {
        assert_eq!(cut("HTTP 404 Not Found"), "HTTP 404 Not Found");
        let long = "HTTP 404 Not Found: the page is gone; the vendor may have moved it: update the watch's URL";
        let shown = cut(long);
        assert!(shown.len() < long.len(), "{shown}");
        assert!(shown.ends_with("... (list --long)"), "{shown}");
    }
}
