//! Storage: validators, hashes, snapshots and events, in SQLite (one file, the default) or
//! PostgreSQL (`--db postgres://...`, shared by several workers).
//!
//! SQLite runs in WAL mode, `synchronous = NORMAL`, its migrations tracked with `PRAGMA
//! user_version`; PostgreSQL has the same schema, its version in `forewarn_schema`. A check's
//! snapshot, event and validators are written in one transaction; a pass writes its outcomes
//! in batched transactions from one thread that owns the connection.

mod apply;
pub mod db;
mod escalate;
pub mod lease;
pub mod lock;
mod outbox;
mod pg;
mod schema;
mod verify;
pub use db::{Db, Engine};
pub use escalate::{Ack, AckTarget, OpenEscalation};
pub use lease::{Claim, WorkerRow};
pub use outbox::host_name;
pub use pg::{is_url as is_postgres_url, reachable as database_reachable};
pub use verify::Inputs as VerifyInputs;

pub use crate::judge::{Snapshot, WatchState};
pub use outbox::{Delivery, OutboxStats, Queued};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use db::{Begin, DbError, Row, params};

use crate::compare::Hash;
use crate::event::{Event, from_millis};
use crate::judge::Prior;

pub use schema::SCHEMA_VERSION;

pub use crate::codec::{COMPRESS_FROM, encode_content};

/// What `gc` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gc {
    /// Snapshots pruned to `keep` / `keep_for`.
    pub deleted: usize,
    /// Snapshots re-encoded with zstd.
    pub compacted: usize,
    /// Bytes the database gave back.
    pub freed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {path}: {source}. Check the path and its permissions, or pass --db PATH"
    )]
    Open { path: PathBuf, source: DbError },
    #[error(
        "the database {path} was written by a newer forewarn (schema {found}, this build knows {supported}): upgrade forewarn, or use another --db. It was not modified"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{path} is not a forewarn database or is corrupt ({source}). Move it aside to start afresh, or restore it from a backup"
    )]
    Corrupt { path: PathBuf, source: DbError },
    #[error(
        "{path} has forewarn's tables but no schema version (`PRAGMA user_version` is 0): another tool changed it, and forewarn will not guess. Restore it from a backup, or move it aside to start afresh; it was not modified"
    )]
    Unversioned { path: PathBuf },
    #[error(
        "the database {path} stayed locked: another program holds it (an sqlite3 shell, a backup or sync tool); close it and run again"
    )]
    Locked { path: PathBuf },
    #[error(
        "the disk holding {path} is full ({source}): what was being written was not, and the database is intact (every batch is all or nothing). Free some space and run again; the changes will be found again"
    )]
    DiskFull { path: PathBuf, source: DbError },
    #[error("{message}")]
    Connect { message: String },
    #[error(
        "the database {path} stayed unreachable ({source}): what was being written was not (every batch is all or nothing). Check the server, then run again"
    )]
    Unavailable { path: PathBuf, source: DbError },
    #[error("database error in {path}: {source}")]
    Sql { path: PathBuf, source: DbError },
}

/// Which events to read back.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub watch: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only these kinds; all kinds when empty.
    pub kinds: Vec<crate::event::EventKind>,
}

const STATE_COLUMNS: &str = "id, name, url, etag, last_modified, content_hash, raw_hash, spec,
    last_snapshot_id, last_check_at, last_ok_at, last_change_at, last_status,
    last_duration_ms, consecutive_failures, failing_since, last_error,
    missing_selectors, missing_since, text_hash, pending_hash, pending_count,
    learned_masks, contracts, assets, volatile_since, requests, verify_failed_at,
    verify_failure, last_identical";

/// A watch's last check and its consecutive failures: what deciding "due" needs.
pub type ScheduleState = (Option<DateTime<Utc>>, u32);

const SCHEDULE_COLUMNS: &str = "name, last_check_at, consecutive_failures";

/// One row of [`SCHEDULE_COLUMNS`].
fn schedule_of_row(r: &Row) -> Result<(String, ScheduleState), DbError> {
    Ok((
        r.get::<String>(0)?,
        (
            r.get::<Option<i64>>(1)?.map(from_millis),
            r.get::<i64>(2)? as u32,
        ),
    ))
}

/// A JSON column, `None` when NULL or unreadable.
fn json_of<T: serde::de::DeserializeOwned>(r: &Row, i: usize) -> Result<Option<T>, DbError> {
    Ok(r.bytes(i)?.and_then(|s| serde_json::from_slice(s).ok()))
}

/// One row of [`STATE_COLUMNS`]: the watch's name and its state.
fn state_of_row(r: &Row) -> Result<(String, WatchState), DbError> {
    let hash = |i: usize| -> Result<Option<Hash>, DbError> {
        Ok(r.bytes(i)?.and_then(|v| <Hash>::try_from(v).ok()))
    };
    let time = |i: usize| -> Result<Option<DateTime<Utc>>, DbError> {
        Ok(r.get::<Option<i64>>(i)?.map(from_millis))
    };
    Ok((
        r.get::<String>(1)?,
        WatchState {
            id: r.get(0)?,
            url: r.get(2)?,
            etag: r.get(3)?,
            last_modified: r.get(4)?,
            content_hash: hash(5)?,
            raw_hash: hash(6)?,
            spec: r.get(7)?,
            last_snapshot_id: r.get(8)?,
            last_check_at: time(9)?,
            last_ok_at: time(10)?,
            last_change_at: time(11)?,
            last_status: r.get::<Option<i64>>(12)?.map(|s| s as u16),
            last_duration_ms: r.get::<Option<i64>>(13)?.map(|d| d as u64),
            consecutive_failures: r.get::<i64>(14)? as u32,
            failing_since: time(15)?,
            last_error: r.get(16)?,
            missing_selectors: json_of(r, 17)?,
            missing_since: time(18)?,
            text_hash: hash(19)?,
            pending_hash: hash(20)?,
            pending_count: r.get::<i64>(21)? as u32,
            learned_masks: json_of(r, 22)?.unwrap_or_default(),
            contracts: json_of(r, 23)?.unwrap_or_default(),
            assets: json_of(r, 24)?,
            volatile_since: time(25)?,
            requests: json_of(r, 26)?,
            verify_failed: match (time(27)?, r.get::<Option<String>>(28)?) {
                (Some(at), Some(what)) => Some((at, what)),
                _ => None,
            },
            last_identical: r.get::<i64>(29)? != 0,
        },
    ))
}

pub struct Store {
    db: Db,
    /// The SQLite file, or the PostgreSQL URL as it may be shown (no password).
    path: PathBuf,
    /// PostgreSQL: the URL as given, to open more connections with.
    url: Option<String>,
    /// The leases this worker holds for the pass being written: each outcome releases its
    /// watch's, and is stored only if the lease was still this worker's.
    claims: Option<lease::Held>,
}

impl Store {
    fn new(db: Db, path: PathBuf, url: Option<String>) -> Store {
        Store {
            db,
            path,
            url,
            claims: None,
        }
    }

    /// The SQLite file, or the PostgreSQL URL without its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    fn sql(&self, e: DbError) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source: e,
        }
    }

    fn classify(&self, e: DbError) -> StoreError {
        sql_error(&self.path, e)
    }

    /// What scheduling needs of these watches: (last check, consecutive failures), by name
    /// (those never checked have none). Light enough for `check --due`, which cron starts every
    /// few minutes; it and the daemon read a large list a group at a time.
    pub fn load_schedules_of(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, ScheduleState>, StoreError> {
        self.rows_named(SCHEDULE_COLUMNS, names, schedule_of_row)
    }

    /// The states of these watches only (those never checked have none): a pass loads them a
    /// group at a time, so its memory does not grow with the number of watches.
    pub fn load_states_of(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, WatchState>, StoreError> {
        self.rows_named(STATE_COLUMNS, names, state_of_row)
    }

    /// `columns` of the named watches' rows (the first two `id, name` or `name`), by name.
    fn rows_named<T>(
        &self,
        columns: &str,
        names: &[&str],
        row: fn(&Row) -> Result<(String, T), DbError>,
    ) -> Result<HashMap<String, T>, StoreError> {
        let mut out = HashMap::with_capacity(names.len());
        for part in names.chunks(512) {
            let part = db::padded(part);
            let marks = vec!["?"; part.len()].join(",");
            let sql = format!("SELECT {columns} FROM watches WHERE name IN ({marks})");
            let args: Vec<&dyn db::ToParam> = part.iter().map(|n| n as &dyn db::ToParam).collect();
            let rows = self
                .db
                .query(&sql, &args, row)
                .map_err(|e| self.classify(e))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// The names of the watches that have stored snapshots.
    pub fn names_with_snapshots(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .query(
                "SELECT w.name FROM watches w
                 WHERE EXISTS (SELECT 1 FROM snapshots s WHERE s.watch_id = w.id) ORDER BY w.name",
                params![],
                |r| r.get(0),
            )
            .map_err(|e| self.classify(e))
    }

    /// A watch's snapshots, oldest first: (id, taken at, size in bytes).
    pub fn snapshots_of(&self, watch: &str) -> Result<Vec<(i64, DateTime<Utc>, i64)>, StoreError> {
        self.db
            .query(
                "SELECT s.id, s.taken_at, s.size FROM snapshots s JOIN watches w ON w.id = s.watch_id
                 WHERE w.name = ?1 ORDER BY s.id",
                params![watch],
                |r| Ok((r.get(0)?, from_millis(r.get(1)?), r.get(2)?)),
            )
            .map_err(|e| self.classify(e))
    }

    /// Prunes every named watch's snapshots to its `keep` / `keep_for`, re-encodes with zstd
    /// what checks stored with lz4, then gives the space back to the file system.
    pub fn gc(
        &mut self,
        retention: &[(String, u32, Option<std::time::Duration>)],
    ) -> Result<Gc, StoreError> {
        let before = self.size_on_disk()?;
        let now = Utc::now().timestamp_millis();
        let deleted = self.write(Begin::Deferred, |tx| {
            let mut deleted = 0;
            for (name, keep, keep_for) in retention {
                let id: Option<i64> = tx.query_opt(
                    "SELECT id FROM watches WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )?;
                if let Some(id) = id {
                    deleted += apply::prune(tx, id, *keep, *keep_for, now)?;
                }
            }
            Ok(deleted)
        })?;
        let (compacted, _) = self.compact_snapshots(0, None)?;
        let space = match self.db.engine() {
            Engine::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE); VACUUM;",
            Engine::Postgres => "VACUUM snapshots",
        };
        self.db.batch(space).map_err(|e| self.sql(e))?;
        Ok(Gc {
            deleted,
            compacted,
            freed: before.saturating_sub(self.size_on_disk()?),
        })
    }

    /// Re-encodes with zstd (a third smaller) the snapshots checks stored with lz4 (fast to
    /// write), those with an id past `after`, oldest first, until none is left or `until`.
    /// A batch to a transaction: one batch of texts in memory, and a check waiting on the
    /// database waits for one batch. A snapshot that does not decode is left as it is (reading
    /// it says what is wrong). Returns how many were re-encoded and the last id looked at.
    pub fn compact_snapshots(
        &mut self,
        mut after: i64,
        until: Option<std::time::Instant>,
    ) -> Result<(usize, i64), StoreError> {
        use crate::codec::{COMPACT_LEVEL, compact, decode, encoding::LZ4};
        const BATCH: i64 = 128;
        let mut done = 0;
        while until.is_none_or(|t| std::time::Instant::now() < t) {
            let rows: Vec<(i64, Vec<u8>)> = self
                .db
                .query(
                    "SELECT id, content FROM snapshots WHERE encoding = ?1 AND id > ?2
                     ORDER BY id LIMIT ?3",
                    params![LZ4, after, BATCH],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| self.classify(e))?;
            let Some(&(last, _)) = rows.last() else {
                // Nothing left: the next call starts past today's newest snapshot, so an idle
                // daemon does not scan the whole table again and again to find nothing.
                let newest: Option<i64> = self
                    .db
                    .query_one("SELECT max(id) FROM snapshots", params![], |r| r.get(0))
                    .map_err(|e| self.classify(e))?;
                after = after.max(newest.unwrap_or(0));
                break;
            };
            after = last;
            let packed: Vec<(i64, i64, Vec<u8>)> = rows
                .into_iter()
                .filter_map(|(id, blob)| {
                    let text = String::from_utf8(decode(LZ4, &blob).ok()?).ok()?;
                    let (encoding, bytes) = compact(&text, COMPACT_LEVEL);
                    Some((id, encoding, bytes))
                })
                .collect();
            // Only a row still as read: a worker's prune may have deleted it meanwhile.
            done += self.write(Begin::Deferred, |tx| {
                let mut n = 0;
                for (id, encoding, bytes) in &packed {
                    n += tx.execute(
                        "UPDATE snapshots SET encoding = ?2, content = ?3
                         WHERE id = ?1 AND encoding = ?4",
                        params![id, encoding, bytes, LZ4],
                    )?;
                }
                Ok(n)
            })?;
        }
        Ok((done, after))
    }

    /// The bytes the database takes: the file, or PostgreSQL's tables.
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        match self.db.engine() {
            Engine::Sqlite => Ok(std::fs::metadata(&self.path).map_or(0, |m| m.len())),
            Engine::Postgres => self
                .db
                .query_one(
                    "SELECT pg_total_relation_size('snapshots') + pg_total_relation_size('events')",
                    params![],
                    |r| r.get::<i64>(0),
                )
                .map(|n| n.max(0) as u64)
                .map_err(|e| self.classify(e)),
        }
    }

    /// Runs `f` in a transaction; a connection lost before the commit is re-established
    /// and `f` runs again (PostgreSQL).
    fn write<T>(
        &self,
        begin: Begin,
        mut f: impl FnMut(&Db) -> Result<T, DbError>,
    ) -> Result<T, StoreError> {
        let path = &self.path;
        self.db.transaction(
            begin,
            |tx| f(tx).map_err(|e| sql_error(path, e)),
            |e| sql_error(path, e),
            |e: &StoreError| matches!(e, StoreError::Unavailable { .. }),
        )
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.db
            .query_opt("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .map_err(|e| self.classify(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.classify(e))
    }

    /// The state the judge plans a check of `watch` from (none before its first check);
    /// `noise` includes the run of noise a noise verdict would extend.
    pub fn prior_of(&self, watch: &str, noise: bool) -> Result<Option<Prior>, StoreError> {
        apply::prior(&self.db, watch, noise)
            .map(|row| row.map(|(_, prior)| prior))
            .map_err(|e| self.classify(e))
    }

    /// Drops response times older than `before` (a day is kept, for `list`).
    pub fn prune_timings(&self, before: i64) -> Result<usize, StoreError> {
        self.db
            .execute("DELETE FROM timings WHERE at < ?1", params![before])
            .map_err(|e| self.classify(e))
    }

    /// Each watch's median and 95th percentile response time since `since`, by name:
    /// (p50 ms, p95 ms, answers counted).
    pub fn response_times(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, (u64, u64, usize)>, StoreError> {
        let mut by: HashMap<String, Vec<u64>> = HashMap::new();
        let rows = self
            .db
            .query(
                "SELECT w.name, t.ms FROM timings t JOIN watches w ON w.id = t.watch_id
                 WHERE t.at >= ?1",
                params![since.timestamp_millis()],
                |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
            )
            .map_err(|e| self.classify(e))?;
        for (name, ms) in rows {
            by.entry(name).or_default().push(ms.max(0) as u64);
        }
        Ok(by
            .into_iter()
            .map(|(name, mut v)| {
                v.sort_unstable();
                let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
                let stats = (at(0.5), at(0.95), v.len());
                (name, stats)
            })
            .collect())
    }

    /// The screenshot kept with a snapshot (`screenshot = true`), as PNG.
    pub fn screenshot(&self, snapshot: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .query_opt(
                "SELECT screenshot FROM snapshots WHERE id = ?1",
                params![snapshot],
                |r| r.get::<Option<Vec<u8>>>(0),
            )
            .map(Option::flatten)
            .map_err(|e| self.classify(e))
    }

    /// One snapshot by id.
    pub fn snapshot(&self, id: i64) -> Result<Option<Snapshot>, StoreError> {
        self.db
            .query_opt(
                "SELECT id, taken_at, encoding, content FROM snapshots WHERE id = ?1",
                params![id],
                |r| {
                    let blob: Vec<u8> = r.get(3)?;
                    Ok(Snapshot {
                        id: r.get(0)?,
                        taken_at: from_millis(r.get(1)?),
                        content: decode_content(r.get(2)?, &blob)?,
                    })
                },
            )
            .map_err(|e| self.classify(e))
    }

    /// Stored events, oldest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from(
            "SELECT e.id, e.kind, w.name, w.url, e.at, e.summary, e.diff, e.detail
             FROM events e JOIN watches w ON w.id = e.watch_id WHERE 1=1",
        );
        let mut args: Vec<db::Value> = Vec::new();
        if let Some(w) = &filter.watch {
            args.push(db::Value::Text(w.clone()));
            sql.push_str(&format!(" AND w.name = ?{}", args.len()));
        }
        if let Some(since) = filter.since {
            args.push(db::Value::Int(since.timestamp_millis()));
            sql.push_str(&format!(" AND e.at >= ?{}", args.len()));
        }
        if !filter.kinds.is_empty() {
            let mut marks = Vec::new();
            for k in &filter.kinds {
                args.push(db::Value::Text(k.as_str().to_string()));
                marks.push(format!("?{}", args.len()));
            }
            sql.push_str(&format!(" AND e.kind IN ({})", marks.join(",")));
        }
        sql.push_str(" ORDER BY e.at, e.id");
        let refs: Vec<&dyn db::ToParam> = args.iter().map(|a| a as &dyn db::ToParam).collect();
        self.db
            .query(&sql, &refs, |r| event_of_row(r, 0))
            .map_err(|e| self.classify(e))
    }

    /// Applies a batch of outcomes in one transaction; returns the events they produced.
    /// Under leases (several workers), an outcome whose lease another worker took over is
    /// not stored: that worker checks the watch.
    pub fn apply_batch<'a>(
        &mut self,
        outcomes: impl IntoIterator<Item = &'a crate::judge::Outcome>,
    ) -> Result<Vec<Event>, StoreError> {
        let outcomes: Vec<&crate::judge::Outcome> = outcomes.into_iter().collect();
        let claims = self.claims.as_ref();
        // IMMEDIATE: the write lock is taken (or waited for) up front; a deferred transaction
        // that reads first and then writes can fail at once, past the busy handler.
        let (events, lost) = self.write(Begin::Immediate, |tx| {
            let mut batch = apply::Batch::read(tx, &outcomes)?;
            let lost = match claims {
                Some(held) => lease::release_all(tx, held, &outcomes)?,
                None => Vec::new(),
            };
            for o in &outcomes {
                if !lost.contains(&o.name) {
                    apply::apply(tx, o, &mut batch)?;
                }
            }
            Ok((batch.finish(tx)?, lost))
        })?;
        for name in lost {
            eprintln!(
                "forewarn: {name}: its lease ended before the check did (another worker took it over); this result was not stored"
            );
        }
        Ok(events)
    }

    /// Copies the write-ahead log back into the database once it holds 1 MiB, so a pass on a
    /// small disk does not hold a log many times the database, and the pass's closing
    /// checkpoint copies only its last batches: a warm pass over 10,000 watches rewrites 300
    /// pages, and copying them all after its last request took 20 ms of its 0.37 s, 5 ms
    /// when the writer copies them batch by batch (while the checks run). `truncate` also
    /// shrinks the file (at the end of a pass, when no reader holds it). Best effort: a busy
    /// log is left for later. Nothing to do on PostgreSQL.
    pub fn checkpoint(&self, truncate: bool) {
        let Some(conn) = self.db.as_sqlite() else {
            return;
        };
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        if !truncate && std::fs::metadata(&wal).map_or(0, |m| m.len()) < 1 << 20 {
            return;
        }
        let mode = if truncate { "TRUNCATE" } else { "PASSIVE" };
        let _ = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
    }

    /// Runs `PRAGMA integrity_check` (SQLite); `Ok` when it says "ok".
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let sql = match self.db.engine() {
            Engine::Sqlite => "PRAGMA integrity_check",
            Engine::Postgres => "SELECT 'ok'",
        };
        self.db
            .query_one(sql, params![], |r| r.get(0))
            .map_err(|e| self.classify(e))
    }

    /// The connection, for what the store has no method for (tests, diagnostics).
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// An event from columns `at..at + 8`: id, kind, watch, url, at, summary, diff, detail.
fn event_of_row(r: &Row, at: usize) -> Result<Event, DbError> {
    Ok(Event {
        id: Some(r.get(at)?),
        kind: r.get(at + 1)?,
        watch: r.get(at + 2)?,
        url: r.get(at + 3)?,
        at: from_millis(r.get(at + 4)?),
        summary: r.get(at + 5)?,
        diff: diff_of(r, at + 6)?,
        detail: json_of(r, at + 7)?.unwrap_or_default(),
    })
}

/// An event's diff as stored: as text, or zstd-compressed (a blob) from
/// [`COMPRESS_FROM`] bytes on: a change of a huge page stores half a megabyte of diff.
fn diff_value(diff: Option<&str>) -> db::Value {
    use db::Value;
    match diff {
        None => Value::Null,
        Some(d) => match crate::codec::compact(d, crate::codec::FAST_LEVEL) {
            (crate::codec::encoding::ZSTD, z) => Value::Blob(z),
            _ => Value::Text(d.to_string()),
        },
    }
}

/// zstd's frame magic number, which starts every compressed diff (UTF-8 text never does).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// An event's diff read back: text as is, compressed bytes decompressed (PostgreSQL keeps
/// both in one `bytea` column).
fn diff_of(r: &Row, i: usize) -> Result<Option<String>, DbError> {
    match r.value(i) {
        db::Value::Null => Ok(None),
        db::Value::Blob(b) if b.starts_with(&ZSTD_MAGIC) => {
            decode_content(crate::codec::encoding::ZSTD, b).map(Some)
        }
        _ => r.get(i),
    }
}

fn decode_content(encoding: i64, blob: &[u8]) -> Result<String, DbError> {
    let bytes = crate::codec::decode(encoding, blob).map_err(|e| DbError::Decode(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| DbError::Decode(e.to_string()))
}

/// A database error, named for what the user can do about it.
fn sql_error(path: &Path, e: DbError) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    let path = path.to_path_buf();
    if e.is_connection_lost() {
        return StoreError::Unavailable { path, source: e };
    }
    let code = match &e {
        DbError::Sqlite(s) => s.sqlite_error_code(),
        _ => None,
    };
    match code {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path, source: e }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked { path },
        Some(ErrorCode::DiskFull) => StoreError::DiskFull { path, source: e },
        // A write that failed with ENOSPC often surfaces as an I/O error (growing the WAL or
        // its shared memory): ask the file system.
        Some(ErrorCode::SystemIoFailure) if disk_nearly_full(&path) => {
            StoreError::DiskFull { path, source: e }
        }
        _ => StoreError::Sql { path, source: e },
    }
}

/// Less than 1 MiB free on the file system holding `path`.
fn disk_nearly_full(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) < 1024 * 1024
}

/// Used by `apply` to insert a snapshot row.
fn insert_snapshot(
    tx: &Db,
    watch_id: i64,
    at: i64,
    content: &str,
    stored: Option<&crate::judge::Stored>,
    hash: &Hash,
    raw_hash: Option<&Hash>,
) -> Result<i64, DbError> {
    let encoded;
    let (encoding, blob, size) = match stored {
        Some(s) => (s.encoding, s.bytes.as_slice(), s.size),
        None => {
            encoded = encode_content(content);
            (encoded.0, encoded.1.as_slice(), content.len())
        }
    };
    tx.insert(
        "INSERT INTO snapshots (watch_id, taken_at, content_hash, raw_hash, encoding, size, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            watch_id,
            at,
            &hash[..],
            raw_hash.map(|h| &h[..]),
            encoding,
            size as i64,
            blob
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_and_version_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.integrity_check().unwrap(), "ok");
        drop(s);
        // Re-opening is a no-op.
        Store::open(&path).unwrap();
    }

    #[test]
    fn new_databases_get_large_pages_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |path: &std::path::Path| -> i64 {
            let c = rusqlite::Connection::open(path).unwrap();
            c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
        };
        let new = dir.path().join("new.sqlite");
        drop(Store::open(&new).unwrap());
        assert_eq!(page_size(&new), 16384);
        // A database made with 4 KiB pages (before this version) is migrated as it is.
        let old = dir.path().join("old.sqlite");
        let c = rusqlite::Connection::open(&old).unwrap();
        c.execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x INTEGER)")
            .unwrap();
        drop(c);
        let s = Store::open(&old).unwrap();
        assert_eq!(s.integrity_check().unwrap(), "ok");
        drop(s);
        assert_eq!(page_size(&old), 4096);
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Store::open(&path).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
        drop(c);
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }

    #[test]
    fn garbage_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let junk = vec![b'x'; 8192];
        std::fs::write(&path, &junk).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), junk);
    }

    #[test]
    fn states_load_for_the_named_watches_only_in_groups() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db.sqlite")).unwrap();
        for i in 0..1200 {
            s.db.execute(
                "INSERT INTO watches (name, url, created_at, etag, consecutive_failures)
                     VALUES (?1, 'http://127.0.0.1/', 0, ?2, ?3)",
                params![format!("w{i}"), format!("\"e{i}\""), i % 3],
            )
            .unwrap();
        }
        // More names than one statement's group of 500, and one that was never checked.
        let names: Vec<String> = (0..1100).step_by(2).map(|i| format!("w{i}")).collect();
        let mut asked: Vec<&str> = names.iter().map(String::as_str).collect();
        asked.push("never-checked");
        let states = s.load_states_of(&asked).unwrap();
        assert_eq!(states.len(), 550);
        assert_eq!(states["w1098"].etag.as_deref(), Some("\"e1098\""));
        assert!(!states.contains_key("w1"));
        let some = s.load_schedules_of(&asked).unwrap();
        assert_eq!(some.len(), 550);
        assert_eq!(some["w1096"], (None, 1));
        assert_eq!(some["w1094"], (None, 2));
        assert!(!some.contains_key("w5"));
    }

    #[test]
    fn compacting_resumes_where_it_stopped_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let text = "a line of page text\n".repeat(1000);
        let w =
            s.db.insert(
                "INSERT INTO watches (name, url, created_at) VALUES ('w', 'http://e.com/', 0)",
                params![],
            )
            .unwrap();
        let add = |s: &Store| {
            let (encoding, blob) = encode_content(&text);
            assert_eq!(encoding, crate::codec::encoding::LZ4);
            s.db.insert(
                "INSERT INTO snapshots (watch_id, taken_at, content_hash, encoding, size, content)
                 VALUES (?1, 0, ?2, ?3, ?4, ?5)",
                params![w, vec![0u8; 32], encoding, text.len() as i64, blob],
            )
            .unwrap()
        };
        let (_, second) = (add(&s), add(&s));
        assert_eq!(s.compact_snapshots(0, None).unwrap(), (2, second));
        // Nothing left: the cursor stays past the newest, and nothing is scanned twice.
        assert_eq!(s.compact_snapshots(second, None).unwrap(), (0, second));
        let third = add(&s);
        assert_eq!(s.compact_snapshots(second, None).unwrap(), (1, third));
        for id in [second, third] {
            assert_eq!(s.snapshot(id).unwrap().unwrap().content, text);
        }
        let lz4 =
            s.db.query_one(
                "SELECT count(*) FROM snapshots WHERE encoding = 2",
                params![],
                |r| r.get::<i64>(0),
            )
            .unwrap();
        assert_eq!(lz4, 0);
        // A daemon's first look finds nothing and then starts past the newest.
        assert_eq!(s.compact_snapshots(0, None).unwrap(), (0, third));
        // A deadline already past re-encodes nothing.
        add(&s);
        let past = Some(std::time::Instant::now());
        assert_eq!(s.compact_snapshots(third, past).unwrap(), (0, third));
    }

    #[test]
    fn content_round_trips_compressed() {
        let big = "line of text\n".repeat(1000);
        let (enc, blob) = encode_content(&big);
        assert_eq!(enc, crate::codec::encoding::LZ4);
        assert!(blob.len() < big.len() / 10);
        assert_eq!(decode_content(enc, &blob).unwrap(), big);
    }
}
