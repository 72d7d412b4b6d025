//! Learned masks: fragments that differ between two immediate fetches of the same page are
//! volatile (per-request tokens, rotating teasers, ad slots). They are turned into per-watch
//! line patterns and masked from then on, like the built-in masks: only for deciding whether
//! something changed, never in what is stored or shown.

use std::borrow::Cow;

use regex::Regex;
use similar::{DiffOp, TextDiff};

/// At most this many learned patterns per watch; the oldest go first.
pub const MAX_LEARNED: usize = 20;

/// Compiles stored patterns; one that no longer compiles is dropped.
pub fn compile(patterns: &[String]) -> Vec<Regex> {
    patterns.iter().filter_map(|p| Regex::new(p).ok()).collect()
}

/// The text with every learned fragment replaced by a placeholder.
pub fn apply<'a>(learned: &[Regex], text: &'a str) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for re in learned {
        if let Cow::Owned(s) = re.replace_all(&text, "\u{27e8}learned\u{27e9}") {
            text = Cow::Owned(s);
        }
    }
    text
}

/// Patterns for the lines that differ between two fetches taken moments apart, that `known`
/// does not already cover. Lines that were added or removed (not replaced) teach nothing: a
/// pattern must be anchored on words both fetches share.
pub fn learn(first: &str, second: &str, known: &[Regex]) -> Vec<String> {
    let diff = TextDiff::from_lines(first, second);
    let a: Vec<&str> = first.lines().collect();
    let b: Vec<&str> = second.lines().collect();
    let mut out: Vec<String> = Vec::new();
    for op in diff.ops() {
        if let DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } = *op
        {
            for k in 0..old_len.min(new_len) {
                let (la, lb) = (a[old_index + k], b[new_index + k]);
                if apply(known, la) == apply(known, lb) {
                    continue;
                }
                if let Some(p) = pattern(la, lb)
                    && !out.contains(&p)
                {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// A whole-line pattern: words both lines share kept literally, differing words as `\S+`;
/// lines of different lengths keep their shared leading words and mask the rest.
fn pattern(a: &str, b: &str) -> Option<String> {
    let ta: Vec<&str> = a.split(' ').collect();
    let tb: Vec<&str> = b.split(' ').collect();
    let anchor = |words: &[&str]| {
        words
            .iter()
            .any(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 3)
    };
    if ta.len() == tb.len() {
        let same: Vec<&str> = ta
            .iter()
            .zip(&tb)
            .filter(|(x, y)| x == y)
            .map(|(x, _)| *x)
            .collect();
        if !anchor(&same) {
            return None;
        }
        let parts: Vec<String> = ta
            .iter()
            .zip(&tb)
            .map(|(x, y)| {
                if x == y {
                    general(x)
                } else {
                    r"\S+".to_string()
                }
            })
            .collect();
        return Some(format!("(?m)^{}$", parts.join(" ")));
    }
    let prefix: Vec<&str> = ta
        .iter()
        .zip(&tb)
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| *x)
        .collect();
    if !anchor(&prefix) {
        return None;
    }
    let lit: Vec<String> = prefix.iter().map(|w| general(w)).collect();
    Some(format!("(?m)^{} .*$", lit.join(" ")))
}

/// A word both fetches shared, as a pattern that still matches it when its numbers move:
/// digit runs become `\d+`, a hex run (a hash, a build id) `[0-9a-fA-F]+`. A literal time
/// (`16:27:59`) would never match again; the words around it keep the pattern anchored.
fn general(word: &str) -> String {
    let hexish = word.len() >= 8
        && word.chars().all(|c| c.is_ascii_hexdigit())
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic());
    if hexish {
        return "[0-9a-fA-F]+".to_string();
    }
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push_str(r"\d+");
        } else {
            out.push_str(&regex::escape(&c.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_rotating_fragments() {
        let a = "Inbox\nSession token: q1w2e3r4\nServed by node 7 in 23ms\nRecommended: Foo Pro\n";
        let b = "Inbox\nSession token: z9x8c7v6\nServed by node 3 in 41ms\nRecommended: Bar Suite Plus\n";
        let learned = learn(a, b, &[]);
        assert_eq!(
            learned,
            vec![
                r"(?m)^Session token: \S+$",
                r"(?m)^Served by node \S+ in \S+$",
                r"(?m)^Recommended: .*$",
            ]
        );
        let res = compile(&learned);
        // A later page with new values masks the same, and a real edit still shows.
        let later = "Inbox\nSession token: 5t6y7u8i\nServed by node 1 in 9ms\nRecommended: Baz\n";
        assert_eq!(apply(&res, a), apply(&res, later));
        assert_ne!(
            apply(&res, a),
            apply(&res, &later.replace("Inbox", "Outbox"))
        );
    }

    /// The issue's case: a stamp both fetches shared (the same second) next to a moving host.
    #[test]
    fn shared_numbers_are_learned_as_classes() {
        let a = "Page generated at 2026-12-02 16:27:59 UTC by web-7f3a\n";
        let b = "Page generated at 2026-12-02 16:27:59 UTC by web-0c1d\n";
        let learned = learn(a, b, &[]);
        assert_eq!(
            learned,
            vec![r"(?m)^Page generated at \d+\-\d+\-\d+ \d+:\d+:\d+ UTC by \S+$"]
        );
        let res = compile(&learned);
        let tomorrow = "Page generated at 2026-12-03 09:01:02 UTC by web-9999\n";
        assert_eq!(apply(&res, a), apply(&res, tomorrow), "it matches again");
        let build = learn(
            "Build 3f9a2c1d7e on node a\n",
            "Build 3f9a2c1d7e on node b\n",
            &[],
        );
        assert_eq!(build, vec![r"(?m)^Build [0-9a-fA-F]+ on node \S+$"]);
    }

    #[test]
    fn nothing_to_anchor_on_teaches_nothing() {
        assert!(learn("a1\n", "b2\n", &[]).is_empty());
        assert!(learn("same\n", "same\nnew line\n", &[]).is_empty());
    }
}
