//! Feeds (RSS 0.9x / 1.0 / 2.0, Atom, JSON Feed, through feed-rs) as a list of entries, and
//! the comparison of two lists: which entries are new, which were edited.
//!
//! Identity: the entry's id / guid, else its link, else its enclosure URL, else a hash of
//! title and date. An entry that drops out of the feed's window is not a change, reordering is
//! not a change, and feed-level fields (lastBuildDate, `<updated>`, generator) are ignored.
//! Feeds whose ids shift on every release are handled by also matching on title and link.

use serde::{Deserialize, Serialize};

/// One entry, reduced to what is compared and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub key: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Plain text of the content (else the summary), whitespace normalised.
    pub text: String,
}

impl FeedEntry {
    /// How the entry reads in a diff.
    pub fn render(&self) -> String {
        let mut s = format!("# {}\n", self.title);
        if let Some(l) = &self.link {
            s.push_str(&format!("link: {l}\n"));
        }
        if let Some(d) = &self.date {
            s.push_str(&format!("date: {d}\n"));
        }
        s.push_str(&self.text);
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }

    /// The first `max` characters of the text, cut at a word.
    pub fn excerpt(&self, max: usize) -> String {
        let flat = self.text.split_whitespace().collect::<Vec<_>>().join(" ");
        if flat.chars().count() <= max {
            return flat;
        }
        let cut: String = flat.chars().take(max).collect();
        let cut = cut
            .rsplit_once(' ')
            .map_or(cut.as_str(), |(a, _)| a)
            .to_string();
        format!("{cut} ...")
    }
}

/// True when a response looks like a feed: its content type, or how the body starts.
pub fn looks_like_feed(content_type: &str, body: &[u8]) -> bool {
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("rss") || ct.contains("atom") || ct.contains("feed+json") || ct.contains("rdf") {
        return true;
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    (head.starts_with("<?xml") || head.starts_with('<'))
        && (head.contains("<rss") || head.contains("<feed") || head.contains("<rdf:rdf"))
        || (head.starts_with('{') && head.contains("jsonfeed.org/version"))
}

/// Parses a feed into entries, in the feed's order.
pub fn parse(body: &[u8]) -> Result<Vec<FeedEntry>, String> {
    // Entries without an id get an empty one: identity is ours to decide (below).
    let parser = feed_rs::parser::Builder::new()
        .id_generator(|_, _, _| String::new())
        .build();
    let feed = parser
        .parse(body)
        .map_err(|e| format!("not a valid RSS, Atom or JSON feed: {e}"))?;
    Ok(feed
        .entries
        .into_iter()
        .map(|e| {
            let title = e
                .title
                .map(|t| plain(&t.content))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "(untitled)".into());
            let link = e
                .links
                .iter()
                .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
                .or(e.links.first())
                .map(|l| l.href.trim().to_string());
            let enclosure = e
                .media
                .iter()
                .flat_map(|m| &m.content)
                .find_map(|c| c.url.as_ref().map(|u| u.to_string()));
            let date = e.published.or(e.updated).map(crate::event::rfc3339);
            let text = e
                .content
                .and_then(|c| c.body)
                .or(e.summary.map(|s| s.content))
                .map(|t| blocks(&t))
                .unwrap_or_default();
            let key = if !e.id.trim().is_empty() {
                format!("id:{}", e.id.trim())
            } else if let Some(l) = &link {
                format!("link:{l}")
            } else if let Some(u) = &enclosure {
                format!("enclosure:{u}")
            } else {
                // Title and date; when a feed gives neither (RSS 0.92 allows it), the text,
                // or every such item would be the same entry.
                let basis = if date.is_none() && title == "(untitled)" {
                    format!("{title}\u{0}{text}")
                } else {
                    format!("{title}\u{0}{}", date.as_deref().unwrap_or(""))
                };
                format!("hash:{}", hex(&crate::compare::hash(basis.as_bytes())[..8]))
            };
            FeedEntry {
                key,
                title,
                link: link.or(enclosure),
                date,
                text,
            }
        })
        .collect())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Readable text of an entry's content, one block per line (as pages are rendered), so an
/// edit shows as the paragraph that changed.
fn blocks(s: &str) -> String {
    if s.contains('<') {
        let (text, _) = super::html::render(s, &[], &[], &[]);
        super::normalise(&text, &[])
    } else {
        super::normalise(s, &[])
    }
}

/// Text of an HTML fragment (feeds carry escaped HTML), whitespace normalised.
fn plain(s: &str) -> String {
    let text = if s.contains('<') {
        let frag = scraper::Html::parse_fragment(s);
        let mut out = String::new();
        for t in frag.root_element().text() {
            out.push_str(t);
            out.push(' ');
        }
        out
    } else {
        s.to_string()
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What changed between two lists of entries.
#[derive(Debug, Default)]
pub struct FeedChanges {
    pub new: Vec<FeedEntry>,
    /// (before, after)
    pub updated: Vec<(FeedEntry, FeedEntry)>,
}

/// New and edited entries of `new` against `old`. Entries gone from the window are ignored.
///
/// An entry is known by its content first (title, link and text), then by its id, then by its
/// title and link: feeds whose ids are list positions (0, 1, 2, ...) or are regenerated on
/// each build give every entry another entry's id, and one new entry at the top must be one
/// new entry, not every entry "updated".
pub fn compare(old: &[FeedEntry], new: &[FeedEntry]) -> FeedChanges {
    use std::collections::HashMap;
    let mut by_content: HashMap<Content<'_>, Vec<usize>> = HashMap::new();
    for (i, e) in old.iter().enumerate() {
        by_content.entry(content(e)).or_default().push(i);
    }
    let by_key: HashMap<&str, usize> = old
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), i))
        .collect();
    let by_title_link: HashMap<(&str, Option<&str>), usize> = old
        .iter()
        .enumerate()
        .map(|(i, e)| ((e.title.as_str(), e.link.as_deref()), i))
        .collect();
    // Old entries accounted for, and new entries found unchanged.
    let mut claimed = vec![false; old.len()];
    let mut same = vec![false; new.len()];
    for (j, e) in new.iter().enumerate() {
        if let Some(i) = by_content.get_mut(&content(e)).and_then(Vec::pop) {
            claimed[i] = true;
            same[j] = true;
        }
    }
    let mut changes = FeedChanges::default();
    for (j, e) in new.iter().enumerate() {
        if same[j] {
            continue;
        }
        let known = by_key
            .get(e.key.as_str())
            .or_else(|| by_title_link.get(&(e.title.as_str(), e.link.as_deref())))
            .copied()
            .filter(|&i| !claimed[i]);
        match known {
            Some(i) => {
                claimed[i] = true;
                let before = &old[i];
                if before.title != e.title || before.text != e.text {
                    changes.updated.push((before.clone(), e.clone()));
                }
            }
            None => changes.new.push(e.clone()),
        }
    }
    changes
}

/// What an entry says: title, link and text.
type Content<'a> = (&'a str, Option<&'a str>, &'a str);

fn content(e: &FeedEntry) -> Content<'_> {
    (e.title.as_str(), e.link.as_deref(), e.text.as_str())
}

/// The stored form of a list of entries: one JSON object per line.
pub fn to_snapshot(entries: &[FeedEntry]) -> String {
    entries
        .iter()
        .map(|e| serde_json::to_string(e).expect("entries serialise") + "\n")
        .collect()
}

/// Entries back from a stored snapshot; `None` if it is not one.
pub fn from_snapshot(text: &str) -> Option<Vec<FeedEntry>> {
    text.lines().map(|l| serde_json::from_str(l).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
        <lastBuildDate>Mon, 01 Jan 2024 00:00:00 GMT</lastBuildDate>
        <item><title>2.0 released</title><link>https://x/2.0</link><guid>g2</guid>
              <description>&lt;p&gt;Breaking: v1 auth removed&lt;/p&gt;</description></item>
        <item><title>1.9</title><link>https://x/1.9</link><description>Fixes</description></item>
        </channel></rss>"#;

    #[test]
    fn parses_identity_and_text() {
        let e = parse(RSS.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, "id:g2");
        assert_eq!(e[0].text, "Breaking: v1 auth removed\n");
        assert_eq!(e[1].key, "link:https://x/1.9", "no guid: the link");
        assert!(looks_like_feed("", RSS.as_bytes()));
        assert!(looks_like_feed("application/atom+xml", b""));
        assert!(!looks_like_feed("text/html", b"<html><body>"));
    }

    #[test]
    fn new_updated_reordered_and_dropped() {
        let old = parse(RSS.as_bytes()).unwrap();
        let next = RSS
            .replace(
                "<item><title>2.0",
                "<item><title>2.1</title><link>https://x/2.1</link><guid>g3</guid><description>New</description></item><item><title>2.0",
            )
            .replace("<description>Fixes</description>", "<description>Fixes, edited</description>");
        let new = parse(next.as_bytes()).unwrap();
        let c = compare(&old, &new);
        assert_eq!(
            c.new.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
            vec!["2.1"]
        );
        assert_eq!(c.updated.len(), 1);
        assert_eq!(c.updated[0].1.text, "Fixes, edited\n");
        // Reordered and one dropped out of the window: nothing.
        let mut shuffled = old.clone();
        shuffled.reverse();
        shuffled.pop();
        let c = compare(&old, &shuffled);
        assert!(c.new.is_empty() && c.updated.is_empty());
    }

    #[test]
    fn untitled_undated_items_are_told_apart() {
        let rss = r#"<rss version="0.92"><channel><title>T</title>
            <item><description>first</description></item>
            <item><description>second</description></item></channel></rss>"#;
        let e = parse(rss.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert_ne!(e[0].key, e[1].key);
    }

    #[test]
    fn shifting_ids_are_not_new_entries() {
        let old = parse(RSS.as_bytes()).unwrap();
        let shifted = parse(
            RSS.replace("<guid>g2</guid>", "<guid>g2-rebuilt-123</guid>")
                .as_bytes(),
        )
        .unwrap();
        let c = compare(&old, &shifted);
        assert!(c.new.is_empty(), "{:?}", c.new);
    }

    /// A feed whose ids are list positions: one entry at the top gives every entry another's
    /// id. One new entry, nothing updated; an edit is still an edit.
    #[test]
    fn ids_that_are_list_positions_keep_entries_apart() {
        let feed = |titles: &[&str]| {
            let items: String = titles
                .iter()
                .enumerate()
                .map(|(i, t)| format!("<item><title>{t}</title><guid>{i}</guid><description>About {t}</description></item>"))
                .collect();
            format!(
                "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>{items}</channel></rss>"
            )
        };
        let old = parse(feed(&["1.2", "1.1", "1.0"]).as_bytes()).unwrap();
        let new = parse(feed(&["1.3", "1.2", "1.1", "1.0"]).as_bytes()).unwrap();
        let c = compare(&old, &new);
        assert_eq!(
            c.new.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(),
            ["1.3"]
        );
        assert!(c.updated.is_empty(), "{:?}", c.updated);
        // Regenerated: every id differs, nothing else did.
        let again = parse(
            feed(&["1.2", "1.1", "1.0"])
                .replace("<guid>", "<guid>x")
                .as_bytes(),
        )
        .unwrap();
        let c = compare(&old, &again);
        assert!(c.new.is_empty() && c.updated.is_empty(), "{c:?}");
        // The same id with its text edited is an update.
        let edited = parse(
            feed(&["1.2", "1.1", "1.0"])
                .replace("About 1.1", "About 1.1 (yanked)")
                .as_bytes(),
        )
        .unwrap();
        let c = compare(&old, &edited);
        assert!(c.new.is_empty(), "{c:?}");
        assert_eq!(c.updated.len(), 1, "{c:?}");
        assert_eq!(c.updated[0].1.title, "1.1");
    }

    #[test]
    fn snapshot_round_trips_and_malformed_is_an_error() {
        let e = parse(RSS.as_bytes()).unwrap();
        assert_eq!(from_snapshot(&to_snapshot(&e)).unwrap(), e);
        // Truncated XML: an answer either way, never a panic.
        let _ = parse(b"<rss><channel><item><title>x");
        assert!(parse(b"not a feed at all").is_err());
    }
}
