//! Several workers on one database: leases on due watches, and the workers themselves.
//!
//! A worker claims the due watches it will check: a watch is claimed only when its lease is
//! free (or ended: its worker died) and its last check is still the one the worker planned
//! from, so a watch another worker checked meanwhile is not checked again. On PostgreSQL the
//! lease rows are locked `FOR UPDATE SKIP LOCKED`: workers claiming at once split the work
//! without waiting on each other. A lease ends with its check (released in the transaction
//! that stores the outcome), or `ttl` after the worker's last renewal.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::db::{Begin, Db, DbError, ToParam, params};
use super::{Engine, Store, StoreError, from_millis};

/// A worker whose heartbeat (every 2 s) has not been seen for this long is taken for gone
/// (killed, or its host is down): not counted among the live, and shown "gone" by `list`.
pub const GONE_AFTER_MS: i64 = 10_000;

/// `FOR UPDATE SKIP LOCKED` where the engine has it: rows another worker's transaction holds
/// are left to it. SQLite's writers are serialised already.
pub fn skip_locked(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    }
}

/// A due watch a worker asks for: its name, the last check it planned from, and how long
/// its lease lasts without renewal (2 x its timeout + 5 s).
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub name: &'a str,
    pub last_check: Option<DateTime<Utc>>,
    pub ttl_ms: i64,
}

/// The leases a worker holds for one pass.
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub owner: String,
    pub names: HashSet<String>,
}

/// A worker as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub command: String,
    pub watchlist: String,
    pub watches: i64,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// Releases the leases `held` has of these outcomes' watches; returns the names whose lease
/// is no longer this worker's (it ended and another worker took the watch over).
pub(super) fn release_all(
    tx: &Db,
    held: &Held,
    outcomes: &[&crate::judge::Outcome],
) -> Result<Vec<String>, DbError> {
    let mine: Vec<&str> = outcomes
        .iter()
        .map(|o| o.name.as_str())
        .filter(|n| held.names.contains(*n))
        .collect();
    let mut lost = Vec::new();
    for part in mine.chunks(500) {
        let marks = vec!["?"; part.len()].join(",");
        let mut args: Vec<&dyn ToParam> = vec![&held.owner];
        args.extend(part.iter().map(|n| n as &dyn ToParam));
        let released: HashSet<String> = tx
            .query(
                &format!(
                    "UPDATE leases SET owner = NULL, until = NULL
                     WHERE owner = ? AND name IN ({marks}) RETURNING name"
                ),
                &args,
                |r| r.get(0),
            )?
            .into_iter()
            .collect();
        lost.extend(
            part.iter()
                .filter(|n| !released.contains(**n))
                .map(|n| n.to_string()),
        );
    }
    Ok(lost)
}

impl Store {
    /// Claims up to `limit` of the watches in `wanted` for `owner` at `now`; returns the
    /// positions (in `wanted`) of those it got. The leases are released as the outcomes are
    /// stored (see [`Store::hold`]).
    pub fn claim(
        &mut self,
        owner: &str,
        wanted: &[Claim<'_>],
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<usize>, StoreError> {
        let now = now.timestamp_millis();
        let lock = skip_locked(self.engine());
        self.write(Begin::Immediate, |tx| {
            let mut got = Vec::new();
            for (g, part) in wanted.chunks(400).enumerate() {
                if got.len() >= limit {
                    break;
                }
                let room = limit - got.len();
                for i in claim_group(tx, owner, part, now, lock, room)? {
                    got.push(g * 400 + i);
                }
            }
            Ok(got)
        })
    }

    /// The pass about to be written holds these leases: each outcome releases its own.
    pub fn hold(&mut self, held: Option<Held>) {
        self.claims = held;
    }

    /// Renews every lease `owner` holds (`ttl` from now), and says the worker is alive.
    /// Returns the leases renewed.
    pub fn renew(&self, owner: &str, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now = now.timestamp_millis();
        self.write(Begin::Deferred, |tx| {
            let n = tx.execute(
                "UPDATE leases SET until = ?2 + ttl WHERE owner = ?1 AND until IS NOT NULL",
                params![owner, now],
            )?;
            tx.execute(
                "UPDATE workers SET last_seen = ?2 WHERE id = ?1",
                params![owner, now],
            )?;
            Ok(n)
        })
    }

    /// Records a worker starting (or seen again with a new watchlist).
    pub fn register_worker(&self, w: &WorkerRow) -> Result<(), StoreError> {
        self.write(Begin::Deferred, |tx| {
            tx.execute(
                "INSERT INTO workers (id, host, pid, command, watchlist, watches, started_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET watchlist = excluded.watchlist,
                     watches = excluded.watches, last_seen = excluded.last_seen,
                     stopped_at = NULL",
                params![
                    w.id,
                    w.host,
                    w.pid,
                    w.command,
                    w.watchlist,
                    w.watches,
                    w.started_at.timestamp_millis(),
                    w.last_seen.timestamp_millis()
                ],
            )?;
            // Workers gone for a week are forgotten.
            let week_ago = w.last_seen.timestamp_millis() - 7 * 86_400_000;
            tx.execute("DELETE FROM workers WHERE last_seen < ?1", params![week_ago])?;
            Ok(())
        })
    }

    /// A worker stopping cleanly: its leases end now, and `list` shows it stopped.
    pub fn unregister_worker(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = now.timestamp_millis();
        self.write(Begin::Deferred, |tx| {
            tx.execute(
                "UPDATE leases SET owner = NULL, until = NULL WHERE owner = ?1",
                params![id],
            )?;
            tx.execute(
                "UPDATE workers SET stopped_at = ?2, last_seen = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        })
    }

    /// The workers recorded, most recently seen first.
    pub fn workers(&self) -> Result<Vec<WorkerRow>, StoreError> {
        self.db
            .query(
                "SELECT id, host, pid, command, watchlist, watches, started_at, last_seen, stopped_at
                 FROM workers ORDER BY last_seen DESC, id",
                params![],
                |r| {
                    Ok(WorkerRow {
                        id: r.get(0)?,
                        host: r.get(1)?,
                        pid: r.get(2)?,
                        command: r.get(3)?,
                        watchlist: r.get(4)?,
                        watches: r.get(5)?,
                        started_at: from_millis(r.get(6)?),
                        last_seen: from_millis(r.get(7)?),
                        stopped_at: r.get::<Option<i64>>(8)?.map(from_millis),
                    })
                },
            )
            .map_err(|e| self.classify(e))
    }
}

/// Claims what it can of one group of watches (in the caller's transaction); returns their
/// positions in `part`.
fn claim_group(
    tx: &Db,
    owner: &str,
    part: &[Claim<'_>],
    now: i64,
    lock: &str,
    room: usize,
) -> Result<Vec<usize>, DbError> {
    let names: Vec<&dyn ToParam> = part.iter().map(|c| &c.name as &dyn ToParam).collect();
    let values = vec!["(?)"; part.len()].join(",");
    tx.execute(
        &format!("INSERT INTO leases (name) VALUES {values} ON CONFLICT (name) DO NOTHING"),
        &names,
    )?;
    let marks = vec!["?"; part.len()].join(",");
    let free: HashSet<String> = tx
        .query(
            &format!(
                "SELECT name FROM leases
                 WHERE name IN ({marks}) AND (until IS NULL OR until < {now}){lock}"
            ),
            &names,
            |r| r.get(0),
        )?
        .into_iter()
        .collect();
    if free.is_empty() {
        return Ok(Vec::new());
    }
    // The last check each watch has now: one a worker stored since this one planned is
    // not checked again.
    let checked: std::collections::HashMap<String, Option<i64>> = tx
        .query(
            &format!("SELECT name, last_check_at FROM watches WHERE name IN ({marks})"),
            &names,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .into_iter()
        .collect();
    let got: Vec<usize> = part
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let now_checked = checked.get(c.name).copied().flatten();
            free.contains(c.name) && now_checked == c.last_check.map(|t| t.timestamp_millis())
        })
        .map(|(i, _)| i)
        .take(room)
        .collect();
    // One statement per lease length (most watches share one).
    let mut by_ttl: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
    for &i in &got {
        by_ttl.entry(part[i].ttl_ms).or_default().push(part[i].name);
    }
    for (ttl, names) in by_ttl {
        let marks = vec!["?"; names.len()].join(",");
        let (until, owner) = (now + ttl, owner.to_string());
        let mut args: Vec<&dyn ToParam> = vec![&owner, &until, &ttl];
        args.extend(names.iter().map(|n| n as &dyn ToParam));
        tx.execute(
            &format!("UPDATE leases SET owner = ?, until = ?, ttl = ? WHERE name IN ({marks})"),
            &args,
        )?;
    }
    Ok(got)
}
