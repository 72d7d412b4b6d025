//! Issue 3: feeds compared entry by entry, in every dialect.

use crate::util::{Page, Server, TestEnv, one_watch};

fn rss(items: &[(&str, &str)], build: &str) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Acme SDK</title><lastBuildDate>{build}</lastBuildDate><generator>gen {build}</generator>"
    );
    for (title, body) in items {
        let slug = title.replace(' ', "-");
        s.push_str(&format!(
            "<item><title>{title}</title><link>https://acme.example/{slug}</link><guid>{slug}</guid><description>&lt;p&gt;{body}&lt;/p&gt;</description></item>"
        ));
    }
    s + "</channel></rss>"
}

fn atom(entries: &[(&str, &str)], updated: &str) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Blog</title><id>urn:blog</id><updated>{updated}</updated>"
    );
    for (title, body) in entries {
        s.push_str(&format!(
            "<entry><title>{title}</title><id>urn:{title}</id><updated>2026-01-01T00:00:00Z</updated><link href=\"https://blog.example/{title}\"/><content type=\"html\">{body}</content></entry>"
        ));
    }
    s + "</feed>"
}

fn json_feed(items: &[(&str, &str)]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|(t, b)| format!("{{\"id\": \"{t}\", \"title\": \"{t}\", \"content_text\": \"{b}\", \"url\": \"https://j.example/{t}\"}}"))
        .collect();
    format!(
        "{{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"J\", \"items\": [{}]}}",
        items.join(",")
    )
}

/// First sight, then `next`: the second run's events.
fn after(kind: &str, ct: &str, first: &str, next: &str, extra: &str) -> crate::util::Run {
    let srv = Server::start();
    srv.set("/feed", Page::html(first).with_type(ct));
    let env = TestEnv::new().watchlist(&one_watch(
        "f",
        &srv.url("/feed"),
        &format!("{kind}\n{extra}"),
    ));
    let base = env.run(&["check", "--format", "json"]);
    assert_eq!(
        base.events("baseline").len(),
        1,
        "first sight is one baseline: {}",
        base.stdout
    );
    assert_eq!(
        base.events("new_entry").len(),
        0,
        "not a burst of new entries"
    );
    srv.set("/feed", Page::html(next).with_type(ct));
    env.run(&["check", "--format", "json"])
}

#[test]
fn new_entries_in_every_dialect() {
    let one = [("1.9", "Fixes")];
    let two = [
        ("2.0", "Breaking: the v1 auth endpoints are removed"),
        ("1.9", "Fixes"),
    ];
    for (name, ct, a, b) in [
        (
            "rss",
            "application/rss+xml",
            rss(&one, "Mon, 01 Jan 2024 00:00:00 GMT"),
            rss(&two, "Tue, 02 Jan 2024 00:00:00 GMT"),
        ),
        (
            "atom",
            "application/atom+xml",
            atom(&one, "2024-01-01T00:00:00Z"),
            atom(&two, "2024-01-02T00:00:00Z"),
        ),
        (
            "json feed",
            "application/feed+json",
            json_feed(&one),
            json_feed(&two),
        ),
        // Detected from the body when the server says text/xml.
        (
            "rss as text/xml",
            "text/xml",
            rss(&one, "x"),
            rss(&two, "y"),
        ),
    ] {
        let run = after("", ct, &a, &b, "");
        let new = run.events("new_entry");
        assert_eq!(new.len(), 1, "{name}: {}", run.stdout);
        assert_eq!(new[0]["title"], "2.0", "{name}");
        assert!(
            new[0]["excerpt"]
                .as_str()
                .unwrap()
                .contains("v1 auth endpoints are removed"),
            "{name}: {}",
            new[0]
        );
        assert!(new[0]["link"].as_str().unwrap().contains("2.0"), "{name}");
        // One watch-level `changed` line naming the entry, never a diff of the XML.
        let changed = run.events("changed");
        assert_eq!(changed.len(), 1, "{name}: {}", run.stdout);
        assert_eq!(
            changed[0]["kinds"],
            serde_json::json!(["new_entry"]),
            "{name}"
        );
        assert_eq!(
            changed[0]["events"],
            serde_json::json!([new[0]["id"]]),
            "{name}"
        );
        assert_eq!(changed[0]["summary"], "1 new entry: 2.0", "{name}");
        assert!(changed[0].get("diff").is_none(), "{name}: {}", changed[0]);
        assert_eq!(run.events("summary")[0]["changed"], 1, "{name}");
    }
}

#[test]
fn reorder_window_and_feed_level_churn_are_not_changes() {
    let items = [("3", "c"), ("2", "b"), ("1", "a")];
    let reordered = [("1", "a"), ("3", "c"), ("2", "b")];
    let window = [("3", "c"), ("2", "b")];
    for (what, next) in [
        ("reorder", rss(&reordered, "Mon")),
        ("window", rss(&window, "Mon")),
        ("lastBuildDate and generator", rss(&items, "Tue")),
    ] {
        let run = after(
            "kind = \"feed\"",
            "application/rss+xml",
            &rss(&items, "Mon"),
            &next,
            "",
        );
        let n = run.events("new_entry").len()
            + run.events("entry_updated").len()
            + run.events("changed").len();
        assert_eq!(n, 0, "{what}: {}", run.stdout);
        assert_eq!(run.code, 0);
    }
}

#[test]
fn an_edited_entry_is_entry_updated_with_its_diff() {
    let run = after(
        "",
        "application/atom+xml",
        &atom(&[("Rust 1.71", "see https://x/1")], "2024-01-01T00:00:00Z"),
        &atom(
            &[("Rust 1.71", "see the tracking issue")],
            "2024-01-02T00:00:00Z",
        ),
        "",
    );
    let upd = run.events("entry_updated");
    assert_eq!(upd.len(), 1, "{}", run.stdout);
    let diff = upd[0]["diff"].as_str().unwrap();
    assert!(
        diff.contains("-see https://x/1") && diff.contains("+see the tracking issue"),
        "{diff}"
    );
}

#[test]
fn match_exclude_and_the_cap() {
    let base = [("0.1", "x")];
    let many: Vec<(String, String)> = (0..15)
        .map(|i| (format!("API change {i}"), "y".to_string()))
        .collect();
    let mut next: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    next.push(("Breaking: auth", "z"));
    next.push(("Blog: our offsite", "z"));
    next.push(("0.1", "x"));
    let run = after(
        "",
        "application/rss+xml",
        &rss(&base, "a"),
        &rss(&next, "b"),
        "match = '^(Breaking|API)'\nexclude = 'change 1[0-4]'\nmax_entries = 5",
    );
    let new = run.events("new_entry");
    let titles: Vec<&str> = new.iter().map(|e| e["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert!(
        titles
            .iter()
            .all(|t| t.starts_with("API") || t.starts_with("Breaking")),
        "{titles:?}"
    );
    let excluded = regex::Regex::new("change 1[0-4]").unwrap();
    assert!(!titles.iter().any(|t| excluded.is_match(t)), "{titles:?}");
    // 10 API changes (0-9) and "Breaking" match: 11, 5 shown, 6 counted.
    assert_eq!(new[4]["more"], 6, "{}", new[4]);
    assert!(
        new[4]["summary"]
            .as_str()
            .unwrap()
            .contains("and 6 more new entries")
    );
}

#[test]
fn malformed_feed_is_a_clear_error() {
    let srv = Server::start();
    srv.set(
        "/feed",
        Page::html("<rss><channel><item><title>broken").with_type("application/rss+xml"),
    );
    srv.set("/ok", Page::html("<p>fine</p>"));
    let env = TestEnv::new().watchlist(&format!(
        "{}{}",
        one_watch("f", &srv.url("/feed"), "kind = \"feed\""),
        one_watch("ok", &srv.url("/ok"), "")
    ));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 2, "{run:?}");
    let err = run.events("error")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("not a valid RSS, Atom or JSON feed"), "{err}");
    assert_eq!(
        run.events("baseline").len(),
        1,
        "the rest of the run goes on"
    );
}

#[test]
fn text_report_reads_like_a_release_note() {
    let srv = Server::start();
    srv.set(
        "/feed",
        Page::html(&rss(&[("1.9", "Fixes")], "a")).with_type("application/rss+xml"),
    );
    let env = TestEnv::new().watchlist(&one_watch("acme-sdk", &srv.url("/feed"), ""));
    env.run(&["check"]);
    srv.set(
        "/feed",
        Page::html(&rss(
            &[
                (
                    "Acme SDK 3.0.0 released",
                    "Breaking: the v1 auth endpoints are removed",
                ),
                ("1.9", "Fixes"),
            ],
            "b",
        ))
        .with_type("application/rss+xml"),
    );
    let run = env.run(&["check"]);
    run.says("NEW ENTRY acme-sdk");
    run.says("Acme SDK 3.0.0 released");
    assert!(
        run.stdout
            .contains("Breaking: the v1 auth endpoints are removed"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("<item>"),
        "no XML in the report: {}",
        run.stdout
    );
    let report = env.run(&["report"]);
    report.says("NEW ENTRY acme-sdk");
}

#[test]
fn rss_091_and_rss_10_rdf() {
    let rss091 = |items: &[&str]| {
        let mut s = String::from(
            "<?xml version=\"1.0\"?><rss version=\"0.91\"><channel><title>Old</title><link>https://old.example/</link><description>d</description><language>en</language>",
        );
        for t in items {
            s.push_str(&format!("<item><title>{t}</title><link>https://old.example/{t}</link><description>about {t}</description></item>"));
        }
        s + "</channel></rss>"
    };
    let run = after("", "text/xml", &rss091(&["a"]), &rss091(&["b", "a"]), "");
    assert_eq!(run.events("new_entry").len(), 1, "{}", run.stdout);
    assert_eq!(run.events("new_entry")[0]["title"], "b");

    let rdf = |items: &[&str]| {
        let mut s = String::from(
            "<?xml version=\"1.0\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><channel rdf:about=\"https://n.example/\"><title>News</title><link>https://n.example/</link><description>d</description></channel>",
        );
        for t in items {
            s.push_str(&format!("<item rdf:about=\"https://n.example/{t}\"><title>{t}</title><link>https://n.example/{t}</link><description>news {t}</description></item>"));
        }
        s + "</rdf:RDF>"
    };
    let run = after(
        "",
        "application/rdf+xml",
        &rdf(&["x"]),
        &rdf(&["y", "x"]),
        "",
    );
    assert_eq!(run.events("new_entry").len(), 1, "{}", run.stdout);
    assert_eq!(run.events("new_entry")[0]["title"], "y");
}

#[test]
fn a_feed_whose_ids_are_positions_reports_one_new_entry() {
    let feed = |titles: &[&str]| {
        let items: String = titles
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!("<item><title>{t}</title><guid isPermaLink=\"false\">{i}</guid><description>Notes for {t}</description></item>")
            })
            .collect();
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Releases</title>{items}</channel></rss>"
        )
    };
    let srv = Server::start();
    srv.set(
        "/f.xml",
        Page::html(&feed(&["v1.2", "v1.1", "v1.0"])).with_type("application/rss+xml"),
    );
    let env = TestEnv::new().watchlist(&one_watch("f", &srv.url("/f.xml"), "kind = \"feed\""));
    env.run(&["check"]);
    srv.set(
        "/f.xml",
        Page::html(&feed(&["v1.3", "v1.2", "v1.1", "v1.0"])).with_type("application/rss+xml"),
    );
    let run = env.run(&["check", "--format", "json"]);
    let new = run.events("new_entry");
    assert_eq!(new.len(), 1, "{}", run.stdout);
    assert_eq!(new[0]["title"], "v1.3");
    assert!(run.events("entry_updated").is_empty(), "{}", run.stdout);
}
