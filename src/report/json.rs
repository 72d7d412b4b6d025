//! JSON Lines: one object per event; scripts and the benchmark harness read it.

use serde_json::json;

use super::Format;
use crate::event::{Event, EventKind};

pub struct Json;

impl Format for Json {
    fn event(&self, e: &Event, out: &mut String) {
        out.push_str(&e.to_json().to_string());
        out.push('\n');
    }
}

/// Events that say a watch's content changed in a way of its own kind: a feed's entries, a
/// version, a JSON document's structure. They come without a `changed` event.
const DETAIL_CHANGES: &[EventKind] = &[
    EventKind::NewEntry,
    EventKind::EntryUpdated,
    EventKind::NewVersion,
    EventKind::SchemaChanged,
];

/// The events `check --format json` prints: each watch whose content changed has exactly one
/// `changed` line, whatever its kind, so a script that counts `changed` sees every changed
/// watch. Where a watch's change is told only by detail events (new feed entries, a new version,
/// a structure-only JSON change), a `changed` line summarising them goes before them, with
/// `events` naming their ids and `kinds` their kinds. Nothing is stored or notified twice: the
/// line exists only in this output.
/// Each is handed to `line` in turn, never all copied at once (a first pass over 100,000 watches
/// has 100,000 of them).
pub fn check_lines(events: &[Event], mut line: impl FnMut(&Event)) {
    let mut i = 0;
    while i < events.len() {
        let watch = &events[i].watch;
        let end = events[i..]
            .iter()
            .position(|e| &e.watch != watch)
            .map_or(events.len(), |p| i + p);
        let group = &events[i..end];
        let details: Vec<&Event> = group
            .iter()
            .filter(|e| DETAIL_CHANGES.contains(&e.kind))
            .collect();
        if !details.is_empty() && !group.iter().any(|e| e.kind == EventKind::Changed) {
            line(&watch_changed(&details));
        }
        group.iter().for_each(&mut line);
        i = end;
    }
}

fn watch_changed(details: &[&Event]) -> Event {
    let first = details[0];
    let count = |kind: EventKind| details.iter().filter(|e| e.kind == kind).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let (new, updated) = (count(EventKind::NewEntry), count(EventKind::EntryUpdated));
    let mut parts = Vec::new();
    if new > 0 {
        parts.push(plural(new, "new entry", "new entries"));
    }
    if updated > 0 {
        parts.push(plural(updated, "entry updated", "entries updated"));
    }
    let summary = if parts.is_empty() {
        first.summary.clone()
    } else {
        format!("{}: {}", parts.join(", "), first.summary)
    };
    let mut e = Event::new(
        EventKind::Changed,
        &first.watch,
        &first.url,
        first.at,
        summary,
    )
    .with(
        "events",
        json!(details.iter().filter_map(|e| e.id).collect::<Vec<_>>()),
    )
    .with(
        "kinds",
        json!(details.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>()),
    );
    let diffs: Vec<&str> = details.iter().filter_map(|e| e.diff.as_deref()).collect();
    if !diffs.is_empty() {
        e.diff = Some(diffs.concat());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn collect(events: &[Event]) -> Vec<Event> {
        let mut out = Vec::new();
        check_lines(events, |e| out.push(e.clone()));
        out
    }

    fn ev(kind: &str, watch: &str, id: i64) -> Event {
        let kind = EventKind::from_name(kind).unwrap();
        let mut e = Event::new(
            kind,
            watch,
            "http://127.0.0.1/x",
            Utc::now(),
            kind.to_string(),
        );
        e.id = Some(id);
        e
    }

    #[test]
    fn a_feed_with_new_entries_gets_one_changed_line_first() {
        let events = vec![
            ev("changed", "page", 1),
            ev("new_entry", "feed", 2),
            ev("new_entry", "feed", 3),
            ev("entry_updated", "feed", 4),
            ev("baseline", "other", 5),
        ];
        let lines = collect(&events);
        let kinds: Vec<(&str, &str)> = lines
            .iter()
            .map(|e| (e.kind.as_str(), e.watch.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("changed", "page"),
                ("changed", "feed"),
                ("new_entry", "feed"),
                ("new_entry", "feed"),
                ("entry_updated", "feed"),
                ("baseline", "other"),
            ]
        );
        let j = lines[1].to_json();
        assert_eq!(j["events"], json!([2, 3, 4]));
        assert_eq!(j["summary"], "2 new entries, 1 entry updated: new_entry");
        assert!(j.get("id").is_none(), "the line is not a stored event");
    }

    #[test]
    fn a_watch_with_its_own_changed_event_is_not_doubled() {
        let events = vec![ev("schema_changed", "api", 1), ev("changed", "api", 2)];
        let lines = collect(&events);
        assert_eq!(lines.len(), 2);
        let lone = collect(&[ev("schema_changed", "api", 1)]);
        assert_eq!(lone.len(), 2);
        assert_eq!(lone[0].kind, "changed");
        assert_eq!(lone[0].to_json()["kinds"], json!(["schema_changed"]));
    }
}
