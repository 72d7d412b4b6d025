//! Output formats for events: text (people, cron mail), Markdown (issues, chat), JSON Lines
//! (scripts). One file per format behind [`Format`].

pub mod color;
pub mod html;
mod json;
mod markdown;
mod text;

use chrono::{DateTime, Utc};

use crate::event::Event;

pub use json::{Json, check_lines};
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

/// Where an event was notified, from its `notifications` detail (attached by `report`):
/// "ok (delivered 2026-11-21 09:30 UTC), down (pending, 2 attempts: HTTP 500)".
pub fn notified_line(e: &Event) -> Option<String> {
    let list = e.detail.get("notifications")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    let parts: Vec<String> = list
        .iter()
        .map(|n| {
            let channel = n["channel"].as_str().unwrap_or("?");
            let state = n["state"].as_str().unwrap_or("?");
            match state {
                "delivered" => format!(
                    "{channel} (delivered{})",
                    n["delivered_at"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| format!(" {}", when(t.with_timezone(&Utc))))
                        .unwrap_or_default()
                ),
                _ => {
                    let attempts = n["attempts"].as_u64().unwrap_or(0);
                    let mut s = format!("{channel} ({state}");
                    if attempts > 0 {
                        s.push_str(&format!(
                            ", {attempts} attempt{}",
                            if attempts == 1 { "" } else { "s" }
                        ));
                    }
                    if let Some(err) = n["last_error"].as_str() {
                        s.push_str(&format!(": {err}"));
                    }
                    s.push(')');
                    s
                }
            }
        })
        .collect();
    Some(parts.join(", "))
}

/// At most this many structure changes are listed per event (the JSON has them all).
const STRUCTURE_LINES: usize = 40;

/// A changed page's structure changes as diff lines (`-` went, `+` came), for the reports.
fn structure_lines(e: &Event) -> Option<String> {
    let s = e.detail.get("structure")?;
    let list = |key: &str| -> Vec<String> {
        s[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let lines: Vec<String> = list("removed")
        .into_iter()
        .map(|r| format!("-{r}"))
        .chain(list("added").into_iter().map(|a| format!("+{a}")))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut out: String = lines
        .iter()
        .take(STRUCTURE_LINES)
        .map(|l| format!("{l}\n"))
        .collect();
    if lines.len() > STRUCTURE_LINES {
        out.push_str(&format!(
            "(and {} more; `forewarn report --format json` lists them all)\n",
            lines.len() - STRUCTURE_LINES
        ));
    }
    Some(out)
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

pub use crate::event::shell_word;
