//! `forewarn test NAME`: fetch once, show what would be compared and the diff against the
//! last stored snapshot. Writes nothing to the database.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Exit;
use crate::cli::TestArgs;
use crate::compare;
use crate::event::rfc3339;
use crate::fetch::{Fetched, human_size};
use crate::pipeline;
use crate::store::Store;

pub fn run(db: &Path, watchlists: &[PathBuf], args: TestArgs) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let w = super::find_watch(&config, &args.name)?;
    let mut out = String::new();
    writeln!(out, "{} ({})", w.name(), w.url_display())?;
    let fetched = super::runtime()?.block_on(pipeline::fetch_once(w));
    let (body, content_type, status, took) = match fetched {
        Ok((
            Fetched::Body {
                status,
                body,
                content_type,
                ..
            },
            took,
        )) => (body, content_type, status, took),
        Ok((Fetched::NotModified { .. }, _)) => {
            // An unconditional GET answered 304: the server is confused.
            println!("{out}FAILED: the server answered 304 Not Modified to a plain GET");
            return Ok(Exit::WatchesFailed);
        }
        Err(e) => {
            println!("{out}FAILED: {e}");
            return Ok(Exit::WatchesFailed);
        }
    };
    writeln!(
        out,
        "HTTP {status}, {}, {} in {} ms",
        human_size(body.len() as u64),
        content_type.as_deref().unwrap_or("no Content-Type"),
        took.as_millis()
    )?;
    let ex = match crate::extract::for_watch(w, &body, content_type.as_deref()) {
        Ok(ex) => ex,
        Err(e) => {
            println!("{out}FAILED: {e}");
            return Ok(Exit::WatchesFailed);
        }
    };
    for m in &ex.missing {
        writeln!(
            out,
            "SELECTOR MISSING: `{m}` matched nothing: the page may have been redesigned"
        )?;
    }
    let lines = ex.text.lines().count();
    let plural = |n: usize, what: &str| match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "entry") => format!("{n} entries"),
        _ => format!("{n} {what}s"),
    };
    match ex.format {
        "feed" => {
            let entries = crate::extract::feed::from_snapshot(&ex.text).unwrap_or_default();
            writeln!(
                out,
                "compared as a feed: {}\n",
                plural(entries.len(), "entry")
            )?;
            for e in &entries {
                out.push_str(&e.render());
                writeln!(out, "identity: {}\n", e.key)?;
            }
        }
        "version" => {
            let versions: Vec<crate::extract::version::Release> = ex
                .text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            writeln!(
                out,
                "compared as versions: {}; latest {}\n",
                plural(versions.len(), "version"),
                versions.last().map_or("-", |v| v.version.as_str())
            )?;
            for v in &versions {
                writeln!(out, "{}", v.version)?;
            }
        }
        _ => {
            writeln!(
                out,
                "compared as {}: {}{}\n",
                ex.format,
                plural(lines, "line"),
                if w.settings.spec.ignore.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", after deleting {} `ignore` pattern(s)",
                        w.settings.spec.ignore.len()
                    )
                }
            )?;
            out.push_str(&ex.text);
        }
    }
    out.push('\n');
    if w.settings.spec.masks.is_empty() {
        out.push_str("masks: off (masks = false)\n");
    } else {
        let found = w.settings.spec.masks.explain(&ex.text);
        if found.is_empty() {
            writeln!(
                out,
                "masks: none of {} matched",
                w.settings.spec.masks.names().join(", ")
            )?;
        } else {
            out.push_str(
                "masked when comparing (a change made only of these is noise, never an alert):\n",
            );
            for (mask, fragments) in &found {
                let shown: Vec<String> =
                    fragments.iter().take(5).map(|f| format!("{f:?}")).collect();
                let more = fragments.len().saturating_sub(5);
                writeln!(
                    out,
                    "  {} ({}): {}{}",
                    mask.name,
                    mask.what,
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )?;
            }
        }
    }
    // This watch's stored state only (a large database holds 100,000 of them).
    let store = Store::open_read_only(db)?;
    let state = match &store {
        Some(s) => s.load_states_of(&[w.name()])?.remove(w.name()),
        None => None,
    };
    if !w.settings.expect.is_empty() {
        let decoded =
            crate::extract::decode(&body, content_type.as_deref(), true).unwrap_or_default();
        let page = crate::extract::page_text(&body, content_type.as_deref());
        let previous = state
            .as_ref()
            .map(|s| s.contracts.clone())
            .unwrap_or_default();
        let (now, changes) = crate::judge::contract::evaluate(
            &w.settings.expect,
            status,
            &decoded,
            &page,
            &previous,
        );
        out.push_str("expectations:\n");
        for (label, check) in &now {
            let count = if label.starts_with("selector") {
                format!(
                    " ({} match{})",
                    check.count,
                    if check.count == 1 { "" } else { "es" }
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "  {} {label}{count}",
                if check.ok { "pass" } else { "FAIL" }
            )?;
        }
        for c in changes.iter().filter(|c| c.broken && !c.hints.is_empty()) {
            writeln!(
                out,
                "  hint for {}: maybe {}",
                c.label,
                c.hints
                    .iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    if let Some(s) = state.as_ref().filter(|s| !s.learned_masks.is_empty()) {
        out.push_str(
            "learned masks (lines that differed between two immediate fetches; masked when comparing):\n",
        );
        for p in &s.learned_masks {
            writeln!(out, "  {p}")?;
        }
    }
    out.push('\n');

    let previous = match (&store, state.as_ref().and_then(|s| s.last_snapshot_id)) {
        (Some(store), Some(id)) => store.snapshot(id)?,
        _ => None,
    };
    match previous {
        None => out
            .push_str("no stored snapshot yet: `forewarn check` will store this as the baseline\n"),
        Some(s) if s.content == ex.text => writeln!(
            out,
            "identical to the stored snapshot of {}",
            rfc3339(s.taken_at)
        )?,
        Some(s) => {
            let d = compare::diff(
                &s.content,
                &ex.text,
                &format!("{} {}", w.name(), rfc3339(s.taken_at)),
                &format!("{} now", w.name()),
            );
            if w.settings.spec.masked(&s.content) == w.settings.spec.masked(&ex.text) {
                writeln!(
                    out,
                    "differs from the stored snapshot of {} only in masked fragments: `check` records this as noise, not a change\n",
                    rfc3339(s.taken_at)
                )?;
            } else {
                writeln!(
                    out,
                    "differs from the stored snapshot of {}: {}\n",
                    rfc3339(s.taken_at),
                    compare::summary(&d, &w.settings.spec.select)
                )?;
            }
            out.push_str(&d.unified);
        }
    }
    print!("{out}");
    Ok(Exit::Ok)
}
