//! Issue 8 (part): property-based fuzzing of what reads untrusted input. Nothing may panic,
//! whatever the bytes: watchlist parsing, HTML extraction, feed parsing, JSON structure diffs,
//! contracts and diff rendering. Inputs are arbitrary, or mutations of the seed corpus in
//! `fixtures/fuzz/`. A run is short by default; for a long one:
//!
//!     PROPTEST_CASES=20000 cargo test --test integration fuzz

use std::path::Path;

use forewarn::config::{self, Config, Kind};
use forewarn::extract::{self, ExtractSpec, feed, json};
use forewarn::judge::contract;
use forewarn::{compare, report};
use proptest::prelude::*;
use proptest::test_runner::Config as RunnerConfig;

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/fuzz")
            .join(name),
    )
    .unwrap()
}

/// A seed with up to 16 random byte edits (replace, insert, delete).
fn mutated(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let base = seed(name);
    let len = base.len();
    prop::collection::vec((0..len.max(1), any::<u8>(), 0u8..3), 0..16).prop_map(move |edits| {
        let mut b = base.clone();
        for (pos, byte, op) in edits {
            let at = pos.min(b.len());
            match op {
                0 if at < b.len() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if at < b.len() => {
                    b.remove(at);
                }
                _ => {}
            }
        }
        b
    })
}

fn cases() -> RunnerConfig {
    RunnerConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(128),
        ..RunnerConfig::default()
    }
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z]{0,6}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map("(id|name|p|q|[a-z]{1,3})", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn fuzz_watchlist_parsing(bytes in prop_oneof![mutated("watchlist.toml"), prop::collection::vec(any::<u8>(), 0..400)]) {
        let src = String::from_utf8_lossy(&bytes);
        let mut c = Config::default();
        let mut errors = Vec::new();
        config::parse_file(Path::new("fuzz.toml"), &src, &mut c, &mut errors);
        let lines = src.lines().count().max(1);
        for e in &errors {
            // Every located problem points into the file.
            if let Some(l) = e.line {
                prop_assert!(l >= 1 && l <= lines + 1, "line {l} of {lines}: {e}");
            }
            let _ = e.to_string();
        }
    }

    #[test]
    fn fuzz_html_extraction(bytes in prop_oneof![mutated("page.html"), prop::collection::vec(any::<u8>(), 0..600)]) {
        for (kind, select, remove) in [
            (Kind::Auto, vec![], vec![]),
            (Kind::Html, vec!["#toolbar".to_string(), ".box a".to_string()], vec![".ad".to_string()]),
            (Kind::Text, vec![], vec![]),
        ] {
            let spec = ExtractSpec::new(kind, select, remove, vec![r"\d+".into()]).unwrap();
            for ct in [Some("text/html"), Some("text/html; charset=shift_jis"), None] {
                if let Ok(ex) = extract::extract(&spec, &bytes, ct) {
                    let _ = spec.masked(&ex.text);
                    let _ = forewarn::config::masks::MaskSet::all().explain(&ex.text);
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = contract::assets(&text);
    }

    #[test]
    fn fuzz_feed_parsing(bytes in prop_oneof![mutated("feed.xml"), prop::collection::vec(any::<u8>(), 0..400)]) {
        if let Ok(entries) = feed::parse(&bytes) {
            let back = feed::from_snapshot(&feed::to_snapshot(&entries));
            prop_assert_eq!(back.as_ref(), Some(&entries));
            let _ = feed::compare(&entries, &entries[entries.len() / 2..]);
        }
    }

    #[test]
    fn fuzz_json_structure_diffs(a in json_value(), b in json_value()) {
        let changes = json::schema_changes(&json::structure(&a), &json::structure(&b));
        if a == b {
            prop_assert!(changes.is_empty());
            prop_assert!(json::value_changes(&a, &b).is_empty());
        }
        let _ = json::openapi_changes(&a, &b);
        let mut c = a.clone();
        json::canonicalize(&mut c);
        json::remove_paths(&mut c, &["$..id".into(), "$.p[*].q".into()]);
    }

    #[test]
    fn fuzz_json_documents(bytes in mutated("api.json")) {
        let spec = ExtractSpec::new(Kind::Json, vec!["$.items[*]".into()], vec![], vec![]).unwrap()
            .with_ignore_paths(vec!["$..generated_at".into()]);
        let _ = extract::extract(&spec, &bytes, Some("application/json"));
    }

    #[test]
    fn fuzz_diff_rendering(a in ".{0,300}", b in ".{0,300}") {
        let d = compare::diff(&a, &b, "a", "b");
        let html = report::html::diff_html(&d.unified);
        // Whatever the text, it cannot become markup.
        prop_assert!(!html.contains("<script") && !html.contains("<img"));
        let _ = compare::summary(&d, &[]);
    }
}
