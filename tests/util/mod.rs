//! The test builder: a temp dir with a watchlist and a database, and the real binary.

pub mod dbus;
pub mod pg;
pub mod server;
pub mod smtp;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use server::{Page, Server};

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database the test stores in (`FOREWARN_TEST_ENGINE=postgres`).
    pub pg: Option<String>,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON Lines objects on stdout; panics on a line that is not JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    }

    /// The JSON events of one kind.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.json()
            .into_iter()
            .filter(|v| v["event"] == kind)
            .collect()
    }

    /// Panics, showing stdout, unless stdout contains `needle`.
    #[track_caller]
    pub fn says(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    /// Panics, showing stdout, if stdout contains `needle`.
    #[track_caller]
    pub fn never_says(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}

impl TestEnv {
    pub fn new() -> Self {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: pg::engine_is_postgres().then(pg::fresh_database),
        }
    }

    /// A test environment on SQLite whatever the suite's engine (for what only SQLite has:
    /// the file, its lock, its pragmas).
    pub fn sqlite() -> Self {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        }
    }

    /// A test environment storing in this PostgreSQL database.
    pub fn on_postgres(url: String) -> Self {
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            pg: Some(url),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database: the SQLite file, or the PostgreSQL URL.
    pub fn db(&self) -> PathBuf {
        match &self.pg {
            Some(url) => PathBuf::from(url),
            None => self.path().join("forewarn.db"),
        }
    }

    /// Writes `watchlists/main.toml`.
    pub fn watchlist(self, toml: &str) -> Self {
        self.file("watchlists/main.toml", toml);
        self
    }

    pub fn file(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Runs forewarn in the temp dir (so `./watchlists` is found) with the temp database.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs forewarn on a terminal (a pseudo-terminal from util-linux's `script`), as a person
    /// at a shell would; stdout and stderr arrive together in `stdout`.
    pub fn run_on_terminal(&self, args: &[&str]) -> Run {
        self.run_on_terminal_env(args, &[])
    }

    /// [`TestEnv::run_on_terminal`] with extra environment variables.
    pub fn run_on_terminal_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let line = std::iter::once(env!("CARGO_BIN_EXE_forewarn"))
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]);
        self.output(cmd, env)
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forewarn"));
        cmd.args(args);
        self.output(cmd, env)
    }

    fn output(&self, mut cmd: Command, env: &[(&str, &str)]) -> Run {
        cmd.current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("FOREWARN_DB", self.db());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run forewarn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `forewarn watch --log-format json ARGS` in the background, in the temp dir with its
    /// database, its stderr (the log) in `log`.
    pub fn spawn_watch(&self, log: &Path, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_forewarn"))
            .args(["watch", "--log-format", "json"])
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("FOREWARN_DB", self.db())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }

    /// What the database holds, as bytes: the SQLite file (and its log), or every value of
    /// every PostgreSQL table. A secret must never be found in it.
    pub fn stored_bytes(&self) -> Vec<u8> {
        if let Some(url) = &self.pg {
            return pg::dump(url);
        }
        let mut out = std::fs::read(self.db()).unwrap();
        let mut wal = self.db().into_os_string();
        wal.push("-wal");
        out.extend(std::fs::read(wal).unwrap_or_default());
        out
    }

    /// `PRAGMA integrity_check` of the SQLite file ("ok" on PostgreSQL, whose own
    /// guarantees hold).
    pub fn integrity(&self) -> String {
        if self.pg.is_some() {
            return "ok".into();
        }
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    }

    /// A query against the test database.
    pub fn query_i64(&self, sql: &str) -> i64 {
        if let Some(url) = &self.pg {
            return pg::query_i64(url, sql);
        }
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// The most common setup: `page` served at `/{name}`, and a watchlist with one watch of
/// that name on it (`extra` is added to the watch's table). Keep the server alive as long as
/// the watch is checked.
pub fn watching(name: &str, page: Page, extra: &str) -> (Server, TestEnv) {
    let srv = Server::start();
    let path = format!("/{name}");
    srv.set(&path, page);
    let env = TestEnv::new().watchlist(&one_watch(name, &srv.url(&path), extra));
    (srv, env)
}

/// A one-watch watchlist.
pub fn one_watch(name: &str, url: &str, extra: &str) -> String {
    format!("[[watch]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
}
