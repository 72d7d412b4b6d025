//! SQLite storage: validators, hashes, snapshots and events.
//!
//! WAL mode, `synchronous = NORMAL`, numbered migrations tracked with `PRAGMA user_version`.
//! A check's snapshot, event and validators are written in one transaction; a pass writes its
//! outcomes in batched transactions from one thread that owns the connection.

mod apply;
mod escalate;
pub mod lock;
mod outbox;
mod verify;
pub use escalate::{Ack, AckTarget, OpenEscalation};
pub use verify::Inputs as VerifyInputs;

pub use crate::judge::{Snapshot, WatchState};
pub use outbox::{Delivery, OutboxStats, Queued};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::compare::Hash;
use crate::event::{Event, from_millis};
use crate::judge::Prior;

/// Migrations in order; `user_version` is the number applied. Never edit a released one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_noise_confirm.sql"),
    include_str!("migrations/0003_learned_masks.sql"),
    include_str!("migrations/0004_meta.sql"),
    include_str!("migrations/0005_contracts.sql"),
    include_str!("migrations/0006_assets.sql"),
    include_str!("migrations/0007_outbox.sql"),
    include_str!("migrations/0008_volatile.sql"),
    include_str!("migrations/0009_requests.sql"),
    include_str!("migrations/0010_screenshots.sql"),
    include_str!("migrations/0011_verifies.sql"),
    include_str!("migrations/0012_escalations.sql"),
    include_str!("migrations/0013_response_times.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub use crate::codec::{COMPRESS_FROM, encode_content};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database {path}: {source}. Check the path and its permissions, or pass --db PATH"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
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
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
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
    DiskFull {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database error in {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
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
    verify_failure";

/// A watch's last check and its consecutive failures: what deciding "due" needs.
pub type ScheduleState = (Option<DateTime<Utc>>, u32);

const SCHEDULE_COLUMNS: &str = "name, last_check_at, consecutive_failures";

/// One row of [`SCHEDULE_COLUMNS`].
fn schedule_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, ScheduleState)> {
    Ok((
        r.get::<_, String>(0)?,
        (
            r.get::<_, Option<i64>>(1)?.map(from_millis),
            r.get::<_, i64>(2)? as u32,
        ),
    ))
}

/// One row of [`STATE_COLUMNS`]: the watch's name and its state.
fn state_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, WatchState)> {
    let hash = |i: usize| -> rusqlite::Result<Option<Hash>> {
        Ok(r.get::<_, Option<Vec<u8>>>(i)?
            .and_then(|v| <Hash>::try_from(v.as_slice()).ok()))
    };
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(from_millis))
    };
    Ok((
        r.get::<_, String>(1)?,
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
            last_status: r.get::<_, Option<i64>>(12)?.map(|s| s as u16),
            last_duration_ms: r.get::<_, Option<i64>>(13)?.map(|d| d as u64),
            consecutive_failures: r.get::<_, i64>(14)? as u32,
            failing_since: time(15)?,
            last_error: r.get(16)?,
            missing_selectors: r
                .get::<_, Option<String>>(17)?
                .and_then(|s| serde_json::from_str(&s).ok()),
            missing_since: time(18)?,
            text_hash: hash(19)?,
            pending_hash: hash(20)?,
            pending_count: r.get::<_, i64>(21)? as u32,
            learned_masks: r
                .get::<_, Option<String>>(22)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            contracts: r
                .get::<_, Option<String>>(23)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            assets: r
                .get::<_, Option<String>>(24)?
                .and_then(|s| serde_json::from_str(&s).ok()),
            volatile_since: time(25)?,
            requests: r
                .get::<_, Option<String>>(26)?
                .and_then(|s| serde_json::from_str(&s).ok()),
            verify_failed: match (time(27)?, r.get::<_, Option<String>>(28)?) {
                (Some(at), Some(what)) => Some((at, what)),
                _ => None,
            },
        },
    ))
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::InvalidPath(PathBuf::from(format!(
                    "{}: {e}",
                    dir.display()
                ))),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure(false)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database without writing to it; `None` if there is none yet.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        if !path.exists() {
            return Ok(None);
        }
        let store = match Self::open_reader(path, false) {
            // On a read-only file system SQLite cannot create the `-shm` file a WAL database
            // is read through: read it as immutable (no writer can be running there).
            Err(e) if cannot_open(&e) => Self::open_reader(path, true).map_err(|_| e)?,
            other => other?,
        };
        let version = store.user_version()?;
        if version == 0 && store.has_forewarn_tables()? {
            return Err(StoreError::Unversioned {
                path: store.path.clone(),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: store.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            // Written by an older forewarn and never migrated: nothing to read that we know.
            return Ok(None);
        }
        Ok(Some(store))
    }

    /// A read-only connection, configured; `immutable` reads the file without locks or WAL.
    fn open_reader(path: &Path, immutable: bool) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = if immutable {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        } else {
            Connection::open_with_flags(path, flags)
        };
        let conn = opened.map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure(true)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self, read_only: bool) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| self.sql(e))?;
        // The first real read tells a corrupt file or a non-database from a good one.
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| self.classify(e))?;
        if !read_only {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|e| self.classify(e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing_note(&format!("journal mode is {mode}, not WAL"));
            }
        }
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    fn user_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.classify(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version = self.user_version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 && self.has_forewarn_tables()? {
            return Err(StoreError::Unversioned {
                path: self.path.clone(),
            });
        }
        let path = self.path.clone();
        let sql_err = |e: rusqlite::Error| StoreError::Sql {
            path: path.clone(),
            source: e,
        };
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(sql_err)?;
            tx.execute_batch(sql).map_err(sql_err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
        }
        Ok(())
    }

    /// The tables the first migration creates are there already.
    fn has_forewarn_tables(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name IN ('watches', 'snapshots', 'events')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.classify(e))
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source: e,
        }
    }

    fn classify(&self, e: rusqlite::Error) -> StoreError {
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
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<(String, T)>,
    ) -> Result<HashMap<String, T>, StoreError> {
        let mut out = HashMap::with_capacity(names.len());
        for part in names.chunks(500) {
            let marks = vec!["?"; part.len()].join(",");
            let mut stmt = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {columns} FROM watches WHERE name IN ({marks})"
                ))
                .map_err(|e| self.classify(e))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(part), row)
                .map_err(|e| self.classify(e))?;
            for r in rows {
                let (name, value) = r.map_err(|e| self.classify(e))?;
                out.insert(name, value);
            }
        }
        Ok(out)
    }

    /// The names of the watches that have stored snapshots.
    pub fn names_with_snapshots(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.name FROM watches w
                 WHERE EXISTS (SELECT 1 FROM snapshots s WHERE s.watch_id = w.id) ORDER BY w.name",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.classify(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.classify(e))
    }

    /// A watch's snapshots, oldest first: (id, taken at, size in bytes).
    pub fn snapshots_of(&self, watch: &str) -> Result<Vec<(i64, DateTime<Utc>, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, s.taken_at, s.size FROM snapshots s JOIN watches w ON w.id = s.watch_id
                 WHERE w.name = ?1 ORDER BY s.id",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([watch], |r| {
                Ok((r.get(0)?, from_millis(r.get(1)?), r.get(2)?))
            })
            .map_err(|e| self.classify(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.classify(e))
    }

    /// Prunes every named watch's snapshots to its `keep` / `keep_for`, then gives the space
    /// back to the file system. Returns the snapshots deleted and the bytes freed.
    pub fn gc(
        &mut self,
        retention: &[(String, u32, Option<std::time::Duration>)],
    ) -> Result<(usize, u64), StoreError> {
        let path = self.path.clone();
        let sql = |e: rusqlite::Error| StoreError::Sql {
            path: path.clone(),
            source: e,
        };
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let before = size(&self.path);
        let now = Utc::now().timestamp_millis();
        let tx = self.conn.transaction().map_err(sql)?;
        let mut deleted = 0;
        for (name, keep, keep_for) in retention {
            let id: Option<i64> = tx
                .query_row("SELECT id FROM watches WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            if let Some(id) = id {
                deleted += apply::prune(&tx, id, *keep, *keep_for, now).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
            .map_err(sql)?;
        Ok((deleted, before.saturating_sub(size(&self.path))))
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.classify(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .map_err(|e| self.classify(e))
    }

    /// The state the judge plans a check of `watch` from (none before its first check);
    /// `noise` includes the run of noise a noise verdict would extend.
    pub fn prior_of(&self, watch: &str, noise: bool) -> Result<Option<Prior>, StoreError> {
        apply::prior(&self.conn, watch, noise)
            .map(|row| row.map(|(_, prior)| prior))
            .map_err(|e| self.classify(e))
    }

    /// One snapshot by id.
    /// Drops response times older than `before` (a day is kept, for `list`).
    pub fn prune_timings(&self, before: i64) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM timings WHERE at < ?1", [before])
            .map_err(|e| self.classify(e))
    }

    /// Each watch's median and 95th percentile response time since `since`, by name:
    /// (p50 ms, p95 ms, answers counted).
    pub fn response_times(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, (u64, u64, usize)>, StoreError> {
        let mut by: HashMap<String, Vec<u64>> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.name, t.ms FROM timings t JOIN watches w ON w.id = t.watch_id
                 WHERE t.at >= ?1",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([since.timestamp_millis()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.classify(e))?;
        for row in rows {
            let (name, ms) = row.map_err(|e| self.classify(e))?;
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
        self.conn
            .query_row(
                "SELECT screenshot FROM snapshots WHERE id = ?1",
                [snapshot],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.classify(e))
    }

    pub fn snapshot(&self, id: i64) -> Result<Option<Snapshot>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, taken_at, encoding, content FROM snapshots WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.classify(e))?
            .map(|(id, at, enc, blob)| {
                Ok(Snapshot {
                    id,
                    taken_at: from_millis(at),
                    content: decode_content(enc, &blob).map_err(|e| self.sql(e))?,
                })
            })
            .transpose()
    }

    /// Stored events, oldest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from(
            "SELECT e.id, e.kind, w.name, w.url, e.at, e.summary, e.diff, e.detail
             FROM events e JOIN watches w ON w.id = e.watch_id WHERE 1=1",
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(w) = &filter.watch {
            args.push(w.clone().into());
            sql.push_str(&format!(" AND w.name = ?{}", args.len()));
        }
        if let Some(since) = filter.since {
            args.push(since.timestamp_millis().into());
            sql.push_str(&format!(" AND e.at >= ?{}", args.len()));
        }
        if !filter.kinds.is_empty() {
            let mut marks = Vec::new();
            for k in &filter.kinds {
                args.push(k.as_str().to_string().into());
                marks.push(format!("?{}", args.len()));
            }
            sql.push_str(&format!(" AND e.kind IN ({})", marks.join(",")));
        }
        sql.push_str(" ORDER BY e.at, e.id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                let detail: Option<String> = r.get(7)?;
                Ok(Event {
                    id: Some(r.get(0)?),
                    kind: r.get(1)?,
                    watch: r.get(2)?,
                    url: r.get(3)?,
                    at: from_millis(r.get(4)?),
                    summary: r.get(5)?,
                    diff: diff_of(r, 6)?,
                    detail: detail
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(|e| self.classify(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.classify(e))
    }

    /// Applies a batch of outcomes in one transaction; returns the events they produced.
    pub fn apply_batch<'a>(
        &mut self,
        outcomes: impl IntoIterator<Item = &'a crate::judge::Outcome>,
    ) -> Result<Vec<Event>, StoreError> {
        let path = self.path.clone();
        let classify = |e: rusqlite::Error| sql_error(&path, e);
        // IMMEDIATE: the write lock is taken (or waited for) up front; a deferred transaction
        // that reads first and then writes can fail at once, past the busy handler.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(classify)?;
        let mut events = Vec::new();
        for o in outcomes {
            apply::apply(&tx, o, &mut events).map_err(classify)?;
        }
        tx.commit().map_err(classify)?;
        Ok(events)
    }

    /// Copies the write-ahead log back into the database when it has grown past its share
    /// (more than 1 MiB and more than the database itself), so a pass on a small disk does
    /// not hold a log many times the database. `truncate` also shrinks the file (at the end
    /// of a pass, when no reader holds it). Best effort: a busy log is left for later.
    pub fn checkpoint(&self, truncate: bool) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let (log, db) = (size(&wal), size(&self.path));
        if !truncate && (log < 1 << 20 || log < db) {
            return;
        }
        let mode = if truncate { "TRUNCATE" } else { "PASSIVE" };
        let _ = self
            .conn
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
    }

    /// Runs `PRAGMA integrity_check`; `Ok` when it says "ok".
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.classify(e))
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// An event's diff as stored: as text, or zstd-compressed (a blob) from
/// [`COMPRESS_FROM`] bytes on: a change of a huge page stores half a megabyte of diff.
fn diff_value(diff: Option<&str>) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match diff {
        None => Value::Null,
        Some(d) => match encode_content(d) {
            (1, z) => Value::Blob(z),
            _ => Value::Text(d.to_string()),
        },
    }
}

/// An event's diff read back: text as is, a blob decompressed.
fn diff_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => decode_content(1, b).map(Some),
        v => Ok(Some(v.as_str()?.to_string())),
    }
}

fn decode_content(encoding: i64, blob: &[u8]) -> rusqlite::Result<String> {
    let bytes = match encoding {
        0 => blob.to_vec(),
        1 => crate::codec::decompress(blob).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
        })?,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Blob,
                format!("unknown snapshot encoding {other}").into(),
            ));
        }
    };
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// A SQLite error, named for what the user can do about it.
/// SQLite could not open a file it needs (on a read-only file system: the `-shm`).
fn cannot_open(e: &StoreError) -> bool {
    let source = match e {
        StoreError::Open { source, .. } | StoreError::Sql { source, .. } => source,
        _ => return false,
    };
    source.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::CannotOpen)
}

/// A path as the path of a `file:` URI: the characters a URI gives a meaning escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn sql_error(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
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

fn tracing_note(msg: &str) {
    eprintln!("forewarn: note: {msg}");
}

/// Used by `apply` to insert a snapshot row.
fn insert_snapshot(
    tx: &rusqlite::Transaction<'_>,
    watch_id: i64,
    at: i64,
    content: &str,
    stored: Option<&crate::judge::Stored>,
    hash: &Hash,
    raw_hash: Option<&Hash>,
) -> rusqlite::Result<i64> {
    let encoded;
    let (encoding, blob, size) = match stored {
        Some(s) => (s.encoding, s.bytes.as_slice(), s.size),
        None => {
            encoded = encode_content(content);
            (encoded.0, encoded.1.as_slice(), content.len())
        }
    };
    tx.prepare_cached(
        "INSERT INTO snapshots (watch_id, taken_at, content_hash, raw_hash, encoding, size, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        watch_id,
        at,
        &hash[..],
        raw_hash.map(|h| &h[..]),
        encoding,
        size as i64,
        blob
    ])?;
    Ok(tx.last_insert_rowid())
}

impl rusqlite::ToSql for crate::event::EventKind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for crate::event::EventKind {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let name = v.as_str()?;
        crate::event::EventKind::from_name(name).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown event kind `{name}`").into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_and_version_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.user_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.integrity_check().unwrap(), "ok");
        drop(s);
        // Re-opening is a no-op.
        Store::open(&path).unwrap();
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(Store::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
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
            s.conn
                .execute(
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
    fn content_round_trips_compressed() {
        let big = "line of text\n".repeat(1000);
        let (enc, blob) = encode_content(&big);
        assert_eq!(enc, 1);
        assert!(blob.len() < big.len() / 10);
        assert_eq!(decode_content(enc, &blob).unwrap(), big);
    }
}
