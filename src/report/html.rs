//! A self-contained HTML report: inline CSS, no script, no request to anywhere, readable
//! without JavaScript, printable. Every byte that came from a third party is escaped.
//!
//! Each event is a section (watch, URL, time, summary); a change's diff is re-derived from
//! its unified form with word-level highlights inside changed lines (similar's inline diff),
//! and long unchanged stretches are folded into `<details>`.

use std::collections::HashMap;

use similar::{ChangeTag, TextDiff};

use super::when;
use crate::event::{Event, EventKind};

/// Unchanged lines kept around a change before the rest is folded.
const CONTEXT: usize = 3;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; --add: #e6ffec; --add-w: #abf2bc; --del: #ffebe9; --del-w: #ffc1bb; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.05rem; margin: 0 0 .3rem; }
section { border: 1px solid #d0d7de; border-radius: 6px; padding: .8rem 1rem; margin: 1rem 0; break-inside: avoid; }
.meta { color: #59636e; font-size: .9em; margin-bottom: .5rem; word-break: break-all; }
.kind { font-weight: 600; font-size: .8em; padding: .1em .5em; border-radius: 1em; background: #eaeef2; margin-right: .4em; }
.kind.critical, .kind.contract_broken, .kind.schema_changed { background: #ffebe9; color: #a40e26; }
.kind.new_version, .kind.new_entry { background: #ddf4ff; color: #0550ae; }
pre.diff { font: 12.5px/1.4 ui-monospace, monospace; margin: 0; white-space: pre-wrap; word-break: break-word; }
.diff span.line { display: block; padding: 0 .4em; }
.diff .add { background: var(--add); } .diff .del { background: var(--del); }
.diff ins { background: var(--add-w); text-decoration: none; } .diff del { background: var(--del-w); text-decoration: none; }
.diff .hunk { color: #59636e; background: #f6f8fa; }
details.fold summary { color: #59636e; cursor: pointer; font: 12px ui-monospace, monospace; padding: 0 .4em; }
ul.facts { margin: .3rem 0; padding-left: 1.2rem; }
@media print { body { margin: 0; max-width: none; } details.fold > *:not(summary) { display: block; } section { border-color: #999; } }
"#;

/// The whole report for `events`, with the screenshots of their snapshots (by snapshot id)
/// embedded as data: the report stays one file that requests nothing.
pub fn render(events: &[Event], screenshots: &HashMap<i64, Vec<u8>>, title: &str) -> String {
    let mut out = String::new();
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    // No request to anywhere: not even a favicon.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    out.push_str("<link rel=\"icon\" href=\"data:,\">");
    out.push_str(&format!(
        "<title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    ));
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"meta\">{} event{}</p>\n",
        escape(title),
        events.len(),
        if events.len() == 1 { "" } else { "s" }
    ));
    for e in events {
        let shot = e
            .detail
            .get("snapshot")
            .and_then(|v| v.as_i64())
            .and_then(|id| screenshots.get(&id));
        section(e, shot.map(Vec::as_slice), &mut out);
    }
    if events.is_empty() {
        out.push_str("<p>Nothing happened in this period.</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn section(e: &Event, screenshot: Option<&[u8]>, out: &mut String) {
    let severity = e
        .detail
        .get("severity")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    out.push_str(&format!(
        "<section class=\"event {kind}\" id=\"event-{id}\">\n<h2><span class=\"kind {kind} {sev}\">{label}</span>{watch}</h2>\n<div class=\"meta\">{when} &middot; {url}</div>\n<p class=\"summary\">{summary}</p>\n",
        kind = e.kind.as_str(),
        id = e.id.unwrap_or(0),
        sev = escape(severity),
        label = e.kind.heading(),
        watch = escape(&e.watch),
        when = when(e.at),
        url = escape(&e.url),
        summary = escape(&e.summary),
    ));
    // Facts each kind carries, as a list.
    let facts: &[&str] = match e.kind {
        EventKind::NewEntry => &["link", "date", "excerpt"],
        EventKind::NewVersion => &["release_url", "notes"],
        EventKind::ContractBroken => &["expectation", "hints"],
        EventKind::SchemaChanged => &["breaking", "additions", "removed", "retyped", "added"],
        EventKind::DeployDetected => &["removed", "added"],
        EventKind::Error => &["consecutive_failures", "failing_since"],
        _ => &[],
    };
    let mut items = String::new();
    for key in facts {
        let Some(v) = e.detail.get(key) else {
            continue;
        };
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) if s.is_empty() => continue,
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) if a.is_empty() => continue,
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        items.push_str(&format!(
            "<li><b>{}</b>: {}</li>",
            escape(key),
            escape(&text)
        ));
    }
    if let Some(v) = e.verify_line() {
        items.push_str(&format!("<li><b>verify</b>: {}</li>", escape(&v)));
    }
    if let Some(n) = super::notified_line(e) {
        items.push_str(&format!("<li><b>notified</b>: {}</li>", escape(&n)));
    }
    if !items.is_empty() {
        out.push_str(&format!("<ul class=\"facts\">{items}</ul>\n"));
    }
    if let Some(lines) = super::structure_lines(e) {
        out.push_str("<h3>Structure: ids, classes and test ids code reads</h3>\n");
        out.push_str(&diff_html(&lines));
    }
    if let Some(d) = &e.diff {
        out.push_str(&diff_html(d));
    }
    if let Some(png) = screenshot {
        use base64::Engine;
        out.push_str(&format!(
            "<details class=\"fold\"><summary>screenshot</summary><img alt=\"the page as rendered\" style=\"max-width:100%\" src=\"data:image/png;base64,{}\"></details>\n",
            base64::engine::general_purpose::STANDARD.encode(png)
        ));
    }
    out.push_str("</section>\n");
}

/// A unified diff as HTML: hunk headers, changed lines with word-level `<ins>` / `<del>`,
/// unchanged stretches longer than the context folded.
pub fn diff_html(unified: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    let lines: Vec<&str> = unified.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.starts_with("---") || l.starts_with("+++") {
            i += 1;
            continue;
        }
        if l.starts_with("@@") {
            out.push_str(&format!("<span class=\"line hunk\">{}</span>", escape(l)));
            i += 1;
            continue;
        }
        if l.starts_with('-') || l.starts_with('+') {
            // A block of removed lines followed by added ones: pair them for word highlights.
            let dels: Vec<&str> = lines[i..]
                .iter()
                .take_while(|x| x.starts_with('-') && !x.starts_with("---"))
                .map(|x| &x[1..])
                .collect();
            let j = i + dels.len();
            let adds: Vec<&str> = lines[j..]
                .iter()
                .take_while(|x| x.starts_with('+') && !x.starts_with("+++"))
                .map(|x| &x[1..])
                .collect();
            let pairs = dels.len().min(adds.len());
            for (k, d) in dels.iter().enumerate() {
                if k < pairs {
                    out.push_str(&word_line(d, adds[k], true));
                } else {
                    out.push_str(&format!("<span class=\"line del\">-{}</span>", escape(d)));
                }
            }
            for (k, a) in adds.iter().enumerate() {
                if k < pairs {
                    out.push_str(&word_line(dels[k], a, false));
                } else {
                    out.push_str(&format!("<span class=\"line add\">+{}</span>", escape(a)));
                }
            }
            i = j + adds.len();
            continue;
        }
        // Unchanged lines: a long run is folded, keeping context at both ends.
        let run: Vec<&str> = lines[i..]
            .iter()
            .take_while(|x| !x.starts_with(['-', '+', '@']))
            .copied()
            .collect();
        let n = run.len();
        if n > 2 * CONTEXT + 2 {
            for l in &run[..CONTEXT] {
                out.push_str(&format!("<span class=\"line\">{}</span>", escape(l)));
            }
            out.push_str(&format!(
                "</pre><details class=\"fold\"><summary>{} unchanged lines</summary><pre class=\"diff\">",
                n - 2 * CONTEXT
            ));
            for l in &run[CONTEXT..n - CONTEXT] {
                out.push_str(&format!("<span class=\"line\">{}</span>", escape(l)));
            }
            out.push_str("</pre></details><pre class=\"diff\">");
            for l in &run[n - CONTEXT..] {
                out.push_str(&format!("<span class=\"line\">{}</span>", escape(l)));
            }
        } else {
            for l in &run {
                out.push_str(&format!("<span class=\"line\">{}</span>", escape(l)));
            }
        }
        i += n.max(1);
    }
    out.push_str("</pre>\n");
    out
}

/// One side of a changed line pair, with the words that differ marked.
fn word_line(old: &str, new: &str, deleted_side: bool) -> String {
    let diff = TextDiff::from_words(old, new);
    let (class, sign, tag) = if deleted_side {
        ("del", '-', "del")
    } else {
        ("add", '+', "ins")
    };
    let mut s = format!("<span class=\"line {class}\">{sign}");
    for change in diff.iter_all_changes() {
        let text = escape(change.value());
        match (change.tag(), deleted_side) {
            (ChangeTag::Equal, _) => s.push_str(&text),
            (ChangeTag::Delete, true) | (ChangeTag::Insert, false) => {
                s.push_str(&format!("<{tag}>{text}</{tag}>"));
            }
            _ => {}
        }
    }
    s.push_str("</span>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_content_is_inert() {
        let d = "--- a\n+++ b\n@@ -1 +1 @@\n-<script>alert(1)</script>\n+<img src=x onerror=alert(1)>\n";
        let h = diff_html(d);
        assert!(!h.contains("<script>") && !h.contains("<img"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
    }

    #[test]
    fn word_level_marks_and_folding() {
        let mut d = String::from("--- a\n+++ b\n@@ -1,12 +1,12 @@\n");
        for i in 0..10 {
            d.push_str(&format!(" same {i}\n"));
        }
        d.push_str("-Send now please\n+Send later please\n");
        let h = diff_html(&d);
        assert!(h.contains("<del>now</del>"), "{h}");
        assert!(h.contains("<ins>later</ins>"), "{h}");
        assert!(h.contains("<summary>4 unchanged lines</summary>"), "{h}");
    }
}
