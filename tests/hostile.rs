//! Issue 8 (part): hostile and broken servers. Each gives a clear outcome for its watch, and
//! the rest of the run goes on.

use std::time::Duration;

use crate::util::{Page, Server, TestEnv, one_watch, watching};

/// One broken watch beside a healthy one: the broken one's error, or `None` when it passed.
fn outcome(page: Page, extra: &str) -> (Option<String>, crate::util::Run) {
    let srv = Server::start();
    srv.set("/bad", page);
    srv.set("/ok", Page::html("<p>fine</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("bad", &srv.url("/bad"), &format!("retries = 0\n{extra}")),
        one_watch("ok", &srv.url("/ok"), "")
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert!(
        run.events("baseline").iter().any(|e| e["watch"] == "ok"),
        "the rest of the run goes on: {}",
        run.stdout
    );
    let err = run
        .events("error")
        .first()
        .map(|e| e["error"].as_str().unwrap().to_string());
    (err, run)
}

/// A 200 whose body is `bomb` under `encoding`, against a 1 MiB cap: a failure at the cap.
fn assert_bomb_stopped(encoding: &str, bomb: &[u8]) {
    assert!(bomb.len() < 100 * 1024, "a real bomb: {} bytes", bomb.len());
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    raw.extend_from_slice(bomb);
    let (err, _) = outcome(Page::raw(&raw), "max_size = \"1MiB\"");
    let err = err.expect("a failure");
    assert!(
        err.contains("larger than the 1 MiB cap"),
        "{encoding}: {err}"
    );
}

#[test]
fn compression_bomb_is_stopped_at_the_cap() {
    let bomb = zstd::bulk::compress(&vec![b'a'; 64 * 1024 * 1024], 19).unwrap();
    assert_bomb_stopped("zstd", &bomb);
}

#[test]
fn redirect_loops_and_chains_are_bounded() {
    let srv = Server::start();
    srv.set("/a", Page::html("").status(302).header("Location", "/b"));
    srv.set("/b", Page::html("").status(302).header("Location", "/a"));
    let env = TestEnv::new().watchlist(&one_watch("loop", &srv.url("/a"), "retries = 0"));
    let run = env.run(&["check", "--format", "json"]);
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("redirects (or a redirect loop)"), "{err}");
    assert!(
        srv.seen("/a").len() <= 6,
        "bounded: {}",
        srv.seen("/a").len()
    );
}

#[test]
fn broken_bodies_are_clear_failures() {
    for (what, raw) in [
        (
            "connection reset mid-body (Content-Length longer than the body)",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<p>only part".to_vec(),
        ),
        (
            "truncated chunked body",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<p>sixteen bytes\r\n".to_vec(),
        ),
    ] {
        let (err, _) = outcome(Page::raw(&raw), "");
        let err = err.unwrap_or_else(|| panic!("{what}: no failure"));
        assert!(err.contains("broke off"), "{what}: {err}");
    }
}

#[test]
fn a_body_that_trickles_times_out() {
    let mut raw =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 400\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 400));
    let (err, _) = outcome(
        Page::raw(&raw).trickle(Duration::from_millis(20)),
        "timeout = \"1s\"",
    );
    let err = err.expect("a failure");
    assert!(err.contains("timed out after 1s"), "{err}");
}

#[test]
fn binary_and_odd_encodings_are_clear_failures_or_decoded() {
    let (err, _) = outcome(
        Page::html("")
            .with_type("text/plain")
            .raw_body(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0"),
        "",
    );
    assert!(err.expect("binary is refused").contains("binary"));
    // Invalid UTF-8 without a declared charset: read, not a crash.
    let (err, run) = outcome(
        Page::html("")
            .with_type("text/plain")
            .raw_body(b"caf\xe9 \xff\xfe ok"),
        "",
    );
    assert_eq!(err, None, "{}", run.stdout);
}

#[test]
fn charsets_from_the_header_and_from_a_meta_tag() {
    let srv = Server::start();
    srv.set(
        "/latin",
        Page::html("")
            .with_type("text/html; charset=windows-1252")
            .raw_body(b"<p>caf\xe9 cr\xe8me</p>"),
    );
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(
        "<html><head><meta charset=\"Shift_JIS\"></head><body><p>日本語のページ</p></body></html>",
    );
    srv.set(
        "/sjis",
        Page::html("").with_type("text/html").raw_body(&sjis),
    );
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("latin", &srv.url("/latin"), ""),
        one_watch("sjis", &srv.url("/sjis"), "")
    ));
    assert!(env.run(&["test", "latin"]).stdout.contains("café crème"));
    assert!(env.run(&["test", "sjis"]).stdout.contains("日本語のページ"));
}

#[test]
fn a_watch_on_ipv6_loopback_is_fetched() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        panic!("this machine has no IPv6 loopback; the test needs one");
    };
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "<p>over IPv6</p>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let env = TestEnv::new().watchlist(&one_watch("v6", &format!("http://[::1]:{port}/"), ""));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("baseline").len(), 1, "{run:?}");
}

#[test]
fn a_block_page_is_blocked_not_a_change() {
    let (srv, env) = watching("p", Page::html("<h1>Pricing</h1><p>Pro: $10</p>"), "");
    env.run(&["check"]);
    srv.set(
        "/p",
        Page::html("<title>Just a moment...</title><h1>Checking your browser before accessing the site</h1>"),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let blocked = run.events("blocked");
    assert_eq!(blocked.len(), 1, "{}", run.stdout);
    assert!(
        blocked[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("blocked:")
    );
    assert_eq!(run.events("changed").len(), 0);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM snapshots"),
        1,
        "no snapshot of the block page"
    );
    // Back to the real page: a recovery, not a change.
    srv.set("/p", Page::html("<h1>Pricing</h1><p>Pro: $10</p>"));
    let back = env.run(&["check", "--format", "json"]);
    assert_eq!(back.events("recovered").len(), 1, "{}", back.stdout);
    assert_eq!(back.events("changed").len(), 0);
    // A long article that mentions a captcha is a page, and so is a selected part.
    let article = format!(
        "<h1>How we built our captcha</h1>{}",
        "<p>Complete the captcha research notes.</p>".repeat(100)
    );
    srv.set("/p", Page::html(&article));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("blocked").len(), 0, "{}", run.stdout);
}

#[test]
fn a_self_signed_certificate_is_a_clear_error_unless_insecure() {
    let https =
        crate::util::tls::HttpsServer::start("<html><body><p>internal v1</p></body></html>");
    let url = format!("https://127.0.0.1:{}/", https.port);
    let env = TestEnv::new().watchlist(&one_watch("internal", &url, "retries = 0"));
    let run = env.run(&["check"]);
    assert_eq!(run.code, 2, "{run:?}");
    run.says("FAILED internal");
    run.says("TLS error");
    run.says("`insecure = true`");
    let env =
        TestEnv::new().watchlist(&one_watch("internal", &url, "retries = 0\ninsecure = true"));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.events("baseline").len(), 1, "{}", run.stdout);
}

#[test]
fn a_hundred_thousand_nested_elements_are_flattened_not_a_hang() {
    let n = 100_000;
    let body = format!(
        "<html><body>{}<b>deep core</b>{}<p>after</p></body></html>",
        "<div><span>".repeat(n / 2),
        "</span></div>".repeat(n / 2)
    );
    let (err, run) = outcome(Page::html(&body), "");
    assert_eq!(err, None, "{run:?}");
    let (_srv, env) = watching("deep", Page::html(&body), "");
    let test = env.run(&["test", "deep"]);
    assert_eq!(test.code, 0, "{test:?}");
    assert!(test.stdout.contains("deep core"), "the text is kept");
    assert!(test.stdout.contains("after"));
}

#[test]
fn a_page_of_a_hundred_thousand_comments_is_read_not_a_hang() {
    // Each comment's end used to be looked for as `-->` and as `--!>` in the rest of the page:
    // with no `--!>` anywhere, every comment read the page to its end.
    let body = format!(
        "<html><body><p>before</p>{}<p>after the comments</p></body></html>",
        "<!-- a comment --><i>x</i>".repeat(100_000)
    );
    let (err, run) = outcome(Page::html(&body), "");
    assert_eq!(err, None, "{run:?}");
    let (_srv, env) = watching("comments", Page::html(&body), "");
    let test = env.run(&["test", "comments"]);
    assert_eq!(test.code, 0, "{test:?}");
    assert!(
        test.stdout.contains("after the comments"),
        "{}",
        test.stdout
    );
}

#[test]
fn a_gzip_bomb_is_stopped_at_the_cap_too() {
    let out = std::process::Command::new("sh")
        .args(["-c", "head -c 67108864 /dev/zero | gzip -9 -c"])
        .output()
        .expect("gzip");
    assert_bomb_stopped("gzip", &out.stdout);
}

/// `deny_private = true` (off by default) refuses private, loopback and link-local addresses,
/// written as such or behind a name, with a message that says why; the other watches run.
#[test]
fn deny_private_refuses_private_addresses() {
    let srv = Server::start();
    srv.set("/p", Page::html("<p>internal</p>"));
    let port = srv
        .url("/p")
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let env = TestEnv::new().watchlist(&format!(
        "[defaults]\ndeny_private = true\n{}{}{}",
        one_watch("ip", &srv.url("/p"), "retries = 0"),
        one_watch("name", &format!("http://localhost:{port}/p"), "retries = 0"),
        one_watch("allowed", &srv.url("/p"), "deny_private = false"),
    ));
    let run = env.run(&["check", "--format", "json"]);
    let errors = run.events("error");
    assert_eq!(errors.len(), 2, "{}", run.stdout);
    for e in &errors {
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains("deny_private"), "{msg}");
        assert!(msg.contains("127.0.0.1") || msg.contains("::1"), "{msg}");
    }
    assert_eq!(run.events("baseline").len(), 1, "the watch without it runs");
    assert_eq!(
        srv.seen("/p").len(),
        1,
        "nothing was sent for the refused ones"
    );
}
