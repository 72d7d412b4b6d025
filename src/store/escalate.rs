//! Escalations: an event at or above an escalation's `min_severity` goes to each step's
//! channel in turn (an outbox row per step, as any notification), until it is acknowledged.

use super::db::{Begin, Db, DbError, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_millis};
use crate::config::alert::{AlertPolicy, Escalation};
use crate::event::{Event, Severity};

/// Starts the escalation of a stored event that is loud enough: its first step is due after
/// the step's `after` (at once without one). Same transaction as the event.
pub(super) fn start(tx: &Db, e: &Event, policy: &AlertPolicy, now: i64) -> Result<(), DbError> {
    let (Some(esc), Some(id)) = (&policy.escalate, e.id) else {
        return Ok(());
    };
    if Severity::of_event(e).max(policy.severity) < esc.min_severity {
        return Ok(());
    }
    let first = crate::event::millis(esc.steps[0].0);
    tx.execute(
        "INSERT OR IGNORE INTO escalations (event_id, name, started_at, next_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![id, esc.name, now, now + first],
    )?;
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
        // Several workers: the steps one of them is taking are skipped by the others.
        let sql = format!(
            "SELECT event_id, name, step, next_at FROM escalations
             WHERE acked_at IS NULL AND next_at <= ?1{}",
            super::lease::skip_locked(self.engine())
        );
        self.write(Begin::Immediate, |tx| {
            let due: Vec<(i64, String, i64, i64)> = tx.query(&sql, params![now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            let mut taken = 0;
            for (event, name, step, at) in due {
                taken += take_step(tx, escalations, (event, &name, step, at), now)?;
            }
            Ok(taken)
        })
    }

    /// When the next escalation step is due, if one is.
    pub fn next_escalation_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.db
            .query_one(
                "SELECT MIN(next_at) FROM escalations WHERE acked_at IS NULL AND next_at < ?1",
                params![i64::MAX],
                |r| r.get::<Option<i64>>(0),
            )
            .map(|t| t.map(from_millis))
            .map_err(|e| self.classify(e))
    }

    /// The escalations not acknowledged whose steps are not all taken, oldest first.
    pub fn open_escalations(&self) -> Result<Vec<OpenEscalation>, StoreError> {
        self.db
            .query(
                "SELECT x.event_id, w.name, e.kind, e.summary, x.name, x.step, x.started_at, x.next_at
                 FROM escalations x JOIN events e ON e.id = x.event_id JOIN watches w ON w.id = e.watch_id
                 WHERE x.acked_at IS NULL ORDER BY x.started_at",
                params![],
                |r| {
                    Ok(OpenEscalation {
                        event_id: r.get(0)?,
                        watch: r.get(1)?,
                        kind: r.get(2)?,
                        summary: r.get(3)?,
                        name: r.get(4)?,
                        step: usize::try_from(r.get::<i64>(5)?).unwrap_or(0),
                        started_at: from_millis(r.get(6)?),
                        next_at: Some(r.get::<i64>(7)?)
                            .filter(|&t| t < i64::MAX)
                            .map(from_millis),
                    })
                },
            )
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
            self.db
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
        self.db
            .query(
                "SELECT x.acked_at, w.name, w.url, x.event_id, x.acked_by, x.note, x.name
                 FROM escalations x JOIN events e ON e.id = x.event_id JOIN watches w ON w.id = e.watch_id
                 WHERE x.acked_at >= ?1 ORDER BY x.acked_at",
                params![since.timestamp_millis()],
                |r| {
                    Ok(Ack {
                        at: from_millis(r.get(0)?),
                        watch: r.get(1)?,
                        url: r.get(2)?,
                        event_id: r.get(3)?,
                        by: r.get::<Option<String>>(4)?.unwrap_or_default(),
                        note: r.get(5)?,
                        escalation: r.get(6)?,
                    })
                },
            )
            .map_err(|e| self.classify(e))
    }

    /// Whether the event is (or was) escalating, and under which escalation.
    pub fn escalation_of(&self, event: i64) -> Result<Option<String>, StoreError> {
        self.db
            .query_opt(
                "SELECT name FROM escalations WHERE event_id = ?1",
                params![event],
                |r| r.get(0),
            )
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

/// Takes one due step of an escalation (event, name, step, due at): queues its channel and
/// schedules the next. Returns 1 when a step was taken.
fn take_step(
    tx: &Db,
    escalations: &std::collections::BTreeMap<String, Escalation>,
    (event, name, step, at): (i64, &str, i64, i64),
    now: i64,
) -> Result<usize, DbError> {
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    // Removed from the watchlists, or every step taken: the escalation ends here.
    let Some((steps, (_, channel))) = escalations
        .get(name)
        .and_then(|e| Some((&e.steps, e.steps.get(step)?)))
    else {
        tx.execute(
            "UPDATE escalations SET next_at = ?2 WHERE event_id = ?1",
            params![event, i64::MAX],
        )?;
        return Ok(0);
    };
    queue_step(tx, event, channel, now)?;
    let next = steps.get(step + 1).map_or(i64::MAX, |(after, _)| {
        at.max(now) + crate::event::millis(*after)
    });
    tx.execute(
        "UPDATE escalations SET step = ?2, next_at = ?3 WHERE event_id = ?1",
        params![event, (step + 1) as i64, next],
    )?;
    Ok(1)
}

/// Queues a step's channel for the event, held like the event's other notifications while
/// its verify runs.
fn queue_step(tx: &Db, event: i64, channel: &str, now: i64) -> Result<(), DbError> {
    let verifying = tx
        .query_opt(
            "SELECT 1 FROM verifies WHERE event_id = ?1",
            params![event],
            |_| Ok(()),
        )?
        .is_some();
    let detail: Option<String> = tx
        .query_opt(
            "SELECT detail FROM events WHERE id = ?1",
            params![event],
            |r| r.get(0),
        )?
        .flatten();
    let severity = detail
        .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
        .and_then(|d| d["severity"].as_str().map(str::to_string));
    let state = if verifying { "verifying" } else { "pending" };
    tx.execute(
        "INSERT INTO outbox (event_id, channel, severity, created_at, next_attempt_at, state)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)
         ON CONFLICT (event_id, channel) DO UPDATE SET
             state = CASE outbox.state WHEN 'delivered' THEN 'pending' ELSE outbox.state END,
             next_attempt_at = ?4, attempts = 0",
        params![
            event,
            channel,
            severity.unwrap_or_else(|| "critical".into()),
            now,
            state
        ],
    )?;
    Ok(())
}
