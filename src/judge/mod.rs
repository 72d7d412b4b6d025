//! Judging: what a check's new content means against the watch's stored state. Pure
//! functions of the fetched body, the stored state and the previous snapshot (read through
//! [`History`] only when a verdict needs it): no database, no clock but the outcome's time.
//! `check`, `watch` and `test` all judge through here.

pub mod contract;
mod decide;
pub mod learned;
pub mod plan;
mod state;
mod verdict;
pub mod volatile;

pub use plan::{Plan, Prior, plan};
pub use state::{Snapshot, WatchState};
pub use verdict::{AssetChange, NewContent, Outcome, Stored, Verdict};

use crate::compare;
use crate::config::Watch;
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

/// Where the first fetch's text is, when a detected change is confirmed by a second fetch:
/// a change carries it as its content; a change still pending (`confirm`) keeps it beside.
/// A huge page is not held twice while the second fetch is awaited.
pub enum First {
    InVerdict,
    Kept(String),
}

/// Decides what a 200 means for a watch: baseline, unchanged, changed or missing selector.
/// Also says where the extracted text is when a detected change should be confirmed by a
/// refetch.
pub fn judge_body(
    w: &Watch,
    state: Option<&WatchState>,
    fetched: Fetched,
    history: &dyn History,
    duration_ms: u64,
) -> (Outcome, Option<First>) {
    let Fetched::Body {
        status,
        body,
        content_type,
        etag,
        last_modified,
        requests,
        screenshot,
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
        screenshot,
        // `verify` reads the body as fetched: kept for the watches that have one.
        body: w.settings.verify.is_some().then(|| body.clone()),
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
    let (contracts, assets) = page_checks(w, state, status, &body, content_type.as_deref(), &ex);
    // `track_requests`: the requests the page's scripts made, against the last check's.
    let requests = requests.map(|now| {
        let change = state
            .and_then(|s| s.requests.as_deref())
            .and_then(|old| contract::asset_changes(old, &now));
        (now, change)
    });
    // A page whose last check found the very text stored does not churn from one request to
    // the next: a second fetch would only say so again (on a changed pass over 10,000 pages,
    // 411 refetches and half the bytes), so its change stands as seen.
    let refetch = w.settings.confirm_refetch
        && ex.format == "html"
        && state.is_some_and(|s| s.content_hash.is_some() && !s.last_identical);
    // Only a watch with `confirm` above 1 can be left pending, without the text as content.
    let kept = (refetch && w.settings.confirm > 1).then(|| ex.text.clone());
    let body = decide::Body {
        ex,
        raw_hash,
        bytes: body,
        content_type: content_type.as_deref(),
    };
    let verdict = decide::decide(w, state, body, history);
    let refetch = match (&verdict, kept) {
        _ if !refetch => None,
        (Verdict::Changed { .. }, _) => Some(First::InVerdict),
        (Verdict::Pending { .. }, Some(text)) => Some(First::Kept(text)),
        _ => None,
    };
    (
        Outcome {
            verdict,
            contracts,
            assets,
            requests,
            ..base
        },
        refetch,
    )
}

/// What holds on every successful fetch, changed content or not: the expectations, and the
/// page's bundles (`track_assets`).
type PageChecks = (
    Option<(contract::State, Vec<contract::Change>)>,
    Option<(Vec<String>, Option<AssetChange>)>,
);

fn page_checks(
    w: &Watch,
    state: Option<&WatchState>,
    status: u16,
    body: &[u8],
    content_type: Option<&str>,
    ex: &extract::Extracted,
) -> PageChecks {
    // Contracts hold or not on every successful fetch, changed content or not.
    let contracts = (!w.settings.expect.is_empty()).then(|| {
        let decoded = extract::decode(body, content_type, true).unwrap_or_default();
        let page = if w.settings.expect.text.is_empty() && w.settings.expect.absent.is_empty() {
            String::new()
        } else {
            extract::page_text(body, content_type)
        };
        let previous = state.map(|s| s.contracts.clone()).unwrap_or_default();
        contract::evaluate(&w.settings.expect, status, &decoded, &page, &previous)
    });
    let assets = (w.settings.track_assets && ex.format == "html").then(|| {
        let decoded = extract::decode(body, content_type, true).unwrap_or_default();
        let now = contract::assets(&decoded);
        let change = state
            .and_then(|s| s.assets.as_deref())
            .and_then(|old| contract::asset_changes(old, &now));
        (now, change)
    });
    (contracts, assets)
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
    let text = crate::extract::structure::split(&ex.text).0;
    if !w.settings.spec.select.is_empty() || ex.format != "html" || text.len() > 3000 {
        return None;
    }
    let lower = text.to_lowercase();
    BLOCK_PHRASES.iter().copied().find(|p| lower.contains(p))
}

/// After a refetch: lines that differ between the two immediate fetches are volatile. They are
/// learned as masks; if, with them, the page matches the stored snapshot, the change was noise.
pub fn relearn(
    w: &Watch,
    state: Option<&WatchState>,
    mut o: Outcome,
    first: First,
    second: Fetched,
    history: &dyn History,
) -> Outcome {
    let first = match first {
        First::Kept(text) => text,
        First::InVerdict => match &mut o.verdict {
            Verdict::Changed { content, .. } => std::mem::take(content),
            _ => return o,
        },
    };
    let (first, second) = second_text(w, &o, first, second);
    let mut o = match (state, second) {
        (Some(state), Some(ex2)) => relearn_with(w, state, o, &first, ex2, history),
        _ => o,
    };
    // A change that stands keeps the first fetch's text as its content.
    if let Verdict::Changed { content, .. } = &mut o.verdict
        && content.is_empty()
    {
        *content = first;
    }
    o
}

/// A huge first text waits compressed while the second page is parsed (zstd level 1 packs a
/// page's text 4-8x): else a changed 50 MB page that moves between two requests holds its
/// first text beside the second body, its HTML tree and its text.
const PACK_FROM: usize = 4 << 20;

/// The second fetch's extract, with the first text back: `None` when there is nothing to
/// learn from it (a failed fetch, an extract that failed, the very same bytes again).
fn second_text(
    w: &Watch,
    o: &Outcome,
    first: String,
    second: Fetched,
) -> (String, Option<Extracted>) {
    let Fetched::Body {
        body, content_type, ..
    } = second
    else {
        return (first, None);
    };
    if o.raw_hash == Some(compare::hash(&body)) {
        // The same bytes again: the same text, nothing that moved, nothing to learn (and a
        // huge page is not parsed a second time while its first text is held).
        return (first, None);
    }
    let packed =
        (first.len() >= PACK_FROM).then(|| crate::codec::compact(&first, crate::codec::FAST_LEVEL));
    let first = match packed {
        Some(_) => {
            drop(first);
            String::new()
        }
        None => first,
    };
    let ex2 = extract::for_watch(w, &body, content_type.as_deref()).ok();
    drop(body);
    // Bytes this thread packed from a String moments ago: they come back whole and UTF-8.
    let first = match packed {
        Some((encoding, blob)) => crate::codec::decode(encoding, &blob)
            .map(|b| String::from_utf8(b).expect("packed from a String"))
            .expect("bytes compressed in this process decompress"),
        None => first,
    };
    (first, ex2)
}

fn relearn_with(
    w: &Watch,
    state: &WatchState,
    mut o: Outcome,
    first: &str,
    ex2: Extracted,
    history: &dyn History,
) -> Outcome {
    if !ex2.missing.is_empty() {
        return o;
    }
    if learned::churns(first, &ex2.text) {
        // A page unlike itself moments later: nothing line by line to learn from it.
        o.churn = true;
        return o;
    }
    let previous = previous(state, history);
    let stored = previous.as_ref().map_or("", |s| s.content.as_str());
    let all = learned::learn(first, &ex2.text, stored, &state.learned_masks);
    drop(ex2);
    if all == state.learned_masks {
        return o;
    }
    let res = learned::compile(&all);
    let hash = decide::content_hash(&w.settings.spec, &res, first);
    o.learned = Some(all);
    if previous
        .as_ref()
        .is_some_and(|s| decide::content_hash(&w.settings.spec, &res, &s.content) == hash)
    {
        let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
        let d = compare::diff(
            old_text,
            first,
            &decide::label(w, previous.as_ref()),
            &decide::label(w, None),
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
