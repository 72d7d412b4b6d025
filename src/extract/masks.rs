//! Built-in volatile masks: fragments that churn without meaning (timestamps, dates, relative
//! times, UUIDs, tokens, cache-busting query strings, request ids).
//!
//! Masks never change what is stored or shown: a snapshot keeps the real text and diffs show
//! real values. They change only what decides "changed": the content hash is taken over the
//! masked text, so a change made only of masked fragments is `noise`, not an alert.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// One built-in mask.
pub struct Mask {
    pub name: &'static str,
    pub what: &'static str,
    re: &'static LazyLock<Regex>,
    /// A further check on a match (regex has no look-around).
    accept: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

/// A base64-ish token: mixed case and digits, so words and identifiers are left alone.
fn tokenish(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    let hex = body.chars().all(|c| c.is_ascii_hexdigit());
    let digit = body.chars().any(|c| c.is_ascii_digit());
    let lower = body.chars().any(|c| c.is_ascii_lowercase());
    let upper = body.chars().any(|c| c.is_ascii_uppercase());
    (hex && body.len() >= 16 && digit) || (digit && lower && upper)
}

const MONTH: &str = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";

static TIMESTAMPS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?x)
        \b\d{{4}}-\d{{2}}-\d{{2}}[T\x20]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{{2}}:?\d{{2}})?
        | \b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+\d{{1,2}}\s+{MONTH}\s+\d{{4}}(?:\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?(?:\s*(?:GMT|UTC|[+-]\d{{4}}))?
        | \b\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s*(?:UTC|GMT|[A-Z]{{3,4}}\b))?
        | \b1[5-9]\d{{8}}(?:\d{{3}})?\b"
    ))
    .expect("timestamp mask compiles")
});

static DATES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?x)
        \b\d{{4}}-\d{{2}}-\d{{2}}\b
        | \b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b
        | \b{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b
        | \b\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH}\.?,?\s+\d{{4}}\b"
    ))
    .expect("date mask compiles")
});

static RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \b(?:\d+|an?|one|a\x20few)\s+(?:sec(?:ond)?|min(?:ute)?|h(?:ou)?r|day|week|month|year)s?\s+ago\b
        | \b(?:just\x20now|moments?\x20ago|a\x20moment\x20ago)\b
        | \b\d+\s*(?:s|m|h|d|w|mo|y)\s+ago\b",
    )
    .expect("relative-time mask compiles")
});

static UUIDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
        .expect("uuid mask compiles")
});

static REQUEST_IDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:request|req|trace|span|correlation|ray)[\s_-]?id\b\s*[:=#]?\s*[\w-]{6,}")
        .expect("request-id mask compiles")
});

static CACHE_BUSTERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([?&](?:v|ver|version|_|t|ts|cb|cachebust|cache|hash|rev|build|nonce)=)[\w.~-]+")
        .expect("cache-buster mask compiles")
});

static TOKENS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Za-z0-9_+-]{16,}={0,2}").expect("token mask compiles"));

/// The built-in masks, in the order they apply (specific before general).
pub static BUILTIN: &[Mask] = &[
    Mask {
        name: "request_ids",
        what: "request, trace and ray ids (\"Request ID: 8f2c91ab\")",
        re: &REQUEST_IDS,
        accept: any,
    },
    Mask {
        name: "uuids",
        what: "UUIDs",
        re: &UUIDS,
        accept: any,
    },
    Mask {
        name: "timestamps",
        what: "date-times (ISO 8601, HTTP dates), clock times, Unix epoch seconds/ms",
        re: &TIMESTAMPS,
        accept: any,
    },
    Mask {
        name: "dates",
        what: "dates (2026-11-21, 11/21/2026, Nov 21, 2026, 21 November 2026)",
        re: &DATES,
        accept: any,
    },
    Mask {
        name: "relative_times",
        what: "relative times (\"3 minutes ago\", \"just now\")",
        re: &RELATIVE,
        accept: any,
    },
    Mask {
        name: "cache_busters",
        what: "cache-busting query values (?v=, ?t=, ?hash=, ...)",
        re: &CACHE_BUSTERS,
        accept: any,
    },
    Mask {
        name: "tokens",
        what: "long hex or base64 tokens (build hashes, nonces, CSRF tokens)",
        re: &TOKENS,
        accept: tokenish,
    },
];

/// The names of the built-in masks.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|m| m.name).collect()
}

/// Which masks a watch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskSet(Vec<&'static str>);

impl MaskSet {
    pub fn all() -> Self {
        MaskSet(names())
    }

    pub fn none() -> Self {
        MaskSet(Vec::new())
    }

    /// From a list of names; an unknown name is an error that lists the known ones.
    pub fn from_names(list: &[String]) -> Result<Self, String> {
        let mut picked = Vec::new();
        for n in list {
            let m = BUILTIN.iter().find(|m| m.name == n).ok_or_else(|| {
                let hint = crate::config::closest(n, names().into_iter())
                    .map(|b| format!(" (did you mean `{b}`?)"))
                    .unwrap_or_default();
                format!(
                    "unknown mask `{n}`{hint}; the masks are {}",
                    names().join(", ")
                )
            })?;
            picked.push(m.name);
        }
        // Keep the built-in order, whatever order the user wrote.
        picked.sort_by_key(|n| BUILTIN.iter().position(|m| m.name == *n));
        picked.dedup();
        Ok(MaskSet(picked))
    }

    pub fn names(&self) -> &[&'static str] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn masks(&self) -> impl Iterator<Item = &'static Mask> + '_ {
        BUILTIN.iter().filter(|m| self.0.contains(&m.name))
    }

    /// The text with every masked fragment replaced by a placeholder.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for m in self.masks() {
            if !m.re.is_match(&out) {
                continue;
            }
            out =
                m.re.replace_all(&out, |c: &Captures<'_>| replacement(m, c))
                    .into_owned();
        }
        out
    }

    /// What each mask hid in the text: (mask, fragments), for `forewarn test`.
    pub fn explain(&self, text: &str) -> Vec<(&'static Mask, Vec<String>)> {
        let mut out = Vec::new();
        let mut rest = text.to_string();
        for m in self.masks() {
            let mut hits = Vec::new();
            for c in m.re.captures_iter(&rest) {
                let whole = &c[0];
                if (m.accept)(whole) {
                    hits.push(whole.to_string());
                }
            }
            if !hits.is_empty() {
                rest =
                    m.re.replace_all(&rest, |c: &Captures<'_>| replacement(m, c))
                        .into_owned();
                out.push((m, hits));
            }
        }
        out
    }
}

fn replacement(m: &Mask, c: &Captures<'_>) -> String {
    let whole = &c[0];
    if !(m.accept)(whole) {
        return whole.to_string();
    }
    // Keep a cache-buster's parameter name: `?v=` stays, only the value is masked.
    let keep = c.get(1).map_or("", |g| g.as_str());
    format!("{keep}\u{27e8}{}\u{27e9}", m.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(s: &str) -> String {
        MaskSet::all().apply(s)
    }

    #[test]
    fn volatile_fragments_are_masked() {
        for (a, b) in [
            (
                "Built 2026-11-20T10:00:00Z",
                "Built 2026-11-21T09:13:44.123+01:00",
            ),
            ("Updated 3 minutes ago", "Updated 1 hour ago"),
            ("at 10:02:11 PM", "at 9:58:03 AM"),
            (
                "Last modified: Tue, 03 Nov 2026 10:00:00 GMT",
                "Last modified: Wed, 04 Nov 2026 11:00:00 GMT",
            ),
            (
                "id 123e4567-e89b-12d3-a456-426614174000",
                "id 9b2e4f60-0c1d-4e5f-8a9b-0c1d2e3f4a5b",
            ),
            ("build a3f9c2e17b6d4e01", "build 0c9d8e7f6a5b4c3d"),
            (
                "csrf: Zm9vYmFyQmF6MTIzNDU2Nzg5",
                "csrf: QWxhZGRpbjpPcGVuU2VzYW1lMTI",
            ),
            ("/app.js?v=1a2b3c", "/app.js?v=9z8y7x"),
            ("Request ID: 8f2c91ab77", "Request ID: 11aa22bb33"),
            ("Ray ID: 7d3f9a8b6c5e4d3c", "Ray ID: 1a2b3c4d5e6f7a8b"),
            ("© Nov 20, 2026", "© Nov 21, 2026"),
        ] {
            assert_eq!(masked(a), masked(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn meaningful_text_is_not_masked() {
        for (a, b) in [
            ("Requires macOS Mojave 10.14", "Requires macOS Sonoma 14"),
            ("version 1.2.3", "version 1.2.4"),
            (
                "ClipEventTimelineEntryResponse",
                "ClipEventTimelineEntryResponses",
            ),
            ("rate limit 100 per minute", "rate limit 50 per minute"),
            (
                "[Docs](https://github.com/rust-lang/rust/issues/74990)",
                "[Docs](https://github.com/rust-lang/rust/issues/74991)",
            ),
            (
                "LATEST_FIREFOX_RELEASED_DEVEL_VERSION",
                "LATEST_FIREFOX_VERSION",
            ),
            ("Send", "Send now"),
        ] {
            assert_ne!(masked(a), masked(b), "{a:?} vs {b:?} must stay different");
        }
    }

    #[test]
    fn picking_masks() {
        let only = MaskSet::from_names(&["dates".into()]).unwrap();
        assert_eq!(
            only.apply("on 2026-11-20 at 10:00"),
            "on \u{27e8}dates\u{27e9} at 10:00"
        );
        let err = MaskSet::from_names(&["timestamp".into()]).unwrap_err();
        assert!(err.contains("did you mean `timestamps`?"), "{err}");
    }

    #[test]
    fn explain_lists_fragments() {
        let e = MaskSet::all().explain("Built 2026-11-20T10:00:00Z, 3 minutes ago");
        let names: Vec<_> = e.iter().map(|(m, _)| m.name).collect();
        assert_eq!(names, vec!["timestamps", "relative_times"]);
        assert_eq!(e[0].1, vec!["2026-11-20T10:00:00Z"]);
    }
}
