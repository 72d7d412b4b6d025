//! Issue 2: the core pipeline, end to end through the real binary.

use std::time::Duration;

use crate::util::{Page, Server, TestEnv, one_watch, watching};

const PAGE_V1: &str = r#"<!doctype html><html><head><title>Inbox</title></head><body>
<nav><a href="/settings">Settings</a></nav>
<div id="toolbar"><button class="send">Send</button> <a href="/help">Help</a></div>
<main><p>Welcome back</p><p>Updated 3 minutes ago</p></main>
</body></html>"#;

/// Quiet under cron or a pipe, but a person at a terminal is told what the first check stored,
/// and that a later one found nothing.
#[test]
fn first_check_on_a_terminal_says_what_it_stored() {
    let srv = Server::start();
    srv.set("/a", Page::html("<p>A</p>"));
    srv.set("/b", Page::html("<p>B</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}\n{}",
        one_watch("a", &srv.url("/a"), ""),
        one_watch("b", &srv.url("/b"), "")
    ));
    let first = env.run_on_terminal(&["check"]);
    assert_eq!(first.code, 0, "{first:?}");
    first.says("forewarn: 0 changed, 0 failed, 2 checked in ");
    first.says("; 2 baselines stored");
    let again = env.run_on_terminal(&["check"]);
    again.says("forewarn: 0 changed, 0 failed, 2 checked in ");
    again.never_says("baseline");
    assert_eq!(env.run(&["check"]).stdout, "", "a pipe still gets silence");
    let json = env.run(&["check", "--format", "json"]);
    assert_eq!(json.events("summary")[0]["baselines"], 0);
}

#[test]
fn baseline_then_unchanged_uses_if_none_match() {
    let (srv, env) = watching("inbox", Page::html(PAGE_V1).etag("\"v1\""), "");

    let first = env.run(&["check"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.stdout, "", "a baseline is stored quietly");

    let second = env.run(&["check", "--format", "json"]);
    assert_eq!(second.code, 0, "{second:?}");
    let summary = &second.events("summary")[0];
    assert_eq!(summary["not_modified"], 1);
    assert_eq!(summary["changed"], 0);

    let seen = srv.seen("/inbox");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers.get("if-none-match"), None);
    assert_eq!(
        seen[1].headers.get("if-none-match").map(String::as_str),
        Some("\"v1\"")
    );
    assert_eq!(seen[1].status, 304);
    assert!(
        seen[0].headers["user-agent"].starts_with("forewarn/"),
        "{:?}",
        seen[0].headers
    );

    let third = env.run(&["check"]);
    assert_eq!((third.code, third.stdout.as_str()), (0, ""));
}

#[test]
fn last_modified_is_sent_verbatim() {
    let srv = Server::start();
    let lm = "Tue, 03 Nov 2026 10:00:00 GMT";
    srv.set("/doc", Page::html(PAGE_V1).last_modified(lm));
    let env = TestEnv::new().watchlist(&one_watch("doc", &srv.url("/doc"), ""));
    env.run(&["check"]);
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("summary")[0]["not_modified"], 1, "{run:?}");
    let seen = srv.seen("/doc");
    assert_eq!(
        seen[1].headers.get("if-modified-since").map(String::as_str),
        Some(lm)
    );
}

#[test]
fn change_inside_select_is_reported_with_its_diff() {
    let (srv, env) = watching(
        "inbox",
        Page::html(PAGE_V1).etag("\"v1\""),
        "select = \"#toolbar\"",
    );
    env.run(&["check"]);
    srv.set(
        "/inbox",
        Page::html(&PAGE_V1.replace("class=\"send\">Send", "class=\"send\">Send now"))
            .etag("\"v2\""),
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("CHANGED inbox"),
        "summary line: {}",
        run.stdout
    );
    run.says("+1 -1 line in #toolbar");
    run.says("-Send [Help](/help)");
    run.says("+Send now [Help](/help)");
    // Reported once: the next pass is quiet again.
    let again = env.run(&["check"]);
    assert_eq!(again.stdout, "");
}

#[test]
fn change_outside_select_is_not_reported() {
    let (srv, env) = watching("inbox", Page::html(PAGE_V1), "select = \"#toolbar\"");
    env.run(&["check"]);
    srv.set(
        "/inbox",
        Page::html(&PAGE_V1.replace("Welcome back", "Welcome, friend")),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    assert_eq!(run.events("summary")[0]["changed"], 0);
}

#[test]
fn rotated_etag_with_identical_content_is_not_a_change() {
    let (srv, env) = watching("p", Page::html(PAGE_V1).etag("\"a\""), "");
    env.run(&["check"]);
    srv.set("/p", Page::html(PAGE_V1).etag("\"b\""));
    let run = env.run(&["check"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    // The new validator is stored: the next check is a 304.
    env.run(&["check"]);
    assert_eq!(srv.seen("/p").last().unwrap().status, 304);
}

#[test]
fn failure_then_recovery_keeps_the_last_good_snapshot() {
    let (srv, env) = watching("api", Page::html(PAGE_V1), "");
    env.run(&["check"]);
    srv.set("/api", Page::html("<h1>oops</h1>").status(500));
    for n in 1..=2 {
        let run = env.run(&["check", "--format", "json"]);
        assert_eq!(run.code, 2, "{run:?}");
        let err = &run.events("error")[0];
        assert_eq!(err["consecutive_failures"], n);
        assert!(err["error"].as_str().unwrap().contains("HTTP 500"), "{err}");
        assert_eq!(err["watch"], "api");
    }
    let text = env.run(&["check"]);
    text.says("FAILED api");
    text.says("3 failures in a row");
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), 1);

    srv.set("/api", Page::html(PAGE_V1));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    assert_eq!(run.events("recovered").len(), 1, "{}", run.stdout);
    let list = env.run(&["list"]);
    list.says(" ok ");
}

#[test]
fn missing_selector_is_its_own_event_reported_once() {
    let (srv, env) = watching("app", Page::html(PAGE_V1), "select = \"#toolbar\"");
    env.run(&["check"]);
    srv.set("/app", Page::html(&PAGE_V1.replace("toolbar", "actions")));
    let run = env.run(&["check", "--format", "json"]);
    let missing = run.events("selector_missing");
    assert_eq!(missing.len(), 1, "{}", run.stdout);
    assert_eq!(missing[0]["selector"], "#toolbar");
    assert!(
        missing[0]["summary"]
            .as_str()
            .unwrap()
            .contains("matched nothing: the page may have been redesigned")
    );
    assert_eq!(run.events("changed").len(), 0);
    // The summary counts it as a change, and so does `--fail-on-change`, like a broken
    // contract: both say the integration broke.
    assert_eq!(run.events("summary")[0]["changed"], 1, "{}", run.stdout);
    // Never an empty snapshot; not reported again while it stays missing.
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), 1);
    let again = env.run(&["check", "--fail-on-change"]);
    assert_eq!(again.stdout, "", "{again:?}");
    assert_eq!(again.code, 0, "not news the second time: {again:?}");
    let list = env.run(&["list"]);
    list.says("selector #toolbar missing");
    // When it comes back unchanged, that is said once, and it is not a change.
    srv.set("/app", Page::html(PAGE_V1));
    let back = env.run(&["check", "--format", "json"]);
    assert_eq!(back.events("selector_restored").len(), 1, "{}", back.stdout);
    assert_eq!(back.events("changed").len(), 0);
}

#[test]
fn timeout_is_a_clear_failure() {
    let srv = Server::start();
    srv.set("/slow", Page::html(PAGE_V1).delay(Duration::from_secs(3)));
    srv.set("/fast", Page::html(PAGE_V1));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("slow", &srv.url("/slow"), "timeout = \"1s\""),
        one_watch("fast", &srv.url("/fast"), "")
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let err = &run.events("error")[0];
    assert_eq!(err["watch"], "slow");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{err}"
    );
    // The rest of the run went on.
    assert_eq!(run.events("baseline").len(), 1);
    assert_eq!(run.events("baseline")[0]["watch"], "fast");
}

#[test]
fn body_over_the_cap_is_refused() {
    let srv = Server::start();
    let big = format!("<html><body>{}</body></html>", "<p>x</p>".repeat(20_000));
    srv.set("/big", Page::html(&big));
    let env = TestEnv::new().watchlist(&one_watch("big", &srv.url("/big"), "max_size = \"64KiB\""));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("larger than the 64 KiB cap"), "{err}");
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), 0);
}

#[test]
fn json_lines_have_the_documented_shape() {
    let srv = Server::start();
    srv.set("/a", Page::html(PAGE_V1));
    srv.set(
        "/b.json",
        Page::html(r#"{"version": 1, "items": [1, 2]}"#).with_type("application/json"),
    );
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("a", &srv.url("/a"), ""),
        one_watch("b", &srv.url("/b.json"), "")
    ));
    let run = env.run(&["check", "--format", "json"]);
    let lines = run.json();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for l in &lines[..2] {
        assert_eq!(l["event"], "baseline");
        for key in ["watch", "url", "at"] {
            assert!(l[key].is_string(), "{key} in {l}");
        }
        let at = l["at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "summary");
    for key in [
        "checked",
        "changed",
        "failed",
        "not_modified",
        "duration_ms",
    ] {
        assert!(last[key].is_u64(), "{key} in {last}");
    }
    assert_eq!(last["checked"], 2);

    // Key order in JSON is not a change; a value is, with a readable diff.
    srv.set(
        "/b.json",
        Page::html(r#"{"items": [1, 2], "version": 1}"#).with_type("application/json"),
    );
    assert_eq!(
        env.run(&["check", "--format", "json"])
            .events("changed")
            .len(),
        0
    );
    srv.set(
        "/b.json",
        Page::html(r#"{"items": [1, 2], "version": 2}"#).with_type("application/json"),
    );
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    let diff = changed[0]["diff"].as_str().unwrap();
    assert!(diff.contains("-  \"version\": 1"), "{diff}");
    assert!(diff.contains("+  \"version\": 2"), "{diff}");
}

/// `check`'s hint promises that `test` shows what the server sends: for a failing watch,
/// the status line, the headers and the start of the body.
#[test]
fn test_on_a_failing_watch_shows_the_response() {
    let body = "<h1>Gone</h1>\n<p>The inbox API moved to /v2/inbox.</p>\n";
    let (_srv, env) = watching(
        "gone",
        Page::html(body)
            .status(404)
            .header("X-Vendor-Notice", "moved to v2"),
        "retries = 0",
    );
    let run = env.run(&["test", "gone"]);
    assert_eq!(run.code, 2, "{run:?}");
    run.says("the server sent:\n  HTTP/1.1 404 Not Found\n");
    run.says("  x-vendor-notice: moved to v2\n");
    run.says("  | <p>The inbox API moved to /v2/inbox.</p>\n");
    run.says("FAILED: HTTP 404");
    // Nothing answers at all: no response to show, only the error.
    let env = TestEnv::new().watchlist(&one_watch("down", "http://127.0.0.1:9/", "retries = 0"));
    let run = env.run(&["test", "down"]);
    run.never_says("the server sent");
    run.says("FAILED: could not connect");
}

#[test]
fn test_command_writes_nothing() {
    let (srv, env) = watching(
        "inbox",
        Page::html(PAGE_V1).etag("\"1\""),
        "select = \"#toolbar\"",
    );
    // Before any check: no database is created.
    let run = env.run(&["test", "inbox"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.says("Send [Help](/help)");
    run.says("no stored snapshot yet");
    assert!(!env.db().exists());

    env.run(&["check"]);
    let events = env.query_i64("SELECT count(*) FROM events");
    let checked = env.query_i64("SELECT last_check_at FROM watches");
    srv.set(
        "/inbox",
        Page::html(&PAGE_V1.replace(">Help<", ">Support<")).etag("\"2\""),
    );
    std::thread::sleep(Duration::from_millis(20));
    let run = env.run(&["test", "inbox"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.says("-Send [Help](/help)");
    run.says("+Send [Support](/help)");
    assert_eq!(env.query_i64("SELECT count(*) FROM events"), events);
    assert_eq!(env.query_i64("SELECT last_check_at FROM watches"), checked);
    // `test` fetched without validators, so the change is still news to `check`.
    let check = env.run(&["check", "--format", "json"]);
    assert_eq!(check.events("changed").len(), 1, "{}", check.stdout);
}

#[test]
fn report_reads_history() {
    let srv = Server::start();
    srv.set("/p", Page::html("<p>one</p>"));
    srv.set("/q", Page::html("<p>alpha</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("p", &srv.url("/p"), ""),
        one_watch("q", &srv.url("/q"), "")
    ));
    env.run(&["check"]);
    srv.set("/p", Page::html("<p>two</p>"));
    env.run(&["check"]);
    srv.set("/q", Page::html("<p>beta</p>"));
    env.run(&["check"]);

    let all = env.run(&["report", "--format", "json"]);
    let changed: Vec<_> = all.events("changed");
    assert_eq!(changed.len(), 2, "{}", all.stdout);
    assert_eq!(changed[0]["watch"], "p");
    assert!(changed[0]["diff"].as_str().unwrap().contains("+two"));

    let one = env.run(&["report", "q"]);
    one.says("CHANGED q");
    one.says("-alpha");
    one.never_says("CHANGED p");

    let md = env.run(&["report", "--format", "markdown"]);
    md.says("```diff");

    let none = env.run(&["report", "--since", "0s"]);
    assert!(none.stdout.starts_with("no changes"), "{}", none.stdout);

    let typo = env.run(&["report", "pp"]);
    assert_eq!(typo.code, 3);
    assert!(typo.stderr.contains("did you mean `p`?"), "{}", typo.stderr);
}

#[test]
fn only_limits_the_run_and_exit_codes() {
    let srv = Server::start();
    srv.set("/a", Page::html("<p>a</p>"));
    srv.set("/b", Page::html("<p>b</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("a", &srv.url("/a"), ""),
        one_watch("b", &srv.url("/b"), "")
    ));
    let run = env.run(&["check", "--only", "a", "--format", "json"]);
    assert_eq!(run.events("summary")[0]["checked"], 1);
    assert!(srv.seen("/b").is_empty());

    let typo = env.run(&["check", "--only", "c"]);
    assert_eq!(typo.code, 3);
    assert!(srv.seen("/b").is_empty(), "nothing fetched on exit 3");

    env.run(&["check"]);
    srv.set("/a", Page::html("<p>A</p>"));
    let run = env.run(&["check", "--fail-on-change"]);
    assert_eq!(run.code, 4, "{run:?}");
    let bad_flag = env.run(&["check", "--no-such-flag"]);
    assert_eq!(bad_flag.code, 3);
}

#[test]
fn global_flags_before_or_after_the_command() {
    let srv = Server::start();
    srv.set("/a", Page::html("<p>a</p>"));
    let env = TestEnv::new();
    env.file("elsewhere/w.toml", &one_watch("a", &srv.url("/a"), ""));
    let db = env.path().join("x.db");
    let db = db.to_str().unwrap();
    let before = env.run(&["--db", db, "check", "--watchlist", "elsewhere/w.toml"]);
    assert_eq!(before.code, 0, "{before:?}");
    let after = env.run(&[
        "check",
        "--db",
        db,
        "--watchlist",
        "elsewhere",
        "--format",
        "json",
    ]);
    assert_eq!(after.events("summary")[0]["not_modified"], 0, "{after:?}");
    assert!(env.path().join("x.db").exists());
    assert!(!env.db().exists(), "FOREWARN_DB was overridden by --db");
}

#[test]
fn secrets_never_reach_the_database_or_output() {
    let srv = Server::start();
    srv.set(
        "/private?key=k3y-s3cr3t-value",
        Page::html("<p>secret page</p>"),
    );
    let env = TestEnv::new().watchlist(&one_watch(
        "private",
        &srv.url("/private?key=${API_KEY}"),
        "headers = { Authorization = \"Bearer ${TOKEN}\" }",
    ));
    let secrets = [
        ("API_KEY", "k3y-s3cr3t-value"),
        ("TOKEN", "t0ken-s3cr3t-value"),
    ];
    let run = env.run_env(&["check", "--format", "json"], &secrets);
    assert_eq!(run.code, 0, "{run:?}");
    let seen = srv.seen("/private?key=k3y-s3cr3t-value");
    assert_eq!(
        seen[0].headers["authorization"],
        "Bearer t0ken-s3cr3t-value"
    );
    srv.set(
        "/private?key=k3y-s3cr3t-value",
        Page::html("<p>x</p>").status(500),
    );
    let fail = env.run_env(&["check", "--format", "json"], &secrets);
    let list = env.run_env(&["list"], &secrets);
    let report = env.run_env(&["report", "--all", "--format", "json"], &secrets);
    let db = env.stored_bytes();
    let wal = std::fs::read(env.path().join("forewarn.db-wal")).unwrap_or_default();
    for (_, secret) in secrets {
        for text in [
            &run.stdout,
            &fail.stdout,
            &fail.stderr,
            &list.stdout,
            &report.stdout,
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        for bytes in [&db, &wal] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in the database"
            );
        }
    }
    // A missing variable is a clear error for that watch.
    let missing = env.run(&["check", "--format", "json"]);
    assert_eq!(missing.code, 2);
    let err = missing.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("`API_KEY` is not set"), "{err}");
}

#[test]
fn emptied_selection_is_a_change_and_empty_body_a_failure() {
    let (srv, env) = watching(
        "app",
        Page::html(PAGE_V1),
        "select = \"#toolbar\"\nkeep = 2",
    );
    env.run(&["check"]);
    srv.set(
        "/app",
        Page::html(&PAGE_V1.replace(
            r#"<button class="send">Send</button> <a href="/help">Help</a>"#,
            "",
        )),
    );
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    assert!(
        changed[0]["diff"]
            .as_str()
            .unwrap()
            .contains("-Send [Help](/help)")
    );

    srv.set("/app", Page::html(""));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("empty body"), "{err}");

    // keep = 2: a third snapshot prunes the oldest.
    srv.set("/app", Page::html(PAGE_V1));
    env.run(&["check"]);
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), 2);
}

/// Results are handed on batch by batch as they are committed (a pass holds none of them):
/// across several batches every watch is still reported once, the text report still lists
/// changes in watchlist order, and the counts add up.
#[test]
fn a_pass_over_many_batches_reports_every_watch_once() {
    const WATCHES: usize = 1_100;
    let srv = Server::start();
    let page = |i: usize, v: u32| Page::html(&format!("<main><p>page {i} version {v}</p></main>"));
    let mut toml = String::from("[defaults]\nconfirm_refetch = false\n");
    for i in 0..WATCHES {
        srv.set(&format!("/p{i}"), page(i, 1));
        // Names that sort against the watchlist's order, so the order seen is the list's.
        toml.push_str(&format!(
            "[[watch]]\nname = \"w{:04}\"\nurl = \"{}\"\n",
            WATCHES - i,
            srv.url(&format!("/p{i}"))
        ));
    }
    let env = TestEnv::new().watchlist(&toml);

    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lines = first.json();
    let mut names: Vec<&str> = lines
        .iter()
        .filter(|e| e["event"] == "baseline")
        .map(|e| e["watch"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), WATCHES);
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), WATCHES, "each watch once");
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary", "the summary comes last");
    assert_eq!(summary["checked"], WATCHES);
    assert_eq!(summary["changed"], 0);

    for i in [1_050, 7, 640] {
        srv.set(&format!("/p{i}"), page(i, 2));
    }
    let run = env.run(&["check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let at = |name: &str| {
        run.stdout
            .find(&format!("CHANGED {name} "))
            .unwrap_or_else(|| panic!("{name} missing from {}", run.stdout))
    };
    let (a, b, c) = (at("w1093"), at("w0460"), at("w0050"));
    assert!(a < b && b < c, "watchlist order: {}", run.stdout);
    run.says("3 changed, 0 failed, 1100 checked");

    for i in [3, 900] {
        srv.set(&format!("/p{i}"), page(i, 3));
    }
    let run = env.run(&["check", "--format", "json"]);
    let mut changed: Vec<_> = run
        .events("changed")
        .iter()
        .map(|e| e["watch"].as_str().unwrap().to_owned())
        .collect();
    changed.sort();
    assert_eq!(changed, ["w0200", "w1097"]);
    assert_eq!(
        run.json().len(),
        3,
        "quiet checks print nothing: {}",
        run.stdout
    );
    assert_eq!(run.events("summary")[0]["changed"], 2);

    // `list` reads the states a group at a time: every watch once, in watchlist order, in
    // one table whose columns line up across groups.
    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), WATCHES + 1);
    let url_at = lines[0].find("URL").unwrap();
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(line.starts_with(&format!("w{:04} ", WATCHES - i)), "{line}");
        assert_eq!(line.find("http://"), Some(url_at), "{line}");
        assert!(line.contains(" ok "), "{line}");
    }
    let list = env.run(&["list", "--format", "json"]);
    let rows = list.json();
    assert_eq!(rows.len(), WATCHES);
    assert!(rows.iter().all(|r| r["state"] == "ok"));
    assert_eq!(rows[WATCHES - 1]["watch"], "w0001");
}

#[test]
fn a_missing_selector_fails_on_change_like_a_broken_contract() {
    let (srv, env) = watching("app", Page::html(PAGE_V1), "select = \"#toolbar\"");
    env.run(&["check"]);
    srv.set("/app", Page::html(&PAGE_V1.replace("toolbar", "actions")));
    let run = env.run(&["check", "--fail-on-change"]);
    assert_eq!(run.code, 4, "{run:?}");
    run.says("SELECTOR MISSING app").says("1 changed");
}

#[test]
fn a_304_to_a_plain_request_is_a_failure_not_silence() {
    let (srv, env) = watching("p", Page::html("").status(304), "");
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let error = run.events("error");
    assert_eq!(error.len(), 1, "{}", run.stdout);
    assert!(
        error[0]["error"]
            .as_str()
            .unwrap()
            .contains("304 Not Modified to a request without validators"),
        "{}",
        error[0]
    );
    // Once the server behaves, the watch gets its baseline.
    srv.set("/p", Page::html("<p>hello</p>"));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("baseline").len(), 1, "{}", run.stdout);
}

/// `check | head -1`: the reader goes away; the pass stores everything and exits 0.
#[test]
fn a_closed_stdout_pipe_is_no_failure() {
    let srv = Server::start();
    let toml: String = (0..20)
        .map(|i| {
            srv.set(
                &format!("/p{i}"),
                Page::html(&format!("<p>page {i} v1</p>")),
            );
            one_watch(
                &format!("w{i}"),
                &srv.url(&format!("/p{i}")),
                "confirm_refetch = false",
            )
        })
        .collect();
    let env = TestEnv::new().watchlist(&toml);
    for format in ["json", "text"] {
        for i in 0..20 {
            srv.set(
                &format!("/p{i}"),
                Page::html(&format!("<p>page {i} {format}</p>")),
            );
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forewarn"))
            .args(["check", "--format", format])
            .current_dir(env.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", env.path())
            .env("FOREWARN_DB", env.db())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again = env.run(&["check", "--format", "json"]);
        assert_eq!(
            again.events("changed").len(),
            0,
            "{format}: everything was stored"
        );
    }
}

/// A huge change is stored and printed cut, saying where the whole diff is; `forewarn diff`
/// still shows all of it from the snapshots.
#[test]
fn a_huge_diff_is_cut_and_the_whole_one_stays_reachable() {
    let lines = |v: &str| -> String { (0..5000).map(|i| format!("<p>line {i} {v}</p>")).collect() };
    let (srv, env) = watching("big", Page::html(&lines("a")), "confirm_refetch = false");
    env.run(&["check"]);
    srv.set("/big", Page::html(&lines("b")));
    let run = env.run(&["check", "--format", "json"]);
    let diff = run.events("changed")[0]["diff"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(diff.lines().count() <= 2001, "{}", diff.lines().count());
    assert!(
        diff.contains("more lines of diff: the whole diff is `forewarn diff big --from 1 --to 2`"),
        "{}",
        &diff[diff.len() - 200..]
    );
    let whole = env.run(&["diff", "big", "--from", "1", "--to", "2"]);
    assert!(
        whole.stdout.contains("+line 4999 b"),
        "the snapshots keep the whole change"
    );
    // The stored diff is compressed, and reads back whole.
    // (Both engines store it as bytes that start with zstd's magic number.)
    let stored = env.query_i64("SELECT length(diff) FROM events WHERE kind = 'changed'");
    let magic = env.query_i64(if env.pg.is_some() {
        "SELECT count(*) FROM events WHERE kind = 'changed'
         AND substring(diff from 1 for 4) = '\\x28b52ffd'::bytea"
    } else {
        "SELECT count(*) FROM events WHERE kind = 'changed' AND substr(diff, 1, 4) = X'28B52FFD'"
    });
    assert_eq!(magic, 1, "the diff is stored compressed");
    assert!(
        (stored as usize) < diff.len() / 3,
        "{stored} of {}",
        diff.len()
    );
    let report = env.run(&["report", "big", "--format", "json"]);
    assert!(
        report.stdout.contains("-line 1990 a"),
        "read back from the compressed diff"
    );
}
