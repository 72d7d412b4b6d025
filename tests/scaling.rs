//! Several workers on one PostgreSQL database (a private cluster per test): each due watch
//! fetched once per due time, the work shared, a worker killed with SIGKILL taken over, the
//! database restarted mid-pass waited out, each change notified once.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::pg::Cluster;
use crate::util::{Page, Server, TestEnv};

fn page(v: &str) -> Page {
    Page::html(&format!(
        "<html><body><main><p>{v}</p></main></body></html>"
    ))
}

/// `n` watches of `/p{i}` on `srv` under `defaults`.
fn watchlist(srv: &Server, n: usize, defaults: &str) -> String {
    let mut toml = format!("[defaults]\n{defaults}\n");
    for i in 0..n {
        srv.set(&format!("/p{i}"), page(&format!("page {i}")));
        toml.push_str(&format!(
            "[[watch]]\nname = \"w{i}\"\nurl = \"{}\"\nselect = \"main\"\n",
            srv.url(&format!("/p{i}"))
        ));
    }
    toml
}

/// `forewarn watch` as one worker, logging JSON to its own file.
struct Worker {
    child: Child,
    log: std::path::PathBuf,
}

impl Worker {
    fn start(env: &TestEnv, name: &str) -> Worker {
        Worker::start_with(env, name, &[])
    }

    fn start_with(env: &TestEnv, name: &str, args: &[&str]) -> Worker {
        let log = env.path().join(format!("{name}.log"));
        let child = env.spawn_watch(&log, args);
        Worker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the worker has opened (and migrated) the database.
    fn started(self) -> Worker {
        wait_until(Duration::from_secs(30), "the worker started", || {
            self.log().contains("forewarn watch started")
        });
        self
    }

    /// The checks this worker logged.
    fn checks(&self) -> usize {
        self.log().matches("\"message\":\"check\"").count()
    }

    fn stop(&mut self) -> i32 {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `done` holds, or fails with `what`.
fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The shortest time between two fetches of one path.
fn shortest_gap(srv: &Server, path: &str) -> Option<Duration> {
    let mut at: Vec<Instant> = srv.seen(path).iter().map(|s| s.at).collect();
    at.sort();
    at.windows(2).map(|w| w[1] - w[0]).min()
}

#[test]
fn three_workers_fetch_each_due_watch_once_share_the_work_and_notify_each_change_once() {
    const N: usize = 1500;
    let cluster = Cluster::start();
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    let mut toml = format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n",
        hook.url("/hook")
    );
    toml.push_str(&watchlist(
        &srv,
        N,
        "every = \"3s\"\ntimeout = \"2s\"\nconfirm_refetch = false\nnotify = [\"hook\"]",
    ));
    let env = TestEnv::on_postgres(cluster.database("three")).watchlist(&toml);
    let mut workers: Vec<Worker> = ["a", "b", "c"]
        .iter()
        .map(|n| Worker::start(&env, n).started())
        .collect();
    // Every watch has its baseline, then pages change while the workers run.
    wait_until(Duration::from_secs(60), "baselines", || {
        env.query_i64("SELECT count(*) FROM watches WHERE last_check_at IS NOT NULL") == N as i64
    });
    let changed: Vec<usize> = (0..N).step_by(75).collect();
    for &i in &changed {
        srv.set(&format!("/p{i}"), page(&format!("page {i}, new")));
    }
    std::thread::sleep(Duration::from_secs(8));
    for w in &mut workers {
        assert_eq!(w.stop(), 0, "{}", w.log());
    }

    // Each due time fetched once: two fetches of one page are a schedule apart.
    for i in 0..N {
        let path = format!("/p{i}");
        let seen = srv.seen(&path).len();
        assert!(seen >= 2, "{path} was fetched {seen} times");
        let gap = shortest_gap(&srv, &path).unwrap();
        assert!(
            gap >= Duration::from_millis(1500),
            "{path} fetched twice {gap:?} apart"
        );
    }
    // The work was shared.
    let checks: Vec<usize> = workers.iter().map(Worker::checks).collect();
    let total: usize = checks.iter().sum();
    for (w, n) in workers.iter().zip(&checks) {
        assert!(
            *n * 10 >= total,
            "a worker did {n} of {total}:\n{}",
            w.log()
        );
    }
    // Each change stored and notified once.
    let events = env.query_i64("SELECT count(*) FROM events WHERE kind = 'changed'");
    assert_eq!(events, changed.len() as i64);
    let mut told: HashMap<String, usize> = HashMap::new();
    for post in hook.seen("/hook") {
        for e in post.json()["events"].as_array().unwrap() {
            if e["event"] == "changed" {
                *told
                    .entry(e["watch"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(told.len(), changed.len(), "{told:?}");
    assert!(told.values().all(|&n| n == 1), "{told:?}");
    // `list` shows the workers, stopped now.
    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("WORKER HOST"), "{}", list.stdout);
    assert_eq!(
        list.stdout.matches(" stopped").count(),
        3,
        "{}",
        list.stdout
    );
}

#[test]
fn a_worker_killed_mid_pass_is_taken_over_and_nothing_is_lost() {
    const N: usize = 400;
    let cluster = Cluster::start();
    let srv = Server::start();
    let toml = watchlist(&srv, N, "every = \"1h\"\ntimeout = \"1s\"");
    for i in 0..N {
        srv.set(
            &format!("/p{i}"),
            page(&format!("page {i}")).delay(Duration::from_millis(40)),
        );
    }
    let env = TestEnv::on_postgres(cluster.database("kill")).watchlist(&toml);
    let mut a = Worker::start(&env, "a").started();
    wait_until(Duration::from_secs(30), "a started checking", || {
        a.checks() >= 40
    });
    a.kill();
    let stored_by_a = env.query_i64("SELECT count(*) FROM watches");
    assert!(stored_by_a < N as i64, "killed mid-pass");
    let mut b = Worker::start(&env, "b");
    let mut c = Worker::start(&env, "c");
    // Once a's leases end (2 x 1 s + 5 s), b and c check what a left.
    wait_until(Duration::from_secs(60), "every watch checked", || {
        env.query_i64("SELECT count(*) FROM watches WHERE last_check_at IS NOT NULL") == N as i64
    });
    assert_eq!(b.stop(), 0, "{}", b.log());
    assert_eq!(c.stop(), 0, "{}", c.log());
    let mut twice = 0;
    for i in 0..N {
        let n = srv.seen(&format!("/p{i}")).len();
        assert!((1..=2).contains(&n), "/p{i} fetched {n} times");
        twice += usize::from(n == 2);
    }
    // Only what a fetched and never stored is fetched again.
    assert!(
        twice as i64 <= N as i64 - stored_by_a,
        "{twice} fetched twice, {stored_by_a} stored by a"
    );
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), N as i64);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM leases WHERE owner IS NOT NULL"),
        0
    );
}

#[test]
fn the_database_restarting_mid_pass_is_waited_out_and_nothing_is_lost() {
    const N: usize = 300;
    let cluster = Cluster::start();
    let srv = Server::start();
    let toml = watchlist(&srv, N, "every = \"1h\"\ntimeout = \"5s\"");
    for i in 0..N {
        srv.set(
            &format!("/p{i}"),
            page(&format!("page {i}")).delay(Duration::from_millis(30)),
        );
    }
    let env = TestEnv::on_postgres(cluster.database("restart")).watchlist(&toml);
    let mut w = Worker::start_with(&env, "w", &["--metrics", "127.0.0.1:0"]).started();
    let health = healthz_of(&w);
    wait_until(Duration::from_secs(30), "checks started", || {
        w.checks() >= 30
    });
    cluster.pg_ctl_stop("fast");
    // While the database is down, the health check says so.
    wait_until(Duration::from_secs(15), "healthz says 503", || {
        health().starts_with("HTTP/1.1 503")
    });
    cluster.pg_ctl_start();
    wait_until(Duration::from_secs(90), "every watch stored", || {
        env.query_i64("SELECT count(*) FROM watches WHERE last_check_at IS NOT NULL") == N as i64
    });
    assert_eq!(w.stop(), 0, "{}", w.log());
    let log = w.log();
    assert!(log.contains("was lost"), "{log}");
    assert!(log.contains("reconnected"), "{log}");
    // Nothing half-written, nothing fetched twice: a batch cut off is written again whole.
    for i in 0..N {
        assert_eq!(srv.seen(&format!("/p{i}")).len(), 1, "/p{i}");
    }
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), N as i64);
}

/// A function that GETs the worker's `/healthz` and returns the reply.
fn healthz_of(w: &Worker) -> impl Fn() -> String + use<> {
    let log = w.log();
    let line = log.lines().find(|l| l.contains("serving metrics")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let addr = v["healthz"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches("/healthz")
        .to_string();
    move || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            return String::new();
        };
        let _ = write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply
    }
}

#[test]
fn check_due_from_several_processes_at_once_checks_each_due_watch_once() {
    const N: usize = 600;
    let cluster = Cluster::start();
    let srv = Server::start();
    let toml = watchlist(&srv, N, "every = \"1h\"");
    let env = TestEnv::on_postgres(cluster.database("cron")).watchlist(&toml);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let bin = env!("CARGO_BIN_EXE_forewarn");
            Command::new(bin)
                .args(["check", "--due"])
                .current_dir(env.path())
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", env.path())
                .env("FOREWARN_DB", env.db())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let r = r.wait_with_output().unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let fetched: HashSet<usize> = (0..N)
        .filter(|i| !srv.seen(&format!("/p{i}")).is_empty())
        .collect();
    assert_eq!(fetched.len(), N);
    for i in 0..N {
        assert_eq!(srv.seen(&format!("/p{i}")).len(), 1, "/p{i}");
    }
}

#[test]
fn a_database_password_is_never_printed_and_a_bad_address_says_what_to_do() {
    let srv = Server::start();
    let env = TestEnv::sqlite().watchlist(&watchlist(&srv, 1, ""));
    let run = env.run_env(
        &["--db", "postgres://ann:s3cret-pw@127.0.0.1:1/fw", "list"],
        &[],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot connect to the database postgres://ann@127.0.0.1:1/fw"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
}

#[test]
fn a_worker_whose_watchlist_differs_says_so() {
    let cluster = Cluster::start();
    let srv = Server::start();
    let url = cluster.database("differs");
    let one = TestEnv::on_postgres(url.clone()).watchlist(&watchlist(&srv, 2, "every = \"1h\""));
    let two = TestEnv::on_postgres(url).watchlist(&watchlist(&srv, 3, "every = \"1h\""));
    let mut a = Worker::start(&one, "a").started();
    let mut b = Worker::start(&two, "b").started();
    let log = b.log();
    assert!(log.contains("differs from that of"), "{log}");
    assert!(!a.log().contains("differs"), "{}", a.log());
    assert_eq!(b.stop(), 0);
    assert_eq!(a.stop(), 0);
    let list = one.run(&["list", "--format", "json"]);
    let workers: Vec<_> = list
        .json()
        .into_iter()
        .filter(|v| v.get("worker").is_some())
        .collect();
    assert_eq!(workers.len(), 2, "{}", list.stdout);
    assert!(
        workers.iter().all(|w| w["state"] == "stopped"),
        "{}",
        list.stdout
    );
}

#[test]
fn workers_take_their_share_of_a_hosts_limits() {
    const N: usize = 40;
    let cluster = Cluster::start();
    let srv = Server::start();
    let mut toml = "[hosts.\"127.0.0.1\"]\nconcurrency = 2\n\n".to_string();
    toml.push_str(&watchlist(&srv, N, "every = \"2s\"\ntimeout = \"5s\""));
    for i in 0..N {
        srv.set(
            &format!("/p{i}"),
            page(&format!("page {i}")).delay(Duration::from_millis(150)),
        );
    }
    let env = TestEnv::on_postgres(cluster.database("polite")).watchlist(&toml);
    let mut a = Worker::start(&env, "a").started();
    let mut b = Worker::start(&env, "b").started();
    // The first round may start before both have joined (a worker alone takes the whole
    // limit); from the next one, both know of each other.
    wait_until(Duration::from_secs(30), "the first round", || {
        env.query_i64("SELECT count(*) FROM watches WHERE last_check_at IS NOT NULL") == N as i64
    });
    std::thread::sleep(Duration::from_secs(3));
    srv.reset_max_concurrent();
    let (a0, b0) = (a.checks(), b.checks());
    // Rounds in which both workers check the host at once.
    wait_until(Duration::from_secs(40), "both workers checked", || {
        a.checks() >= a0 + N / 2 && b.checks() >= b0 + N / 2
    });
    assert_eq!(a.stop(), 0, "{}", a.log());
    assert_eq!(b.stop(), 0, "{}", b.log());
    assert!(
        srv.max_concurrent() <= 2,
        "the host saw {} requests at once; its limit is 2 across workers",
        srv.max_concurrent()
    );
}

/// A TCP proxy to the cluster that cuts the first connection that sends COMMIT after
/// inserting snapshots, once the server has had the COMMIT: the client cannot know whether
/// its transaction made it.
fn cutting_proxy(port: u16) -> u16 {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let own = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_in, mut c_out) = (server, client);
            let hold = Arc::new(AtomicBool::new(false));
            let held = hold.clone();
            let cut = cut.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut wrote_snapshots = false;
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    wrote_snapshots |= chunk.windows(21).any(|w| w == b"INSERT INTO snapshots");
                    let commit = chunk.windows(7).any(|w| w == b"COMMIT\0");
                    let cutting = commit && wrote_snapshots && !cut.swap(true, Ordering::SeqCst);
                    if cutting {
                        hold.store(true, Ordering::SeqCst);
                    }
                    if s_out.write_all(chunk).is_err() {
                        break;
                    }
                    if cutting {
                        // The server commits; the client never hears of it.
                        std::thread::sleep(Duration::from_millis(300));
                        let _ = c_in.shutdown(std::net::Shutdown::Both);
                        let _ = s_out.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = s_in.read(&mut buf) {
                    // Once the COMMIT is on its way, nothing more reaches the client.
                    if n == 0 || held.load(Ordering::SeqCst) || c_out.write_all(&buf[..n]).is_err()
                    {
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    own
}

#[test]
fn a_connection_lost_as_commit_is_sent_never_stores_a_check_twice() {
    const N: usize = 30;
    let cluster = Cluster::start();
    let srv = Server::start();
    cluster.database("cut");
    let port = cutting_proxy(cluster.port);
    let url = format!("postgres://forewarn@127.0.0.1:{port}/cut");
    let env = TestEnv::on_postgres(url).watchlist(&watchlist(&srv, N, "every = \"1h\""));
    let run = env.run(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("as COMMIT was sent"), "{}", run.stderr);
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), N as i64);
    assert_eq!(env.query_i64("SELECT count(*) FROM watches"), N as i64);
}
