//! History: `timeline`, `show`, `diff` between any two snapshots, and `gc`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Exit;
use crate::UsageError;
use crate::cli::{DiffArgs, ShowArgs, TimelineArgs, TimelineFormat};
use crate::compare;
use crate::event::EventKind;
use crate::event::rfc3339;
use crate::report::when;
use crate::store::{EventFilter, Store, lock};
use anyhow::Context as _;

fn open(db: &Path) -> anyhow::Result<Store> {
    Store::open_read_only(db)?.ok_or_else(|| {
        UsageError(format!(
            "no database at {} yet: run `forewarn check` first",
            db.display()
        ))
        .into()
    })
}

/// Ids of a watch's snapshots, or a usage error naming the watch.
fn snapshot_ids(
    store: &Store,
    name: &str,
) -> anyhow::Result<Vec<(i64, chrono::DateTime<chrono::Utc>, i64)>> {
    let snaps = store.snapshots_of(name)?;
    if snaps.is_empty() {
        let names = store.names_with_snapshots()?;
        let hint = match crate::config::closest(name, names.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => "check the name with `forewarn list`, or run `forewarn check`".into(),
        };
        return Err(UsageError(format!("no snapshots of `{name}`: {hint}")).into());
    }
    Ok(snaps)
}

type Snaps = [(i64, chrono::DateTime<chrono::Utc>, i64)];

/// A usage error for a snapshot id the watch does not have, listing the ones it has.
fn no_such_snapshot(name: &str, id: i64, snaps: &Snaps) -> anyhow::Error {
    let ids: Vec<String> = snaps
        .iter()
        .map(|s| format!("{} ({})", s.0, when(s.1)))
        .collect();
    UsageError(format!(
        "`{name}` has no snapshot {id}; it has {}. Event ids are not snapshot ids: `forewarn report {} --all` shows each event's snapshots",
        ids.join(", "),
        crate::report::shell_word(name)
    ))
    .into()
}

pub fn show(db: &Path, args: ShowArgs) -> anyhow::Result<Exit> {
    let store = open(db)?;
    let snaps = snapshot_ids(&store, &args.name)?;
    let id = match args.id {
        Some(id) if snaps.iter().any(|s| s.0 == id) => id,
        Some(id) => return Err(no_such_snapshot(&args.name, id, &snaps)),
        None => snaps.last().expect("not empty").0,
    };
    if args.screenshot {
        let png = store.screenshot(id)?.ok_or_else(|| {
            UsageError(format!(
                "snapshot {id} of `{}` has no screenshot: set `screenshot = true` on the browser watch, and the next snapshot it stores has one",
                args.name
            ))
        })?;
        return write_out(args.output.as_deref(), &png, true);
    }
    let snap = store.snapshot(id)?.expect("listed above");
    let text = crate::extract::structure::readable(&snap.content);
    write_out(args.output.as_deref(), text.as_bytes(), false)
}

/// Writes what `show` shows to `-o FILE`, else to standard output (never binary to a
/// terminal).
fn write_out(file: Option<&Path>, bytes: &[u8], binary: bool) -> anyhow::Result<Exit> {
    use std::io::{IsTerminal, Write};
    match file {
        Some(f) => {
            std::fs::write(f, bytes).with_context(|| format!("cannot write {}", f.display()))?
        }
        None if binary && std::io::stdout().is_terminal() => {
            return Err(UsageError(
                "a screenshot is a PNG: write it to a file with `-o FILE.png`".into(),
            )
            .into());
        }
        // A reader that stopped early (`| head`) is not a failure.
        None => match std::io::stdout().write_all(bytes) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        },
    }
    Ok(Exit::Ok)
}

pub fn diff(db: &Path, args: DiffArgs) -> anyhow::Result<Exit> {
    let store = open(db)?;
    let snaps = snapshot_ids(&store, &args.name)?;
    let pick = |id: Option<i64>, default: Option<i64>| -> anyhow::Result<i64> {
        match id.or(default) {
            Some(id) if snaps.iter().any(|s| s.0 == id) => Ok(id),
            Some(id) => Err(no_such_snapshot(&args.name, id, &snaps)),
            None => Err(UsageError(format!(
                "`{}` has one snapshot only: nothing to diff yet",
                args.name
            ))
            .into()),
        }
    };
    let newest = snaps.last().map(|s| s.0);
    let before_newest = snaps.len().checked_sub(2).map(|i| snaps[i].0);
    let to = pick(args.to, newest)?;
    let from = pick(
        args.from,
        if args.to.is_some() {
            snaps.iter().rev().find(|s| s.0 < to).map(|s| s.0)
        } else {
            before_newest
        },
    )?;
    let (a, b) = (
        store.snapshot(from)?.expect("listed"),
        store.snapshot(to)?.expect("listed"),
    );
    let readable = crate::extract::structure::readable;
    let d = compare::diff(
        &readable(&a.content),
        &readable(&b.content),
        &format!("{} #{from} {}", args.name, rfc3339(a.taken_at)),
        &format!("{} #{to} {}", args.name, rfc3339(b.taken_at)),
    );
    if d.unified.is_empty() {
        println!("snapshots {from} and {to} of `{}` are identical", args.name);
    } else {
        println!("{}", compare::summary(&d, &[]));
        print!("{}", crate::report::color::for_stdout(d.unified));
    }
    Ok(Exit::Ok)
}

/// The events since `since` (of one watch, or all) that tell what happened: baselines and
/// noise left out. The timeline and the incident account are told from them.
pub(super) fn story_events(
    store: &Store,
    watch: Option<String>,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<crate::event::Event>> {
    Ok(store
        .events(&EventFilter {
            watch,
            since: Some(since),
            ..Default::default()
        })?
        .into_iter()
        .filter(|e| e.kind != EventKind::Baseline && e.kind != EventKind::Noise)
        .collect())
}

pub fn timeline(db: &Path, args: TimelineArgs) -> anyhow::Result<Exit> {
    let Some(store) = Store::open_read_only(db)? else {
        eprintln!(
            "no database at {} yet: run `forewarn check` first",
            db.display()
        );
        return Ok(Exit::Ok);
    };
    let since = crate::schedule::sub(crate::schedule::now(), args.since);
    let mut events = story_events(&store, None, since)?;
    let sent = messages_sent(&store.deliveries(Some(since))?, &events);
    events.extend(sent);
    // Who acknowledged which escalating event, when, and why.
    for a in store.acks(since)? {
        let note = a
            .note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        let summary = format!(
            "event {} acknowledged by {} (escalation `{}` stopped){note}",
            a.event_id, a.by, a.escalation
        );
        let mut e =
            crate::event::Event::new(EventKind::Acknowledged, &a.watch, &a.url, a.at, summary);
        e.detail
            .insert("acknowledged_event".into(), serde_json::json!(a.event_id));
        e.detail.insert("by".into(), serde_json::json!(a.by));
        e.detail.insert("note".into(), serde_json::json!(a.note));
        events.push(e);
    }
    events.sort_by_key(|e| e.at);
    let mut out = String::new();
    match args.format {
        TimelineFormat::Json => {
            for e in &events {
                writeln!(out, "{}", e.to_json())?;
            }
        }
        TimelineFormat::Text => {
            for e in &events {
                writeln!(
                    out,
                    "{}  {:<16} {:<20} {}",
                    when(e.at),
                    e.kind.heading(),
                    e.watch,
                    e.summary
                )?;
            }
        }
        TimelineFormat::Markdown => {
            writeln!(out, "## Timeline since {}\n", when(since))?;
            writeln!(out, "| time (UTC) | watch | what | details |")?;
            writeln!(out, "|---|---|---|---|")?;
            for e in &events {
                let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
                writeln!(
                    out,
                    "| {} | `{}` | {} | {} |",
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    cell(&e.watch),
                    e.kind.heading(),
                    cell(&e.summary)
                )?;
            }
            if events.is_empty() {
                writeln!(out, "| | | | nothing happened |")?;
            }
        }
    }
    print!("{out}");
    Ok(Exit::Ok)
}

pub fn gc(db: &Path, watchlists: &[PathBuf]) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let _lock = lock::acquire(db, "gc", std::time::Duration::from_secs(5))?;
    let mut store = Store::open(db)?;
    let retention: Vec<_> = config
        .watches
        .iter()
        .map(|w| (w.name().to_string(), w.settings.keep, w.settings.keep_for))
        .collect();
    let gc = store.gc(&retention)?;
    println!(
        "gc: {} snapshot{} deleted, {} compacted, {} freed",
        gc.deleted,
        if gc.deleted == 1 { "" } else { "s" },
        gc.compacted,
        crate::fetch::human_size(gc.freed)
    );
    Ok(Exit::Ok)
}

/// Notifications sent, when and where: one row per message (a digest of 36 events is one
/// row with its count), at the time it was delivered.
fn messages_sent(
    deliveries: &[crate::store::Delivery],
    events: &[crate::event::Event],
) -> Vec<crate::event::Event> {
    use std::collections::BTreeMap;
    // Delivered rows by (channel, message); a row without a message id is its own message.
    let mut messages: BTreeMap<
        (String, String),
        Vec<(&crate::store::Delivery, &crate::event::Event)>,
    > = BTreeMap::new();
    for d in deliveries {
        let (Some(_), Some(e)) = (
            d.delivered_at,
            events.iter().find(|e| e.id == Some(d.event_id)),
        ) else {
            continue;
        };
        let key = d
            .message
            .clone()
            .unwrap_or_else(|| format!("event {}", d.event_id));
        messages
            .entry((d.channel.clone(), key))
            .or_default()
            .push((d, e));
    }
    messages
        .into_iter()
        .map(|((channel, message), rows)| message_row(&channel, &message, &rows))
        .collect()
}

/// One message's row: its one event told whole, or its count of events by kind.
fn message_row(
    channel: &str,
    message: &str,
    rows: &[(&crate::store::Delivery, &crate::event::Event)],
) -> crate::event::Event {
    let at = rows
        .iter()
        .filter_map(|(d, _)| d.delivered_at)
        .max()
        .expect("delivered");
    let first = rows[0].1;
    let mut watches: Vec<&str> = rows.iter().map(|(_, e)| e.watch.as_str()).collect();
    watches.sort_unstable();
    watches.dedup();
    let watch = match watches.as_slice() {
        [one] => one.to_string(),
        many => format!("{} watches", many.len()),
    };
    let summary = if rows.len() == 1 {
        format!(
            "notified {channel}: {} ({})",
            first.kind.label(),
            first.summary
        )
    } else {
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for (_, e) in rows {
            match kinds.iter_mut().find(|(k, _)| *k == e.kind.label()) {
                Some((_, n)) => *n += 1,
                None => kinds.push((e.kind.label(), 1)),
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "notified {channel}: one message with {} events ({})",
            rows.len(),
            kinds.join(", ")
        )
    };
    let ids: Vec<i64> = rows.iter().map(|(d, _)| d.event_id).collect();
    crate::event::Event::new(EventKind::Notified, &watch, &first.url, at, summary)
        .with("channel", serde_json::json!(channel))
        .with("message", serde_json::json!(message))
        .with("event_id", serde_json::json!(ids[0]))
        .with("event_ids", serde_json::json!(ids))
        .with("events", serde_json::json!(rows.len()))
}
