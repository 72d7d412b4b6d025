//! Issue 6: integration contracts on pages (`expect`).

use crate::util::{Page, Server, TestEnv, one_watch, watching};

const APP: &str = r#"<html><body><h1>Inbox</h1>
<div id="compose"><button class="send-button primary" data-testid="send">Send</button></div>
<div id="message-list" data-testid="message-list"><p>3 messages</p></div>
<a href="/login">Sign in</a></body></html>"#;

fn env_for(srv: &Server) -> TestEnv {
    TestEnv::new().watchlist(&one_watch(
        "vendor-app",
        &srv.url("/inbox"),
        "select = \"#message-list\"\nexpect.selectors = [\"#compose .send-button\", \"div[data-testid='message-list']\"]\nexpect.text = [\"Sign in\"]\nexpect.absent = [\"Scheduled maintenance\"]\nexpect.status = 200\n",
    ))
}

#[test]
fn a_vanished_selector_is_a_critical_contract_break_with_a_hint() {
    let srv = Server::start();
    srv.set("/inbox", Page::html(APP));
    let env = env_for(&srv);
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.events("contract_broken").len(), 0, "{}", first.stdout);
    // The selected content does not change; the send button is renamed.
    srv.set(
        "/inbox",
        Page::html(&APP.replace("send-button primary", "send-btn primary")),
    );
    let run = env.run(&["check", "--format", "json"]);
    let broken = run.events("contract_broken");
    assert_eq!(broken.len(), 1, "{}", run.stdout);
    assert_eq!(broken[0]["severity"], "critical");
    assert_eq!(broken[0]["expectation"], "selector `#compose .send-button`");
    assert_eq!(
        broken[0]["summary"],
        "`#compose .send-button` matched 1, now 0; maybe `#compose .send-btn`"
    );
    assert_eq!(
        run.events("changed").len(),
        0,
        "the selected part did not change"
    );
    let hints = broken[0]["hints"].as_array().unwrap();
    assert!(
        hints
            .iter()
            .any(|h| h == "#compose button[data-testid='send']"),
        "{hints:?}"
    );
    // Reported once while it stays broken, once when it holds again.
    let again = env.run(&["check", "--format", "json"]);
    assert_eq!(again.events("contract_broken").len(), 0, "{}", again.stdout);
    let text = env.run(&["report"]);
    text.says("CONTRACT BROKEN vendor-app");
    // `list` says so until it holds again, in text and JSON.
    env.run(&["list"])
        .says("contract broken: selector `#compose .send-button`")
        .never_says(" ok ");
    let list = env.run(&["list", "--format", "json"]);
    let row = &list.json()[0];
    assert_eq!(row["state"], "contract_broken", "{row}");
    assert_eq!(
        row["broken_expectations"],
        serde_json::json!(["selector `#compose .send-button`"])
    );
    srv.set("/inbox", Page::html(APP));
    let back = env.run(&["check", "--format", "json"]);
    assert_eq!(back.events("contract_restored").len(), 1, "{}", back.stdout);
    assert_eq!(
        env.run(&["list", "--format", "json"]).json()[0]["state"],
        "ok"
    );
}

#[test]
fn text_absent_and_a_broken_contract_at_first_sight() {
    let srv = Server::start();
    srv.set(
        "/inbox",
        Page::html(
            &APP.replace("Sign in", "Log in")
                .replace("3 messages", "Scheduled maintenance at 22:00"),
        ),
    );
    let env = env_for(&srv);
    let run = env.run(&["check", "--format", "json"]);
    let labels: Vec<String> = run
        .events("contract_broken")
        .iter()
        .map(|e| e["expectation"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        labels,
        vec!["text `Sign in`", "absent `Scheduled maintenance`"],
        "{}",
        run.stdout
    );
    let text = env.run(&["check"]);
    assert_eq!(text.stdout, "", "already reported: {}", text.stdout);
}

#[test]
fn test_shows_each_expectation() {
    let srv = Server::start();
    srv.set("/inbox", Page::html(&APP.replace("Sign in", "Log in")));
    let env = env_for(&srv);
    let run = env.run(&["test", "vendor-app"]);
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "pass selector `#compose .send-button` (1 match)",
        "pass selector `div[data-testid='message-list']` (1 match)",
        "FAIL text `Sign in`",
        "pass absent `Scheduled maintenance`",
        "pass status 200",
    ] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }
    assert!(!env.db().exists(), "test writes nothing");
}

#[test]
fn bad_expectations_are_load_errors() {
    let env = TestEnv::new().watchlist(&one_watch(
        "a",
        "https://example.com/",
        "expect.selectors = [\"##\"]\nexpect.txt = [\"x\"]",
    ));
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("did you mean the key `text`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn track_assets_reports_a_frontend_deploy() {
    let page = |js: &str| {
        format!(
            "<html><head><script src=\"/static/{js}\"></script><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><p>Inbox</p></body></html>"
        )
    };
    let (srv, env) = watching(
        "app",
        Page::html(&page("app.3f2a91.js")),
        "track_assets = true",
    );
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(
        first.events("deploy_detected").len(),
        0,
        "first sight is quiet"
    );
    srv.set("/app", Page::html(&page("app.9c1d07.js")));
    let run = env.run(&["check", "--format", "json"]);
    let d = run.events("deploy_detected");
    assert_eq!(d.len(), 1, "{}", run.stdout);
    assert_eq!(
        d[0]["removed"],
        serde_json::json!(["/static/app.3f2a91.js"])
    );
    assert_eq!(d[0]["added"], serde_json::json!(["/static/app.9c1d07.js"]));
    assert_eq!(
        d[0]["summary"],
        "frontend deploy: 1 asset(s) gone, 1 new (/static/app.3f2a91.js -> /static/app.9c1d07.js)"
    );
    assert_eq!(run.events("changed").len(), 0, "the text did not change");
    let again = env.run(&["check", "--format", "json"]);
    assert_eq!(again.events("deploy_detected").len(), 0);
}

/// Serves JSON `a`, checks, serves `b`, checks: the second run.
fn json_two(extra: &str, a: &str, b: &str) -> crate::util::Run {
    let (srv, env) = watching(
        "api",
        Page::html(a).with_type("application/json"),
        &format!("kind = \"json\"\n{extra}"),
    );
    env.run(&["check"]);
    srv.set("/api", Page::html(b).with_type("application/json"));
    env.run(&["check", "--format", "json"])
}

#[test]
fn json_structure_and_values_are_reported_apart() {
    let a = r#"{"version": 3, "items": [{"id": 1, "price": 10, "note": null}, {"id": 2, "price": 12, "note": "x"}], "legacy": {"a": 1}}"#;
    let b = r#"{"version": 4, "items": [{"id": 2, "price": "12", "note": "x"}, {"id": 1, "price": "10", "note": null}]}"#;
    let run = json_two("", a, b);
    let schema = run.events("schema_changed");
    assert_eq!(schema.len(), 1, "{}", run.stdout);
    assert_eq!(schema[0]["severity"], "critical");
    assert_eq!(
        schema[0]["removed"],
        serde_json::json!(["`$.legacy` (object)"])
    );
    assert_eq!(
        schema[0]["retyped"],
        serde_json::json!(["`$.items[*].price`: number -> string"])
    );
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    let changes: Vec<&str> = changed[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // Values at paths whose type did not change; the price's new type is structure.
    assert_eq!(changes, vec!["`$.version`: 3 -> 4"], "{changes:?}");
}

#[test]
fn json_reorder_additions_and_ignore_paths() {
    // Reordering identified objects is not a change.
    let run = json_two(
        "",
        r#"{"items": [{"id": 1, "p": 1}, {"id": 2, "p": 2}]}"#,
        r#"{"items": [{"id": 2, "p": 2}, {"id": 1, "p": 1}]}"#,
    );
    assert_eq!(
        run.events("changed").len() + run.events("schema_changed").len(),
        0,
        "{}",
        run.stdout
    );
    // A new field only: an addition (info), and no value change event.
    let run = json_two("", r#"{"a": 1}"#, r#"{"a": 1, "b": true}"#);
    let schema = run.events("schema_changed");
    assert_eq!(schema.len(), 1, "{}", run.stdout);
    assert_eq!(schema[0]["severity"], "info");
    assert_eq!(schema[0]["added"], serde_json::json!(["`$.b` (boolean)"]));
    // No value change event: the one `changed` line is the watch-level one naming the schema event.
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    assert_eq!(changed[0]["kinds"], serde_json::json!(["schema_changed"]));
    assert!(changed[0].get("changes").is_none(), "{}", run.stdout);
    // ignore_paths: a ticking generated_at and request ids are not changes.
    let run = json_two(
        "ignore_paths = [\"$.meta.generated_at\", \"$..request_id\"]\nmasks = false",
        r#"{"meta": {"generated_at": "2026-01-01T00:00:00Z"}, "data": [{"request_id": "r1", "v": 1}]}"#,
        r#"{"meta": {"generated_at": "2026-01-02T00:00:00Z"}, "data": [{"request_id": "r2", "v": 1}]}"#,
    );
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    // A new element of an identified array is a value change, not a schema change.
    let run = json_two(
        "",
        r#"{"items": [{"id": 1, "p": 1}]}"#,
        r#"{"items": [{"id": 1, "p": 1}, {"id": 2, "p": 5}]}"#,
    );
    assert_eq!(run.events("schema_changed").len(), 0, "{}", run.stdout);
    assert_eq!(run.events("changed").len(), 1, "{}", run.stdout);
}

#[test]
fn json_expect_paths_and_jsonpath_select() {
    let a = r#"{"data": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "pagination": {"next": "/p2"}, "meta": {"t": 1}}"#;
    let b = r#"{"data": [{"uid": 1, "name": "a"}, {"uid": 2, "name": "b"}], "meta": {"t": 2}}"#;
    let (srv, env) = watching(
        "api",
        Page::html(a).with_type("application/json"),
        "kind = \"json\"\nselect = \"$.data[*]\"\nexpect.paths = [\"$.data[*].id\", \"$.pagination.next\"]",
    );
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.events("contract_broken").len(), 0, "{}", first.stdout);
    // `meta` is outside the selection: not a change by itself.
    srv.set(
        "/api",
        Page::html(&a.replace("\"t\": 1", "\"t\": 9")).with_type("application/json"),
    );
    let quiet = env.run(&["check", "--format", "json"]);
    assert_eq!(
        quiet.events("changed").len() + quiet.events("schema_changed").len(),
        0,
        "{}",
        quiet.stdout
    );
    srv.set("/api", Page::html(b).with_type("application/json"));
    let run = env.run(&["check", "--format", "json"]);
    let broken = run.events("contract_broken");
    let labels: Vec<&str> = broken
        .iter()
        .map(|e| e["expectation"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        vec!["path `$.data[*].id`", "path `$.pagination.next`"],
        "{}",
        run.stdout
    );
    assert_eq!(run.events("schema_changed").len(), 1, "{}", run.stdout);
}

/// An OpenAPI description in YAML, as most published specs are.
fn openapi_yaml(extra_property: &str) -> String {
    format!(
        "openapi: 3.1.0\ninfo:\n  title: Vendor API\n  version: '2'\npaths:\n  /users/{{id}}:\n    get:\n      responses:\n        '200':\n          description: ok\ncomponents:\n  schemas:\n    User:\n      properties:\n        name:\n          type: string\n{extra_property}"
    )
}

#[test]
fn yaml_documents_are_compared_as_structure_and_openapi_in_api_terms() {
    let avatar = "        avatar:\n          type: string\n";
    let (srv, env) = watching(
        "spec",
        Page::html(&openapi_yaml(avatar)).with_type("application/yaml"),
        "expect.paths = [\"$.components.schemas.User.properties.avatar\"]",
    );
    let first = env.run(&["check"]);
    assert_eq!(first.code, 0, "{first:?}");
    // `test` shows the document read as a structure.
    env.run(&["test", "spec"])
        .says("compared as yaml:")
        .says("\"avatar\": {");
    // The property goes: breaking, in API terms, and the path expectation breaks.
    srv.set(
        "/spec",
        Page::html(&openapi_yaml("")).with_type("application/yaml"),
    );
    let run = env.run(&["check", "--format", "json"]);
    let schema = run.events("schema_changed");
    assert_eq!(schema.len(), 1, "{}", run.stdout);
    assert!(
        schema[0]["summary"]
            .as_str()
            .unwrap()
            .contains("breaking: removed property User.avatar"),
        "{}",
        schema[0]
    );
    assert_eq!(run.events("contract_broken").len(), 1, "{}", run.stdout);
    // With no content type, an OpenAPI document is still read as YAML.
    let (_srv, env) = watching("bare", Page::html(&openapi_yaml(avatar)).with_type(""), "");
    env.run(&["check"]);
    env.run(&["test", "bare"]).says("compared as yaml:");
}

/// The text report tells each structure change once: the count, then the list.
#[test]
fn a_structure_change_is_told_once_in_the_text_report() {
    let api = |v: &str| Page::html(v).with_type("application/json");
    let (srv, env) = watching(
        "api",
        api(r#"{"data": [{"id": 1, "unread": true, "size": 10}]}"#),
        "",
    );
    env.run(&["check"]);
    srv.set("/api", api(r#"{"data": [{"id": 1, "size": "10 KB"}]}"#));
    let run = env.run(&["check"]);
    run.says("SCHEMA CHANGED api");
    run.says("  2 structure changes:\n");
    assert_eq!(run.stdout.matches("unread").count(), 1, "{}", run.stdout);
}
