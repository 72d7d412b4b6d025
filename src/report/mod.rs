//! Output formats for events: text (people, cron mail), Markdown (issues, chat), JSON Lines
//! (scripts). One file per format behind [`Format`].

pub mod html;
mod json;
mod markdown;
mod text;

use chrono::{DateTime, Utc};

use crate::event::Event;

pub use json::Json;
pub use markdown::Markdown;
pub use text::Text;

/// Diff lines shown per event in text and Markdown before the rest is summarised.
pub const DIFF_LINES: usize = 300;

/// One output format.
pub trait Format {
    /// Appends one event.
    fn event(&self, e: &Event, out: &mut String);
    /// Appends what goes before the events, if anything.
    fn header(&self, _events: &[Event], _out: &mut String) {}
}

/// Renders events one after the other.
pub fn render(format: &dyn Format, events: &[Event]) -> String {
    let mut out = String::new();
    format.header(events, &mut out);
    for e in events {
        format.event(e, &mut out);
    }
    out
}

/// "5m ago", "3h ago", "2d ago".
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// Local-free, sortable time for people: "2026-11-21 09:30 UTC".
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The diff cut to [`DIFF_LINES`], with a note on where to read the rest.
fn shown_diff(e: &Event) -> Option<String> {
    let d = e.diff.as_deref()?;
    let mut s = crate::compare::truncate_lines(d, DIFF_LINES);
    if s.len() < d.len() {
        s.push_str(&format!(
            "(diff cut; `forewarn report {}` shows it whole)\n",
            e.watch
        ));
    }
    Some(s)
}

/// The one-word label of an event kind.
pub fn label(kind: &str) -> &'static str {
    match kind {
        "changed" => "CHANGED",
        "error" => "FAILED",
        "blocked" => "BLOCKED",
        "selector_missing" => "SELECTOR MISSING",
        "selector_restored" => "SELECTOR BACK",
        "recovered" => "RECOVERED",
        "baseline" => "BASELINE",
        "noise" => "NOISE",
        "new_entry" => "NEW ENTRY",
        "new_version" => "NEW VERSION",
        "contract_broken" => "CONTRACT BROKEN",
        "deploy_detected" => "DEPLOY DETECTED",
        "schema_changed" => "SCHEMA CHANGED",
        "contract_restored" => "CONTRACT HOLDS",
        "entry_updated" => "ENTRY UPDATED",
        "pending" => "PENDING",
        _ => "EVENT",
    }
}
