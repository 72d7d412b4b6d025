//! `forewarn test NAME`: fetch once, show what would be compared, and judge it against the
//! stored state exactly as `check` would (the same judge, the same confirming refetch), then
//! say what `check` would record. Writes nothing to the database.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Exit;
use crate::cli::TestArgs;
use crate::compare;
use crate::config::Watch;
use crate::event::rfc3339;
use crate::extract::{self, Extracted};
use crate::fetch::{Fetched, human_size};
use crate::judge::{self, Outcome, Snapshot, Verdict, WatchState};
use crate::pipeline;
use crate::store::Store;

type Out = std::fmt::Result;

pub fn run(db: &Path, watchlists: &[PathBuf], args: TestArgs) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let w = super::find_watch(&config, &args.name)?;
    let rt = super::runtime()?;
    let mut out = format!("{} ({})\n", w.name(), w.url_display());
    let sessions = Some(pipeline::sessions_dir(db));
    let browser = config.browser.clone().unwrap_or_default();
    let fetch = || rt.block_on(pipeline::fetch_once(w, sessions.clone(), &browser));
    let (fetched, took) = match fetch() {
        Ok((f @ Fetched::Body { .. }, took)) => (f, took),
        // An unconditional GET answered 304: the server is confused.
        Ok((Fetched::NotModified { .. }, _)) => {
            return failed(out, "the server answered 304 Not Modified to a plain GET");
        }
        Err(e) => {
            let sent = rt.block_on(pipeline::probe_once(w, SHOWN_BODY));
            if let Ok(probe) = sent {
                show_response(&mut out, &probe)?;
            }
            return failed(out, &e);
        }
    };
    let Fetched::Body {
        status,
        body,
        content_type,
        ..
    } = &fetched
    else {
        unreachable!("matched a body")
    };
    let ex = match extract::for_watch(w, body, content_type.as_deref()) {
        Ok(ex) => ex,
        Err(e) => {
            fetched_line(&mut out, *status, body, content_type.as_deref(), took)?;
            return failed(out, &e);
        }
    };
    fetched_line(&mut out, *status, body, content_type.as_deref(), took)?;
    show_extract(&mut out, w, &ex)?;
    show_masks(&mut out, w, &ex)?;

    // This watch's stored state only (a large database holds 100,000 of them).
    let store = Store::open_read_only(db)?;
    let state = match &store {
        Some(s) => s.load_states_of(&[w.name()])?.remove(w.name()),
        None => None,
    };
    let previous = match (&store, state.as_ref().and_then(|s| s.last_snapshot_id)) {
        (Some(store), Some(id)) => store.snapshot(id)?,
        _ => None,
    };
    let took_ms = took.as_millis() as u64;
    let o = judge_as_check(
        &fetch,
        w,
        state.as_ref(),
        fetched,
        &previous,
        took_ms,
        &mut out,
    )?;
    show_expectations(&mut out, &o)?;
    show_learned(&mut out, state.as_ref(), &o)?;
    out.push('\n');
    show_verdict(&mut out, &o, previous.as_ref(), &ex.text)?;
    let noise = matches!(o.verdict, Verdict::Noise { .. });
    let prior = match &store {
        Some(s) => s.prior_of(w.name(), noise)?.unwrap_or_default(),
        None => Default::default(),
    };
    show_plan(&mut out, &judge::plan(&prior, &o, None))?;
    print!("{out}");
    Ok(match o.verdict {
        Verdict::Failed { .. } => Exit::WatchesFailed,
        _ => Exit::Ok,
    })
}

/// How much of a failing response's body `test` shows.
const SHOWN_BODY: usize = 2048;

/// A failing response as the server sent it: status line, headers, the start of the body.
fn show_response(out: &mut String, probe: &crate::fetch::Probe) -> Out {
    writeln!(out, "the server sent:\n  {}", probe.status)?;
    for (name, value) in &probe.headers {
        let value: String = value.chars().take(200).collect();
        writeln!(out, "  {name}: {value}")?;
    }
    let text = String::from_utf8_lossy(&probe.body);
    if text.trim().is_empty() {
        return writeln!(out, "  (no body)\n");
    }
    writeln!(out)?;
    for line in text.lines().take(40) {
        writeln!(out, "  | {}", line.chars().take(200).collect::<String>())?;
    }
    if probe.cut || text.lines().count() > 40 {
        writeln!(out, "  | ... (the body goes on)")?;
    }
    writeln!(out)
}

fn failed(out: String, error: &str) -> anyhow::Result<Exit> {
    println!("{out}FAILED: {error}");
    Ok(Exit::WatchesFailed)
}

fn fetched_line(
    out: &mut String,
    status: u16,
    body: &[u8],
    content_type: Option<&str>,
    took: Duration,
) -> Out {
    writeln!(
        out,
        "HTTP {status}, {}, {} in {} ms",
        human_size(body.len() as u64),
        content_type.unwrap_or("no Content-Type"),
        took.as_millis()
    )
}

/// Judges the body as `check` does, confirming a change with a second fetch when `check`
/// would (the refetch learns the lines that differ between two immediate fetches).
fn judge_as_check(
    fetch: &dyn Fn() -> Result<(Fetched, std::time::Duration), String>,
    w: &Watch,
    state: Option<&WatchState>,
    fetched: Fetched,
    previous: &Option<Snapshot>,
    took_ms: u64,
    out: &mut String,
) -> Result<Outcome, std::fmt::Error> {
    let (o, refetch) = judge::judge_body(w, state, fetched, previous, took_ms);
    let Some(first) = refetch else {
        return Ok(o);
    };
    std::thread::sleep(pipeline::REFETCH_PAUSE);
    let second = fetch();
    match second {
        Ok((second, _)) => {
            writeln!(
                out,
                "a change: fetched a second time to tell churn from an edit, as `check` does (confirm_refetch)"
            )?;
            Ok(judge::relearn(w, state, o, first, second, previous))
        }
        Err(e) => {
            writeln!(out, "the confirming second fetch failed: {e}")?;
            Ok(o)
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "entry") => format!("{n} entries"),
        _ => format!("{n} {what}s"),
    }
}

/// What is compared: the feed's entries, the versions, or the extracted text.
fn show_extract(out: &mut String, w: &Watch, ex: &Extracted) -> Out {
    for m in &ex.missing {
        writeln!(
            out,
            "SELECTOR MISSING: `{m}` matched nothing: the page may have been redesigned"
        )?;
    }
    match ex.format {
        "feed" => {
            let entries = extract::feed::from_snapshot(&ex.text).unwrap_or_default();
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
            let versions: Vec<extract::version::Release> = ex
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
            let ignore = &w.settings.spec.ignore;
            let ignored = if ignore.is_empty() {
                String::new()
            } else {
                format!(", after deleting {} `ignore` pattern(s)", ignore.len())
            };
            let (text, structure) = extract::structure::split(&ex.text);
            let lines = plural(text.lines().count(), "line");
            writeln!(out, "compared as {}: {lines}{ignored}\n", ex.format)?;
            out.push_str(text);
            show_structure(out, structure)?;
        }
    }
    out.push('\n');
    Ok(())
}

/// The page's structure as compared: the ids, classes and test ids code reads.
fn show_structure(out: &mut String, structure: Option<&str>) -> Out {
    const SHOWN: usize = 40;
    let Some(structure) = structure else {
        return Ok(());
    };
    let all: Vec<&str> = structure.lines().collect();
    writeln!(
        out,
        "\nand its structure: {} (ids, classes and test ids code reads; a renamed one is a change)",
        plural(all.len(), "element")
    )?;
    for s in all.iter().take(SHOWN) {
        writeln!(out, "  {s}")?;
    }
    if all.len() > SHOWN {
        writeln!(out, "  and {} more", all.len() - SHOWN)?;
    }
    Ok(())
}

/// Which masks match what, with a few of the fragments each hides.
fn show_masks(out: &mut String, w: &Watch, ex: &Extracted) -> Out {
    let masks = &w.settings.spec.masks;
    if masks.is_empty() {
        out.push_str("masks: off (masks = false)\n");
        return Ok(());
    }
    let found = masks.explain(&ex.text);
    if found.is_empty() {
        return writeln!(out, "masks: none of {} matched", masks.names().join(", "));
    }
    out.push_str("masked when comparing (a change made only of these is noise, never an alert):\n");
    for (mask, fragments) in &found {
        writeln!(out, "  {} ({}):", mask.name, mask.what)?;
        for f in fragments.iter().take(5) {
            writeln!(out, "    {:?}: {}", f.text, f.why)?;
        }
        if fragments.len() > 5 {
            writeln!(out, "    and {} more", fragments.len() - 5)?;
        }
    }
    Ok(())
}

/// Each expectation as the judge evaluated it, with hints for the broken ones.
fn show_expectations(out: &mut String, o: &Outcome) -> Out {
    let Some((now, changes)) = &o.contracts else {
        return Ok(());
    };
    out.push_str("expectations:\n");
    for (label, check) in now {
        let count = match (label.starts_with("selector"), check.count) {
            (false, _) => String::new(),
            (true, 1) => " (1 match)".to_string(),
            (true, n) => format!(" ({n} matches)"),
        };
        let verdict = if check.ok { "pass" } else { "FAIL" };
        writeln!(out, "  {verdict} {label}{count}")?;
    }
    for c in changes.iter().filter(|c| c.broken && !c.hints.is_empty()) {
        let hints: Vec<String> = c.hints.iter().map(|h| format!("`{h}`")).collect();
        writeln!(out, "  hint for {}: maybe {}", c.label, hints.join(", "))?;
    }
    Ok(())
}

/// The learned masks the comparison used, and those this check's refetch learned.
fn show_learned(out: &mut String, state: Option<&WatchState>, o: &Outcome) -> Out {
    let known = state.map_or(&[][..], |s| s.learned_masks.as_slice());
    let all = o.learned.as_deref().unwrap_or(known);
    if all.is_empty() {
        return Ok(());
    }
    out.push_str(
        "learned masks (lines that differed between two immediate fetches; masked when comparing):\n",
    );
    for p in all {
        let new = if known.contains(p) { "" } else { " (new)" };
        writeln!(out, "  {p}{new}")?;
    }
    Ok(())
}

/// How the content compares with the stored snapshot, in the judge's words.
fn show_verdict(out: &mut String, o: &Outcome, previous: Option<&Snapshot>, text: &str) -> Out {
    let of = previous.map_or_else(
        || "the stored state".to_string(),
        |s| format!("the stored snapshot of {}", rfc3339(s.taken_at)),
    );
    match &o.verdict {
        Verdict::Baseline { reason: None, .. } if previous.is_none() => out
            .push_str("no stored snapshot yet: `forewarn check` will store this as the baseline\n"),
        Verdict::Baseline { reason, .. } => writeln!(
            out,
            "`forewarn check` would store this as a new baseline: {}",
            reason.as_deref().unwrap_or("nothing comparable is stored")
        )?,
        Verdict::Unchanged { .. } if previous.is_some_and(|s| s.content == text) => {
            writeln!(out, "identical to {of}")?
        }
        Verdict::Unchanged { .. } => writeln!(out, "unchanged since {of}")?,
        Verdict::Noise { summary, diff, .. } => {
            writeln!(
                out,
                "differs from {of} only in masked fragments: `check` records this as noise, not a change ({summary})\n"
            )?;
            out.push_str(diff);
        }
        Verdict::Pending {
            count, of: need, ..
        } => {
            writeln!(
                out,
                "differs from {of}: seen {count} of the {need} times in a row `confirm` asks for before it is reported\n"
            )?;
            if let Some(s) = previous {
                let d = compare::diff(&s.content, text, "stored", "now");
                out.push_str(&d.unified);
            }
        }
        Verdict::Changed { summary, diff, .. } => {
            writeln!(out, "differs from {of}: {summary}\n")?;
            out.push_str(diff);
        }
        Verdict::FeedChanged { .. } | Verdict::NewVersion { .. } => {
            writeln!(out, "differs from {of}")?
        }
        Verdict::SelectorMissing { selectors } => writeln!(
            out,
            "not compared: {} of the watch's `select` matched nothing",
            selectors.len()
        )?,
        Verdict::Failed { error, .. } => writeln!(out, "FAILED: {error}")?,
        Verdict::NotModified => {}
    }
    Ok(())
}

/// The events `check` would record now, from the judge's plan against the stored state.
fn show_plan(out: &mut String, plan: &judge::Plan) -> Out {
    let events: Vec<_> = plan.events.iter().map(|p| &p.event).collect();
    if events.is_empty() {
        return writeln!(out, "\n`forewarn check` would record: nothing new");
    }
    writeln!(out, "\n`forewarn check` would record:")?;
    for e in events {
        writeln!(out, "  {}: {}", e.kind.as_str(), e.summary)?;
    }
    Ok(())
}
