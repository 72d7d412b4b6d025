//! HTML -> readable text: one block per line, headings and list items marked, table cells
//! separated by ` | `, link targets shown as `<href>`. Scripts, styles and `<head>` are
//! skipped. The walk is iterative, so hostile nesting depth cannot overflow the stack.

use std::collections::HashSet;

use ego_tree::NodeId;
use scraper::{Html, Node, Selector};

use super::structure::Collector;

/// Parses a page, with element nesting capped first (see [`super::nesting`]).
pub fn parse(source: &str) -> Html {
    Html::parse_document(&super::nesting::cap_depth(
        source,
        super::nesting::MAX_DEPTH,
    ))
}

/// Renders the selected parts of a page (the whole body when `select` is empty), without the
/// parts matched by `remove`. Returns the text and the selectors that matched nothing.
pub fn render(
    source: &str,
    select: &[Selector],
    select_text: &[String],
    remove: &[Selector],
) -> (String, Vec<String>) {
    let r = render_full(source, select, select_text, remove, false);
    (r.text, r.missing)
}

/// A page rendered: its text, the `select` entries that matched nothing, and its structure
/// (see [`super::structure`]) when asked for.
pub struct Rendered {
    pub text: String,
    pub missing: Vec<String>,
    pub structure: Vec<String>,
}

/// [`render`], with the structure of what is rendered when `structure` is set.
pub fn render_full(
    source: &str,
    select: &[Selector],
    select_text: &[String],
    remove: &[Selector],
    structure: bool,
) -> Rendered {
    let whole = select.is_empty() && remove.is_empty();
    // The whole page: rendered from the token stream when the page is well-formed enough for
    // that to give the same text as the tree (nearly always), without building it. The stream
    // gives up past the nesting cap, so only the tree's paths need the page capped first.
    if whole && let Some((text, structure)) = super::html_stream::render(source, structure) {
        return Rendered {
            text,
            missing: Vec::new(),
            structure,
        };
    }
    let source = super::nesting::cap_depth(source, super::nesting::MAX_DEPTH);
    if whole {
        // Else the HTML5 tree, built lean: only what rendering reads.
        if let Some(tree) = super::lean::parse(&source) {
            let (text, structure) = render_whole(&tree, tree.root(), structure);
            drop(tree);
            return Rendered {
                text,
                missing: Vec::new(),
                structure,
            };
        }
    }
    render_tree(&source, select, select_text, remove, structure)
}

/// Everything below `root` rendered, with its structure when `structure` is set.
pub(super) fn render_whole<D: Dom>(dom: &D, root: D::Id, structure: bool) -> (String, Vec<String>) {
    let mut out = Renderer {
        structure: structure.then(Collector::default),
        ..Renderer::default()
    };
    out.walk(dom, root, &HashSet::new());
    out.finish()
}

/// [`render_full`] from the page's tree: any page, and `select`/`remove`.
pub(super) fn render_tree(
    source: &str,
    select: &[Selector],
    select_text: &[String],
    remove: &[Selector],
    structure: bool,
) -> Rendered {
    let doc = Html::parse_document(source);
    let removed: HashSet<NodeId> = remove
        .iter()
        .flat_map(|sel| doc.select(sel).map(|e| e.id()))
        .collect();
    let mut out = Renderer {
        structure: structure.then(Collector::default),
        ..Renderer::default()
    };
    let mut missing = Vec::new();
    if select.is_empty() {
        out.walk(&doc, doc.tree.root().id(), &removed);
    } else {
        let mut seen = HashSet::new();
        for (sel, text) in select.iter().zip(select_text) {
            let mut any = false;
            for el in doc.select(sel) {
                any = true;
                // An element matched by two selectors (or nested in an earlier match) once.
                if el.ancestors().any(|a| seen.contains(&a.id())) || !seen.insert(el.id()) {
                    continue;
                }
                // The selected element's identity is part of what is compared: a renamed id
                // or class on it is a change, even when its text is the same.
                out.line.push_str(&identity(el.value()));
                out.flush();
                out.walk(&doc, el.id(), &removed);
                out.flush();
            }
            if !any {
                missing.push(text.clone());
            }
        }
    }
    let (text, structure) = out.finish();
    Rendered {
        structure,
        text,
        missing,
    }
}

/// `[div#toolbar.bar.main]`: tag, id and classes (sorted, so their order is not a change).
/// Generated class names (CSS-in-JS hashes like `css-1x2y3z`, `sc-bdVaJa`) are left out:
/// they change on every deploy of the vendor's bundle without meaning anything.
fn identity(el: &scraper::node::Element) -> String {
    let mut s = format!("[{}", el.name());
    if let Some(id) = el.id() {
        s.push('#');
        s.push_str(id);
    }
    let mut classes: Vec<&str> = el.classes().filter(|c| !generated_class(c)).collect();
    classes.sort_unstable();
    classes.dedup();
    for c in classes {
        s.push('.');
        s.push_str(c);
    }
    s.push(']');
    s
}

pub(super) fn generated_class(c: &str) -> bool {
    const PREFIXES: &[&str] = &["css-", "sc-", "jsx-", "svelte-", "emotion-", "styled-", "_"];
    let digits = c.chars().filter(char::is_ascii_digit).count();
    let mixed =
        c.chars().any(|ch| ch.is_ascii_uppercase()) && c.chars().any(|ch| ch.is_ascii_lowercase());
    PREFIXES.iter().any(|p| c.starts_with(p))
        || (c.len() >= 6 && (digits >= 2 || (mixed && digits >= 1)))
}

#[derive(Default)]
pub(super) struct Renderer {
    pub(super) text: String,
    line: String,
    /// Length of the line's marker ("- ", "## "), so a marker alone is not a line.
    marker: usize,
    pre: usize,
    /// Flushes so far: tells whether an open link's text is still on the current line.
    flushes: usize,
    /// Open links: where their text starts on the line, and the flush count then.
    links: Vec<(usize, usize)>,
    /// The page's structure, when it is collected.
    pub(super) structure: Option<Collector>,
}

pub(super) fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "caption"
            | "dd"
            | "details"
            | "dialog"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "legend"
            | "li"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "option"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "tfoot"
            | "thead"
            | "tr"
            | "ul"
            | "title"
    )
}

/// Whether an element's attributes are structure: anything rendered, and form fields and
/// frames (not rendered as text, but read by code).
pub(super) fn is_structure(name: &str) -> bool {
    !is_skipped(name) || matches!(name, "input" | "iframe")
}

pub(super) fn is_skipped(name: &str) -> bool {
    matches!(
        name,
        "head" | "script" | "style" | "noscript" | "template" | "svg" | "math" | "input" | "iframe"
    )
}

/// A parsed page as the renderer walks it: scraper's tree for `select` and `remove`, the lean
/// tree of [`super::lean`] for whole pages. One walk over both, so the text is the same.
pub(super) trait Dom {
    type Id: Copy + Eq + std::hash::Hash;
    fn first_child(&self, id: Self::Id) -> Option<Self::Id>;
    fn next_sibling(&self, id: Self::Id) -> Option<Self::Id>;
    fn parent(&self, id: Self::Id) -> Option<Self::Id>;
    fn node(&self, id: Self::Id) -> DomNode<'_>;
    /// An element's attributes, as (local name, value).
    fn attrs(&self, id: Self::Id) -> impl Iterator<Item = (&str, &str)>;
    fn attr(&self, id: Self::Id, name: &str) -> Option<&str> {
        self.attrs(id).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// What the walk needs to know of a node.
pub(super) enum DomNode<'a> {
    Text(&'a str),
    /// An element, by its local name.
    Element(&'a str),
    /// The document, a fragment, a comment, a doctype...
    Other,
}

impl Dom for Html {
    type Id = NodeId;
    fn first_child(&self, id: NodeId) -> Option<NodeId> {
        self.tree.get(id)?.first_child().map(|n| n.id())
    }
    fn next_sibling(&self, id: NodeId) -> Option<NodeId> {
        self.tree.get(id)?.next_sibling().map(|n| n.id())
    }
    fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.tree.get(id)?.parent().map(|n| n.id())
    }
    fn node(&self, id: NodeId) -> DomNode<'_> {
        match self.tree.get(id).map(|n| n.value()) {
            Some(Node::Text(t)) => DomNode::Text(t),
            Some(Node::Element(el)) => DomNode::Element(el.name()),
            _ => DomNode::Other,
        }
    }
    fn attrs(&self, id: NodeId) -> impl Iterator<Item = (&str, &str)> {
        self.tree
            .get(id)
            .and_then(|n| n.value().as_element())
            .into_iter()
            .flat_map(|el| el.attrs())
    }
    fn attr(&self, id: NodeId, name: &str) -> Option<&str> {
        self.tree.get(id)?.value().as_element()?.attr(name)
    }
}

impl Renderer {
    /// Renders `root` and what is below it, but the `removed` elements. Iterative, so hostile
    /// nesting depth cannot overflow the stack.
    pub(super) fn walk<D: Dom>(&mut self, dom: &D, root: D::Id, removed: &HashSet<D::Id>) {
        let mut node = root;
        loop {
            if self.enter(dom, node, root, removed) {
                if let Some(child) = dom.first_child(node) {
                    node = child;
                    continue;
                }
                self.leave(dom, node);
            }
            loop {
                if node == root {
                    return;
                }
                if let Some(next) = dom.next_sibling(node) {
                    node = next;
                    break;
                }
                let Some(parent) = dom.parent(node) else {
                    return;
                };
                node = parent;
                self.leave(dom, node);
            }
        }
    }

    /// A node is reached: renders it, and says whether to go into it (then it is left too).
    fn enter<D: Dom>(
        &mut self,
        dom: &D,
        node: D::Id,
        root: D::Id,
        removed: &HashSet<D::Id>,
    ) -> bool {
        match dom.node(node) {
            DomNode::Text(t) => {
                self.push_text(t);
                false
            }
            DomNode::Element(name) => {
                if removed.contains(&node) {
                    return false;
                }
                if let Some(s) = self.structure.as_mut()
                    && is_structure(name)
                {
                    s.open(name, dom.attrs(node));
                }
                // The selected root itself is never skipped for being in <head>.
                if is_skipped(name) && !(name == "head" && node == root) {
                    return false;
                }
                self.open(name, dom.attr(node, "alt"));
                true
            }
            DomNode::Other => true,
        }
    }

    fn leave<D: Dom>(&mut self, dom: &D, node: D::Id) {
        if let DomNode::Element(name) = dom.node(node) {
            if let Some(s) = self.structure.as_mut() {
                s.close(name);
            }
            self.close(name, dom.attr(node, "href"));
        }
    }

    /// An element opens. `alt` is its `alt` attribute (only `<img>`'s is used).
    pub(super) fn open(&mut self, name: &str, alt: Option<&str>) {
        if name == "br" {
            self.flush();
            return;
        }
        if is_block(name) {
            self.flush();
        }
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level = (name.as_bytes()[1] - b'0') as usize;
                self.line.push_str(&"#".repeat(level));
                self.line.push(' ');
                self.marker = self.line.len();
            }
            "li" => {
                self.line.push_str("- ");
                self.marker = 2;
            }
            "td" | "th" if self.line.trim_end().len() > self.marker => {
                self.line.push_str(" | ");
            }
            "pre" => self.pre += 1,
            "a" => self.links.push((self.line.len(), self.flushes)),
            "button" | "label" | "select" | "textarea" => self.line.push(' '),
            "img" => {
                if let Some(alt) = alt.map(str::trim).filter(|a| !a.is_empty()) {
                    self.line.push_str(" [image: ");
                    self.line.push_str(alt);
                    self.line.push_str("] ");
                }
            }
            _ => {}
        }
    }

    /// An element closes. `href` is its `href` attribute (only `<a>`'s is used).
    pub(super) fn close(&mut self, name: &str, href: Option<&str>) {
        if name == "a" {
            let open = self.links.pop();
            if let Some(href) = href.map(str::trim)
                && !(href.is_empty() || href.starts_with('#') || href.starts_with("javascript:"))
            {
                self.link(open, href);
            }
        }
        if matches!(name, "button" | "label" | "select" | "textarea") {
            self.line.push(' ');
        }
        if name == "pre" {
            self.pre = self.pre.saturating_sub(1);
        }
        if is_block(name) {
            self.flush();
        }
    }

    /// Rewrites the link's text on the line as `[text](href)`; `<href>` when it has none.
    fn link(&mut self, open: Option<(usize, usize)>, href: &str) {
        match open {
            // Rewritten in place (a page has hundreds of links): the text stays where it is,
            // `[` goes before it and `](href)` after.
            Some((start, flushes)) if flushes == self.flushes && start <= self.line.len() => {
                let text = &self.line[start..];
                let lead = text.len() - text.trim_start().len();
                let len = text.trim().len();
                if len == 0 {
                    self.line.truncate(start);
                    self.push_pieces(&["<", href, ">"]);
                } else {
                    self.line.truncate(start + lead + len);
                    let before = &self.line[..start];
                    let open = if before.is_empty() || before.ends_with(' ') {
                        "["
                    } else {
                        " ["
                    };
                    self.line.replace_range(start..start + lead, open);
                    self.push_pieces(&["](", href, ")"]);
                }
            }
            // Block content inside the link: its target goes on a line of its own.
            _ => self.push_pieces(&[" <", href, ">"]),
        }
    }

    fn push_pieces(&mut self, pieces: &[&str]) {
        for p in pieces {
            self.line.push_str(p);
        }
    }

    pub(super) fn push_text(&mut self, t: &str) {
        if self.pre > 0 {
            // Keep the code block's lines; each becomes a line of its own.
            let mut parts = t.split('\n');
            if let Some(first) = parts.next() {
                self.line.push_str(first);
            }
            for part in parts {
                self.flush();
                self.line.push_str(part);
            }
            return;
        }
        // Collapse whitespace as a browser does; normalisation trims the ends later. Runs of
        // text are copied whole: this loop sees every byte of every page's text.
        let mut last_space = self.line.ends_with(' ');
        if super::single_spaced(t) {
            // The common case, found with SIMD scans: copy it whole.
            let t = if last_space {
                t.strip_prefix(' ').unwrap_or(t)
            } else {
                t
            };
            self.line.push_str(t);
            return;
        }
        let (mut i, mut run) = (0, 0);
        let bytes = t.as_bytes();
        while i < bytes.len() {
            if super::CLASS[bytes[i] as usize] == super::OTHER {
                i += 1;
                continue;
            }
            let ws = super::whitespace_at(t, i);
            if ws == 0 {
                i += 1;
                continue;
            }
            if run < i {
                self.line.push_str(&t[run..i]);
                last_space = false;
            }
            if !last_space {
                self.line.push(' ');
                last_space = true;
            }
            i += ws;
            run = i;
        }
        self.line.push_str(&t[run..]);
    }

    /// The text and structure rendered; the text's buffer shrunk to its size, as it is kept
    /// while the page is judged.
    pub(super) fn finish(mut self) -> (String, Vec<String>) {
        self.flush();
        self.text.shrink_to_fit();
        let structure = self
            .structure
            .take()
            .map(Collector::finish)
            .unwrap_or_default();
        (self.text, structure)
    }

    pub(super) fn flush(&mut self) {
        let body = self.line.get(self.marker..).unwrap_or("");
        if !body.trim().is_empty() {
            self.text.push_str(self.line.trim());
            self.text.push('\n');
        }
        self.line.clear();
        self.marker = 0;
        self.flushes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(src: &str, select: &[&str], remove: &[&str]) -> (String, Vec<String>) {
        let sel: Vec<Selector> = select.iter().map(|s| Selector::parse(s).unwrap()).collect();
        let txt: Vec<String> = select.iter().map(|s| s.to_string()).collect();
        let rem: Vec<Selector> = remove.iter().map(|s| Selector::parse(s).unwrap()).collect();
        render(src, &sel, &txt, &rem)
    }

    #[test]
    fn links_are_written_around_their_text() {
        let (t, _) = r(
            "<p>see<a href=\"/x\">  the docs </a>now</p><p>x <a href=\"/e\"> </a></p>\
             <a href=\"/b\"><div>Block</div></a>\
             <p><a href=\"/f\">first</a><a href=\"/s\">second</a> and <a href=\"/t\">third </a>.</p>\
             <ul><li><a href=\"/l\"> <span>in</span> <b>list</b> </a></li></ul>",
            &[],
            &[],
        );
        assert_eq!(
            t,
            "see [the docs](/x)now\nx </e>\nBlock\n</b>\n[first](/f) [second](/s) and [third](/t).\n- [in list](/l)\n"
        );
    }

    #[test]
    fn blocks_links_and_lists() {
        let (t, _) = r(
            "<html><head><title>T</title><script>x()</script></head><body>\
             <h2>Menu</h2><ul><li><a href=\"/a\">First</a></li><li>Second <b>bold</b></li></ul>\
             <p>Para   one<br>line two</p><table><tr><td>a</td><td>b</td></tr></table></body></html>",
            &[],
            &[],
        );
        assert_eq!(
            t,
            "## Menu\n- [First](/a)\n- Second bold\nPara one\nline two\na | b\n"
        );
    }

    #[test]
    fn select_and_remove() {
        let src = "<div id=t class='b a css-1x2y3z'>Keep <span class=ad>AD</span> this</div><div id=o>Other</div>";
        let (t, missing) = r(src, &["#t", "#gone"], &[".ad"]);
        assert_eq!(t, "[div#t.a.b]\nKeep this\n");
        assert_eq!(missing, vec!["#gone"]);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let src = "<div>".repeat(10_000) + "deep" + &"</div>".repeat(10_000);
        let (t, _) = r(&src, &[], &[]);
        assert_eq!(t, "deep\n");
    }

    #[test]
    fn whitespace_collapses_across_text_nodes_and_unicode_spaces() {
        let (t, _) = r(
            "<p>a\u{a0}\u{2009} b \t<b> c</b>\n<i>d</i>\u{3000}— caf\u{e9}\u{201d}</p>",
            &[],
            &[],
        );
        assert_eq!(t, "a b c d — caf\u{e9}\u{201d}\n");
    }

    #[test]
    fn empty_markers_are_dropped() {
        let (t, _) = r("<ul><li></li><li> </li></ul><h1></h1><p>x</p>", &[], &[]);
        assert_eq!(t, "x\n");
    }
}
