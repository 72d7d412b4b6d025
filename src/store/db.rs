//! One interface over the two engines the store runs on: SQLite (embedded, the default) and
//! PostgreSQL (shared by several workers).
//!
//! The store's SQL is written once, in the dialect both understand, with SQLite's `?N`
//! placeholders; for PostgreSQL a statement is translated once (`$N`, `INSERT OR IGNORE`) and
//! prepared once per connection. Values cross as five kinds (SQLite's storage classes); on
//! PostgreSQL a parameter takes the type the server inferred for it, so an integer fills an
//! `int4` or `int8` and text fills a `bytea` alike.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use super::pg::Pg;

/// A parameter, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What can be bound to a placeholder.
pub trait ToParam {
    fn param(&self) -> Param<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn param(&self) -> Param<'_> {
                Param::Int(*self as i64)
            }
        }
    )*};
}
int_param!(i64, i32, u32, u16, u8, usize, u64);

impl ToParam for bool {
    fn param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl ToParam for f64 {
    fn param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for str {
    fn param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for String {
    fn param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for [u8] {
    fn param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn param(&self) -> Param<'_> {
        (**self).param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Null, ToParam::param)
    }
}

impl ToParam for Value {
    fn param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Real(f) => Param::Real(*f),
            Value::Text(s) => Param::Text(s),
            Value::Blob(b) => Param::Blob(b),
        }
    }
}

impl ToParam for crate::event::EventKind {
    fn param(&self) -> Param<'_> {
        Param::Text(self.as_str())
    }
}

/// The parameters of a statement: `params![a, b, c]`.
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::db::ToParam] };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToParam),+] as &[&dyn $crate::store::db::ToParam]
    };
}
pub(crate) use params;

/// A value read back, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// One row of a result.
#[derive(Debug)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `i` as a `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self.0.get(i).ok_or(DbError::Column(i))?;
        T::from_value(v).ok_or_else(|| DbError::Type {
            column: i,
            want: std::any::type_name::<T>(),
            got: v.kind(),
        })
    }

    pub fn value(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    /// Column `i`'s bytes, text or blob, borrowed: `None` when NULL.
    pub fn bytes(&self, i: usize) -> Result<Option<&[u8]>, DbError> {
        match self.0.get(i).ok_or(DbError::Column(i))? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.as_bytes())),
            Value::Blob(b) => Ok(Some(b)),
            v => Err(DbError::Type {
                column: i,
                want: "text or a blob",
                got: v.kind(),
            }),
        }
    }
}

/// What a column converts to.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_value!(i64, i32, u32, u16, u8, u64, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            Value::Blob(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl FromValue for crate::event::EventKind {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => crate::event::EventKind::from_name(s),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Postgres(postgres::Error),
    #[error("{} in the statement `{sql}`", pg_message(.error))]
    Prepare { sql: String, error: postgres::Error },
    #[error("column {column} holds {got}, not {want}")]
    Type {
        column: usize,
        want: &'static str,
        got: &'static str,
    },
    #[error("no column {0} in the result")]
    Column(usize),
    #[error("stored data cannot be read: {0}")]
    Decode(String),
    #[error("the query returned no row")]
    NoRow,
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

/// A PostgreSQL error with the server's own message and code when it sent one.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}: {})", db.message(), db.severity(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl DbError {
    /// The connection to the server went away (PostgreSQL): reconnecting may help.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            DbError::Postgres(e) => super::pg::is_connection_lost(e),
            _ => false,
        }
    }
}

/// Which engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// How a transaction starts (SQLite: `IMMEDIATE` takes the write lock up front).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Deferred,
    Immediate,
}

/// A connection to either engine.
pub struct Db {
    inner: Inner,
    /// Inside a transaction: a lost connection is not retried statement by statement.
    in_tx: Cell<bool>,
    /// PostgreSQL, once migrated: each write transaction commits a token with it.
    markers: Cell<bool>,
}

/// How one try of a transaction ended.
enum Attempt<T, E> {
    Done(Result<T, E>),
    /// The connection dropped as COMMIT was sent: the transaction may have made it; its token
    /// tells.
    CommitLost(T, E, String),
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<Pg>>),
}

impl Db {
    pub fn sqlite(conn: rusqlite::Connection) -> Db {
        conn.set_prepared_statement_cache_capacity(64);
        // A cached statement is never compiled again because of the values bound to it. By
        // default SQLite re-prepares one whose plan might depend on them: snapshot pruning's
        // `LIMIT 1 OFFSET ?` was parsed and planned anew for each stored snapshot (a
        // fortieth of a first pass's CPU). Nothing here benefits from the re-planning.
        let _ = conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        );
        Db {
            inner: Inner::Sqlite(conn),
            in_tx: Cell::new(false),
            markers: Cell::new(false),
        }
    }

    pub(super) fn postgres(pg: Pg) -> Db {
        Db {
            inner: Inner::Postgres(Box::new(RefCell::new(pg))),
            in_tx: Cell::new(false),
            markers: Cell::new(false),
        }
    }

    pub fn engine(&self) -> Engine {
        match self.inner {
            Inner::Sqlite(_) => Engine::Sqlite,
            Inner::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, the WAL).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToParam]) -> Result<usize, DbError> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(with_statement(c, sql, params.len(), |stmt| {
                stmt.execute(rusqlite::params_from_iter(params.iter().map(|p| p.param())))
            })?),
            Inner::Postgres(pg) => {
                let n = pg.borrow_mut().execute(sql, params, self.in_tx.get())?;
                Ok(n as usize)
            }
        }
    }

    /// Runs an `INSERT` into a table with an `id` key; returns the new row's id.
    pub fn insert(&self, sql: &str, params: &[&dyn ToParam]) -> Result<i64, DbError> {
        match &self.inner {
            Inner::Sqlite(c) => {
                self.execute(sql, params)?;
                Ok(c.last_insert_rowid())
            }
            Inner::Postgres(pg) => {
                let sql = format!("{sql} RETURNING id");
                let rows = pg.borrow_mut().query(&sql, params, self.in_tx.get())?;
                rows.first().ok_or(DbError::NoRow)?.get(0)
            }
        }
    }

    /// Every row of a query, each through `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let rows = match &self.inner {
            Inner::Sqlite(c) => sqlite_rows(c, sql, params)?,
            Inner::Postgres(pg) => pg.borrow_mut().query(sql, params, self.in_tx.get())?,
        };
        rows.iter().map(&mut f).collect()
    }

    /// The first row of a query, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut out = self.query(sql, params, |r| Ok(f.take().map(|f| f(r))))?;
        out.truncate(1);
        out.pop().flatten().transpose()
    }

    /// The first row of a query, which must have one.
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, f)?.ok_or(DbError::NoRow)
    }

    /// Runs several statements, no parameters.
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(pg) => pg.borrow_mut().batch(sql, self.in_tx.get()),
        }
    }

    /// From now on each write transaction commits a token with it (PostgreSQL, migrated).
    pub(super) fn mark_commits(&self) {
        self.markers.set(self.engine() == Engine::Postgres);
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise. On
    /// PostgreSQL a connection lost before the commit is re-established (with backoff) and
    /// `f` runs again: nothing it wrote was committed. Lost as COMMIT was sent, the
    /// transaction's token says whether it made it, and it is not run twice.
    pub fn transaction<T, E>(
        &self,
        begin: Begin,
        mut f: impl FnMut(&Db) -> Result<T, E>,
        wrap: impl Fn(DbError) -> E,
        lost: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        let mut pause = Duration::from_millis(250);
        let mut tries = 0;
        loop {
            let (e, committed) = match self.try_transaction(begin, &mut f, &wrap, &lost) {
                Attempt::Done(Err(e)) if lost(&e) && self.engine() == Engine::Postgres => (e, None),
                Attempt::Done(done) => return done,
                Attempt::CommitLost(v, e, token) => (e, Some((v, token))),
            };
            if tries >= 40 {
                return Err(e);
            }
            tries += 1;
            if let Inner::Postgres(pg) = &self.inner {
                let why = match committed {
                    Some(_) => "as COMMIT was sent; asking whether it made it",
                    None => "mid-transaction; nothing of it was committed",
                };
                pg.borrow_mut().lost(why, pause);
            }
            pause = (pause * 2).min(Duration::from_secs(15));
            if let Some((v, token)) = committed {
                match self.committed(&token) {
                    Ok(true) => return Ok(v),
                    Ok(false) => {}
                    Err(e) => return Err(wrap(e)),
                }
            }
        }
    }

    /// Whether the transaction that wrote `token` was committed.
    fn committed(&self, token: &str) -> Result<bool, DbError> {
        let n: i64 = self.query_one(
            "SELECT count(*) FROM commit_markers WHERE token = ?1",
            params![token],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    fn try_transaction<T, E>(
        &self,
        begin: Begin,
        f: &mut impl FnMut(&Db) -> Result<T, E>,
        wrap: &impl Fn(DbError) -> E,
        lost: &impl Fn(&E) -> bool,
    ) -> Attempt<T, E> {
        let start = match (self.engine(), begin) {
            (Engine::Sqlite, Begin::Immediate) => "BEGIN IMMEDIATE",
            _ => "BEGIN",
        };
        if let Err(e) = self.batch(start) {
            return Attempt::Done(Err(wrap(e)));
        }
        self.in_tx.set(true);
        let token = match self.markers.get().then(|| self.mark()).transpose() {
            Ok(t) => t,
            Err(e) => {
                self.end(false);
                return Attempt::Done(Err(wrap(e)));
            }
        };
        let result = match f(self) {
            Ok(v) => match self.batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let e = wrap(e);
                    if let (Some(token), true) = (token, lost(&e)) {
                        self.in_tx.set(false);
                        return Attempt::CommitLost(v, e, token);
                    }
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };
        self.end(result.is_ok());
        Attempt::Done(result)
    }

    /// Leaves the transaction (rolled back unless it committed).
    fn end(&self, committed: bool) {
        self.in_tx.set(false);
        if !committed {
            // Best effort: on a lost connection there is nothing to roll back.
            let _ = self.batch("ROLLBACK");
        }
    }

    /// Writes this transaction's token (and forgets those older than an hour).
    fn mark(&self) -> Result<String, DbError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let now = chrono::Utc::now();
        let token = format!(
            "{}:{}:{}:{}",
            super::outbox::host_name(),
            std::process::id(),
            now.timestamp_nanos_opt().unwrap_or_default(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let at = now.timestamp_millis();
        self.execute(
            "INSERT INTO commit_markers (token, at) VALUES (?1, ?2)",
            params![token, at],
        )?;
        self.execute(
            "DELETE FROM commit_markers WHERE at < ?1",
            params![at - 3_600_000],
        )?;
        Ok(token)
    }
}

/// Statements with more parameters than this are built for one batch's size (`IN (?, ?,
/// ...)`, many rows of `VALUES`): each size would be a statement of its own in the cache,
/// dozens of large compiled statements kept for a pass, so they are prepared and dropped.
/// Lists padded to a power of two ([`padded`]) come in a handful of sizes, and are cached.
const CACHED_PARAMS: usize = 16;

/// `f` on the statement for `sql`: from the connection's cache, unless it has many parameters.
fn with_statement<R>(
    c: &rusqlite::Connection,
    sql: &str,
    params: usize,
    f: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    if params > CACHED_PARAMS && !params.is_power_of_two() {
        f(&mut c.prepare(sql)?)
    } else {
        f(&mut *c.prepare_cached(sql)?)
    }
}

/// `list` padded to a power of two with its last item repeated, for a `WHERE x IN (...)`
/// (an item twice in the list is still one match): the statement for a padded list is one
/// of a few sizes, compiled once and cached, where one of every size was compiled again for
/// each list (a 256-name `IN` took as long to compile as to run).
pub fn padded<'a, T: ?Sized>(list: &[&'a T]) -> Vec<&'a T> {
    let mut out = list.to_vec();
    if let Some(&last) = list.last() {
        out.resize(list.len().next_power_of_two(), last);
    }
    out
}

/// A SQLite query's rows, copied out.
fn sqlite_rows(
    c: &rusqlite::Connection,
    sql: &str,
    params: &[&dyn ToParam],
) -> Result<Vec<Row>, DbError> {
    Ok(with_statement(c, sql, params.len(), |stmt| {
        rows_of(stmt, params)
    })?)
}

/// Every row of a prepared statement, copied out.
fn rows_of(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[&dyn ToParam],
) -> rusqlite::Result<Vec<Row>> {
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.param())))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            use rusqlite::types::ValueRef;
            values.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(i),
            Param::Real(f) => ValueRef::Real(f),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Statements prepared on one PostgreSQL connection, by their SQLite text.
pub(super) type Prepared = HashMap<String, postgres::Statement>;
