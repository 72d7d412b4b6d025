//! Escalations: chat, then a text, then a call, until someone acknowledges; with a fake clock
//! (`FOREWARN_NOW`) and with a real wait. Each step is its own process, as from cron: nothing
//! is held in memory between them.

use crate::util::{Page, Server, TestEnv};

fn page(buy: bool) -> Page {
    let button = if buy {
        "<button id=\"buy\">Buy</button>"
    } else {
        ""
    };
    Page::html(&format!(
        "<html><body><main>{button}<p>shop</p></main></body></html>"
    ))
}

fn setup(second_after: &str) -> (Server, Server, TestEnv) {
    let srv = Server::start();
    let hook = Server::start();
    for p in ["/chat", "/sms", "/call"] {
        hook.set(p, Page::html("ok"));
    }
    srv.set("/shop", page(true));
    let channels: String = ["chat", "sms", "call"]
        .iter()
        .map(|c| {
            format!(
                "[channels.{c}]\ntype = \"webhook\"\nurl = \"{}\"\nbatch = \"none\"\n\n",
                hook.url(&format!("/{c}"))
            )
        })
        .collect();
    let toml = format!(
        "{channels}[escalations.oncall]\nsteps = [{{ notify = \"chat\" }}, {{ after = \"{second_after}\", notify = \"sms\" }}, {{ after = \"20m\", notify = \"call\" }}]\n\n\
         [[watch]]\nname = \"shop\"\nurl = \"{}\"\nconfirm_refetch = false\nescalate = \"oncall\"\nexpect.selectors = [\"#buy\"]\n",
        srv.url("/shop")
    );
    (srv, hook, TestEnv::new().watchlist(&toml))
}

fn at(minutes: i64) -> (&'static str, String) {
    let t = chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z").unwrap()
        + chrono::Duration::minutes(minutes);
    ("FOREWARN_NOW", t.to_rfc3339())
}

#[test]
fn steps_fire_in_turn_once_each_and_never_after_an_ack() {
    let (srv, hook, env) = setup("10m");
    let run = |args: &[&str], minutes: i64| {
        let (k, v) = at(minutes);
        env.run_env(args, &[(k, v.as_str())])
    };
    run(&["check"], 0);
    srv.set("/shop", page(false));
    run(&["check"], 1).says("CONTRACT BROKEN shop");
    let chat = hook.seen("/chat");
    assert_eq!(chat.len(), 1, "the first step at once");
    let msg = chat[0].json().to_string();
    let id = chat[0].json()["events"][0]["id"].as_i64().unwrap();
    assert!(
        msg.contains(&format!("forewarn ack {id}")),
        "says how to acknowledge: {msg}"
    );
    run(&["notify", "deliver"], 5);
    assert!(hook.seen("/sms").is_empty(), "not before its 10 minutes");
    run(&["notify", "deliver"], 12);
    assert_eq!(
        hook.seen("/sms").len(),
        1,
        "unacknowledged: the text message goes out"
    );
    run(&["notify", "deliver"], 13);
    assert_eq!(hook.seen("/sms").len(), 1, "never twice");
    assert_eq!(hook.seen("/chat").len(), 1);
    run(&["ack", "--list"], 13).says("shop");
    run(&["ack", "shop", "--note", "rolling back the extension"], 14)
        .says(&format!("acknowledged event {id} (shop: contract_broken)"));
    run(&["notify", "deliver"], 60);
    assert!(hook.seen("/call").is_empty(), "no call after the ack");
    run(&["ack", "--list"], 60).says("nothing escalating");
    let timeline = run(&["timeline", "--since", "30d"], 61);
    timeline.says("ACKNOWLEDGED");
    timeline.says("rolling back the extension");
    let again = run(&["ack", &id.to_string()], 62);
    assert_ne!(again.code, 0, "nothing left to acknowledge");
}

/// The same with a real wait: the second step fires from a later process, unacknowledged.
#[test]
fn an_unacknowledged_step_fires_after_a_real_wait() {
    let (srv, hook, env) = setup("2s");
    env.run(&["check"]);
    srv.set("/shop", page(false));
    env.run(&["check"]);
    assert_eq!(hook.seen("/chat").len(), 1);
    env.run(&["notify", "deliver"]);
    assert!(hook.seen("/sms").is_empty());
    std::thread::sleep(std::time::Duration::from_millis(2_300));
    env.run(&["notify", "deliver"])
        .says("1 notification(s) sent");
    assert_eq!(hook.seen("/sms").len(), 1);
    assert!(
        hook.seen("/call").is_empty(),
        "the third step waits 20 minutes more"
    );
}

#[test]
fn escalations_are_checked_at_load() {
    let env = TestEnv::new().watchlist(
        "[escalations.oncall]\nsteps = [{ notify = \"nowhere\" }]\n\n[[watch]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/\"\nescalate = \"on-call\"\n",
    );
    let run = env.run(&["list"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("`escalate` names `on-call`, but no [escalations.on-call]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `oncall`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("names `nowhere`, but no [channels.nowhere]"),
        "{}",
        run.stderr
    );
}
