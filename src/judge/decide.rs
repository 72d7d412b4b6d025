//! The verdict on new content against the stored state: text (with masks, learned masks,
//! settings edits and `confirm`), feeds entry by entry, versions by the latest.

use std::borrow::Cow;

use super::{History, Snapshot, Verdict, WatchState, learned, previous};
use crate::compare::{self, Hash};
use crate::config::Watch;
use crate::event::rfc3339;
use crate::extract::{self, Extracted, structure};

/// What the fetched body, extracted, means against the stored state.
pub(super) struct Body<'a> {
    pub ex: Extracted,
    pub raw_hash: Hash,
    /// The body as fetched, owned so that it is freed once the settings check no longer
    /// needs it, before the diff (a huge page is not held beside both texts and the diff).
    pub bytes: Vec<u8>,
    pub content_type: Option<&'a str>,
}

pub(super) fn decide(
    w: &Watch,
    state: Option<&WatchState>,
    body: Body<'_>,
    history: &dyn History,
) -> Verdict {
    if !body.ex.missing.is_empty() {
        return Verdict::SelectorMissing {
            selectors: body.ex.missing,
        };
    }
    match body.ex.format {
        "feed" => decide_feed(w, state, body.ex, history),
        "version" => decide_version(w, state, body.ex, history),
        _ => decide_text(w, state, body, history),
    }
}

/// A first sight, or content stored anew without a change to report.
fn baseline(
    ex: &Extracted,
    hash: Hash,
    text_hash: Hash,
    spec: &str,
    reason: Option<String>,
) -> Verdict {
    Verdict::Baseline {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec: spec.to_string(),
        reason,
    }
}

/// The snapshot the stored content came from, read at most once per check.
struct Previous<'a> {
    state: &'a WatchState,
    history: &'a dyn History,
    read: Option<Option<Snapshot>>,
}

impl Previous<'_> {
    fn get(&mut self) -> Option<&Snapshot> {
        let (state, history) = (self.state, self.history);
        self.read
            .get_or_insert_with(|| previous(state, history))
            .as_ref()
    }

    fn take(mut self) -> Option<Snapshot> {
        self.get();
        self.read.flatten()
    }
}

/// A page, JSON document or text: compared as a whole, masked.
fn decide_text(
    w: &Watch,
    state: Option<&WatchState>,
    body: Body<'_>,
    history: &dyn History,
) -> Verdict {
    let ex = &body.ex;
    let text_hash = compare::hash(ex.text.as_bytes());
    let spec = w.settings.spec.fingerprint();
    // The very text stored, under the same settings: unchanged, without masking it again (a
    // rotated ETag, a file rewritten byte for byte).
    if state.is_some_and(|s| {
        s.content_hash.is_some()
            && s.text_hash == Some(text_hash)
            && s.spec.as_deref() == Some(spec)
    }) {
        return Verdict::Unchanged { text_hash };
    }
    let Some((state, stored_hash)) = state.and_then(|s| s.content_hash.map(|h| (s, h))) else {
        // First sight stores the text's own hash: the masked one is taken from the snapshot
        // when a later text differs (below), so a cold pass never runs the masks. The text
        // is moved into the verdict, not copied.
        return Verdict::Baseline {
            content: body.ex.text,
            hash: text_hash,
            text_hash,
            spec: spec.to_string(),
            reason: None,
        };
    };
    let mut previous = Previous {
        state,
        history,
        read: None,
    };
    if let Some(lines) = differs_on_its_lines(w, state, stored_hash, spec, &ex.text, &mut previous)
    {
        // Stored with its own hash, as a first sight is: the next text that differs is
        // judged against this one's lines again.
        let masking = Masking {
            learned: &[],
            lines: Some(lines),
        };
        return change(
            w,
            body,
            (text_hash, text_hash),
            (spec, ""),
            masking,
            previous,
        );
    }
    let learned = learned::compile(&state.learned_masks);
    let hash = content_hash(&w.settings.spec, &learned, &ex.text);
    let old_hash = stored_masked_hash(w, state, stored_hash, spec, &learned, &mut previous);
    if old_hash == hash {
        if state.text_hash.is_none_or(|t| t == text_hash) {
            return Verdict::Unchanged { text_hash };
        }
        return noise(w, &ex.text, hash, text_hash, previous.take());
    }
    let mut note = "";
    if state.spec.as_deref().is_some_and(|s| s != spec) {
        // The user edited the watch's settings: unchanged upstream content is a new baseline,
        // not an alert. Upstream changed when the body under the old settings differs.
        if upstream_same(state, &body, &learned, old_hash) {
            let reason = if only_structure_added(state, spec) {
                "forewarn now also compares the page's structure (ids, classes, test ids)"
            } else {
                "the watch's settings changed (select, remove, ignore, masks or kind)"
            };
            return baseline(ex, hash, text_hash, spec, Some(reason.into()));
        }
        note = " (the watch's settings changed too)";
    } else if let Some(pending) = pending(w, state, hash) {
        return pending;
    }
    let masking = Masking {
        learned: &learned,
        lines: None,
    };
    change(w, body, (hash, text_hash), (spec, note), masking, previous)
}

/// [`changed`], once the body as fetched is freed (a huge page is not held beside both
/// texts and the diff).
fn change(
    w: &Watch,
    body: Body<'_>,
    hashes: (Hash, Hash),
    (spec, note): (&str, &str),
    masking: Masking<'_>,
    previous: Previous<'_>,
) -> Verdict {
    let Body { ex, bytes, .. } = body;
    drop(bytes);
    let previous = previous.take();
    changed(w, ex, hashes, spec.to_string(), note, masking, previous)
}

/// Whether the new text differs from the stored one once masked, told from the lines where
/// they differ alone (masks work line by line, see [`crate::config::masks`]): masking both
/// whole pages was the largest part of judging a changed page. Only where the stored content is the
/// snapshot's own text under the watch's settings, with no learned masks (which may span
/// lines) and no `confirm` (which counts masked hashes). The lines, when they differ; `None`
/// leaves the whole judgment to the caller, which also tells noise from no change.
fn differs_on_its_lines(
    w: &Watch,
    state: &WatchState,
    stored_hash: Hash,
    spec: &str,
    text: &str,
    previous: &mut Previous<'_>,
) -> Option<MaskedLines> {
    let applies = state.text_hash == Some(stored_hash)
        && state.spec.as_deref() == Some(spec)
        && state.learned_masks.is_empty()
        && w.settings.confirm <= 1;
    if !applies {
        return None;
    }
    let old = &previous.get()?.content;
    let at = compare::differing_ranges(old, text);
    let spec = &w.settings.spec;
    let masked = (
        spec.masked(&old[at.0.clone()]),
        spec.masked(&text[at.1.clone()]),
    );
    if masked.0 == masked.1 {
        return None;
    }
    let hid = matches!(masked, (Cow::Owned(_), _) | (_, Cow::Owned(_)));
    Some(MaskedLines {
        at,
        masked: hid.then(|| (masked.0.into_owned(), masked.1.into_owned())),
    })
}

/// The lines where the stored and the new content differ, as masked when that decided a
/// change: the change's counts take them rather than masking them again (a page changed
/// throughout would be masked twice).
struct MaskedLines {
    /// Where they are in the old and the new content.
    at: (std::ops::Range<usize>, std::ops::Range<usize>),
    /// Both masked, when the masks hid something in them.
    masked: Option<(String, String)>,
}

/// How a change's lines are masked for its counts: the learned masks, and the lines already
/// masked, if any.
struct Masking<'a> {
    learned: &'a [regex::Regex],
    lines: Option<MaskedLines>,
}

/// The stored content's masked hash. Stored unmasked (first sight, a change judged on its
/// lines), or under masks that hid nothing, the stored text is masked now, under the settings
/// it was extracted with.
fn stored_masked_hash(
    w: &Watch,
    state: &WatchState,
    stored_hash: Hash,
    spec: &str,
    learned: &[regex::Regex],
    previous: &mut Previous<'_>,
) -> Hash {
    if state.text_hash != Some(stored_hash) {
        return stored_hash;
    }
    let old_spec = match state.spec.as_deref() {
        Some(s) if s != spec => extract::ExtractSpec::from_fingerprint(s),
        _ => None,
    };
    match (previous.get(), old_spec) {
        (None, _) => stored_hash,
        (Some(o), None) => content_hash(&w.settings.spec, learned, &o.content),
        (Some(o), Some(old)) => content_hash(&old, learned, &o.content),
    }
}

/// Whether the stored settings differ from the watch's only in reading the page's structure
/// (stored before forewarn read it).
fn only_structure_added(state: &WatchState, spec: &str) -> bool {
    state
        .spec
        .as_deref()
        .and_then(extract::ExtractSpec::from_fingerprint)
        .is_some_and(|old| !old.structure && old.with_structure(true).fingerprint() == spec)
}

/// Whether the body, extracted under the watch's old settings, is what was stored.
fn upstream_same(
    state: &WatchState,
    body: &Body<'_>,
    learned: &[regex::Regex],
    old_hash: Hash,
) -> bool {
    state.raw_hash == Some(body.raw_hash)
        || state
            .spec
            .as_deref()
            .and_then(extract::ExtractSpec::from_fingerprint)
            .and_then(|old| {
                let ex = extract::extract(&old, &body.bytes, body.content_type).ok()?;
                Some(content_hash(&old, learned, &ex.text))
            })
            .is_some_and(|h| h == old_hash)
}

/// Persistence: a change must be seen on `confirm` consecutive checks.
fn pending(w: &Watch, state: &WatchState, hash: Hash) -> Option<Verdict> {
    if w.settings.confirm <= 1 {
        return None;
    }
    let count = if state.pending_hash == Some(hash) {
        state.pending_count + 1
    } else {
        1
    };
    (count < w.settings.confirm).then_some(Verdict::Pending {
        hash,
        count,
        of: w.settings.confirm,
    })
}

/// Only masked fragments differ: recorded as noise, with the real diff, never notified.
fn noise(
    w: &Watch,
    text: &str,
    hash: Hash,
    text_hash: Hash,
    previous: Option<Snapshot>,
) -> Verdict {
    let old_content = previous.as_ref().map_or("", |s| s.content.as_str());
    let (old_text, new_text) = (structure::split(old_content).0, structure::split(text).0);
    let d = compare::diff(
        old_text,
        new_text,
        &label(w, previous.as_ref()),
        &label(w, None),
    );
    let masks = changed_masks(&w.settings.spec.masks, old_content, text);
    let which = if masks.is_empty() {
        "masked".to_string()
    } else {
        masks.join(", ")
    };
    Verdict::Noise {
        // The masked hash, now known: the stored one may have been the old text's own.
        hash: Some(hash),
        text_hash,
        summary: format!("only volatile fragments changed ({which}); not a change"),
        diff: d.unified,
        masks,
    }
}

/// A change: the diff of the text, what went and came in a page's structure, and for JSON
/// what changed in structure and values.
fn changed(
    w: &Watch,
    ex: Extracted,
    (hash, text_hash): (Hash, Hash),
    spec: String,
    note: &str,
    masking: Masking<'_>,
    previous: Option<Snapshot>,
) -> Verdict {
    let old_content = previous.as_ref().map_or("", |s| s.content.as_str());
    let (old_text, old_structure) = structure::split(old_content);
    let (new_text, new_structure) = structure::split(&ex.text);
    // The counts leave out lines where only masked fragments moved; the diff shows them all.
    // Only the lines that differ are masked (masks work line by line); where the masks hid
    // nothing there, the counts are the diff's. Counted first, so the masked copies are gone
    // before the diff is made.
    let Masking { learned, lines } = masking;
    let counts = {
        // The text parts begin their contents: the same lines, unless the structure changed.
        let at = compare::differing_ranges(old_text, new_text);
        match lines.as_ref().filter(|l| l.at == at) {
            Some(lines) => lines
                .masked
                .as_ref()
                .map(|(old, new)| compare::count_lines(old, new)),
            None => {
                let old = masked(w, learned, &old_text[at.0]);
                let new = masked(w, learned, &new_text[at.1]);
                let hid = matches!(old, Cow::Owned(_)) || matches!(new, Cow::Owned(_));
                hid.then(|| compare::count_lines(&old, &new))
            }
        }
    };
    drop(lines);
    let mut d = compare::diff(
        old_text,
        new_text,
        &label(w, previous.as_ref()),
        &label(w, None),
    );
    if let Some((added, removed)) = counts.filter(|(a, r)| a + r > 0) {
        (d.added, d.removed) = (added, removed);
    }
    let structure = structure::compare(old_structure, new_structure);
    let mut summary = match (&structure, d.added + d.removed) {
        (Some(s), 0) => format!("{}{note}", structure_summary(s)),
        (Some(s), _) => format!(
            "{}; {}{note}",
            compare::summary(&d, &w.settings.spec.select),
            structure_summary(s)
        ),
        (None, _) => format!("{}{note}", compare::summary(&d, &w.settings.spec.select)),
    };
    let mut json = matches!(ex.format, "json" | "yaml")
        .then(|| json_changes(old_text, new_text))
        .flatten();
    if let Some((_, values)) = &mut json {
        // Stamps (`feed_updated`) go last and are not counted: the news leads.
        // Each value masked once (a sort asks for its key many times).
        let mut keyed: Vec<(bool, String)> = std::mem::take(values)
            .into_iter()
            .map(|v| (stamp_only(&masked(w, learned, &v)), v))
            .collect();
        keyed.sort_by_key(|(stamp, _)| *stamp);
        let news = keyed.iter().filter(|(stamp, _)| !stamp).count();
        *values = keyed.into_iter().map(|(_, v)| v).collect();
        let n = if news == 0 { values.len() } else { news };
        if let Some(first) = values.first() {
            summary = format!(
                "{n} value{} changed: {first}{}{note}",
                if n == 1 { "" } else { "s" },
                if n > 1 { ", ..." } else { "" }
            );
        }
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
        structure,
    }
}

/// Whether a value change line ("`$.a`: old -> new"), masked, says the same on both sides.
fn stamp_only(masked_line: &str) -> bool {
    masked_line
        .split_once(" -> ")
        .and_then(|(before, after)| Some((before.split_once("`: ")?.1, after)))
        .is_some_and(|(old, new)| old == new)
}

/// A structure change in a few words: the signatures themselves when there are few.
fn structure_summary(s: &structure::Changes) -> String {
    let list = |v: &[String]| {
        let shown: Vec<String> = v.iter().take(2).map(|x| format!("`{x}`")).collect();
        let more = v.len().saturating_sub(2);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    match (s.removed.is_empty(), s.added.is_empty()) {
        (false, false) => format!(
            "structure: removed {}; added {}",
            list(&s.removed),
            list(&s.added)
        ),
        (false, true) => format!("structure: removed {}", list(&s.removed)),
        _ => format!("structure: added {}", list(&s.added)),
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
    let baseline = |reason| baseline(&ex, hash, text_hash, spec, reason);
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
        spec: spec.to_string(),
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
    let baseline = |reason| baseline(&ex, hash, text_hash, spec, reason);
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
        spec: spec.to_string(),
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

/// The text with learned, then built-in masks applied; borrowed when none of them matched.
fn masked<'a>(w: &Watch, learned: &[regex::Regex], text: &'a str) -> Cow<'a, str> {
    masked_with(&w.settings.spec, learned, text)
}

/// The hash that decides "changed": the text with learned, then built-in masks applied.
pub(super) fn content_hash(
    spec: &crate::config::spec::ExtractSpec,
    learned: &[regex::Regex],
    text: &str,
) -> Hash {
    compare::hash(masked_with(spec, learned, text).as_bytes())
}

/// The text with learned, then built-in masks applied.
fn masked_with<'a>(
    spec: &crate::config::spec::ExtractSpec,
    learned: &[regex::Regex],
    text: &'a str,
) -> Cow<'a, str> {
    match learned::apply(learned, text) {
        Cow::Borrowed(t) => spec.masked(t),
        Cow::Owned(t) => Cow::Owned(spec.masked(&t).into_owned()),
    }
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
    let mut schema = json::describe_changes_of((&a, &sa), (&b, &sb));
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
pub(super) fn label(w: &Watch, snapshot: Option<&Snapshot>) -> String {
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
            let pick = |v: &[(
                &crate::config::masks::Mask,
                Vec<crate::config::masks::Fragment>,
            )]| {
                v.iter()
                    .find(|(m, _)| m.name == **name)
                    .map(|(_, f)| f.clone())
            };
            pick(&before) != pick(&after)
        })
        .map(|n| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Snapshot, Verdict, WatchState, judge_body};
    use crate::config::{Config, Watch};
    use crate::fetch::Fetched;

    const HTML: &str = "text/html";
    const RSS: &str = "application/rss+xml";

    fn watch(extra: &str) -> Watch {
        let src = format!("[[watch]]\nname = \"w\"\nurl = \"http://127.0.0.1/\"\n{extra}\n");
        let (mut config, mut errors) = (Config::default(), Vec::new());
        crate::config::parse_file(Path::new("t.toml"), &src, &mut config, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        config.watches.remove(0)
    }

    fn body(text: &str, content_type: &str) -> Fetched {
        Fetched::Body {
            status: 200,
            body: text.as_bytes().to_vec(),
            content_type: Some(content_type.into()),
            etag: None,
            last_modified: None,
            requests: None,
            screenshot: None,
        }
    }

    fn word(v: &Verdict) -> &'static str {
        match v {
            Verdict::NotModified => "not_modified",
            Verdict::Unchanged { .. } => "unchanged",
            Verdict::Noise { .. } => "noise",
            Verdict::Pending { .. } => "pending",
            Verdict::Baseline { reason: None, .. } => "baseline",
            Verdict::Baseline { .. } => "rebaseline",
            Verdict::Changed { .. } => "changed",
            Verdict::FeedChanged { .. } => "feed_changed",
            Verdict::NewVersion { .. } => "new_version",
            Verdict::SelectorMissing { .. } => "selector_missing",
            Verdict::Failed { blocked: true, .. } => "blocked",
            Verdict::Failed { .. } => "failed",
        }
    }

    /// What a check stores after a first sight of `first`: the state and its snapshot.
    fn stored(w: &Watch, first: Fetched) -> (WatchState, Option<Snapshot>) {
        let (o, _) = judge_body(w, None, first, &(), 0);
        let Verdict::Baseline {
            content,
            hash,
            text_hash,
            spec,
            ..
        } = o.verdict
        else {
            panic!("a first sight is a baseline: {:?}", o.verdict);
        };
        let state = WatchState {
            content_hash: Some(hash),
            text_hash: Some(text_hash),
            raw_hash: o.raw_hash,
            spec: Some(spec),
            last_snapshot_id: Some(1),
            ..WatchState::default()
        };
        let snapshot = Snapshot {
            id: 1,
            taken_at: o.at,
            content,
        };
        (state, Some(snapshot))
    }

    /// What, the watch's settings, the first body, the settings at the second check when
    /// edited, the second body, and the verdict.
    type Row<'a> = (
        &'a str,
        &'a str,
        (String, &'a str),
        Option<&'a str>,
        (String, &'a str),
        &'a str,
    );

    fn feed(items: &[&str]) -> String {
        let items: String = items
            .iter()
            .map(|t| format!("<item><title>{t}</title><guid>{t}</guid></item>"))
            .collect();
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>F</title>{items}</channel></rss>"
        )
    }

    /// Each verdict from a stored first sight and a second body.
    #[test]
    fn every_verdict_from_a_first_sight_and_a_second_body() {
        let page =
            |p: &str| format!("<html><body><div id=\"app\"><h1>Inbox</h1>{p}</div></body></html>");
        let version = "kind = \"version\"\nsource = \"regex\"\npattern = 'v(\\d+\\.\\d+\\.\\d+)'";
        let rows: Vec<Row> = vec![
            (
                "the same bytes",
                "",
                (page("<p>a</p>"), HTML),
                None,
                (page("<p>a</p>"), HTML),
                "unchanged",
            ),
            (
                "a real edit",
                "",
                (page("<p>a</p>"), HTML),
                None,
                (page("<p>b</p>"), HTML),
                "changed",
            ),
            (
                "only a timestamp moved",
                "",
                (page("<p>at 2026-11-20T10:00:00Z</p>"), HTML),
                None,
                (page("<p>at 2026-11-21T09:00:00Z</p>"), HTML),
                "noise",
            ),
            (
                "an edit seen once of two",
                "confirm = 2",
                (page("<p>a</p>"), HTML),
                None,
                (page("<p>b</p>"), HTML),
                "pending",
            ),
            (
                "settings edited, the page the same",
                "",
                (page("<p>a</p>"), HTML),
                Some("select = \"#app\""),
                (page("<p>a</p>"), HTML),
                "rebaseline",
            ),
            (
                "settings edited, only masked parts moved",
                "",
                (
                    page("<p>a</p><aside>Ad 1</aside><p>Built at 2026-11-20T10:00:00Z</p>"),
                    HTML,
                ),
                Some("remove = [\"aside\"]"),
                (
                    page("<p>a</p><aside>Ad 1</aside><p>Built at 2026-11-21T11:00:00Z</p>"),
                    HTML,
                ),
                "rebaseline",
            ),
            (
                "settings edited and the page changed",
                "",
                (page("<p>a</p>"), HTML),
                Some("select = \"#app\""),
                (page("<p>b</p>"), HTML),
                "changed",
            ),
            (
                "the selected element vanished",
                "select = \"#app\"",
                (page("<p>a</p>"), HTML),
                None,
                ("<html><body><main>new</main></body></html>".into(), HTML),
                "selector_missing",
            ),
            (
                "a block page",
                "",
                (page("<p>a</p>"), HTML),
                None,
                (
                    "<html><body><h1>Access denied</h1></body></html>".into(),
                    HTML,
                ),
                "blocked",
            ),
            (
                "not JSON any more",
                "kind = \"json\"",
                ("{\"a\": 1}".into(), "application/json"),
                None,
                ("<html>".into(), "application/json"),
                "failed",
            ),
            (
                "a JSON value",
                "kind = \"json\"",
                ("{\"a\": 1}".into(), "application/json"),
                None,
                ("{\"a\": 2}".into(), "application/json"),
                "changed",
            ),
            (
                "a new feed entry",
                "kind = \"feed\"",
                (feed(&["one"]), RSS),
                None,
                (feed(&["two", "one"]), RSS),
                "feed_changed",
            ),
            (
                "feed entries reordered",
                "kind = \"feed\"",
                (feed(&["one", "two"]), RSS),
                None,
                (feed(&["two", "one"]), RSS),
                "unchanged",
            ),
            (
                "a newer version",
                version,
                ("v1.2.0".into(), "text/plain"),
                None,
                ("v1.2.0 v1.3.0".into(), "text/plain"),
                "new_version",
            ),
            (
                "an older branch moved",
                version,
                ("v1.2.0 v1.3.0".into(), "text/plain"),
                None,
                ("v1.2.0 v1.2.1 v1.3.0".into(), "text/plain"),
                "rebaseline",
            ),
        ];
        for (what, extra, first, edited, second, expected) in rows {
            let w = watch(extra);
            let (state, snapshot) = stored(&w, body(&first.0, first.1));
            let w = edited.map_or(w, |e| watch(&format!("{extra}\n{e}")));
            let (o, _) = judge_body(&w, Some(&state), body(&second.0, second.1), &snapshot, 0);
            assert_eq!(word(&o.verdict), expected, "{what}: {:?}", o.verdict);
        }
        let (first, _) = judge_body(&watch(""), None, body(&page(""), HTML), &(), 0);
        assert_eq!(word(&first.verdict), "baseline");
    }

    /// Masking the lines where two texts differ tells what masking them whole tells, whatever
    /// the edit: stamps moved or not, at a line's edges, lines added or gone, at either end.
    #[test]
    fn the_differing_lines_mask_alike_exactly_when_the_texts_do() {
        let masks = crate::config::masks::MaskSet::all();
        let base = [
            "Docs",
            "Built 2026-11-20T10:00:00Z",
            "",
            "Window 02:00 -",
            "04:00 UTC",
            "updated Nov",
            "21, 2026",
            "Rate limit 100 per minute",
            "generated at 10:00",
            "Request ID: 8f2c91ab77",
            "last",
        ];
        let swaps = [
            ("2026-11-20T10:00:00Z", "2026-11-21T09:00:00Z"),
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z and more"),
            ("02:00", "03:00"),
            ("04:00", "05:00"),
            ("Nov", "Dec"),
            ("21, 2026", "22, 2026"),
            ("100", "50"),
            ("10:00", "11:00"),
            ("8f2c91ab77", "11aa22bb33"),
            ("Docs", "Doc"),
            ("last", "last\nmore"),
            ("\n\n", "\n"),
            ("-\n04", "- 04"),
        ];
        let text = base.join("\n");
        let mut pairs: Vec<(String, String)> = swaps
            .iter()
            .map(|(a, b)| (text.clone(), text.replacen(a, b, 1)))
            .collect();
        for i in 0..base.len() {
            let mut fewer = base.to_vec();
            fewer.remove(i);
            pairs.push((text.clone(), fewer.join("\n")));
            let mut more = base.to_vec();
            more.insert(i, "Deployed 2026-11-21T09:00:00Z");
            pairs.push((text.clone(), more.join("\n")));
        }
        pairs.push((String::new(), text.clone()));
        pairs.push((format!("{text}\n"), text.clone()));
        let mut differ = 0;
        for (old, new) in pairs.iter().flat_map(|(a, b)| [(a, b), (b, a)]) {
            let whole = masks.apply(old) != masks.apply(new);
            let (a, b) = crate::compare::differing_lines(old, new);
            assert_eq!(
                masks.apply(a) != masks.apply(b),
                whole,
                "{old:?} -> {new:?}"
            );
            differ += usize::from(whole);
        }
        assert!(
            differ > 10 && differ < 2 * pairs.len(),
            "{differ} of {}",
            2 * pairs.len()
        );
    }

    /// The counts leave out a line where only a stamp moved; the diff shows it.
    #[test]
    fn counts_leave_out_lines_where_only_masked_fragments_moved() {
        let page = |p: &str, t: &str, id: &str| {
            format!("<html><body><p{id}>{p}</p><p>Built at {t}</p></body></html>")
        };
        let w = watch("");
        let first = page("a", "2026-11-20T10:00:00Z", "");
        let (state, snapshot) = stored(&w, body(&first, HTML));
        // The masked lines that decided the change are counted; with the structure changed
        // too (an id came), the text's own lines are masked for the counts.
        for id in ["", " id=\"lead\""] {
            let second = body(&page("b", "2026-11-21T10:00:00Z", id), HTML);
            let (o, _) = judge_body(&w, Some(&state), second, &snapshot, 0);
            let Verdict::Changed {
                added,
                removed,
                diff,
                summary,
                ..
            } = &o.verdict
            else {
                panic!("{:?}", o.verdict);
            };
            assert_eq!((*added, *removed), (1, 1), "{id}: {summary}");
            assert!(summary.starts_with("+1 -1 line"), "{summary}");
            assert!(diff.contains("+Built at 2026-11-21T10:00:00Z"), "{diff}");
        }
    }

    /// A JSON document's news leads its summary; a stamp that moved with it is listed last
    /// and not counted.
    #[test]
    fn json_stamps_go_last_in_the_summary() {
        let w = watch("kind = \"json\"");
        let doc = |updated: &str, latest: &str| {
            format!("{{\"feed_updated\": \"{updated}\", \"latest\": \"{latest}\"}}")
        };
        let json = "application/json";
        let (state, snapshot) = stored(&w, body(&doc("2023-07-10T20:00:14+00:00", "1.70"), json));
        let second = body(&doc("2023-07-13T14:05:30+00:00", "1.71"), json);
        let (o, _) = judge_body(&w, Some(&state), second, &snapshot, 0);
        let Verdict::Changed {
            summary,
            json: Some((_, values)),
            ..
        } = &o.verdict
        else {
            panic!("{:?}", o.verdict);
        };
        assert!(
            summary.starts_with("1 value changed: `$.latest`"),
            "{summary}"
        );
        assert!(values[1].starts_with("`$.feed_updated`"), "{values:?}");
    }

    /// A page stored before forewarn read structure is stored again quietly, saying why;
    /// a text change on that check is still a change.
    #[test]
    fn pages_stored_without_structure_are_rebased_quietly() {
        let page = "<html><body><nav id=\"top\">Home</nav><p>a</p></body></html>";
        let (state, snapshot) = stored(&watch("structure = false"), body(page, HTML));
        let (o, _) = judge_body(&watch(""), Some(&state), body(page, HTML), &snapshot, 0);
        let Verdict::Baseline { reason, .. } = &o.verdict else {
            panic!("{:?}", o.verdict);
        };
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("now also compares the page's structure")),
            "{reason:?}"
        );
        let edited = page.replace("<p>a</p>", "<p>b</p>");
        let (o, _) = judge_body(&watch(""), Some(&state), body(&edited, HTML), &snapshot, 0);
        let Verdict::Changed {
            structure, diff, ..
        } = &o.verdict
        else {
            panic!("{:?}", o.verdict);
        };
        assert!(diff.contains("+b"), "{diff}");
        assert_eq!(
            *structure, None,
            "nothing stored to compare the structure with"
        );
    }
}
