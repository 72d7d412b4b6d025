//! `verify`: the integration's own test, run after a detected change against files of the new
//! body, both texts and the diff; its verdict in the event, and the notifications held for it.

use std::time::{Duration, Instant};

use crate::util::{Page, Server, TestEnv};

fn page(text: &str) -> Page {
    Page::html(&format!(
        "<html><body><div id=\"toolbar\"><button>{text}</button></div></body></html>"
    ))
}

/// A watchlist with a webhook for everything and a pager for critical events only, and one
/// watch with `verify`.
fn setup(verify: &str) -> (Server, Server, TestEnv) {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/all", Page::html("ok"));
    hook.set("/pager", Page::html("ok"));
    srv.set("/app", page("Send"));
    let toml = format!(
        "[channels.all]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n\
         [channels.pager]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\nmin_severity = \"critical\"\n\n\
         [[watch]]\nname = \"inbox\"\nurl = \"{}\"\nconfirm_refetch = false\nnotify = [\"all\", \"pager\"]\n{verify}\n",
        hook.url("/all"),
        hook.url("/pager"),
        srv.url("/app"),
    );
    let env = TestEnv::new().watchlist(&toml);
    let first = env.run(&["check"]);
    assert_eq!(first.code, 0, "{first:?}");
    (srv, hook, env)
}

/// A verify that passes: it ran in the watchlist's folder with the watch, the event and the
/// files; the event says it passed, and its notification went out after it, not critical.
#[test]
fn a_passing_verify_is_told_with_the_change() {
    let script = r#"verify = 'env | grep ^FOREWARN_ | sort > seen.env; cp "$FOREWARN_BODY" body.html; cp "$FOREWARN_SNAPSHOT" new.txt; cp "$FOREWARN_PREVIOUS" old.txt; cp "$FOREWARN_DIFF" diff.txt; grep -q "Send now" "$FOREWARN_SNAPSHOT" && echo integration ok'"#;
    let (srv, hook, env) = setup(script);
    srv.set("/app", page("Send now"));
    let run = env.run(&["check", "--format", "json"]);
    let verdict = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("verify").is_some() && v.get("events").is_some())
        .unwrap_or_else(|| panic!("a verify line: {}", run.stdout));
    // The change itself was printed as it was stored, its verify running then.
    assert!(
        run.stdout.contains("\"verify\":{\"state\":\"running\"}"),
        "{}",
        run.stdout
    );
    assert_eq!(verdict["watch"], "inbox");
    assert_eq!(verdict["verify"]["passed"], true, "{verdict}");
    assert_eq!(verdict["verify"]["exit"], 0);
    assert!(
        verdict["verify"]["output"]
            .as_str()
            .unwrap()
            .contains("integration ok")
    );
    let dir = env.path().join("watchlists");
    let seen = std::fs::read_to_string(dir.join("seen.env")).unwrap();
    assert!(seen.contains("FOREWARN_WATCH=inbox"), "{seen}");
    assert!(seen.contains("FOREWARN_EVENT=changed"), "{seen}");
    assert!(
        seen.contains(&format!("FOREWARN_URL={}", srv.url("/app"))),
        "{seen}"
    );
    assert!(
        std::fs::read_to_string(dir.join("body.html"))
            .unwrap()
            .contains("<button>Send now</button>")
    );
    assert!(
        std::fs::read_to_string(dir.join("new.txt"))
            .unwrap()
            .contains("Send now")
    );
    assert!(
        std::fs::read_to_string(dir.join("old.txt"))
            .unwrap()
            .contains("Send")
    );
    assert!(
        std::fs::read_to_string(dir.join("diff.txt"))
            .unwrap()
            .contains("+Send now")
    );
    let report = env.run(&["report", "--format", "json"]);
    assert!(
        report.stdout.contains("\"passed\":true"),
        "{}",
        report.stdout
    );
    env.run(&["report"]).says("verify passed (");
    assert_eq!(
        hook.seen("/all").len(),
        1,
        "the change is notified once verified"
    );
    assert!(
        hook.seen("/pager").is_empty(),
        "a change that still works pages no one"
    );
    let body = hook.seen("/all")[0].json();
    assert!(body.to_string().contains("verify passed"), "{body}");
}

/// A verify that fails makes the change critical: the pager hears it too, the output's last
/// lines are kept with the secrets in it redacted, and `check` says so.
#[test]
fn a_failing_verify_makes_the_change_critical() {
    let (srv, hook, env) = setup(
        "verify = ['sh', '-c', 'echo \"calling the API with $VENDOR_API_TOKEN\"; echo \"inbox test: expected button Send\" >&2; exit 3']",
    );
    srv.set("/app", page("Compose"));
    let secret = ("VENDOR_API_TOKEN", "tok-83f2a9c41d");
    let run = env.run_env(&["check"], &[secret]);
    run.says("verify failed (exit 3 after");
    run.says("inbox test: expected button Send");
    assert!(!run.stdout.contains(secret.1), "{}", run.stdout);
    let pager = hook.seen("/pager");
    assert_eq!(pager.len(), 1, "a failed verify pages");
    let body = pager[0].json();
    assert_eq!(body["severity"], "critical", "{body}");
    assert!(!body.to_string().contains(secret.1));
    let report = env.run(&["report", "--format", "json"]);
    let e: serde_json::Value = report
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "changed")
        .unwrap();
    assert_eq!(e["severity"], "critical");
    assert_eq!(e["verify"]["exit"], 3);
    assert!(
        e["verify"]["output"]
            .as_str()
            .unwrap()
            .contains("[redacted]")
    );
    let db = env.stored_bytes();
    assert!(!db.windows(secret.1.len()).any(|w| w == secret.1.as_bytes()));
    let html = env.run(&["report", "--format", "html"]);
    html.says("<b>verify</b>: verify failed (exit 3");
    env.run(&["list"]).says("verify failed (exit 3 after");
    let list = env.run(&["list", "--format", "json"]);
    list.says("\"state\":\"verify_failed\"");
}

/// A verify that outlives `verify_timeout` is killed, with whatever it started, and counts
/// as failing.
#[test]
fn a_verify_past_its_timeout_is_killed() {
    let (srv, hook, env) = setup("verify = 'sleep 47.25 & sleep 47.5'\nverify_timeout = \"1s\"");
    srv.set("/app", page("Compose"));
    let start = Instant::now();
    let run = env.run(&["check"]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    run.says("verify timed out and was killed after");
    assert_eq!(
        hook.seen("/pager").len(),
        1,
        "a verify that hangs is a failure"
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 47"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// forewarn killed while a verify runs: the change and its held notifications are stored;
/// the next run marks the verify interrupted and sends them.
#[test]
fn a_verify_cut_off_by_a_crash_is_marked_interrupted() {
    let (srv, hook, env) = setup("verify = 'sleep 48.5'");
    srv.set("/app", page("Compose"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_forewarn"))
        .args(["check"])
        .current_dir(env.path())
        .env("FOREWARN_DB", env.db())
        .env("HOME", env.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let running = std::process::Command::new("pgrep")
            .args(["-f", "sleep 48.5"])
            .output()
            .unwrap();
        if !running.stdout.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the verify never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::process::Command::new("pkill")
        .args(["-f", "sleep 48.5"])
        .status();
    assert!(hook.seen("/all").is_empty(), "held while the verify ran");
    let again = env.run(&["check"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(hook.seen("/all").len(), 1, "sent by the next run");
    env.run(&["report"]).says("verify was interrupted");
}

/// `verify`, `verify_timeout` and `verify_on` are checked at load, with where.
#[test]
fn verify_settings_are_checked_at_load() {
    let env = TestEnv::new().watchlist(
        "[defaults]\nverify_on = [\"changed\", \"chnaged\"]\n\n[[watch]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/\"\nverify = \"\"\n\n[[watch]]\nname = \"b\"\nurl = \"http://127.0.0.1:9/b\"\nverify = \"true\"\nverify_timeout = \"10ms\"\n",
    );
    let run = env.run(&["list"]);
    assert_eq!(run.code, 3, "{run:?}");
    for needle in [
        "unknown event kind `chnaged` in `verify_on`",
        "`verify` is empty",
        "`verify_timeout` must be at least 1s",
        "main.toml:2",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
}
