//! Built-in volatile masks: fragments that churn without meaning (timestamps, dates, relative
//! times, UUIDs, tokens, cache-busting query strings, request ids).
//!
//! Masks never change what is stored or shown: a snapshot keeps the real text and diffs show
//! real values. They change only what decides "changed": the content hash is taken over the
//! masked text, so a change made only of masked fragments is `noise`, not an alert.
//!
//! Word boundaries are ASCII (`(?-u:\b)`): a Unicode `\b` makes the regex engine give up its
//! DFAs on non-ASCII text, which cost 8 ms a page (a 10x slower cold pass).
//!
//! A mask never reaches across a line break nor looks past its line (see `H`): masking a
//! text is masking each of its lines, which the judge relies on to mask only the lines where
//! two texts differ.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use regex::{Captures, Regex};

/// One built-in mask.
pub struct Mask {
    pub name: &'static str,
    pub what: &'static str,
    /// The pattern; masks are only ever compiled together (see [`MaskSet`]).
    re: &'static LazyLock<String>,
    /// Whether a match stands where it is volatile, and why (regex has no look-around, and
    /// what a date means depends on the words around it).
    accept: fn(&Hit<'_>) -> Option<&'static str>,
}

/// One match of a mask in the text it was found in.
pub struct Hit<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

impl<'a> Hit<'a> {
    fn matched(&self) -> &'a str {
        &self.text[self.start..self.end]
    }

    fn before(&self) -> Option<char> {
        self.text[..self.start].chars().next_back()
    }

    fn after(&self) -> Option<char> {
        self.text[self.end..].chars().next()
    }

    /// The rest of the match's line before and after it.
    fn line_rest(&self) -> (&'a str, &'a str) {
        let line_start = self.text[..self.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[self.end..]
            .find('\n')
            .map_or(self.text.len(), |i| self.end + i);
        (
            &self.text[line_start..self.start],
            &self.text[self.end..line_end],
        )
    }

    /// The clause the match stands in: its line, cut at sentence ends and separators.
    fn clause(&self) -> (&'a str, &'a str) {
        let (before, after) = self.line_rest();
        let before = clause_ends(before)
            .last()
            .map_or(before, |(_, end)| &before[end..]);
        // ". " ends a sentence; a bare "." is a decimal point or a domain.
        let before = before.rsplit_once(". ").map_or(before, |(_, b)| b);
        let after = clause_ends(after)
            .next()
            .map_or(after, |(start, _)| &after[..start]);
        let after = after.split_once(". ").map_or(after, |(a, _)| a);
        (before, after)
    }
}

/// What separates the clauses of a line (besides ". "): `;`, `|`, `·`, `•`, `!` and `?`.
/// Their byte spans in `s`, found byte by byte: this runs for every date on a page, over
/// lines hundreds of characters long, and decoding them char by char was a fifth of masking.
fn clause_ends(s: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = s.as_bytes();
    b.iter().enumerate().filter_map(move |(i, &c)| match c {
        b';' | b'|' | b'!' | b'?' => Some((i, i + 1)),
        // U+00B7 is C2 B7; U+2022 is E2 80 A2 (a continuation byte ends each).
        0xB7 if i >= 1 && b[i - 1] == 0xC2 => Some((i - 1, i + 1)),
        0xA2 if i >= 2 && b[i - 2] == 0xE2 && b[i - 1] == 0x80 => Some((i - 2, i + 1)),
        _ => None,
    })
}

fn always(_: &Hit<'_>) -> Option<&'static str> {
    Some("always volatile")
}

/// Words that make the date, time or number next to them a stamp. Words end at anything but
/// a letter, so the stamp in a JSON key (`feed_updated`, `build_date`) counts too.
static STAMP_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[^a-z])(?:generated|regenerated|updated|last[\s_-]?(?:update|change|edit|sync|run|check|seen)|modified|mtime|built|build(?:[\s_-]?(?:date|time|at|on|id|hash|number|no))?|compiled|rendered|cached|fetched|retrieved|refreshed|synced|crawled|indexed|snapshot|timestamp|ts|served|request(?:ed)?|as\s+of|current\s+time|server\s+time|local\s+time|now|today|copyright)(?:[^a-z]|$)|\u{a9}|\(c\)",
    )
    .expect("stamp words")
});

/// Words that make a date, time or number next to them a fact: a deadline, a window, a limit.
static FACT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[^a-z])(?:remov|deprecat|sunset|retir|end[\s_-]of[\s_-]life|eol|deadline|until|till|expir|due|effective|schedul|maintenance|window|outage|downtime|migrat|launch|releas|availab|start|begin|end|clos|open|before|after|from|between|limit|quota|price|cost|fee|version|fingerprint|checksum|sha\d*|digest|signature|key|commit|valid)",
    )
    .expect("fact words")
});

/// Words that say nothing about what a date stands for.
static FILLER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:at|on|the|of|in|and|am|pm|utc|gmt|z)$").expect("filler words")
});

/// A date, time or number is masked only where it is a stamp: next to a stamp word
/// ("generated", "last updated", "built", "©"), or standing alone (a footer date, a bare
/// `<time>`). Inside a sentence that states a fact ("v1 is removed on 2027-01-15", a
/// maintenance window, a limit) it is kept, and so inside an identifier, a version, a
/// host:port or an IP address.
fn stamp(hit: &Hit<'_>) -> Option<&'static str> {
    let inside =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c));
    if inside(hit.before()) || inside(hit.after()) {
        return None;
    }
    let (before, after) = hit.clause();
    if STAMP_WORDS.is_match(before) || STAMP_WORDS.is_match(after) {
        return Some("a stamp (next to a word like \"updated\", \"generated\" or \"built\")");
    }
    if FACT_WORDS.is_match(before) || FACT_WORDS.is_match(after) {
        return None;
    }
    // Alone: at most one word of two letters or more that is not filler (the count stops at
    // the second, a long line is not split to its end).
    let mut words = before
        .split(|c: char| !c.is_alphanumeric())
        .chain(after.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).nth(1).is_some())
        .filter(|w| !FILLER.is_match(w));
    words
        .nth(1)
        .is_none()
        .then_some("a stamp (it stands alone in its line)")
}

/// A clock time: a real one (hours below 24, minutes below 60), not one end of a range
/// (`02:00-04:00` is a window), and a stamp where it stands.
fn clock(hit: &Hit<'_>) -> Option<&'static str> {
    let m = hit.matched();
    let mut parts = m
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let (Some(h), Some(min)) = (parts.next(), parts.next()) else {
        return None;
    };
    if h.parse::<u32>().map_or(true, |h| h > 23) || min.parse::<u32>().map_or(true, |m| m > 59) {
        return None;
    }
    let range = |s: &str| {
        let s = s.trim();
        s.starts_with(['-', '\u{2013}', '\u{2014}'])
            || s.starts_with("to ")
            || s.starts_with("and ")
    };
    let (line_before, line_after) = hit.line_rest();
    let tail_before = line_before.trim_end();
    if range(line_after)
        || tail_before.ends_with(['-', '\u{2013}', '\u{2014}'])
        || tail_before.ends_with(" to")
        || tail_before.ends_with("between")
    {
        return None;
    }
    stamp(hit)
}

/// A date-time, a date or an epoch number: a stamp where it stands, or a clock time.
fn when(hit: &Hit<'_>) -> Option<&'static str> {
    let m = hit.matched();
    let clock_only = m.len() <= 20
        && m.chars().next().is_some_and(|c| c.is_ascii_digit())
        && m.as_bytes().get(1..3).is_some_and(|b| b.contains(&b':'));
    if clock_only { clock(hit) } else { stamp(hit) }
}

/// A base64-ish token: mixed case and digits, so words and identifiers are left alone; a
/// fingerprint, checksum or key stated as such is a fact.
fn tokenish(hit: &Hit<'_>) -> Option<&'static str> {
    let s = hit.matched();
    let body = s.trim_end_matches('=');
    let hex = body.chars().all(|c| c.is_ascii_hexdigit());
    let digit = body.chars().any(|c| c.is_ascii_digit());
    let lower = body.chars().any(|c| c.is_ascii_lowercase());
    let upper = body.chars().any(|c| c.is_ascii_uppercase());
    if !((hex && body.len() >= 16 && digit) || (digit && lower && upper)) {
        return None;
    }
    let (before, after) = hit.clause();
    if STAMP_WORDS.is_match(before) || STAMP_WORDS.is_match(after) {
        return Some("a build stamp or token");
    }
    if FACT_WORDS.is_match(before) || FACT_WORDS.is_match(after) {
        return None;
    }
    Some("a token (mixed-case letters and digits, or a long hex run)")
}

const MONTH: &str = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";

const WEEKDAY: &str = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*";

/// The blanks a mask may span, as a class's contents: every ASCII space but the newline. No
/// mask reaches across a line, and none looks past its own (see [`Hit::line_rest`]), so a
/// text masks line by line: a change is judged by masking only the lines that differ.
const H: &str = r"\t\x0B\x0C\r\x20";

/// Date-times in the forms servers, generators and `Date.prototype.toString` print: ISO 8601,
/// RFC 1123 and 850, asctime, weekday first with month names; clock times; epoch numbers.
static TIMESTAMPS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?x)
        (?-u:\b)\d{{4}}-\d{{2}}-\d{{2}}[T\x20]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?[{H}]*(?:Z|UTC|GMT|[+-]\d{{2}}:?\d{{2}})?
        | (?-u:\b){WEEKDAY},?[{H}]+\d{{1,2}}[{H}-]+{MONTH}[{H}-]+\d{{2,4}}(?:[{H}]+\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?(?:[{H}]*(?:GMT|UTC|[+-]\d{{4}}))?
        | (?-u:\b){WEEKDAY},?[{H}]+{MONTH}[{H}]+\d{{1,2}},?[{H}]+(?:\d{{1,2}}:\d{{2}}:\d{{2}}[{H}]+\d{{4}}|\d{{4}}(?:,?[{H}]+\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:[{H}]*[AaPp][Mm])?)?)(?:[{H}]*(?:GMT|UTC)?[{H}]*[+-]\d{{4}})?(?:[{H}]*\([A-Za-z\x20]+\))?
        | (?-u:\b)\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:[{H}]*[AaPp]\.?[Mm]\.?)?(?:[{H}]*(?:UTC|GMT|[A-Z]{{3,4}}(?-u:\b)))?
        | (?-u:\b)1[5-9]\d{{8}}(?:\d{{3}})?(?-u:\b)"
    )
});

/// Dates: ISO, slashed, dotted, and with month names (with or without the day).
static DATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?x)
        (?-u:\b)\d{{4}}[-/]\d{{2}}[-/]\d{{2}}(?-u:\b)
        | (?-u:\b)\d{{1,2}}/\d{{1,2}}/\d{{2,4}}(?-u:\b)
        | (?-u:\b)\d{{1,2}}\.\d{{1,2}}\.\d{{4}}(?-u:\b)
        | (?-u:\b)(?:{WEEKDAY},?[{H}]+)?{MONTH}\.?[{H}]+\d{{1,2}}(?:st|nd|rd|th)?,?[{H}]+\d{{4}}(?-u:\b)
        | (?-u:\b)(?:{WEEKDAY},?[{H}]+)?\d{{1,2}}(?:st|nd|rd|th)?[{H}]+{MONTH}\.?,?[{H}]+\d{{4}}(?-u:\b)
        | (?-u:\b){MONTH}[{H}]+\d{{4}}(?-u:\b)"
    )
});

static RELATIVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?ix)
        (?-u:\b)(?:\d+|an?|one|a\x20few)[{H}]+(?:sec(?:ond)?|min(?:ute)?|h(?:ou)?r|day|week|month|year)s?[{H}]+ago(?-u:\b)
        | (?-u:\b)(?:just\x20now|moments?\x20ago|a\x20moment\x20ago)(?-u:\b)
        | (?-u:\b)\d+[{H}]*(?:s|m|h|d|w|mo|y)[{H}]+ago(?-u:\b)"
    )
});

static UUIDS: LazyLock<String> = LazyLock::new(|| {
    r"(?-u:\b)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?-u:\b)"
        .to_string()
});

static REQUEST_IDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r"(?i)(?-u:\b)(?:request|req|trace|span|correlation|ray)[{H}_-]?id(?-u:\b)[{H}]*[:=#]?[{H}]*[\w-]{{6,}}"
    )
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
        accept: always,
    },
    Mask {
        name: "uuids",
        what: "UUIDs",
        re: &UUIDS,
        accept: always,
    },
    Mask {
        name: "timestamps",
        what: "date-times (ISO 8601, HTTP and generator dates), clock times, Unix epoch seconds/ms, where they are stamps",
        re: &TIMESTAMPS,
        accept: when,
    },
    Mask {
        name: "dates",
        what: "dates (2026-11-21, 11/21/2026, Nov 21, 2026, 21 November 2026), where they are stamps",
        re: &DATES,
        accept: stamp,
    },
    Mask {
        name: "relative_times",
        what: "relative times (\"3 minutes ago\", \"just now\")",
        re: &RELATIVE,
        accept: always,
    },
    Mask {
        name: "cache_busters",
        what: "cache-busting query values (?v=, ?t=, ?hash=, ...)",
        re: &CACHE_BUSTERS,
        accept: always,
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

    /// The text with every masked fragment replaced by a placeholder; borrowed when nothing
    /// matched (a 10 MB page is not copied to learn that it has no stamps).
    pub fn apply<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.regex() {
            None => Cow::Borrowed(text),
            Some(re) => re.replace_all(text, |c: &Captures<'_>| replacement(text, c)),
        }
    }

    /// What each mask hid in the text, and why: (mask, fragments), for `forewarn test`.
    pub fn explain(&self, text: &str) -> Vec<(&'static Mask, Vec<Fragment>)> {
        let Some(re) = self.regex() else {
            return Vec::new();
        };
        let mut hits: Vec<Vec<Fragment>> = vec![Vec::new(); BUILTIN.len()];
        for c in re.captures_iter(text) {
            if let Some((i, m)) = which(&c)
                && let Some(why) = (m.accept)(&hit(text, &c))
            {
                hits[i].push(Fragment {
                    text: c[0].to_string(),
                    why,
                });
            }
        }
        BUILTIN
            .iter()
            .zip(hits)
            .filter(|(_, h)| !h.is_empty())
            .collect()
    }
}

/// A masked fragment and why it was masked where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub text: String,
    pub why: &'static str,
}

fn hit<'a>(text: &'a str, c: &Captures<'_>) -> Hit<'a> {
    let m = c.get(0).expect("a match has a whole");
    Hit {
        text,
        start: m.start(),
        end: m.end(),
    }
}

/// The mask whose group matched.
fn which(c: &Captures<'_>) -> Option<(usize, &'static Mask)> {
    static GROUPS: LazyLock<Vec<String>> =
        LazyLock::new(|| (0..BUILTIN.len()).map(|i| format!("m{i}")).collect());
    BUILTIN
        .iter()
        .enumerate()
        .find(|(i, _)| c.name(&GROUPS[*i]).is_some())
}

fn replacement(text: &str, c: &Captures<'_>) -> String {
    let whole = &c[0];
    match which(c) {
        Some((_, m)) if (m.accept)(&hit(text, c)).is_some() => {
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
        MaskSet::all().apply(s).into_owned()
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
    fn stamps_in_the_forms_generators_print_are_masked() {
        for (a, b) in [
            (
                "Documentation generated on Tue Feb 20 2024",
                "Documentation generated on Fri Feb 23 2024",
            ),
            (
                "Built Tue Feb 20 2024 10:00:00 GMT+0100 (Central European Standard Time)",
                "Built Fri Feb 23 2024 17:45:12 GMT+0100 (Central European Standard Time)",
            ),
            (
                "Last modified: Tue Feb 20 10:00:00 2024",
                "Last modified: Fri Feb 23 08:01:02 2024",
            ),
            (
                "Last-Modified: Tuesday, 20-Feb-24 10:00:00 GMT",
                "Last-Modified: Friday, 23-Feb-24 08:00:00 GMT",
            ),
            ("Feb 20, 2024", "Feb 23, 2024"),
            ("Stand: 20.02.2024", "Stand: 23.02.2024"),
            ("Page updated February 2024", "Page updated March 2024"),
            (
                "  \"generated_at\": \"2026-11-20T10:00:00Z\",",
                "  \"generated_at\": \"2026-11-21T11:00:00Z\",",
            ),
            ("  \"ts\": 1763632800,", "  \"ts\": 1763719200,"),
            (
                "Cached copy of 2026/11/20; refreshed hourly",
                "Cached copy of 2026/11/21; refreshed hourly",
            ),
        ] {
            assert_eq!(masked(a), masked(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn dates_times_and_numbers_that_state_facts_are_kept() {
        for (a, b) in [
            ("v1 is removed on 2027-01-15", "v1 is removed on 2026-12-05"),
            ("Deadline: 2027-01-15", "Deadline: 2026-12-05"),
            (
                "Maintenance window 02:00-04:00 UTC",
                "Maintenance window 14:00-16:00 UTC",
            ),
            (
                "Down between 02:00 and 04:00",
                "Down between 14:00 and 16:00",
            ),
            (
                "Monthly limit: 1500000000 requests",
                "Monthly limit: 1600000000 requests",
            ),
            (
                "Signing key fingerprint: 3f2a9c1b7d4e5f60718293a4b5c6d7e8",
                "Signing key fingerprint: 9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
            ),
            ("Connect to 127.0.0.1:8801", "Connect to 127.0.0.1:8802"),
            (
                "Pinned to nightly-2026-11-20",
                "Pinned to nightly-2026-11-21",
            ),
            ("Opens at 9:00 on weekdays", "Opens at 10:00 on weekdays"),
            (
                "The API will be retired on Feb 20, 2027",
                "The API will be retired on Mar 20, 2027",
            ),
        ] {
            assert_ne!(masked(a), masked(b), "{a:?} vs {b:?} must stay different");
        }
    }

    /// The byte search finds what a search char by char for the separators finds.
    #[test]
    fn clause_ends_are_the_separator_chars() {
        const ENDS: &[char] = &[';', '|', '\u{b7}', '\u{2022}', '!', '?'];
        let lines = [
            "",
            "plain words, no separators. none",
            "a; b | c \u{b7} d \u{2022} e! f? g",
            "\u{b7}\u{2022}\u{b7}",
            "caf\u{e9} \u{2023} \u{2122} \u{c2b7} \u{b6}\u{b7} \u{20a2}\u{2022}",
            "\u{1f600}?\u{1f600};\u{e2}\u{80}",
        ];
        for line in lines {
            let chars: Vec<(usize, usize)> = line
                .char_indices()
                .filter(|(_, c)| ENDS.contains(c))
                .map(|(i, c)| (i, i + c.len_utf8()))
                .collect();
            assert_eq!(clause_ends(line).collect::<Vec<_>>(), chars, "{line:?}");
        }
    }

    /// No mask reaches across a line or looks past its own: masking a text is masking each of
    /// its lines (what lets a change be judged on the lines that differ alone).
    #[test]
    fn a_text_masks_line_by_line() {
        let text = "Built 2026-11-20T10:00:00Z\n\nUpdated Nov\n21, 2026\nMaintenance 02:00 -\n04:00 UTC\n\
                    generated at 10:00\n- 11:00\nTue, 03 Nov 2026\n10:00:00 GMT\nRequest ID:\n8f2c91ab77\n\
                    3 minutes\nago\n  at 12:30  \r\nlast updated Feb 20, 2024\nJust now\n10:00";
        let by_line: Vec<String> = text.split('\n').map(masked).collect();
        assert_eq!(masked(text), by_line.join("\n"));
        let set = MaskSet::all();
        for (_, fragments) in set.explain(text) {
            assert!(
                fragments.iter().all(|f| !f.text.contains('\n')),
                "{fragments:?}"
            );
        }
    }

    #[test]
    fn explain_says_why() {
        let e = MaskSet::all().explain("Generated 2026-11-20T10:00:00Z\nFeb 20, 2024");
        let why: Vec<_> = e
            .iter()
            .flat_map(|(_, f)| f.iter().map(|f| f.why))
            .collect();
        assert!(why[0].contains("stamp (next to a word"), "{why:?}");
        assert!(why[1].contains("stands alone"), "{why:?}");
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
        assert_eq!(e[0].1[0].text, "2026-11-20T10:00:00Z");
    }
}
