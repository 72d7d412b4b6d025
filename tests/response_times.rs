//! `max_response_time`: a slower answer is degraded; `failures_before_alert` of them in a row
//! are a `degraded` event (warning, notified once), the next fast answer a `recovered`; `list`
//! shows the day's median and 95th percentile.

use std::time::Duration;

use crate::util::{Page, Server, TestEnv};

#[test]
fn slow_answers_in_a_row_are_degraded_then_recovered() {
    let srv = Server::start();
    let hook = Server::start();
    hook.set("/hook", Page::html("ok"));
    let slow = || Page::html("<p>status page</p>").delay(Duration::from_millis(350));
    srv.set("/status", slow());
    let env = TestEnv::new().watchlist(&format!(
        "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n\n\
         [[watch]]\nname = \"api\"\nurl = \"{}\"\nmax_response_time = \"150ms\"\nfailures_before_alert = 2\nnotify = [\"hook\"]\n",
        hook.url("/hook"),
        srv.url("/status")
    ));
    env.run(&["check"]).never_says("DEGRADED");
    let second = env.run(&["check", "--format", "json"]);
    let degraded = second.events("degraded");
    assert_eq!(degraded.len(), 1, "{}", second.stdout);
    assert!(degraded[0]["response_ms"].as_u64().unwrap() >= 350);
    assert_eq!(degraded[0]["max_response_ms"], 150);
    assert_eq!(degraded[0]["severity"], "warning");
    env.run(&["check"]).never_says("DEGRADED");
    let sent = hook.seen("/hook");
    assert_eq!(sent.len(), 1, "told once");
    assert_eq!(sent[0].json()["events"][0]["event"], "degraded");
    srv.set("/status", Page::html("<p>status page</p>"));
    let fast = env.run(&["check"]);
    fast.says("RECOVERED api");
    fast.says("answers within 150ms again");
    assert_eq!(hook.seen("/hook").len(), 2, "the recovery is told");
    let list = env.run(&["list"]);
    list.says("(p50 ");
    let json = env.run(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(v["responses_24h"], 4);
    assert!(v["response_p95_ms"].as_u64().unwrap() >= 350, "{v}");
    assert!(
        v["response_p50_ms"].as_u64().unwrap() >= 350,
        "three of four were slow: {v}"
    );
}
