//! changedetection.io's watches: its datastore `url-watches.json` (the JSON export), or a
//! backup archive (a zip holding it). Each watch's URL, title, CSS filters, removed elements,
//! ignored text, headers, interval, browser fetching and pause state map; the rest is listed.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Imported, q, slug};

/// The keys forewarn maps, or that have no effect on what is watched.
const KNOWN: &[&str] = &[
    "url",
    "title",
    "include_filters",
    "subtractive_selectors",
    "ignore_text",
    "headers",
    "time_between_check",
    "fetch_backend",
    "paused",
    "uuid",
    "date_created",
    "last_checked",
    "last_changed",
    "last_viewed",
    "last_error",
    "check_count",
    "previous_md5",
    "tags",
    "notification_urls",
    "notification_title",
    "notification_body",
    "notification_format",
    "notification_muted",
    "method",
    "body",
];

/// Reads the watches from the file's bytes: JSON as is, a zip archive's `url-watches.json`.
pub(super) fn import(bytes: &[u8]) -> Result<Imported, String> {
    let json = if bytes.starts_with(b"PK\x03\x04") {
        zip_member(bytes, "url-watches.json")?
    } else {
        bytes.to_vec()
    };
    let text = String::from_utf8(json).map_err(|_| "the watches file is not UTF-8".to_string())?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("not changedetection.io's JSON ({e})"))?;
    let watching = doc.get("watching").and_then(Value::as_object).ok_or(
        "no `watching` object: export url-watches.json (or a backup) from changedetection.io",
    )?;
    let mut out = Imported::default();
    for (uuid, w) in watching {
        let line = text
            .find(&format!("\"{uuid}\""))
            .map_or(0, |at| text[..at].lines().count().max(1));
        watch(uuid, w, line, &mut out);
    }
    Ok(out)
}

fn watch(uuid: &str, w: &Value, line: usize, out: &mut Imported) {
    let s = |k: &str| w.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let Some(url) = s("url") else {
        out.skipped
            .push((line, format!("watch {uuid} has no `url`")));
        return;
    };
    let name = out.unique(&slug(s("title").unwrap_or(url)));
    let mut t = format!("[[watch]]\nname = {}\nurl = {}\n", q(&name), q(url));
    if w.get("paused").and_then(Value::as_bool) == Some(true) {
        t.push_str("enabled = false\n");
    }
    if s("fetch_backend") == Some("html_webdriver") {
        t.push_str("browser = true\n");
    }
    if let Some(every) = interval(w.get("time_between_check")) {
        let _ = writeln!(t, "every = {}", q(&every));
    }
    let strings = |k: &str| -> Vec<String> {
        w.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (mut select, mut skipped) = (Vec::new(), Vec::new());
    for f in strings("include_filters") {
        if f.starts_with("xpath") || f.starts_with('/') {
            skipped.push(format!("the XPath filter `{f}` of `{name}`: forewarn selects with CSS; write it as a CSS selector in `select`"));
        } else {
            select.push(f);
        }
    }
    list_key(&mut t, "select", &select);
    list_key(&mut t, "remove", &strings("subtractive_selectors"));
    let ignore: Vec<String> = strings("ignore_text").iter().map(|i| as_regex(i)).collect();
    list_key(&mut t, "ignore", &ignore);
    if let Some(h) = w.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            if let Some(v) = v.as_str() {
                let _ = writeln!(t, "headers.{} = {}", q(k), q(v));
            }
        }
    }
    if s("method").is_some_and(|m| m != "GET") || s("body").is_some() {
        skipped.push(format!(
            "the request method or body of `{name}`: forewarn sends GET requests"
        ));
    }
    for (k, v) in w.as_object().into_iter().flatten() {
        let empty = v.is_null()
            || v.as_array().is_some_and(Vec::is_empty)
            || v.as_str().is_some_and(str::is_empty)
            || v.as_object().is_some_and(serde_json::Map::is_empty)
            || v == &Value::Bool(false);
        if !KNOWN.contains(&k.as_str()) && !empty {
            skipped.push(format!("`{k}` of `{name}`: forewarn has no such setting"));
        }
    }
    out.skipped
        .extend(skipped.into_iter().map(|why| (line, why)));
    out.watches.push(t);
}

fn list_key(t: &mut String, key: &str, v: &[String]) {
    if !v.is_empty() {
        let items: Vec<String> = v.iter().map(|s| q(s)).collect();
        let _ = writeln!(t, "{key} = [{}]", items.join(", "));
    }
}

/// An `ignore_text` line as a regex: `/.../` is one already, plain text is matched as is.
fn as_regex(line: &str) -> String {
    match line.strip_prefix('/').and_then(|l| l.rsplit_once('/')) {
        Some((re, flags)) if flags.chars().all(|c| c.is_ascii_alphabetic()) => {
            if flags.contains('i') {
                format!("(?i){re}")
            } else {
                re.to_string()
            }
        }
        _ => regex::escape(line),
    }
}

/// `time_between_check` (`{"weeks": .., "days": .., "hours": .., "minutes": .., "seconds": ..}`)
/// as an `every` duration; `None` when it is unset (the application's default applies).
fn interval(v: Option<&Value>) -> Option<String> {
    let v = v?.as_object()?;
    let units = [
        ("weeks", 604_800),
        ("days", 86_400),
        ("hours", 3_600),
        ("minutes", 60),
        ("seconds", 1),
    ];
    let secs: u64 = units
        .iter()
        .map(|(k, n)| v.get(*k).and_then(Value::as_u64).unwrap_or(0) * n)
        .sum();
    (secs > 0).then(|| {
        humantime::format_duration(std::time::Duration::from_secs(secs))
            .to_string()
            .replace(' ', "")
    })
}

/// One member of a zip archive, by name (stored or deflated).
fn zip_member(zip: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let bad = || "the backup archive is not a readable zip file".to_string();
    let u16_at = |at: usize| -> Option<usize> {
        zip.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |at: usize| -> Option<usize> {
        zip.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    // The end of central directory record, within the last 64 KiB + 22 bytes.
    let floor = zip.len().saturating_sub(65_557);
    let eocd = (floor..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| zip[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(bad)?;
    let (count, mut at) = (
        u16_at(eocd + 10).ok_or_else(bad)?,
        u32_at(eocd + 16).ok_or_else(bad)?,
    );
    for _ in 0..count {
        if !zip.get(at..).is_some_and(|z| z.starts_with(b"PK\x01\x02")) {
            return Err(bad());
        }
        let method = u16_at(at + 10).ok_or_else(bad)?;
        let size = u32_at(at + 20).ok_or_else(bad)?;
        let (nlen, elen, clen) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let (nlen, elen, clen) = (
            nlen.ok_or_else(bad)?,
            elen.ok_or_else(bad)?,
            clen.ok_or_else(bad)?,
        );
        let local = u32_at(at + 42).ok_or_else(bad)?;
        let member = zip.get(at + 46..at + 46 + nlen).ok_or_else(bad)?;
        at += 46 + nlen + elen + clen;
        if member.rsplit(|&b| b == b'/').next() != Some(name.as_bytes()) {
            continue;
        }
        let start = local
            + 30
            + u16_at(local + 26).ok_or_else(bad)?
            + u16_at(local + 28).ok_or_else(bad)?;
        let data = zip.get(start..start + size).ok_or_else(bad)?;
        return match method {
            0 => Ok(data.to_vec()),
            8 => {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(256 << 20)
                    .read_to_end(&mut out)
                    .map_err(|_| bad())?;
                Ok(out)
            }
            m => Err(format!(
                "{name} in the archive is compressed with method {m}; unzip it and import the JSON"
            )),
        };
    }
    Err(format!(
        "the archive holds no {name}: is it a changedetection.io backup?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_ignored_text_translate() {
        let v: Value = serde_json::json!({"weeks": null, "days": 1, "hours": 3, "minutes": null, "seconds": null});
        assert_eq!(interval(Some(&v)).as_deref(), Some("1day3h"));
        assert_eq!(interval(Some(&serde_json::json!({"hours": null}))), None);
        assert_eq!(as_regex("Last updated: 1.2"), "Last updated: 1\\.2");
        assert_eq!(as_regex("/visitors: \\d+/i"), "(?i)visitors: \\d+");
    }
}
