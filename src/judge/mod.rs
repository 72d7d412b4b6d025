//! Judging: what a check's new content means against the watch's stored state. Pure
//! functions of the fetched body, the stored state and the previous snapshot (read through
//! [`History`] only when a verdict needs it): no database, no clock but the outcome's time.
//! `check`, `watch` and `test` all judge through here.

pub mod contract;
pub mod learned;
pub mod plan;
mod state;
mod verdict;

pub use plan::{Plan, Prior, plan};
pub use state::{Snapshot, WatchState};
pub use verdict::{AssetChange, NewContent, Outcome, Stored, Verdict};

use crate::compare::{self, Hash};
use crate::config::Watch;
use crate::event::rfc3339;
use crate::extract::{self, Extracted};
use crate::fetch::Fetched;

/// Where the judge reads the snapshot a watch's stored content came from.
pub trait History {
    fn snapshot(&self, id: i64) -> Option<Snapshot>;
}

/// No history: every watch is judged as if nothing were stored beyond its state.
impl History for () {
    fn snapshot(&self, _: i64) -> Option<Snapshot> {
        None
    }
}

/// A snapshot in hand (what `forewarn test` read, or a test's).
impl History for Option<Snapshot> {
    fn snapshot(&self, id: i64) -> Option<Snapshot> {
        self.as_ref().filter(|s| s.id == id).cloned()
    }
}

/// The snapshot a watch's stored content came from.
fn previous(state: &WatchState, history: &dyn History) -> Option<Snapshot> {
    history.snapshot(state.last_snapshot_id?)
}

/// Decides what a 200 means for a watch: baseline, unchanged, changed or missing selector.
/// Also returns the extracted text when a detected change should be confirmed by a refetch.
pub fn judge_body(
    w: &Watch,
    state: Option<&WatchState>,
    fetched: Fetched,
    history: &dyn History,
    duration_ms: u64,
) -> (Outcome, Option<String>) {
    let Fetched::Body {
        status,
        body,
        content_type,
        etag,
        last_modified,
    } = fetched
    else {
        unreachable!("judge_body takes bodies")
    };
    let raw_hash = compare::hash(&body);
    let base = Outcome {
        status: Some(status),
        etag,
        last_modified,
        raw_hash: Some(raw_hash),
        ..Outcome::new(w, duration_ms, Verdict::NotModified)
    };
    let ex = match extract::for_watch(w, &body, content_type.as_deref()) {
        Ok(ex) => ex,
        Err(error) => {
            let o = Outcome {
                verdict: Verdict::Failed {
                    error,
                    blocked: false,
                },
                ..base
            };
            return (o, None);
        }
    };
    if let Some(phrase) = blocked_page(w, &ex) {
        let o = Outcome {
            verdict: Verdict::Failed {
                error: format!(
                    "blocked: the server answered with a block or captcha page (\"{phrase}\"), not the page; the last good snapshot is kept. Check less often, or set `headers` the site accepts"
                ),
                blocked: true,
            },
            ..base
        };
        return (o, None);
    }
    // Contracts hold or not on every successful fetch, changed content or not.
    let contracts = (!w.settings.expect.is_empty()).then(|| {
        let decoded = extract::decode(&body, content_type.as_deref(), true).unwrap_or_default();
        let page = if w.settings.expect.text.is_empty() && w.settings.expect.absent.is_empty() {
            String::new()
        } else {
            extract::page_text(&body, content_type.as_deref())
        };
        let previous = state.map(|s| s.contracts.clone()).unwrap_or_default();
        contract::evaluate(&w.settings.expect, status, &decoded, &page, &previous)
    });
    let assets = (w.settings.track_assets && ex.format == "html").then(|| {
        let decoded = extract::decode(&body, content_type.as_deref(), true).unwrap_or_default();
        let now = contract::assets(&decoded);
        let change = state
            .and_then(|s| s.assets.as_deref())
            .and_then(|old| contract::asset_changes(old, &now));
        (now, change)
    });
    let refetch = (w.settings.confirm_refetch
        && ex.format == "html"
        && state.is_some_and(|s| s.content_hash.is_some()))
    .then(|| ex.text.clone());
    let verdict = decide(
        w,
        state,
        ex,
        raw_hash,
        &body,
        content_type.as_deref(),
        history,
    );
    let refetch =
        refetch.filter(|_| matches!(verdict, Verdict::Changed { .. } | Verdict::Pending { .. }));
    (
        Outcome {
            verdict,
            contracts,
            assets,
            ..base
        },
        refetch,
    )
}

/// Phrases of block, challenge and captcha pages that answer 200.
const BLOCK_PHRASES: &[&str] = &[
    "access denied",
    "attention required",
    "just a moment...",
    "checking your browser",
    "verify you are human",
    "verify you are a human",
    "are you a robot",
    "complete the captcha",
    "enable javascript and cookies to continue",
    "request blocked",
    "unusual traffic from your computer",
    "pardon our interruption",
];

/// The block phrase a short whole-page extract carries, if it looks like a block page. A
/// `select`ed part is the user's choice and never second-guessed; a long page that merely
/// mentions a captcha is a page.
fn blocked_page(w: &Watch, ex: &Extracted) -> Option<&'static str> {
    if !w.settings.spec.select.is_empty() || ex.format != "html" || ex.text.len() > 3000 {
        return None;
    }
    let lower = ex.text.to_lowercase();
    BLOCK_PHRASES.iter().copied().find(|p| lower.contains(p))
}

/// After a refetch: lines that differ between the two immediate fetches are volatile. They are
/// learned as masks; if, with them, the page matches the stored snapshot, the change was noise.
pub fn relearn(
    w: &Watch,
    state: Option<&WatchState>,
    mut o: Outcome,
    first: &str,
    second: Fetched,
    history: &dyn History,
) -> Outcome {
    let (
        Some(state),
        Fetched::Body {
            body, content_type, ..
        },
    ) = (state, second)
    else {
        return o;
    };
    let Ok(ex2) = extract::for_watch(w, &body, content_type.as_deref()) else {
        return o;
    };
    if !ex2.missing.is_empty() {
        return o;
    }
    let known = learned::compile(&state.learned_masks);
    let new = learned::learn(first, &ex2.text, &known);
    if new.is_empty() {
        return o;
    }
    let mut all = state.learned_masks.clone();
    all.extend(new);
    if all.len() > learned::MAX_LEARNED {
        all.drain(..all.len() - learned::MAX_LEARNED);
    }
    let res = learned::compile(&all);
    let hash = content_hash(&w.settings.spec, &res, first);
    let previous = previous(state, history);
    o.learned = Some(all);
    if previous
        .as_ref()
        .is_some_and(|s| content_hash(&w.settings.spec, &res, &s.content) == hash)
    {
        let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
        let d = compare::diff(
            old_text,
            first,
            &label(w, previous.as_ref()),
            &label(w, None),
        );
        o.verdict = Verdict::Noise {
            hash: Some(hash),
            text_hash: compare::hash(first.as_bytes()),
            summary: "only fragments that differ between two immediate fetches changed (learned masks); not a change".into(),
            diff: d.unified,
            masks: vec!["learned".into()],
        };
    } else {
        match &mut o.verdict {
            Verdict::Changed { hash: h, .. } | Verdict::Pending { hash: h, .. } => *h = hash,
            _ => {}
        }
    }
    o
}

fn decide(
    w: &Watch,
    state: Option<&WatchState>,
    ex: Extracted,
    raw_hash: Hash,
    body: &[u8],
    content_type: Option<&str>,
    history: &dyn History,
) -> Verdict {
    if !ex.missing.is_empty() {
        return Verdict::SelectorMissing {
            selectors: ex.missing,
        };
    }
    if ex.format == "feed" {
        return decide_feed(w, state, ex, history);
    }
    if ex.format == "version" {
        return decide_version(w, state, ex, history);
    }
    let text_hash = compare::hash(ex.text.as_bytes());
    let spec = w.settings.spec.fingerprint();
    // The very text stored, under the same settings: unchanged, without masking it again (a
    // rotated ETag, a file rewritten byte for byte).
    if state.is_some_and(|s| {
        s.content_hash.is_some()
            && s.text_hash == Some(text_hash)
            && s.spec.as_deref() == Some(spec.as_str())
    }) {
        return Verdict::Unchanged { text_hash };
    }
    let Some((state, stored_hash)) = state.and_then(|s| s.content_hash.map(|h| (s, h))) else {
        // First sight stores the text's own hash: the masked one is taken from the snapshot
        // when a later text differs (below), so a cold pass never runs the masks.
        return Verdict::Baseline {
            content: ex.text,
            hash: text_hash,
            text_hash,
            spec,
            reason: None,
        };
    };
    let learned = learned::compile(&state.learned_masks);
    let hash = content_hash(&w.settings.spec, &learned, &ex.text);
    let mut read_before = None;
    let old_hash = if state.text_hash == Some(stored_hash) {
        // Stored unmasked (first sight), or masks that hid nothing: mask the stored text now,
        // under the settings it was extracted with.
        let old_spec = match state.spec.as_deref() {
            Some(s) if s != spec => extract::ExtractSpec::from_fingerprint(s),
            _ => None,
        };
        let old = previous(state, history);
        let h = old.as_ref().map_or(stored_hash, |o| {
            content_hash(
                old_spec.as_ref().unwrap_or(&w.settings.spec),
                &learned,
                &o.content,
            )
        });
        read_before = Some(old);
        h
    } else {
        stored_hash
    };
    let mut previous = || {
        read_before
            .take()
            .unwrap_or_else(|| previous(state, history))
    };
    if old_hash == hash {
        if state.text_hash.is_none_or(|t| t == text_hash) {
            return Verdict::Unchanged { text_hash };
        }
        // Only masked fragments differ: recorded as noise, with the real diff, never notified.
        let previous = previous();
        let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
        let d = compare::diff(
            old_text,
            &ex.text,
            &label(w, previous.as_ref()),
            &label(w, None),
        );
        let masks = changed_masks(&w.settings.spec.masks, old_text, &ex.text);
        return Verdict::Noise {
            // The masked hash, now known: the stored one may have been the old text's own.
            hash: Some(hash),
            text_hash,
            summary: format!(
                "only volatile fragments changed ({}); not a change",
                if masks.is_empty() {
                    "masked".to_string()
                } else {
                    masks.join(", ")
                }
            ),
            diff: d.unified,
            masks,
        };
    }
    let mut note = "";
    if state.spec.as_deref().is_some_and(|s| s != spec) {
        // The user edited the watch's settings: unchanged upstream content is a new baseline,
        // not an alert. Upstream changed when the body under the old settings differs.
        let upstream_same = state.raw_hash == Some(raw_hash)
            || state
                .spec
                .as_deref()
                .and_then(extract::ExtractSpec::from_fingerprint)
                .and_then(|old| {
                    let ex = extract::extract(&old, body, content_type).ok()?;
                    Some(content_hash(&old, &learned, &ex.text))
                })
                .is_some_and(|h| h == old_hash);
        if upstream_same {
            return Verdict::Baseline {
                content: ex.text,
                hash,
                text_hash,
                spec,
                reason: Some(
                    "the watch's settings changed (select, remove, ignore, masks or kind)".into(),
                ),
            };
        }
        note = " (the watch's settings changed too)";
    } else if w.settings.confirm > 1 {
        // Persistence: a change must be seen on `confirm` consecutive checks.
        let count = if state.pending_hash == Some(hash) {
            state.pending_count + 1
        } else {
            1
        };
        if count < w.settings.confirm {
            return Verdict::Pending {
                hash,
                count,
                of: w.settings.confirm,
            };
        }
    }
    let previous = previous();
    let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
    let d = compare::diff(
        old_text,
        &ex.text,
        &label(w, previous.as_ref()),
        &label(w, None),
    );
    let mut summary = format!("{}{note}", compare::summary(&d, &w.settings.spec.select));
    let json = (ex.format == "json")
        .then(|| json_changes(old_text, &ex.text))
        .flatten();
    if let Some((_, values)) = &json
        && let Some(first) = values.first()
    {
        summary = format!(
            "{} value{} changed: {first}{}{note}",
            values.len(),
            if values.len() == 1 { "" } else { "s" },
            if values.len() > 1 { ", ..." } else { "" }
        );
    }
    Verdict::Changed {
        json,
        content: ex.text,
        hash,
        text_hash,
        spec,
        summary,
        diff: d.unified,
        added: d.added,
        removed: d.removed,
        previous_snapshot: previous.map(|s| s.id),
    }
}

/// A feed is compared entry by entry: new entries and edited ones are news; entries that left
/// the feed's window, reordering and feed-level fields are not.
fn decide_feed(
    w: &Watch,
    state: Option<&WatchState>,
    ex: Extracted,
    history: &dyn History,
) -> Verdict {
    use crate::extract::feed;
    let entries = feed::from_snapshot(&ex.text).unwrap_or_default();
    let text_hash = compare::hash(ex.text.as_bytes());
    // Order-free identity: the same entries in another order hash the same.
    let mut sorted = entries.clone();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let hash = compare::hash(feed::to_snapshot(&sorted).as_bytes());
    let spec = w.settings.spec.fingerprint();
    let baseline = |reason: Option<String>| Verdict::Baseline {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec: spec.clone(),
        reason,
    };
    let state = match settled(state, hash) {
        Settled::FirstSight => return baseline(None),
        Settled::Same => return Verdict::Unchanged { text_hash },
        Settled::Compare(state) => state,
    };
    let previous = previous(state, history);
    let Some(old) = previous
        .as_ref()
        .and_then(|s| feed::from_snapshot(&s.content))
    else {
        return baseline(Some("the watch is now read as a feed".into()));
    };
    let changes = feed::compare(&old, &entries);
    let mut new: Vec<_> = changes
        .new
        .into_iter()
        .filter(|e| w.settings.feed.wants(&e.title))
        .collect();
    let updated: Vec<_> = changes
        .updated
        .into_iter()
        .filter(|(_, e)| w.settings.feed.wants(&e.title))
        .map(|(before, after)| {
            let d = compare::diff(&before.render(), &after.render(), "before", "after");
            (after, d.unified)
        })
        .collect();
    if new.is_empty() && updated.is_empty() {
        // Only the window moved, or only entries that `match` / `exclude` leave out.
        return Verdict::Unchanged { text_hash };
    }
    let more = new.len().saturating_sub(w.settings.feed.max_entries);
    new.truncate(w.settings.feed.max_entries);
    Verdict::FeedChanged {
        content: ex.text,
        hash,
        text_hash,
        spec,
        new,
        updated,
        more,
    }
}

/// A version watch reports a newer latest version; other movement in the list (a backport on
/// an older branch, a yanked release) is stored quietly.
fn decide_version(
    w: &Watch,
    state: Option<&WatchState>,
    ex: Extracted,
    history: &dyn History,
) -> Verdict {
    use crate::extract::version::{Release, bump, compare};
    let parse = |t: &str| -> Vec<Release> {
        t.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let releases = parse(&ex.text);
    let text_hash = compare::hash(ex.text.as_bytes());
    let hash = text_hash;
    let spec = w.settings.spec.fingerprint();
    let baseline = |reason: Option<String>| Verdict::Baseline {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec: spec.clone(),
        reason,
    };
    let state = match settled(state, hash) {
        Settled::FirstSight => return baseline(None),
        Settled::Same => return Verdict::Unchanged { text_hash },
        Settled::Compare(state) => state,
    };
    let old = previous(state, history)
        .map(|s| parse(&s.content))
        .unwrap_or_default();
    let (Some(old_latest), Some(latest)) = (old.last(), releases.last()) else {
        return baseline(Some("the stored version list was unreadable".into()));
    };
    if compare(&latest.version, &old_latest.version) != std::cmp::Ordering::Greater {
        return baseline(Some(format!(
            "the version list changed; the latest is still {}",
            old_latest.version
        )));
    }
    let skipped = releases
        .iter()
        .filter(|r| {
            compare(&r.version, &old_latest.version) == std::cmp::Ordering::Greater
                && compare(&r.version, &latest.version) == std::cmp::Ordering::Less
        })
        .map(|r| r.version.clone())
        .collect();
    Verdict::NewVersion {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec,
        old: old_latest.version.clone(),
        bump: bump(&old_latest.version, &latest.version),
        new: latest.clone(),
        skipped,
    }
}

/// Where an entry- or version-level comparison stands before comparing anything.
enum Settled<'a> {
    /// Nothing stored yet: store a baseline.
    FirstSight,
    /// The same content as stored.
    Same,
    /// Different content: compare with this state.
    Compare(&'a WatchState),
}

fn settled(state: Option<&WatchState>, hash: Hash) -> Settled<'_> {
    match state.filter(|s| s.content_hash.is_some()) {
        None => Settled::FirstSight,
        Some(s) if s.content_hash == Some(hash) => Settled::Same,
        Some(s) => Settled::Compare(s),
    }
}

/// The hash that decides "changed": the text with learned, then built-in masks applied.
fn content_hash(
    spec: &crate::config::spec::ExtractSpec,
    learned: &[regex::Regex],
    text: &str,
) -> Hash {
    compare::hash(spec.masked(&learned::apply(learned, text)).as_bytes())
}

/// JSON: structure changes, and value changes that are not just the structure changing
/// (a field that appeared or vanished is reported as structure).
fn json_changes(
    old: &str,
    new: &str,
) -> Option<(crate::extract::json::SchemaChanges, Vec<String>)> {
    use crate::extract::json;
    let a: serde_json::Value = serde_json::from_str(old).ok()?;
    let b: serde_json::Value = serde_json::from_str(new).ok()?;
    let (sa, sb) = (json::structure(&a), json::structure(&b));
    let mut schema = json::schema_changes(&sa, &sb);
    schema.api = json::openapi_changes(&a, &b);
    let general = |p: &str| {
        let mut out = String::new();
        let mut depth = 0;
        for c in p.chars() {
            match c {
                '[' => {
                    depth += 1;
                    if depth == 1 {
                        out.push_str("[*]");
                    }
                }
                ']' => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let values: Vec<String> = json::value_changes(&a, &b)
        .into_iter()
        .filter(|line| {
            let path = line.trim_start_matches('`').split('`').next().unwrap_or("");
            let g = general(path);
            // A change of type is structure; a field that came or went is structure too.
            match (sa.get(&g), sb.get(&g)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            }
        })
        .collect();
    Some((schema, values))
}

/// A diff header: the watch and the snapshot's time (now for the new side).
fn label(w: &Watch, snapshot: Option<&Snapshot>) -> String {
    match snapshot {
        Some(s) => format!("{} {}", w.name(), rfc3339(s.taken_at)),
        None => format!("{} {}", w.name(), rfc3339(crate::schedule::now())),
    }
}

/// The masks whose fragments differ between two texts.
fn changed_masks(masks: &crate::config::masks::MaskSet, old: &str, new: &str) -> Vec<String> {
    let before = masks.explain(old);
    let after = masks.explain(new);
    masks
        .names()
        .iter()
        .filter(|name| {
            let pick = |v: &[(&crate::config::masks::Mask, Vec<String>)]| {
                v.iter()
                    .find(|(m, _)| m.name == **name)
                    .map(|(_, f)| f.clone())
            };
            pick(&before) != pick(&after)
        })
        .map(|n| n.to_string())
        .collect()
}
