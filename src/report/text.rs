//! Plain text: what cron mails.

use super::{Format, shown_diff, when};
use crate::event::{Event, EventKind};

pub struct Text {
    /// Show the event's time (history), or not (the pass that just ran).
    pub with_time: bool,
}

impl Format for Text {
    fn event(&self, e: &Event, out: &mut String) {
        out.push_str(&format!("{} {} ({})", e.kind.heading(), e.watch, e.url));
        if self.with_time {
            out.push_str(&format!(" at {}", when(e.at)));
        }
        out.push('\n');
        let detail = match e.kind {
            EventKind::Error | EventKind::Blocked => {
                let n = e
                    .detail
                    .get("consecutive_failures")
                    .and_then(|v| v.as_u64());
                let since = e.detail.get("failing_since").and_then(|v| v.as_str());
                match (n, since) {
                    (Some(n), Some(s)) if n > 1 => {
                        format!("{} ({n} failures in a row, since {s})", e.summary)
                    }
                    _ => e.summary.clone(),
                }
            }
            // The diff lists every structure change: the summary's first one is not repeated.
            EventKind::SchemaChanged if e.diff.is_some() => match e.summary.split_once(": ") {
                Some((head, _)) if head.contains("structure change") => format!("{head}:"),
                _ => e.summary.clone(),
            },
            _ => e.summary.clone(),
        };
        out.push_str("  ");
        out.push_str(&detail);
        out.push('\n');
        for key in ["link", "excerpt", "release_url"] {
            if matches!(e.kind, EventKind::NewEntry | EventKind::NewVersion)
                && let Some(v) = e.detail.get(key).and_then(|v| v.as_str())
                && !v.is_empty()
            {
                out.push_str(&format!("  {v}\n"));
            }
        }
        if self.with_time
            && let Some(line) = snapshots_line(e)
        {
            out.push_str(&line);
        }
        if let Some(v) = e.verify_line() {
            out.push_str(&format!("  {v}\n"));
        }
        if let Some(n) = super::notified_line(e) {
            out.push_str(&format!("  notified: {n}\n"));
        }
        if let Some(lines) = super::structure_lines(e) {
            out.push_str("  structure (ids, classes and test ids code reads):\n");
            for line in lines.lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        if let Some(d) = shown_diff(e) {
            for line in d.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
}

/// `  snapshots #15 -> #27: forewarn diff NAME --from 15 --to 27`: where a history reader finds the
/// content the event compared.
fn snapshots_line(e: &Event) -> Option<String> {
    let id = |k: &str| e.detail.get(k).and_then(|v| v.as_i64());
    let name = crate::report::shell_word(&e.watch);
    match (id("previous_snapshot"), id("snapshot")?) {
        (Some(from), to) => Some(format!(
            "  snapshots #{from} -> #{to}: `forewarn diff {name} --from {from} --to {to}`\n"
        )),
        (None, to) => Some(format!("  snapshot #{to}: `forewarn show {name} {to}`\n")),
    }
}
