//! Markdown: for issues, chat and postmortems.

use super::{Format, shown_diff, when};
use crate::event::Event;

pub struct Markdown;

impl Format for Markdown {
    fn header(&self, events: &[Event], out: &mut String) {
        out.push_str(&format!("# forewarn report ({} events)\n\n", events.len()));
    }

    fn event(&self, e: &Event, out: &mut String) {
        out.push_str(&format!(
            "## {}: `{}` ({})\n\n{} — <{}>\n\n",
            e.kind.heading(),
            e.watch,
            when(e.at),
            e.summary,
            e.url
        ));
        if let Some(v) = e.verify_line() {
            out.push_str(&format!("{v}\n\n"));
        }
        if let Some(n) = super::notified_line(e) {
            out.push_str(&format!("Notified: {n}\n\n"));
        }
        if let Some(lines) = super::structure_lines(e) {
            let run = lines
                .split(|c: char| c != '`')
                .map(str::len)
                .max()
                .unwrap_or(0);
            let fence = "`".repeat(run.max(2) + 1);
            out.push_str(&format!(
                "Structure (ids, classes and test ids code reads):\n\n{fence}diff\n{lines}{fence}\n\n"
            ));
        }
        if let Some(d) = shown_diff(e) {
            // A fence longer than any backtick run inside keeps the diff intact.
            let run = d.split(|c: char| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(run.max(2) + 1);
            out.push_str(&format!("{fence}diff\n{d}{fence}\n\n"));
        }
    }
}
