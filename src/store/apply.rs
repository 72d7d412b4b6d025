//! Writing one check's outcome: watch row, snapshot, events and validators together, as the
//! judge's [`Plan`] says.

use super::db::{Db, DbError, params};

use crate::event::{Event, EventKind};
use crate::judge::plan::{Check, Field, Validators, Write};
use crate::judge::{NewContent, Outcome, Plan, Prior, Verdict};

/// What one batch of outcomes writes beside each outcome's own rows: the events it produced,
/// the stored state read for all its watches at once, and the response times, inserted
/// together at the end (a round trip per batch, not per check, on PostgreSQL).
#[derive(Default)]
pub(super) struct Batch {
    pub events: Vec<Event>,
    priors: std::collections::HashMap<String, (i64, Prior)>,
    timings: Vec<(i64, i64, i64)>,
}

impl Batch {
    /// Reads the stored state of every watch in `outcomes`.
    pub fn read(tx: &Db, outcomes: &[&Outcome]) -> Result<Batch, DbError> {
        let mut priors = std::collections::HashMap::with_capacity(outcomes.len());
        for part in outcomes.chunks(512) {
            // Padded: a batch's size is however many checks ended while it gathered.
            let part = super::db::padded(part);
            let marks = vec!["?"; part.len()].join(",");
            let names: Vec<&dyn super::db::ToParam> = part
                .iter()
                .map(|o| &o.name as &dyn super::db::ToParam)
                .collect();
            let rows = tx.query(
                &format!("SELECT name, {PRIOR_COLUMNS} FROM watches WHERE name IN ({marks})"),
                &names,
                |r| Ok((r.get::<String>(0)?, prior_of_row(r, 1)?)),
            )?;
            priors.extend(rows);
        }
        Ok(Batch {
            priors,
            ..Batch::default()
        })
    }

    /// Writes the response times the batch's checks measured.
    pub fn finish(self, tx: &Db) -> Result<Vec<Event>, DbError> {
        for part in self.timings.chunks(300) {
            let values = vec!["(?, ?, ?)"; part.len()].join(",");
            let args: Vec<&dyn super::db::ToParam> = part
                .iter()
                .flat_map(|(a, b, c)| [a as &dyn super::db::ToParam, b, c])
                .collect();
            tx.execute(
                &format!("INSERT INTO timings (watch_id, at, ms) VALUES {values}"),
                &args,
            )?;
        }
        Ok(self.events)
    }
}

/// Writes one outcome, and queues a notification for each stored event the watch routes
/// somewhere: the event and its outbox rows commit together.
pub(super) fn apply(tx: &Db, o: &Outcome, batch: &mut Batch) -> Result<(), DbError> {
    let (id, prior) = watch_row(tx, o, batch)?;
    write_judged_state(tx, id, o)?;
    let snap = match o.verdict.content() {
        Some(c) => Some(store_content(tx, id, o, c)?),
        None => None,
    };
    let plan = crate::judge::plan(&prior, o, snap);
    let now = o.at.timestamp_millis();
    write_state(tx, id, o, &plan, now)?;
    if !matches!(plan.check, Check::Failed { .. }) {
        batch.timings.push((id, now, o.duration_ms as i64));
    }
    let events = &mut batch.events;
    let start = events.len();
    for p in plan.events {
        let mut e = p.event;
        e.id = match p.write {
            Write::Report => None,
            Write::Insert { from, to } => {
                let row = insert_event(tx, id, &e, from, to)?;
                if super::outbox::verifying(&e) {
                    tx.execute(
                        "INSERT INTO verifies (event_id, started_at, owner) VALUES (?1, ?2, ?3)",
                        params![row, now, super::verify::owner()],
                    )?;
                }
                Some(row)
            }
            Write::Merge(row) => Some(merge_event(tx, row, &e)?),
        };
        events.push(e);
    }
    if plan.prune {
        prune(tx, id, o.keep, o.keep_for, now)?;
    }
    if !o.alert.targets.is_empty() || o.alert.escalate.is_some() {
        let now = crate::schedule::now().timestamp_millis();
        for e in &events[start..] {
            if e.id.is_some() && e.is_notified() {
                super::outbox::enqueue(tx, e, &o.alert, now)?;
                super::escalate::start(tx, e, &o.alert, now)?;
            }
        }
    }
    Ok(())
}

/// The watch's row id and the state the judge plans from (read with its batch), creating
/// the row at first sight. Its URL is brought up to date with the check's state.
fn watch_row(tx: &Db, o: &Outcome, batch: &mut Batch) -> Result<(i64, Prior), DbError> {
    match batch.priors.remove(&o.name) {
        Some((id, mut prior)) => {
            if matches!(o.verdict, Verdict::Noise { .. }) {
                prior.noise_run = noise_run(tx, id)?;
            }
            Ok((id, prior))
        }
        None => {
            let id = tx.insert(
                "INSERT INTO watches (name, url, created_at) VALUES (?1, ?2, ?3)",
                params![o.name, o.url, o.at.timestamp_millis()],
            )?;
            Ok((id, Prior::default()))
        }
    }
}

/// A stored watch's row id and the state the judge plans from; `noise` reads the run of
/// noise a noise verdict would extend. The writer reads it in its transaction; `forewarn
/// test` reads it to show what `check` would record.
pub(super) fn prior(conn: &Db, name: &str, noise: bool) -> Result<Option<(i64, Prior)>, DbError> {
    let row = conn.query_opt(
        &format!("SELECT {PRIOR_COLUMNS} FROM watches WHERE name = ?1"),
        params![name],
        |r| prior_of_row(r, 0),
    )?;
    let Some((id, mut prior)) = row else {
        return Ok(None);
    };
    if noise {
        prior.noise_run = noise_run(conn, id)?;
    }
    Ok(Some((id, prior)))
}

/// What the judge plans from, as stored: the columns [`prior_of_row`] reads.
const PRIOR_COLUMNS: &str =
    "id, consecutive_failures, failing_since, last_error, missing_selectors,
    failing_alerted_at, last_snapshot_id, recent_changes, recent_checks, volatile_since,
    degraded_checks, degraded_alerted_at";

/// [`PRIOR_COLUMNS`] from column `at` on: the watch's row id and its prior state.
fn prior_of_row(r: &super::db::Row, at: usize) -> Result<(i64, Prior), DbError> {
    let missing: Option<String> = r.get(at + 4)?;
    Ok((
        r.get::<i64>(at)?,
        Prior {
            failures: r.get(at + 1)?,
            failing_since: r.get(at + 2)?,
            last_error: r.get(at + 3)?,
            missing: missing.map(|m| serde_json::from_str(&m).unwrap_or_default()),
            failing_alerted_at: r.get(at + 5)?,
            last_snapshot_id: r.get(at + 6)?,
            noise_run: None,
            recent: crate::judge::volatile::Recent {
                changes: r.get::<i64>(at + 7)? as u16,
                checks: r.get::<i64>(at + 8)?.clamp(0, 16) as u8,
            },
            volatile_since: r.get(at + 9)?,
            degraded: r.get(at + 10)?,
            degraded_alerted: r.get::<Option<i64>>(at + 11)?.is_some(),
        },
    ))
}

/// The watch's newest event, when it is a noise event: its id and count.
fn noise_run(conn: &Db, watch_id: i64) -> Result<Option<(i64, u64)>, DbError> {
    let last: Option<(i64, EventKind, Option<String>)> = conn.query_opt(
        "SELECT id, kind, detail FROM events WHERE watch_id = ?1 ORDER BY id DESC LIMIT 1",
        params![watch_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(last
        .filter(|(_, kind, _)| *kind == EventKind::Noise)
        .map(|(id, _, detail)| {
            let count = detail
                .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                .and_then(|d| d["count"].as_u64())
                .unwrap_or(0);
            (id, count)
        }))
}

/// What judging computed for the watch's next check: expectations, assets, learned masks.
fn write_judged_state(tx: &Db, id: i64, o: &Outcome) -> Result<(), DbError> {
    if let Some((state, _)) = &o.contracts {
        tx.execute(
            "UPDATE watches SET contracts = ?2 WHERE id = ?1",
            params![id, json(state)],
        )?;
    }
    if let Some((assets, _)) = &o.assets {
        tx.execute(
            "UPDATE watches SET assets = ?2 WHERE id = ?1",
            params![id, json(assets)],
        )?;
    }
    if let Some((requests, _)) = &o.requests {
        tx.execute(
            "UPDATE watches SET requests = ?2 WHERE id = ?1",
            params![id, json(requests)],
        )?;
    }
    if let Some(learned) = &o.learned {
        tx.execute(
            "UPDATE watches SET learned_masks = ?2 WHERE id = ?1",
            params![id, json(learned)],
        )?;
    }
    Ok(())
}

/// A value stored as JSON text.
fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("stored state serialises")
}

/// The plan's update of the watch row.
fn write_state(tx: &Db, id: i64, o: &Outcome, plan: &Plan, now: i64) -> Result<(), DbError> {
    match &plan.check {
        Check::Failed { failures, error } => {
            tx.execute(
                "UPDATE watches SET last_check_at = ?2, last_status = ?3, last_duration_ms = ?4,
                        consecutive_failures = ?5, failing_since = coalesce(failing_since, ?2),
                        last_error = ?6, url = ?7
                 WHERE id = ?1",
                params![
                    id,
                    now,
                    o.status,
                    o.duration_ms as i64,
                    failures,
                    error,
                    o.url
                ],
            )?;
        }
        Check::Ok(validators) => record_ok(tx, id, o, *validators, plan, now)?,
    }
    match plan.volatile {
        Field::Keep => {}
        Field::Set(()) => {
            tx.execute(
                "UPDATE watches SET volatile_since = ?2 WHERE id = ?1",
                params![id, now],
            )?;
        }
        Field::Clear => {
            tx.execute(
                "UPDATE watches SET volatile_since = NULL WHERE id = ?1",
                params![id],
            )?;
        }
    }
    match plan.failing_alerted {
        Field::Keep => {}
        Field::Set(()) => {
            tx.execute(
                "UPDATE watches SET failing_alerted_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
        }
        Field::Clear => {
            tx.execute(
                "UPDATE watches SET failing_alerted_at = NULL WHERE id = ?1",
                params![id],
            )?;
        }
    }
    write_degraded_alert(tx, id, plan, now)?;
    write_content_state(tx, id, plan, now)
}

/// When `degraded` was told for an answered check (`max_response_time`); its response time
/// goes in with the batch's, its run of slow answers with the check's own update.
fn write_degraded_alert(tx: &Db, id: i64, plan: &Plan, now: i64) -> Result<(), DbError> {
    if matches!(plan.check, Check::Failed { .. }) {
        return Ok(());
    }
    let alerted = match plan.degraded_alerted {
        Field::Keep => return Ok(()),
        Field::Set(()) => Some(now),
        Field::Clear => None,
    };
    tx.execute(
        "UPDATE watches SET degraded_alerted_at = ?2 WHERE id = ?1",
        params![id, alerted],
    )?;
    Ok(())
}

/// Any answer from the server that is not a failure: the check and its validators.
fn record_ok(
    tx: &Db,
    id: i64,
    o: &Outcome,
    validators: Validators,
    plan: &Plan,
    now: i64,
) -> Result<(), DbError> {
    let recent = plan
        .recent
        .map(|r| (i64::from(r.changes), i64::from(r.checks)));
    tx.execute(
        "UPDATE watches SET last_check_at = ?2, last_ok_at = ?2, last_status = ?3,
                last_duration_ms = ?4, consecutive_failures = 0, failing_since = NULL,
                last_error = NULL,
                etag = CASE CAST(?7 AS BIGINT) WHEN 0 THEN ?5 WHEN 1 THEN coalesce(?5, etag) ELSE etag END,
                last_modified = CASE CAST(?7 AS BIGINT) WHEN 0 THEN ?6 WHEN 1 THEN coalesce(?6, last_modified)
                                ELSE last_modified END,
                raw_hash = coalesce(?8, raw_hash),
                recent_changes = coalesce(?9, recent_changes),
                recent_checks = coalesce(?10, recent_checks),
                url = ?11, degraded_checks = coalesce(?12, degraded_checks),
                content_hash = coalesce(?13, content_hash),
                text_hash = coalesce(?14, text_hash),
                pending_hash = CASE CAST(?15 AS BIGINT) WHEN 1 THEN NULL ELSE pending_hash END,
                pending_count = CASE CAST(?15 AS BIGINT) WHEN 1 THEN 0 ELSE pending_count END,
                last_identical = ?16
         WHERE id = ?1",
        params![
            id,
            now,
            o.status,
            o.duration_ms as i64,
            o.etag,
            o.last_modified,
            match validators {
                Validators::Replace => 0,
                Validators::Merge => 1,
                Validators::Keep => 2,
            },
            o.raw_hash.as_ref().map(|h| &h[..]),
            recent.map(|r| r.0),
            recent.map(|r| r.1),
            o.url,
            plan.degraded,
            plan.content_hash.as_ref().map(|h| &h[..]),
            plan.text_hash.as_ref().map(|h| &h[..]),
            plan.text_hash.is_some(),
            i64::from(plan.identical),
        ],
    )?;
    Ok(())
}

/// Missing selectors, the text hash, a pending change and a relearned content hash (the
/// hashes are written with the check's own update when it answered).
fn write_content_state(tx: &Db, id: i64, plan: &Plan, now: i64) -> Result<(), DbError> {
    let hashes_written = matches!(plan.check, Check::Ok(_));
    match &plan.missing {
        Field::Keep => {}
        Field::Set(list) => {
            let list = serde_json::to_string(list).expect("strings serialise");
            tx.execute(
                "UPDATE watches SET missing_selectors = ?2,
                        missing_since = coalesce(missing_since, ?3)
                 WHERE id = ?1",
                params![id, list, now],
            )?;
        }
        Field::Clear => {
            tx.execute(
                "UPDATE watches SET missing_selectors = NULL, missing_since = NULL WHERE id = ?1",
                params![id],
            )?;
        }
    }
    if let Some(h) = plan.text_hash.as_ref().filter(|_| !hashes_written) {
        tx.execute(
            "UPDATE watches SET text_hash = ?2, pending_hash = NULL, pending_count = 0
             WHERE id = ?1",
            params![id, &h[..]],
        )?;
    }
    if let Some((hash, count)) = &plan.pending {
        tx.execute(
            "UPDATE watches SET pending_hash = ?2, pending_count = ?3 WHERE id = ?1",
            params![id, &hash[..], count],
        )?;
    }
    if let Some(h) = plan.content_hash.as_ref().filter(|_| !hashes_written) {
        tx.execute(
            "UPDATE watches SET content_hash = ?2 WHERE id = ?1",
            params![id, &h[..]],
        )?;
    }
    Ok(())
}

/// A new snapshot becomes the watch's content (and, for a change, its last change).
fn store_content(tx: &Db, id: i64, o: &Outcome, c: NewContent<'_>) -> Result<i64, DbError> {
    let now = o.at.timestamp_millis();
    // The bytes compressed while judging (the verdict's text was let go then), when they are
    // of this very content.
    let stored = o.stored.as_ref().filter(|s| s.hash == *c.hash);
    let snap = super::insert_snapshot(tx, id, now, c.text, stored, c.hash, o.raw_hash.as_ref())?;
    if let Some(png) = &o.screenshot {
        tx.execute(
            "UPDATE snapshots SET screenshot = ?2 WHERE id = ?1",
            params![snap, png],
        )?;
    }
    tx.execute(
        "UPDATE watches SET content_hash = ?2, spec = ?3, last_snapshot_id = ?4,
                last_change_at = CASE CAST(?5 AS BIGINT) WHEN 1 THEN ?6 ELSE last_change_at END
         WHERE id = ?1",
        params![id, &c.hash[..], c.spec, snap, c.is_change, now],
    )?;
    Ok(snap)
}

/// Rewrites a stored noise event with the latest of its run (count, time, diff).
fn merge_event(tx: &Db, row: i64, e: &Event) -> Result<i64, DbError> {
    tx.execute(
        "UPDATE events SET at = ?2, summary = ?3, diff = ?4, detail = ?5 WHERE id = ?1",
        params![
            row,
            e.at.timestamp_millis(),
            e.summary,
            super::diff_value(e.diff.as_deref()),
            serde_json::to_string(&e.detail).unwrap_or_default()
        ],
    )?;
    Ok(row)
}

fn insert_event(
    tx: &Db,
    watch_id: i64,
    e: &Event,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<i64, DbError> {
    let detail = if e.detail.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&e.detail).unwrap_or_default())
    };
    tx.insert(
        "INSERT INTO events (watch_id, at, kind, summary, diff, detail, from_snapshot, to_snapshot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            watch_id,
            e.at.timestamp_millis(),
            e.kind,
            e.summary,
            super::diff_value(e.diff.as_deref()),
            detail,
            from,
            to
        ],
    )
}

/// Keeps the newest `keep` snapshots of a watch, and of those only the ones younger than
/// `keep_for`; the newest one always stays (it is what the next check compares with).
pub(super) fn prune(
    tx: &Db,
    watch_id: i64,
    keep: u32,
    keep_for: Option<std::time::Duration>,
    now: i64,
) -> Result<usize, DbError> {
    let mut n = tx.execute(
        "DELETE FROM snapshots WHERE watch_id = ?1 AND id <= (
             SELECT id FROM snapshots WHERE watch_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![watch_id, keep],
    )?;
    if let Some(age) = keep_for {
        let cutoff = now.saturating_sub(crate::event::millis(age));
        n += tx.execute(
            "DELETE FROM snapshots WHERE watch_id = ?1 AND taken_at < ?2
             AND id != (SELECT max(id) FROM snapshots WHERE watch_id = ?1)",
            params![watch_id, cutoff],
        )?;
    }
    Ok(n)
}
