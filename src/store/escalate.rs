//! Escalations: an event at or above an escalation's `min_severity` goes to each step's
//! channel in turn (an outbox row per step, as any notification), until it is acknowledged.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError, from_millis};
use crate::config::alert::{AlertPolicy, Escalation};
use crate::event::{Event, Severity};

/// Starts the escalation of a stored event that is loud enough: its first step is due after
/// the step's `after` (at once without one). Same transaction as the event.
pub(super) fn start(
    tx: &Transaction<'_>,
    e: &Event,
    policy: &AlertPolicy,
    now: i64,
) -> rusqlite::Result<()> {
    let (Some(esc), Some(id)) = (&policy.escalate, e.id) else {
        return Ok(());
    };
    if Severity::of_event(e).max(policy.severity) < esc.min_severity {
        return Ok(());
    }
    let first = crate::event::millis(esc.steps[0].0);
    tx.prepare_cached(
        "INSERT OR IGNORE INTO escalations (event_id, name, started_at, next_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, esc.name, now, now + first])?;
    Ok(())
}

/// An escalation not yet acknowledged.
#[derive(Debug, Clone)]
pub struct OpenEscalation {
    pub event_id: i64,
    pub watch: String,
    pub kind: String,
    pub summary: String,
    pub name: String,
    pub step: usize,
    pub started_at: DateTime<Utc>,
    /// When its next step is due; `None` once every step was taken.
    pub next_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Takes the escalation steps due at `now`: each queues its channel for its event (held
    /// while the event's verify runs), and schedules the next. Returns how many were taken.
    pub fn escalate_due(
        &mut self,
        now: i64,
        escalations: &std::collections::BTreeMap<String, Escalation>,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let classify = |e: rusqlite::Error| super::sql_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(classify)?;
        let due: Vec<(i64, String, i64, i64)> = tx
            .prepare(
                "SELECT event_id, name, step, next_at FROM escalations
                 WHERE acked_at IS NULL AND next_at <= ?1",
            )
            .and_then(|mut s| {
                s.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(classify)?;
        let mut taken = 0;
        for (event, name, step, at) in due {
            let step = usize::try_from(step).unwrap_or(usize::MAX);
            let Some(steps) = escalations.get(&name).map(|e| &e.steps) else {
                // The escalation was removed from the watchlists: it ends here.
                tx.execute(
                    "UPDATE escalations SET next_at = ?2 WHERE event_id = ?1",
                    params![event, i64::MAX],
                )
                .map_err(classify)?;
                continue;
            };
            let Some((_, channel)) = steps.get(step) else {
                tx.execute(
                    "UPDATE escalations SET next_at = ?2 WHERE event_id = ?1",
                    params![event, i64::MAX],
                )
                .map_err(classify)?;
                continue;
            };
            queue_step(&tx, event, channel, now).map_err(classify)?;
            let next = steps.get(step + 1).map_or(i64::MAX, |(after, _)| {
                at.max(now) + crate::event::millis(*after)
            });
            tx.execute(
                "UPDATE escalations SET step = ?2, next_at = ?3 WHERE event_id = ?1",
                params![event, (step + 1) as i64, next],
            )
            .map_err(classify)?;
            taken += 1;
        }
        tx.commit().map_err(classify)?;
        Ok(taken)
    }

    /// When the next escalation step is due, if one is.
    pub fn next_escalation_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.conn
            .query_row(
                "SELECT MIN(next_at) FROM escalations WHERE acked_at IS NULL AND next_at < ?1",
                [i64::MAX],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|t| t.map(from_millis))
            .map_err(|e| self.classify(e))
    }

    /// The escalations not acknowledged whose steps are not all taken, oldest first.
    pub fn open_escalations(&self) -> Result<Vec<OpenEscalation>, StoreError> {
        self.conn
            .prepare(
                "SELECT x.event_id, w.name, e.kind, e.summary, x.name, x.step, x.started_at, x.next_at
                 FROM escalations x JOIN events e ON e.id = x.event_id JOIN watches w ON w.id = e.watch_id
                 WHERE x.acked_at IS NULL ORDER BY x.started_at",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(OpenEscalation {
                        event_id: r.get(0)?,
                        watch: r.get(1)?,
                        kind: r.get(2)?,
                        summary: r.get(3)?,
                        name: r.get(4)?,
                        step: usize::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                        started_at: from_millis(r.get(6)?),
                        next_at: Some(r.get::<_, i64>(7)?)
                            .filter(|&t| t < i64::MAX)
                            .map(from_millis),
                    })
                })?
                .collect()
            })
            .map_err(|e| self.classify(e))
    }

    /// Acknowledges open escalations: of the event `id`, or of every event of the watch
    /// `watch`. Returns the events acknowledged.
    pub fn acknowledge(
        &mut self,
        target: AckTarget<'_>,
        by: &str,
        note: Option<&str>,
    ) -> Result<Vec<OpenEscalation>, StoreError> {
        let open: Vec<OpenEscalation> = self
            .open_escalations()?
            .into_iter()
            .filter(|x| match target {
                AckTarget::Event(id) => x.event_id == id,
                AckTarget::Watch(w) => x.watch == w,
            })
            .collect();
        let now = crate::schedule::now().timestamp_millis();
        for x in &open {
            self.conn
                .execute(
                    "UPDATE escalations SET acked_at = ?2, acked_by = ?3, note = ?4 WHERE event_id = ?1",
                    params![x.event_id, now, by, note],
                )
                .map_err(|e| self.classify(e))?;
        }
        Ok(open)
    }

    /// Acknowledgements since `since`: (when, watch, event id, who, note), for the timeline.
    pub fn acks(&self, since: DateTime<Utc>) -> Result<Vec<Ack>, StoreError> {
        self.conn
            .prepare(
                "SELECT x.acked_at, w.name, w.url, x.event_id, x.acked_by, x.note, x.name
                 FROM escalations x JOIN events e ON e.id = x.event_id JOIN watches w ON w.id = e.watch_id
                 WHERE x.acked_at >= ?1 ORDER BY x.acked_at",
            )
            .and_then(|mut s| {
                s.query_map([since.timestamp_millis()], |r| {
                    Ok(Ack {
                        at: from_millis(r.get(0)?),
                        watch: r.get(1)?,
                        url: r.get(2)?,
                        event_id: r.get(3)?,
                        by: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        note: r.get(5)?,
                        escalation: r.get(6)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.classify(e))
    }

    /// Whether the event is (or was) escalating, and under which escalation.
    pub fn escalation_of(&self, event: i64) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT name FROM escalations WHERE event_id = ?1",
                [event],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.classify(e))
    }
}

/// What `forewarn ack` acknowledges.
#[derive(Debug, Clone, Copy)]
pub enum AckTarget<'a> {
    Event(i64),
    Watch(&'a str),
}

/// One acknowledgement.
#[derive(Debug, Clone)]
pub struct Ack {
    pub at: DateTime<Utc>,
    pub watch: String,
    pub url: String,
    pub event_id: i64,
    pub by: String,
    pub note: Option<String>,
    pub escalation: String,
}

/// Queues a step's channel for the event, held like the event's other notifications while
/// its verify runs.
fn queue_step(tx: &Transaction<'_>, event: i64, channel: &str, now: i64) -> rusqlite::Result<()> {
    let verifying: bool = tx
        .query_row(
            "SELECT 1 FROM verifies WHERE event_id = ?1",
            [event],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let severity: Option<String> = tx
        .query_row(
            "SELECT json_extract(detail, '$.severity') FROM events WHERE id = ?1",
            [event],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let state = if verifying { "verifying" } else { "pending" };
    tx.prepare_cached(
        "INSERT INTO outbox (event_id, channel, severity, created_at, next_attempt_at, state)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)
         ON CONFLICT (event_id, channel) DO UPDATE SET
             state = CASE outbox.state WHEN 'delivered' THEN 'pending' ELSE outbox.state END,
             next_attempt_at = ?4, attempts = 0",
    )?
    .execute(params![
        event,
        channel,
        severity.unwrap_or_else(|| "critical".into()),
        now,
        state
    ])?;
    Ok(())
}
