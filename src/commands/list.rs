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
use crate::store::{Store, WatchState};

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
    // Each group's stored states, in watchlist order.
    let groups = || {
        config.watches.chunks(GROUP).map(|group| {
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
        stdout.flush()?;
        return Ok(Exit::Ok);
    }
    // A table: one round over the groups measures the columns, a second prints the rows.
    let row = |w: &Watch, s: Option<&WatchState>| -> [String; 8] {
        let t = |v: Option<chrono::DateTime<Utc>>| v.map_or("never".into(), |t| ago(t, now));
        [
            w.name().to_string(),
            state_text(s, now),
            t(s.and_then(|s| s.last_check_at)),
            t(s.and_then(|s| s.last_change_at)),
            s.and_then(|s| s.last_duration_ms)
                .map_or("-".into(), |d| format!("{d} ms")),
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
    stdout.flush()?;
    Ok(Exit::Ok)
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

fn state_text(s: Option<&WatchState>, now: chrono::DateTime<Utc>) -> String {
    let Some(s) = s else {
        return "new (never checked)".into();
    };
    if s.consecutive_failures > 0 {
        return format!(
            "failing since {} ({}x): {}",
            s.failing_since.map_or("?".into(), |t| ago(t, now)),
            s.consecutive_failures,
            s.last_error.as_deref().unwrap_or("unknown error")
        );
    }
    if let Some(m) = &s.missing_selectors {
        return format!(
            "selector {} missing since {}",
            m.join(", "),
            s.missing_since.map_or("?".into(), |t| ago(t, now))
        );
    }
    if s.content_hash.is_none() {
        return "new (no baseline yet)".into();
    }
    "ok".into()
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
        "state": match s {
            None => "new",
            Some(s) if s.consecutive_failures > 0 => "failing",
            Some(s) if s.missing_selectors.is_some() => "selector_missing",
            Some(s) if s.content_hash.is_none() => "new",
            Some(_) => "ok",
        },
        "last_check": t(s.and_then(|s| s.last_check_at)),
        "last_change": t(s.and_then(|s| s.last_change_at)),
        "last_status": s.and_then(|s| s.last_status),
        "response_ms": s.and_then(|s| s.last_duration_ms),
        "consecutive_failures": s.map_or(0, |s| s.consecutive_failures),
        "failing_since": t(s.and_then(|s| s.failing_since)),
        "last_error": s.and_then(|s| s.last_error.clone()),
        "missing_selectors": s.and_then(|s| s.missing_selectors.clone()),
        "validators": validators(s),
    })
}
