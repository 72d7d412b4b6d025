//! The notification outbox: rows written with their events, claimed and marked by the
//! sender. The delivery side is in the notify module.

use std::collections::HashMap;

use super::db::{Begin, Db, DbError, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::config::alert::AlertPolicy;
use crate::event::{Event, Severity, from_millis};

/// A pending notification: one event for one channel.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub channel: String,
    pub severity: Severity,
    pub created_at: i64,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub event: Event,
}

/// Delivery state of one channel, or of one watch's notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// The newest error of a row not yet delivered.
    pub last_error: Option<String>,
}

/// One notification of one event, for reports and the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: i64,
    pub channel: String,
    pub state: String,
    pub attempts: u32,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The message (delivery id) it went out in: a digest carries many events.
    pub message: Option<String>,
}

/// Queues `e` (already inserted, with its id) for each channel the watch routes to whose
/// `min_severity` it reaches. Same transaction as the event: both or neither.
pub(super) fn enqueue(tx: &Db, e: &Event, policy: &AlertPolicy, now: i64) -> Result<(), DbError> {
    let Some(event_id) = e.id else {
        return Ok(());
    };
    let severity = Severity::of_event(e).max(policy.severity);
    // An event being verified is queued held: it goes out once its verify has said.
    let state = if verifying(e) { "verifying" } else { "pending" };
    let queue = |channel: &str| {
        tx.execute(
            "INSERT OR IGNORE INTO outbox (event_id, channel, severity, created_at, next_attempt_at, state)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![event_id, channel, severity.as_str(), now, state],
        )
    };
    for (channel, min) in &policy.targets {
        if severity >= *min {
            queue(channel)?;
        }
    }
    // A condition that clears closes the incident it opened, however quiet the event.
    if clears(e.kind) {
        for channel in &policy.resolves {
            queue(channel)?;
        }
    }
    Ok(())
}

/// Events that end a condition a pager was told of.
pub(super) fn clears(kind: crate::event::EventKind) -> bool {
    use crate::event::EventKind;
    matches!(
        kind,
        EventKind::Recovered | EventKind::ContractRestored | EventKind::SelectorRestored
    )
}

/// Whether the event's `verify` is still running.
pub(super) fn verifying(e: &Event) -> bool {
    e.detail
        .get("verify")
        .is_some_and(|v| v["state"] == "running")
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
pub(super) fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for the process; it has no other effect.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This machine's name: an outbox claim's pid is checked only on the host that made it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

impl Store {
    /// Claims left by a process that died mid-delivery go back to pending: at once when the
    /// claiming process (on this host) is gone, else once the claim is older than
    /// `claimed_before` (a hung process, a reused pid, or a worker on another host).
    pub fn outbox_release_stale(&self, claimed_before: i64) -> Result<usize, StoreError> {
        let host = host_name();
        let pids: Vec<i64> = self
            .db
            .query(
                "SELECT DISTINCT claimed_by FROM outbox WHERE state = 'sending'
                 AND claimed_by IS NOT NULL AND (claimed_host IS NULL OR claimed_host = ?1)",
                params![host],
                |r| r.get(0),
            )
            .map_err(|e| self.classify(e))?;
        let mut released = 0;
        for pid in pids {
            if !process_alive(pid) {
                released += self
                    .db
                    .execute(
                        "UPDATE outbox SET state = 'pending', claimed_at = NULL, claimed_by = NULL
                         WHERE state = 'sending' AND claimed_by = ?1
                         AND (claimed_host IS NULL OR claimed_host = ?2)",
                        params![pid, host],
                    )
                    .map_err(|e| self.classify(e))?;
            }
        }
        released += self
            .db
            .execute(
                "UPDATE outbox SET state = 'pending', claimed_at = NULL, claimed_by = NULL
                 WHERE state = 'sending' AND claimed_at < ?1",
                params![claimed_before],
            )
            .map_err(|e| self.classify(e))?;
        Ok(released)
    }

    /// Every pending row with its event, oldest first.
    pub fn outbox_pending(&self) -> Result<Vec<Queued>, StoreError> {
        self.db
            .query(
                "SELECT o.id, o.channel, o.severity, o.created_at, o.attempts, o.next_attempt_at,
                        e.id, e.kind, w.name, w.url, e.at, e.summary, e.diff, e.detail
                 FROM outbox o JOIN events e ON e.id = o.event_id
                 JOIN watches w ON w.id = e.watch_id
                 WHERE o.state = 'pending' ORDER BY o.id",
                params![],
                |r| {
                    Ok(Queued {
                        id: r.get(0)?,
                        channel: r.get(1)?,
                        severity: Severity::parse(&r.get::<String>(2)?).unwrap_or_default(),
                        created_at: r.get(3)?,
                        attempts: r.get(4)?,
                        next_attempt_at: r.get(5)?,
                        event: super::event_of_row(r, 6)?,
                    })
                },
            )
            .map_err(|e| self.classify(e))
    }

    /// Claims rows for sending; returns the ids this process got (another process, here or
    /// on another host, may have claimed or delivered some meanwhile). On PostgreSQL rows
    /// another worker is claiming are skipped, not waited for.
    pub fn outbox_claim(&mut self, ids: &[i64], now: i64) -> Result<Vec<i64>, StoreError> {
        let pid = std::process::id() as i64;
        let host = host_name();
        let lock = super::lease::skip_locked(self.engine());
        self.write(Begin::Deferred, |tx| {
            let mut got = Vec::new();
            for part in ids.chunks(500) {
                let marks = vec!["?"; part.len()].join(",");
                let free: Vec<i64> = tx.query(
                    &format!(
                        "SELECT id FROM outbox WHERE state = 'pending' AND id IN ({marks}){lock}"
                    ),
                    &part
                        .iter()
                        .map(|i| i as &dyn super::db::ToParam)
                        .collect::<Vec<_>>(),
                    |r| r.get(0),
                )?;
                for id in free {
                    let n = tx.execute(
                        "UPDATE outbox SET state = 'sending', claimed_at = ?2, claimed_by = ?3,
                                claimed_host = ?4
                         WHERE id = ?1 AND state = 'pending'",
                        params![id, now, pid, host],
                    )?;
                    if n == 1 {
                        got.push(id);
                    }
                }
            }
            Ok(got)
        })
    }

    pub fn outbox_delivered(
        &mut self,
        ids: &[i64],
        now: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        self.each(
            ids,
            "UPDATE outbox SET state = 'delivered', delivered_at = ?2, message = ?3,
                    attempts = attempts + 1, claimed_at = NULL, claimed_by = NULL,
                    last_error = NULL
             WHERE id = ?1",
            |tx, sql, id| tx.execute(sql, params![id, now, message]),
        )
    }

    /// A failed attempt: back to pending until `next_attempt_at`, or `failed` for good when
    /// `next` is `None`.
    pub fn outbox_failed(
        &mut self,
        ids: &[i64],
        error: &str,
        next: Option<i64>,
    ) -> Result<(), StoreError> {
        self.each(
            ids,
            "UPDATE outbox SET state = CASE WHEN CAST(?3 AS BIGINT) IS NULL THEN 'failed' ELSE 'pending' END,
                    next_attempt_at = coalesce(?3, next_attempt_at), last_error = ?2,
                    attempts = attempts + 1, claimed_at = NULL, claimed_by = NULL
             WHERE id = ?1",
            |tx, sql, id| tx.execute(sql, params![id, error, next]),
        )
    }

    fn each(
        &mut self,
        ids: &[i64],
        sql: &str,
        f: impl Fn(&Db, &str, i64) -> Result<usize, DbError>,
    ) -> Result<(), StoreError> {
        self.write(Begin::Deferred, |tx| {
            for id in ids {
                f(tx, sql, *id)?;
            }
            Ok(())
        })
    }

    /// Rows not delivered yet (and not given up).
    pub fn outbox_count_pending(&self) -> Result<usize, StoreError> {
        self.db
            .query_one(
                "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')",
                params![],
                |r| r.get::<i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| self.classify(e))
    }

    /// Delivery counts per channel.
    pub fn outbox_by_channel(&self) -> Result<Vec<(String, OutboxStats)>, StoreError> {
        self.outbox_stats("o.channel").map(|m| {
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        })
    }

    /// Delivery counts per watch.
    pub fn outbox_by_watch(&self) -> Result<HashMap<String, OutboxStats>, StoreError> {
        self.outbox_stats("w.name")
    }

    fn outbox_stats(&self, key: &str) -> Result<HashMap<String, OutboxStats>, StoreError> {
        let sql = format!(
            "SELECT {key},
                    count(CASE WHEN o.state IN ('pending', 'sending') THEN 1 END),
                    count(CASE WHEN o.state = 'delivered' THEN 1 END),
                    count(CASE WHEN o.state = 'failed' THEN 1 END), max(o.delivered_at),
                    (SELECT o2.last_error FROM outbox o2 JOIN events e2 ON e2.id = o2.event_id
                     JOIN watches w2 ON w2.id = e2.watch_id
                     WHERE {key2} = {key} AND o2.state != 'delivered' AND o2.last_error IS NOT NULL
                     ORDER BY o2.id DESC LIMIT 1)
             FROM outbox o JOIN events e ON e.id = o.event_id JOIN watches w ON w.id = e.watch_id
             GROUP BY {key}",
            key2 = key.replace("o.", "o2.").replace("w.", "w2."),
        );
        self.db
            .query(&sql, params![], |r| {
                Ok((
                    r.get::<String>(0)?,
                    OutboxStats {
                        pending: r.get::<i64>(1)? as u64,
                        delivered: r.get::<i64>(2)? as u64,
                        failed: r.get::<i64>(3)? as u64,
                        last_delivered_at: r.get::<Option<i64>>(4)?.map(from_millis),
                        last_error: r.get(5)?,
                    },
                ))
            })
            .map(|rows| rows.into_iter().collect())
            .map_err(|e| self.classify(e))
    }

    /// Every notification of the events with these ids.
    pub fn deliveries(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Delivery>, StoreError> {
        let since = since.map_or(i64::MIN, |s| s.timestamp_millis());
        self.db
            .query(
                "SELECT o.event_id, o.channel, o.state, o.attempts, o.delivered_at, o.last_error,
                        o.message
                 FROM outbox o JOIN events e ON e.id = o.event_id
                 WHERE e.at >= ?1 ORDER BY o.event_id, o.channel",
                params![since],
                |r| {
                    Ok(Delivery {
                        event_id: r.get(0)?,
                        channel: r.get(1)?,
                        state: r.get(2)?,
                        attempts: r.get(3)?,
                        delivered_at: r.get::<Option<i64>>(4)?.map(from_millis),
                        last_error: r.get(5)?,
                        message: r.get(6)?,
                    })
                },
            )
            .map_err(|e| self.classify(e))
    }
}

impl Store {
    /// Failed rows (of one channel, or all) go back to pending, due now. Returns how many.
    pub fn outbox_retry(&self, channel: Option<&str>, now: i64) -> Result<usize, StoreError> {
        self.db
            .execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1
                 WHERE state = 'failed' AND (CAST(?2 AS TEXT) IS NULL OR channel = ?2)",
                params![now, channel],
            )
            .map_err(|e| self.classify(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{Outcome, Verdict};
    use std::sync::Arc;

    fn outcome(policy: &Arc<AlertPolicy>, kind: Verdict) -> Outcome {
        Outcome {
            name: "w".into(),
            url: "http://x/".into(),
            at: chrono::Utc::now(),
            duration_ms: 1,
            status: Some(200),
            etag: None,
            last_modified: None,
            raw_hash: None,
            keep: 5,
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
            alert: policy.clone(),
            verdict: kind,
            stored: None,
        }
    }

    fn changed(text: &str) -> Verdict {
        let h = crate::compare::hash(text.as_bytes());
        Verdict::Changed {
            content: text.into(),
            hash: h,
            text_hash: h,
            spec: "s".into(),
            summary: "+1 -1 line".into(),
            diff: "-a\n+b\n".into(),
            added: 1,
            removed: 1,
            previous_snapshot: None,
            json: None,
            structure: None,
        }
    }

    #[test]
    fn an_encoded_outcome_keeps_only_its_compressed_text_and_stores_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let policy = Arc::new(AlertPolicy::default());
        let text = "a line of page text\n".repeat(500);
        let mut o = outcome(&policy, changed(&text));
        o.encode();
        assert!(matches!(&o.verdict, Verdict::Changed { content, .. } if content.is_empty()));
        let stored = o.stored.as_ref().unwrap();
        assert_eq!(
            (stored.encoding, stored.size),
            (crate::codec::encoding::LZ4, text.len())
        );
        assert!(stored.bytes.len() < text.len() / 10);
        s.apply_batch(&[o]).unwrap();
        let snaps = s.snapshots_of("w").unwrap();
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0].2, text.len() as i64);
        assert_eq!(s.snapshot(snaps[0].0).unwrap().unwrap().content, text);
        // Not encoded (a refetch that failed): the writer compresses the text itself.
        let other = "another page\n".repeat(300);
        s.apply_batch(&[outcome(&policy, changed(&other))]).unwrap();
        let snaps = s.snapshots_of("w").unwrap();
        let newest = snaps.iter().max_by_key(|s| s.0).unwrap();
        assert_eq!(newest.2, other.len() as i64);
        assert_eq!(s.snapshot(newest.0).unwrap().unwrap().content, other);
    }

    #[test]
    fn a_row_is_claimed_by_one_process_only_and_delivered_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let policy = Arc::new(AlertPolicy {
            targets: vec![
                ("chat".into(), Severity::Info),
                ("pager".into(), Severity::Critical),
            ],
            ..AlertPolicy::default()
        });
        a.apply_batch(&[outcome(&policy, changed("one"))]).unwrap();
        let pending = a.outbox_pending().unwrap();
        assert_eq!(pending.len(), 1, "below the pager's min_severity");
        assert_eq!(pending[0].channel, "chat");
        let ids = vec![pending[0].id];
        assert_eq!(a.outbox_claim(&ids, 1).unwrap(), ids);
        assert!(
            b.outbox_claim(&ids, 1).unwrap().is_empty(),
            "already claimed"
        );
        a.outbox_delivered(&ids, 2, "m").unwrap();
        assert!(
            b.outbox_claim(&ids, 3).unwrap().is_empty(),
            "already delivered"
        );
        assert!(b.outbox_pending().unwrap().is_empty());
        // A claim abandoned by a dead process goes back to pending; a delivered row never.
        a.apply_batch(&[outcome(&policy, changed("two"))]).unwrap();
        let id = a.outbox_pending().unwrap()[0].id;
        a.outbox_claim(&[id], 100).unwrap();
        assert_eq!(
            b.outbox_release_stale(50).unwrap(),
            0,
            "its claimant is alive"
        );
        assert_eq!(b.outbox_release_stale(101).unwrap(), 1, "an old claim");
        assert_eq!(b.outbox_pending().unwrap().len(), 1);
        // A claim by a process that no longer exists is released at once.
        a.outbox_claim(&[id], 200).unwrap();
        b.db()
            .execute(
                "UPDATE outbox SET claimed_by = 2147483000 WHERE id = ?1",
                params![id],
            )
            .unwrap();
        assert_eq!(b.outbox_release_stale(0).unwrap(), 1, "a dead claimant");
    }

    #[test]
    fn an_event_and_its_outbox_rows_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut s = Store::open(&path).unwrap();
        let policy = Arc::new(AlertPolicy {
            targets: vec![("chat".into(), Severity::Info)],
            ..AlertPolicy::default()
        });
        s.apply_batch(&[outcome(&policy, changed("one"))]).unwrap();
        let n = |s: &Store, sql: &str| -> i64 {
            s.db().query_one(sql, params![], |r| r.get(0)).unwrap()
        };
        assert_eq!(
            n(&s, "SELECT count(*) FROM events WHERE kind = 'changed'"),
            1
        );
        assert_eq!(n(&s, "SELECT count(*) FROM outbox"), 1);
        // A batch whose outbox write fails writes no event either.
        let bad = outcome(&policy, changed("two"));
        s.db()
            .batch(
                "CREATE TRIGGER no_empty BEFORE INSERT ON outbox
                 BEGIN SELECT RAISE(ABORT, 'disk full, say'); END;",
            )
            .unwrap();
        assert!(s.apply_batch(&[bad]).is_err());
        assert_eq!(
            n(&s, "SELECT count(*) FROM events WHERE kind = 'changed'"),
            1
        );
        assert_eq!(n(&s, "SELECT count(*) FROM outbox"), 1);
    }
}
