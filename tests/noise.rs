//! Issue 10: quiet on churn (timestamps, tokens, markup), never hiding a real edit.

use crate::util::{Page, Server, TestEnv, one_watch, watching};

fn page(footer: &str, body: &str) -> String {
    format!(
        "<html><body><main><h1>Changelog</h1>{body}</main>\
         <footer>Built at {footer}</footer></body></html>"
    )
}

/// Serves `a`, checks, serves `b`, checks: returns the second run's JSON events.
fn two_checks(extra: &str, a: &str, b: &str) -> (TestEnv, crate::util::Run) {
    let (srv, env) = watching("p", Page::html(a), extra);
    let first = env.run(&["check"]);
    assert_eq!(first.code, 0, "{first:?}");
    srv.set("/p", Page::html(b));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    (env, run)
}

#[test]
fn churn_alone_is_noise_and_stays_quiet() {
    let cases = [
        (
            "build time",
            page("2026-11-20T10:00:00Z", "<p>v1</p>"),
            page("2026-11-21T09:13:44Z", "<p>v1</p>"),
        ),
        (
            "relative time",
            page("x", "<p>v1</p><p>Updated 3 minutes ago</p>"),
            page("x", "<p>v1</p><p>Updated 2 hours ago</p>"),
        ),
        (
            "csrf token in text",
            page("x", "<p>v1</p><p>token: Zm9vYmFyQmF6MTIzNDU2Nzg5</p>"),
            page("x", "<p>v1</p><p>token: QWxhZGRpbjpPcGVuU2VzYW1lMTI</p>"),
        ),
        (
            "request id",
            page("x", "<p>v1</p><p>Request ID: 8f2c91ab77</p>"),
            page("x", "<p>v1</p><p>Request ID: 11aa22bb33</p>"),
        ),
        (
            "cache-busting link",
            page("x", "<p><a href=\"/app.css?v=1a2b3c\">styles</a></p>"),
            page("x", "<p><a href=\"/app.css?v=9z8y7x\">styles</a></p>"),
        ),
        (
            "re-highlighted code block",
            page("x", "<pre><code>let x = 1;</code></pre>"),
            page(
                "x",
                "<pre><code><span class=\"kw\">let</span> <span class=\"id\">x</span> = <span class=\"num\">1</span>;</code></pre>",
            ),
        ),
        (
            "re-ordered attributes",
            page("x", "<p><a class=\"l\" href=\"/a\" id=\"k\">A</a></p>"),
            page("x", "<p><a id=\"k\" href=\"/a\" class=\"l\">A</a></p>"),
        ),
    ];
    for (what, a, b) in cases {
        let (env, run) = two_checks("", &a, &b);
        assert_eq!(run.events("changed").len(), 0, "{what}: {}", run.stdout);
        let text = env.run(&["check"]);
        assert_eq!(text.stdout, "", "{what}: the text report stays quiet");
        let report = env.run(&["report"]);
        assert!(
            report.stdout.starts_with("no changes"),
            "{what}: {}",
            report.stdout
        );
    }
}

#[test]
fn noise_is_recorded_and_shown_on_request() {
    let (env, run) = two_checks(
        "",
        &page("2026-11-20T10:00:00Z", "<p>v1</p>"),
        &page("2026-11-21T09:13:44Z", "<p>v1</p>"),
    );
    let noise = run.events("noise");
    assert_eq!(noise.len(), 1, "{}", run.stdout);
    assert_eq!(noise[0]["masks"], serde_json::json!(["timestamps"]));
    let diff = noise[0]["diff"].as_str().unwrap();
    assert!(diff.contains("+Built at 2026-11-21T09:13:44Z"), "{diff}");
    let all = env.run(&["report", "--all"]);
    all.says("NOISE p");
}

#[test]
fn a_real_edit_next_to_churn_is_reported() {
    let (_env, run) = two_checks(
        "",
        &page(
            "2026-11-20T10:00:00Z",
            "<p>Token abc: Zm9vYmFyQmF6MTIzNDU2Nzg5</p><ul><li>1.0 released</li></ul>",
        ),
        &page(
            "2026-11-21T09:13:44Z",
            "<p>Token abc: QWxhZGRpbjpPcGVuU2VzYW1lMTI</p><ul><li>1.1 released: removes v1 auth</li><li>1.0 released</li></ul>",
        ),
    );
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    let diff = changed[0]["diff"].as_str().unwrap();
    assert!(diff.contains("+- 1.1 released: removes v1 auth"), "{diff}");
    // The diff shows real values, not placeholders.
    assert!(diff.contains("2026-11-21T09:13:44Z"), "{diff}");
    assert!(!diff.contains('\u{27e8}'), "{diff}");
}

#[test]
fn masks_can_be_turned_off_or_picked() {
    let a = page("2026-11-20T10:00:00Z", "<p>Updated 3 minutes ago</p>");
    let b = page("2026-11-21T09:13:44Z", "<p>Updated 4 minutes ago</p>");
    let (_env, off) = two_checks("masks = false", &a, &b);
    assert_eq!(off.events("changed").len(), 1, "{}", off.stdout);
    let (_env, picked) = two_checks("masks = [\"timestamps\"]", &a, &b);
    assert_eq!(
        picked.events("changed").len(),
        1,
        "relative times are not masked: {}",
        picked.stdout
    );
    let (_env, both) = two_checks("masks = [\"timestamps\", \"relative_times\"]", &a, &b);
    assert_eq!(both.events("changed").len(), 0, "{}", both.stdout);

    let env = TestEnv::new().watchlist(&one_watch(
        "p",
        "https://example.com/",
        "masks = [\"timestamp\"]",
    ));
    let bad = env.run(&["check"]);
    assert_eq!(bad.code, 3);
    assert!(
        bad.stderr.contains("did you mean `timestamps`?"),
        "{}",
        bad.stderr
    );
}

#[test]
fn confirm_waits_for_n_consecutive_sightings() {
    let srv = Server::start();
    let v = |s: &str| page("x", &format!("<p>{s}</p>"));
    srv.set("/p", Page::html(&v("A")));
    let env = TestEnv::new().watchlist(&one_watch("p", &srv.url("/p"), "confirm = 2"));
    env.run(&["check"]);
    // Flapping between two versions (A/B test, two CDN nodes): never reported.
    for s in ["B", "A", "B", "A"] {
        srv.set("/p", Page::html(&v(s)));
        let run = env.run(&["check", "--format", "json"]);
        assert_eq!(run.events("changed").len(), 0, "{s}: {}", run.stdout);
    }
    // A change that stays is reported on the second sighting, once.
    srv.set("/p", Page::html(&v("C")));
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.events("pending").len(), 1, "{}", first.stdout);
    assert_eq!(first.events("changed").len(), 0);
    let second = env.run(&["check", "--format", "json"]);
    let changed = second.events("changed");
    assert_eq!(changed.len(), 1, "{}", second.stdout);
    assert!(changed[0]["diff"].as_str().unwrap().contains("+C"));
    let third = env.run(&["check", "--format", "json"]);
    assert_eq!(third.events("changed").len(), 0, "{}", third.stdout);
}

#[test]
fn test_shows_what_is_masked() {
    let (srv, env) = watching(
        "p",
        Page::html(&page(
            "2026-11-20T10:00:00Z",
            "<p>Updated 3 minutes ago</p>",
        )),
        "",
    );
    let run = env.run(&["test", "p"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.says("masked when comparing");
    run.says("timestamps (");
    run.says("\"2026-11-20T10:00:00Z\"");
    run.says("\"3 minutes ago\"");
    env.run(&["check"]);
    srv.set(
        "/p",
        Page::html(&page(
            "2026-11-21T10:00:00Z",
            "<p>Updated 5 minutes ago</p>",
        )),
    );
    let run = env.run(&["test", "p"]);
    run.says("only in masked fragments");
}

#[test]
fn learned_masks_from_two_immediate_fetches() {
    let srv = Server::start();
    let page = |extra: &str| {
        format!("<html><body><h1>Inbox</h1><p>Served by node-{{{{N}}}}</p>{extra}</body></html>")
    };
    srv.set("/p", Page::html(&page("")));
    let env = TestEnv::new().watchlist(&one_watch("p", &srv.url("/p"), ""));
    env.run(&["check"]);
    // The node name differs on every request: the refetch sees it differ again, learns it.
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    let noise = run.events("noise");
    assert_eq!(noise.len(), 1, "{}", run.stdout);
    assert_eq!(noise[0]["masks"], serde_json::json!(["learned"]));
    // From then on it is masked without a refetch, and `test` shows the learned mask.
    let before = srv.seen("/p").len();
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    assert_eq!(
        srv.seen("/p").len(),
        before + 1,
        "no refetch for known churn"
    );
    let test = env.run(&["test", "p"]);
    test.says("learned masks");
    test.says(r"(?m)^Served by \S+$");
    // A real edit next to the churn is still reported, with real values in the diff.
    srv.set("/p", Page::html(&page("<p>New: scheduled maintenance</p>")));
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    let diff = changed[0]["diff"].as_str().unwrap();
    assert!(diff.contains("+New: scheduled maintenance"), "{diff}");
    assert!(diff.contains("Served by node-"), "{diff}");
}

/// A teaser rotating between values that share no words: the values seen in its place
/// (both fetches' and the stored one) are learned as a set; a real edit beside it still shows.
#[test]
fn rotating_teaser_is_learned_as_a_set() {
    let teaser = "{{ROTATE:Try Acme Pro free|Read our engineering blog|Join the webinar today}}";
    let page = |extra: &str| format!("<h1>Inbox</h1><p>{teaser}</p><p>Footer links</p>{extra}");
    let (srv, env) = watching("p", Page::html(&page("")), "");
    env.run(&["check"]);
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    assert_eq!(run.events("noise").len(), 1, "{}", run.stdout);
    for _ in 0..4 {
        let run = env.run(&["check", "--format", "json"]);
        assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    }
    env.run(&["test", "p"]).says("Join the webinar today|");
    srv.set(
        "/p",
        Page::html(&page("<p>Inbox moves to a new address on 2027-01-15</p>")),
    );
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    assert!(
        changed[0]["diff"]
            .as_str()
            .unwrap()
            .contains("+Inbox moves"),
        "{}",
        run.stdout
    );
}

#[test]
fn test_records_what_check_would_for_learned_churn() {
    let srv = Server::start();
    let page = |extra: &str| {
        format!("<html><body><h1>Inbox</h1><p>Served by node-{{{{N}}}}</p>{extra}</body></html>")
    };
    srv.set("/p", Page::html(&page("")));
    let env = TestEnv::new().watchlist(&one_watch("p", &srv.url("/p"), ""));
    env.run(&["check"]);
    let learned = env.run(&["check", "--format", "json"]);
    assert_eq!(learned.events("noise").len(), 1, "{}", learned.stdout);
    // The only moving line is learned as volatile: `test` judges it as `check` does.
    let test = env.run(&["test", "p"]);
    assert_eq!(test.code, 0, "{test:?}");
    test.says("only in masked fragments");
    test.says("would record:\n  noise: ");
    test.never_says("+1 -1 line");
    let check = env.run(&["check", "--format", "json"]);
    assert_eq!(check.events("changed").len(), 0, "{}", check.stdout);
    assert_eq!(check.events("noise").len(), 1, "{}", check.stdout);
    // A real edit: `test` and `check` both call it a change.
    srv.set("/p", Page::html(&page("<p>New: scheduled maintenance</p>")));
    let test = env.run(&["test", "p"]);
    test.says("would record:\n  changed: ");
    test.says("+New: scheduled maintenance");
    let check = env.run(&["check", "--format", "json"]);
    assert_eq!(check.events("changed").len(), 1, "{}", check.stdout);
    // Nothing `test` did was stored: the same content again is nothing new to either.
    let test = env.run(&["test", "p"]);
    test.never_says("would record:\n  changed");
}

#[test]
fn test_counts_confirmations_like_check() {
    let (srv, env) = watching("p", Page::html("<p>Plan: Free</p>"), "confirm = 2");
    env.run(&["check"]);
    srv.set("/p", Page::html("<p>Plan: Pro</p>"));
    let test = env.run(&["test", "p"]);
    test.says("seen 1 of the 2 times");
    test.says("+Plan: Pro");
    test.says("would record:\n  pending: ");
    let check = env.run(&["check", "--format", "json"]);
    assert_eq!(check.events("changed").len(), 0, "{}", check.stdout);
    let test = env.run(&["test", "p"]);
    test.says("would record:\n  changed: ");
}

#[test]
fn without_refetch_rotation_is_a_change() {
    let (_srv, env) = watching(
        "p",
        Page::html("<p>Inbox</p><p>Served by node-{{N}}</p>"),
        "confirm_refetch = false",
    );
    env.run(&["check"]);
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
}

#[test]
fn identity_of_selected_elements_is_compared() {
    let a = "<div id=\"compose\" class=\"box primary\"><button>Send</button></div>";
    let (_env, reordered) = two_checks(
        "select = \".box\"",
        a,
        "<div class=\"primary box\" id=\"compose\"><button>Send</button></div>",
    );
    assert_eq!(reordered.events("changed").len(), 0, "{}", reordered.stdout);
    let (_env, renamed) = two_checks(
        "select = \".box\"",
        a,
        "<div id=\"compose-v2\" class=\"box primary\"><button>Send</button></div>",
    );
    let changed = renamed.events("changed");
    assert_eq!(changed.len(), 1, "{}", renamed.stdout);
    let diff = changed[0]["diff"].as_str().unwrap();
    assert!(diff.contains("-[div#compose.box.primary]"), "{diff}");
    assert!(diff.contains("+[div#compose-v2.box.primary]"), "{diff}");
}

/// First sight stores the text's own hash; the masked one is taken from the stored snapshot when
/// a later text differs. Across a run of checks, churn stays noise and a real edit is reported
/// once, whichever hash was stored before it.
#[test]
fn churn_after_churn_after_first_sight_and_then_an_edit() {
    let srv = Server::start();
    let env = TestEnv::new().watchlist(&one_watch("p", &srv.url("/p"), ""));
    let steps = [
        (
            "first sight",
            page("2026-11-20T10:00:00Z", "<p>v1</p>"),
            "baseline",
        ),
        ("churn", page("2026-11-20T11:00:00Z", "<p>v1</p>"), "noise"),
        (
            "churn again",
            page("2026-11-20T12:00:00Z", "<p>v1</p>"),
            "noise",
        ),
        ("same bytes", page("2026-11-20T12:00:00Z", "<p>v1</p>"), ""),
        ("edit", page("2026-11-20T13:00:00Z", "<p>v2</p>"), "changed"),
        (
            "churn after the edit",
            page("2026-11-20T14:00:00Z", "<p>v2</p>"),
            "noise",
        ),
    ];
    for (what, body, expected) in steps {
        srv.set("/p", Page::html(&body));
        let run = env.run(&["check", "--format", "json"]);
        assert_eq!(run.code, 0, "{what}: {run:?}");
        let kinds: Vec<String> = run
            .json()
            .iter()
            .map(|l| l["event"].as_str().unwrap_or_default().to_string())
            .filter(|k| k != "summary")
            .collect();
        let expected: Vec<&str> = [expected].into_iter().filter(|e| !e.is_empty()).collect();
        assert_eq!(kinds, expected, "{what}: {}", run.stdout);
    }
}

#[test]
fn a_moved_deadline_is_a_change_a_moved_footer_stamp_is_noise() {
    let doc = |deadline: &str, window: &str, footer: &str| {
        format!(
            "<html><body><main><h1>API v1</h1><p>v1 is removed on {deadline}.</p>\
             <p>Maintenance window {window} UTC</p></main>\
             <footer>Documentation generated on {footer}</footer></body></html>"
        )
    };
    let (srv, env) = watching(
        "api",
        Page::html(&doc("2027-01-15", "02:00-04:00", "Tue Feb 20 2024")),
        "",
    );
    env.run(&["check"]);
    // Only the generator's stamp moved: noise, quiet.
    srv.set(
        "/api",
        Page::html(&doc("2027-01-15", "02:00-04:00", "Fri Feb 23 2024")),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    assert_eq!(run.events("noise").len(), 1, "{}", run.stdout);
    // `test` says why the stamp is masked, and does not mask the deadline.
    env.run(&["test", "api"])
        .says("\"Fri Feb 23 2024\": a stamp (next to a word")
        .never_says("\"2027-01-15\":");
    // The deadline moves: a change, whatever else moved with it.
    srv.set(
        "/api",
        Page::html(&doc("2026-12-05", "02:00-04:00", "Sat Feb 24 2024")),
    );
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    let diff = changed[0]["diff"].as_str().unwrap();
    assert!(diff.contains("+v1 is removed on 2026-12-05."), "{diff}");
    // So does the maintenance window.
    srv.set(
        "/api",
        Page::html(&doc("2026-12-05", "14:00-16:00", "Sat Feb 24 2024")),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
}

#[test]
fn ignore_patterns_apply_line_by_line() {
    let doc = |footer: &str| {
        format!(
            "<html><body><main><p>Price: 10 EUR</p></main><footer><p>Last update on {footer}</p><p>Imprint</p></footer></body></html>"
        )
    };
    let (srv, env) = watching(
        "p",
        Page::html(&doc("Tuesday at noon")),
        "ignore = ['^Last update on .*$']\nmasks = false",
    );
    env.run(&["check"]);
    srv.set("/p", Page::html(&doc("Friday, late")));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    // The lines around it still count.
    srv.set(
        "/p",
        Page::html(&doc("Friday, late").replace("10 EUR", "12 EUR")),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
}

/// A page unlike itself on every request is told once as `volatile` (with what to do), not
/// alerted on every check, and teaches no junk masks; its changes stay in the history.
#[test]
fn a_page_that_moves_as_a_whole_is_told_volatile_once() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    let body: String = (0..8).map(|i| format!("<p>{{{{N}}}}x{i}</p>")).collect();
    srv.set("/p", Page::html(&body));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n{}",
        hook.url("/hook"),
        one_watch("p", &srv.url("/p"), "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    let first = env.run(&["check"]);
    first.says("VOLATILE p");
    first.says("select` the part you need or `remove` the moving part");
    first.never_says("CHANGED");
    for _ in 0..3 {
        let run = env.run(&["check"]);
        assert_eq!(run.stdout, "", "told once");
    }
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 1, "one alert: the volatile one");
    assert_eq!(posts[0].json()["events"][0]["event"], "volatile");
    assert_eq!(
        env.query_i64("SELECT count(*) FROM events WHERE kind = 'changed'"),
        4,
        "every change is stored"
    );
    assert_eq!(
        env.query_i64(
            "SELECT count(*) FROM watches WHERE learned_masks IS NOT NULL AND learned_masks != '[]'"
        ),
        0,
        "no junk learned"
    );
    env.run(&["list"]).says("volatile since");
    let json = env.run(&["list", "--format", "json"]);
    assert!(
        json.stdout.contains("\"state\":\"volatile\""),
        "{}",
        json.stdout
    );
    // It settles: a steady page clears it, and a later edit alerts again.
    srv.set("/p", Page::html("<p>steady</p>"));
    for _ in 0..8 {
        env.run(&["check"]);
    }
    env.run(&["list"]).never_says("volatile");
    srv.set("/p", Page::html("<p>steady, edited</p>"));
    env.run(&["check"]).says("CHANGED p");
}

/// Without the refetch's evidence (a JSON API), a watch that changed on 7 of its last 8
/// checks is told volatile once.
#[test]
fn a_watch_that_changes_on_most_checks_is_told_volatile() {
    let api = |n: u32| Page::html(&format!("{{\"n\": {n}}}")).with_type("application/json");
    let (srv, env) = watching("api", api(0), "");
    env.run(&["check"]);
    let mut told = 0;
    for n in 1..=10 {
        srv.set("/api", api(n));
        let run = env.run(&["check", "--format", "json"]);
        told += run.events("volatile").len();
        if n <= 7 {
            assert_eq!(run.events("changed").len(), 1, "check {n}: {}", run.stdout);
        }
    }
    assert_eq!(told, 1, "told once");
}

/// A page seen identical across checks does not churn per request: its change stands as seen,
/// without a second fetch. Churn that starts later is a change once, then learned as before.
#[test]
fn a_page_seen_identical_is_fetched_once_on_a_change() {
    let (srv, env) = watching("p", Page::html("<p>Inbox</p><p>v1</p>"), "");
    let requests = |run: &crate::util::Run, before: usize| {
        assert_eq!(run.code, 0, "{run:?}");
        srv.seen("/p").len() - before
    };
    for _ in 0..2 {
        let run = env.run(&["check"]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    srv.set("/p", Page::html("<p>Inbox</p><p>v2</p>"));
    let before = srv.seen("/p").len();
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
    assert_eq!(requests(&run, before), 1, "no confirming refetch");
    // The same again, then a per-request token appears: news once (a new line) ...
    env.run(&["check"]);
    srv.set(
        "/p",
        Page::html("<p>Inbox</p><p>v2</p><p>Served by node-{{N}}</p>"),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
    // ... and on the next check, which differs again, fetched twice and learned: noise.
    let before = srv.seen("/p").len();
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(
        requests(&run, before),
        2,
        "the change confirmed by a refetch"
    );
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    assert_eq!(run.events("noise").len(), 1, "{}", run.stdout);
}
