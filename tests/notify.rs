//! Issue 4: notifications through real receivers: an HTTP server for webhooks, Slack and
//! Discord, a real SMTP server, a real D-Bus session bus with a notification server, and a
//! real program for `command`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::util::dbus::SessionBus;
use crate::util::smtp::SmtpServer;
use crate::util::{Page, Server, TestEnv, watching};

fn page(v: &str) -> Page {
    Page::html(&format!(
        "<html><body><main><p>{v}</p></main></body></html>"
    ))
}

fn watches(srv: &Server, n: usize, extra: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[watch]]\nname = \"w{i:02}\"\nurl = \"{}\"\nconfirm_refetch = false\n{extra}\n",
                srv.url(&format!("/p{i}"))
            )
        })
        .collect()
}

fn hmac_hex(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn one_deploy_touching_twelve_watches_is_one_signed_webhook_message() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    for i in 0..12 {
        srv.set(&format!("/p{i}"), page("v1"));
    }
    let toml = format!(
        "[defaults]\nnotify = [\"team-hook\"]\n\n[channels.team-hook]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"${{HOOK_SECRET}}\"\n\n{}",
        hook.url("/hook"),
        watches(&srv, 12, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    let secret = [("HOOK_SECRET", "s3cr3t-signing-key")];
    // First sight: baselines, nothing to tell anyone.
    let run = env.run_env(&["check"], &secret);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(hook.seen("/hook").is_empty());
    for i in 0..12 {
        srv.set(&format!("/p{i}"), page("v2"));
    }
    let run = env.run_env(&["check"], &secret);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 1, "one message for the whole pass");
    let post = &posts[0];
    let body = post.json();
    assert_eq!(body["forewarn"], 1);
    assert_eq!(body["channel"], "team-hook");
    assert_eq!(body["count"], 12);
    assert_eq!(body["events"].as_array().unwrap().len(), 12);
    assert_eq!(body["title"], "forewarn: 12 events from 12 watches");
    assert_eq!(body["events"][0]["event"], "changed");
    assert!(body["events"][0]["diff"].as_str().unwrap().contains("+v2"));
    assert!(body["text"].as_str().unwrap().contains("w00 (1 event)"));
    assert_eq!(post.headers["content-type"], "application/json");
    assert_eq!(
        post.headers["x-forewarn-signature"],
        format!("sha256={}", hmac_hex("s3cr3t-signing-key", &post.body))
    );
    assert_eq!(
        post.headers["x-forewarn-delivery"],
        body["id"].as_str().unwrap()
    );
    // Nothing new: nothing sent, and nothing sent twice.
    let run = env.run_env(&["check"], &secret);
    assert_eq!(run.code, 0);
    assert_eq!(hook.seen("/hook").len(), 1);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM outbox WHERE state = 'delivered'"),
        12
    );
    // The signing key is a secret: never stored.
    let db = env.stored_bytes();
    assert!(!String::from_utf8_lossy(&db).contains("s3cr3t-signing-key"));
}

#[test]
fn a_failed_delivery_is_retried_with_backoff_and_sent_once() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set(
        "/hook",
        Page::html("upstream down").fail_first(1, 503, None),
    );
    srv.set("/p0", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/hook"),
        watches(&srv, 1, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    let t0 = "2026-03-02T10:00:00Z";
    assert_eq!(env.run_env(&["check"], &[("FOREWARN_NOW", t0)]).code, 0);
    srv.set("/p0", page("v2"));
    let run = env.run_env(&["check"], &[("FOREWARN_NOW", "2026-03-02T10:01:00Z")]);
    assert_eq!(run.code, 0, "a delivery problem is not a watch failure");
    assert!(
        run.stderr
            .contains("notification to `hook` failed: http://127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert!(run.stderr.contains("stay queued"), "{}", run.stderr);
    assert_eq!(hook.seen("/hook").len(), 1);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM outbox WHERE state = 'pending' AND attempts = 1"),
        1
    );
    // Ten seconds later the backoff (30 s) has not passed: no new attempt.
    env.run_env(&["check"], &[("FOREWARN_NOW", "2026-03-02T10:01:10Z")]);
    assert_eq!(hook.seen("/hook").len(), 1);
    // A minute later it has: delivered, with the same delivery id.
    let run = env.run_env(&["check"], &[("FOREWARN_NOW", "2026-03-02T10:02:10Z")]);
    assert_eq!(run.stderr, "");
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].status, 503);
    assert_eq!(posts[1].status, 200);
    assert_eq!(
        posts[0].headers["x-forewarn-delivery"],
        posts[1].headers["x-forewarn-delivery"]
    );
    env.run_env(&["check"], &[("FOREWARN_NOW", "2026-03-02T10:30:00Z")]);
    assert_eq!(hook.seen("/hook").len(), 2, "never sent twice");
    let status = env.run(&["notify", "status"]);
    status.says("hook");
    assert!(
        status.stdout.lines().nth(1).unwrap().contains(" 1 "),
        "{}",
        status.stdout
    );
}

#[test]
fn a_change_detected_but_not_delivered_is_delivered_by_the_next_run() {
    // `--no-notify` stands in for a crash right after the pass committed: the event and its
    // outbox row are stored together; the next run delivers.
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    srv.set("/p0", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/hook"),
        watches(&srv, 1, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    srv.set("/p0", page("v2"));
    let run = env.run(&["check", "--no-notify"]);
    run.says("CHANGED w00");
    assert!(hook.seen("/hook").is_empty());
    assert_eq!(
        env.query_i64(
            "SELECT count(*) FROM outbox o JOIN events e ON e.id = o.event_id
             WHERE o.state = 'pending' AND e.kind = 'changed'"
        ),
        1
    );
    let list = env.run(&["list"]);
    list.says("1 pending");
    // The next run finds nothing new upstream, and still delivers the change.
    let run = env.run(&["check"]);
    assert_eq!(run.stdout, "");
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].json()["events"][0]["event"], "changed");
    let list = env.run(&["list"]);
    list.says("1 sent");
}

/// A permanent 404 under cron: FAILED until it has been alerted, then once a day, not every
/// five minutes. The exit code still says a watch failed.
#[test]
fn an_alerted_failure_is_printed_once_a_day() {
    let (_srv, env) = watching("gone", Page::html("gone").status(404), "retries = 0");
    let at = |t: &str| env.run_env(&["check"], &[("FOREWARN_NOW", t)]);
    for t in [
        "2026-12-01T10:00:00Z",
        "2026-12-01T10:05:00Z",
        "2026-12-01T10:10:00Z",
    ] {
        let run = at(t);
        assert_eq!(run.code, 2, "{run:?}");
        run.says("FAILED gone");
    }
    let quiet = at("2026-12-01T10:15:00Z");
    assert_eq!(quiet.code, 2, "{quiet:?}");
    assert_eq!(quiet.stdout, "", "already alerted: nothing to mail");
    let later = at("2026-12-01T23:00:00Z");
    assert_eq!(later.stdout, "");
    let tomorrow = at("2026-12-02T10:16:00Z");
    tomorrow.says("FAILED gone");
    assert_eq!(at("2026-12-02T10:21:00Z").stdout, "");
    env.run(&["list"]).says("failing");
}

#[test]
fn failures_alert_once_after_the_threshold_then_recovered() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    srv.set("/p0", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\nfailures_before_alert = 3\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n{}",
        hook.url("/hook"),
        watches(&srv, 1, "retries = 0")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    // A single blip: no alert, and no all-clear for it either.
    srv.set("/p0", page("v1").status(500));
    assert_eq!(env.run(&["check"]).code, 2);
    srv.set("/p0", page("v1"));
    assert_eq!(env.run(&["check"]).code, 0);
    assert!(hook.seen("/hook").is_empty(), "a blip is not an emergency");
    // A real outage: five failed checks, one alert after the third.
    srv.set("/p0", page("v1").status(500));
    for i in 1..=5 {
        env.run(&["check"]);
        let n = hook.seen("/hook").len();
        assert_eq!(n, usize::from(i >= 3), "after failed check {i}");
    }
    let alert = hook.seen("/hook")[0].json();
    assert_eq!(alert["events"][0]["event"], "failing");
    assert_eq!(alert["events"][0]["severity"], "warning");
    assert!(
        alert["events"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("failing for 3 checks in a row"),
        "{alert}"
    );
    srv.set("/p0", page("v1"));
    env.run(&["check"]);
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].json()["events"][0]["event"], "recovered");
    env.run(&["check"]);
    assert_eq!(hook.seen("/hook").len(), 2);
}

#[test]
fn remind_every_repeats_a_failing_alert_while_it_lasts() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    srv.set("/p0", page("v1").status(500));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\nfailures_before_alert = 1\nremind_every = \"1h\"\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/hook"),
        watches(&srv, 1, "retries = 0")
    );
    let env = TestEnv::new().watchlist(&toml);
    for (t, expect) in [
        ("2026-03-02T10:00:00Z", 1),
        ("2026-03-02T10:30:00Z", 1),
        ("2026-03-02T11:00:01Z", 2),
        ("2026-03-02T11:30:00Z", 2),
    ] {
        env.run_env(&["check"], &[("FOREWARN_NOW", t)]);
        assert_eq!(hook.seen("/hook").len(), expect, "at {t}");
    }
    assert_eq!(hook.seen("/hook")[1].json()["events"][0]["reminder"], true);
}

#[test]
fn routing_and_min_severity() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/all", Page::html("ok"));
    hook.set("/pager", Page::html("ok"));
    srv.set(
        "/p0",
        Page::html("<main><button id=\"buy\">Buy</button><p>v1</p></main>"),
    );
    srv.set("/quiet", page("v1"));
    let toml = format!(
        "[channels.all]\ntype = \"webhook\"\nurl = \"{}\"\n[channels.pager]\ntype = \"webhook\"\nurl = \"{}\"\nmin_severity = \"critical\"\n\
         [[watch]]\nname = \"shop\"\nurl = \"{}\"\nconfirm_refetch = false\nnotify = [\"all\", \"pager\"]\nexpect.selectors = [\"#buy\"]\n\
         [[watch]]\nname = \"quiet\"\nurl = \"{}\"\nconfirm_refetch = false\n",
        hook.url("/all"),
        hook.url("/pager"),
        srv.url("/p0"),
        srv.url("/quiet"),
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    // An ordinary change: the chat channel, not the pager. A watch without `notify`: nothing.
    srv.set(
        "/p0",
        Page::html("<main><button id=\"buy\">Buy</button><p>v2</p></main>"),
    );
    srv.set("/quiet", page("v2"));
    env.run(&["check"]);
    assert_eq!(hook.seen("/all").len(), 1);
    assert_eq!(hook.seen("/all")[0].json()["count"], 1);
    assert!(hook.seen("/pager").is_empty());
    // The button the integration clicks is gone: a critical contract break pages too.
    srv.set("/p0", Page::html("<main><p>v3</p></main>"));
    env.run(&["check"]);
    let pager = hook.seen("/pager");
    assert_eq!(pager.len(), 1);
    let body = pager[0].json();
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["events"][0]["event"], "contract_broken");
    assert!(body["title"].as_str().unwrap().starts_with("CRITICAL shop"));
    let all = hook.seen("/all");
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[1].json()["count"],
        2,
        "change and contract break together"
    );
}

#[test]
fn a_batch_window_collects_across_passes_and_critical_goes_at_once() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    srv.set("/p0", page("v1"));
    srv.set("/p1", page("v1"));
    srv.set("/c", Page::html("<main><b id=\"k\">k</b></main>"));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"10m\"\nimmediate = \"critical\"\n{}\
         [[watch]]\nname = \"contract\"\nurl = \"{}\"\nconfirm_refetch = false\nexpect.selectors = [\"#k\"]\n",
        hook.url("/hook"),
        watches(&srv, 2, ""),
        srv.url("/c")
    );
    let env = TestEnv::new().watchlist(&toml);
    let at = |t: &str| [("FOREWARN_NOW", format!("2026-03-02T{t}Z"))];
    let run = |t: &str| {
        let e = at(t);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.run_env(&["check"], &e)
    };
    run("10:00:00");
    srv.set("/p0", page("v2"));
    run("10:01:00");
    assert!(hook.seen("/hook").is_empty(), "held in the window");
    srv.set("/p1", page("v2"));
    run("10:06:00");
    assert!(hook.seen("/hook").is_empty(), "still in the window");
    // A critical event does not wait.
    srv.set("/c", Page::html("<main><i>k</i></main>"));
    run("10:07:00");
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].json()["events"][0]["event"], "contract_broken");
    // The window opened at 10:01 closes at 10:11: one digest of the two page changes and of
    // the contract page's own change (its element `b#k` went: a structure change).
    run("10:11:30");
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 2);
    let digest = posts[1].json();
    assert_eq!(digest["count"], 3, "{digest}");
    assert_eq!(
        digest["watches"],
        serde_json::json!(["w00", "w01", "contract"])
    );
}

#[test]
fn batch_none_sends_each_event_on_its_own() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    for i in 0..3 {
        srv.set(&format!("/p{i}"), page("v1"));
    }
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n{}",
        hook.url("/hook"),
        watches(&srv, 3, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    for i in 0..3 {
        srv.set(&format!("/p{i}"), page("v2"));
    }
    env.run(&["check"]);
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 3);
    let mut titles: Vec<String> = posts
        .iter()
        .map(|p| p.json()["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    assert_eq!(titles, ["w00: changed", "w01: changed", "w02: changed"]);
}

/// A Slack digest of a JSON API's two structure changes and a page's edit: every fact of
/// each, the critical schema change first.
#[test]
fn a_slack_digest_tells_every_fact_critical_first() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/slack", Page::html("ok"));
    let api = |v: &str| Page::html(v).with_type("application/json");
    srv.set("/p0", page("v1"));
    srv.set(
        "/api",
        api(r#"{"data": [{"id": 1, "unread": true, "size": 10}]}"#),
    );
    let toml = format!(
        "[defaults]\nnotify = [\"slack\"]\n[channels.slack]\ntype = \"slack\"\nurl = \"{}\"\n{}[[watch]]\nname = \"inbox-api\"\nurl = \"{}\"\n",
        hook.url("/slack"),
        watches(&srv, 1, ""),
        srv.url("/api")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    srv.set("/p0", page("v2"));
    srv.set("/api", api(r#"{"data": [{"id": 1, "size": "10 KB"}]}"#));
    env.run(&["check"]);
    let posts = hook.seen("/slack");
    assert_eq!(posts.len(), 1, "one digest");
    let text = posts[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.contains("unread"), "{text}");
    assert!(
        text.contains("number -&gt; string") || text.contains("number -> string"),
        "{text}"
    );
    assert!(text.contains("+v2"), "{text}");
    let (api_at, page_at) = (
        text.find("inbox-api (").unwrap(),
        text.find("w00 (").unwrap(),
    );
    assert!(api_at < page_at, "critical first: {text}");
}

#[test]
fn slack_and_discord_get_their_formats_cut_to_their_limits() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/slack", Page::html("ok"));
    hook.set("/discord", Page::html("ok"));
    let lines = |v: &str| -> String {
        (0..600)
            .map(|i| format!("<p>line {i} {v} <b>&amp;</b> @everyone</p>"))
            .collect()
    };
    srv.set("/p0", Page::html(&format!("<main>{}</main>", lines("a"))));
    let toml = format!(
        "[defaults]\nnotify = [\"slack\", \"discord\"]\n[channels.slack]\ntype = \"slack\"\nurl = \"{}\"\n[channels.discord]\ntype = \"discord\"\nurl = \"{}\"\n{}",
        hook.url("/slack"),
        hook.url("/discord"),
        watches(&srv, 1, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    srv.set("/p0", Page::html(&format!("<main>{}</main>", lines("b"))));
    let run = env.run(&["check"]);
    assert_eq!(run.stderr, "");
    let slack = hook.seen("/slack")[0].json();
    let text = slack["text"].as_str().unwrap();
    assert!(text.starts_with("*w00: changed*\n"), "{text}");
    assert!(text.chars().count() <= 3_900);
    assert!(text.contains("cut to fit Slack's message limit"), "{text}");
    assert!(text.contains("&amp;"), "Slack's control characters escaped");
    assert!(!text.contains("<b>"));
    let discord = hook.seen("/discord")[0].json();
    let content = discord["content"].as_str().unwrap();
    assert!(content.starts_with("**w00: changed**\n"), "{content}");
    assert!(content.chars().count() <= 2_000);
    assert!(content.contains("cut to fit Discord's message limit"));
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));
}

#[test]
fn notify_test_sends_a_sample_and_says_what_went_wrong() {
    let hook = Server::start();
    hook.set("/ok", Page::html("ok"));
    hook.set(
        "/gone",
        Page::html(r#"{"message": "Unknown Webhook", "code": 10015}"#)
            .status(404)
            .with_type("application/json"),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let toml = format!(
        "[channels.ok]\ntype = \"webhook\"\nurl = \"{}\"\n[channels.gone]\ntype = \"discord\"\nurl = \"{}\"\n\
         [channels.refused]\ntype = \"slack\"\nurl = \"http://127.0.0.1:{closed_port}/services/T0/B0/XYZSECRET\"\n\
         [channels.unset]\ntype = \"webhook\"\nurl = \"${{NOT_SET_HOOK}}\"\n\
         [[watch]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\n",
        hook.url("/ok"),
        hook.url("/gone"),
    );
    let env = TestEnv::new().watchlist(&toml);
    let ok = env.run(&["notify", "test", "ok"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("sent a test message through `ok`"));
    let sample = hook.seen("/ok")[0].json();
    assert_eq!(sample["events"][0]["event"], "test");

    let gone = env.run(&["notify", "test", "gone"]);
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr.contains("HTTP 404 Not Found: Unknown Webhook"),
        "{}",
        gone.stderr
    );

    let refused = env.run(&["notify", "test", "refused"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("cannot connect to http://127.0.0.1:"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.to_lowercase().contains("refused"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("XYZSECRET"),
        "the webhook's secret path is never shown"
    );

    let unset = env.run(&["notify", "test", "unset"]);
    assert!(
        unset.stderr.contains("`NOT_SET_HOOK` is not set"),
        "{}",
        unset.stderr
    );

    let typo = env.run(&["notify", "test", "gnoe"]);
    assert_eq!(typo.code, 3);
    assert!(
        typo.stderr.contains("did you mean `gone`?"),
        "{}",
        typo.stderr
    );
}

#[test]
fn command_gets_the_event_on_stdin_and_forewarn_variables() {
    let srv = Server::start();
    srv.set("/p0", page("v1"));
    let env = TestEnv::new();
    let out = env.path().join("out");
    let toml = format!(
        "[defaults]\nnotify = [\"script\"]\n[channels.script]\ntype = \"command\"\ncommand = [\"sh\", \"-c\", \"cat > {0}.json; env | grep ^FOREWARN_ | sort > {0}.env\"]\n{1}",
        out.display(),
        watches(&srv, 1, "")
    );
    let env = env.watchlist(&toml);
    env.run(&["check"]);
    srv.set("/p0", page("v2"));
    let run = env.run(&["check"]);
    assert_eq!(run.stderr, "");
    let json: serde_json::Value =
        serde_json::from_str(&env.read("out.json")).expect("the event as JSON on stdin");
    assert_eq!(json["events"][0]["event"], "changed");
    assert_eq!(json["events"][0]["watch"], "w00");
    let vars = env.read("out.env");
    for want in [
        "FOREWARN_CHANNEL=script",
        "FOREWARN_EVENT=changed",
        "FOREWARN_WATCH=w00",
        "FOREWARN_SEVERITY=info",
        "FOREWARN_COUNT=1",
        "FOREWARN_TITLE=w00: changed",
    ] {
        assert!(vars.contains(want), "{want} in\n{vars}");
    }
    assert!(vars.contains(&format!("FOREWARN_URL={}", srv.url("/p0"))));
}

#[test]
fn a_slow_or_failing_command_is_stopped_and_reported() {
    let env = TestEnv::new().watchlist(
        "[channels.slow]\ntype = \"command\"\ncommand = \"sleep 20\"\ntimeout = \"1s\"\n\
         [channels.bad]\ntype = \"command\"\ncommand = \"echo 'token rejected' >&2; exit 3\"\n\
         [channels.missing]\ntype = \"command\"\ncommand = [\"/nonexistent/notifier\"]\n\
         [[watch]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\n",
    );
    let started = std::time::Instant::now();
    let slow = env.run(&["notify", "test", "slow"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        slow.stderr
            .contains("did not finish within 1s and was stopped"),
        "{}",
        slow.stderr
    );
    let bad = env.run(&["notify", "test", "bad"]);
    assert!(
        bad.stderr.contains("exited with status 3: token rejected"),
        "{}",
        bad.stderr
    );
    let missing = env.run(&["notify", "test", "missing"]);
    assert!(
        missing.stderr.contains("no such program"),
        "{}",
        missing.stderr
    );
}

#[test]
fn email_goes_through_a_real_smtp_server() {
    let smtp = SmtpServer::start(None);
    let srv = Server::start();
    srv.set("/p0", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"ops-mail\"]\n[channels.ops-mail]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"forewarn <forewarn@example.com>\"\nto = [\"ops@example.com\", \"dev@example.com\"]\n{}",
        smtp.port,
        watches(&srv, 1, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    srv.set("/p0", page("v2 with ünïcode"));
    let run = env.run(&["check"]);
    assert_eq!(run.stderr, "");
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.contains("Subject: [forewarn] w00: changed"), "{mail}");
    assert!(
        mail.contains("From: forewarn <forewarn@example.com>"),
        "{mail}"
    );
    // The headers providers insist on.
    assert!(mail.contains("MIME-Version: 1.0"), "{mail}");
    assert!(mail.contains("\nDate: "), "{mail}");
    assert!(
        mail.lines()
            .any(|l| l.starts_with("Message-ID: <forewarn.") && l.ends_with("@example.com>")),
        "{mail}"
    );
    assert!(mail.contains("ops@example.com") && mail.contains("dev@example.com"));
    // The body carries the diff (quoted-printable or plain, depending on the characters).
    let decoded = mail.replace("=\r\n", "").replace("=\n", "");
    assert!(decoded.contains("-v1"), "{mail}");
    assert!(decoded.contains(srv.url("/p0").as_str()), "{mail}");
    let test = env.run(&["notify", "test", "ops-mail"]);
    assert_eq!(test.code, 0, "{}", test.stderr);
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn email_errors_are_clear() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = TestEnv::new().watchlist(&format!(
        "[channels.mail]\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"a@example.com\"\nto = \"b@example.com\"\n[[watch]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\n"
    ));
    let run = env.run(&["notify", "test", "mail"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!("SMTP 127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains("refused"),
        "{}",
        run.stderr
    );
}

#[test]
fn desktop_notifications_arrive_on_a_real_session_bus() {
    let bus = SessionBus::with_server();
    let srv = Server::start();
    srv.set(
        "/p0",
        Page::html("<main><button id=\"buy\">Buy</button><p>v1</p></main>"),
    );
    let toml = format!(
        "[defaults]\nnotify = [\"desktop\"]\n[channels.desktop]\ntype = \"desktop\"\n{}",
        watches(&srv, 1, "expect.selectors = [\"#buy\"]")
    );
    let env = TestEnv::new().watchlist(&toml);
    let dbus = [("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())];
    env.run_env(&["check"], &dbus);
    srv.set(
        "/p0",
        Page::html("<main><button id=\"buy\">Buy</button><p>v2</p></main>"),
    );
    let run = env.run_env(&["check"], &dbus);
    assert_eq!(run.stderr, "");
    let got = bus.notified();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].app_name, "forewarn");
    assert_eq!(got[0].summary, "w00: changed");
    assert!(got[0].body.contains("+1 -1 line"), "{}", got[0].body);
    assert!(got[0].body.contains("+v2"), "{}", got[0].body);
    assert_eq!(got[0].urgency, Some(0), "info is low urgency");
    assert_eq!(got[0].actions, ["default", "Open page"]);
    // A broken contract is critical.
    srv.set("/p0", Page::html("<main><p>v2</p></main>"));
    env.run_env(&["check"], &dbus);
    let got = bus.notified();
    assert_eq!(got.len(), 2);
    // The content changed too: one digest of both, as loud as its loudest event.
    assert_eq!(got[1].summary, "CRITICAL w00: 2 events");
    assert!(
        got[1].body.contains("contract broken [critical]"),
        "{}",
        got[1].body
    );
    assert_eq!(got[1].urgency, Some(2));
}

#[test]
fn desktop_without_a_bus_or_a_server_says_which() {
    let env = TestEnv::new().watchlist(
        "[channels.desktop]\ntype = \"desktop\"\n[[watch]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\n",
    );
    let no_bus = env.run(&["notify", "test", "desktop"]);
    assert_eq!(no_bus.code, 1);
    assert!(
        no_bus.stderr.contains("no D-Bus session bus"),
        "{}",
        no_bus.stderr
    );
    let bus = SessionBus::start();
    let no_server = env.run_env(
        &["notify", "test", "desktop"],
        &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())],
    );
    assert_eq!(no_server.code, 1);
    assert!(
        no_server.stderr.contains("no notification server"),
        "{}",
        no_server.stderr
    );
}

#[test]
fn channel_mistakes_are_load_errors_with_line_and_hint() {
    let env = TestEnv::new().watchlist(
        "[defaults]\nnotify = [\"team-slak\"]\n\n[channels.team-slack]\ntype = \"slack\"\nurl = \"https://hooks.example.com/x\"\n\n\
         [channels.mail]\ntype = \"email\"\nurl = \"https://x.example.com/\"\n\n\
         [channels.odd]\ntype = \"pager\"\n\n\
         [channels.hook]\ntype = \"webhook\"\nurl = \"https://x.example.com/\"\nbatch = \"sometimes\"\n\n\
         [[watch]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\n",
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3);
    let e = &run.stderr;
    assert!(
        e.contains("main.toml:2:10")
            && e.contains("`notify` names `team-slak`, but no [channels.team-slak] is declared"),
        "{e}"
    );
    assert!(e.contains("did you mean `team-slack`?"), "{e}");
    assert!(
        e.contains("channel `mail` (type = \"email\") does not take `url`"),
        "{e}"
    );
    assert!(e.contains("needs `host`"), "{e}");
    assert!(e.contains("unknown channel type `pager`"), "{e}");
    assert!(e.contains("invalid `batch`"), "{e}");
}

#[test]
fn channels_in_forewarn_toml_beside_the_watchlists() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    srv.set("/p0", page("v1"));
    let env = TestEnv::new().watchlist(&format!(
        "[defaults]\nnotify = [\"hook\"]\n{}",
        watches(&srv, 1, "")
    ));
    env.file(
        "forewarn.toml",
        &format!(
            "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
            hook.url("/hook")
        ),
    );
    env.run(&["check"]);
    srv.set("/p0", page("v2"));
    let run = env.run(&["check"]);
    assert_eq!(run.stderr, "");
    assert_eq!(hook.seen("/hook").len(), 1);
}

/// A digest of three changes is one message: the timeline has one NOTIFIED row for it, with
/// its count of events, not one per event.
#[test]
fn timeline_has_one_row_per_message() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/ok", Page::html("ok"));
    for i in 0..3 {
        srv.set(&format!("/p{i}"), page("v1"));
    }
    let toml = format!(
        "[defaults]\nnotify = [\"ok\"]\n[channels.ok]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/ok"),
        watches(&srv, 3, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    for i in 0..3 {
        srv.set(&format!("/p{i}"), page("v2"));
    }
    env.run(&["check"]);
    assert_eq!(hook.seen("/ok").len(), 1, "one digest");
    let text = env.run(&["timeline", "--format", "text"]);
    assert_eq!(
        text.stdout.matches("NOTIFIED").count(),
        1,
        "{}",
        text.stdout
    );
    text.says("3 watches");
    text.says("notified ok: one message with 3 events (3 changed)");
    let json = env.run(&["timeline", "--format", "json"]);
    let sent = json.events("notified");
    assert_eq!(sent.len(), 1, "{}", json.stdout);
    assert_eq!(sent[0]["events"], 3);
    assert_eq!(sent[0]["event_ids"].as_array().unwrap().len(), 3);
}

#[test]
fn report_and_timeline_show_what_was_delivered_pending_and_failed() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/ok", Page::html("ok"));
    hook.set("/down", Page::html("no").status(500));
    srv.set("/p0", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"ok\", \"down\"]\n[channels.ok]\ntype = \"webhook\"\nurl = \"{}\"\n[channels.down]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/ok"),
        hook.url("/down"),
        watches(&srv, 1, "")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    srv.set("/p0", page("v2"));
    env.run(&["check"]);
    let report = env.run(&["report"]);
    assert!(
        report
            .stdout
            .contains("notified: down (pending, 1 attempt: "),
        "{}",
        report.stdout
    );
    report.says("HTTP 500");
    report.says(", ok (delivered 20");
    let json = env.run(&["report", "--format", "json"]);
    let ev = &json.events("changed")[0];
    assert_eq!(ev["notifications"][0]["channel"], "down");
    assert_eq!(ev["notifications"][0]["state"], "pending");
    assert_eq!(ev["notifications"][1]["state"], "delivered");
    let timeline = env.run(&["timeline", "--format", "text"]);
    timeline.says("notified ok");
    let status = env.run(&["notify", "status"]);
    status.says("HTTP 500");
}

#[test]
fn watch_delivers_after_each_pass_and_sends_what_an_earlier_run_left() {
    use crate::scheduler::Daemon;
    use std::time::Duration;
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    srv.set("/p0", page("v1"));
    srv.set("/p1", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/hook"),
        watches(&srv, 2, "every = \"1s\"")
    );
    let env = TestEnv::new().watchlist(&toml);
    env.run(&["check"]);
    // An earlier run detected a change and stopped before delivering it.
    srv.set("/p0", page("v2"));
    env.run(&["check", "--no-notify"]);
    assert!(hook.seen("/hook").is_empty());
    let mut d = Daemon::start(&env);
    d.wait_for("\"message\":\"notified\"", Duration::from_secs(10));
    let first = hook.seen("/hook");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].json()["events"][0]["watch"], "w00");
    // A change while it runs: delivered after the pass that found it.
    srv.set("/p1", page("v2"));
    let start = std::time::Instant::now();
    while hook.seen("/hook").len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hook.seen("/hook")[1].json()["events"][0]["watch"], "w01");
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
    assert_eq!(hook.seen("/hook").len(), 2, "each event once");
}

#[test]
fn check_due_sends_a_retry_that_came_due_with_no_watch_due() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("down").fail_first(1, 502, None));
    srv.set("/p0", page("v1"));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\"]\n[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
        hook.url("/hook"),
        watches(&srv, 1, "every = \"1h\"")
    );
    let env = TestEnv::new().watchlist(&toml);
    let at = |t: &str| env.run_env(&["check", "--due"], &[("FOREWARN_NOW", t)]);
    at("2026-03-02T10:00:00Z");
    srv.set("/p0", page("v2"));
    at("2026-03-02T11:00:01Z");
    assert_eq!(hook.seen("/hook").len(), 1, "tried once, failed");
    // Half an hour later no watch is due, but the retry is.
    let run = at("2026-03-02T11:30:00Z");
    assert_eq!(run.stderr, "");
    let posts = hook.seen("/hook");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].status, 200);
    assert_eq!(srv.seen("/p0").len(), 2, "nothing fetched for it");
}

#[test]
fn email_with_starttls_to_a_relay_with_its_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::util::tls::self_signed(dir.path());
    let smtp = SmtpServer::start(Some((&cert, &key)));
    let env = TestEnv::new().watchlist(&format!(
        "[channels.trusted]\ntype = \"email\"\nhost = \"localhost\"\nport = {port}\ntls = \"starttls\"\nca_file = \"{}\"\nfrom = \"a@example.com\"\nto = \"b@example.com\"\n\
         [channels.untrusted]\ntype = \"email\"\nhost = \"localhost\"\nport = {port}\nfrom = \"a@example.com\"\nto = \"b@example.com\"\n\
         [[watch]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/\"\n",
        cert.display(),
        port = smtp.port
    ));
    let run = env.run(&["notify", "test", "trusted"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(smtp.messages().len(), 1);
    let run = env.run(&["notify", "test", "untrusted"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("set `ca_file`"), "{}", run.stderr);
    assert_eq!(
        smtp.messages().len(),
        1,
        "nothing sent over an untrusted connection"
    );
}

#[test]
fn secrets_never_reach_notifications_or_delivery_errors() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hooks/h00k-s3cr3t", Page::html("ok"));
    hook.set("/down/h00k-s3cr3t", Page::html("no").status(500));
    srv.set("/p?key=k3y-s3cr3t", page("v1").status(500));
    let toml = format!(
        "[defaults]\nnotify = [\"hook\", \"down\"]\nfailures_before_alert = 1\n\
         [channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{0}/hooks/${{HOOK_TOKEN}}\"\nsecret = \"${{SIGNING}}\"\n\
         [channels.down]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{0}/down/${{HOOK_TOKEN}}\"\n\
         [[watch]]\nname = \"private\"\nurl = \"{1}\"\nretries = 0\nheaders = {{ Authorization = \"Bearer ${{TOKEN}}\" }}\n",
        hook.port,
        srv.url("/p?key=${API_KEY}")
    );
    let env = TestEnv::new().watchlist(&toml);
    let secrets = [
        ("API_KEY", "k3y-s3cr3t"),
        ("TOKEN", "t0ken-s3cr3t"),
        ("HOOK_TOKEN", "h00k-s3cr3t"),
        ("SIGNING", "s1gn-s3cr3t"),
    ];
    let run = env.run_env(&["check"], &secrets);
    assert_eq!(run.code, 2);
    let posts = hook.seen("/hooks/h00k-s3cr3t");
    assert_eq!(posts.len(), 1, "{}", run.stderr);
    assert_eq!(posts[0].json()["events"][0]["event"], "failing");
    let status = env.run_env(&["notify", "status"], &secrets);
    let timeline = env.run_env(&["timeline", "--format", "json"], &secrets);
    let report = env.run_env(&["report", "--all"], &secrets);
    let db = env.stored_bytes();
    let wal = std::fs::read(env.path().join("forewarn.db-wal")).unwrap_or_default();
    for (_, secret) in secrets {
        for text in [
            &run.stdout,
            &run.stderr,
            &status.stdout,
            &timeline.stdout,
            &report.stdout,
            &String::from_utf8_lossy(&posts[0].body).into_owned(),
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
    assert!(
        run.stderr.contains("notification to `down` failed"),
        "{}",
        run.stderr
    );
}
