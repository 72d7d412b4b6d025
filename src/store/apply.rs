//! Writing one check's outcome: watch row, snapshot, event and validators together.

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use crate::event::{Event, EventKind, Severity};
use crate::extract::version::Bump;
use crate::judge::{Outcome, Verdict};

struct Prior {
    id: i64,
    failures: i64,
    failing_since: Option<i64>,
    last_error: Option<String>,
    missing: Option<String>,
    failing_alerted_at: Option<i64>,
}

/// Writes one outcome, and queues a notification for each stored event the watch routes
/// somewhere: the event and its outbox rows commit together.
pub(super) fn apply(
    tx: &Transaction<'_>,
    o: &Outcome,
    events: &mut Vec<Event>,
) -> rusqlite::Result<()> {
    let start = events.len();
    apply_outcome(tx, o, events)?;
    if !o.alert.targets.is_empty() {
        let now = crate::schedule::now().timestamp_millis();
        for e in &events[start..] {
            if e.id.is_some() && e.is_notified() {
                super::outbox::enqueue(tx, e, &o.alert, now)?;
            }
        }
    }
    Ok(())
}

fn apply_outcome(
    tx: &Transaction<'_>,
    o: &Outcome,
    events: &mut Vec<Event>,
) -> rusqlite::Result<()> {
    let now = o.at.timestamp_millis();
    let prior = tx
        .prepare_cached(
            "SELECT id, consecutive_failures, failing_since, last_error, missing_selectors,
                    failing_alerted_at
             FROM watches WHERE name = ?1",
        )?
        .query_row([&o.name], |r| {
            Ok(Prior {
                id: r.get(0)?,
                failures: r.get(1)?,
                failing_since: r.get(2)?,
                last_error: r.get(3)?,
                missing: r.get(4)?,
                failing_alerted_at: r.get(5)?,
            })
        })
        .optional()?;
    let prior = match prior {
        Some(p) => {
            tx.prepare_cached("UPDATE watches SET url = ?2 WHERE id = ?1 AND url != ?2")?
                .execute(params![p.id, o.url])?;
            p
        }
        None => {
            tx.prepare_cached("INSERT INTO watches (name, url, created_at) VALUES (?1, ?2, ?3)")?
                .execute(params![o.name, o.url, now])?;
            Prior {
                id: tx.last_insert_rowid(),
                failures: 0,
                failing_since: None,
                last_error: None,
                missing: None,
                failing_alerted_at: None,
            }
        }
    };
    let id = prior.id;
    if let Some((state, changes)) = &o.contracts {
        tx.prepare_cached("UPDATE watches SET contracts = ?2 WHERE id = ?1")?
            .execute(params![
                id,
                serde_json::to_string(state).expect("state serialises")
            ])?;
        for c in changes {
            let kind = if c.broken {
                EventKind::ContractBroken
            } else {
                EventKind::ContractRestored
            };
            let mut e = Event::new(kind, &o.name, &o.url, o.at, c.summary.clone())
                .with("expectation", json!(c.label))
                .with("before", json!(c.before))
                .with("now", json!(c.now))
                .with(
                    "severity",
                    json!(if c.broken {
                        Severity::Critical
                    } else {
                        Severity::Info
                    }),
                );
            if !c.hints.is_empty() {
                e = e.with("hints", json!(c.hints));
            }
            e.id = Some(insert_event(tx, id, &e, None, None)?);
            events.push(e);
        }
    }
    if let Some((now_assets, change)) = &o.assets {
        tx.prepare_cached("UPDATE watches SET assets = ?2 WHERE id = ?1")?
            .execute(params![
                id,
                serde_json::to_string(now_assets).expect("strings serialise")
            ])?;
        if let Some((removed, added)) = change {
            let mut e = Event::new(
                EventKind::DeployDetected,
                &o.name,
                &o.url,
                o.at,
                match (removed.first(), added.first()) {
                    (Some(r), Some(a)) => format!(
                        "frontend deploy: {} asset(s) gone, {} new ({r} -> {a})",
                        removed.len(),
                        added.len()
                    ),
                    _ => format!(
                        "frontend deploy: {} asset(s) gone, {} new",
                        removed.len(),
                        added.len()
                    ),
                },
            )
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
            e.id = Some(insert_event(tx, id, &e, None, None)?);
            events.push(e);
        }
    }
    if let Some(learned) = &o.learned {
        tx.prepare_cached("UPDATE watches SET learned_masks = ?2 WHERE id = ?1")?
            .execute(params![
                id,
                serde_json::to_string(learned).expect("strings serialise")
            ])?;
    }
    let event = |kind: EventKind, summary: String| Event::new(kind, &o.name, &o.url, o.at, summary);

    if let Verdict::Failed { error, blocked } = &o.verdict {
        let failures = prior.failures + 1;
        tx.prepare_cached(
            "UPDATE watches SET last_check_at = ?2, last_status = ?3, last_duration_ms = ?4,
                    consecutive_failures = ?5, failing_since = coalesce(failing_since, ?2),
                    last_error = ?6
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            now,
            o.status,
            o.duration_ms as i64,
            failures,
            error
        ])?;
        let since = prior.failing_since.unwrap_or(now);
        let mut e = event(
            if *blocked {
                EventKind::Blocked
            } else {
                EventKind::Error
            },
            error.clone(),
        )
        .with("error", json!(error))
        .with("consecutive_failures", json!(failures))
        .with(
            "failing_since",
            json!(crate::event::rfc3339(crate::event::from_millis(since))),
        );
        if let Some(s) = o.status {
            e = e.with("status", json!(s));
        }
        // Stored once when the watch starts failing (the timeline needs no row per retry);
        // reported on every run.
        if failures == 1 {
            e.id = Some(insert_event(tx, id, &e, None, None)?);
        }
        // One `failing` alert after `failures_before_alert` checks in a row, then reminders
        // every `remind_every` if asked for; never one per failed check.
        let alert = match prior.failing_alerted_at {
            None => failures >= i64::from(o.alert.failures_before_alert.max(1)),
            Some(last) => o
                .alert
                .remind_every
                .is_some_and(|r| now - last >= r.as_millis() as i64),
        };
        let failing = alert.then(|| {
            let since_t = crate::event::from_millis(since);
            event(
                EventKind::Failing,
                format!(
                    "failing for {failures} checks in a row (since {}): {error}",
                    crate::event::rfc3339(since_t)
                ),
            )
            .with("error", json!(error))
            .with("consecutive_failures", json!(failures))
            .with("failing_since", json!(crate::event::rfc3339(since_t)))
            .with("reminder", json!(prior.failing_alerted_at.is_some()))
        });
        events.push(e);
        if let Some(mut f) = failing {
            tx.prepare_cached("UPDATE watches SET failing_alerted_at = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
            f.id = Some(insert_event(tx, id, &f, None, None)?);
            events.push(f);
        }
        return Ok(());
    }

    // Any answer from the server that is not a failure: record the check and validators.
    tx.prepare_cached(
        "UPDATE watches SET last_check_at = ?2, last_ok_at = ?2, last_status = ?3,
                last_duration_ms = ?4, consecutive_failures = 0, failing_since = NULL,
                last_error = NULL,
                etag = CASE ?7 WHEN 0 THEN ?5 WHEN 1 THEN coalesce(?5, etag) ELSE etag END,
                last_modified = CASE ?7 WHEN 0 THEN ?6 WHEN 1 THEN coalesce(?6, last_modified)
                                ELSE last_modified END,
                raw_hash = coalesce(?8, raw_hash)
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        now,
        o.status,
        o.duration_ms as i64,
        o.etag,
        o.last_modified,
        // A 200 replaces the validators; a 304 keeps those it does not repeat; while a change
        // awaits confirmation the old ones stay, so the server keeps sending the new body.
        match o.verdict {
            Verdict::NotModified => 1,
            Verdict::Pending { .. } => 2,
            _ => 0,
        },
        o.raw_hash.as_ref().map(|h| &h[..]),
    ])?;
    if prior.failures > 0 {
        let mut e = event(
            EventKind::Recovered,
            format!(
                "recovered after {} failed check{}",
                prior.failures,
                if prior.failures == 1 { "" } else { "s" }
            ),
        )
        .with("consecutive_failures", json!(prior.failures))
        .with("alerted", json!(prior.failing_alerted_at.is_some()));
        if prior.failing_alerted_at.is_some() {
            tx.prepare_cached("UPDATE watches SET failing_alerted_at = NULL WHERE id = ?1")?
                .execute([id])?;
        }
        if let Some(err) = &prior.last_error {
            e = e.with("last_error", json!(err));
        }
        e.id = Some(insert_event(tx, id, &e, None, None)?);
        events.push(e);
    }

    let clear_missing = |tx: &Transaction<'_>, events: &mut Vec<Event>| -> rusqlite::Result<()> {
        if let Some(m) = &prior.missing {
            tx.prepare_cached(
                "UPDATE watches SET missing_selectors = NULL, missing_since = NULL WHERE id = ?1",
            )?
            .execute([id])?;
            let list: Vec<String> = serde_json::from_str(m).unwrap_or_default();
            let mut e = Event::new(
                EventKind::SelectorRestored,
                &o.name,
                &o.url,
                o.at,
                format!("{} matches again", quote_list(&list)),
            )
            .with("selectors", json!(list));
            e.id = Some(insert_event(tx, id, &e, None, None)?);
            events.push(e);
        }
        Ok(())
    };

    match &o.verdict {
        Verdict::NotModified | Verdict::Failed { .. } => {}
        Verdict::Unchanged { text_hash } => {
            clear_missing(tx, events)?;
            set_text_hash(tx, id, text_hash)?;
        }
        Verdict::Pending { hash, count, of } => {
            clear_missing(tx, events)?;
            tx.prepare_cached(
                "UPDATE watches SET pending_hash = ?2, pending_count = ?3 WHERE id = ?1",
            )?
            .execute(params![id, &hash[..], count])?;
            // Reported in JSON so scripts see it; not stored, not a change yet.
            events.push(
                event(
                    EventKind::Pending,
                    format!("a change seen on {count} of {of} checks needed to report it"),
                )
                .with("seen", json!(count))
                .with("confirm", json!(of)),
            );
        }
        Verdict::Noise {
            hash,
            text_hash,
            summary,
            diff,
            masks,
        } => {
            clear_missing(tx, events)?;
            set_text_hash(tx, id, text_hash)?;
            if let Some(h) = hash {
                tx.prepare_cached("UPDATE watches SET content_hash = ?2 WHERE id = ?1")?
                    .execute(params![id, &h[..]])?;
            }
            events.push(record_noise(tx, id, o, summary, diff, masks)?);
        }
        Verdict::Baseline {
            content,
            hash,
            text_hash,
            spec,
            reason,
        } => {
            clear_missing(tx, events)?;
            let snap = store_content(tx, id, o, content, hash, text_hash, spec, false)?;
            let summary = match reason {
                Some(r) => format!("new baseline: {r}"),
                None => "first sight: baseline stored".to_string(),
            };
            let mut e = event(EventKind::Baseline, summary).with("snapshot", json!(snap));
            if let Some(r) = reason {
                e = e.with("reason", json!(r));
            }
            e.id = Some(insert_event(tx, id, &e, None, Some(snap))?);
            events.push(e);
            prune(tx, id, o.keep, o.keep_for, now)?;
        }
        Verdict::Changed {
            content,
            hash,
            text_hash,
            spec,
            summary,
            diff,
            added,
            removed,
            previous_snapshot,
            json: json_changes,
        } => {
            clear_missing(tx, events)?;
            let snap = store_content(tx, id, o, content, hash, text_hash, spec, true)?;
            let mut value_change = true;
            if let Some((schema, values)) = json_changes {
                value_change = !values.is_empty();
                if !schema.is_empty() {
                    let mut lines: Vec<String> = Vec::new();
                    match &schema.api {
                        // An OpenAPI document: in API terms, breaking first.
                        Some(api) if !(api.breaking.is_empty() && api.additions.is_empty()) => {
                            lines.extend(api.breaking.iter().map(|b| format!("breaking: {b}")));
                            lines.extend(api.additions.iter().map(|a| format!("addition: {a}")));
                        }
                        _ => {
                            lines.extend(schema.removed.iter().map(|r| format!("removed {r}")));
                            lines.extend(schema.retyped.iter().cloned());
                            lines.extend(schema.added.iter().map(|a| format!("added {a}")));
                        }
                    }
                    let mut e = event(
                        EventKind::SchemaChanged,
                        format!(
                            "{} structure change{}: {}",
                            lines.len(),
                            if lines.len() == 1 { "" } else { "s" },
                            lines[0]
                        ),
                    )
                    .with("removed", json!(schema.removed))
                    .with("added", json!(schema.added))
                    .with("retyped", json!(schema.retyped))
                    .with("breaking", json!(schema.api.as_ref().map(|a| &a.breaking)))
                    .with(
                        "additions",
                        json!(schema.api.as_ref().map(|a| &a.additions)),
                    )
                    .with(
                        "severity",
                        json!(if schema.breaking() {
                            Severity::Critical
                        } else {
                            Severity::Info
                        }),
                    );
                    e.diff = Some(lines.join("\n") + "\n");
                    e.id = Some(insert_event(tx, id, &e, *previous_snapshot, Some(snap))?);
                    events.push(e);
                }
            }
            if value_change {
                let mut e = event(EventKind::Changed, summary.clone())
                    .with("added", json!(added))
                    .with("removed", json!(removed));
                if let Some((_, values)) = json_changes {
                    e = e.with("changes", json!(values));
                }
                e.diff = Some(diff.clone());
                e.id = Some(insert_event(tx, id, &e, *previous_snapshot, Some(snap))?);
                events.push(e);
            }
            prune(tx, id, o.keep, o.keep_for, now)?;
        }
        Verdict::FeedChanged {
            content,
            hash,
            text_hash,
            spec,
            new,
            updated,
            more,
        } => {
            clear_missing(tx, events)?;
            let previous: Option<i64> = tx
                .prepare_cached("SELECT last_snapshot_id FROM watches WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            let snap = store_content(tx, id, o, content, hash, text_hash, spec, true)?;
            let n = new.len();
            for (i, entry) in new.iter().enumerate() {
                let mut summary = entry.title.clone();
                if i + 1 == n && *more > 0 {
                    summary.push_str(&format!(" (and {more} more new entries not shown)"));
                }
                let mut e = event(EventKind::NewEntry, summary)
                    .with("title", json!(entry.title))
                    .with("link", json!(entry.link))
                    .with("date", json!(entry.date))
                    .with("excerpt", json!(entry.excerpt(280)));
                if i + 1 == n && *more > 0 {
                    e = e.with("more", json!(more));
                }
                e.id = Some(insert_event(tx, id, &e, previous, Some(snap))?);
                events.push(e);
            }
            for (entry, diff) in updated {
                let mut e = event(EventKind::EntryUpdated, format!("{} (edited)", entry.title))
                    .with("title", json!(entry.title))
                    .with("link", json!(entry.link));
                e.diff = Some(diff.clone());
                e.id = Some(insert_event(tx, id, &e, previous, Some(snap))?);
                events.push(e);
            }
            prune(tx, id, o.keep, o.keep_for, now)?;
        }
        Verdict::NewVersion {
            content,
            hash,
            text_hash,
            spec,
            old,
            new,
            bump,
            skipped,
        } => {
            let previous: Option<i64> = tx
                .prepare_cached("SELECT last_snapshot_id FROM watches WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            let snap = store_content(tx, id, o, content, hash, text_hash, spec, true)?;
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
            let mut e = event(EventKind::NewVersion, summary)
                .with("old", json!(old))
                .with("new", json!(new.version))
                .with("bump", json!(bump))
                .with("skipped", json!(skipped))
                .with("release_url", json!(new.url))
                .with("notes", json!(notes))
                // A major bump may break the integration: louder than a patch.
                .with(
                    "severity",
                    json!(if *bump == Bump::Major {
                        Severity::Warning
                    } else {
                        Severity::Info
                    }),
                );
            e.diff = None;
            e.id = Some(insert_event(tx, id, &e, previous, Some(snap))?);
            events.push(e);
            prune(tx, id, o.keep, o.keep_for, now)?;
        }
        Verdict::SelectorMissing { selectors } => {
            let list = serde_json::to_string(selectors).expect("strings serialise");
            // Reported once when it goes missing, not on every run while it stays missing.
            if prior.missing.as_deref() != Some(list.as_str()) {
                tx.prepare_cached(
                    "UPDATE watches SET missing_selectors = ?2,
                            missing_since = coalesce(missing_since, ?3)
                     WHERE id = ?1",
                )?
                .execute(params![id, list, now])?;
                let summary = format!(
                    "selector {} matched nothing: the page may have been redesigned",
                    quote_list(selectors)
                );
                let mut e = event(EventKind::SelectorMissing, summary)
                    .with("selector", json!(selectors[0]))
                    .with("selectors", json!(selectors));
                e.id = Some(insert_event(tx, id, &e, None, None)?);
                events.push(e);
            }
        }
    }
    Ok(())
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A new snapshot becomes the watch's content (and, for a change, its last change).
#[allow(clippy::too_many_arguments)]
fn store_content(
    tx: &Transaction<'_>,
    id: i64,
    o: &Outcome,
    content: &str,
    hash: &crate::compare::Hash,
    text_hash: &crate::compare::Hash,
    spec: &str,
    is_change: bool,
) -> rusqlite::Result<i64> {
    let now = o.at.timestamp_millis();
    // The bytes compressed while judging (the verdict's text was let go then), when they are
    // of this very content.
    let stored = o.stored.as_ref().filter(|s| s.hash == *hash);
    let snap = super::insert_snapshot(tx, id, now, content, stored, hash, o.raw_hash.as_ref())?;
    set_content(tx, id, hash, spec, snap)?;
    set_text_hash(tx, id, text_hash)?;
    if is_change {
        tx.prepare_cached("UPDATE watches SET last_change_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?;
    }
    Ok(snap)
}

fn set_content(
    tx: &Transaction<'_>,
    id: i64,
    hash: &crate::compare::Hash,
    spec: &str,
    snap: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE watches SET content_hash = ?2, spec = ?3, last_snapshot_id = ?4 WHERE id = ?1",
    )?
    .execute(params![id, &hash[..], spec, snap])?;
    Ok(())
}

/// Sets the stored text's hash and drops any change awaiting confirmation.
fn set_text_hash(
    tx: &Transaction<'_>,
    id: i64,
    text_hash: &crate::compare::Hash,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE watches SET text_hash = ?2, pending_hash = NULL, pending_count = 0 WHERE id = ?1",
    )?
    .execute(params![id, &text_hash[..]])?;
    Ok(())
}

/// Stores a noise event. A run of noise with no real event in between is one row, updated
/// (count, time, latest diff), so a page with a clock in it does not grow the history.
fn record_noise(
    tx: &Transaction<'_>,
    watch_id: i64,
    o: &Outcome,
    summary: &str,
    diff: &str,
    masks: &[String],
) -> rusqlite::Result<Event> {
    let last: Option<(i64, String, Option<String>)> = tx
        .prepare_cached(
            "SELECT id, kind, detail FROM events WHERE watch_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([watch_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let previous = last.filter(|(_, kind, _)| kind == EventKind::Noise.as_str());
    let count = previous
        .as_ref()
        .and_then(|(_, _, d)| d.as_deref())
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| d["count"].as_u64())
        .unwrap_or(0)
        + 1;
    let mut e = Event::new(EventKind::Noise, &o.name, &o.url, o.at, summary.to_string())
        .with("masks", json!(masks))
        .with("count", json!(count));
    e.diff = Some(diff.to_string());
    match previous {
        Some((id, _, _)) => {
            tx.prepare_cached(
                "UPDATE events SET at = ?2, summary = ?3, diff = ?4, detail = ?5 WHERE id = ?1",
            )?
            .execute(params![
                id,
                o.at.timestamp_millis(),
                e.summary,
                e.diff,
                serde_json::to_string(&e.detail).unwrap_or_default()
            ])?;
            e.id = Some(id);
        }
        None => e.id = Some(insert_event(tx, watch_id, &e, None, None)?),
    }
    Ok(e)
}

fn insert_event(
    tx: &Transaction<'_>,
    watch_id: i64,
    e: &Event,
    from: Option<i64>,
    to: Option<i64>,
) -> rusqlite::Result<i64> {
    let detail = if e.detail.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&e.detail).unwrap_or_default())
    };
    tx.prepare_cached(
        "INSERT INTO events (watch_id, at, kind, summary, diff, detail, from_snapshot, to_snapshot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        watch_id,
        e.at.timestamp_millis(),
        e.kind,
        e.summary,
        e.diff,
        detail,
        from,
        to
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Keeps the newest `keep` snapshots of a watch.
/// Keeps the newest `keep` snapshots of a watch, and of those only the ones younger than
/// `keep_for`; the newest one always stays (it is what the next check compares with).
pub(super) fn prune(
    tx: &Transaction<'_>,
    watch_id: i64,
    keep: u32,
    keep_for: Option<std::time::Duration>,
    now: i64,
) -> rusqlite::Result<usize> {
    let mut n = tx
        .prepare_cached(
            "DELETE FROM snapshots WHERE watch_id = ?1 AND id <= (
                 SELECT id FROM snapshots WHERE watch_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![watch_id, keep])?;
    if let Some(age) = keep_for {
        let cutoff = now - age.as_millis() as i64;
        n += tx
            .prepare_cached(
                "DELETE FROM snapshots WHERE watch_id = ?1 AND taken_at < ?2
                 AND id != (SELECT max(id) FROM snapshots WHERE watch_id = ?1)",
            )?
            .execute(params![watch_id, cutoff])?;
    }
    Ok(n)
}
