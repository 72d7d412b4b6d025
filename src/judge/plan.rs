//! What follows from a verdict: the events a check records and reports, and how the watch's
//! stored state moves. Pure: the store reads the [`Prior`] state in its transaction, stores
//! the verdict's new snapshot (if it has one), and applies the [`Plan`] as it is.

use serde_json::json;

use super::volatile::{self, Recent, Volatility};
use super::{Outcome, Verdict};
use crate::compare::Hash;
use crate::event::{Event, EventKind, Severity, from_millis, rfc3339};
use crate::extract::version::Bump;

/// The stored state a plan starts from, read in the writing transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prior {
    pub failures: i64,
    /// Milliseconds since the epoch, like every time below.
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
    /// `select` entries that matched nothing at the last check.
    pub missing: Option<Vec<String>>,
    pub failing_alerted_at: Option<i64>,
    /// The snapshot the watch's content is, before this check.
    pub last_snapshot_id: Option<i64>,
    /// The watch's newest event, when it is a noise event: (id, count).
    pub noise_run: Option<(i64, u64)>,
    /// The changes of its last checks, and since when it has been told volatile.
    pub recent: Recent,
    pub volatile_since: Option<i64>,
    /// `max_response_time`: slow answers in a row, and whether `degraded` was told.
    pub degraded: i64,
    pub degraded_alerted: bool,
}

/// How a planned event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Reported in this run's output, not stored.
    Report,
    /// A new row, linked to the snapshots it compares.
    Insert { from: Option<i64>, to: Option<i64> },
    /// Replaces the stored noise event with this id: a run of noise is one row.
    Merge(i64),
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub event: Event,
    pub write: Write,
}

/// What a check does to the stored ETag and Last-Modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validators {
    /// A 200: the response's validators replace the stored ones.
    Replace,
    /// A 304: the stored ones stay where the response does not repeat them.
    Merge,
    /// A change awaiting confirmation: the old ones stay, so the server keeps sending the
    /// new body.
    Keep,
}

/// How the check itself is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Failed { failures: i64, error: String },
    Ok(Validators),
}

/// A stored field: left alone, set or cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<T> {
    Keep,
    Set(T),
    Clear,
}

/// Everything one check writes, besides the snapshot row.
#[derive(Debug, Clone)]
pub struct Plan {
    pub check: Check,
    /// When the watch's failure was last alerted (`Set` is this check's time).
    pub failing_alerted: Field<()>,
    pub missing: Field<Vec<String>>,
    /// The stored text's new hash; setting it drops any change awaiting confirmation.
    pub text_hash: Option<Hash>,
    /// A change seen `count` times, awaiting confirmation: (hash, count).
    pub pending: Option<(Hash, u32)>,
    /// A new content hash without a new snapshot (newly learned masks).
    pub content_hash: Option<Hash>,
    /// Old snapshots are pruned after this check (it stored a new one).
    pub prune: bool,
    /// The recent changes with this check's (none for a baseline or a failure).
    pub recent: Option<Recent>,
    /// Told volatile from this check on (`Set`), or settled (`Clear`).
    pub volatile: Field<()>,
    /// Slow answers in a row after this check, when it answered.
    pub degraded: Option<i64>,
    /// `degraded` told (`Set`), or fast again (`Clear`).
    pub degraded_alerted: Field<()>,
    /// The check found the very text stored (see [`super::WatchState::last_identical`]).
    pub identical: bool,
    /// In the order they are written.
    pub events: Vec<Planned>,
}

impl Plan {
    fn new(check: Check) -> Plan {
        Plan {
            check,
            failing_alerted: Field::Keep,
            missing: Field::Keep,
            text_hash: None,
            pending: None,
            content_hash: None,
            prune: false,
            recent: None,
            volatile: Field::Keep,
            degraded: None,
            degraded_alerted: Field::Keep,
            identical: false,
            events: Vec::new(),
        }
    }

    /// A stored event names the snapshots it compares (`snapshot`, and `previous_snapshot`
    /// for a change), so `show` and `diff` can be given them.
    fn insert(&mut self, mut event: Event, from: Option<i64>, to: Option<i64>) {
        for (key, id) in [("snapshot", to), ("previous_snapshot", from)] {
            if let Some(id) = id
                && event.detail.get(key).is_none()
            {
                event = event.with(key, json!(id));
            }
        }
        self.events.push(Planned {
            event,
            write: Write::Insert { from, to },
        });
    }

    fn report(&mut self, event: Event) {
        self.events.push(Planned {
            event,
            write: Write::Report,
        });
    }

    /// The events alone, in order.
    pub fn into_events(self) -> Vec<Event> {
        self.events.into_iter().map(|p| p.event).collect()
    }
}

/// What the outcome `o` of a check means for a watch whose stored state is `prior`;
/// `snapshot` is the id the verdict's content was stored under, if it has content.
pub fn plan(prior: &Prior, o: &Outcome, snapshot: Option<i64>) -> Plan {
    let mut plan = match &o.verdict {
        Verdict::Failed { error, blocked } => failed(prior, o, error, *blocked),
        Verdict::NotModified => Plan::new(Check::Ok(Validators::Merge)),
        Verdict::Pending { .. } => Plan::new(Check::Ok(Validators::Keep)),
        _ => Plan::new(Check::Ok(Validators::Replace)),
    };
    let mut first = contract_events(o);
    first.extend(deploy_event(o));
    first.extend(requests_event(o));
    let first = first.into_iter().map(|event| Planned {
        event,
        write: Write::Insert {
            from: None,
            to: None,
        },
    });
    plan.events.splice(0..0, first);
    if matches!(plan.check, Check::Failed { .. }) {
        return plan;
    }
    if let Some(e) = recovered(prior, o) {
        if prior.failing_alerted_at.is_some() {
            plan.failing_alerted = Field::Clear;
        }
        plan.insert(e, None, None);
    }
    if !matches!(
        o.verdict,
        Verdict::NotModified | Verdict::SelectorMissing { .. }
    ) && let Some(e) = restored(prior, o)
    {
        plan.missing = Field::Clear;
        plan.insert(e, None, None);
    }
    plan.identical = matches!(o.verdict, Verdict::NotModified | Verdict::Unchanged { .. });
    degradation(&mut plan, prior, o);
    verdict_events(&mut plan, prior, o, snapshot);
    volatility(&mut plan, prior, o);
    verification(&mut plan, o);
    plan
}

/// `max_response_time`: an answer slower than it is degraded; `failures_before_alert` of
/// them in a row are told once (`degraded`), and the first fast answer after that is a
/// `recovered`.
fn degradation(plan: &mut Plan, prior: &Prior, o: &Outcome) {
    let slow = o
        .max_response_time
        .is_some_and(|max| o.duration_ms > max.as_millis() as u64);
    if !slow {
        if prior.degraded > 0 {
            plan.degraded = Some(0);
        }
        if prior.degraded_alerted {
            plan.degraded_alerted = Field::Clear;
            let max = o.max_response_time.unwrap_or_default();
            let summary = format!(
                "answers within {} again ({} ms)",
                humantime::format_duration(max),
                o.duration_ms
            );
            let e = event(o, EventKind::Recovered, summary)
                .with("alerted", json!(true))
                .with("response_ms", json!(o.duration_ms));
            plan.insert(e, None, None);
        }
        return;
    }
    let n = prior.degraded + 1;
    plan.degraded = Some(n);
    if !prior.degraded_alerted && n >= i64::from(o.alert.failures_before_alert) {
        plan.degraded_alerted = Field::Set(());
        let max = o.max_response_time.unwrap_or_default();
        let summary = format!(
            "slow: {} ms, over `max_response_time` {} on {n} checks in a row",
            o.duration_ms,
            humantime::format_duration(max)
        );
        let e = event(o, EventKind::Degraded, summary)
            .with("response_ms", json!(o.duration_ms))
            .with("max_response_ms", json!(max.as_millis() as u64))
            .with("slow_checks", json!(n))
            .with("severity", json!(Severity::Warning));
        plan.insert(e, None, None);
    }
}

/// `verify`: the stored events of the kinds it is run on (and not volatile) are marked as
/// being verified; their notifications wait for the verdict (see `pipeline::verify`).
fn verification(plan: &mut Plan, o: &Outcome) {
    let Some(v) = &o.verify else {
        return;
    };
    for p in &mut plan.events {
        let stored = matches!(p.write, Write::Insert { .. });
        let volatile = p.event.detail.get("volatile").is_some();
        if stored && !volatile && v.on.contains(&p.event.kind) {
            p.event
                .detail
                .insert("verify".into(), json!({"state": "running"}));
        }
    }
}

/// Counts this check's change and judges the watch's volatility: told once when it becomes
/// volatile; while it is, its changes are marked `volatile` (stored, not alerted).
fn volatility(plan: &mut Plan, prior: &Prior, o: &Outcome) {
    if matches!(o.verdict, Verdict::Baseline { .. }) {
        return;
    }
    let changed = matches!(o.verdict, Verdict::Changed { .. } | Verdict::Pending { .. });
    let recent = prior.recent.push(changed);
    plan.recent = Some(recent);
    let quiet = match volatile::judge(prior.volatile_since.is_some(), recent, o.churn) {
        Volatility::Steady => false,
        Volatility::Leaves => {
            plan.volatile = Field::Clear;
            false
        }
        Volatility::Stays => true,
        Volatility::Enters(why) => {
            plan.volatile = Field::Set(());
            let summary = format!(
                "the page moves by itself ({why}): its changes are stored but no longer alerted. `select` the part you need or `remove` the moving part; `forewarn test {}` shows what moves",
                crate::event::shell_word(&o.name)
            );
            plan.insert(event(o, EventKind::Volatile, summary), None, None);
            true
        }
    };
    if quiet {
        for p in &mut plan.events {
            if p.event.kind.is_change() && p.event.kind != EventKind::ContractBroken {
                p.event.detail.insert("volatile".into(), json!(true));
            }
        }
    }
}

/// A failed check: counted, reported, stored once, and alerted after enough in a row.
fn failed(prior: &Prior, o: &Outcome, error: &str, blocked: bool) -> Plan {
    let now = o.at.timestamp_millis();
    let failures = prior.failures + 1;
    let since = rfc3339(from_millis(prior.failing_since.unwrap_or(now)));
    let kind = if blocked {
        EventKind::Blocked
    } else {
        EventKind::Error
    };
    let mut e = event(o, kind, error.to_string())
        .with("error", json!(error))
        .with("consecutive_failures", json!(failures))
        .with("failing_since", json!(since));
    if let Some(s) = o.status {
        e = e.with("status", json!(s));
    }
    let mut plan = Plan::new(Check::Failed {
        failures,
        error: error.to_string(),
    });
    // Stored once when the watch starts failing (the timeline needs no row per retry);
    // reported on every run until it has been alerted, then once a day (or every
    // `remind_every`): a permanent 404 must not print FAILED every five minutes.
    let remind = o.alert.remind_every.map_or(DAY_MS, crate::event::millis);
    let due = prior
        .failing_alerted_at
        .is_none_or(|last| now.saturating_sub(last) >= remind);
    if failures == 1 {
        plan.insert(e, None, None);
    } else if due {
        plan.report(e);
    }
    // One `failing` alert after `failures_before_alert` checks in a row, then reminders
    // every `remind_every` if asked for; never one per failed check.
    let alert = match prior.failing_alerted_at {
        None => failures >= i64::from(o.alert.failures_before_alert.max(1)),
        Some(_) => due && o.alert.remind_every.is_some(),
    };
    if prior.failing_alerted_at.is_some() && due {
        // Told again today: the next reminder counts from now.
        plan.failing_alerted = Field::Set(());
    }
    if alert {
        let summary = format!("failing for {failures} checks in a row (since {since}): {error}");
        let f = event(o, EventKind::Failing, summary)
            .with("error", json!(error))
            .with("consecutive_failures", json!(failures))
            .with("failing_since", json!(since))
            .with("reminder", json!(prior.failing_alerted_at.is_some()));
        plan.failing_alerted = Field::Set(());
        plan.insert(f, None, None);
    }
    plan
}

/// A day, in milliseconds: how often an alerted failure is printed again by default.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn event(o: &Outcome, kind: EventKind, summary: String) -> Event {
    Event::new(kind, &o.name, &o.url, o.at, summary)
}

fn contract_events(o: &Outcome) -> Vec<Event> {
    let Some((_, changes)) = &o.contracts else {
        return Vec::new();
    };
    changes
        .iter()
        .map(|c| {
            let (kind, severity) = if c.broken {
                (EventKind::ContractBroken, Severity::Critical)
            } else {
                (EventKind::ContractRestored, Severity::Info)
            };
            let mut e = event(o, kind, c.summary.clone())
                .with("expectation", json!(c.label))
                .with("before", json!(c.before))
                .with("now", json!(c.now))
                .with("severity", json!(severity));
            if !c.hints.is_empty() {
                e = e.with("hints", json!(c.hints));
            }
            e
        })
        .collect()
}

/// `track_requests`: the API calls the page's scripts make changed (an app moving to
/// `/api/v2` is heard before the integration that hooks `/api/v1` breaks).
fn requests_event(o: &Outcome) -> Option<Event> {
    let (removed, added) = o.requests.as_ref()?.1.as_ref()?;
    let mut summary = format!(
        "the page's scripts make other requests: {} gone, {} new",
        removed.len(),
        added.len()
    );
    if let (Some(r), Some(a)) = (removed.first(), added.first()) {
        summary.push_str(&format!(" ({r} -> {a})"));
    }
    let mut e = event(o, EventKind::RequestsChanged, summary)
        .with("removed", json!(removed))
        .with("added", json!(added))
        .with("severity", json!(Severity::Warning));
    let lines: Vec<String> = removed
        .iter()
        .map(|r| format!("-{r}"))
        .chain(added.iter().map(|a| format!("+{a}")))
        .collect();
    e.diff = Some(lines.join("\n") + "\n");
    Some(e)
}

fn deploy_event(o: &Outcome) -> Option<Event> {
    let (removed, added) = o.assets.as_ref()?.1.as_ref()?;
    let mut summary = format!(
        "frontend deploy: {} asset(s) gone, {} new",
        removed.len(),
        added.len()
    );
    if let (Some(r), Some(a)) = (removed.first(), added.first()) {
        summary.push_str(&format!(" ({r} -> {a})"));
    }
    let mut e = event(o, EventKind::DeployDetected, summary)
        .with("removed", json!(removed))
        .with("added", json!(added))
        .with("severity", json!(Severity::Warning));
    let mut diff = String::new();
    for r in removed {
        diff.push_str(&format!("-{r}\n"));
    }
    for a in added {
        diff.push_str(&format!("+{a}\n"));
    }
    e.diff = Some(diff);
    Some(e)
}

/// The all-clear after failed checks.
fn recovered(prior: &Prior, o: &Outcome) -> Option<Event> {
    if prior.failures == 0 {
        return None;
    }
    let n = prior.failures;
    let summary = format!(
        "recovered after {n} failed check{}",
        if n == 1 { "" } else { "s" }
    );
    let mut e = event(o, EventKind::Recovered, summary)
        .with("consecutive_failures", json!(n))
        .with("alerted", json!(prior.failing_alerted_at.is_some()));
    if let Some(err) = &prior.last_error {
        e = e.with("last_error", json!(err));
    }
    Some(e)
}

/// `select` entries that were missing and match again.
fn restored(prior: &Prior, o: &Outcome) -> Option<Event> {
    let list = prior.missing.as_ref()?;
    let e = event(
        o,
        EventKind::SelectorRestored,
        format!("{} matches again", quote_list(list)),
    )
    .with("selectors", json!(list));
    Some(e)
}

fn verdict_events(plan: &mut Plan, prior: &Prior, o: &Outcome, snap: Option<i64>) {
    let previous = prior.last_snapshot_id;
    if let Some(c) = o.verdict.content() {
        plan.text_hash = Some(*c.text_hash);
        plan.prune = true;
    }
    match &o.verdict {
        Verdict::NotModified | Verdict::Failed { .. } => {}
        Verdict::Unchanged { text_hash } => plan.text_hash = Some(*text_hash),
        Verdict::Pending { hash, count, of } => {
            plan.pending = Some((*hash, *count));
            // Reported in JSON so scripts see it; not stored, not a change yet.
            let summary = format!("a change seen on {count} of {of} checks needed to report it");
            let e = event(o, EventKind::Pending, summary)
                .with("seen", json!(count))
                .with("confirm", json!(of));
            plan.report(e);
        }
        Verdict::Noise { .. } => noise(plan, prior, o),
        Verdict::Baseline { reason, .. } => {
            let summary = match reason {
                Some(r) => format!("new baseline: {r}"),
                None => "first sight: baseline stored".to_string(),
            };
            let mut e = event(o, EventKind::Baseline, summary).with("snapshot", json!(snap));
            if let Some(r) = reason {
                e = e.with("reason", json!(r));
            }
            plan.insert(e, None, snap);
        }
        Verdict::Changed {
            previous_snapshot, ..
        } => {
            for mut e in changed_events(o) {
                e.diff = e
                    .diff
                    .map(|d| cut_diff(d, &o.name, *previous_snapshot, snap));
                plan.insert(e, *previous_snapshot, snap);
            }
        }
        Verdict::FeedChanged { .. } => {
            for e in feed_events(o) {
                plan.insert(e, previous, snap);
            }
        }
        Verdict::NewVersion { .. } => {
            if let Some(e) = version_event(o) {
                plan.insert(e, previous, snap);
            }
        }
        Verdict::SelectorMissing { selectors } => {
            // Reported once when it goes missing, not on every run while it stays missing.
            if prior.missing.as_ref() != Some(selectors) {
                plan.missing = Field::Set(selectors.clone());
                let summary = format!(
                    "selector {} matched nothing: the page may have been redesigned",
                    quote_list(selectors)
                );
                let e = event(o, EventKind::SelectorMissing, summary)
                    .with("selector", json!(selectors[0]))
                    .with("selectors", json!(selectors));
                plan.insert(e, None, None);
            }
        }
    }
}

/// A noise event: one row per run of noise with no other event in between, so a page with a
/// clock in it does not grow the history.
fn noise(plan: &mut Plan, prior: &Prior, o: &Outcome) {
    let Verdict::Noise {
        hash,
        text_hash,
        summary,
        diff,
        masks,
    } = &o.verdict
    else {
        return;
    };
    plan.text_hash = Some(*text_hash);
    plan.content_hash = *hash;
    let inserted = plan
        .events
        .iter()
        .any(|p| matches!(p.write, Write::Insert { .. }));
    let run = prior.noise_run.filter(|_| !inserted);
    let count = run.map_or(0, |(_, n)| n) + 1;
    let mut e = event(o, EventKind::Noise, summary.clone())
        .with("masks", json!(masks))
        .with("count", json!(count));
    e.diff = Some(diff.clone());
    plan.events.push(Planned {
        event: e,
        write: match run {
            Some((id, _)) => Write::Merge(id),
            None => Write::Insert {
                from: None,
                to: None,
            },
        },
    });
}

/// A change of text, and for JSON of its structure: `schema_changed` first, then `changed`
/// when values moved too.
fn changed_events(o: &Outcome) -> Vec<Event> {
    let Verdict::Changed {
        summary,
        diff,
        added,
        removed,
        json: json_changes,
        structure,
        ..
    } = &o.verdict
    else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let mut value_change = true;
    if let Some((schema, values)) = json_changes {
        value_change = !values.is_empty();
        events.extend(schema_event(o, schema));
    }
    if value_change {
        let mut e = event(o, EventKind::Changed, summary.clone())
            .with("added", json!(added))
            .with("removed", json!(removed));
        if let Some((_, values)) = json_changes {
            e = e.with("changes", json!(values));
        }
        if let Some(s) = structure {
            e = e.with("structure", json!({"removed": s.removed, "added": s.added}));
        }
        e.diff = Some(diff.clone());
        events.push(e);
    }
    events
}

/// A stored diff keeps at most this many lines and bytes; the snapshots keep the rest.
const STORED_DIFF_LINES: usize = 2000;
const STORED_DIFF_BYTES: usize = 512 * 1024;

/// The diff an event stores and prints, cut to [`STORED_DIFF_LINES`] and
/// [`STORED_DIFF_BYTES`] on a line boundary, with where to read it whole: a 200 MB page that
/// changed stored 540 MB of diff and printed it as JSON.
fn cut_diff(diff: String, name: &str, from: Option<i64>, to: Option<i64>) -> String {
    if diff.len() <= STORED_DIFF_BYTES && diff.lines().count() <= STORED_DIFF_LINES {
        return diff;
    }
    let mut end = 0;
    for (n, line) in diff.split_inclusive('\n').enumerate() {
        if n == STORED_DIFF_LINES || end + line.len() > STORED_DIFF_BYTES {
            break;
        }
        end += line.len();
    }
    let rest = diff[end..].lines().count();
    let whole = match (from, to) {
        (Some(a), Some(b)) => format!(
            "`forewarn diff {} --from {a} --to {b}`",
            crate::event::shell_word(name)
        ),
        _ => format!("`forewarn diff {}`", crate::event::shell_word(name)),
    };
    let mut out = diff;
    out.truncate(end);
    out.push_str(&format!(
        "... {rest} more lines of diff: the whole diff is {whole}\n"
    ));
    out
}

fn schema_event(o: &Outcome, schema: &crate::extract::json::SchemaChanges) -> Option<Event> {
    if schema.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = Vec::new();
    match &schema.api {
        // An OpenAPI document: in API terms, breaking first.
        Some(api) if !(api.breaking.is_empty() && api.additions.is_empty()) => {
            lines.extend(api.breaking.iter().map(|b| format!("breaking: {b}")));
            lines.extend(api.additions.iter().map(|a| format!("addition: {a}")));
        }
        _ => {
            lines.extend(schema.removed.iter().map(|r| format!("removed {r}")));
            lines.extend(schema.renamed.iter().map(|r| format!("renamed {r}")));
            lines.extend(schema.retyped.iter().cloned());
            lines.extend(schema.added.iter().map(|a| format!("added {a}")));
        }
    }
    let n = lines.len();
    let summary = format!(
        "{n} structure change{}: {}",
        if n == 1 { "" } else { "s" },
        lines[0]
    );
    let severity = if schema.breaking() {
        Severity::Critical
    } else {
        Severity::Info
    };
    let mut e = event(o, EventKind::SchemaChanged, summary)
        .with("removed", json!(schema.removed))
        .with("added", json!(schema.added))
        .with("retyped", json!(schema.retyped))
        .with("renamed", json!(schema.renamed))
        .with("breaking", json!(schema.api.as_ref().map(|a| &a.breaking)))
        .with(
            "additions",
            json!(schema.api.as_ref().map(|a| &a.additions)),
        )
        .with("severity", json!(severity));
    e.diff = Some(lines.join("\n") + "\n");
    Some(e)
}

/// One `new_entry` per new entry (the last one counting those beyond `max_entries`), one
/// `entry_updated` per edited one.
fn feed_events(o: &Outcome) -> Vec<Event> {
    let Verdict::FeedChanged {
        new, updated, more, ..
    } = &o.verdict
    else {
        return Vec::new();
    };
    let mut events = Vec::new();
    for (i, entry) in new.iter().enumerate() {
        let last = i + 1 == new.len() && *more > 0;
        let mut summary = entry.title.clone();
        if last {
            summary.push_str(&format!(" (and {more} more new entries not shown)"));
        }
        let mut e = event(o, EventKind::NewEntry, summary)
            .with("title", json!(entry.title))
            .with("link", json!(entry.link))
            .with("date", json!(entry.date))
            .with("excerpt", json!(entry.excerpt(280)));
        if last {
            e = e.with("more", json!(more));
        }
        events.push(e);
    }
    for (entry, diff) in updated {
        let mut e = event(
            o,
            EventKind::EntryUpdated,
            format!("{} (edited)", entry.title),
        )
        .with("title", json!(entry.title))
        .with("link", json!(entry.link));
        e.diff = Some(diff.clone());
        events.push(e);
    }
    events
}

fn version_event(o: &Outcome) -> Option<Event> {
    let Verdict::NewVersion {
        old,
        new,
        bump,
        skipped,
        ..
    } = &o.verdict
    else {
        return None;
    };
    let notes: Option<String> = new.notes.as_deref().map(|n| {
        let lines: Vec<&str> = n
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(5)
            .collect();
        lines.join("\n")
    });
    let mut summary = format!("{} {} released ({bump}", o.name, new.version);
    if !skipped.is_empty() {
        summary.push_str(&format!(", skipped {}", skipped.join(", ")));
    }
    summary.push(')');
    if let Some(first) = notes.as_deref().and_then(|n| n.lines().next()) {
        summary.push_str(": ");
        summary.push_str(first.trim_start_matches('#').trim());
    }
    // A major bump may break the integration: louder than a patch.
    let severity = if *bump == Bump::Major {
        Severity::Warning
    } else {
        Severity::Info
    };
    let e = event(o, EventKind::NewVersion, summary)
        .with("old", json!(old))
        .with("new", json!(new.version))
        .with("bump", json!(bump))
        .with("skipped", json!(skipped))
        .with("release_url", json!(new.url))
        .with("notes", json!(notes))
        .with("severity", json!(severity));
    Some(e)
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::config::alert::AlertPolicy;
    use crate::extract::feed::FeedEntry;
    use crate::extract::json::{ApiChanges, SchemaChanges};
    use crate::extract::version::Release;
    use crate::judge::contract;

    /// One table row: name, what was stored, the verdict, the events and writes expected.
    type Case = (&'static str, Prior, Verdict, Vec<(EventKind, Write)>);

    const H1: Hash = [1; 32];
    const H2: Hash = [2; 32];

    fn outcome(verdict: Verdict) -> Outcome {
        Outcome {
            name: "api".into(),
            url: "http://127.0.0.1/x".into(),
            at: Utc.timestamp_millis_opt(1_000_000).unwrap(),
            duration_ms: 5,
            status: Some(200),
            etag: None,
            last_modified: None,
            raw_hash: None,
            keep: 10,
            keep_for: None,
            learned: None,
            churn: false,
            contracts: None,
            assets: None,
            requests: None,
            screenshot: None,
            verify: None,
            body: None,
            max_response_time: None,
            alert: Arc::new(AlertPolicy::default()),
            verdict,
            stored: None,
        }
    }

    fn changed(json: Option<(SchemaChanges, Vec<String>)>) -> Verdict {
        Verdict::Changed {
            content: "b".into(),
            hash: H2,
            text_hash: H2,
            spec: "{}".into(),
            summary: "+1 -1 line".into(),
            diff: "-a\n+b\n".into(),
            added: 1,
            removed: 1,
            previous_snapshot: Some(7),
            json,
            structure: None,
        }
    }

    fn failed(error: &str) -> Verdict {
        Verdict::Failed {
            error: error.into(),
            blocked: false,
        }
    }

    fn entry(title: &str) -> FeedEntry {
        FeedEntry {
            key: title.into(),
            title: title.into(),
            link: Some(format!("http://127.0.0.1/{title}")),
            date: None,
            text: format!("{title} text"),
        }
    }

    fn new_version(version: &str, bump: Bump) -> Verdict {
        Verdict::NewVersion {
            content: version.into(),
            hash: H2,
            text_hash: H2,
            spec: "{}".into(),
            old: "1.2.3".into(),
            new: Release {
                version: version.into(),
                url: None,
                notes: Some("## Highlights\nfaster\n".into()),
                date: None,
            },
            bump,
            skipped: vec!["1.2.4".into()],
        }
    }

    /// The kinds of the plan's events with how each is written.
    fn kinds(plan: &Plan) -> Vec<(EventKind, Write)> {
        plan.events
            .iter()
            .map(|p| (p.event.kind, p.write))
            .collect()
    }

    fn detail(plan: &Plan, i: usize, key: &str) -> serde_json::Value {
        plan.events[i]
            .event
            .detail
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    const STORED: Write = Write::Insert {
        from: None,
        to: None,
    };

    #[test]
    fn events_and_writes_per_verdict() {
        let failing = Prior {
            failures: 2,
            failing_since: Some(1),
            ..Prior::default()
        };
        let missing = Prior {
            missing: Some(vec!["#login".into()]),
            last_snapshot_id: Some(7),
            ..Prior::default()
        };
        let noisy = Prior {
            noise_run: Some((40, 3)),
            ..Prior::default()
        };
        let noise = Verdict::Noise {
            hash: None,
            text_hash: H1,
            summary: "only masked text moved".into(),
            diff: "-10:01\n+10:02\n".into(),
            masks: vec!["time".into()],
        };
        let pending = Verdict::Pending {
            hash: H2,
            count: 1,
            of: 2,
        };
        let baseline = Verdict::Baseline {
            content: "a".into(),
            hash: H1,
            text_hash: H1,
            spec: "{}".into(),
            reason: None,
        };
        let feed = Verdict::FeedChanged {
            content: "f".into(),
            hash: H2,
            text_hash: H2,
            spec: "{}".into(),
            new: vec![entry("one"), entry("two")],
            updated: vec![(entry("zero"), "-old\n+new\n".into())],
            more: 3,
        };
        let gone = Verdict::SelectorMissing {
            selectors: vec!["#login".into()],
        };
        use EventKind as K;
        let linked = Write::Insert {
            from: Some(7),
            to: Some(9),
        };
        let cases: Vec<Case> = vec![
            (
                "not modified",
                Prior::default(),
                Verdict::NotModified,
                vec![],
            ),
            (
                "unchanged",
                Prior::default(),
                Verdict::Unchanged { text_hash: H1 },
                vec![],
            ),
            (
                "first failure",
                Prior::default(),
                failed("timeout"),
                vec![(K::Error, STORED)],
            ),
            (
                "third failure alerts",
                failing.clone(),
                failed("timeout"),
                vec![(K::Error, Write::Report), (K::Failing, STORED)],
            ),
            (
                "recovered",
                failing,
                Verdict::Unchanged { text_hash: H1 },
                vec![(K::Recovered, STORED)],
            ),
            (
                "pending",
                Prior::default(),
                pending,
                vec![(K::Pending, Write::Report)],
            ),
            (
                "noise run merges",
                noisy.clone(),
                noise.clone(),
                vec![(K::Noise, Write::Merge(40))],
            ),
            (
                "noise starts a run",
                Prior::default(),
                noise,
                vec![(K::Noise, STORED)],
            ),
            (
                "baseline links its snapshot",
                Prior::default(),
                baseline,
                vec![(
                    K::Baseline,
                    Write::Insert {
                        from: None,
                        to: Some(9),
                    },
                )],
            ),
            (
                "changed",
                Prior::default(),
                changed(None),
                vec![(K::Changed, linked)],
            ),
            (
                "feed",
                missing.clone(),
                feed,
                vec![
                    (K::SelectorRestored, STORED),
                    (K::NewEntry, linked),
                    (K::NewEntry, linked),
                    (K::EntryUpdated, linked),
                ],
            ),
            (
                "version restores selectors",
                missing.clone(),
                new_version("2.0.0", Bump::Major),
                vec![(K::SelectorRestored, STORED), (K::NewVersion, linked)],
            ),
            (
                "selector goes missing",
                Prior::default(),
                gone.clone(),
                vec![(K::SelectorMissing, STORED)],
            ),
            ("selector stays missing", missing, gone, vec![]),
        ];
        for (name, prior, verdict, want) in cases {
            let plan = plan(&prior, &outcome(verdict), Some(9));
            assert_eq!(kinds(&plan), want, "{name}");
        }
    }

    #[test]
    fn huge_diffs_are_stored_cut_with_where_to_read_them_whole() {
        let small = "+a\n-b\n".to_string();
        assert_eq!(cut_diff(small.clone(), "w", Some(1), Some(2)), small);
        let long: String = (0..5000).map(|i| format!("+line {i}\n")).collect();
        let cut = cut_diff(long, "w", Some(1), Some(2));
        assert_eq!(cut.lines().count(), STORED_DIFF_LINES + 1);
        assert!(
            cut.ends_with(
                "... 3000 more lines of diff: the whole diff is `forewarn diff w --from 1 --to 2`\n"
            ),
            "{}",
            &cut[cut.len() - 120..]
        );
        let wide: String = (0..100)
            .map(|i| format!("+{}{i}\n", "x".repeat(10_000)))
            .collect();
        assert!(cut_diff(wide, "w", None, None).len() < STORED_DIFF_BYTES + 200);
    }

    #[test]
    fn failures_are_counted_and_alerted_once_then_reminded() {
        let o = outcome(failed("HTTP 503"));
        let first = plan(&Prior::default(), &o, None);
        assert_eq!(
            first.check,
            Check::Failed {
                failures: 1,
                error: "HTTP 503".into()
            }
        );
        assert_eq!(first.failing_alerted, Field::Keep);
        assert_eq!(detail(&first, 0, "consecutive_failures"), json!(1));
        // Alerted an hour ago, no reminders asked for: nothing to print again yet.
        let hour_ago = o.at.timestamp_millis() - 3_600_000;
        let recent = Prior {
            failures: 5,
            failing_since: Some(0),
            failing_alerted_at: Some(hour_ago),
            ..Prior::default()
        };
        let quiet = plan(&recent, &o, None);
        assert_eq!(kinds(&quiet), vec![]);
        assert_eq!(quiet.failing_alerted, Field::Keep);
        // A day later: printed again (not alerted), and the day counts from now.
        let alerted = Prior {
            failing_alerted_at: Some(hour_ago - DAY_MS),
            ..recent
        };
        let daily = plan(&alerted, &o, None);
        assert_eq!(kinds(&daily), vec![(EventKind::Error, Write::Report)]);
        assert_eq!(daily.failing_alerted, Field::Set(()));
        // With remind_every shorter than the time since the alert: a reminder.
        let mut o = o;
        o.alert = Arc::new(AlertPolicy {
            remind_every: Some(Duration::from_secs(60)),
            ..AlertPolicy::default()
        });
        let remind = plan(&alerted, &o, None);
        assert_eq!(remind.events[1].event.kind, EventKind::Failing);
        assert_eq!(detail(&remind, 1, "reminder"), json!(true));
        assert_eq!(remind.failing_alerted, Field::Set(()));
        let blocked = Verdict::Failed {
            error: "captcha".into(),
            blocked: true,
        };
        let b = plan(&Prior::default(), &outcome(blocked), None);
        assert_eq!(b.events[0].event.kind, EventKind::Blocked);
    }

    #[test]
    fn recovery_clears_the_alert_and_says_what_failed() {
        let prior = Prior {
            failures: 4,
            last_error: Some("timeout".into()),
            failing_alerted_at: Some(5),
            ..Prior::default()
        };
        let p = plan(&prior, &outcome(Verdict::NotModified), None);
        assert_eq!(p.check, Check::Ok(Validators::Merge));
        assert_eq!(p.failing_alerted, Field::Clear);
        assert_eq!(p.events[0].event.summary, "recovered after 4 failed checks");
        assert_eq!(detail(&p, 0, "last_error"), json!("timeout"));
        assert_eq!(detail(&p, 0, "alerted"), json!(true));
        let never_alerted = Prior {
            failures: 1,
            ..Prior::default()
        };
        let p = plan(&never_alerted, &outcome(Verdict::NotModified), None);
        assert_eq!(p.failing_alerted, Field::Keep);
        assert_eq!(p.events[0].event.summary, "recovered after 1 failed check");
    }

    #[test]
    fn noise_after_another_event_starts_a_new_run() {
        let prior = Prior {
            failures: 1,
            noise_run: Some((40, 3)),
            ..Prior::default()
        };
        let noise = Verdict::Noise {
            hash: Some(H2),
            text_hash: H1,
            summary: "s".into(),
            diff: "d".into(),
            masks: vec![],
        };
        let p = plan(&prior, &outcome(noise), None);
        assert_eq!(
            kinds(&p),
            vec![(EventKind::Recovered, STORED), (EventKind::Noise, STORED)]
        );
        assert_eq!(detail(&p, 1, "count"), json!(1));
        assert_eq!(p.content_hash, Some(H2));
        assert_eq!(p.text_hash, Some(H1));
        let merged = plan(
            &Prior {
                noise_run: Some((40, 3)),
                ..Prior::default()
            },
            &outcome(Verdict::Noise {
                hash: None,
                text_hash: H1,
                summary: "s".into(),
                diff: "d".into(),
                masks: vec![],
            }),
            None,
        );
        assert_eq!(detail(&merged, 0, "count"), json!(4));
    }

    #[test]
    fn state_updates_per_verdict() {
        let pending = plan(
            &Prior::default(),
            &outcome(Verdict::Pending {
                hash: H2,
                count: 1,
                of: 3,
            }),
            None,
        );
        assert_eq!(pending.check, Check::Ok(Validators::Keep));
        assert_eq!(pending.pending, Some((H2, 1)));
        assert_eq!(pending.text_hash, None);
        assert!(!pending.prune);
        let changed = plan(&Prior::default(), &outcome(changed(None)), Some(9));
        assert_eq!(changed.check, Check::Ok(Validators::Replace));
        assert_eq!(changed.text_hash, Some(H2));
        assert!(changed.prune);
        let gone = Verdict::SelectorMissing {
            selectors: vec!["#a".into(), ".b".into()],
        };
        let p = plan(&Prior::default(), &outcome(gone), None);
        assert_eq!(p.missing, Field::Set(vec!["#a".into(), ".b".into()]));
        assert_eq!(
            p.events[0].event.summary,
            "selector `#a`, `.b` matched nothing: the page may have been redesigned"
        );
        let back = Prior {
            missing: Some(vec!["#a".into()]),
            ..Prior::default()
        };
        let p = plan(&back, &outcome(Verdict::Unchanged { text_hash: H1 }), None);
        assert_eq!(p.missing, Field::Clear);
        assert_eq!(p.events[0].event.summary, "`#a` matches again");
        // A 304 proves nothing about the selectors: they stay missing.
        let p = plan(&back, &outcome(Verdict::NotModified), None);
        assert_eq!(p.missing, Field::Keep);
        assert!(p.events.is_empty());
    }

    #[test]
    fn only_the_very_text_again_marks_the_page_identical() {
        let noise = Verdict::Noise {
            hash: None,
            text_hash: H2,
            summary: "only masked text moved".into(),
            diff: String::new(),
            masks: vec!["time".into()],
        };
        let pending = Verdict::Pending {
            hash: H2,
            count: 1,
            of: 2,
        };
        let failed = Verdict::Failed {
            error: "timed out".into(),
            blocked: false,
        };
        let cases = [
            (Verdict::NotModified, true),
            (Verdict::Unchanged { text_hash: H1 }, true),
            (noise, false),
            (pending, false),
            (failed, false),
        ];
        for (verdict, identical) in cases {
            let p = plan(&Prior::default(), &outcome(verdict.clone()), None);
            assert_eq!(p.identical, identical, "{verdict:?}");
        }
    }

    #[test]
    fn json_changes_put_structure_first_and_values_only_when_they_moved() {
        let schema = SchemaChanges {
            removed: vec!["`$.user.id` (number)".into()],
            ..SchemaChanges::default()
        };
        let p = plan(
            &Prior::default(),
            &outcome(changed(Some((schema.clone(), vec![])))),
            Some(9),
        );
        assert_eq!(kinds(&p).len(), 1);
        assert_eq!(p.events[0].event.kind, EventKind::SchemaChanged);
        assert_eq!(detail(&p, 0, "severity"), json!("critical"));
        assert_eq!(
            p.events[0].event.summary,
            "1 structure change: removed `$.user.id` (number)"
        );
        let values = vec!["`$.n`: 1 -> 2".to_string()];
        let p = plan(
            &Prior::default(),
            &outcome(changed(Some((schema, values.clone())))),
            Some(9),
        );
        let k: Vec<_> = p.events.iter().map(|e| e.event.kind).collect();
        assert_eq!(k, vec![EventKind::SchemaChanged, EventKind::Changed]);
        assert_eq!(detail(&p, 1, "changes"), json!(values));
        let api = SchemaChanges {
            added: vec!["`$.paths./v2`".into()],
            api: Some(ApiChanges {
                breaking: vec![],
                additions: vec!["GET /v2".into()],
            }),
            ..SchemaChanges::default()
        };
        let p = plan(
            &Prior::default(),
            &outcome(changed(Some((api, vec![])))),
            None,
        );
        assert_eq!(
            p.events[0].event.summary,
            "1 structure change: addition: GET /v2"
        );
        assert_eq!(detail(&p, 0, "severity"), json!("info"));
    }

    #[test]
    fn feed_and_version_events_say_what_is_new() {
        let feed = Verdict::FeedChanged {
            content: "f".into(),
            hash: H2,
            text_hash: H2,
            spec: "{}".into(),
            new: vec![entry("one"), entry("two")],
            updated: vec![],
            more: 3,
        };
        let p = plan(&Prior::default(), &outcome(feed), None);
        assert_eq!(p.events[0].event.summary, "one");
        assert_eq!(
            p.events[1].event.summary,
            "two (and 3 more new entries not shown)"
        );
        assert_eq!(detail(&p, 1, "more"), json!(3));
        assert_eq!(detail(&p, 0, "link"), json!("http://127.0.0.1/one"));
        let major = plan(
            &Prior::default(),
            &outcome(new_version("2.0.0", Bump::Major)),
            None,
        );
        let e = &major.events[0].event;
        assert_eq!(
            e.summary,
            "api 2.0.0 released (major, skipped 1.2.4): Highlights"
        );
        assert_eq!(detail(&major, 0, "severity"), json!("warning"));
        assert_eq!(detail(&major, 0, "bump"), json!("major"));
        assert_eq!(detail(&major, 0, "old"), json!("1.2.3"));
        let patch = plan(
            &Prior::default(),
            &outcome(new_version("1.2.5", Bump::Patch)),
            None,
        );
        assert_eq!(detail(&patch, 0, "severity"), json!("info"));
    }

    #[test]
    fn contract_and_deploy_events_come_first_even_when_the_check_failed() {
        let mut o = outcome(failed("HTTP 500"));
        o.contracts = Some((
            contract::State::new(),
            vec![
                contract::Change {
                    label: "#login".into(),
                    broken: true,
                    summary: "`#login` is gone".into(),
                    hints: vec!["`#sign-in` appeared".into()],
                    before: 1,
                    now: 0,
                },
                contract::Change {
                    label: "title".into(),
                    broken: false,
                    summary: "title is back".into(),
                    hints: vec![],
                    before: 0,
                    now: 1,
                },
            ],
        ));
        o.assets = Some((
            vec!["app.2.js".into()],
            Some((vec!["app.1.js".into()], vec!["app.2.js".into()])),
        ));
        let p = plan(&Prior::default(), &o, None);
        let k: Vec<_> = p.events.iter().map(|e| e.event.kind).collect();
        assert_eq!(
            k,
            vec![
                EventKind::ContractBroken,
                EventKind::ContractRestored,
                EventKind::DeployDetected,
                EventKind::Error,
            ]
        );
        assert_eq!(detail(&p, 0, "severity"), json!("critical"));
        assert_eq!(detail(&p, 0, "hints"), json!(["`#sign-in` appeared"]));
        assert_eq!(detail(&p, 1, "hints"), serde_json::Value::Null);
        assert_eq!(
            p.events[2].event.summary,
            "frontend deploy: 1 asset(s) gone, 1 new (app.1.js -> app.2.js)"
        );
        assert_eq!(
            p.events[2].event.diff.as_deref(),
            Some("-app.1.js\n+app.2.js\n")
        );
    }
}
