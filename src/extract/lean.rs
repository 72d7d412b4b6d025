//! A lean HTML5 tree for rendering whole pages that the token stream cannot render alone.
//!
//! scraper's tree keeps every element's qualified name and every attribute, and its node
//! vector doubles as it grows: a malformed 50 MB page peaked at 440 MB in it. This tree is
//! built by the same HTML5 tree builder (so the shape, with every repair, is the same) but
//! keeps only what rendering reads: names, the attributes of structure and links, and text
//! as ranges of the source wherever the tokenizer handed over source text unchanged. The page
//! is fed in chunks, so no second copy of it is made either. `select` and `remove` need
//! scraper's selectors and use its tree.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElemName, ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, LocalName, Namespace, QualName, local_name, ns};

use super::html::{Dom, DomNode, is_structure};

/// How much of the page the tokenizer is given at a time.
const CHUNK: usize = 64 * 1024;

/// Parses a whole page into a [`Tree`]; `None` for a page too large for its 32-bit ranges.
pub(super) fn parse(source: &str) -> Option<Tree<'_>> {
    if source.len() >= (u32::MAX / 2) as usize {
        return None;
    }
    let sink = Sink {
        tree: RefCell::new(Tree::new(source)),
        chunk: Cell::new(Chunk::default()),
    };
    let mut parser = html5ever::parse_document(sink, Default::default());
    let mut at = 0;
    while at < source.len() {
        let mut end = (at + CHUNK).min(source.len());
        while !source.is_char_boundary(end) {
            end -= 1;
        }
        let piece = StrTendril::from_slice(&source[at..end]);
        parser.tokenizer.sink.sink.chunk.set(Chunk {
            ptr: piece.as_ptr() as usize,
            len: piece.len(),
            offset: at,
        });
        parser.process(piece);
        at = end;
    }
    // What the tokenizer still holds is no longer a range of a chunk the sink knows.
    parser.tokenizer.sink.sink.chunk.set(Chunk::default());
    Some(parser.finish()).filter(|t| !t.odd)
}

/// The chunk being tokenized: where its copy lives, and where it starts in the source.
#[derive(Clone, Copy, Default)]
struct Chunk {
    ptr: usize,
    len: usize,
    offset: usize,
}

const NONE: u32 = u32::MAX;

/// The page as a tree of [`LeanNode`]s; node 0 is the document.
pub(super) struct Tree<'s> {
    source: &'s str,
    nodes: Vec<LeanNode>,
    attrs: Vec<Attr>,
    /// Each element's kept attributes, as a range of `attrs`.
    ranges: Vec<(u32, u32)>,
    /// An element in a namespace the tree builder does not use: the page is left to scraper.
    odd: bool,
    /// Text that is not a range of the source (decoded references, merged runs) and
    /// attribute values.
    text: String,
}

struct LeanNode {
    parent: u32,
    prev: u32,
    next: u32,
    first: u32,
    last: u32,
    data: Data,
}

enum Data {
    Document,
    Element {
        local: LocalName,
        /// Its kept attributes: `attrs[ranges[i].0..][..ranges[i].1]`, or [`NONE`].
        attrs: u32,
        ns: Ns,
    },
    Text(Span),
    /// Comments, doctypes, processing instructions, template contents.
    Other,
}

#[derive(Clone, Copy)]
enum Span {
    Source(u32, u32),
    Own(u32, u32),
}

struct Attr {
    name: LocalName,
    value: (u32, u32),
}

/// The namespaces the tree builder creates elements in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ns {
    Html,
    Svg,
    MathMl,
}

static NAMESPACES: [Namespace; 3] = [ns!(html), ns!(svg), ns!(mathml)];

impl Ns {
    fn of(ns: &Namespace) -> Option<Ns> {
        [Ns::Html, Ns::Svg, Ns::MathMl]
            .into_iter()
            .find(|n| n.namespace() == ns)
    }

    fn namespace(self) -> &'static Namespace {
        &NAMESPACES[self as usize]
    }
}

impl<'s> Tree<'s> {
    fn new(source: &'s str) -> Self {
        // Reserved, not touched: pages that are not used are not resident.
        let mut t = Tree {
            source,
            nodes: Vec::with_capacity(source.len() / 24 + 16),
            attrs: Vec::new(),
            ranges: Vec::new(),
            odd: false,
            text: String::with_capacity(source.len() / 8),
        };
        t.push(Data::Document);
        t
    }

    fn push(&mut self, data: Data) -> u32 {
        self.nodes.push(LeanNode {
            parent: NONE,
            prev: NONE,
            next: NONE,
            first: NONE,
            last: NONE,
            data,
        });
        (self.nodes.len() - 1) as u32
    }

    fn span(&self, s: Span) -> &str {
        match s {
            Span::Source(a, n) => &self.source[a as usize..(a + n) as usize],
            Span::Own(a, n) => &self.text[a as usize..(a + n) as usize],
        }
    }

    /// Keeps `v` in the tree's own text.
    fn own(&mut self, v: &str) -> (u32, u32) {
        let at = self.text.len() as u32;
        self.text.push_str(v);
        (at, v.len() as u32)
    }

    fn detach(&mut self, id: u32) {
        let n = &self.nodes[id as usize];
        let (parent, prev, next) = (n.parent, n.prev, n.next);
        if parent == NONE {
            return;
        }
        match prev {
            NONE => self.nodes[parent as usize].first = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NONE => self.nodes[parent as usize].last = prev,
            x => self.nodes[x as usize].prev = prev,
        }
        let n = &mut self.nodes[id as usize];
        (n.parent, n.prev, n.next) = (NONE, NONE, NONE);
    }

    fn append(&mut self, parent: u32, id: u32) {
        self.detach(id);
        let last = self.nodes[parent as usize].last;
        match last {
            NONE => self.nodes[parent as usize].first = id,
            l => self.nodes[l as usize].next = id,
        }
        let p = &mut self.nodes[parent as usize];
        p.last = id;
        let n = &mut self.nodes[id as usize];
        (n.parent, n.prev) = (parent, last);
    }

    fn insert_before(&mut self, sibling: u32, id: u32) {
        self.detach(id);
        let (parent, prev) = {
            let s = &self.nodes[sibling as usize];
            (s.parent, s.prev)
        };
        match prev {
            NONE => self.nodes[parent as usize].first = id,
            p => self.nodes[p as usize].next = id,
        }
        self.nodes[sibling as usize].prev = id;
        let n = &mut self.nodes[id as usize];
        (n.parent, n.prev, n.next) = (parent, prev, sibling);
    }

    /// Text the tokenizer gave: a range of the source when it lies in the current chunk.
    fn text_span(&mut self, t: &str, chunk: Chunk) -> Span {
        let p = t.as_ptr() as usize;
        if chunk.len > 0 && p >= chunk.ptr && p + t.len() <= chunk.ptr + chunk.len {
            Span::Source((chunk.offset + (p - chunk.ptr)) as u32, t.len() as u32)
        } else {
            let (a, n) = self.own(t);
            Span::Own(a, n)
        }
    }

    /// Adds text after `existing` (a text node), merging the two as one node's text.
    fn merge(&mut self, existing: u32, t: &str, chunk: Chunk) {
        let Data::Text(old) = self.nodes[existing as usize].data else {
            unreachable!("merging into a text node")
        };
        let new = self.text_span(t, chunk);
        let merged = match (old, new) {
            (Span::Source(a, n), Span::Source(b, m)) if a + n == b => Span::Source(a, n + m),
            (Span::Own(a, n), Span::Own(b, m)) if a + n == b => Span::Own(a, n + m),
            _ => {
                let joined = format!("{}{}", self.span(old), self.span(new));
                let (a, n) = self.own(&joined);
                Span::Own(a, n)
            }
        };
        self.nodes[existing as usize].data = Data::Text(merged);
    }

    fn is_text(&self, id: u32) -> bool {
        id != NONE && matches!(self.nodes[id as usize].data, Data::Text(_))
    }

    /// Keeps the attributes rendering reads: all of a structure element's, else links and
    /// image descriptions.
    fn keep_attrs(&mut self, local: &LocalName, attrs: &[Attribute]) -> u32 {
        let all = is_structure(local);
        let start = self.attrs.len() as u32;
        for a in attrs {
            if all || matches!(a.name.local, local_name!("href") | local_name!("alt")) {
                let value = self.own(&a.value);
                self.attrs.push(Attr {
                    name: a.name.local.clone(),
                    value,
                });
            }
        }
        let len = self.attrs.len() as u32 - start;
        if len == 0 {
            return NONE;
        }
        self.ranges.push((start, len));
        (self.ranges.len() - 1) as u32
    }

    fn attr_range(&self, id: u32) -> (u32, u32) {
        match self.nodes[id as usize].data {
            Data::Element { attrs, .. } if attrs != NONE => self.ranges[attrs as usize],
            _ => (0, 0),
        }
    }
}

impl Dom for Tree<'_> {
    type Id = u32;
    fn first_child(&self, id: u32) -> Option<u32> {
        Some(self.nodes[id as usize].first).filter(|&c| c != NONE)
    }
    fn next_sibling(&self, id: u32) -> Option<u32> {
        Some(self.nodes[id as usize].next).filter(|&c| c != NONE)
    }
    fn parent(&self, id: u32) -> Option<u32> {
        Some(self.nodes[id as usize].parent).filter(|&c| c != NONE)
    }
    fn node(&self, id: u32) -> DomNode<'_> {
        match &self.nodes[id as usize].data {
            Data::Text(s) => DomNode::Text(self.span(*s)),
            Data::Element { local, .. } => DomNode::Element(local),
            Data::Document | Data::Other => DomNode::Other,
        }
    }
    fn attrs(&self, id: u32) -> impl Iterator<Item = (&str, &str)> {
        let (start, len) = self.attr_range(id);
        self.attrs[start as usize..(start + len) as usize]
            .iter()
            .map(|a| (&*a.name, self.span(Span::Own(a.value.0, a.value.1))))
    }
}

impl Tree<'_> {
    pub(super) fn root(&self) -> u32 {
        0
    }
}

struct Sink<'s> {
    tree: RefCell<Tree<'s>>,
    chunk: Cell<Chunk>,
}

/// An element's name as the tree builder asks for it.
#[derive(Debug)]
pub(super) struct Name<'a> {
    ns: &'static Namespace,
    local: Ref<'a, LocalName>,
}

impl ElemName for Name<'_> {
    fn ns(&self) -> &Namespace {
        self.ns
    }
    fn local_name(&self) -> &LocalName {
        &self.local
    }
}

impl<'s> TreeSink for Sink<'s> {
    type Handle = u32;
    type Output = Tree<'s>;
    type ElemName<'a>
        = Name<'a>
    where
        Self: 'a;

    fn finish(self) -> Tree<'s> {
        self.tree.into_inner()
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> u32 {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a u32) -> Name<'a> {
        let t = self.tree.borrow();
        let Data::Element { ns, .. } = t.nodes[*target as usize].data else {
            unreachable!("the tree builder asks names of elements only")
        };
        Name {
            ns: ns.namespace(),
            local: Ref::map(t, |t| match &t.nodes[*target as usize].data {
                Data::Element { local, .. } => local,
                _ => unreachable!("checked above"),
            }),
        }
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, _: ElementFlags) -> u32 {
        let mut t = self.tree.borrow_mut();
        let template = name.ns == ns!(html) && name.local == local_name!("template");
        let attrs = t.keep_attrs(&name.local, &attrs);
        let ns = Ns::of(&name.ns).unwrap_or_else(|| {
            t.odd = true;
            Ns::Html
        });
        let id = t.push(Data::Element {
            local: name.local,
            attrs,
            ns,
        });
        if template {
            let contents = t.push(Data::Other);
            t.append(id, contents);
        }
        id
    }

    fn create_comment(&self, _text: StrTendril) -> u32 {
        self.tree.borrow_mut().push(Data::Other)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> u32 {
        self.tree.borrow_mut().push(Data::Other)
    }

    fn append(&self, parent: &u32, child: NodeOrText<u32>) {
        let mut t = self.tree.borrow_mut();
        match child {
            NodeOrText::AppendNode(id) => t.append(*parent, id),
            NodeOrText::AppendText(text) => {
                let last = t.nodes[*parent as usize].last;
                if t.is_text(last) {
                    t.merge(last, &text, self.chunk.get());
                } else {
                    let span = t.text_span(&text, self.chunk.get());
                    let id = t.push(Data::Text(span));
                    t.append(*parent, id);
                }
            }
        }
    }

    fn append_based_on_parent_node(&self, element: &u32, prev: &u32, child: NodeOrText<u32>) {
        let has_parent = self.tree.borrow().nodes[*element as usize].parent != NONE;
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {
        let mut t = self.tree.borrow_mut();
        let id = t.push(Data::Other);
        t.append(0, id);
    }

    fn get_template_contents(&self, target: &u32) -> u32 {
        self.tree.borrow().nodes[*target as usize].first
    }

    fn same_node(&self, x: &u32, y: &u32) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &u32, new_node: NodeOrText<u32>) {
        let mut t = self.tree.borrow_mut();
        if let NodeOrText::AppendNode(id) = new_node {
            t.detach(id);
        }
        if t.nodes[*sibling as usize].parent == NONE {
            return;
        }
        match new_node {
            NodeOrText::AppendNode(id) => t.insert_before(*sibling, id),
            NodeOrText::AppendText(text) => {
                let prev = t.nodes[*sibling as usize].prev;
                if t.is_text(prev) {
                    t.merge(prev, &text, self.chunk.get());
                } else {
                    let span = t.text_span(&text, self.chunk.get());
                    let id = t.push(Data::Text(span));
                    t.insert_before(*sibling, id);
                }
            }
        }
    }

    fn add_attrs_if_missing(&self, target: &u32, attrs: Vec<Attribute>) {
        let mut t = self.tree.borrow_mut();
        let Data::Element { local, .. } = &t.nodes[*target as usize].data else {
            return;
        };
        let local = local.clone();
        let (start, len) = t.attr_range(*target);
        let have: Vec<LocalName> = t.attrs[start as usize..(start + len) as usize]
            .iter()
            .map(|a| a.name.clone())
            .collect();
        let missing: Vec<Attribute> = attrs
            .into_iter()
            .filter(|a| !have.contains(&a.name.local))
            .collect();
        if missing.is_empty() {
            return;
        }
        // The element's attributes move to the end, with the new ones after them.
        let new_start = t.attrs.len() as u32;
        for i in start..start + len {
            let a = Attr {
                name: t.attrs[i as usize].name.clone(),
                value: t.attrs[i as usize].value,
            };
            t.attrs.push(a);
        }
        let kept = t.keep_attrs(&local, &missing);
        let added = if kept == NONE {
            0
        } else {
            t.ranges[kept as usize].1
        };
        t.ranges.push((new_start, len + added));
        let range = (t.ranges.len() - 1) as u32;
        if let Data::Element { attrs, .. } = &mut t.nodes[*target as usize].data {
            *attrs = range;
        }
    }

    fn remove_from_parent(&self, target: &u32) {
        self.tree.borrow_mut().detach(*target);
    }

    fn reparent_children(&self, node: &u32, new_parent: &u32) {
        let mut t = self.tree.borrow_mut();
        while let Some(child) = Some(t.nodes[*node as usize].first).filter(|&c| c != NONE) {
            t.append(*new_parent, child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lean(src: &str) -> (String, Vec<String>) {
        let tree = parse(src).unwrap();
        super::super::html::render_whole(&tree, tree.root(), true)
    }

    fn scraper(src: &str) -> (String, Vec<String>) {
        let r = super::super::html::render_tree(src, &[], &[], &[], true);
        (r.text, r.structure)
    }

    #[test]
    fn renders_as_scrapers_tree_does_on_pages_the_tree_builder_repairs() {
        let pages = [
            "<p>one<p>two<div>three</div>",
            "<b>bold <i>both</b> italic</i> plain",
            "<table><tr><td>a<td>b</table>stray<table>text in table<tr><td>c</td></tr></table>",
            "<a href=/x>one <a href=/y>two</a></a>",
            "<html><body><p class=\"row r1\">x</p></body></html><html><body><p id=again>y</p>",
            "<ul><li>a<li>b &amp; c<li>d&nbsp;e</ul>",
            "<pre>\nline one\r\nline two</pre><img alt=\"logo\"><input name=q>",
            "<template><p>hidden</p></template><svg><a>no</a></svg><p>after</p>",
            "<body class=a><body id=b data-x=1>text",
            "<p>a<b>b<p>c</b>d",
            "<frameset><frame></frameset>",
            "",
        ];
        for p in pages {
            assert_eq!(lean(p), scraper(p), "{p:?}");
        }
    }

    #[test]
    fn a_node_is_small() {
        assert!(std::mem::size_of::<LeanNode>() <= 40);
    }

    #[test]
    fn a_page_larger_than_a_chunk_renders_whole() {
        let row = "<p class=\"row\">caf\u{e9} &amp; tea<br>x</p>\n";
        let page = format!("<main>{}</main><p>after the end</html>x", row.repeat(8000));
        assert!(page.len() > 4 * CHUNK);
        let (text, structure) = lean(&page);
        assert_eq!((text.clone(), structure), scraper(&page));
        assert_eq!(text.matches("caf\u{e9} & tea").count(), 8000);
    }
}
