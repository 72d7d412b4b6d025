//! Built-in volatile masks: fragments that churn without meaning (timestamps, dates, relative
//! times, UUIDs, tokens, cache-busting query strings, request ids).
//!
//! Masks never change what is stored or shown: a snapshot keeps the real text and diffs show
//! real values. They change only what decides "changed": the content hash is taken over the
//! masked text, so a change made only of masked fragments is `noise`, not an alert.
//!
//! Word boundaries are ASCII (`(?-u:\b)`): a Unicode `\b` makes the regex engine give up its
//! DFAs on non-ASCII text, which cost 8 ms a page (a 10x slower cold pass).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use regex::{Captures, Regex};

/// One built-in mask.
pub struct Mask {
    pub name: &'static str,
    pub what: &'static str,
    /// The pattern; masks are only ever compiled together (see [`MaskSet`]).
    re: &'static LazyLock<String>,
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

static TIMESTAMPS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?x)
        (?-u:\b)\d{{4}}-\d{{2}}-\d{{2}}[T\x20]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{{2}}:?\d{{2}})?
        | (?-u:\b)(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+\d{{1,2}}\s+{MONTH}\s+\d{{4}}(?:\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?(?:\s*(?:GMT|UTC|[+-]\d{{4}}))?
        | (?-u:\b)\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?(?:\s*(?:UTC|GMT|[A-Z]{{3,4}}(?-u:\b)))?
        | (?-u:\b)1[5-9]\d{{8}}(?:\d{{3}})?(?-u:\b)"
    )
});

static DATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?x)
        (?-u:\b)\d{{4}}-\d{{2}}-\d{{2}}(?-u:\b)
        | (?-u:\b)\d{{1,2}}/\d{{1,2}}/\d{{2,4}}(?-u:\b)
        | (?-u:\b){MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}(?-u:\b)
        | (?-u:\b)\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH}\.?,?\s+\d{{4}}(?-u:\b)"
    )
});

static RELATIVE: LazyLock<String> = LazyLock::new(|| {
    r"(?ix)
        (?-u:\b)(?:\d+|an?|one|a\x20few)\s+(?:sec(?:ond)?|min(?:ute)?|h(?:ou)?r|day|week|month|year)s?\s+ago(?-u:\b)
        | (?-u:\b)(?:just\x20now|moments?\x20ago|a\x20moment\x20ago)(?-u:\b)
        | (?-u:\b)\d+\s*(?:s|m|h|d|w|mo|y)\s+ago(?-u:\b)".to_string()
});

static UUIDS: LazyLock<String> = LazyLock::new(|| {
    r"(?-u:\b)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?-u:\b)"
        .to_string()
});

static REQUEST_IDS: LazyLock<String> = LazyLock::new(|| {
    r"(?i)(?-u:\b)(?:request|req|trace|span|correlation|ray)[\s_-]?id(?-u:\b)\s*[:=#]?\s*[\w-]{6,}"
        .to_string()
});

static CACHE_BUSTERS: LazyLock<String> = LazyLock::new(|| {
    r"(?P<cbkey>[?&](?:v|ver|version|_|t|ts|cb|cachebust|cache|hash|rev|build|nonce)=)[\w.~-]+"
        .to_string()
});

static TOKENS: LazyLock<String> =
    LazyLock::new(|| r"(?-u:\b)[A-Za-z0-9_+-]{16,}={0,2}".to_string());

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

/// Which masks a watch uses, compiled into one regex (one scan of the text, whatever the
/// number of masks; the capture engine runs only where something matched).
#[derive(Clone)]
pub struct MaskSet {
    /// Shared: every watch with the same masks holds the same two pointers.
    names: Arc<[&'static str]>,
    re: Arc<OnceLock<Arc<Regex>>>,
}

impl PartialEq for MaskSet {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

impl Eq for MaskSet {}

impl std::fmt::Debug for MaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MaskSet").field(&self.names).finish()
    }
}

/// Combined regexes by mask selection: 10,000 watches with the defaults share one.
static COMBINED: LazyLock<Mutex<HashMap<Vec<&'static str>, Arc<Regex>>>> =
    LazyLock::new(Default::default);

impl MaskSet {
    fn new(names: Vec<&'static str>) -> Self {
        MaskSet {
            names: names.into(),
            re: Arc::new(OnceLock::new()),
        }
    }

    /// The combined regex, compiled on first use (a pass of 304s never compiles it).
    fn regex(&self) -> Option<&Regex> {
        if self.names.is_empty() {
            return None;
        }
        let re = self.re.get_or_init(|| {
            let mut cache = COMBINED.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entry(self.names.to_vec())
                .or_insert_with(|| {
                    let alternatives = BUILTIN
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| self.names.contains(&m.name))
                        .map(|(i, m)| format!("(?P<m{i}>{})", m.re.as_str()))
                        .collect::<Vec<_>>()
                        .join("|");
                    // ASCII classes (\d, \w, \s, \b): small automata, DFAs on any text.
                    let pattern = format!("(?-u){alternatives}");
                    Arc::new(Regex::new(&pattern).expect("the built-in masks combine"))
                })
                .clone()
        });
        Some(re)
    }

    pub fn all() -> Self {
        MaskSet::new(names())
    }

    pub fn none() -> Self {
        MaskSet::new(Vec::new())
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
        Ok(MaskSet::new(picked))
    }

    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The text with every masked fragment replaced by a placeholder.
    pub fn apply(&self, text: &str) -> String {
        match self.regex() {
            None => text.to_string(),
            Some(re) => re
                .replace_all(text, |c: &Captures<'_>| replacement(c))
                .into_owned(),
        }
    }

    /// What each mask hid in the text: (mask, fragments), for `forewarn test`.
    pub fn explain(&self, text: &str) -> Vec<(&'static Mask, Vec<String>)> {
        let Some(re) = self.regex() else {
            return Vec::new();
        };
        let mut hits: Vec<Vec<String>> = vec![Vec::new(); BUILTIN.len()];
        for c in re.captures_iter(text) {
            if let Some((i, m)) = which(&c)
                && (m.accept)(&c[0])
            {
                hits[i].push(c[0].to_string());
            }
        }
        BUILTIN
            .iter()
            .zip(hits)
            .filter(|(_, h)| !h.is_empty())
            .collect()
    }
}

/// The mask whose group matched.
fn which(c: &Captures<'_>) -> Option<(usize, &'static Mask)> {
    BUILTIN
        .iter()
        .enumerate()
        .find(|(i, _)| c.name(&format!("m{i}")).is_some())
}

fn replacement(c: &Captures<'_>) -> String {
    let whole = &c[0];
    match which(c) {
        Some((_, m)) if (m.accept)(whole) => {
            // Keep a cache-buster's parameter name: `?v=` stays, only the value is masked.
            let keep = c.name("cbkey").map_or("", |g| g.as_str());
            format!("{keep}\u{27e8}{}\u{27e9}", m.name)
        }
        _ => whole.to_string(),
    }
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
