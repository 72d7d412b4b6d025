//! Issue 8 (part): crash safety. SIGKILL at random moments during `check`, and a disk that
//! fills up during a write.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{Page, Server, TestEnv};

fn page(v: &str) -> Page {
    Page::html(&format!(
        "<html><body><main><p>{v}</p></main></body></html>"
    ))
}

fn integrity(env: &TestEnv) -> String {
    env.integrity()
}

/// A small deterministic generator: the kills land at varied moments, reproducibly.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_notifies_nothing_twice() {
    const WATCHES: usize = 40;
    let srv = Server::start();
    let hook = Server::start();
    // A slow receiver widens the window between detection and delivery.
    hook.set("/hook", Page::html("ok").delay(Duration::from_millis(30)));
    let mut version = [0u32; WATCHES];
    for (i, v) in version.iter().enumerate() {
        srv.set(&format!("/p{i}"), page(&format!("w{i} v{v}")));
    }
    let mut toml = format!(
        "[defaults]\nnotify = [\"hook\"]\nconfirm_refetch = false\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n",
        hook.url("/hook")
    );
    for i in 0..WATCHES {
        toml.push_str(&format!(
            "[[watch]]\nname = \"w{i:02}\"\nurl = \"{}\"\n",
            srv.url(&format!("/p{i}"))
        ));
    }
    let env = TestEnv::sqlite().watchlist(&toml);
    assert_eq!(env.run(&["check"]).code, 0);
    let mut rng = Lcg(0x5eed);
    for round in 0..25 {
        // Some pages change every round.
        for _ in 0..8 {
            let i = rng.next(WATCHES as u64) as usize;
            version[i] += 1;
            srv.set(&format!("/p{i}"), page(&format!("w{i} v{}", version[i])));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_forewarn"))
            .arg("check")
            .current_dir(env.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", env.path())
            .env("FOREWARN_DB", env.db())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next(400)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_eq!(integrity(&env), "ok", "after the kill in round {round}");
    }
    // Two clean runs: the first finds what the killed runs missed and delivers what they
    // left queued; the second finds nothing new.
    let run = env.run(&["check"]);
    assert!(run.code == 0, "{run:?}");
    let run = env.run(&["check"]);
    assert_eq!(run.stdout, "", "nothing left to find");

    let c = rusqlite::Connection::open(env.db()).unwrap();
    // Nothing lost: each watch's newest snapshot is the page as it is now.
    for (i, v) in version.iter().enumerate() {
        let content: Vec<u8> = c
            .query_row(
                "SELECT s.content FROM snapshots s JOIN watches w ON w.last_snapshot_id = s.id
                 WHERE w.name = ?1",
                [format!("w{i:02}")],
                |r| r.get(0),
            )
            .unwrap();
        let text = String::from_utf8_lossy(&content).into_owned();
        assert!(text.contains(&format!("w{i} v{v}")), "w{i:02}: {text}");
    }
    // Every change event stored was delivered; nothing is still queued or given up.
    let changed: HashSet<i64> = c
        .prepare("SELECT id FROM events WHERE kind = 'changed'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        changed.len() >= 8,
        "the test made changes: {}",
        changed.len()
    );
    let undelivered: i64 = c
        .query_row(
            "SELECT count(*) FROM outbox WHERE state != 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(undelivered, 0);
    // Each stored change reached the receiver, under one delivery id. (A kill between the
    // receiver's answer and forewarn's record resends the same delivery id, which receivers
    // de-duplicate on; a second, different delivery of the same event would be a bug.)
    let mut deliveries: HashMap<i64, HashSet<String>> = HashMap::new();
    for post in hook.seen("/hook") {
        let id = post.headers["x-forewarn-delivery"].clone();
        for e in post.json()["events"].as_array().unwrap() {
            deliveries
                .entry(e["id"].as_i64().unwrap())
                .or_default()
                .insert(id.clone());
        }
    }
    for id in &changed {
        let ids = deliveries
            .get(id)
            .unwrap_or_else(|| panic!("change event {id} never reached the receiver"));
        assert_eq!(
            ids.len(),
            1,
            "event {id} sent as different deliveries: {ids:?}"
        );
    }
    assert!(
        deliveries.keys().all(|id| changed.contains(id)),
        "only stored events are sent"
    );
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the full-disk test mounts a small tmpfs: it needs root (CI runs as root)"
        );
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_during_a_write_is_a_clear_error_and_the_database_survives() {
    let disk = SmallDisk::mount("2m");
    let srv = Server::start();
    srv.set("/p0", page("small v1"));
    let env = TestEnv::new().watchlist(
        "[[watch]]\nname = \"big\"\nurl = \"URL\"\nconfirm_refetch = false\nmasks = false\n"
            .replace("URL", &srv.url("/p0"))
            .as_str(),
    );
    let db = disk.dir.path().join("forewarn.db");
    let db_s = db.to_str().unwrap();
    let run = env.run_env(&["check"], &[("FOREWARN_DB", db_s)]);
    assert_eq!(run.code, 0, "{run:?}");
    // Fill the disk, then make the page large and incompressible.
    let filler = disk.dir.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=100"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let noise: String = (0..60_000u64)
        .map(|i| format!("{:x}", i.wrapping_mul(2654435761) % 0xfffff))
        .collect::<Vec<_>>()
        .join(" ");
    srv.set("/p0", page(&format!("big v2 {noise}")));
    let run = env.run_env(&["check"], &[("FOREWARN_DB", db_s)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("disk") && run.stderr.contains("full"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(db_s),
        "names the database: {}",
        run.stderr
    );
    // Only what is true: the failed write was not stored (no claim about the rest of the
    // run, part of which a larger pass would have committed).
    assert!(
        run.stderr.contains("what was being written was not"),
        "says what was stored: {}",
        run.stderr
    );
    // Space again: the database is intact, the old snapshot is there, the change is found.
    std::fs::remove_file(&filler).unwrap();
    let c = rusqlite::Connection::open(&db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(c);
    let run = env.run_env(&["check", "--format", "json"], &[("FOREWARN_DB", db_s)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
}

/// Another program holds the write lock longer than SQLite's busy timeout (5 s): the pass
/// waits it out and stores everything, instead of ending with "locked".
#[test]
fn a_database_held_busy_past_the_busy_timeout_is_waited_out() {
    let srv = Server::start();
    srv.set("/p0", page("v1"));
    let env = TestEnv::sqlite().watchlist(
        &"[[watch]]\nname = \"p\"\nurl = \"URL\"\nconfirm_refetch = false\n"
            .replace("URL", &srv.url("/p0")),
    );
    assert_eq!(env.run(&["check"]).code, 0);
    srv.set("/p0", page("v2"));
    let db = env.db();
    let (held_tx, held) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(7));
        c.execute_batch("COMMIT").unwrap();
    });
    held.recv().unwrap();
    let run = env.run(&["check", "--format", "json"]);
    holder.join().unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
    assert_eq!(integrity(&env), "ok");
}

/// A populated database whose schema version was reset by another tool is refused in words,
/// not with the migration's SQL, and left as it was.
#[test]
fn a_database_without_its_schema_version_is_refused_plainly() {
    let srv = Server::start();
    srv.set("/p0", page("v1"));
    let env = TestEnv::sqlite()
        .watchlist(&"[[watch]]\nname = \"p\"\nurl = \"URL\"\n".replace("URL", &srv.url("/p0")));
    assert_eq!(env.run(&["check"]).code, 0);
    let c = rusqlite::Connection::open(env.db()).unwrap();
    c.execute_batch("PRAGMA user_version = 0").unwrap();
    drop(c);
    for args in [&["check"][..], &["list"], &["report"]] {
        let run = env.run(args);
        assert_ne!(run.code, 0, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("no schema version"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("CREATE TABLE"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(
        env.query_i64("SELECT count(*) FROM snapshots"),
        1,
        "nothing was touched"
    );
}

/// `list` and `report` read a database on a read-only file system (SQLite cannot create the
/// `-shm` file there), instead of "unable to open database file".
#[test]
fn list_and_report_read_a_database_on_a_read_only_file_system() {
    let disk = SmallDisk::mount("8m");
    let srv = Server::start();
    srv.set("/p0", page("v1"));
    let env = TestEnv::new().watchlist(
        &"[[watch]]\nname = \"p\"\nurl = \"URL\"\nconfirm_refetch = false\n"
            .replace("URL", &srv.url("/p0")),
    );
    let db = disk.dir.path().join("forewarn.db");
    let db_s = db.to_str().unwrap();
    env.run_env(&["check"], &[("FOREWARN_DB", db_s)]);
    srv.set("/p0", page("v2"));
    env.run_env(&["check"], &[("FOREWARN_DB", db_s)]);
    let ro = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(disk.dir.path())
        .status()
        .unwrap();
    assert!(ro.success());
    let list = env.run_env(&["list"], &[("FOREWARN_DB", db_s)]);
    assert_eq!(list.code, 0, "{list:?}");
    list.says("p ");
    let report = env.run_env(&["report"], &[("FOREWARN_DB", db_s)]);
    assert_eq!(report.code, 0, "{report:?}");
    report.says("+v2");
}

/// Thousands of changes in one pass, many batches, again and again: every pass stores every
/// change and ends well (a busy moment between the pass's own connections once ended one).
#[test]
fn large_changed_passes_store_every_change_every_time() {
    const N: usize = 2000;
    let srv = Server::start();
    for i in 0..N {
        srv.set(&format!("/p{i}"), page(&format!("page {i} v0")));
    }
    let toml: String = (0..N)
        .map(|i| {
            format!(
                "[[watch]]\nname = \"w{i}\"\nurl = \"{}\"\nconfirm_refetch = false\nkeep = 1\n",
                srv.url(&format!("/p{i}"))
            )
        })
        .collect();
    let env = TestEnv::new().watchlist(&toml);
    let args = [
        "check",
        "--format",
        "json",
        "--per-host",
        "32",
        "--concurrency",
        "64",
    ];
    assert_eq!(env.run(&args).code, 0);
    for round in 1..=4 {
        for i in 0..N {
            srv.set(&format!("/p{i}"), page(&format!("page {i} v{round}")));
        }
        let run = env.run(&args);
        assert_eq!(run.code, 0, "round {round}: {}", run.stderr);
        assert_eq!(run.events("changed").len(), N, "round {round}");
        assert_eq!(run.events("summary")[0]["changed"], N, "round {round}");
    }
    assert_eq!(integrity(&env), "ok");
    assert_eq!(
        env.query_i64("SELECT count(*) FROM events WHERE kind = 'changed'"),
        4 * N as i64
    );
}

/// The write-ahead log is copied back during a pass: a first pass over many pages does not
/// hold a log many times the database (it grew to 18 times, 3.46 MB for 192 KB).
#[test]
fn the_write_ahead_log_stays_small_during_a_pass() {
    const N: usize = 400;
    let srv = Server::start();
    let toml: String = (0..N)
        .map(|i| {
            let lines: String = (0..40)
                .map(|j| {
                    format!(
                        "<p>page {i} line {j} {:x}</p>",
                        (i * 7919 + j * 104729) * 2654435761
                    )
                })
                .collect();
            srv.set(&format!("/p{i}"), page(&lines));
            format!(
                "[[watch]]\nname = \"w{i}\"\nurl = \"{}\"\n",
                srv.url(&format!("/p{i}"))
            )
        })
        .collect();
    let env = TestEnv::sqlite().watchlist(&toml);
    let (db, wal) = (env.db(), env.path().join("forewarn.db-wal"));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut worst = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
                let (w, d) = (size(&wal), size(&db));
                if w > worst.0 {
                    worst = (w, d);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            worst
        })
    };
    let run = env.run(&["check", "--per-host", "16"]);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (wal_peak, db_then) = watcher.join().unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    let db_size = std::fs::metadata(env.db()).unwrap().len();
    assert!(
        wal_peak <= db_size.max(1 << 20) + (1 << 20),
        "log peaked at {wal_peak} bytes (database {db_then} then, {db_size} after)"
    );
}
