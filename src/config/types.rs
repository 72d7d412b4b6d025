//! Self-validating newtypes for watchlist values.
//!
//! Each type validates in `TryFrom<String>`, so the `toml` deserializer reports a bad value
//! with its line, column and a caret, before anything is fetched.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The longest duration a watchlist may write: longer ones overflow the calendar.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration written like `"20s"`, `"1m 30s"` or `"2h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DurationStr(pub Duration);

impl TryFrom<String> for DurationStr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            format!("invalid duration `{s}`: {e}; write it like \"20s\", \"5m\" or \"1h 30m\"")
        })?;
        if d.is_zero() {
            return Err(format!("duration `{s}` must be greater than zero"));
        }
        if d > MAX_DURATION {
            return Err(format!("duration `{s}` is too long: at most 100 years"));
        }
        Ok(DurationStr(d))
    }
}

/// A size written like `"10MiB"`, `"512KiB"`, `"2MB"` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct ByteSize(pub u64);

impl TryFrom<toml::Value> for ByteSize {
    type Error = String;
    fn try_from(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(n) if n > MAX_BYTES as i64 => Err(too_large(&n.to_string())),
            toml::Value::Integer(n) if n > 0 => Ok(ByteSize(n as u64)),
            toml::Value::String(s) => parse_size(&s).map(ByteSize),
            other => Err(format!(
                "invalid size {other}: write it like \"10MiB\", \"512KiB\" or a number of bytes"
            )),
        }
    }
}

/// The largest size a watchlist may set: a body is held in memory to be compared.
const MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;

fn too_large(s: &str) -> String {
    format!("size `{s}` is too large: at most 4GiB (a body is held in memory to be compared)")
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size `{s}`: write it like \"10MiB\" or \"512KiB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1024,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1024 * 1024,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1024 * 1024 * 1024,
        u => {
            return Err(format!(
                "invalid size unit `{u}` in `{s}`: use B, KB, KiB, MB, MiB, GB or GiB"
            ));
        }
    };
    let bytes = n * mult as f64;
    if bytes < 1.0 {
        return Err(format!("size `{s}` must be greater than zero"));
    }
    if bytes > MAX_BYTES as f64 {
        return Err(too_large(s));
    }
    Ok(bytes as u64)
}

/// A CSS selector, parsed by scraper when the watchlist loads.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct SelectorStr {
    pub text: String,
    pub selector: scraper::Selector,
}

impl fmt::Debug for SelectorStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl TryFrom<String> for SelectorStr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let selector = parse_selector(&s)?;
        Ok(SelectorStr { text: s, selector })
    }
}

pub fn parse_selector(s: &str) -> Result<scraper::Selector, String> {
    if s.trim().is_empty() {
        return Err("empty CSS selector".into());
    }
    if let Some(why) = selector_mistake(s) {
        return Err(format!("invalid CSS selector `{s}`: {why}"));
    }
    scraper::Selector::parse(s).map_err(|e| {
        let why = match &e {
            // The parser's own words here are "Unexpected error occurred. Please report this
            // to the developer" and an internal name: say what is wrong instead.
            scraper::error::SelectorErrorKind::UnexpectedSelectorParseError(kind) => {
                parser_words(&format!("{kind:?}"))
            }
            other => other.to_string(),
        };
        format!("invalid CSS selector `{s}`: {why}; check it in the browser's devtools with document.querySelectorAll")
    })
}

/// Mistakes people make in selectors, said in words before the parser sees them.
fn selector_mistake(s: &str) -> Option<String> {
    let t = s.trim();
    if let Some(p) = [
        ":contains(",
        ":has-text(",
        ":eq(",
        ":first(",
        ":last(",
        ":visible",
        ":hidden",
    ]
    .iter()
    .find(|p| t.contains(*p))
    {
        let p = p.trim_end_matches('(');
        return Some(format!(
            "`{p}` is jQuery (or Playwright), not CSS: select the element by tag, id, class or attribute, and check its text with `expect.text`"
        ));
    }
    if t.contains(">>") {
        return Some(
            "`>>` is not a CSS combinator: use `>` for a child or a space for any descendant"
                .into(),
        );
    }
    if t.contains("..") {
        return Some("two dots in a row: a class name is missing between them".into());
    }
    if t.matches('[').count() != t.matches(']').count() {
        return Some("an attribute selector `[...]` is not closed".into());
    }
    if t.ends_with('#') || t.contains("# ") || t.contains("#.") {
        return Some("`#` must be followed by an id, like `#toolbar`".into());
    }
    if t.ends_with('.') {
        return Some("`.` must be followed by a class name, like `.send-btn`".into());
    }
    if t.ends_with(['>', '+', '~', ',']) {
        return Some("it ends with a combinator or a comma: something must follow it".into());
    }
    None
}

/// The selector parser's internal error names, in words.
fn parser_words(kind: &str) -> String {
    let name = kind.split(['(', ' ']).next().unwrap_or(kind);
    match name {
        "DanglingCombinator" => "a combinator (`>`, `+`, `~`) with nothing after it".into(),
        "EmptySelector" => "an empty selector (two commas in a row, or a comma at an end)".into(),
        "ClassNeedsIdent" => "`.` must be followed by a class name".into(),
        "PseudoElementExpectedColon" | "PseudoElementExpectedIdent" => {
            "a pseudo-element (`::before`) is written wrongly".into()
        }
        "UnsupportedPseudoClassOrElement" => {
            "a pseudo-class the CSS engine does not know (jQuery and Playwright add their own; CSS has `:nth-child()`, `:not()`, `:has()`...)".into()
        }
        "NoQualifiedNameInAttributeSelector" | "UnexpectedTokenInAttributeSelector" | "BadValueInAttr" | "InvalidQualNameInAttr" => {
            "an attribute selector is written wrongly: write it like `[data-testid=\"send\"]`".into()
        }
        "EmptyNegation" => "`:not()` is empty".into(),
        _ => "this is not valid CSS".into(),
    }
}

/// A regular expression (Rust `regex` syntax), compiled when the watchlist loads.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RegexStr(pub regex::Regex);

impl fmt::Debug for RegexStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

impl TryFrom<String> for RegexStr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        regex::Regex::new(&s)
            .map(RegexStr)
            .map_err(|e| format!("invalid regex: {e}"))
    }
}

/// A string or a list of strings in the watchlist, always a list once loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A URL that may contain `${VAR}` references, expanded from the environment at run time.
///
/// The template (with credentials redacted) is what gets stored and shown; the expanded URL
/// never leaves the fetcher.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UrlTemplate(String);

impl TryFrom<String> for UrlTemplate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_url_template(&s)?;
        Ok(UrlTemplate(s))
    }
}

impl UrlTemplate {
    pub fn template(&self) -> &str {
        &self.0
    }

    /// The URL as shown to people and stored: `${VAR}` left as written, any password or
    /// user name replaced by `***`.
    pub fn display(&self) -> String {
        redact_userinfo(&self.0)
    }

    /// Expands `${VAR}` from the environment and parses the result.
    pub fn expand(&self) -> Result<url::Url, String> {
        expand_url(&self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Expands `${VAR}` in a URL template from the environment and parses the result.
pub fn expand_url(template: &str) -> Result<url::Url, String> {
    let s = expand_env(template)?;
    url::Url::parse(&s).map_err(|e| format!("the URL is invalid after expanding variables: {e}"))
}

/// [`validate_url_template`] without the parsed URL. A plain `http(s)://host[:port]/...`
/// (no variable, user info, IPv6, international or IPv4-like name the parser would refuse)
/// is one the URL parser always accepts: it is not parsed (2 us each, a fifth of the time
/// a 10,000-watch list took to load).
pub fn check_url_template(s: &str) -> Result<(), String> {
    let plain = plain_host(s).is_some_and(|(host, _)| {
        // A punycode label is decoded, and can fail to.
        !host.starts_with("xn--") && !host.contains(".xn--")
    });
    if plain {
        return Ok(());
    }
    validate_url_template(s).map(|_| ())
}

pub fn validate_url_template(s: &str) -> Result<url::Url, String> {
    // Variables are checked for syntax here and expanded at run time; a placeholder stands in.
    // A URL that starts with a variable (`url = "${HOOK_URL}"`) gets its scheme and host from
    // the environment: only the syntax can be checked now.
    let mut first = true;
    let starts_with_var = s.trim_start().starts_with("${");
    let probe = substitute_vars(s, |_| {
        let v = if first && starts_with_var {
            "https://from-environment.invalid"
        } else {
            "x"
        };
        first = false;
        Some(v.to_string())
    })?;
    let url = url::Url::parse(&probe).map_err(|e| {
        format!("invalid URL `{s}`: {e}; write a full URL like \"https://example.com/page\"")
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "unsupported URL scheme `{other}` in `{s}`: only http and https are watched"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL `{s}` has no host"));
    }
    Ok(url)
}

/// The host and port of a plain `http(s)://host[:port]/...` URL, read without parsing it (a
/// pass asks twice per watch, and a watchlist's loading once); `None` for anything the URL
/// parser must normalise (a variable, user info, an IPv6 or international name, an odd
/// port), which it then does.
pub fn plain_host(url: &str) -> Option<(String, Option<u16>)> {
    let (rest, default_port) = if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else {
        (url.strip_prefix("http://")?, 80)
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, Some(p.parse::<u16>().ok()?))
        }
        Some(_) => return None,
        None => (authority, None),
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    // The URL parser reads a host as IPv4 when its last label is a number (`0x7f.1` too).
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    if host.is_empty() || !host.bytes().all(plain) || (numeric && !canonical_ipv4(host)) {
        return None;
    }
    Some((
        host.to_ascii_lowercase(),
        port.filter(|&p| p != default_port),
    ))
}

/// `a.b.c.d` as the URL parser writes it: four decimals up to 255, no leading zeros.
fn canonical_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// Replaces every `${NAME}` with its environment value; a missing variable is an error that
/// names it.
pub fn expand_env(s: &str) -> Result<String, String> {
    let mut missing = None;
    let out = substitute_vars(s, |name| {
        let v = std::env::var(name).ok();
        if v.is_none() && missing.is_none() {
            missing = Some(name.to_string());
        }
        v
    })?;
    match missing {
        Some(name) => Err(format!(
            "environment variable `{name}` is not set: export it before running forewarn"
        )),
        None => Ok(out),
    }
}

fn substitute_vars(
    s: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in `{s}`: write `${{NAME}}`"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "invalid variable name `{name}` in `{s}`: use letters, digits and `_`"
            ));
        }
        out.push_str(&lookup(name).unwrap_or_default());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks the `${VAR}` syntax of a string without reading the environment.
pub fn expand_env_syntax(s: &str) -> Result<(), String> {
    substitute_vars(s, |_| Some(String::new())).map(|_| ())
}

/// Names of the `${VAR}` references in a string.
pub fn var_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = substitute_vars(s, |n| {
        names.push(n.to_string());
        None
    });
    names
}

/// Replaces `user:password@` in a URL with `***@`, leaving everything else as written.
pub fn redact_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let after = &s[scheme_end + 3..];
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    match after[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &s[..scheme_end + 3], &after[at + 1..]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn url_templates() {
        assert!(validate_url_template("https://example.com/${PATH}?t=${TOKEN}").is_ok());
        assert!(validate_url_template("ftp://example.com/").is_err());
        assert!(validate_url_template("${HOOK_URL}").is_ok());
        assert!(validate_url_template("${HOOK_URL}/path?x=${Y}").is_ok());
        assert!(validate_url_template("${HOOK_URL").is_err());
        assert!(validate_url_template("not a url").is_err());
        assert!(validate_url_template("https://example.com/${BAD-NAME}").is_err());
        assert!(validate_url_template("https://example.com/${OPEN").is_err());
        assert_eq!(var_names("a${X}b${Y_2}"), vec!["X", "Y_2"]);
    }

    #[test]
    fn plain_urls_are_accepted_without_parsing_exactly_when_the_parser_accepts_them() {
        let urls = [
            "http://127.0.0.1:18080/site/00/page-00000.html",
            "https://example.com",
            "https://example.com?q=1#top",
            "https://Example.COM/a b/\\c",
            "http://a..b/",
            "http://-a-.com/",
            "http://0.0.0.0/",
            "http://1.2.3/",
            "http://1.2.3.256/",
            "http://01.2.3.4/",
            "http://0x7f.1/",
            "http://256.0.0.1/",
            "http://xn--zz.com/",
            "http://a.xn--zz/",
            "http://xn--bcher-kva.example/",
            "http://host:99999/",
            "http://host:/",
            "http://host:0/",
            "http://user:pw@host/",
            "http://[::1]:8080/",
            "http:///x",
            "ftp://example.com/",
            "https://exa mple.com/",
            "https://${HOST}/x",
            "https://example.com/${P}",
        ];
        for u in urls {
            assert_eq!(
                check_url_template(u).is_ok(),
                validate_url_template(u).is_ok(),
                "{u}"
            );
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_userinfo("https://user:secret@host.example/a@b"),
            "https://***@host.example/a@b"
        );
        assert_eq!(
            redact_userinfo("https://host.example/"),
            "https://host.example/"
        );
    }

    #[test]
    fn missing_variable_is_named() {
        let err = expand_env("https://x/${FOREWARN_SURELY_UNSET_VAR}").unwrap_err();
        assert!(err.contains("FOREWARN_SURELY_UNSET_VAR"), "{err}");
    }
}

#[cfg(test)]
mod selector_tests {
    use super::parse_selector;

    /// What is wrong, in words, never the parser's internals.
    #[test]
    fn selector_mistakes_are_told_in_words() {
        for (s, says) in [
            ("#toolbar >> button[", "`>>` is not a CSS combinator"),
            ("div..x", "two dots in a row"),
            ("#", "`#` must be followed by an id"),
            ("a:contains(\"x\")", "`:contains` is jQuery"),
            ("div >", "ends with a combinator"),
            ("button[data-x", "is not closed"),
        ] {
            let e = parse_selector(s).unwrap_err();
            assert!(e.contains(says), "{s}: {e}");
            assert!(!e.contains("report this to the developer"), "{s}: {e}");
            assert!(!e.contains("DanglingCombinator"), "{s}: {e}");
        }
        assert!(parse_selector("#toolbar > button.send[data-testid=\"send\"]").is_ok());
    }
}
