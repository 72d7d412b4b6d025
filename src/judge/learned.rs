//! Learned masks: fragments that differ between two immediate fetches of the same page are
//! volatile (per-request tokens, rotating teasers, ad slots). They are turned into per-watch
//! line patterns and masked from then on, like the built-in masks: only for deciding whether
//! something changed, never in what is stored or shown.

use std::borrow::Cow;

use regex::Regex;
use similar::DiffOp;

use crate::compare;

/// At most this many learned patterns per watch; the oldest go first.
pub const MAX_LEARNED: usize = 20;

/// Compiles stored patterns; one that no longer compiles is dropped.
pub fn compile(patterns: &[String]) -> Vec<Regex> {
    patterns.iter().filter_map(|p| Regex::new(p).ok()).collect()
}

/// What a learned fragment is replaced by.
const PLACEHOLDER: &str = "\u{27e8}learned\u{27e9}";

/// The text with every learned fragment replaced by a placeholder.
pub fn apply<'a>(learned: &[Regex], text: &'a str) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for re in learned {
        if let Some(s) = replaced(re, &text) {
            text = Cow::Owned(s);
        }
    }
    text
}

/// `re`'s matches in `text` replaced by the placeholder (as `replace_all` does), written
/// into a buffer of the result's size: `replace_all` starts at the text's size and doubles
/// when the result outgrows it, 82 MB for a 41 MB page.
fn replaced(re: &Regex, text: &str) -> Option<String> {
    let found: Vec<std::ops::Range<usize>> = re.find_iter(text).map(|m| m.range()).collect();
    if found.is_empty() {
        return None;
    }
    let hidden: usize = found.iter().map(|r| r.len()).sum();
    let mut out = String::with_capacity(text.len() - hidden + found.len() * PLACEHOLDER.len());
    let mut from = 0;
    for r in found {
        out.push_str(&text[from..r.start]);
        out.push_str(PLACEHOLDER);
        from = r.end;
    }
    out.push_str(&text[from..]);
    Some(out)
}

/// The watch's learned patterns after two fetches taken moments apart: the lines that differ
/// between them, that no pattern already covers, are learned. Lines that were added or removed
/// (not replaced) teach nothing. A line with words both fetches share becomes a pattern on
/// those words; a line that is wholly different (a teaser rotating between several values)
/// becomes the set of values seen in its place: both fetches', the stored snapshot's when it
/// differs there too, and the values an earlier lesson saw. The oldest patterns go first.
pub fn learn(first: &str, second: &str, stored: &str, learned: &[String]) -> Vec<String> {
    let a: Vec<&str> = first.lines().collect();
    let b: Vec<&str> = second.lines().collect();
    let old: Vec<&str> = stored.lines().collect();
    let mut all = learned.to_vec();
    // Compiled again only when a line changed the patterns, not for every changed line.
    let (mut known, mut compiled) = (compile(&all), all.clone());
    for op in &compare::line_ops(&a, &b) {
        let DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } = *op
        else {
            continue;
        };
        for k in 0..old_len.min(new_len) {
            let (la, lb) = (a[old_index + k], b[new_index + k]);
            if compiled != all {
                (known, compiled) = (compile(&all), all.clone());
            }
            if apply(&known, la) == apply(&known, lb) {
                continue;
            }
            let p = match pattern(la, lb) {
                Some(p) => p,
                None => {
                    let was = in_place(&old, &a, old_index, old_len, k);
                    match rotation(&mut all, [Some(la), Some(lb), was]) {
                        Some(p) => p,
                        None => continue,
                    }
                }
            };
            if !all.contains(&p) {
                all.push(p);
            }
        }
    }
    if all.len() > MAX_LEARNED {
        all.drain(..all.len() - MAX_LEARNED);
    }
    all
}

/// Two fetches moments apart that differ in most of their lines (at least four): the page
/// moves as a whole, and patterns learned from it would be junk that never matches again.
pub fn churns(first: &str, second: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (first.lines().collect(), second.lines().collect());
    let differing: usize = compare::line_ops(&a, &b)
        .iter()
        .map(|op| match *op {
            DiffOp::Equal { .. } => 0,
            DiffOp::Delete { old_len, .. } => old_len,
            DiffOp::Insert { new_len, .. } => new_len,
            DiffOp::Replace {
                old_len, new_len, ..
            } => old_len.max(new_len),
        })
        .sum();
    let lines = a.len().max(b.len());
    differing >= 4 && differing * 2 > lines
}

/// At most this many values of one rotating line are remembered; the oldest go first.
const MAX_VALUES: usize = 12;

/// The line `stored` had at offset `k` of the block `lines[at..at + len]`: the block between
/// the same neighbouring lines, of the same length.
fn in_place<'a>(
    stored: &[&'a str],
    lines: &[&str],
    at: usize,
    len: usize,
    k: usize,
) -> Option<&'a str> {
    let before = at.checked_sub(1).map(|i| lines[i]);
    let after = lines.get(at + len).copied();
    (0..stored.len().saturating_sub(len - 1))
        .find(|&s| {
            let prev = s.checked_sub(1).map(|i| stored[i]);
            prev == before && stored.get(s + len).copied() == after
        })
        .map(|s| stored[s + k])
}

/// The pattern of a rotating line: every value seen in its place, merged with the earlier
/// rotation (removed from `all`) that matched one of them. Values must be words (three
/// letters or more, one line of prose): a moving number or a blob is not a teaser.
fn rotation(all: &mut Vec<String>, seen: [Option<&str>; 3]) -> Option<String> {
    let teaser = |v: &str| v.len() <= 300 && v.chars().filter(|c| c.is_alphabetic()).count() >= 3;
    let seen: Vec<&str> = seen.into_iter().flatten().collect();
    if !seen.iter().all(|v| teaser(v)) {
        return None;
    }
    let mut values: Vec<String> = Vec::new();
    if let Some(at) = all.iter().position(|p| {
        let re = Regex::new(p).ok();
        p.starts_with(ROTATION)
            && seen
                .iter()
                .any(|v| re.as_ref().is_some_and(|re| re.is_match(v)))
    }) {
        values = alternatives(&all.remove(at));
    }
    for v in seen {
        let v = regex::escape(v);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    if values.len() > MAX_VALUES {
        values.drain(..values.len() - MAX_VALUES);
    }
    Some(format!("{ROTATION}{})$", values.join("|")))
}

/// How a rotating line's pattern starts.
const ROTATION: &str = "(?m)^(?:";

/// The escaped values of a rotation pattern (a `|` in a value is escaped as `\|`).
fn alternatives(pattern: &str) -> Vec<String> {
    let inner = &pattern[ROTATION.len()..pattern.len() - 2];
    let mut out = vec![String::new()];
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = out.last_mut().expect("one value at least");
                last.push(c);
                last.extend(chars.next());
            }
            '|' => out.push(String::new()),
            _ => out.last_mut().expect("one value at least").push(c),
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
        // One shared "the" is no anchor: most of the line must stay.
        if !anchor(&same) || same.len() * 2 < ta.len() {
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

    /// The sized replacement says what `replace_all` says, empty matches included.
    #[test]
    fn applying_masks_matches_replace_all() {
        let text = "Page generated at 12:01 by web-3\nbody\nPage generated at 12:02 by web-4\n";
        for p in [
            r"(?m)^Page generated at \S+ by \S+$",
            r"\d+",
            r"x*",
            "absent",
        ] {
            let re = Regex::new(p).unwrap();
            let expected = re.replace_all(text, PLACEHOLDER);
            assert_eq!(apply(std::slice::from_ref(&re), text), expected, "{p}");
        }
    }

    #[test]
    fn learns_rotating_fragments() {
        let a = "Inbox\nSession token: q1w2e3r4\nServed by node 7 in 23ms\nRecommended: Foo Pro\n";
        let b = "Inbox\nSession token: z9x8c7v6\nServed by node 3 in 41ms\nRecommended: Bar Suite Plus\n";
        let learned = learn(a, b, "", &[]);
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
        let learned = learn(a, b, "", &[]);
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
            "",
            &[],
        );
        assert_eq!(build, vec![r"(?m)^Build [0-9a-fA-F]+ on node \S+$"]);
    }

    #[test]
    fn nothing_to_anchor_on_teaches_nothing() {
        assert!(learn("a1\n", "b2\n", "", &[]).is_empty());
        assert!(learn("same\n", "same\nnew line\n", "", &[]).is_empty());
        assert!(
            learn("n 41\n", "n 42\n", "", &[]).is_empty(),
            "a moving number is no teaser"
        );
    }

    /// A teaser that shares no words between its values: the values seen in its place are
    /// learned as a set, with the stored snapshot's value there, and grow as new ones show.
    #[test]
    fn rotating_teasers_are_learned_as_sets() {
        let page = |teaser: &str| format!("Inbox\n{teaser}\nFooter links\n");
        let (stored, first, second) = (
            page("Try Acme Pro free"),
            page("Read our engineering blog"),
            page("Join the webinar today"),
        );
        let all = learn(&first, &second, &stored, &[]);
        assert_eq!(all.len(), 1, "{all:?}");
        let res = compile(&all);
        for v in [&stored, &first, &second] {
            assert_eq!(apply(&res, v), apply(&res, &page("Try Acme Pro free")));
        }
        assert_ne!(
            apply(&res, &page("Try Acme Pro free")),
            apply(&res, &page("Inbox is moving to a new address")),
            "a value never seen is not masked"
        );
        // A fourth value joins the same set; the set is not learned twice.
        let fourth = page("Download the mobile app");
        let grown = learn(&second, &fourth, "", &all);
        assert_eq!(grown.len(), 1, "{grown:?}");
        let res = compile(&grown);
        assert_eq!(apply(&res, &fourth), apply(&res, &stored));
        assert_eq!(alternatives(&grown[0]).len(), 4);
    }

    #[test]
    fn values_with_bars_and_dots_stay_literal() {
        let all = learn("Deal: a|b...\n", "Sale | c.d\n", "", &[]);
        let res = compile(&all);
        assert_eq!(alternatives(&all[0]).len(), 2, "{all:?}");
        assert_eq!(apply(&res, "Deal: a|b...\n"), apply(&res, "Sale | c.d\n"));
        assert_ne!(apply(&res, "Deal: a|b...\n"), apply(&res, "Deal: axbxyz\n"));
    }
}
