//! The phone and pager channels against a local server that checks the request each service
//! documents: ntfy, PagerDuty (trigger and resolve), Telegram and Twilio (text and call).
//! Their secrets come from the environment and appear in no output and no database.

use crate::util::{Page, Server, TestEnv};

fn page(v: &str) -> Page {
    Page::html(&format!(
        "<html><body><main><button id=\"buy\">Buy</button><p>{v}</p></main></body></html>"
    ))
}

/// A watchlist with one channel and one watch routed to it.
fn with_channel(srv: &Server, channel: &str, watch_extra: &str) -> TestEnv {
    srv.set("/app", page("v1"));
    TestEnv::new().watchlist(&format!(
        "[channels.phone]\n{channel}\nbatch = \"none\"\n\n[[watch]]\nname = \"shop\"\nurl = \"{}\"\nconfirm_refetch = false\nnotify = [\"phone\"]\n{watch_extra}\n",
        srv.url("/app")
    ))
}

fn assert_secret_absent(env: &TestEnv, runs: &[&crate::util::Run], secret: &str) {
    for r in runs {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{r:?}"
        );
    }
    let db = env.stored_bytes();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "in the database"
    );
}

#[test]
fn ntfy_publishes_to_the_topic_with_priority_and_tags() {
    let srv = Server::start();
    let ntfy = Server::start();
    ntfy.set(
        "/",
        Page::html("{\"id\":\"x\"}").with_type("application/json"),
    );
    let env = with_channel(
        &srv,
        &format!(
            "type = \"ntfy\"\nurl = \"{}\"\ntoken = \"${{NTFY_TOKEN}}\"",
            ntfy.url("/vendor-alerts")
        ),
        "expect.selectors = [\"#buy\"]",
    );
    let token = ("NTFY_TOKEN", "tk_ntfy_5e1f00d");
    let first = env.run_env(&["check"], &[token]);
    srv.set("/app", Page::html("<main><p>v2</p></main>"));
    let run = env.run_env(&["check"], &[token]);
    // The broken contract and the change, one message each (`batch = "none"`).
    let seen = ntfy.seen("/");
    assert_eq!(seen.len(), 2, "{run:?}");
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {}", token.1)
    );
    let body = seen
        .iter()
        .map(|s| s.json())
        .find(|b| b["priority"] == 5)
        .expect("the critical one");
    assert_eq!(body["topic"], "vendor-alerts");
    assert_eq!(body["priority"], 5, "critical: a contract broke");
    assert_eq!(body["tags"][0], "rotating_light");
    assert!(
        body["title"].as_str().unwrap().starts_with("CRITICAL shop"),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("#buy"), "{body}");
    assert_eq!(body["click"], srv.url("/app"));
    assert_secret_absent(&env, &[&first, &run], token.1);
}

#[test]
fn pagerduty_triggers_once_per_condition_and_resolves_it() {
    let srv = Server::start();
    let pd = Server::start();
    pd.set(
        "/v2/enqueue",
        Page::html("{\"status\":\"success\"}")
            .with_type("application/json")
            .status(202),
    );
    let env = with_channel(
        &srv,
        &format!(
            "type = \"pagerduty\"\nrouting_key = \"${{PD_ROUTING_KEY}}\"\napi_url = \"{}\"\nmin_severity = \"critical\"",
            pd.url("")
        ),
        "expect.selectors = [\"#buy\"]",
    );
    let key = ("PD_ROUTING_KEY", "R0UT1NGKEY0123456789abcdef012345");
    let runs = vec![env.run_env(&["check"], &[key])];
    srv.set("/app", Page::html("<main><p>v2</p></main>"));
    let broke = env.run_env(&["check"], &[key]);
    let sent = pd.seen("/v2/enqueue");
    assert_eq!(sent.len(), 1, "{broke:?}");
    let trigger = sent[0].json();
    assert_eq!(trigger["routing_key"], key.1);
    assert_eq!(trigger["event_action"], "trigger");
    let dedup = trigger["dedup_key"].as_str().unwrap().to_string();
    assert!(dedup.starts_with("forewarn/shop/contract"), "{dedup}");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], srv.url("/app"));
    assert!(
        trigger["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("shop")
    );
    // Back: the same incident is resolved, though contract_restored is not critical.
    srv.set("/app", page("v3"));
    let back = env.run_env(&["check"], &[key]);
    let sent = pd.seen("/v2/enqueue");
    assert_eq!(sent.len(), 2, "{back:?}");
    let resolve = sent[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], dedup.as_str());
    assert!(resolve.get("payload").is_none());
    let mut all = runs;
    all.push(broke);
    all.push(back);
    let refs: Vec<&crate::util::Run> = all.iter().collect();
    assert_secret_absent(&env, &refs, key.1);
}

#[test]
fn telegram_sends_the_bots_message_to_the_chat() {
    let srv = Server::start();
    let tg = Server::start();
    let token = ("TG_BOT_TOKEN", "123456:AAHsecretTelegramToken");
    let path = format!("/bot{}/sendMessage", token.1);
    tg.set(
        &path,
        Page::html("{\"ok\":true}").with_type("application/json"),
    );
    let env = with_channel(
        &srv,
        &format!(
            "type = \"telegram\"\nbot_token = \"${{TG_BOT_TOKEN}}\"\nchat_id = \"-100200300\"\napi_url = \"{}\"",
            tg.url("")
        ),
        "",
    );
    let first = env.run_env(&["check"], &[token]);
    srv.set("/app", page("v2"));
    let run = env.run_env(&["check"], &[token]);
    let seen = tg.seen(&path);
    assert_eq!(seen.len(), 1, "{run:?}");
    let body = seen[0].json();
    assert_eq!(body["chat_id"], "-100200300");
    assert!(body["text"].as_str().unwrap().contains("+v2"), "{body}");
    assert_eq!(body["disable_web_page_preview"], true);
    assert_secret_absent(&env, &[&first, &run], token.1);
}

#[test]
fn twilio_texts_and_calls_each_number() {
    let srv = Server::start();
    let tw = Server::start();
    tw.set(
        "/2010-04-01/Accounts/AC0123456789/Messages.json",
        Page::html("{\"sid\":\"SM1\"}")
            .with_type("application/json")
            .status(201),
    );
    tw.set(
        "/2010-04-01/Accounts/AC0123456789/Calls.json",
        Page::html("{\"sid\":\"CA1\"}")
            .with_type("application/json")
            .status(201),
    );
    let auth = ("TWILIO_AUTH_TOKEN", "twilio-auth-9f8e7d6c");
    for (mode, path) in [("sms", "Messages.json"), ("call", "Calls.json")] {
        let env = with_channel(
            &srv,
            &format!(
                "type = \"twilio\"\naccount_sid = \"AC0123456789\"\nauth_token = \"${{TWILIO_AUTH_TOKEN}}\"\nfrom = \"+15550001111\"\nto = [\"+15550002222\", \"+15550003333\"]\nmode = \"{mode}\"\napi_url = \"{}\"",
                tw.url("")
            ),
            "",
        );
        let first = env.run_env(&["check"], &[auth]);
        srv.set("/app", page(&format!("changed for {mode}")));
        let run = env.run_env(&["check"], &[auth]);
        let seen = tw.seen(&format!("/2010-04-01/Accounts/AC0123456789/{path}"));
        assert_eq!(seen.len(), 2, "one request per number: {run:?}");
        use base64::Engine;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("AC0123456789:{}", auth.1));
        assert_eq!(seen[0].headers["authorization"], format!("Basic {basic}"));
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&seen[0].body)
                .into_owned()
                .collect();
        assert_eq!(form["From"], "+15550001111");
        assert_eq!(form["To"], "+15550002222");
        match mode {
            "sms" => assert!(form["Body"].contains("shop"), "{form:?}"),
            _ => assert!(
                form["Twiml"].starts_with("<Response><Say>forewarn alert."),
                "{form:?}"
            ),
        }
        let second: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&seen[1].body)
                .into_owned()
                .collect();
        assert_eq!(second["To"], "+15550003333");
        assert_secret_absent(&env, &[&first, &run], auth.1);
        srv.set("/app", page("v1"));
    }
}

#[test]
fn service_channels_are_checked_at_load() {
    let env = TestEnv::new().watchlist(
        "[channels.pd]\ntype = \"pagerduty\"\n\n[channels.tw]\ntype = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"x\"\nfrom = \"+1\"\nto = \"+2\"\nmode = \"fax\"\n\n[channels.tg]\ntype = \"telegram\"\nbot_token = \"t\"\nchat_id = \"1\"\nrouting_key = \"k\"\n",
    );
    let run = env.run(&["list"]);
    assert_eq!(run.code, 3, "{run:?}");
    for needle in [
        "channel `pd` (type = \"pagerduty\") needs `routing_key`",
        "unknown `mode` = \"fax\"",
        "channel `tg` (type = \"telegram\") does not take `routing_key`: it is for pagerduty channels",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
}
