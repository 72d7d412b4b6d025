//! A cap on element nesting, applied before the HTML parser sees the page.
//!
//! The HTML5 tree builder does work proportional to the depth of open elements for each new
//! one, so a hostile page of 100,000 nested `<div>`s takes minutes to parse. Browsers cap the
//! depth (Blink at 512) and attach deeper elements as siblings. This does the same with one
//! linear scan: start and end tags of elements nested deeper than the cap are dropped, and
//! their text is kept. Pages within the cap are returned untouched, without a copy.

use std::borrow::Cow;

/// Deeper elements are flattened. Real pages stay far below this.
pub const MAX_DEPTH: usize = 512;

/// Elements whose content is raw text: no tags inside.
const RAW_TEXT: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
];

/// Elements that never have an end tag, or whose end tag is implied often enough that
/// counting them would overstate the depth (a list of `<li>` without `</li>`).
const NOT_COUNTED: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rb", "rt", "rp", "html",
    "head", "body", "tbody", "thead", "tfoot", "colgroup", "caption",
];

/// One tag found by the scanner.
struct Tag<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    closing: bool,
    self_closing: bool,
}

/// Calls `f` for each start or end tag in document order, skipping comments, doctypes and
/// raw-text content. Stops early when `f` returns false.
fn scan<'a>(html: &'a str, mut f: impl FnMut(&Tag<'a>) -> bool) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &bytes[i..]) {
        let start = i + off;
        let rest = &html[start..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = memchr::memmem::find(comment.as_bytes(), b"-->")
                .map_or(bytes.len(), |e| start + 4 + e + 3);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = rest.find('>').map_or(bytes.len(), |e| start + e + 1);
            continue;
        }
        let closing = rest.as_bytes().get(1) == Some(&b'/');
        let name_start = start + 1 + usize::from(closing);
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            i = start + 1;
            continue;
        }
        // The tag ends at the first `>` outside a quoted attribute value.
        let mut j = name_start + name_len;
        loop {
            let Some(k) = memchr::memchr3(b'>', b'"', b'\'', &bytes[j..]) else {
                j = bytes.len();
                break;
            };
            j += k;
            if bytes[j] == b'>' {
                break;
            }
            // Skip the quoted value; an unclosed quote runs to the end.
            match memchr::memchr(bytes[j], &bytes[j + 1..]) {
                Some(e) => j += 1 + e + 1,
                None => {
                    j = bytes.len();
                    break;
                }
            }
        }
        let end = (j + 1).min(bytes.len());
        let name = &html[name_start..name_start + name_len];
        let tag = Tag {
            start,
            end,
            name,
            closing,
            self_closing: j > 0 && bytes.get(j - 1) == Some(&b'/'),
        };
        if !f(&tag) {
            return;
        }
        i = end;
        if !closing && RAW_TEXT.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            // Skip to the matching end tag.
            i = end_tag(&bytes[i..], name.as_bytes()).map_or(bytes.len(), |p| i + p);
        }
    }
}

/// Where `</name` (any case) starts in `hay`.
fn end_tag(hay: &[u8], name: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = memchr::memmem::find(&hay[from..], b"</") {
        let at = from + k;
        let after = &hay[at + 2..];
        if after.len() >= name.len() && after[..name.len()].eq_ignore_ascii_case(name) {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

fn counted(t: &Tag<'_>) -> bool {
    !t.self_closing && !NOT_COUNTED.iter().any(|n| n.eq_ignore_ascii_case(t.name))
}

/// The page with elements deeper than `max` flattened; borrowed when nothing is that deep.
pub fn cap_depth(html: &str, max: usize) -> Cow<'_, str> {
    // A page with fewer tags than the cap cannot exceed it: no scan at all.
    if html.len() < max * 4 || bytecount(html.as_bytes(), b'<') <= max {
        return Cow::Borrowed(html);
    }
    let mut depth = 0usize;
    let mut too_deep = false;
    scan(html, |t| {
        if counted(t) {
            if t.closing {
                depth = depth.saturating_sub(1);
            } else {
                depth += 1;
                if depth > max {
                    too_deep = true;
                    return false;
                }
            }
        }
        true
    });
    if !too_deep {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut copied = 0;
    let mut depth = 0usize;
    scan(html, |t| {
        if counted(t) {
            let drop = if t.closing {
                let d = depth > max;
                depth = depth.saturating_sub(1);
                d
            } else {
                depth += 1;
                depth > max
            };
            if drop {
                out.push_str(&html[copied..t.start]);
                copied = t.end;
            }
        }
        true
    });
    out.push_str(&html[copied..]);
    Cow::Owned(out)
}

fn bytecount(hay: &[u8], needle: u8) -> usize {
    memchr::memchr_iter(needle, hay).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_pages_are_borrowed_untouched() {
        let page = "<html><body><ul><li>a<li>b</ul><div><p>x<br>y</div><script>if (a<b) {}</script></body></html>";
        assert!(matches!(cap_depth(page, 3), Cow::Borrowed(_)));
        let many_items: String = "<ul>".to_string() + &"<li>item".repeat(5000) + "</ul>";
        assert!(matches!(cap_depth(&many_items, 512), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_flattened_and_text_kept() {
        let deep = "<div>".repeat(10) + "core" + &"</div>".repeat(10) + "<p>after</p>";
        let capped = cap_depth(&deep, 4);
        assert_eq!(
            capped,
            "<div><div><div><div>core</div></div></div></div><p>after</p>"
        );
    }

    #[test]
    fn comments_quotes_and_raw_text_do_not_confuse_it() {
        let page = "<div title='a>b'><!-- <div><div> --><style>div>div{}</style><div>x</div></div>";
        assert!(matches!(cap_depth(page, 2), Cow::Borrowed(_)));
    }

    #[test]
    fn a_hundred_thousand_nested_divs_are_capped_to_the_limit() {
        let n = 100_000;
        let deep = "<div>".repeat(n) + "core" + &"</div>".repeat(n);
        let capped = cap_depth(&deep, MAX_DEPTH);
        assert_eq!(capped.matches("<div>").count(), MAX_DEPTH);
        assert_eq!(capped.matches("</div>").count(), MAX_DEPTH);
        // Parsing the capped page is quick (the uncapped one takes about a minute).
        let doc = scraper::Html::parse_document(&capped);
        assert!(doc.root_element().text().any(|t| t == "core"));
    }
}
