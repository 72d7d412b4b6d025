//! Opening a database and bringing its schema up to date, on either engine.
//!
//! SQLite numbers its migrations with `PRAGMA user_version`. PostgreSQL support began at
//! version 13: a new PostgreSQL database gets that schema in one step
//! (`migrations/postgres/0013_baseline.sql`), then the same numbered migrations as SQLite
//! (written in the dialect both read), its version kept in `forewarn_schema`. Concurrent
//! workers migrate one at a time (an advisory lock).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::db::{Begin, Db, DbError, params};
use super::pg::Pg;
use super::{Store, StoreError, sql_error};

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
    include_str!("migrations/0014_workers.sql"),
    include_str!("migrations/0015_commit_markers.sql"),
    include_str!("migrations/0016_identical.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// PostgreSQL's first schema: SQLite's version 13 in one step.
const PG_BASELINE: (i64, &str) = (13, include_str!("migrations/postgres/0013_baseline.sql"));

/// Any number, the same in every worker: the lock migrations take on PostgreSQL.
const MIGRATION_LOCK: i64 = 0x666f_7265_7761_726e;

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        match path.to_str().filter(|p| super::pg::is_url(p)) {
            Some(url) => Self::open_postgres(url, false),
            None => Self::open_sqlite(path),
        }
    }

    /// Opens an existing database without writing to it; `None` if there is none yet.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        if let Some(url) = path.to_str().filter(|p| super::pg::is_url(p)) {
            let store = Self::open_postgres(url, true)?;
            return store.checked_for_reading();
        }
        if !path.exists() {
            return Ok(None);
        }
        let store = match Self::open_reader(path, false) {
            // On a read-only file system SQLite cannot create the `-shm` file a WAL database
            // is read through: read it as immutable (no writer can be running there).
            Err(e) if cannot_open(&e) => Self::open_reader(path, true).map_err(|_| e)?,
            other => other?,
        };
        store.checked_for_reading()
    }

    /// A second, read-only connection to the same database (the pass's judges read old
    /// snapshots through it while the writer writes).
    pub fn reader(&self) -> Result<Option<Store>, StoreError> {
        match &self.url {
            Some(url) => Self::open_postgres(url, true)?.checked_for_reading(),
            None => Self::open_read_only(&self.path),
        }
    }

    /// A second connection that writes (a worker's heartbeat, beside its pass's writer).
    pub fn second(&self) -> Result<Store, StoreError> {
        match &self.url {
            Some(url) => Self::open_postgres(url, false),
            None => Self::open_sqlite(&self.path),
        }
    }

    /// `self` if its schema is the one this build reads; `None` if it has none yet.
    fn checked_for_reading(self) -> Result<Option<Store>, StoreError> {
        let version = self.schema_version()?;
        if version == 0 && self.has_forewarn_tables()? {
            return Err(StoreError::Unversioned {
                path: self.path.clone(),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            // Written by an older forewarn and never migrated: nothing to read that we know.
            return Ok(None);
        }
        Ok(Some(self))
    }

    fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: DbError::Decode(format!("{}: {e}", dir.display())),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let mut store = Store::new(Db::sqlite(conn), path.to_path_buf(), None);
        store.configure(false)?;
        store.migrate()?;
        Ok(store)
    }

    fn open_postgres(url: &str, read_only: bool) -> Result<Store, StoreError> {
        let pg = Pg::connect(url, read_only).map_err(|message| StoreError::Connect { message })?;
        let shown = PathBuf::from(pg.shown());
        let mut store = Store::new(Db::postgres(pg), shown, Some(url.to_string()));
        if !read_only {
            store.migrate()?;
            store.db.mark_commits();
        }
        Ok(store)
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
            source: e.into(),
        })?;
        let store = Store::new(Db::sqlite(conn), path.to_path_buf(), None);
        store.configure(true)?;
        Ok(store)
    }

    fn configure(&self, read_only: bool) -> Result<(), StoreError> {
        let conn = self.db.as_sqlite().expect("SQLite is configured");
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| self.sql(e.into()))?;
        // The first real read tells a corrupt file or a non-database from a good one.
        let objects = self
            .db
            .query_one("SELECT count(*) FROM sqlite_master", params![], |r| {
                r.get::<i64>(0)
            })
            .map_err(|e| self.classify(e))?;
        // A new database gets 16 KiB pages (set before its first table, WAL or not): a
        // snapshot is a chain of a few pages instead of a dozen, and a first pass over 10,000
        // pages made a quarter as many `pwrite` calls (39,000; 165,000 with 4 KiB pages) and a
        // seventh as many `pread`s. An existing database keeps its page size.
        if !read_only && objects == 0 {
            self.db
                .batch("PRAGMA page_size = 16384")
                .map_err(|e| self.classify(e))?;
        }
        if !read_only {
            let mode: String = self
                .db
                .query_one("PRAGMA journal_mode = WAL", params![], |r| r.get(0))
                .map_err(|e| self.classify(e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                eprintln!("forewarn: note: journal mode is {mode}, not WAL");
            }
        }
        self.db
            .batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.classify(e))?;
        Ok(())
    }

    /// The schema version applied (0: none).
    pub(super) fn schema_version(&self) -> Result<i64, StoreError> {
        let sql = match self.db.engine() {
            super::Engine::Sqlite => "PRAGMA user_version",
            super::Engine::Postgres => {
                if !self.pg_has_table("forewarn_schema")? {
                    return Ok(0);
                }
                "SELECT coalesce(max(version), 0) FROM forewarn_schema"
            }
        };
        self.db
            .query_one(sql, params![], |r| r.get(0))
            .map_err(|e| self.classify(e))
    }

    fn pg_has_table(&self, name: &str) -> Result<bool, StoreError> {
        self.db
            .query_one(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_name = ?1",
                params![name],
                |r| r.get::<i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.classify(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        match self.db.engine() {
            super::Engine::Sqlite => self.migrate_sqlite(),
            super::Engine::Postgres => {
                let path = self.path.clone();
                let db = &self.db;
                db.transaction(
                    Begin::Deferred,
                    |tx| migrate_postgres(tx, &path),
                    |e| sql_error(&path, e),
                    |e: &StoreError| matches!(e, StoreError::Unavailable { .. }),
                )
            }
        }
    }

    fn migrate_sqlite(&mut self) -> Result<(), StoreError> {
        let version = self.schema_version()?;
        self.refuse(version)?;
        let sql_err = |e: DbError| sql_error(&self.path, e);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let conn = self.db.as_sqlite().expect("SQLite");
            let tx = conn
                .unchecked_transaction()
                .map_err(|e| sql_err(e.into()))?;
            tx.execute_batch(sql).map_err(|e| sql_err(e.into()))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| sql_err(e.into()))?;
            tx.commit().map_err(|e| sql_err(e.into()))?;
        }
        Ok(())
    }

    /// A schema this build must not touch: newer, or forewarn's tables without a version.
    fn refuse(&self, version: i64) -> Result<(), StoreError> {
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
        Ok(())
    }

    /// The tables the first migration creates are there already.
    fn has_forewarn_tables(&self) -> Result<bool, StoreError> {
        let sql = match self.db.engine() {
            super::Engine::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name IN ('watches', 'snapshots', 'events')"
            }
            super::Engine::Postgres => {
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = current_schema()
                 AND table_name IN ('watches', 'snapshots', 'events')"
            }
        };
        self.db
            .query_one(sql, params![], |r| r.get::<i64>(0))
            .map(|n| n > 0)
            .map_err(|e| self.classify(e))
    }
}

/// PostgreSQL's migrations, in the caller's transaction, one worker at a time.
fn migrate_postgres(tx: &Db, path: &Path) -> Result<(), StoreError> {
    let err = |e: DbError| sql_error(path, e);
    tx.query(
        "SELECT pg_advisory_xact_lock(?1)",
        params![MIGRATION_LOCK],
        |_| Ok(()),
    )
    .map_err(err)?;
    tx.batch("CREATE TABLE IF NOT EXISTS forewarn_schema (version BIGINT NOT NULL)")
        .map_err(err)?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM forewarn_schema",
            params![],
            |r| r.get(0),
        )
        .map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let tables: i64 = tx
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()
             AND table_name IN ('watches', 'snapshots', 'events')",
            params![],
            |r| r.get(0),
        )
        .map_err(err)?;
    if version == 0 && tables > 0 {
        return Err(StoreError::Unversioned {
            path: path.to_path_buf(),
        });
    }
    let mut at = version;
    if at < PG_BASELINE.0 {
        tx.batch(PG_BASELINE.1).map_err(err)?;
        at = PG_BASELINE.0;
    }
    for sql in MIGRATIONS.iter().skip(at as usize) {
        tx.batch(sql).map_err(err)?;
    }
    if version != SCHEMA_VERSION {
        tx.execute("DELETE FROM forewarn_schema", params![])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO forewarn_schema (version) VALUES (?1)",
            params![SCHEMA_VERSION],
        )
        .map_err(err)?;
    }
    Ok(())
}

/// SQLite could not open a file it needs (on a read-only file system: the `-shm`).
fn cannot_open(e: &StoreError) -> bool {
    let source = match e {
        StoreError::Open { source, .. } | StoreError::Sql { source, .. } => source,
        _ => return false,
    };
    matches!(source, DbError::Sqlite(e)
        if e.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::CannotOpen))
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
