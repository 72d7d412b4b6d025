//! JSON APIs: what changed in the structure (a field added or removed, a type changed, null
//! allowed or not) and what changed in the values (`$.version: 3 -> 4`), reported apart.
//!
//! Arrays of objects that carry an id-like key (`id`, `key`, `uuid`, `slug`, `name`) are
//! matched by it, so reordering them is not a change; the structure of an array's elements is
//! the union over all of them (`$.items[*].price`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::config::json_path::{Step, parse_path};

/// Keys that identify an array's objects, most telling first; one counts only when every
/// element has it and no two share a value.
const ID_KEYS: &[&str] = &[
    "id", "uuid", "key", "slug", "name", "url", "href", "link", "tag", "version", "title",
];

/// The key that identifies the objects of an array, if every element has it.
fn id_key(items: &[Value]) -> Option<&'static str> {
    identified(items).map(|(k, _)| k)
}

/// The key that identifies the objects of an array (every element has it, a string or a
/// number, and no two share a value), and each element's id as written in JSON (the order
/// they sort in).
fn identified(items: &[Value]) -> Option<(&'static str, Vec<String>)> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    ID_KEYS.iter().copied().find_map(|k| {
        let usable = |i: &Value| i.get(k).is_some_and(|v| v.is_string() || v.is_number());
        if !items.iter().all(usable) {
            return None;
        }
        let ids: Vec<String> = items.iter().map(|i| i[k].to_string()).collect();
        let mut sorted: Vec<&String> = ids.iter().collect();
        sorted.sort_unstable();
        sorted.windows(2).all(|w| w[0] != w[1]).then_some((k, ids))
    })
}

/// Sorts arrays of identified objects by their id, recursively: order is not a change.
pub fn canonicalize(v: &mut Value) {
    match v {
        Value::Array(items) => {
            for i in items.iter_mut() {
                canonicalize(i);
            }
            if let Some((_, ids)) = identified(items) {
                // Each id written once, not once per comparison; ids are unique, so the order
                // is the one sorting by them gives.
                let mut keyed: Vec<(String, Value)> =
                    ids.into_iter().zip(items.drain(..)).collect();
                keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                items.extend(keyed.into_iter().map(|(_, item)| item));
            }
        }
        Value::Object(map) => {
            for (_, x) in map.iter_mut() {
                canonicalize(x);
            }
        }
        _ => {}
    }
}

/// Deletes what `ignore_paths` names: `$.a.b`, `$.items[*].updated`, `$..request_id`.
pub fn remove_paths(v: &mut Value, paths: &[String]) {
    for p in paths {
        let steps = parse_path(p);
        remove_at(v, &steps);
    }
}

/// The values a path (`$.data[*].id`, `$..price`) selects.
pub fn select<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    select_at(v, &parse_path(path), &mut out);
    out
}

fn select_at<'a>(v: &'a Value, steps: &[Step], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = steps.split_first() else {
        out.push(v);
        return;
    };
    match first {
        Step::Key(k) => {
            if let Some(x) = v.get(k) {
                select_at(x, rest, out);
            }
        }
        Step::AnyIndex => {
            if let Value::Array(items) = v {
                for i in items {
                    select_at(i, rest, out);
                }
            }
        }
        Step::Descend(k) => {
            if let Some(x) = v.get(k) {
                select_at(x, rest, out);
            }
            match v {
                Value::Object(m) => {
                    for (_, x) in m {
                        select_at(x, steps, out);
                    }
                }
                Value::Array(items) => {
                    for x in items {
                        select_at(x, steps, out);
                    }
                }
                _ => {}
            }
        }
    }
}

fn remove_at(v: &mut Value, steps: &[Step]) {
    let Some((first, rest)) = steps.split_first() else {
        return;
    };
    match first {
        Step::Key(k) => {
            if let Value::Object(m) = v {
                if rest.is_empty() {
                    m.remove(k);
                } else if let Some(x) = m.get_mut(k) {
                    remove_at(x, rest);
                }
            }
        }
        Step::AnyIndex => {
            if let Value::Array(items) = v {
                for i in items {
                    remove_at(i, rest);
                }
            }
        }
        Step::Descend(k) => descend(v, k, rest),
    }
}

fn descend(v: &mut Value, k: &str, rest: &[Step]) {
    match v {
        Value::Object(m) => {
            if rest.is_empty() {
                m.remove(k);
            } else if let Some(x) = m.get_mut(k) {
                remove_at(x, rest);
            }
            for (_, x) in m.iter_mut() {
                descend(x, k, rest);
            }
        }
        Value::Array(items) => {
            for i in items {
                descend(i, k, rest);
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Path -> the types seen there (`$.items[*].price` -> {number}).
pub type Structure = BTreeMap<String, BTreeSet<&'static str>>;

pub fn structure(v: &Value) -> Structure {
    let mut out = Structure::new();
    walk_types(v, &mut "$".to_string(), &mut out);
    out
}

/// One path buffer for the whole walk, a segment pushed and popped per level: the elements of
/// an array share their path, which is allocated once, when it is first seen.
fn walk_types(v: &Value, path: &mut String, out: &mut Structure) {
    match out.get_mut(path.as_str()) {
        Some(types) => {
            types.insert(type_name(v));
        }
        None => {
            out.insert(path.clone(), BTreeSet::from([type_name(v)]));
        }
    }
    let len = path.len();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push('.');
                path.push_str(k);
                walk_types(x, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            path.push_str("[*]");
            for i in items {
                walk_types(i, path, out);
            }
            path.truncate(len);
        }
        _ => {}
    }
}

/// Leaf path -> value under `path`, with identified array elements addressed by id
/// (`$.items[id=5].price`).
fn walk_leaves(v: &Value, path: &mut String, out: &mut BTreeMap<String, String>) {
    let len = path.len();
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                path.push('.');
                path.push_str(k);
                walk_leaves(x, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let key = id_key(items);
            for (i, x) in items.iter().enumerate() {
                push_address(path, key, i, x);
                walk_leaves(x, path, out);
                path.truncate(len);
            }
        }
        other => {
            out.insert(path.clone(), other.to_string());
        }
    }
}

/// The [`leaves`] of `old` (into `a`) and `new` (into `b`) under `path`, leaving out the members
/// of objects and the elements of arrays that are equal in both (they would give the same
/// leaves on both sides).
fn differing_leaves(
    old: &Value,
    new: &Value,
    path: &mut String,
    a: &mut BTreeMap<String, String>,
    b: &mut BTreeMap<String, String>,
) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(x), Value::Object(y)) if !x.is_empty() && !y.is_empty() => {
            differing_members(x, y, path, a, b);
        }
        (Value::Array(x), Value::Array(y)) if !x.is_empty() && !y.is_empty() => {
            // An API's list of a hundred endpoints with one field changed was walked whole,
            // on both sides: most of the judging of a changed JSON document.
            if !differing_elements(x, y, path, a, b) {
                walk_leaves(old, path, a);
                walk_leaves(new, path, b);
            }
        }
        _ => {
            walk_leaves(old, path, a);
            walk_leaves(new, path, b);
        }
    }
}

fn differing_members(
    x: &serde_json::Map<String, Value>,
    y: &serde_json::Map<String, Value>,
    path: &mut String,
    a: &mut BTreeMap<String, String>,
    b: &mut BTreeMap<String, String>,
) {
    let len = path.len();
    for (k, v) in x {
        path.push('.');
        path.push_str(k);
        match y.get(k) {
            Some(w) => differing_leaves(v, w, path, a, b),
            None => walk_leaves(v, path, a),
        }
        path.truncate(len);
    }
    for (k, w) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
        path.push('.');
        path.push_str(k);
        walk_leaves(w, path, b);
        path.truncate(len);
    }
}

/// Pairs the elements of two arrays as [`walk_leaves`] addresses them (by id when both arrays
/// are identified by the same key, else by position) and compares the pairs. False, with
/// nothing added, when the two are addressed differently, or two elements of one the same.
fn differing_elements(
    x: &[Value],
    y: &[Value],
    path: &mut String,
    a: &mut BTreeMap<String, String>,
    b: &mut BTreeMap<String, String>,
) -> bool {
    let key = id_key(x);
    if key != id_key(y) {
        return false;
    }
    let (Some(xs), Some(ys)) = (element_addresses(x, key), element_addresses(y, key)) else {
        return false;
    };
    let theirs: std::collections::HashMap<&str, &Value> =
        ys.iter().map(String::as_str).zip(y).collect();
    let len = path.len();
    for (at, v) in xs.iter().zip(x) {
        path.push_str(at);
        match theirs.get(at.as_str()) {
            Some(w) => differing_leaves(v, w, path, a, b),
            None => walk_leaves(v, path, a),
        }
        path.truncate(len);
    }
    let ours: HashSet<&str> = xs.iter().map(String::as_str).collect();
    for (at, w) in ys
        .iter()
        .zip(y)
        .filter(|(at, _)| !ours.contains(at.as_str()))
    {
        path.push_str(at);
        walk_leaves(w, path, b);
        path.truncate(len);
    }
    true
}

/// Appends the path segment of an array's element `i`: `[id=5]` by its id under `key`, else
/// `[3]` by its position.
fn push_address(path: &mut String, key: Option<&str>, i: usize, x: &Value) {
    use std::fmt::Write;
    let _ = match key.map(|k| (k, &x[k])) {
        Some((k, Value::String(id))) => write!(path, "[{k}={id}]"),
        Some((k, id)) => write!(path, "[{k}={id}]"),
        None => write!(path, "[{i}]"),
    };
}

/// Each element's path segment (see [`push_address`]); `None` when two come out the same (an
/// id `"5"` beside an id `5`).
fn element_addresses(items: &[Value], key: Option<&str>) -> Option<Vec<String>> {
    let at: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let mut at = String::new();
            push_address(&mut at, key, i, x);
            at
        })
        .collect();
    let unique: HashSet<&String> = at.iter().collect();
    (unique.len() == at.len()).then_some(at)
}

/// Structure changes, each a line: "removed `$.a.b` (string)", "`$.x`: number -> string".
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SchemaChanges {
    pub removed: Vec<String>,
    pub added: Vec<String>,
    pub retyped: Vec<String>,
    /// Keys renamed with their values kept: "`$.body.name` -> `$.body.new_name`".
    pub renamed: Vec<String>,
    /// For an OpenAPI document: the changes in API terms.
    pub api: Option<ApiChanges>,
}

/// An OpenAPI document's changes: what can break a client, and what was added.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApiChanges {
    pub breaking: Vec<String>,
    pub additions: Vec<String>,
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// OpenAPI (or Swagger) changes: removed operations, removed or renamed schema properties,
/// narrowed types (a type dropped from a list, `nullable` removed, enum values removed) as
/// breaking; new operations and properties as additions. `None` for other documents.
pub fn openapi_changes(old: &Value, new: &Value) -> Option<ApiChanges> {
    let is_api = |v: &Value| v.get("openapi").is_some() || v.get("swagger").is_some();
    if !is_api(old) || !is_api(new) {
        return None;
    }
    let mut c = ApiChanges::default();
    let ops = |v: &Value| -> BTreeSet<(String, String)> {
        v["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(p, item)| {
                item.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(m, _)| METHODS.contains(&m.as_str()))
                    .map(move |(m, _)| (p.clone(), m.clone()))
            })
            .collect()
    };
    let (oa, ob) = (ops(old), ops(new));
    for (p, m) in oa.difference(&ob) {
        c.breaking
            .push(format!("removed operation {} {p}", m.to_uppercase()));
    }
    for (p, m) in ob.difference(&oa) {
        c.additions
            .push(format!("new operation {} {p}", m.to_uppercase()));
    }
    let schemas = |v: &Value| -> BTreeMap<String, Value> {
        let s = v
            .pointer("/components/schemas")
            .or_else(|| v.get("definitions"))
            .and_then(Value::as_object);
        s.map(|m| m.iter().map(|(k, x)| (k.clone(), x.clone())).collect())
            .unwrap_or_default()
    };
    let (sa, sb) = (schemas(old), schemas(new));
    for (name, a) in &sa {
        let Some(b) = sb.get(name) else {
            c.breaking.push(format!("removed schema {name}"));
            continue;
        };
        let props = |s: &Value| -> BTreeMap<String, Value> {
            s["properties"]
                .as_object()
                .map(|m| m.iter().map(|(k, x)| (k.clone(), x.clone())).collect())
                .unwrap_or_default()
        };
        let (pa, pb) = (props(a), props(b));
        let gone: Vec<&String> = pa.keys().filter(|k| !pb.contains_key(*k)).collect();
        let new_props: Vec<&String> = pb.keys().filter(|k| !pa.contains_key(*k)).collect();
        for g in &gone {
            // A property gone and one new with the same definition: probably a rename.
            match new_props.iter().find(|n| pb[n.as_str()] == pa[g.as_str()]) {
                Some(n) => c
                    .breaking
                    .push(format!("renamed property {name}.{g} -> {name}.{n}")),
                None => c.breaking.push(format!("removed property {name}.{g}")),
            }
        }
        for n in &new_props {
            if !gone.iter().any(|g| pa[g.as_str()] == pb[n.as_str()]) {
                c.additions.push(format!("new property {name}.{n}"));
            }
        }
        for (k, x) in &pa {
            if let Some(y) = pb.get(k)
                && let Some(why) = narrowed(x, y)
            {
                c.breaking.push(format!("narrowed {name}.{k}: {why}"));
            }
        }
    }
    for name in sb.keys().filter(|k| !sa.contains_key(*k)) {
        c.additions.push(format!("new schema {name}"));
    }
    Some(c)
}

/// Why a property's type accepts less than before, if it does.
fn narrowed(a: &Value, b: &Value) -> Option<String> {
    let types = |v: &Value| -> BTreeSet<String> {
        match &v["type"] {
            Value::String(s) => [s.clone()].into(),
            Value::Array(t) => t
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => BTreeSet::new(),
        }
    };
    let (ta, tb) = (types(a), types(b));
    if !ta.is_empty() && !tb.is_empty() && !ta.is_subset(&tb) {
        let lost: Vec<&String> = ta.difference(&tb).collect();
        let show = |t: &BTreeSet<String>| t.iter().cloned().collect::<Vec<_>>().join(" | ");
        let note = if lost.iter().any(|t| *t == "null") {
            " (no longer nullable)"
        } else {
            ""
        };
        return Some(format!("{} -> {}{note}", show(&ta), show(&tb)));
    }
    if a["nullable"] == Value::Bool(true) && b["nullable"] != Value::Bool(true) {
        return Some("no longer nullable".into());
    }
    if let (Some(ea), Some(eb)) = (a["enum"].as_array(), b["enum"].as_array()) {
        let gone: Vec<String> = ea
            .iter()
            .filter(|x| !eb.contains(x))
            .map(Value::to_string)
            .collect();
        if !gone.is_empty() {
            return Some(format!("enum values removed: {}", gone.join(", ")));
        }
    }
    None
}

impl SchemaChanges {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && self.retyped.is_empty()
            && self.renamed.is_empty()
    }

    /// Removals, renames and type changes can break a client; additions do not.
    pub fn breaking(&self) -> bool {
        match &self.api {
            Some(api) => !api.breaking.is_empty(),
            None => {
                !self.removed.is_empty() || !self.retyped.is_empty() || !self.renamed.is_empty()
            }
        }
    }
}

fn types(t: &BTreeSet<&'static str>) -> String {
    t.iter().copied().collect::<Vec<_>>().join(" | ")
}

pub fn schema_changes(old: &Structure, new: &Structure) -> SchemaChanges {
    let mut c = SchemaChanges::default();
    // Only the topmost removed/added path of a subtree is named.
    let covered = |p: &str, list: &[String]| {
        list.iter()
            .any(|q| p.starts_with(q.as_str()) && p[q.len()..].starts_with(['.', '[']))
    };
    // A retyped path explains its subtree (an array of types that became a string).
    let retyped_paths: Vec<String> = old
        .iter()
        .filter(|(p, t)| new.get(*p).is_some_and(|n| n != *t))
        .map(|(p, _)| p.clone())
        .collect();
    let mut removed_paths: Vec<String> = retyped_paths.clone();
    for (p, t) in old {
        match new.get(p) {
            None if !covered(p, &removed_paths) => {
                removed_paths.push(p.clone());
                c.removed.push(format!("`{p}` ({})", types(t)));
            }
            Some(n) if n != t => {
                let (a, b) = (types(t), types(n));
                let note = match (t.contains("null"), n.contains("null")) {
                    (true, false) => " (no longer nullable)",
                    (false, true) => " (now nullable)",
                    _ => "",
                };
                c.retyped.push(format!("`{p}`: {a} -> {b}{note}"));
            }
            _ => {}
        }
    }
    let mut added_paths: Vec<String> = retyped_paths;
    for (p, t) in new {
        if !old.contains_key(p) && !covered(p, &added_paths) {
            added_paths.push(p.clone());
            c.added.push(format!("`{p}` ({})", types(t)));
        }
    }
    c
}

/// The structure changes of two documents told as a reader wants them: a key renamed with
/// its value kept is a rename, and a parent that lost or gained many keys at once is one line
/// naming a few of them, with the new shape (`$.versions` (object of {date, name})).
pub fn describe_changes(old: &Value, new: &Value) -> SchemaChanges {
    describe_changes_of((old, &structure(old)), (new, &structure(new)))
}

/// [`describe_changes`] of documents whose [`structure`] the caller has already walked.
pub fn describe_changes_of(
    (old, sa): (&Value, &Structure),
    (new, sb): (&Value, &Structure),
) -> SchemaChanges {
    let mut c = schema_changes(sa, sb);
    let removed = topmost(sa, sb);
    let added = topmost(sb, sa);
    let mut renamed = Vec::new();
    let mut gone: Vec<&String> = Vec::new();
    let mut came: Vec<&String> = added.iter().collect();
    for p in &removed {
        let was = select(old, p);
        let to = came
            .iter()
            .position(|q| parent(q) == parent(p) && !was.is_empty() && select(new, q) == was);
        match to {
            Some(i) => renamed.push(format!("`{p}` -> `{}`", came.remove(i))),
            None => gone.push(p),
        }
    }
    c.renamed = renamed;
    c.removed = grouped(&gone, sa, None);
    c.added = grouped(&came, sb, Some(new));
    c
}

/// The topmost paths of `a` that `b` does not have.
fn topmost(a: &Structure, b: &Structure) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in a.keys() {
        let covered = out
            .iter()
            .any(|q| p.starts_with(q.as_str()) && p[q.len()..].starts_with(['.', '[']));
        if !b.contains_key(p) && !covered {
            out.push(p.clone());
        }
    }
    out
}

/// `$.a.b` -> `$.a`; `$.a[*]` -> `$.a`.
fn parent(p: &str) -> &str {
    let cut = p.rfind(['.', '[']).unwrap_or(0);
    &p[..cut]
}

/// At most this many keys of one parent are listed one by one.
const GROUP: usize = 4;

/// One line per path, or one line for a parent's many: "31 keys of `$` (`$.1`, ...)".
fn grouped(paths: &[&String], s: &Structure, doc: Option<&Value>) -> Vec<String> {
    let mut by_parent: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for p in paths {
        by_parent.entry(parent(p)).or_default().push(p);
    }
    let mut out = Vec::new();
    for (parent, list) in by_parent {
        if list.len() > GROUP {
            let shown: Vec<String> = list.iter().take(3).map(|p| format!("`{p}`")).collect();
            out.push(format!(
                "{} keys of `{parent}` ({}, ...)",
                list.len(),
                shown.join(", ")
            ));
            continue;
        }
        for p in list {
            let shape = doc
                .and_then(|d| select(d, p).first().copied().and_then(shape))
                .unwrap_or_else(|| s.get(p.as_str()).map(types).unwrap_or_default());
            out.push(format!("`{p}` ({shape})"));
        }
    }
    out
}

/// A container's shape in a few words: "object of {date, name}" for a map of like objects,
/// "object with {a, b}", "array of {id, title}".
fn shape(v: &Value) -> Option<String> {
    let keys = |o: &serde_json::Map<String, Value>| {
        let mut k: Vec<&str> = o.keys().map(String::as_str).take(6).collect();
        k.sort_unstable();
        let more = if o.len() > 6 { ", ..." } else { "" };
        format!("{{{}{more}}}", k.join(", "))
    };
    let like = |items: &mut dyn Iterator<Item = &Value>| -> Option<String> {
        let mut first: Option<Vec<&String>> = None;
        for i in items {
            let Value::Object(o) = i else { return None };
            let k: Vec<&String> = o.keys().collect();
            match &first {
                None => first = Some(k),
                Some(f) if *f != k => return None,
                _ => {}
            }
        }
        first.map(|f| {
            let mut f: Vec<&str> = f.iter().map(|s| s.as_str()).collect();
            f.sort_unstable();
            format!("{{{}}}", f.join(", "))
        })
    };
    match v {
        Value::Object(o) if o.len() > 1 => Some(match like(&mut o.values()) {
            Some(k) => format!("object of {k}"),
            None => format!("object with {}", keys(o)),
        }),
        Value::Object(o) if !o.is_empty() => Some(format!("object with {}", keys(o))),
        Value::Array(a) if !a.is_empty() => like(&mut a.iter()).map(|k| format!("array of {k}")),
        _ => None,
    }
}

/// Value changes at paths both documents have: "`$.version`: 3 -> 4".
pub fn value_changes(old: &Value, new: &Value) -> Vec<String> {
    // Leaves only where the documents differ: an API document with one value changed was
    // walked whole, twice, into maps of path strings (most of the judging of a changed JSON page).
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    differing_leaves(old, new, &mut "$".to_string(), &mut a, &mut b);
    leaf_changes(&a, &b)
}

/// The changes between two documents' leaves, by path: changed, gone, then new.
fn leaf_changes(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, v) in a {
        match b.get(p) {
            Some(w) if w != v => out.push(format!("`{p}`: {v} -> {w}")),
            None => out.push(format!("`{p}`: {v} -> (gone)")),
            _ => {}
        }
    }
    for (p, w) in b {
        if !a.contains_key(p) {
            out.push(format!("`{p}`: (new) {w}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::json_path::check_path;
    use serde_json::json;

    /// Walking only where the documents differ finds what comparing all their leaves finds.
    #[test]
    fn value_changes_are_those_of_all_leaves() {
        fn leaves(v: &Value) -> BTreeMap<String, String> {
            let mut out = BTreeMap::new();
            walk_leaves(v, &mut "$".to_string(), &mut out);
            out
        }
        fn all_leaves(old: &Value, new: &Value) -> Vec<String> {
            leaf_changes(&leaves(old), &leaves(new))
        }
        let base = json!({
            "version": 3, "name": "api", "empty": {}, "none": [], "flag": true,
            "items": [{"id": 1, "price": 10, "tags": ["a", "b"]}, {"id": 2, "price": 5}],
            "plain": [1, 2, [3, {"x": null}]],
            "nested": {"a": {"b": {"c": "d", "e": [1]}}, "f": 1.5},
            "many": (0..50).map(|i| json!({"sku": format!("s-{i}"), "size": "M"})).collect::<Vec<_>>(),
            // Ids that read the same in a path: the leaves of one overwrite the other's.
            "clash": [{"id": 5, "v": 1}, {"id": "5", "v": 1}],
        });
        type Edit = Box<dyn Fn(&mut Value)>;
        let edits: Vec<Edit> = vec![
            Box::new(|v| v["version"] = json!(4)),
            Box::new(|v| v["items"][1]["price"] = json!("5")),
            Box::new(|v| v["items"][0]["tags"][1] = json!("c")),
            Box::new(|v| v["nested"]["a"]["b"]["e"] = json!([])),
            Box::new(|v| v["nested"]["a"] = json!({})),
            Box::new(|v| v["empty"] = json!({"now": 1})),
            Box::new(|v| v["none"] = json!([{"id": "x"}])),
            Box::new(|v| v["plain"][2][1]["x"] = json!(0)),
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("flag");
            }),
            Box::new(|v| v["added"] = json!({"deep": {"er": [1, 2]}})),
            Box::new(|v| v["nested"] = json!([1, 2])),
            Box::new(|v| *v = json!("scalar")),
            Box::new(|v| v["items"].as_array_mut().unwrap().push(json!({"id": 3}))),
            Box::new(|v| {
                v["items"].as_array_mut().unwrap().remove(0);
            }),
            Box::new(|v| v["items"][0]["id"] = json!(7)),
            Box::new(|v| v["items"][1]["id"] = json!("1")),
            Box::new(|v| v["items"][1]["id"] = json!(1)),
            Box::new(|v| v["items"][1] = json!(3)),
            Box::new(|v| v["many"][40]["size"] = json!("L")),
            Box::new(|v| v["many"][3]["sku"] = json!("s-4")),
            Box::new(|v| v["plain"][0] = json!(9)),
            Box::new(|v| v["plain"].as_array_mut().unwrap().push(json!(4))),
            Box::new(|v| v["plain"] = json!([[3, {"x": null}]])),
            Box::new(|v| v["clash"][0]["v"] = json!(2)),
            Box::new(|v| v["clash"][1]["id"] = json!(6)),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut new = base.clone();
            edit(&mut new);
            assert_eq!(
                value_changes(&base, &new),
                all_leaves(&base, &new),
                "edit {i}"
            );
            assert_eq!(
                value_changes(&new, &base),
                all_leaves(&new, &base),
                "edit {i} reversed"
            );
        }
        assert!(value_changes(&base, &base).is_empty());
    }

    #[test]
    fn reordering_identified_objects_is_not_a_change() {
        let mut a = json!({"items": [{"id": 1, "p": 2}, {"id": 2, "p": 3}]});
        let mut b = json!({"items": [{"id": 2, "p": 3}, {"id": 1, "p": 2}]});
        canonicalize(&mut a);
        canonicalize(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn identified_arrays_sort_as_they_always_have() {
        // The order before ids were written once per element: a stored canonical document must
        // not read as changed after an upgrade.
        fn reference(v: &mut Value) {
            match v {
                Value::Array(items) => {
                    items.iter_mut().for_each(reference);
                    let key = ID_KEYS.iter().copied().find(|k| {
                        let ids: Vec<String> = items
                            .iter()
                            .filter_map(|i| {
                                i.get(*k)
                                    .filter(|v| v.is_string() || v.is_number())
                                    .map(Value::to_string)
                            })
                            .collect();
                        !items.is_empty()
                            && items.iter().all(Value::is_object)
                            && ids.len() == items.len()
                            && ids.iter().collect::<BTreeSet<_>>().len() == ids.len()
                    });
                    if let Some(k) = key {
                        items.sort_by_key(|i| i[k].to_string());
                    }
                }
                Value::Object(m) => m.values_mut().for_each(reference),
                _ => {}
            }
        }
        let doc = json!({
            "a": [{"id": "b\"q"}, {"id": "b"}, {"id": "a\u{1}"}, {"id": "B"}, {"id": "\u{e9}"}],
            "n": [{"id": 10}, {"id": 9}, {"id": -1}, {"id": 1.5}, {"id": "10"}],
            "dup": [{"id": 1, "name": "z"}, {"id": 1, "name": "a"}],
            "mixed": [{"id": 1}, {"x": 2}],
            "nested": [{"slug": "y", "in": [{"key": "2"}, {"key": "1"}]}, {"slug": "x", "in": []}],
            "empty": [],
        });
        let (mut ours, mut theirs) = (doc.clone(), doc);
        canonicalize(&mut ours);
        reference(&mut theirs);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(
            ours["dup"][0]["name"], "a",
            "sorted by name when ids repeat"
        );
    }

    #[test]
    fn structure_and_values_apart() {
        let a =
            json!({"version": 3, "items": [{"id": 1, "price": 10, "tag": null}], "meta": {"x": 1}});
        let b = json!({"version": 4, "items": [{"id": 1, "price": "10", "tag": "a"}]});
        let s = schema_changes(&structure(&a), &structure(&b));
        assert_eq!(
            s.removed,
            vec!["`$.meta` (object)"],
            "one line for the subtree"
        );
        // ["integer", "null"] -> "integer": one retyped line, not its elements too.
        let n = schema_changes(
            &structure(&json!({"type": ["integer", "null"]})),
            &structure(&json!({"type": "integer"})),
        );
        assert_eq!((n.removed.len(), n.retyped.len()), (0, 1), "{n:?}");
        assert_eq!(
            s.retyped,
            vec![
                "`$.items[*].price`: number -> string",
                "`$.items[*].tag`: null -> string (no longer nullable)"
            ]
        );
        assert!(s.breaking());
        let v = value_changes(&a, &b);
        assert!(v.contains(&"`$.version`: 3 -> 4".to_string()), "{v:?}");
        assert!(
            v.contains(&"`$.items[id=1].price`: 10 -> \"10\"".to_string()),
            "{v:?}"
        );
    }

    #[test]
    fn reshapes_and_renames_in_a_few_lines() {
        let mut old = serde_json::Map::new();
        for i in 0..31 {
            old.insert(
                i.to_string(),
                json!({"name": format!("v{i}"), "date": "2026-01-01"}),
            );
        }
        let old = Value::Object(old);
        let new = json!({"versions": {"a": {"name": "v1", "date": "d"}, "b": {"name": "v2", "date": "d"}}});
        let c = describe_changes(&old, &new);
        assert_eq!(
            c.removed,
            vec!["31 keys of `$` (`$.0`, `$.1`, `$.10`, ...)"]
        );
        assert_eq!(c.added, vec!["`$.versions` (object of {date, name})"]);
        // A key renamed with its value kept is a rename, not a removal and an addition.
        let c = describe_changes(
            &json!({"body": {"name": "Ada", "age": 3}}),
            &json!({"body": {"new_name": "Ada", "age": 3}}),
        );
        assert_eq!(c.renamed, vec!["`$.body.name` -> `$.body.new_name`"]);
        assert!(c.removed.is_empty() && c.added.is_empty(), "{c:?}");
        assert!(c.breaking());
    }

    #[test]
    fn openapi_in_api_terms() {
        let a = json!({"openapi": "3.1.0", "paths": {"/users/{id}": {"get": {}, "delete": {}}},
            "components": {"schemas": {"User": {"properties": {
                "name": {"type": "string"}, "nick": {"type": ["string", "null"]},
                "role": {"type": "string", "enum": ["admin", "user"]}}}}}});
        let b = json!({"openapi": "3.1.0", "paths": {"/users/{id}": {"get": {}}, "/users": {"post": {}}},
            "components": {"schemas": {"User": {"properties": {
                "full_name": {"type": "string"}, "nick": {"type": "string"},
                "role": {"type": "string", "enum": ["user"]}, "email": {"type": "string", "format": "email"}}}}}});
        let c = openapi_changes(&a, &b).unwrap();
        assert_eq!(
            c.breaking,
            vec![
                "removed operation DELETE /users/{id}",
                "renamed property User.name -> User.full_name",
                "narrowed User.nick: null | string -> string (no longer nullable)",
                "narrowed User.role: enum values removed: \"admin\"",
            ]
        );
        assert_eq!(
            c.additions,
            vec!["new operation POST /users", "new property User.email"]
        );
        assert!(openapi_changes(&json!({"a": 1}), &json!({"a": 2})).is_none());
    }

    #[test]
    fn select_paths() {
        let v = json!({"data": [{"id": 1}, {"id": 2}], "x": {"id": 3}});
        assert_eq!(select(&v, "$.data[*].id"), vec![&json!(1), &json!(2)]);
        assert_eq!(select(&v, "$..id").len(), 3);
        assert!(select(&v, "$.pagination.next").is_empty());
    }

    #[test]
    fn ignore_paths() {
        let mut v = json!({"meta": {"generated_at": "t", "n": 1}, "items": [{"request_id": "r", "updated": 1, "a": {"request_id": "q"}}]});
        remove_paths(
            &mut v,
            &[
                "$.meta.generated_at".into(),
                "$..request_id".into(),
                "$.items[*].updated".into(),
            ],
        );
        assert_eq!(v, json!({"meta": {"n": 1}, "items": [{"a": {}}]}));
        assert!(check_path("meta.x").is_err());
        assert!(check_path("$..request_id").is_ok());
    }
}
