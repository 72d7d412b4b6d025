//! Bytes -> text: BOM, the charset in Content-Type, a `<meta charset>` in HTML, else UTF-8
//! (falling back to windows-1252 as browsers do for undeclared legacy pages).

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// Decodes a body to text. `None` when the body is binary (NUL bytes in its first 8 KiB).
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>, html: bool) -> Option<Cow<'a, str>> {
    let head = &body[..body.len().min(8192)];
    if head.contains(&0) && Encoding::for_bom(body).is_none() {
        return None;
    }
    let declared = content_type
        .and_then(charset_param)
        .or_else(|| if html { meta_charset(body) } else { None })
        .and_then(|label| Encoding::for_label(label.as_bytes()));
    if let Some((enc, _)) = Encoding::for_bom(body) {
        return Some(enc.decode_with_bom_removal(body).0);
    }
    match declared {
        Some(enc) => Some(enc.decode_without_bom_handling(body).0),
        None => match std::str::from_utf8(body) {
            Ok(s) => Some(Cow::Borrowed(s)),
            Err(_) => {
                let (text, had_errors) = UTF_8.decode_without_bom_handling(body);
                // Mostly UTF-8 with a stray byte: keep it; otherwise it is a legacy page.
                let bad = text.matches('\u{fffd}').count();
                if had_errors && bad * 100 > text.len().max(1) {
                    Some(WINDOWS_1252.decode_without_bom_handling(body).0)
                } else {
                    Some(text)
                }
            }
        },
    }
}

/// `charset=...` from a Content-Type value.
fn charset_param(ct: &str) -> Option<String> {
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// `<meta charset="...">` or `<meta http-equiv content="...; charset=...">` in the first 2 KiB.
fn meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(2048)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut from = 0;
    while let Some(i) = find(&lower[from..], b"<meta") {
        let start = from + i;
        let end = lower[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset=") {
            let rest = &tag[c + 8..];
            let rest = rest
                .strip_prefix(b"\"")
                .or_else(|| rest.strip_prefix(b"'"))
                .unwrap_or(rest);
            let label: Vec<u8> = rest
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
                .copied()
                .collect();
            if !label.is_empty() {
                return String::from_utf8(label).ok();
            }
        }
        from = end;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True when a body without a Content-Type starts like an HTML document.
pub fn sniff_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(512)];
    let text = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    text.starts_with("<!doctype html") || text.starts_with("<html") || text.starts_with("<head")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_charset() {
        let body = b"caf\xe9";
        let t = decode(body, Some("text/plain; charset=ISO-8859-1"), false).unwrap();
        assert_eq!(t, "café");
    }

    #[test]
    fn meta_charset_shift_jis() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("日本語");
        let mut body = b"<html><head><meta charset=\"Shift_JIS\"></head><body>".to_vec();
        body.extend_from_slice(&sjis);
        let t = decode(&body, Some("text/html"), true).unwrap();
        assert!(t.contains("日本語"), "{t}");
    }

    #[test]
    fn undeclared_legacy_falls_back() {
        let t = decode(b"na\xefve r\xe9sum\xe9", None, false).unwrap();
        assert_eq!(t, "naïve résumé");
    }

    #[test]
    fn utf16_bom() {
        let body = [0xFF, 0xFE, b'h', 0, b'i', 0];
        assert_eq!(decode(&body, None, false).unwrap(), "hi");
    }
}
