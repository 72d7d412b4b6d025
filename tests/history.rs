//! Issue 7 (part): history commands, retention and the timeline.

use crate::util::{Page, Server, TestEnv, one_watch, watching};

fn three_versions(extra: &str) -> (Server, TestEnv) {
    let srv = Server::start();
    let env = TestEnv::new().watchlist(&one_watch("p", &srv.url("/p"), extra));
    for (i, (v, at)) in [
        ("one", "2026-11-01T10:00:00Z"),
        ("two", "2026-11-10T10:00:00Z"),
        ("three", "2026-11-20T10:00:00Z"),
    ]
    .iter()
    .enumerate()
    {
        srv.set("/p", Page::html(&format!("<p>{v}</p><p>version {i}</p>")));
        let run = env.run_env(&["check"], &[("FOREWARN_NOW", at)]);
        assert!(run.code == 0, "{run:?}");
    }
    (srv, env)
}

#[test]
fn show_and_diff_any_two_snapshots() {
    let (_srv, env) = three_versions("confirm_refetch = false");
    let show = env.run(&["show", "p"]);
    assert_eq!(show.stdout, "three\nversion 2\n");
    let first = env.run(&["show", "p", "1"]);
    assert_eq!(first.stdout, "one\nversion 0\n");
    let last_two = env.run(&["diff", "p"]);
    last_two.says("--- p #2 2026-11-10T10:00:00Z");
    assert!(
        last_two
            .stdout
            .contains("-two\n-version 1\n+three\n+version 2"),
        "{}",
        last_two.stdout
    );
    let span = env.run(&["diff", "p", "--from", "1", "--to", "3"]);
    span.says("-one\n-version 0\n+three\n+version 2");
    let typo = env.run(&["show", "pp"]);
    assert_eq!(typo.code, 3);
    assert!(
        typo.stderr
            .contains("no snapshots of `pp`: did you mean `p`?"),
        "{}",
        typo.stderr
    );
    let bad = env.run(&["diff", "p", "--from", "99"]);
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr
            .contains("has no snapshot 99; it has 1 (2026-11-01 10:00 UTC), 2 (2026-11-10 10:00 UTC), 3 (2026-11-20 10:00 UTC)"),
        "{}",
        bad.stderr
    );
}

/// Event ids are not snapshot ids: each stored event names the snapshots it compared, in
/// `report`'s JSON and text, and those ids are what `show` and `diff` take.
#[test]
fn events_name_their_snapshots_for_show_and_diff() {
    let (_srv, env) = three_versions("confirm_refetch = false");
    let json = env.run(&["report", "--since", "3650d", "--all", "--format", "json"]);
    let baseline = &json.events("baseline")[0];
    let changed = json.events("changed");
    assert_eq!(changed.len(), 2, "{}", json.stdout);
    let last = &changed[1];
    let (from, to) = (
        last["previous_snapshot"].as_i64().unwrap(),
        last["snapshot"].as_i64().unwrap(),
    );
    assert_eq!(
        env.run(&["show", "p", &baseline["snapshot"].to_string()])
            .stdout,
        "one\nversion 0\n"
    );
    assert_eq!(
        env.run(&["show", "p", &to.to_string()]).stdout,
        "three\nversion 2\n"
    );
    let text = env.run(&["report", "--since", "3650d"]);
    text.says(&format!(
        "  snapshots #{from} -> #{to}: `forewarn diff p --from {from} --to {to}`\n"
    ));
    let d = env.run(&[
        "diff",
        "p",
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
    ]);
    d.says("+three");
}

#[test]
fn keep_for_and_gc() {
    let (_srv, env) = three_versions("confirm_refetch = false\nkeep_for = \"15d\"");
    // Pruned after each pass, by the pass's clock: the 2026-11-01 snapshot is older than 15 days.
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), 2);
    env.file(
        "watchlists/main.toml",
        &env.read("watchlists/main.toml")
            .replace("keep_for = \"15d\"", "keep = 1"),
    );
    let gc = env.run(&["gc"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(
        gc.stdout.starts_with("gc: 1 snapshot deleted"),
        "{}",
        gc.stdout
    );
    assert_eq!(env.query_i64("SELECT count(*) FROM snapshots"), 1);
    assert_eq!(
        env.run(&["show", "p"]).stdout,
        "three\nversion 2\n",
        "the newest always stays"
    );
}

/// Checks store snapshots with lz4 (fast); `gc` re-encodes them with zstd (smaller), and
/// every command reads both, before and after.
#[test]
fn gc_compacts_what_checks_stored_and_reads_the_same() {
    let srv = Server::start();
    let env = TestEnv::new().watchlist(&one_watch("p", &srv.url("/p"), "confirm_refetch = false"));
    let page = |v: usize| {
        let lines: String = (0..200)
            .map(|i| {
                format!(
                    "<p>line {i} of version {}</p>",
                    if i == 100 { v } else { 0 }
                )
            })
            .collect();
        Page::html(&lines)
    };
    for v in 0..3 {
        srv.set("/p", page(v));
        assert_eq!(env.run(&["check"]).code, 0);
    }
    // (zstd, lz4) snapshots.
    let encodings = || {
        let count = |e: i64| {
            env.query_i64(&format!(
                "SELECT count(*) FROM snapshots WHERE encoding = {e}"
            ))
        };
        (count(1), count(2))
    };
    assert_eq!(encodings(), (0, 3), "three lz4 snapshots");
    let before = (
        env.run(&["show", "p", "2"]).stdout,
        env.run(&["diff", "p"]).stdout,
    );
    assert!(before.1.contains("+line 100 of version 2"), "{}", before.1);
    let gc = env.run(&["gc"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(
        gc.stdout
            .starts_with("gc: 0 snapshots deleted, 3 compacted, "),
        "{}",
        gc.stdout
    );
    assert_eq!(encodings(), (3, 0), "re-encoded with zstd");
    let after = (
        env.run(&["show", "p", "2"]).stdout,
        env.run(&["diff", "p"]).stdout,
    );
    assert_eq!(before, after);
    // A change judged against a compacted snapshot, stored with lz4 beside it.
    srv.set("/p", page(3));
    let check = env.run(&["check"]);
    assert_eq!(check.code, 0);
    check.says("+line 100 of version 3");
    assert_eq!(encodings(), (3, 1));
    assert!(
        env.run(&["gc"])
            .stdout
            .starts_with("gc: 0 snapshots deleted, 1 compacted")
    );
}

#[test]
fn timeline_in_order_for_a_postmortem() {
    let (srv, env) = watching("a", Page::html("<p>a</p>"), "confirm_refetch = false");
    let at = |t: &str, args: &[&str]| env.run_env(args, &[("FOREWARN_NOW", t)]);
    at("2026-11-21T09:00:00Z", &["check"]);
    srv.set("/a", Page::html("down").status(503));
    at("2026-11-21T09:15:00Z", &["check"]);
    srv.set("/a", Page::html("<p>a2</p>"));
    at("2026-11-21T09:30:00Z", &["check"]);
    let md = at("2026-11-21T10:00:00Z", &["timeline", "--since", "2h"]);
    let rows: Vec<&str> = md
        .stdout
        .lines()
        .filter(|l| l.starts_with("| 2026"))
        .collect();
    assert_eq!(rows.len(), 3, "{}", md.stdout);
    assert!(
        rows[0].contains("09:15:00") && rows[0].contains("FAILED"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("09:30:00") && rows[1].contains("RECOVERED"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].contains("09:30:00") && rows[2].contains("CHANGED"),
        "{}",
        rows[2]
    );
    let json = at(
        "2026-11-21T10:00:00Z",
        &["timeline", "--since", "2h", "--format", "json"],
    );
    assert_eq!(json.json().len(), 3);
    let text = at(
        "2026-11-21T10:00:00Z",
        &["timeline", "--since", "20m", "--format", "text"],
    );
    assert_eq!(text.stdout.lines().count(), 0, "{}", text.stdout);
}
