//! `verify`: what a verify needs from the database (the snapshots and diff of its events),
//! and its verdict written back: into the events, and releasing their held notifications.

use super::db::{Begin, Db, DbError, params};
use serde_json::{Value, json};

use super::{Store, StoreError};
use crate::config::alert::AlertPolicy;
use crate::event::Severity;

/// What a verify of one check's events reads: the new and previous compared text, and the
/// diff between them.
#[derive(Debug, Default)]
pub struct Inputs {
    pub snapshot: String,
    pub previous: String,
    pub diff: String,
}

/// An event's watch, snapshots (from, to) and diff.
type EventRow = (i64, Option<i64>, Option<i64>, Option<String>);

impl Store {
    /// The texts and diff for a verify of `event`: its snapshots, or (for an event on an
    /// unchanged page, like a broken contract) the watch's newest one and the one before.
    pub fn verify_inputs(&self, event: i64) -> Result<Inputs, StoreError> {
        let row: Option<EventRow> = self
            .db
            .query_opt(
                "SELECT watch_id, from_snapshot, to_snapshot, diff FROM events WHERE id = ?1",
                params![event],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, super::diff_of(r, 3)?)),
            )
            .map_err(|e| self.classify(e))?;
        let Some((watch, from, to, diff)) = row else {
            return Ok(Inputs::default());
        };
        let newest: Vec<i64> = self
            .db
            .query(
                "SELECT id FROM snapshots WHERE watch_id = ?1 ORDER BY id DESC LIMIT 2",
                params![watch],
                |r| r.get(0),
            )
            .map_err(|e| self.classify(e))?;
        let to = to.or(newest.first().copied());
        let from = from.or_else(|| newest.iter().copied().find(|&id| Some(id) != to));
        let text = |id: Option<i64>| -> Result<String, StoreError> {
            Ok(match id {
                Some(id) => self.snapshot(id)?.map(|s| s.content).unwrap_or_default(),
                None => String::new(),
            })
        };
        let readable = |t: String| crate::extract::structure::readable(&t).into_owned();
        Ok(Inputs {
            snapshot: readable(text(to)?),
            previous: readable(text(from)?),
            diff: diff.unwrap_or_default(),
        })
    }

    /// Writes a verify's verdict into its events; a failed one makes them critical. Their
    /// held notifications go out now (a failed verify also reaching the channels whose
    /// `min_severity` only critical events reach).
    pub fn finish_verify(
        &mut self,
        events: &[i64],
        verdict: &Value,
        policy: &AlertPolicy,
    ) -> Result<(), StoreError> {
        let failed = verdict["passed"] == json!(false);
        let now = crate::schedule::now().timestamp_millis();
        self.write(Begin::Immediate, |tx| {
            for &id in events {
                finish_one(tx, id, verdict, failed, policy, now)?;
            }
            Ok(())
        })
    }

    /// Verifies a process that died left running: their events are marked interrupted and
    /// their held notifications go out. Returns how many events.
    pub fn interrupt_verifies(&mut self) -> Result<usize, StoreError> {
        let rows: Vec<(i64, Option<String>, i64)> = self
            .db
            .query(
                "SELECT event_id, owner, started_at FROM verifies",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.classify(e))?;
        let now = crate::schedule::now().timestamp_millis();
        let ids: Vec<i64> = rows
            .into_iter()
            .filter(|(_, owner, started)| abandoned(owner.as_deref(), now - started))
            .map(|(id, ..)| id)
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let verdict = json!({"state": "interrupted", "passed": null});
        self.finish_verify(&ids, &verdict, &AlertPolicy::default())?;
        Ok(ids.len())
    }
}

/// Who runs a verify: "host:pid".
pub(super) fn owner() -> String {
    format!("{}:{}", super::outbox::host_name(), std::process::id())
}

/// A verify whose process is gone: it ran here and its pid is dead, or it ran elsewhere
/// (or before owners were recorded) and has run far longer than any verify may.
fn abandoned(owner: Option<&str>, age_ms: i64) -> bool {
    const LONGEST: i64 = 3_600_000;
    let here = super::outbox::host_name();
    match owner.and_then(|o| o.rsplit_once(':')) {
        Some((host, pid)) if host == here => match pid.parse::<i64>() {
            Ok(pid) => pid != i64::from(std::process::id()) && !super::outbox::process_alive(pid),
            Err(_) => true,
        },
        Some(_) => age_ms > LONGEST,
        None => true,
    }
}

/// One event's verdict: its detail, its held notifications released, the watch's state.
fn finish_one(
    tx: &Db,
    id: i64,
    verdict: &Value,
    failed: bool,
    policy: &AlertPolicy,
    now: i64,
) -> Result<(), DbError> {
    set_verify(tx, id, verdict, failed)?;
    tx.execute(
        "UPDATE outbox SET state = 'pending', next_attempt_at = ?2,
                severity = CASE CAST(?3 AS BIGINT) WHEN 1 THEN 'critical' ELSE severity END
         WHERE event_id = ?1 AND state = 'verifying'",
        params![id, now, failed],
    )?;
    let add = |channel: &str, severity: &str| {
        tx.execute(
            "INSERT OR IGNORE INTO outbox (event_id, channel, severity, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id, channel, severity, now],
        )
    };
    // A verify passing again closes the incident a failing one opened.
    if verdict["passed"] == json!(true) {
        for channel in &policy.resolves {
            add(channel, "info")?;
        }
    }
    if failed {
        for (channel, min) in &policy.targets {
            if Severity::Critical >= *min {
                add(channel, "critical")?;
            }
        }
    }
    tx.execute("DELETE FROM verifies WHERE event_id = ?1", params![id])?;
    // `list` shows a failing verify until one passes.
    let (at, what) = match verdict["passed"].as_bool() {
        Some(false) => (Some(now), Some(crate::event::verify_line(verdict))),
        Some(true) => (None, None),
        None => return Ok(()),
    };
    tx.execute(
        "UPDATE watches SET verify_failed_at = ?2, verify_failure = ?3
         WHERE id = (SELECT watch_id FROM events WHERE id = ?1)",
        params![id, at, what],
    )?;
    Ok(())
}

/// Sets the event's `verify`, and its severity to critical when it failed.
fn set_verify(tx: &Db, id: i64, verdict: &Value, failed: bool) -> Result<(), DbError> {
    let detail: Option<String> = tx
        .query_opt(
            "SELECT detail FROM events WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?
        .flatten();
    let mut detail: serde_json::Map<String, Value> = detail
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or_default();
    detail.insert("verify".into(), verdict.clone());
    if failed {
        detail.insert("severity".into(), json!("critical"));
    }
    tx.execute(
        "UPDATE events SET detail = ?2 WHERE id = ?1",
        params![id, Value::Object(detail).to_string()],
    )?;
    Ok(())
}
