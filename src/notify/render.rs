//! What a message says: a title, a text body (one event, or a digest grouped by watch with
//! counts and the first lines of each diff), and the JSON document webhooks and commands get.

use serde_json::{Value, json};

use super::Message;
use crate::event::{Event, Severity, rfc3339};

/// Diff lines shown in a single-event message when the channel sets no size of its own.
pub const DIFF_LINES: usize = 20;

fn watches(msg: &Message) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for (e, _) in &msg.items {
        if !out.contains(&e.watch.as_str()) {
            out.push(&e.watch);
        }
    }
    out
}

/// The message's title: `stripe-docs: changed`, or a digest's counts.
pub fn title(msg: &Message) -> String {
    let loud = match msg.severity() {
        Severity::Critical => "CRITICAL ",
        _ => "",
    };
    match msg.items.as_slice() {
        [(e, _)] => format!("{loud}{}: {}", e.watch, e.kind.label()),
        items => {
            let w = watches(msg);
            if w.len() == 1 {
                format!("{loud}{}: {} events", w[0], items.len())
            } else {
                format!(
                    "{loud}forewarn: {} events from {} watches",
                    items.len(),
                    w.len()
                )
            }
        }
    }
}

/// The first `n` lines of an event's diff, and how many were left out. The file header lines
/// are dropped. `facts_only` (a digest) keeps what changed: a text diff's `+`/`-` lines
/// without their context, and every line of a list of facts (a structure change's
/// `removed ...`, `` `$.size`: number -> string ``).
pub fn diff_head(e: &Event, n: usize, facts_only: bool) -> (Vec<&str>, usize) {
    let Some(d) = &e.diff else {
        return (Vec::new(), 0);
    };
    let unified = d.starts_with("@@") || d.starts_with("--- ") || d.contains("\n@@");
    let lines: Vec<&str> = d
        .lines()
        .filter(|l| !(l.starts_with("--- ") || l.starts_with("+++ ")))
        .filter(|l| !facts_only || !unified || l.starts_with('+') || l.starts_with('-'))
        .filter(|l| !l.trim().is_empty() || !facts_only)
        .collect();
    let shown = lines.len().min(n);
    (lines[..shown].to_vec(), lines.len() - shown)
}

/// The watches of a digest, the one with the most severe event first, and each one's events,
/// most severe first (otherwise in the order they happened).
fn by_severity(msg: &Message) -> Vec<(&str, Vec<&(Event, Severity)>)> {
    let mut groups: Vec<(&str, Vec<&(Event, Severity)>)> = watches(msg)
        .into_iter()
        .map(|w| {
            let mut evs: Vec<&(Event, Severity)> =
                msg.items.iter().filter(|(e, _)| e.watch == w).collect();
            evs.sort_by_key(|(_, sev)| std::cmp::Reverse(*sev));
            (w, evs)
        })
        .collect();
    groups.sort_by_key(|(_, evs)| std::cmp::Reverse(evs[0].1));
    groups
}

fn event_extras(e: &Event, out: &mut String, indent: &str) {
    if let Some(v) = e.verify_line() {
        out.push_str(&format!("{indent}{v}\n"));
    }
    if let (Some(name), Some(id)) = (e.detail.get("escalation").and_then(Value::as_str), e.id) {
        out.push_str(&format!(
            "{indent}escalating ({name}) until acknowledged: forewarn ack {id}\n"
        ));
    }
    for key in ["link", "release_url"] {
        if let Some(v) = e.detail.get(key).and_then(Value::as_str) {
            out.push_str(&format!("{indent}{v}\n"));
        }
    }
    if let Some(h) = e.detail.get("hints").and_then(Value::as_array) {
        for hint in h.iter().filter_map(Value::as_str) {
            out.push_str(&format!("{indent}hint: {hint}\n"));
        }
    }
}

/// The plain-text body, with up to `diff_lines` lines of each diff (fewer in a digest).
pub fn text(msg: &Message, diff_lines: usize) -> String {
    let mut out = String::new();
    match msg.items.as_slice() {
        [(e, sev)] => {
            out.push_str(&e.summary);
            out.push('\n');
            out.push_str(&format!("{}\n", e.url));
            event_extras(e, &mut out, "");
            out.push_str(&format!("{} · {sev} · {}\n", e.kind.label(), rfc3339(e.at)));
            let (head, more) = diff_head(e, diff_lines, false);
            if !head.is_empty() {
                out.push('\n');
                for l in head {
                    out.push_str(l);
                    out.push('\n');
                }
                if more > 0 {
                    out.push_str(&format!(
                        "… {more} more line{} (`forewarn report {}`)\n",
                        if more == 1 { "" } else { "s" },
                        e.watch
                    ));
                }
            }
        }
        _ => {
            // Every fact of every event, critical first: the channel's size limit alone cuts
            // a digest (with a note), never a per-event glance.
            for (w, evs) in by_severity(msg) {
                out.push_str(&format!(
                    "{w} ({} event{}) {}\n",
                    evs.len(),
                    if evs.len() == 1 { "" } else { "s" },
                    evs[0].0.url
                ));
                for (e, sev) in evs {
                    let flag = if *sev >= Severity::Warning {
                        format!(" [{sev}]")
                    } else {
                        String::new()
                    };
                    out.push_str(&format!("  - {}{flag}: {}\n", e.kind.label(), e.summary));
                    event_extras(e, &mut out, "    ");
                    let (head, more) = diff_head(e, diff_lines, true);
                    for l in head {
                        out.push_str(&format!("    {l}\n"));
                    }
                    if more > 0 {
                        out.push_str(&format!(
                            "    … {more} more line{} (`forewarn report {w}`)\n",
                            if more == 1 { "" } else { "s" }
                        ));
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

/// The JSON document a `webhook` channel posts and a `command` channel reads on stdin.
/// Documented in the README ("Webhook payload").
pub fn json(msg: &Message) -> Value {
    let events: Vec<Value> = msg
        .items
        .iter()
        .map(|(e, sev)| {
            let mut v = e.to_json();
            v["severity"] = json!(sev.as_str());
            v
        })
        .collect();
    json!({
        "forewarn": 1,
        "id": msg.id,
        "channel": msg.channel,
        "title": title(msg),
        "severity": msg.severity().as_str(),
        "text": text(msg, DIFF_LINES),
        "count": msg.items.len(),
        "watches": watches(msg),
        "events": events,
    })
}

/// Cuts `text` to at most `limit` characters on a line boundary, saying so at the end.
pub fn cut(text: &str, limit: usize, service: &str) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let note_room = 120;
    let mut out = String::new();
    let mut used = 0;
    for line in text.split_inclusive('\n') {
        let n = line.chars().count();
        if used + n > limit.saturating_sub(note_room) {
            break;
        }
        out.push_str(line);
        used += n;
    }
    if out.is_empty() {
        out = text
            .chars()
            .take(limit.saturating_sub(note_room))
            .collect::<String>()
            + "\n";
    }
    let left = text.chars().count() - out.chars().count();
    out.push_str(&format!(
        "… cut to fit {service}'s message limit ({left} more characters): `forewarn report` has the whole diff\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn ev(watch: &str, diff_lines: usize) -> Event {
        let mut e = Event::new(
            crate::event::EventKind::Changed,
            watch,
            "http://x/",
            Utc::now(),
            "+1 -1 lines".into(),
        );
        e.diff = Some((0..diff_lines).map(|i| format!("+line {i}\n")).collect());
        e
    }

    #[test]
    fn a_digest_groups_by_watch_with_counts_and_diff_heads() {
        let msg = Message {
            channel: "c".into(),
            id: "c-1-3".into(),
            items: vec![
                (ev("a", 10), Severity::Info),
                (ev("b", 1), Severity::Critical),
                (ev("a", 1), Severity::Info),
            ],
        };
        assert_eq!(title(&msg), "CRITICAL forewarn: 3 events from 2 watches");
        let t = text(&msg, DIFF_LINES);
        assert!(t.contains("a (2 events) http://x/"), "{t}");
        assert!(t.contains("b (1 event)"), "{t}");
        assert!(
            t.find("b (1 event)") < t.find("a (2 events)"),
            "critical first: {t}"
        );
        assert!(t.contains("    +line 9\n"), "every changed line: {t}");
        let small = text(&msg, 4);
        assert!(
            small.contains("    +line 3\n    … 6 more lines (`forewarn report a`)"),
            "{small}"
        );
    }

    /// A structure change's facts are not diff lines: a digest lists every one of them.
    #[test]
    fn a_digest_lists_every_fact_of_a_structure_change() {
        let mut schema = ev("api", 0);
        schema.kind = crate::event::EventKind::SchemaChanged;
        schema.summary = "2 structure changes: removed `$.data[*].unread` (boolean)".into();
        schema.diff = Some(
            "removed `$.data[*].unread` (boolean)\n`$.data[*].size`: number -> string\n".into(),
        );
        let msg = Message {
            channel: "c".into(),
            id: "c-1-2".into(),
            items: vec![
                (ev("docs", 3), Severity::Info),
                (schema, Severity::Critical),
            ],
        };
        let t = text(&msg, 1_000);
        assert!(
            t.contains("    `$.data[*].size`: number -> string\n"),
            "{t}"
        );
        assert!(
            t.contains("    removed `$.data[*].unread` (boolean)\n"),
            "{t}"
        );
        assert!(t.starts_with("api (1 event)"), "critical first: {t}");
    }

    #[test]
    fn cut_keeps_whole_lines_and_says_so() {
        let long: String = (0..500).map(|i| format!("+line {i}\n")).collect();
        let c = cut(&long, 2000, "Discord");
        assert!(c.chars().count() <= 2000);
        assert!(c.contains("cut to fit Discord's message limit"));
        assert!(c.lines().rev().nth(1).unwrap().starts_with("+line "));
        assert_eq!(cut("short", 2000, "Discord"), "short");
    }
}
