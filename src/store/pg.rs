//! The PostgreSQL side of [`super::db::Db`]: one connection (the `postgres` crate's
//! blocking client), its prepared statements, and reconnecting when the server goes away.
//!
//! The store is called from the pass's blocking writer thread and, briefly, from async tasks;
//! the client runs its own small runtime, so each call is made inside
//! `tokio::task::block_in_place` when it comes from a worker thread.

use std::time::{Duration, Instant};

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::db::{DbError, Param, Prepared, Row, ToParam, Value};

/// Whether the last attempt to reach the server worked (`/healthz` says 503 while not).
static REACHABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Whether the PostgreSQL server answered the last time it was asked (always on SQLite).
pub fn reachable() -> bool {
    REACHABLE.load(std::sync::atomic::Ordering::Relaxed)
}

fn set_reachable(ok: bool) {
    REACHABLE.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// How long a lost server is waited for before the call fails.
const RECONNECT_BUDGET: Duration = Duration::from_secs(300);

pub struct Pg {
    client: Option<postgres::Client>,
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    statements: Prepared,
    /// The URL as it may be shown: no password.
    shown: String,
    read_only: bool,
}

/// A `postgres://` or `postgresql://` URL.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL without its password (in the authority or as a parameter).
pub fn redact(db: &str) -> String {
    let Ok(mut url) = url::Url::parse(db) else {
        return "postgres://(unreadable URL)".to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(None);
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    url.to_string()
}

impl Pg {
    /// Connects once (a wrong address or password fails at once, with what to do).
    pub fn connect(db: &str, read_only: bool) -> Result<Pg, String> {
        let shown = redact(db);
        let mut config: postgres::Config = normalise_sslmode(db)
            .parse()
            .map_err(|e| format!("{shown} is not a PostgreSQL URL forewarn can read: {e}"))?;
        if config.get_password().is_none()
            && let Some(pw) = password_for(&config)
        {
            config.password(pw);
        }
        config.application_name("forewarn");
        config.connect_timeout(Duration::from_secs(10));
        let tls = tls()?;
        let mut pg = Pg {
            client: None,
            config,
            tls,
            statements: Prepared::new(),
            shown,
            read_only,
        };
        pg.open().map_err(|e| {
            format!(
                "cannot connect to the database {}: {e}. Check that the server runs and the URL, user and password (PGPASSWORD or ~/.pgpass) are right",
                pg.shown
            )
        })?;
        Ok(pg)
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn open(&mut self) -> Result<(), DbError> {
        let (config, tls) = (&self.config, self.tls.clone());
        let mut client = blocking(|| config.connect(tls))?;
        if self.read_only {
            blocking(|| client.batch_execute("SET default_transaction_read_only = on"))?;
        }
        self.close();
        self.client = Some(client);
        self.statements.clear();
        Ok(())
    }

    /// Lets the client go (its runtime must not be dropped on an async worker thread).
    fn close(&mut self) {
        let old = self.client.take();
        blocking(move || drop(old));
    }

    /// The connection was lost: say so, wait `pause`, and connect again (within the budget).
    pub fn lost(&mut self, why: &str, pause: Duration) {
        eprintln!(
            "forewarn: the database connection to {} was lost ({why}); reconnecting in {} ms",
            self.shown,
            pause.as_millis()
        );
        self.close();
        blocking(|| std::thread::sleep(pause));
    }

    /// The live client, reconnecting with backoff if the last one died (outside a
    /// transaction only: inside one, the caller reruns the transaction).
    fn client(&mut self, in_tx: bool) -> Result<&mut postgres::Client, DbError> {
        let dead = self.client.as_ref().is_none_or(|c| c.is_closed());
        if dead && !in_tx {
            self.reconnect()?;
        }
        match self.client.as_mut() {
            Some(c) => Ok(c),
            None => Err(DbError::Decode(format!(
                "the connection to {} is gone",
                self.shown
            ))),
        }
    }

    fn reconnect(&mut self) -> Result<(), DbError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.open() {
                Ok(()) => {
                    set_reachable(true);
                    if start.elapsed() > Duration::from_millis(10) {
                        eprintln!("forewarn: reconnected to {}", self.shown);
                    }
                    return Ok(());
                }
                Err(e) if start.elapsed() < RECONNECT_BUDGET => {
                    set_reachable(false);
                    eprintln!(
                        "forewarn: the database {} is unreachable ({e}); retrying in {} ms",
                        self.shown,
                        pause.as_millis()
                    );
                    blocking(|| std::thread::sleep(pause));
                    pause = (pause * 2).min(Duration::from_secs(15));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn statement(&mut self, sql: &str, in_tx: bool) -> Result<postgres::Statement, DbError> {
        // First the connection: a new one has none of the old one's statements.
        self.client(in_tx)?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let text = translate(sql);
        let client = self.client(in_tx)?;
        let stmt = blocking(|| client.prepare(&text)).map_err(|source| {
            if is_connection_lost(&source) {
                DbError::Postgres(source)
            } else {
                DbError::Prepare {
                    sql: text,
                    error: source,
                }
            }
        })?;
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub fn execute(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
        in_tx: bool,
    ) -> Result<u64, DbError> {
        self.retrying(in_tx, |pg| {
            let stmt = pg.statement(sql, in_tx)?;
            let values: Vec<Param<'_>> = params.iter().map(|p| p.param()).collect();
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
            let client = pg.client(in_tx)?;
            Ok(blocking(|| client.execute(&stmt, &refs))?)
        })
    }

    pub fn query(
        &mut self,
        sql: &str,
        params: &[&dyn ToParam],
        in_tx: bool,
    ) -> Result<Vec<Row>, DbError> {
        self.retrying(in_tx, |pg| {
            let stmt = pg.statement(sql, in_tx)?;
            let values: Vec<Param<'_>> = params.iter().map(|p| p.param()).collect();
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
            let client = pg.client(in_tx)?;
            let rows = blocking(|| client.query(&stmt, &refs))?;
            rows.iter()
                .map(|r| {
                    let values = (0..r.len())
                        .map(|i| r.try_get::<_, Value>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Row(values))
                })
                .collect()
        })
    }

    pub fn batch(&mut self, sql: &str, in_tx: bool) -> Result<(), DbError> {
        // `BEGIN` after a lost connection reconnects; `COMMIT` and the rest of a transaction
        // never do (the transaction is gone with the connection).
        let begins = sql.starts_with("BEGIN");
        self.retrying(in_tx && !begins, |pg| {
            let client = pg.client(in_tx && !begins)?;
            Ok(blocking(|| client.batch_execute(sql))?)
        })
    }

    /// Runs `f`; outside a transaction, a lost connection is re-established and `f` runs
    /// again (statements outside a transaction are single reads or idempotent writes).
    fn retrying<T>(
        &mut self,
        in_tx: bool,
        mut f: impl FnMut(&mut Pg) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut pause = Duration::from_millis(250);
        let start = Instant::now();
        loop {
            match f(self) {
                Err(e)
                    if !in_tx && e.is_connection_lost() && start.elapsed() < RECONNECT_BUDGET =>
                {
                    self.lost(&e.to_string(), pause);
                    pause = (pause * 2).min(Duration::from_secs(15));
                }
                other => return other,
            }
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs blocking database work: on a tokio worker thread, inside `block_in_place` (the
/// client runs a runtime of its own, which cannot be entered from another's worker).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether the error means the connection is gone (closed, reset, or the server shutting
/// down), not that the statement was wrong.
pub fn is_connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    // An I/O error under the client: the socket went away.
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// `sslmode=verify-full` and `verify-ca` as the client knows them: `require` (rustls always
/// verifies the server's certificate against the system's roots).
fn normalise_sslmode(db: &str) -> String {
    db.replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let config = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| format!("cannot set up TLS for the database connection: {e}"))?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The password for this connection: `PGPASSWORD`, else the first matching line of
/// `PGPASSFILE` or `~/.pgpass` (`host:port:database:user:password`, `*` matching anything).
fn password_for(config: &postgres::Config) -> Option<String> {
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        return Some(pw);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    let dbname = config.get_dbname().unwrap_or(&user).to_string();
    pgpass_lookup(&text, [&host, &port, &dbname, &user])
}

/// The password of the first `.pgpass` line whose four fields match.
fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let matches = fields[..4]
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f == w || (f == "localhost" && w == "127.0.0.1"));
        if matches {
            return Some(fields[4].clone());
        }
    }
    None
}

/// A `.pgpass` line's fields: `:` separates, `\` escapes `:` and `\`.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// A statement in SQLite's dialect as PostgreSQL reads it: `?N` and `?` become `$N`,
/// `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`. Quoted text is left alone.
pub fn translate(sql: &str) -> String {
    let (sql, ignore) = match sql.find("INSERT OR IGNORE INTO") {
        Some(at) => (
            format!("{}INSERT INTO{}", &sql[..at], &sql[at + 21..]),
            true,
        ),
        None => (sql.to_string(), false),
    };
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            c => out.push(c),
        }
    }
    if ignore {
        match out.rfind(" RETURNING ") {
            Some(at) => out.insert_str(at, " ON CONFLICT DO NOTHING"),
            None => out.push_str(" ON CONFLICT DO NOTHING"),
        }
    }
    out
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::FLOAT4 => (i as f32).to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(&Type::TEXT, out),
            },
            Param::Real(f) => match *ty {
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => f.to_sql(&Type::FLOAT8, out),
            },
            Param::Text(s) => match *ty {
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => s.to_sql(&Type::TEXT, out),
            },
            Param::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => std::str::from_utf8(b)?.to_sql(&Type::TEXT, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

use postgres::types::FromSql;

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(String::from_sql(&Type::TEXT, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_translate_to_postgres() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND d = '?' AND c = ?2"),
            "SELECT a FROM t WHERE b = $1 AND d = '?' AND c = $2"
        );
        assert_eq!(translate("c IN (?,?)"), "c IN ($1,$2)");
        assert_eq!(
            translate("INSERT OR IGNORE INTO t (a) VALUES (?1)"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact("postgres://ann:s3cret@db.internal:5433/fw?sslmode=require&password=x"),
            "postgres://ann@db.internal:5433/fw?sslmode=require"
        );
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:ann:no\n127.0.0.1:*:fw:ann:p\\:w\\\\d\n*:*:*:*:last\n";
        assert_eq!(
            pgpass_lookup(text, ["127.0.0.1", "5433", "fw", "ann"]).as_deref(),
            Some("p:w\\d")
        );
        assert_eq!(
            pgpass_lookup(text, ["h", "1", "d", "u"]).as_deref(),
            Some("last")
        );
    }
}
