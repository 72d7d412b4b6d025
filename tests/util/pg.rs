//! A private PostgreSQL cluster for tests: `initdb` in a temp folder, a free port on
//! 127.0.0.1, trust authentication, stopped when dropped (the shared one when the test
//! process exits). Debian's `postgresql` package provides the programs; as root they run as
//! the `postgres` user (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

/// The folder holding `initdb` and `pg_ctl`: `FOREWARN_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FOREWARN_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs one of the cluster's programs, as `postgres` when we are root.
fn run(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args);
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Cluster {
    /// A new cluster, started.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("forewarn-pg")
            .tempdir()
            .unwrap();
        if is_root() {
            let s = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(s.success(), "chown the cluster folder to postgres");
        }
        let data = dir.path().join("data");
        let out = run(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "forewarn",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            dir,
            port: free_port(),
            bin,
        };
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server (`fast`: connections are cut, as when a database server restarts).
    pub fn pg_ctl_stop(&self, mode: &str) {
        let _ = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        );
    }

    /// The URL of database `name` (created if missing).
    pub fn database(&self, name: &str) -> String {
        let admin = format!(
            "host=127.0.0.1 port={} user=forewarn dbname=postgres",
            self.port
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
        let exists = c
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .unwrap()
            .is_some();
        if !exists {
            c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .unwrap();
        }
        format!("postgres://forewarn@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg_ctl_stop("immediate");
    }
}

/// One cluster for the whole test process, stopped when it exits.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        extern "C" fn stop() {
            if let Some(c) = CLUSTER.get() {
                c.pg_ctl_stop("immediate");
                let _ = std::fs::remove_dir_all(c.dir.path());
            }
        }
        // SAFETY: registering a plain function to run at exit.
        unsafe { libc::atexit(stop) };
        Cluster::start()
    })
}

/// A fresh database on the shared cluster, for one test.
pub fn fresh_database() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    shared().database(&format!("t{}_{n}", std::process::id()))
}

/// Whether this test run stores in PostgreSQL (`FOREWARN_TEST_ENGINE=postgres`): the whole
/// suite then runs on it, but for the tests of what only SQLite has.
pub fn engine_is_postgres() -> bool {
    std::env::var("FOREWARN_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// A scalar query on a PostgreSQL database.
pub fn query_i64(url: &str, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let row = c.query_one(sql, &[]).unwrap();
    match row.columns()[0].type_() {
        &postgres::types::Type::INT4 => i64::from(row.get::<_, i32>(0)),
        _ => row.get::<_, i64>(0),
    }
}

/// Every value stored in the database's tables, as raw bytes (text as UTF-8, `bytea` as is):
/// what a secret must never be found in.
pub fn dump(url: &str) -> Vec<u8> {
    use postgres::types::Type;
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        for row in c.query(&format!("SELECT * FROM \"{t}\""), &[]).unwrap() {
            for (i, col) in row.columns().iter().enumerate() {
                match *col.type_() {
                    Type::BYTEA => {
                        if let Some(b) = row.get::<_, Option<Vec<u8>>>(i) {
                            out.extend(b);
                        }
                    }
                    Type::TEXT => {
                        if let Some(s) = row.get::<_, Option<String>>(i) {
                            out.extend(s.into_bytes());
                        }
                    }
                    _ => {}
                }
                out.push(b'\n');
            }
        }
    }
    out
}
