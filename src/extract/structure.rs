//! The structure view of a page: the identifiers an integration's code reads (element ids,
//! classes, `data-*` attributes, and the `name`, `role`, `type` and `aria-label` of form
//! fields and interactive elements), one element signature per line, sorted and without
//! repeats, like `button#send.send-btn[data-testid=send]`.
//!
//! It is stored after the page's text, under a marker line, so that a renamed id or class is a
//! change even when no text moved. What churns without meaning stays out: generated names
//! (CSS-in-JS hashes, framework ids), inline styles, attribute order, state attributes, and
//! everything inside `<pre>` and `<code>` (a syntax highlighter's spans).

use std::collections::BTreeSet;

use super::html::generated_class;

/// The line that starts the structure section of a stored page.
pub const MARKER: &str = "\u{1e}structure";

/// At most this many signatures per page (a page with more is a data dump, not an app).
const MAX_SIGNATURES: usize = 10_000;

/// The longest `data-*` value kept in a signature.
const MAX_VALUE: usize = 40;

/// Collects signatures while a page is rendered.
#[derive(Debug, Default)]
pub struct Collector {
    set: BTreeSet<String>,
    /// Open `<pre>` and `<code>` elements: nothing inside them is structure.
    code: usize,
    /// The signature being written.
    scratch: String,
}

impl Collector {
    /// An element opens with these attributes.
    pub fn open<'a>(&mut self, name: &str, attrs: impl Iterator<Item = (&'a str, &'a str)>) {
        if matches!(name, "pre" | "code") {
            self.code += 1;
            return;
        }
        if self.code > 0 || matches!(name, "html" | "head" | "body") {
            return;
        }
        // Written into one buffer and copied only when new: most of a page's signatures
        // repeat (every `li.entry` of a list).
        if self.set.len() < MAX_SIGNATURES
            && write_signature(&mut self.scratch, name, attrs)
            && !self.set.contains(self.scratch.as_str())
        {
            self.set.insert(self.scratch.clone());
        }
    }

    /// An element closes.
    pub fn close(&mut self, name: &str) {
        if matches!(name, "pre" | "code") {
            self.code = self.code.saturating_sub(1);
        }
    }

    /// The signatures, one per line, sorted.
    pub fn finish(self) -> Vec<String> {
        self.set.into_iter().collect()
    }
}

/// `tag#id.class.class[attr=value]...`, or `None` for an element nothing identifies.
pub fn signature<'a>(
    name: &str,
    attrs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let mut s = String::new();
    write_signature(&mut s, name, attrs).then_some(s)
}

/// Writes [`signature`] into `s` (cleared first); false for an element nothing identifies.
fn write_signature<'a>(
    s: &mut String,
    name: &str,
    attrs: impl Iterator<Item = (&'a str, &'a str)>,
) -> bool {
    let interactive = matches!(
        name,
        "a" | "button"
            | "input"
            | "select"
            | "textarea"
            | "form"
            | "label"
            | "option"
            | "iframe"
            | "details"
            | "summary"
            | "dialog"
    );
    let (mut id, mut classes, mut keyed) = (None, Vec::new(), Vec::new());
    for (key, value) in attrs {
        let value = value.trim();
        match key {
            "id" if !value.is_empty() && !generated_id(value) => id = Some(value),
            "class" => classes.extend(
                value
                    .split_ascii_whitespace()
                    .filter(|c| !generated_class(c)),
            ),
            "role" | "aria-label" if !value.is_empty() => keyed.push((key, Some(value))),
            "name" | "type" if interactive && !value.is_empty() => keyed.push((key, Some(value))),
            k if k.starts_with("data-") && !state_attribute(k) => {
                let shown = (!value.is_empty() && value.len() <= MAX_VALUE && !generated_id(value))
                    .then_some(value);
                keyed.push((key, shown));
            }
            _ => {}
        }
    }
    // A bare `<input type=text>` is a form field all the same; any other element needs a name.
    if id.is_none()
        && classes.is_empty()
        && keyed.iter().all(|(k, _)| *k == "type")
        && name != "input"
    {
        return false;
    }
    if id.is_none() && classes.is_empty() && keyed.is_empty() {
        return false;
    }
    classes.sort_unstable();
    classes.dedup();
    keyed.sort_unstable();
    s.clear();
    s.push_str(name);
    if let Some(id) = id {
        s.push('#');
        s.push_str(id);
    }
    for c in classes {
        s.push('.');
        s.push_str(c);
    }
    for (k, v) in keyed {
        s.push('[');
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            if v.contains(|c: char| c.is_whitespace() || "[]\"=".contains(c)) {
                s.push('"');
                s.push_str(&v.replace('"', "'"));
                s.push('"');
            } else {
                s.push_str(v);
            }
        }
        s.push(']');
    }
    true
}

/// `data-*` attributes that hold state, not identity: they change as the page is used.
fn state_attribute(key: &str) -> bool {
    matches!(
        key,
        "data-state"
            | "data-active"
            | "data-selected"
            | "data-open"
            | "data-expanded"
            | "data-visible"
            | "data-loading"
            | "data-loaded"
            | "data-timestamp"
            | "data-time"
            | "data-nonce"
            | "data-csrf"
            | "data-token"
            | "data-reactid"
            | "data-reactroot"
            | "data-v-app"
            | "data-server-rendered"
            | "data-hydrated"
    ) || key.starts_with("data-v-")
}

/// A framework-generated id or value: React's `:r1:`, Ember's `ember123`, numbered widgets
/// (`mui-42`, `headlessui-menu-button-7`), hashes.
fn generated_id(v: &str) -> bool {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let longest_run = v
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    v.contains(':')
        || longest_run >= 3
        || (digits >= 1
            && v.rsplit(['-', '_'])
                .next()
                .is_some_and(|last| last.chars().all(|c| c.is_ascii_digit())))
        || generated_class(v)
}

/// A page's text with its structure section after it (no section when there is none).
pub fn join(text: String, structure: &[String]) -> String {
    if structure.is_empty() {
        return text;
    }
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(MARKER);
    out.push('\n');
    for s in structure {
        out.push_str(s);
        out.push('\n');
    }
    out
}

/// A stored page's text and its structure section, when it has one.
pub fn split(content: &str) -> (&str, Option<&str>) {
    let marker = format!("{MARKER}\n");
    if let Some(rest) = content.strip_prefix(&marker) {
        return ("", Some(rest));
    }
    match memchr::memmem::find(content.as_bytes(), format!("\n{marker}").as_bytes()) {
        Some(i) => (&content[..=i], Some(&content[i + 1 + marker.len()..])),
        None => (content, None),
    }
}

/// A stored page as people read it: the structure section under a visible heading.
pub fn readable(content: &str) -> std::borrow::Cow<'_, str> {
    if content.contains(MARKER) {
        let heading = "\n-- structure: ids, classes and test ids code reads --";
        std::borrow::Cow::Owned(content.replace(MARKER, heading.trim_start_matches('\n')))
    } else {
        std::borrow::Cow::Borrowed(content)
    }
}

/// What changed in a page's structure: the signatures that went, and those that came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// The structure changes between two sections; `None` when the old page has no section to
/// compare with (stored before forewarn read structure).
pub fn compare(old: Option<&str>, new: Option<&str>) -> Option<Changes> {
    let old: BTreeSet<&str> = old?.lines().collect();
    let new: BTreeSet<&str> = new.unwrap_or("").lines().collect();
    let changes = Changes {
        removed: old.difference(&new).map(|s| s.to_string()).collect(),
        added: new.difference(&old).map(|s| s.to_string()).collect(),
    };
    (!changes.is_empty()).then_some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(name: &str, attrs: &[(&str, &str)]) -> Option<String> {
        signature(name, attrs.iter().copied())
    }

    #[test]
    fn signatures_name_what_code_reads() {
        assert_eq!(
            sig(
                "button",
                &[
                    ("class", "send-btn primary"),
                    ("data-testid", "send"),
                    ("style", "color: red")
                ]
            )
            .as_deref(),
            Some("button.primary.send-btn[data-testid=send]")
        );
        assert_eq!(
            sig(
                "input",
                &[("type", "email"), ("name", "user[email]"), ("id", ":r3:")]
            )
            .as_deref(),
            Some("input[name=\"user[email]\"][type=email]")
        );
        assert_eq!(
            sig("div", &[("data-l10n-id", "pdfjs-find-input")]).as_deref(),
            Some("div[data-l10n-id=pdfjs-find-input]")
        );
        // Generated names and state are left out; an element with nothing else is not a line.
        assert_eq!(
            sig(
                "div",
                &[("class", "css-1x2y3z sc-bdVaJa"), ("id", "ember123")]
            ),
            None
        );
        assert_eq!(sig("div", &[("data-state", "open")]), None);
        assert_eq!(sig("span", &[]), None);
        assert_eq!(
            sig("li", &[("data-id", "48213")]).as_deref(),
            Some("li[data-id]"),
            "a numeric id's value is not identity"
        );
    }

    #[test]
    fn attribute_and_class_order_do_not_matter() {
        assert_eq!(
            sig("a", &[("role", "tab"), ("class", "b a")]),
            sig("a", &[("class", "a b"), ("role", "tab")])
        );
    }

    #[test]
    fn code_is_not_structure() {
        let mut c = Collector::default();
        c.open("pre", std::iter::empty());
        c.open("span", [("class", "kw")].into_iter());
        c.close("pre");
        c.open("nav", [("id", "top")].into_iter());
        assert_eq!(c.finish(), vec!["nav#top"]);
    }

    #[test]
    fn sections_round_trip_and_compare() {
        let joined = join(
            "# Inbox\nSend\n".into(),
            &["button#send".into(), "nav#top".into()],
        );
        assert_eq!(
            split(&joined),
            ("# Inbox\nSend\n", Some("button#send\nnav#top\n"))
        );
        assert_eq!(split("# Inbox\n"), ("# Inbox\n", None));
        assert_eq!(join("x\n".into(), &[]), "x\n");
        let after = join(
            "# Inbox\nSend\n".into(),
            &["button#send-now".into(), "nav#top".into()],
        );
        let changes = compare(split(&joined).1, split(&after).1).unwrap();
        assert_eq!(changes.removed, vec!["button#send"]);
        assert_eq!(changes.added, vec!["button#send-now"]);
        assert_eq!(
            compare(None, split(&after).1),
            None,
            "nothing to compare with"
        );
        assert_eq!(compare(split(&joined).1, split(&joined).1), None);
    }
}
