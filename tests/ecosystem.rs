//! `forewarn init`, `forewarn completions` and `forewarn man`.

use crate::util::TestEnv;

/// `init` writes a starter watchlist that loads as is, every watch disabled (nothing is
/// fetched by accident), and a forewarn.toml with a desktop channel; never over a file.
#[test]
fn init_writes_a_starter_that_loads_and_fetches_nothing() {
    let env = TestEnv::new();
    let dir = env.path().join("project");
    let run = env.run(&["init", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    run.says("five example watches, disabled until their URLs are yours");
    let starter = std::fs::read_to_string(dir.join("watchlists/starter.toml")).unwrap();
    assert_eq!(
        starter.matches("PLACEHOLDER").count(),
        5,
        "every URL marked"
    );
    assert_eq!(
        starter
            .lines()
            .filter(|l| l.trim() == "enabled = false")
            .count(),
        5
    );
    for kind in [
        "kind = \"json\"",
        "kind = \"feed\"",
        "kind = \"version\"",
        "browser = true",
        "select =",
    ] {
        assert!(starter.contains(kind), "{kind}");
    }
    let channels = std::fs::read_to_string(dir.join("forewarn.toml")).unwrap();
    assert!(channels.contains("type = \"desktop\""));
    let watchlists = dir.join("watchlists");
    let list = env.run(&["--watchlist", watchlists.to_str().unwrap(), "list"]);
    assert_eq!(list.code, 0, "the starter loads: {list:?}");
    assert_eq!(list.stdout.matches("disabled (enabled = false)").count(), 5);
    let check = env.run(&["--watchlist", watchlists.to_str().unwrap(), "check"]);
    assert_ne!(check.code, 0);
    assert!(
        check.stderr.contains("are all disabled"),
        "{}",
        check.stderr
    );
    let again = env.run(&["init", dir.to_str().unwrap()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
}

#[test]
fn completions_for_each_shell_and_a_man_page() {
    let env = TestEnv::new();
    for (shell, needle) in [
        ("bash", "_forewarn()"),
        ("zsh", "#compdef forewarn"),
        ("fish", "complete -c forewarn"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[forewarn]"),
    ] {
        let run = env.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        assert!(run.stdout.contains(needle), "{shell}");
        assert!(
            run.stdout.contains("verify") || run.stdout.contains("check"),
            "{shell}"
        );
    }
    let man = env.run(&["man"]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH forewarn 1"),
        "roff"
    );
    for section in ["FOREWARN CHECK", "FOREWARN ACK", "FOREWARN INIT"] {
        assert!(man.stdout.contains(section), "{section}");
    }
    assert!(
        man.stdout.contains("fail\\-on\\-change"),
        "the options of each command"
    );
}

/// A plain HTTP GET on loopback: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// `watch --metrics`: Prometheus text at /metrics (checks by outcome, a duration histogram,
/// each watch's last success and state, the outbox depth), 200 at /healthz.
#[test]
fn watch_serves_metrics_and_a_health_check() {
    let (srv, env) = crate::util::watching(
        "vendor",
        crate::util::Page::html("<main>v1</main>"),
        "every = \"1s\"",
    );
    let log = env.path().join("watch.log");
    let mut child = env.spawn_watch(&log, &["--metrics", "127.0.0.1:0"]);
    let start = std::time::Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let line = text.lines().find(|l| l.contains("serving metrics"));
        if let Some(l) = line
            && srv.seen("/vendor").len() >= 2
        {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let url = v["metrics"].as_str().unwrap();
            break url
                .trim_start_matches("http://")
                .trim_end_matches("/metrics")
                .to_string();
        }
        assert!(start.elapsed().as_secs() < 20, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // The second check of the pass may still be being stored.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (status, body) = get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for needle in [
        "# TYPE forewarn_checks_total counter",
        "forewarn_checks_total{outcome=\"baseline\"} 1",
        "forewarn_check_duration_seconds_bucket{le=\"+Inf\"}",
        "forewarn_check_duration_seconds_count",
        "forewarn_watch_last_success_timestamp_seconds{watch=\"vendor\"}",
        "forewarn_watch_state{watch=\"vendor\",state=",
        "forewarn_outbox_depth 0",
        "# TYPE forewarn_notification_failures_total counter",
    ] {
        assert!(body.contains(needle), "{needle} in:\n{body}");
    }
    assert_eq!(
        get(&addr, "/healthz"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    assert!(get(&addr, "/other").0.contains("404"));
    let _ = child.kill();
    let _ = child.wait();
}

/// Colour as `git diff` has it: on a terminal (auto) or when asked; never in a pipe or under
/// cron, never with NO_COLOR.
#[test]
fn diffs_are_coloured_on_a_terminal_only() {
    let (srv, env) = crate::util::watching(
        "docs",
        crate::util::Page::html("<main><p>old line</p></main>"),
        "confirm_refetch = false",
    );
    assert_eq!(env.run(&["check"]).code, 0);
    srv.set(
        "/docs",
        crate::util::Page::html("<main><p>new line</p></main>"),
    );
    let piped = env.run(&["check"]);
    assert_eq!(piped.code, 0, "{piped:?}");
    assert!(piped.stdout.contains("+new line"), "{}", piped.stdout);
    assert!(
        !piped.stdout.contains('\x1b'),
        "a pipe gets no colour: {:?}",
        piped.stdout
    );
    let always = env.run(&["--color", "always", "report", "docs"]);
    assert!(
        always.stdout.contains("\x1b[32m  +new line\x1b[0m"),
        "{:?}",
        always.stdout
    );
    assert!(
        always.stdout.contains("\x1b[31m  -old line\x1b[0m"),
        "{:?}",
        always.stdout
    );
    assert!(
        always.stdout.contains("\x1b[1mCHANGED docs"),
        "{:?}",
        always.stdout
    );
    let terminal = env.run_on_terminal(&["report", "docs"]);
    assert!(
        terminal.stdout.contains("\x1b[32m"),
        "{:?}",
        terminal.stdout
    );
    let never = env.run_on_terminal(&["--color", "never", "report", "docs"]);
    assert!(!never.stdout.contains('\x1b'), "{:?}", never.stdout);
    let no_color = env.run_on_terminal_env(&["report", "docs"], &[("NO_COLOR", "1")]);
    assert!(!no_color.stdout.contains('\x1b'), "{:?}", no_color.stdout);
}

/// `forewarn incident`: the account of an upstream change from the timeline, with the
/// sections forewarn cannot fill left for the author.
#[test]
fn incident_writes_up_an_upstream_change() {
    let srv = crate::util::Server::start();
    let hook = crate::util::Server::start();
    hook.set("/hook", crate::util::Page::html("ok"));
    srv.set("/api", crate::util::Page::html("<main><p>v1</p></main>"));
    let env = TestEnv::new().watchlist(&format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n{}",
        hook.url("/hook"),
        crate::util::one_watch(
            "vendor-api",
            &srv.url("/api"),
            "confirm_refetch = false\nnotify = [\"hook\"]"
        )
    ));
    assert_eq!(env.run(&["check"]).code, 0);
    srv.set("/api", crate::util::Page::html("<main><p>v2</p></main>"));
    assert_eq!(env.run(&["check"]).code, 0);
    assert_eq!(hook.seen("/hook").len(), 1);
    let md = env.run(&["incident"]);
    assert_eq!(md.code, 0, "{md:?}");
    for needle in [
        "# Incident: vendor-api changed (",
        "- **Upstream changed**: between ",
        "(the last check that saw it as before) and ",
        "- **Notified**: ",
        "`hook` told of event",
        "- **Recovered**: not yet",
        "## Timeline",
        "```diff\n",
        "+v2",
        "forewarn show vendor-api",
        "## Impact",
        "## Cause",
        "## Follow-ups",
    ] {
        assert!(md.stdout.contains(needle), "{needle} in:\n{}", md.stdout);
    }
    let html = env.run(&["incident", "--format", "html"]);
    assert!(
        html.stdout.starts_with("<!doctype html>"),
        "{}",
        html.stdout
    );
    assert!(
        html.stdout.contains("<h1>Incident: vendor-api"),
        "{}",
        html.stdout
    );
    assert!(
        html.stdout.contains("<h2>Follow-ups</h2>"),
        "{}",
        html.stdout
    );
    let other = env.run(&["incident", "--watch", "another"]);
    assert!(
        other.stdout.contains("nothing happened to another"),
        "{}",
        other.stdout
    );
}
