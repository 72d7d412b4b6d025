//! `forewarn list`: each watch's last check, last change, state and validators.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::json;

use crate::Exit;
use crate::cli::{CheckFormat, ListArgs};
use crate::event::rfc3339;
use crate::report::ago;
use crate::store::{Store, WatchState};

pub fn run(db: &Path, watchlists: &[PathBuf], args: ListArgs) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let (states, notified) = match Store::open_read_only(db)? {
        Some(s) => (s.load_states()?, s.outbox_by_watch()?),
        None => Default::default(),
    };
    let now = crate::schedule::now();
    let mut rows = Vec::new();
    let mut json_lines = String::new();
    for w in &config.watches {
        let s = states.get(&w.name);
        if args.format == CheckFormat::Json {
            let mut v = watch_json(&w.name, &w.url.display(), s);
            if let Some(n) = notified.get(&w.name) {
                v["notifications"] = json!({
                    "delivered": n.delivered, "pending": n.pending, "failed": n.failed,
                    "last_delivered": n.last_delivered_at.map(rfc3339),
                    "last_error": n.last_error,
                });
            }
            json_lines.push_str(&v.to_string());
            json_lines.push('\n');
            continue;
        }
        let t = |v: Option<chrono::DateTime<Utc>>| v.map_or("never".into(), |t| ago(t, now));
        rows.push([
            w.name.clone(),
            state_text(s, now),
            t(s.and_then(|s| s.last_check_at)),
            t(s.and_then(|s| s.last_change_at)),
            s.and_then(|s| s.last_duration_ms)
                .map_or("-".into(), |d| format!("{d} ms")),
            validators(s).to_string(),
            notified.get(&w.name).map_or("-".into(), notified_text),
            w.url.display(),
        ]);
    }
    if args.format == CheckFormat::Json {
        print!("{json_lines}");
        return Ok(Exit::Ok);
    }
    let out = super::table(
        &[
            "NAME",
            "STATE",
            "LAST CHECK",
            "LAST CHANGE",
            "RESPONSE",
            "VALIDATORS",
            "NOTIFIED",
            "URL",
        ],
        &rows,
    );
    print!("{out}");
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
