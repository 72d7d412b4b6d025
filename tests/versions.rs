//! Issue 3: `kind = "version"` against local servers shaped like the real services.

use crate::util::{Page, Server, TestEnv};

fn watch(name: &str, body: &str) -> String {
    format!("[[watch]]\nname = \"{name}\"\nkind = \"version\"\n{body}\n")
}

/// Serves `before` then `after` at `path`; returns the second run.
fn two(path: &str, before: &str, after: &str, toml: &str) -> crate::util::Run {
    let srv = Server::start();
    srv.set(path, Page::html(before).with_type("application/json"));
    let env = TestEnv::new().watchlist(&toml.replace("{base}", &srv.url("")));
    let first = env.run(&["check", "--format", "json"]);
    assert_eq!(first.events("baseline").len(), 1, "{first:?}");
    srv.set(path, Page::html(after).with_type("application/json"));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 0, "{run:?}");
    run
}

#[test]
fn crates_io_new_version_skips_yanked() {
    let crate_doc = |versions: &[(&str, bool)]| {
        let v: Vec<String> = versions
            .iter()
            .map(|(n, y)| format!("{{\"num\": \"{n}\", \"yanked\": {y}, \"created_at\": \"2026-01-01T00:00:00Z\"}}"))
            .collect();
        format!(
            "{{\"crate\": {{\"name\": \"reqwest\"}}, \"versions\": [{}]}}",
            v.join(",")
        )
    };
    let run = two(
        "/api/v1/crates/reqwest",
        &crate_doc(&[("0.12.4", false), ("0.12.3", false)]),
        &crate_doc(&[
            ("0.14.0", true),
            ("0.13.1", false),
            ("0.13.0", false),
            ("0.12.4", false),
        ]),
        &watch(
            "reqwest",
            "source = \"crates\"\npackage = \"reqwest\"\nregistry = \"{base}\"",
        ),
    );
    let v = run.events("new_version");
    assert_eq!(v.len(), 1, "{}", run.stdout);
    assert_eq!(v[0]["old"], "0.12.4");
    assert_eq!(v[0]["new"], "0.13.1", "the yanked 0.14.0 does not count");
    assert_eq!(v[0]["bump"], "major", "0.x minor is breaking");
    assert_eq!(v[0]["skipped"], serde_json::json!(["0.13.0"]));
    assert_eq!(v[0]["severity"], "warning");
    assert_eq!(
        v[0]["release_url"],
        "https://crates.io/crates/reqwest/0.13.1"
    );
}

#[test]
fn npm_pypi_and_json_sources() {
    let npm = |vs: &[&str]| {
        let v: Vec<String> = vs
            .iter()
            .map(|n| format!("\"{n}\": {{\"version\": \"{n}\"}}"))
            .collect();
        format!(
            "{{\"name\": \"left-pad\", \"versions\": {{{}}}, \"time\": {{}}}}",
            v.join(",")
        )
    };
    let run = two(
        "/left-pad",
        &npm(&["1.2.0", "1.3.0"]),
        &npm(&["1.2.0", "1.3.0", "1.3.1", "2.0.0-beta.1"]),
        &watch(
            "left-pad",
            "source = \"npm\"\npackage = \"left-pad\"\nregistry = \"{base}\"",
        ),
    );
    let v = run.events("new_version");
    assert_eq!(
        v[0]["new"], "1.3.1",
        "prereleases are ignored unless asked: {}",
        run.stdout
    );
    assert_eq!(v[0]["bump"], "patch");

    let pypi =
        |rels: &str| format!("{{\"info\": {{\"version\": \"x\"}}, \"releases\": {{{rels}}}}}");
    let file = |y: bool| {
        format!("[{{\"yanked\": {y}, \"upload_time_iso_8601\": \"2026-01-01T00:00:00Z\"}}]")
    };
    let run = two(
        "/pypi/requests/json",
        &pypi(&format!("\"2.31.0\": {}", file(false))),
        &pypi(&format!(
            "\"2.31.0\": {}, \"2.32.0rc1\": {}, \"2.32.0\": {}, \"2.33.0\": {}",
            file(false),
            file(false),
            file(false),
            file(true)
        )),
        &watch(
            "requests",
            "source = \"pypi\"\npackage = \"requests\"\nregistry = \"{base}\"",
        ),
    );
    let v = run.events("new_version");
    assert_eq!(v[0]["new"], "2.32.0", "{}", run.stdout);
    assert_eq!(v[0]["bump"], "minor");

    let run = two(
        "/versions.json",
        r#"{"LATEST_FIREFOX_VERSION": "115.0.3"}"#,
        r#"{"LATEST_FIREFOX_VERSION": "116.0"}"#,
        &watch(
            "firefox",
            "source = \"json\"\nurl = \"{base}/versions.json\"\npointer = \"/LATEST_FIREFOX_VERSION\"",
        ),
    );
    assert_eq!(
        run.events("new_version")[0]["new"],
        "116.0",
        "{}",
        run.stdout
    );
}

#[test]
fn github_releases_with_notes_and_tags() {
    let releases = |rs: &[(&str, bool, bool)]| {
        let v: Vec<String> = rs
            .iter()
            .map(|(tag, pre, draft)| format!(
                "{{\"tag_name\": \"{tag}\", \"prerelease\": {pre}, \"draft\": {draft}, \"html_url\": \"https://github.com/acme/sdk/releases/tag/{tag}\", \"body\": \"## Breaking: the v1 auth endpoints are removed\\n\\n- more\"}}"
            ))
            .collect();
        format!("[{}]", v.join(","))
    };
    let run = two(
        "/repos/acme/sdk/releases?per_page=100",
        &releases(&[("v2.8.0", false, false)]),
        &releases(&[
            ("v3.1.0", false, true),
            ("v3.0.0", false, false),
            ("v3.0.0-rc.1", true, false),
            ("v2.9.0", false, false),
            ("v2.8.0", false, false),
        ]),
        &watch(
            "acme-sdk",
            "source = \"github\"\nrepo = \"acme/sdk\"\nregistry = \"{base}\"\nprefix = \"v\"",
        ),
    );
    let v = run.events("new_version");
    assert_eq!(v.len(), 1, "{}", run.stdout);
    assert_eq!(v[0]["new"], "3.0.0", "drafts never count");
    assert_eq!(
        v[0]["summary"],
        "acme-sdk 3.0.0 released (major, skipped 2.9.0): Breaking: the v1 auth endpoints are removed"
    );
    assert_eq!(
        v[0]["release_url"],
        "https://github.com/acme/sdk/releases/tag/v3.0.0"
    );

    let tags = |ts: &[&str]| {
        format!(
            "[{}]",
            ts.iter()
                .map(|t| format!("{{\"name\": \"{t}\"}}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let run = two(
        "/repos/acme/cli/tags?per_page=100",
        &tags(&["release-1.4", "release-1.3"]),
        &tags(&["release-1.5", "release-1.4"]),
        &watch(
            "acme-cli",
            "source = \"github\"\nrepo = \"acme/cli\"\ntags = true\nregistry = \"{base}\"",
        ),
    );
    assert_eq!(
        run.events("new_version")[0]["new"],
        "release-1.5",
        "{}",
        run.stdout
    );
}

#[test]
fn regex_source_include_exclude_and_quiet_backports() {
    let page = |vs: &[&str]| {
        vs.iter()
            .map(|v| format!("<li>Download tool-{v}.tar.gz</li>"))
            .collect::<String>()
    };
    let toml = watch(
        "tool",
        "source = \"regex\"\nurl = \"{base}/downloads\"\npattern = 'tool-([0-9.]+)\\.tar'\ninclude = '^1\\.'\nexclude = '^1\\.9\\.'",
    );
    let run = two(
        "/downloads",
        &page(&["1.2.0", "2.0.0"]),
        &page(&["1.2.0", "1.3.0", "1.9.1", "2.1.0"]),
        &toml,
    );
    let v = run.events("new_version");
    assert_eq!(v[0]["old"], "1.2.0", "{}", run.stdout);
    assert_eq!(
        v[0]["new"], "1.3.0",
        "include keeps 1.x, exclude drops 1.9.x"
    );
    // A backport on an older branch is not a new latest: stored quietly.
    let run = two(
        "/downloads",
        &page(&["1.2.0", "1.3.0"]),
        &page(&["1.2.0", "1.2.1", "1.3.0"]),
        &toml,
    );
    assert_eq!(run.events("new_version").len(), 0, "{}", run.stdout);
    let text_env = run.stdout.clone();
    assert!(!text_env.contains("\"event\":\"changed\""));
}

#[test]
fn version_watches_are_validated() {
    let env = TestEnv::new().watchlist(&format!(
        "{}{}{}",
        watch("a", "source = \"crates\""),
        watch("b", "source = \"github\"\nrepo = \"no-slash\""),
        watch("c", "source = \"crate\"\npackage = \"x\""),
    ));
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("needs `package`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("`repo` must be \"owner/name\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean the value `crates`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn text_report_for_a_new_version() {
    let srv = Server::start();
    let doc = |v: &str| format!("{{\"versions\": [{{\"num\": \"{v}\", \"yanked\": false}}]}}");
    srv.set(
        "/api/v1/crates/serde",
        Page::html(&doc("1.0.200")).with_type("application/json"),
    );
    let env = TestEnv::new().watchlist(&watch(
        "serde",
        &format!(
            "source = \"crates\"\npackage = \"serde\"\nregistry = \"{}\"",
            srv.url("")
        ),
    ));
    env.run(&["check"]);
    srv.set(
        "/api/v1/crates/serde",
        Page::html(&doc("1.0.201")).with_type("application/json"),
    );
    let run = env.run(&["check"]);
    run.says("NEW VERSION serde");
    run.says("serde 1.0.201 released (patch)");
    assert!(
        run.stdout
            .contains("https://crates.io/crates/serde/1.0.201"),
        "{}",
        run.stdout
    );
}

#[test]
fn github_rate_limit_is_named() {
    let srv = Server::start();
    let path = "/repos/acme/sdk/releases?per_page=100";
    let reset = (chrono::Utc::now() + chrono::Duration::hours(1))
        .timestamp()
        .to_string();
    srv.set(
        path,
        Page::html("{\"message\": \"API rate limit exceeded\"}")
            .status(403)
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", &reset),
    );
    let env = TestEnv::new().watchlist(&watch(
        "sdk",
        &format!(
            "source = \"github\"\nrepo = \"acme/sdk\"\nregistry = \"{}\"",
            srv.url("")
        ),
    ));
    let run = env.run_env(
        &["check", "--format", "json"],
        &[("GITHUB_TOKEN", "t0k3n-value")],
    );
    assert_eq!(run.code, 2);
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("rate limit exhausted") && err.contains("GITHUB_TOKEN"),
        "{err}"
    );
    // Reset an hour away is past the Retry-After cap: not waited for, not retried.
    assert_eq!(srv.seen(path).len(), 1);
    // The token was sent, and is not in the output.
    assert_eq!(
        srv.seen(path)[0].headers["authorization"],
        "Bearer t0k3n-value"
    );
    assert!(!run.stdout.contains("t0k3n-value"));
}

#[test]
fn a_missing_repository_names_the_key_to_check() {
    let srv = Server::start();
    srv.set(
        "/repos/acme/gone/releases?per_page=100",
        Page::html("{\"message\": \"Not Found\"}")
            .status(404)
            .with_type("application/json"),
    );
    let env = TestEnv::new().watchlist(&watch(
        "gone",
        &format!(
            "source = \"github\"\nrepo = \"acme/gone\"\nregistry = \"{}\"",
            srv.url("")
        ),
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("check the watch's `repo` or `package`"),
        "{err}"
    );
    assert!(
        !err.contains("update the watch's URL"),
        "it has none: {err}"
    );
}
