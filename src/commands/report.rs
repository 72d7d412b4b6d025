//! `forewarn report [NAME]`: past changes read back from the database.

use std::path::{Path, PathBuf};

use crate::Exit;
use crate::cli::{ReportArgs, ReportFormat};
use crate::event::EventKind;
use crate::report::{self, Format};
use crate::store::{EventFilter, Store};

/// What `report` shows unless `--all` is given.
const NOTABLE: &[EventKind] = &[
    EventKind::Changed,
    EventKind::NewEntry,
    EventKind::EntryUpdated,
    EventKind::NewVersion,
    EventKind::ContractBroken,
    EventKind::DeployDetected,
    EventKind::RequestsChanged,
    EventKind::SchemaChanged,
    EventKind::ContractRestored,
    EventKind::Error,
    EventKind::Blocked,
    EventKind::SelectorMissing,
    EventKind::SelectorRestored,
    EventKind::Volatile,
    EventKind::Recovered,
    EventKind::Failing,
];

/// Adds each event's notifications (channel, state, attempts, when, last error) as its
/// `notifications` detail, so every format can show what was delivered, pending or failed.
pub(super) fn attach_deliveries(
    store: &Store,
    events: &mut [crate::event::Event],
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let mut by_event: std::collections::HashMap<i64, Vec<serde_json::Value>> =
        std::collections::HashMap::new();
    for d in store.deliveries(Some(since))? {
        by_event
            .entry(d.event_id)
            .or_default()
            .push(serde_json::json!({
                "channel": d.channel,
                "state": d.state,
                "attempts": d.attempts,
                "delivered_at": d.delivered_at.map(crate::event::rfc3339),
                "last_error": d.last_error,
            }));
    }
    for e in events {
        if let Some(list) = e.id.and_then(|id| by_event.remove(&id)) {
            e.detail
                .insert("notifications".into(), serde_json::Value::Array(list));
        }
    }
    Ok(())
}

/// The screenshots kept with the events' snapshots (browser watches with `screenshot = true`),
/// by snapshot id, for the HTML report.
fn screenshots(
    store: &Store,
    events: &[crate::event::Event],
) -> anyhow::Result<std::collections::HashMap<i64, Vec<u8>>> {
    let mut shots = std::collections::HashMap::new();
    for id in events
        .iter()
        .filter_map(|e| e.detail.get("snapshot").and_then(|v| v.as_i64()))
    {
        if !shots.contains_key(&id)
            && let Some(png) = store.screenshot(id)?
        {
            shots.insert(id, png);
        }
    }
    Ok(shots)
}

pub fn run(db: &Path, watchlists: &[PathBuf], args: ReportArgs) -> anyhow::Result<Exit> {
    let since = crate::schedule::sub(crate::schedule::now(), args.since);
    let Some(store) = Store::open_read_only(db)? else {
        eprintln!(
            "no database at {} yet: run `forewarn check` first",
            db.display()
        );
        return Ok(Exit::Ok);
    };
    if let Some(name) = &args.name
        && store.load_states_of(&[name.as_str()])?.is_empty()
    {
        // Not in the database: maybe a typo of a configured watch.
        let hint = crate::config::load(watchlists)
            .ok()
            .map(|c| c.unknown_watch(name))
            .unwrap_or_else(|| format!("no watch named `{name}` in the database"));
        return Err(crate::UsageError(hint).into());
    }
    let filter = EventFilter {
        watch: args.name.clone(),
        since: Some(since),
        kinds: if args.all {
            Vec::new()
        } else {
            NOTABLE.to_vec()
        },
    };
    let mut events = store.events(&filter)?;
    attach_deliveries(&store, &mut events, since)?;
    let out = match args.format {
        ReportFormat::Json => report::render(&report::Json, &events),
        ReportFormat::Html => report::html::render(
            &events,
            &screenshots(&store, &events)?,
            &format!(
                "forewarn report{} since {}",
                args.name
                    .as_deref()
                    .map(|n| format!(" for {n}"))
                    .unwrap_or_default(),
                report::when(since)
            ),
        ),
        _ if events.is_empty() => format!(
            "no changes{} since {}\n",
            args.name
                .as_deref()
                .map(|n| format!(" to `{n}`"))
                .unwrap_or_default(),
            report::when(since)
        ),
        ReportFormat::Markdown => report::render(&report::Markdown, &events),
        ReportFormat::Text => {
            let mut s = String::new();
            let f = report::Text { with_time: true };
            for e in &events {
                f.event(e, &mut s);
            }
            s
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &out).map_err(|e| {
                anyhow::anyhow!("cannot write the report to {}: {e}", path.display())
            })?;
            eprintln!("report written to {}", path.display());
        }
        None if matches!(args.format, ReportFormat::Text) => {
            print!("{}", report::color::for_stdout(out))
        }
        None => print!("{out}"),
    }
    Ok(Exit::Ok)
}
