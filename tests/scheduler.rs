//! Issue 5: check --due over a fake clock, politeness, retries, the lock, and the daemon
//! (reloads, SIGTERM during a check).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::util::{Page, Server, TestEnv, one_watch, watching};

fn at(env: &TestEnv, now: &str, args: &[&str]) -> crate::util::Run {
    env.run_env(args, &[("FOREWARN_NOW", now)])
}

/// A watchlist of `n` hourly watches `w0000`... of pages `/p0`... on `srv`, but those at the
/// positions `fast` run `every` instead (in UTC).
fn hourly_but(srv: &Server, n: usize, fast: &[usize], every: &str) -> String {
    let mut toml = String::from("[defaults]\ntimezone = \"UTC\"\nevery = \"1h\"\n");
    for i in 0..n {
        srv.set(&format!("/p{i}"), Page::html(&format!("<p>page {i}</p>")));
        let own = if fast.contains(&i) {
            format!("every = \"{every}\"")
        } else {
            String::new()
        };
        let url = srv.url(&format!("/p{i}"));
        toml.push_str(&one_watch(&format!("w{i:04}"), &url, &own));
    }
    toml
}

/// `check --due` reads stored schedules a group of 1,024 watches at a time: across groups it
/// still checks exactly the watches that are due, and its gate still knows the next due time.
#[test]
fn check_due_over_many_groups_checks_exactly_the_due_watches() {
    const WATCHES: usize = 1_100;
    // Every 10 minutes, in the first group of 1,024 and in the second; the rest hourly.
    const FAST: [usize; 3] = [0, 700, 1_050];
    let srv = Server::start();
    let env = TestEnv::new().watchlist(&hourly_but(&srv, WATCHES, &FAST, "10m"));
    let due = |now: &str| {
        let run = at(&env, now, &["check", "--due", "--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.events("summary")[0]["checked"].as_u64().unwrap()
    };
    assert_eq!(due("2026-11-21T10:00:00Z"), WATCHES as u64, "never checked");
    assert_eq!(due("2026-11-21T10:10:00Z"), FAST.len() as u64);
    for i in 0..WATCHES {
        let fetched = if FAST.contains(&i) { 2 } else { 1 };
        assert_eq!(srv.seen(&format!("/p{i}")).len(), fetched, "/p{i}");
    }
    assert_eq!(due("2026-11-21T10:15:00Z"), 0, "the next is due at 10:20");
    assert_eq!(due("2026-11-21T10:20:00Z"), FAST.len() as u64);
    assert_eq!(due("2026-11-21T11:00:00Z"), WATCHES as u64);
}

#[test]
fn check_due_honours_each_schedule_over_a_fake_clock() {
    let srv = Server::start();
    srv.set("/a", Page::html("<p>a</p>"));
    srv.set("/b", Page::html("<p>b</p>"));
    srv.set("/c", Page::html("<p>c</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "[defaults]\ntimezone = \"UTC\"\n{}{}{}",
        one_watch("quarter", &srv.url("/a"), "every = \"15m\""),
        one_watch("hourly", &srv.url("/b"), "schedule = \"@hourly\""),
        one_watch("default", &srv.url("/c"), ""),
    ));
    let checked = |run: &crate::util::Run| run.events("summary")[0]["checked"].as_u64().unwrap();
    let first = at(
        &env,
        "2026-11-21T10:00:05Z",
        &["check", "--due", "--format", "json"],
    );
    assert_eq!(
        checked(&first),
        3,
        "never checked: all due ({})",
        first.stdout
    );
    let early = at(
        &env,
        "2026-11-21T10:05:00Z",
        &["check", "--due", "--format", "json"],
    );
    assert_eq!(checked(&early), 0, "{}", early.stdout);
    assert_eq!(
        srv.seen("/a").len(),
        1,
        "nothing fetched when nothing is due"
    );
    let quarter = at(
        &env,
        "2026-11-21T10:15:00Z",
        &["check", "--due", "--format", "json"],
    );
    assert_eq!(checked(&quarter), 1, "{}", quarter.stdout);
    assert_eq!(srv.seen("/a").len(), 2);
    // The default schedule is every 30 minutes.
    let half = at(
        &env,
        "2026-11-21T10:30:05Z",
        &["check", "--due", "--format", "json"],
    );
    assert_eq!(checked(&half), 2, "{}", half.stdout);
    // Asleep for a day: each watch runs once, not once per missed fire time.
    let next_day = at(
        &env,
        "2026-11-22T10:00:00Z",
        &["check", "--due", "--format", "json"],
    );
    assert_eq!(checked(&next_day), 3, "{}", next_day.stdout);
    assert_eq!(srv.seen("/b").len(), 2);
    // Nothing due prints nothing in text form (cron mails nothing).
    let quiet = at(&env, "2026-11-22T10:01:00Z", &["check", "--due"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));
    // The shortcut for "nothing due" never hides an edit: a new watch is checked at once.
    srv.set("/d", Page::html("<p>d</p>"));
    let list = env.read("watchlists/main.toml");
    env.file(
        "watchlists/main.toml",
        &format!(
            "{list}{}",
            one_watch("new", &srv.url("/d"), "every = \"1h\"")
        ),
    );
    let edited = at(
        &env,
        "2026-11-22T10:01:30Z",
        &["check", "--due", "--format", "json"],
    );
    assert_eq!(checked(&edited), 1, "{}", edited.stdout);
    assert_eq!(edited.events("baseline")[0]["watch"], "new");
}

#[test]
fn invalid_schedules_are_load_errors_with_line_and_column() {
    let env = TestEnv::new().watchlist(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.com/\"\nschedule = \"*/15 * * *\"\n\n[[watch]]\nname = \"b\"\nurl = \"https://example.com/b\"\nschedule = \"@daily\"\nevery = \"5m\"\ntimezone = \"Mars/Olympus\"\n",
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("main.toml:4:12"), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid schedule `*/15 * * *`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not both"), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown time zone `Mars/Olympus`"),
        "{}",
        run.stderr
    );
}

#[test]
fn schedules_that_never_fire_flood_or_overflow_are_refused_at_load() {
    let watch = |name: &str, when: &str| {
        format!("[[watch]]\nname = \"{name}\"\nurl = \"https://example.com/{name}\"\n{when}\n\n")
    };
    let toml = [
        watch("ok", "every = \"1h\""),
        watch("feb31", "schedule = \"0 0 31 2 *\""),
        watch("flood", "every = \"1ns\""),
        watch("ages", "every = \"5000000000000d\""),
        watch("year", "every = \"400d\""),
    ]
    .concat();
    let env = TestEnv::new().watchlist(&toml);
    // Every command that schedules refuses them all at once, with their places; none panics.
    for args in [&["check", "--due"][..], &["watch"][..], &["check"][..]] {
        let run = env.run(args);
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        for needle in [
            "main.toml:9:12: schedule `0 0 31 2 *` never fires",
            "main.toml:14:9: `every` is too often: at least 1s",
            "main.toml:19:9",
            "is too long: at most 100 years",
            "main.toml:24:9: `every` is too long: at most 366d",
        ] {
            assert!(
                run.stderr.contains(needle),
                "{args:?}: {needle}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let (srv, env) = watching(
        "api",
        Page::html("<p>ok</p>").fail_first(1, 429, Some(1)),
        "",
    );
    let start = Instant::now();
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.events("baseline").len(), 1, "{}", run.stdout);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let seen = srv.seen("/api");
    assert_eq!(
        seen.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![429, 200]
    );

    // Beyond the cap it is a failure now, and the next run tries again.
    srv.set(
        "/api",
        Page::html("<p>ok</p>").fail_first(1, 429, Some(3600)),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("HTTP 429") && err.contains("Retry-After: 3600s"),
        "{err}"
    );
}

#[test]
fn a_5xx_is_retried_a_few_times_a_404_never() {
    let srv = Server::start();
    srv.set("/flaky", Page::html("<p>ok</p>").fail_first(2, 503, None));
    srv.set("/gone", Page::html("gone").status(404));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("flaky", &srv.url("/flaky"), ""),
        one_watch("gone", &srv.url("/gone"), ""),
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("baseline").len(), 1, "{}", run.stdout);
    assert_eq!(srv.seen("/flaky").len(), 3, "two retries, then success");
    assert_eq!(srv.seen("/gone").len(), 1, "a 404 is not retried");
    srv.set("/flaky", Page::html("<p>ok</p>").fail_first(9, 500, None));
    let run = env.run(&["check", "--only", "flaky", "--format", "json"]);
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("(tried 3 times)"), "{err}");
}

#[test]
fn per_host_concurrency_is_limited() {
    let srv = Server::start();
    let mut list = String::new();
    for i in 0..8 {
        let path = format!("/p{i}");
        srv.set(
            &path,
            Page::html("<p>x</p>").delay(Duration::from_millis(150)),
        );
        list.push_str(&one_watch(&format!("w{i}"), &srv.url(&path), ""));
    }
    let env = TestEnv::new().watchlist(&list);
    let run = env.run(&["check", "--per-host", "3"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(srv.max_concurrent(), 3);

    // [hosts."127.0.0.1"] overrides the default, with a minimum interval too.
    let srv = Server::start();
    let mut list = String::from("[hosts.\"127.0.0.1\"]\nconcurrency = 1\ninterval = \"100ms\"\n\n");
    for i in 0..5 {
        let path = format!("/q{i}");
        srv.set(&path, Page::html("<p>x</p>"));
        list.push_str(&one_watch(&format!("q{i}"), &srv.url(&path), ""));
    }
    let env = TestEnv::new().watchlist(&list);
    let start = Instant::now();
    let run = env.run(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(srv.max_concurrent(), 1);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "5 starts 100 ms apart"
    );
}

/// `forewarn watch` in the background, logging JSON to a file.
pub(crate) struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    pub(crate) fn start(env: &TestEnv) -> Daemon {
        let log = env.path().join("watch.log");
        let child = env.spawn_watch(&log, &[]);
        Daemon { child, log }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub(crate) fn wait_for(&self, needle: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(start.elapsed() < within, "no {needle:?} in:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub(crate) fn wait_exit(&mut self, within: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(start.elapsed() < within, "did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon reads stored schedules a group of 1,024 watches at a time and hands each pass
/// the positions of the due watches: a fast watch in each group is checked again and again,
/// the hourly rest once.
#[test]
fn watch_over_many_groups_rechecks_exactly_the_due_watches() {
    const WATCHES: usize = 1_100;
    const FAST: [usize; 2] = [3, 1_090];
    let srv = Server::start();
    let env = TestEnv::new().watchlist(&hourly_but(&srv, WATCHES, &FAST, "1s"));
    let mut d = Daemon::start(&env);
    let start = Instant::now();
    while !FAST.iter().all(|i| srv.seen(&format!("/p{i}")).len() >= 3) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the fast watches were not checked again:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in (0..WATCHES).filter(|i| !FAST.contains(i)) {
        assert_eq!(srv.seen(&format!("/p{i}")).len(), 1, "/p{i}");
    }
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
}

/// Checks store snapshots with lz4; between passes the daemon re-encodes them with zstd, as
/// `forewarn gc` does, and what it stored reads the same.
#[test]
fn watch_recompresses_snapshots_between_passes() {
    let text: String = (0..300).map(|i| format!("<p>line {i}</p>")).collect();
    let (srv, env) = watching("big", Page::html(&text), "every = \"1h\"");
    let count = |e: i64| {
        env.query_i64(&format!(
            "SELECT count(*) FROM snapshots WHERE encoding = {e}"
        ))
    };
    let mut d = Daemon::start(&env);
    let start = Instant::now();
    // The tables exist once the page is asked for.
    while srv.seen("/big").is_empty() || count(1) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the snapshot was not re-encoded (lz4: {}):\n{}",
            count(2),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(2), 0);
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
    let shown = env.run(&["show", "big"]);
    assert!(
        shown.stdout.starts_with("line 0\nline 1\n"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("line 299"), "{}", shown.stdout);
}

#[test]
fn watch_reloads_valid_edits_and_keeps_running_on_invalid_ones() {
    let srv = Server::start();
    srv.set("/a", Page::html("<p>a</p>"));
    srv.set("/b", Page::html("<p>b</p>"));
    let env = TestEnv::sqlite().watchlist(&one_watch("a", &srv.url("/a"), "every = \"1s\""));
    let mut d = Daemon::start(&env);
    d.wait_for("\"outcome\":\"baseline\"", Duration::from_secs(10));

    env.file(
        "watchlists/main.toml",
        "[[watch]]\nname = \"a\"\nurl = \"nope\"\n",
    );
    let log = d.wait_for("watchlists not reloaded", Duration::from_secs(10));
    assert!(
        !log.contains("nothing was fetched"),
        "the daemon goes on; a one-off run's ending does not belong here: {log}"
    );
    let checks_before = d.log().matches("\"watch\":\"a\"").count();
    d.wait_for("\"outcome\":\"unchanged\"", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        d.log().matches("\"watch\":\"a\"").count() > checks_before,
        "the previous configuration keeps running"
    );

    env.file(
        "watchlists/main.toml",
        &format!(
            "{}{}",
            one_watch("a", &srv.url("/a"), "every = \"1s\""),
            one_watch("b", &srv.url("/b"), "every = \"1h\"")
        ),
    );
    d.wait_for("\"watch\":\"b\"", Duration::from_secs(10));

    // SIGHUP reloads at once, too.
    d.signal("HUP");
    d.wait_for("\"trigger\":\"SIGHUP\"", Duration::from_secs(5));

    // While it runs, `check` waits briefly, then names what holds the database.
    let check = env.run(&["check"]);
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check.stderr.contains("in use by `forewarn watch` (pid"),
        "{}",
        check.stderr
    );

    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
}

#[test]
fn sigterm_during_a_check_finishes_it_and_loses_nothing() {
    let srv = Server::start();
    let mut list = String::new();
    for i in 0..6 {
        let path = format!("/s{i}");
        srv.set(&path, Page::html("<p>v1</p>"));
        list.push_str(&one_watch(
            &format!("s{i}"),
            &srv.url(&path),
            "every = \"1s\"\nconfirm_refetch = false",
        ));
    }
    let env = TestEnv::new().watchlist(&list);
    assert_eq!(env.run(&["check"]).code, 0);
    // s5 answers first: once it has (the server records a request as it answers), the
    // others are still in flight, however many run at once.
    for i in 0..6 {
        let delay = if i == 5 { 200 } else { 1500 };
        srv.set(
            &format!("/s{i}"),
            Page::html("<p>v2</p>").delay(Duration::from_millis(delay)),
        );
    }
    std::thread::sleep(Duration::from_millis(1100));
    let mut d = Daemon::start(&env);
    // Let the pass start, then stop in the middle of it.
    let start = Instant::now();
    while srv.seen("/s5").len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the pass never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(20)), 0, "{}", d.log());
    let log = d.log();
    assert!(log.contains("finishing the checks in flight"), "{log}");

    assert_eq!(env.integrity(), "ok");
    let changed = env.query_i64("SELECT count(*) FROM events WHERE kind = 'changed'");
    assert_eq!(changed, 6, "every change in flight was stored:\n{log}");
}

#[test]
fn an_unreachable_host_fails_fast_for_the_rest_of_the_pass() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut list = String::new();
    for i in 0..40 {
        list.push_str(&one_watch(
            &format!("w{i}"),
            &format!("http://127.0.0.1:{port}/p{i}"),
            "",
        ));
    }
    let env = TestEnv::new().watchlist(&list);
    let start = Instant::now();
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2);
    let errors = run.events("error");
    assert_eq!(errors.len(), 40);
    let skipped = errors
        .iter()
        .filter(|e| e["error"].as_str().unwrap().starts_with("host unreachable"))
        .count();
    assert!(skipped >= 30, "{skipped} of 40 skipped");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn heartbeat_is_pinged_after_each_pass() {
    let srv = Server::start();
    srv.set("/page", Page::html("<p>x</p>"));
    srv.set("/ping", Page::html("ok"));
    let env = TestEnv::new().watchlist(&format!(
        "heartbeat_url = \"{}\"\n\n{}",
        srv.url("/ping"),
        one_watch("page", &srv.url("/page"), "")
    ));
    env.run(&["check"]);
    env.run(&["check"]);
    assert_eq!(srv.seen("/ping").len(), 2);
    // A failing heartbeat is a warning, never a failed run.
    srv.set("/ping", Page::html("down").status(503));
    let run = env.run(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("heartbeat ping"), "{}", run.stderr);
}
