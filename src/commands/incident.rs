//! `forewarn incident`: a one-page account of an upstream incident, from the timeline: when
//! the upstream changed (the first check that saw it, and the last that saw it as before),
//! who was told when, when it was acknowledged and verified, when it recovered, and the diffs
//! that matter; then headed sections for what forewarn cannot know, for the author.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::Exit;
use crate::cli::{IncidentArgs, IncidentFormat};
use crate::event::{Event, EventKind};
use crate::store::Store;

/// A diff longer than this is cut in the account (`forewarn diff` has it whole).
const DIFF_LINES: usize = 40;

/// A time to the second: an incident account is read for its order.
fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One line of the account's timeline.
struct Moment {
    at: DateTime<Utc>,
    what: String,
}

pub fn run(db: &Path, args: IncidentArgs) -> anyhow::Result<Exit> {
    let Some(store) = Store::open_read_only(db)? else {
        return Err(crate::UsageError(format!(
            "no database at {} yet: run `forewarn check` first",
            db.display()
        ))
        .into());
    };
    let since = crate::schedule::sub(crate::schedule::now(), args.since);
    let events = super::history::story_events(&store, args.watch.clone(), since)?;
    let Some(first) = events
        .iter()
        .find(|e| e.kind.is_change() || e.is_notified())
    else {
        println!(
            "nothing happened{} in the last {}: no incident to write up",
            args.watch
                .as_deref()
                .map(|w| format!(" to {w}"))
                .unwrap_or_default(),
            humantime::format_duration(args.since)
        );
        return Ok(Exit::Ok);
    };
    let moments = timeline(&store, &events, first, since)?;
    let md = markdown(&events, first, &moments);
    let out = match args.format {
        IncidentFormat::Markdown => md,
        IncidentFormat::Html => html(&md),
    };
    print!("{out}");
    Ok(Exit::Ok)
}

/// What happened, in order: the change seen, each notification, acknowledgements, verifies,
/// recoveries.
fn timeline(
    store: &Store,
    events: &[Event],
    first: &Event,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<Moment>> {
    let mut m = Vec::new();
    if let Some(before) = last_seen_before(store, first)? {
        m.push(Moment {
            at: before,
            what: format!("last check that saw `{}` as it was before", first.watch),
        });
    }
    for e in events {
        m.push(Moment {
            at: e.at,
            what: format!("{} `{}`: {}", e.kind.heading(), e.watch, e.summary),
        });
        if let Some(v) = e.verify_line() {
            m.push(Moment {
                at: e.at,
                what: format!("verify of event {}: {v}", e.id.unwrap_or_default()),
            });
        }
    }
    let ids: Vec<i64> = events.iter().filter_map(|e| e.id).collect();
    for d in store.deliveries(Some(since))? {
        if !ids.contains(&d.event_id) {
            continue;
        }
        let what = match (d.delivered_at, d.state.as_str()) {
            (Some(_), _) => format!("`{}` told of event {}", d.channel, d.event_id),
            (None, state) => format!(
                "`{}` not told of event {} ({state}{})",
                d.channel,
                d.event_id,
                d.last_error.map(|e| format!(": {e}")).unwrap_or_default()
            ),
        };
        m.push(Moment {
            at: d.delivered_at.unwrap_or(first.at),
            what,
        });
    }
    for a in store.acks(since)? {
        if ids.contains(&a.event_id) {
            let note = a.note.map(|n| format!(": {n}")).unwrap_or_default();
            m.push(Moment {
                at: a.at,
                what: format!("acknowledged by {} (event {}){note}", a.by, a.event_id),
            });
        }
    }
    m.sort_by_key(|x| x.at);
    Ok(m)
}

/// When the last check before `first` saw the page as it was: its previous snapshot's time.
fn last_seen_before(store: &Store, first: &Event) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(prev) = first
        .detail
        .get("previous_snapshot")
        .and_then(|v| v.as_i64())
    else {
        return Ok(None);
    };
    Ok(store.snapshot(prev)?.map(|s| s.taken_at))
}

fn markdown(events: &[Event], first: &Event, moments: &[Moment]) -> String {
    let watches: Vec<&str> = {
        let mut w: Vec<&str> = events.iter().map(|e| e.watch.as_str()).collect();
        w.dedup();
        w
    };
    let recovered = events.iter().rev().find(|e| {
        matches!(
            e.kind,
            EventKind::Recovered | EventKind::ContractRestored | EventKind::SelectorRestored
        )
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Incident: {} {} ({})\n",
        watches.join(", "),
        first.kind.label(),
        first.at.format("%Y-%m-%d")
    );
    let _ = writeln!(out, "Watched: {}\n", first.url);
    match moments.iter().find(|m| m.what.starts_with("last check")) {
        Some(before) => {
            let _ = writeln!(
                out,
                "- **Upstream changed**: between {} (the last check that saw it as before) and {} (the first that saw it)",
                when(before.at),
                when(first.at)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- **Upstream changed**: by {} (the first check that saw it)",
                when(first.at)
            );
        }
    }
    let _ = writeln!(
        out,
        "- **Detected**: {} — {}",
        when(first.at),
        first.summary
    );
    let told: Vec<&Moment> = moments
        .iter()
        .filter(|m| m.what.contains(" told of "))
        .collect();
    match told.first() {
        Some(t) => {
            let _ = writeln!(
                out,
                "- **Notified**: {} ({} message(s))",
                when(t.at),
                told.len()
            );
        }
        None => out.push_str("- **Notified**: no one (no channel routes these events)\n"),
    }
    if let Some(a) = moments.iter().find(|m| m.what.starts_with("acknowledged")) {
        let _ = writeln!(out, "- **Acknowledged**: {} — {}", when(a.at), a.what);
    }
    if let Some(v) = moments.iter().find(|m| m.what.starts_with("verify")) {
        let _ = writeln!(out, "- **Verified**: {} — {}", when(v.at), v.what);
    }
    match recovered {
        Some(r) => {
            let _ = writeln!(out, "- **Recovered**: {} — {}", when(r.at), r.summary);
        }
        None => out.push_str("- **Recovered**: not yet\n"),
    }
    out.push_str("\n## Timeline\n\n| when | what |\n|---|---|\n");
    for m in moments {
        let _ = writeln!(out, "| {} | {} |", when(m.at), m.what.replace('|', "\\|"));
    }
    diffs(events, &mut out);
    out.push_str(
        "\n## Impact\n\n_For the author: who was affected, how, for how long._\n\n\
         ## Cause\n\n_For the author: what the upstream changed and why it broke the integration._\n\n\
         ## Follow-ups\n\n_For the author: what is changed so that it does not happen again._\n",
    );
    out
}

/// "What changed": each event's diff, cut at [`DIFF_LINES`].
fn diffs(events: &[Event], out: &mut String) {
    out.push_str("\n## What changed\n");
    for e in events.iter().filter(|e| e.diff.is_some()) {
        let _ = writeln!(
            out,
            "\n### {} `{}` at {}\n\n{}\n",
            e.kind.heading(),
            e.watch,
            when(e.at),
            e.summary
        );
        let diff = e.diff.as_deref().unwrap_or_default();
        out.push_str("```diff\n");
        for line in diff.lines().take(DIFF_LINES) {
            out.push_str(line);
            out.push('\n');
        }
        let n = diff.lines().count();
        if n > DIFF_LINES {
            let _ = writeln!(out, "... {} more lines", n - DIFF_LINES);
        }
        out.push_str("```\n");
        if let Some(to) = e.detail.get("snapshot").and_then(|v| v.as_i64()) {
            let _ = writeln!(
                out,
                "\nThe pages as stored: `forewarn show {} {to}`.",
                e.watch
            );
        }
    }
}

/// The account as one HTML page: its Markdown, escaped, headings and lists kept readable.
fn html(md: &str) -> String {
    let esc = crate::report::html::escape;
    let mut body = String::new();
    let mut in_code = false;
    for line in md.lines() {
        if line.starts_with("```") {
            body.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            body.push_str(&esc(line));
            body.push('\n');
        } else if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(body, "<h3>{}</h3>", esc(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", esc(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", esc(h));
        } else if !line.is_empty() {
            let _ = writeln!(body, "<p>{}</p>", esc(line));
        }
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>forewarn incident</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}pre{{background:#f6f8fa;padding:1em;overflow:auto}}</style>\
         </head><body>\n{body}</body></html>\n"
    )
}
