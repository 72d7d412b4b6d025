//! Raw body -> normalised content: the text that is hashed, stored and diffed.
//!
//! HTML is parsed with scraper and rendered as readable text (one block per line, link
//! targets shown); JSON is canonicalised (sorted keys, pretty-printed); anything else is
//! compared as text. `ignore` regexes are then deleted and whitespace normalised.

mod decode;
pub mod feed;
pub mod html;
mod html_scan;
mod html_stream;
pub mod json;
mod lean;
mod nesting;
pub mod structure;
pub mod version;

use crate::config::Kind;
use crate::config::Watch;

pub use crate::config::spec::ExtractSpec;
pub use decode::decode;

/// The normalised content of one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    /// Which reading was used: "html", "json", "yaml", "text", "feed" or "version".
    pub format: &'static str,
    /// Selectors (or pointers) in `select` that matched nothing.
    pub missing: Vec<String>,
}

/// Why a body could not be turned into content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "the body is binary ({content_type}), not text: check the URL, or watch a page that links to the file"
    )]
    Binary { content_type: String },
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the body is not valid YAML: {0}")]
    InvalidYaml(String),
    #[error("{0}; check the URL, or set kind = \"html\" or \"text\" to compare it as a page")]
    InvalidFeed(String),
    #[error(
        "`select` takes CSS selectors, but the server sent {content_type}, not HTML: set kind = \"json\" with JSON Pointers, or remove `select`"
    )]
    NotHtml { content_type: String },
}

/// Turns a raw body into normalised content according to the spec.
pub fn extract(
    spec: &ExtractSpec,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Extracted, ExtractError> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let ct_shown = || content_type.unwrap_or("no Content-Type").to_string();
    let looks_html = ct.contains("html") || (ct.is_empty() && decode::sniff_html(body));
    let looks_json = ct.contains("json");
    let looks_yaml =
        ct.contains("yaml") || (ct.is_empty() || ct.starts_with("text/plain")) && sniff_yaml(body);
    let format = match spec.kind {
        Kind::Html => "html",
        Kind::Json => "json",
        Kind::Yaml => "yaml",
        Kind::Text => "text",
        Kind::Feed => "feed",
        // Versions are read by the pipeline with the watch's VersionSpec; as text here.
        Kind::Version => "text",
        Kind::Auto if spec.select.is_empty() && feed::looks_like_feed(&ct, body) => "feed",
        Kind::Auto if looks_html => "html",
        Kind::Auto if looks_json => "json",
        Kind::Auto if looks_yaml => "yaml",
        Kind::Auto if !spec.select.is_empty() => {
            return Err(ExtractError::NotHtml {
                content_type: ct_shown(),
            });
        }
        Kind::Auto => "text",
    };
    if format == "feed" {
        let entries = feed::parse(body).map_err(ExtractError::InvalidFeed)?;
        return Ok(Extracted {
            text: feed::to_snapshot(&entries),
            format: "feed",
            missing: Vec::new(),
        });
    }
    let text =
        decode(body, content_type, format == "html").ok_or_else(|| ExtractError::Binary {
            content_type: ct_shown(),
        })?;
    let (raw, missing, format) = match format {
        "html" => {
            let r = html::render_full(
                &text,
                &spec.select_css,
                &spec.select,
                &spec.remove_css,
                spec.structure,
            );
            let text = normalise_owned(r.text, &spec.ignore_re);
            let mut text = structure::join(text, &r.structure);
            // Kept while the page is judged: no doubled buffer beside it.
            text.shrink_to_fit();
            return Ok(Extracted {
                text,
                format: "html",
                missing: r.missing,
            });
        }
        "json" | "yaml" => match parse_document(&text, format)
            .and_then(|v| json_content(v, &spec.select, &spec.ignore_paths))
        {
            Ok((t, m)) => (t, m, format),
            Err(e) if spec.kind == Kind::Json => return Err(ExtractError::InvalidJson(e)),
            Err(e) if spec.kind == Kind::Yaml => return Err(ExtractError::InvalidYaml(e)),
            // Declared JSON or YAML that is not: compare it as text rather than fail the watch.
            Err(_) => (text.into_owned(), Vec::new(), "text"),
        },
        _ => (text.into_owned(), Vec::new(), "text"),
    };
    let text = if matches!(format, "json" | "yaml") {
        // Already canonical; its indentation is what makes a JSON diff readable.
        normalise_json(raw, &spec.ignore_re)
    } else {
        normalise_owned(raw, &spec.ignore_re)
    };
    Ok(Extracted {
        text,
        format,
        missing,
    })
}

/// The whole page as readable text (no `select`, `remove` or `ignore`), for `expect.text`
/// Extracts content from a body. A 0-byte 200 is a failure (a broken server or proxy, not a
/// page that lost its content); a page whose extracted text is empty is valid content.
pub fn for_watch(w: &Watch, body: &[u8], content_type: Option<&str>) -> Result<Extracted, String> {
    if body.is_empty() {
        return Err("the server answered 200 with an empty body: the last good snapshot is kept; if the page is really empty now, check it in a browser".into());
    }
    if let Some(v) = &w.settings.version {
        let releases = version::releases(v, body)?;
        if releases.is_empty() {
            return Err(format!(
                "no version found{}: check `package`/`repo`, or `include`, `exclude` and `prerelease`",
                if v.prerelease {
                    ""
                } else {
                    " (prereleases are skipped)"
                }
            ));
        }
        let text = releases
            .iter()
            .map(|r| serde_json::to_string(r).expect("releases serialise") + "\n")
            .collect();
        return Ok(Extracted {
            text,
            format: "version",
            missing: Vec::new(),
        });
    }
    extract(&w.settings.spec, body, content_type).map_err(|e| e.to_string())
}

/// and `expect.absent`.
pub fn page_text(body: &[u8], content_type: Option<&str>) -> String {
    let html = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("html"))
        || decode::sniff_html(body);
    let Some(text) = decode(body, content_type, html) else {
        return String::new();
    };
    let raw = if html {
        html::render(&text, &[], &[], &[]).0
    } else {
        text.into_owned()
    };
    normalise(&raw, &[])
}

/// A JSON or YAML document as one value (YAML is read into the same model as JSON).
pub fn parse_document(text: &str, format: &str) -> Result<serde_json::Value, String> {
    let text = text.trim_start_matches('\u{feff}');
    if format == "yaml" {
        return yaml_serde::from_str(text).map_err(|e| e.to_string());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// A body with no content type that reads as a YAML document: an OpenAPI or Swagger
/// description, or an explicit YAML start.
fn sniff_yaml(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(256)]);
    let first = head
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    first.starts_with("openapi:")
        || first.starts_with("swagger:")
        || first.starts_with("%YAML")
        || first == "---"
}

/// Canonical JSON: keys sorted, pretty-printed, optionally narrowed by JSON Pointers.
fn json_content(
    mut value: serde_json::Value,
    pointers: &[String],
    ignore_paths: &[String],
) -> Result<(String, Vec<String>), String> {
    json::remove_paths(&mut value, ignore_paths);
    json::canonicalize(&mut value);
    if pointers.is_empty() {
        return Ok((pretty(&value), Vec::new()));
    }
    let mut out = String::new();
    let mut missing = Vec::new();
    for p in pointers {
        if p.starts_with('$') {
            let found = json::select(&value, p);
            if found.is_empty() {
                missing.push(p.clone());
            } else {
                let v = if found.len() == 1 {
                    found[0].clone()
                } else {
                    serde_json::Value::Array(found.into_iter().cloned().collect())
                };
                if pointers.len() > 1 {
                    out.push_str(p);
                    out.push_str(" = ");
                }
                out.push_str(&pretty(&v));
                out.push('\n');
            }
            continue;
        }
        match value.pointer(p) {
            Some(v) if pointers.len() == 1 => out.push_str(&pretty(v)),
            Some(v) => {
                out.push_str(p);
                out.push_str(" = ");
                out.push_str(&pretty(v));
                out.push('\n');
            }
            None => missing.push(p.clone()),
        }
    }
    Ok((out, missing))
}

fn pretty(v: &serde_json::Value) -> String {
    // serde_json's Map is a BTreeMap here: keys come out sorted.
    serde_json::to_string_pretty(v).expect("a Value serialises")
}

fn apply_ignore<'a>(text: &'a str, ignore: &[regex::Regex]) -> std::borrow::Cow<'a, str> {
    let mut text = std::borrow::Cow::Borrowed(text);
    for re in ignore {
        if re.is_match(&text) {
            text = std::borrow::Cow::Owned(re.replace_all(&text, "").into_owned());
        }
    }
    text
}

/// Canonical JSON after `ignore`: trailing spaces and empty lines dropped, indentation kept.
/// Pretty-printed JSON is nearly always that already: it is then kept, with a final newline.
fn normalise_json(mut text: String, ignore: &[regex::Regex]) -> String {
    if ignore.is_empty() && json_normal(&text) {
        text.push('\n');
        return text;
    }
    let text = apply_ignore(&text, ignore);
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether [`normalise_json`] would only add a final newline: no empty line, no line ending in
/// whitespace, no carriage return, and not already ending in a newline.
fn json_normal(text: &str) -> bool {
    let b = text.as_bytes();
    let ends_clean = |line: &str| line.chars().next_back().is_some_and(|c| !c.is_whitespace());
    memchr::memchr(b'\r', b).is_none() && text.split('\n').all(ends_clean)
}

/// Byte classes for whitespace scans: most text is ASCII, and only a few lead bytes can start a
/// Unicode space (U+0085, U+00A0, U+1680, U+2000-U+205F, U+3000).
pub(crate) const OTHER: u8 = 0;
const SPACE: u8 = 1;
const ASCII_WS: u8 = 2;
const MAYBE_WS: u8 = 3;
pub(crate) static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = ASCII_WS;
    t[b'\n' as usize] = ASCII_WS;
    t[0x0b] = ASCII_WS;
    t[0x0c] = ASCII_WS;
    t[b'\r' as usize] = ASCII_WS;
    t[0xC2] = MAYBE_WS;
    t[0xE1] = MAYBE_WS;
    t[0xE2] = MAYBE_WS;
    t[0xE3] = MAYBE_WS;
    t
};

/// The length of the whitespace character at byte `i` of `s` (a char boundary), 0 if none.
#[inline(always)]
pub(crate) fn whitespace_at(s: &str, i: usize) -> usize {
    match CLASS[s.as_bytes()[i] as usize] {
        SPACE | ASCII_WS => 1,
        MAYBE_WS => s[i..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8),
        _ => 0,
    }
}

/// Whether a line is already normal: not empty, no whitespace at either end, no whitespace but
/// single spaces. One pass over bytes; only a byte that may start a Unicode space is decoded.
fn is_normal(line: &str) -> bool {
    let b = line.as_bytes();
    if b.first().is_none_or(|&c| c == b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let mut space = false;
    for (i, &c) in b.iter().enumerate() {
        match CLASS[c as usize] {
            OTHER => space = false,
            SPACE if !space => space = true,
            MAYBE_WS if whitespace_at(line, i) == 0 => space = false,
            _ => return false,
        }
    }
    true
}

/// Whether `text` has no non-ASCII whitespace: only the lead bytes that may start one are
/// decoded.
fn no_unicode_space(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr3_iter(0xC2, 0xE1, 0xE2, b)
        .chain(memchr::memchr_iter(0xE3, b))
        .all(|i| !text.is_char_boundary(i) || whitespace_at(text, i) == 0)
}

/// Two spaces in a row, searched for in every text chunk of a page: the searcher is built
/// once (`memmem::find` builds one per call, which cost more than the search).
static TWO_SPACES: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"  "));

/// Below this length a text chunk is checked a byte at a time: most chunks of a page (a
/// link's text, a table cell, a word between tags) are shorter than setting up the SIMD scans.
const SHORT_CHUNK: usize = 64;

/// Whether the only whitespace in `text` is single ASCII spaces (a few SIMD scans).
pub(crate) fn single_spaced(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < SHORT_CHUNK {
        let mut after_space = false;
        for (i, &c) in b.iter().enumerate() {
            match CLASS[c as usize] {
                SPACE if after_space => return false,
                SPACE => {
                    after_space = true;
                    continue;
                }
                ASCII_WS => return false,
                MAYBE_WS if whitespace_at(text, i) > 0 => return false,
                _ => {}
            }
            after_space = false;
        }
        return true;
    }
    memchr::memchr3(b'\t', b'\r', b'\n', b).is_none()
        && memchr::memchr2(0x0b, 0x0c, b).is_none()
        && TWO_SPACES.find(b).is_none()
        && no_unicode_space(text)
}

/// Whether the whole text is already normal (see [`normalise`]): a few SIMD scans instead of a
/// pass per line, and no copy. Rendered pages almost always are.
fn already_normal(text: &str) -> bool {
    let b = text.as_bytes();
    if b.is_empty() {
        return true;
    }
    use memchr::memmem::find;
    b.last() == Some(&b'\n')
        && b[0] != b' '
        && b[0] != b'\n'
        && memchr::memchr3(b'\t', b'\r', 0x0b, b).is_none()
        && memchr::memchr(0x0c, b).is_none()
        && find(b, b"  ").is_none()
        && find(b, b" \n").is_none()
        && find(b, b"\n ").is_none()
        && find(b, b"\n\n").is_none()
        && no_unicode_space(text)
}

/// [`normalise`] for a text the caller owns: returned as it is when already normal.
pub fn normalise_owned(text: String, ignore: &[regex::Regex]) -> String {
    match apply_ignore(&text, ignore) {
        std::borrow::Cow::Borrowed(_) if already_normal(&text) => text,
        std::borrow::Cow::Borrowed(t) => normalise_lines(t),
        std::borrow::Cow::Owned(t) => normalise_text(std::borrow::Cow::Owned(t)),
    }
}

/// Deletes `ignore` matches, collapses runs of whitespace, trims lines and drops empty ones.
pub fn normalise(text: &str, ignore: &[regex::Regex]) -> String {
    normalise_text(apply_ignore(text, ignore))
}

fn normalise_text(text: std::borrow::Cow<'_, str>) -> String {
    if already_normal(&text) {
        return text.into_owned();
    }
    normalise_lines(&text)
}

/// The line-by-line normalisation, for a text that is not already normal.
fn normalise_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if is_normal(line) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut wrote = false;
        for word in line.split_whitespace() {
            if wrote {
                out.push(' ');
            }
            out.push_str(word);
            wrote = true;
        }
        if wrote {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_chunks_are_judged_single_spaced_alike() {
        // The reference: only single ASCII spaces, no other whitespace of any kind.
        let reference =
            |t: &str| !t.contains("  ") && t.chars().all(|c| c == ' ' || !c.is_whitespace());
        let pieces = [
            "word",
            " ",
            "  ",
            "\t",
            "\n",
            "\r",
            "\u{b}",
            "\u{c}",
            "\u{a0}",
            "\u{2009}",
            "\u{3000}",
            "\u{1680}",
            "caf\u{e9}",
            "\u{201d}",
            "\u{e3}",
            "—",
            "a b",
        ];
        for a in pieces {
            for b in pieces {
                for filler in [0, 40, 100] {
                    let t = format!("{}{a}{b}x", "y".repeat(filler));
                    assert_eq!(single_spaced(&t), reference(&t), "{t:?}");
                    let t = format!("{a}{}{b}", "z ".repeat(filler));
                    assert_eq!(single_spaced(&t), reference(&t), "{t:?}");
                }
            }
        }
    }

    #[test]
    fn canonical_json_is_kept_as_normalising_it_line_by_line_would_make_it() {
        let by_line = |t: &str| {
            let mut out = String::new();
            for line in t.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                out.push_str(line);
                out.push('\n');
            }
            out
        };
        let value = serde_json::json!({"a": [1, {"b": "x  "}], "c": "\u{a0}", "e": {}, "f": []});
        for t in [
            serde_json::to_string_pretty(&value).unwrap(),
            "{\n  \"a\": 1\n}\n".into(),
            "{\n\n  \"a\": 1  \n}".into(),
            "{\r\n  \"a\": 1\r\n}".into(),
            "[\n  1\u{a0}\n]".into(),
            String::new(),
        ] {
            assert_eq!(normalise_json(t.clone(), &[]), by_line(&t), "{t:?}");
        }
        assert!(json_normal(&serde_json::to_string_pretty(&value).unwrap()));
    }

    fn spec(kind: Kind, select: &[&str], remove: &[&str], ignore: &[&str]) -> ExtractSpec {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        ExtractSpec::new(kind, v(select), v(remove), v(ignore)).unwrap()
    }

    #[test]
    fn json_is_canonical() {
        let s = spec(Kind::Auto, &[], &[], &[]);
        let a = extract(&s, br#"{"b":1,"a":[1,2]}"#, Some("application/json")).unwrap();
        let b = extract(&s, br#"{"a":[1,2],  "b":1}"#, Some("application/json")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.format, "json");
    }

    #[test]
    fn json_pointer_select() {
        let s = spec(Kind::Json, &["/data/version", "/nope"], &[], &[]);
        let e = extract(&s, br#"{"data":{"version":3}}"#, None).unwrap();
        assert_eq!(e.text, "/data/version = 3\n");
        assert_eq!(e.missing, vec!["/nope"]);
    }

    #[test]
    fn normalise_fast_path_agrees_with_the_slow_one() {
        let slow = |t: &str| {
            let mut out = String::new();
            for line in t.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if !words.is_empty() {
                    out.push_str(&words.join(" "));
                    out.push('\n');
                }
            }
            out
        };
        for t in [
            "a b\n",
            " a\n",
            "a \n",
            "a  b\n",
            "a\tb\n",
            "a\u{a0}b\n",
            "a\u{2009}b\n",
            "a\u{3000}\n",
            "\u{85}a\n",
            "caf\u{e9} \u{2014} \u{201c}q\u{201d} \u{a9}\n",
            "a\r\nb\n\n\n c \n",
            "",
            "   \n",
            "a b\nc \u{2014} d\n",
            "a\n\nb\n",
            "a\n b\n",
            "a\nb",
            "\na\n",
            "a\x0cb\n",
        ] {
            assert_eq!(normalise(t, &[]), slow(t), "{t:?}");
            assert_eq!(normalise_owned(t.to_string(), &[]), slow(t), "{t:?}");
            assert_eq!(already_normal(t), slow(t) == t, "{t:?}");
        }
    }

    #[test]
    fn ignore_and_whitespace() {
        let s = spec(Kind::Text, &[], &[], &[r"token=\w+"]);
        let e = extract(&s, b"  a   b  token=abc123 \n\n\t c\n", Some("text/plain")).unwrap();
        assert_eq!(e.text, "a b\nc\n");
    }

    #[test]
    fn binary_is_refused() {
        let s = spec(Kind::Auto, &[], &[], &[]);
        let err = extract(&s, b"\x89PNG\r\n\x1a\n\0\0\0", Some("text/plain")).unwrap_err();
        assert!(matches!(err, ExtractError::Binary { .. }));
    }

    #[test]
    fn fingerprint_round_trips() {
        let s = spec(Kind::Html, &["#a"], &[".ad"], &["x+"]);
        let back = ExtractSpec::from_fingerprint(s.fingerprint()).unwrap();
        assert_eq!(back.fingerprint(), s.fingerprint());
    }

    #[test]
    fn a_written_fingerprint_follows_the_builders_and_agrees_with_same_as() {
        use crate::config::masks::MaskSet;
        let s = spec(Kind::Html, &["#a"], &[], &["x+"]);
        let first = s.fingerprint().to_string();
        // Each builder clears what was written, so the fingerprint says what the spec is now.
        let s = s.with_structure(false);
        assert_ne!(s.fingerprint(), first);
        let s = s.with_ignore_paths(vec!["$.id".into()]);
        let before_masks = s.fingerprint().to_string();
        let s = s.with_masks(MaskSet::none());
        assert_ne!(s.fingerprint(), before_masks);
        let fresh = spec(Kind::Html, &["#a"], &[], &["x+"])
            .with_structure(false)
            .with_ignore_paths(vec!["$.id".into()])
            .with_masks(MaskSet::none());
        assert_eq!(s.fingerprint(), fresh.fingerprint());
        // `same_as` holds exactly where the fingerprints are equal.
        let variants = [
            spec(Kind::Html, &["#a"], &[], &["x+"]),
            spec(Kind::Html, &["#b"], &[], &["x+"]),
            spec(Kind::Html, &["#a"], &[".ad"], &["x+"]),
            spec(Kind::Html, &["#a"], &[], &[]),
            spec(Kind::Auto, &["#a"], &[], &["x+"]),
            spec(Kind::Html, &["#a"], &[], &["x+"]).with_structure(false),
            spec(Kind::Html, &["#a"], &[], &["x+"]).with_masks(MaskSet::none()),
            fresh,
        ];
        for a in &variants {
            for b in &variants {
                assert_eq!(a.same_as(b), a.fingerprint() == b.fingerprint());
            }
        }
    }
}
