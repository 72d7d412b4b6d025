//! `forewarn import urlwatch|changedetection|nvchecker FILE [-o FILE]`: a watchlist from
//! another tool's list, with what could not be brought over listed by line, and why.

mod changedetection;
mod nvchecker;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use yaml_serde::Value;

use crate::Exit;
use crate::cli::{ImportArgs, ImportSource};

pub fn run(args: ImportArgs) -> anyhow::Result<Exit> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let text = || {
        String::from_utf8(bytes.clone())
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", args.file.display()))
    };
    let refused = |why: String| crate::UsageError(format!("{}: {why}", args.file.display()));
    let imported = match args.source {
        ImportSource::Urlwatch => urlwatch(&text()?, &args.file),
        ImportSource::Changedetection => changedetection::import(&bytes).map_err(refused)?,
        ImportSource::Nvchecker => nvchecker::import(&text()?).map_err(refused)?,
    };
    let out = imported.to_toml();
    match &args.output {
        Some(f) => {
            if f.exists() {
                return Err(crate::UsageError(format!(
                    "{} exists already: import into a new file (a watchlist is not written over)",
                    f.display()
                ))
                .into());
            }
            if let Some(dir) = f.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(f, &out).with_context(|| format!("cannot write {}", f.display()))?;
            eprintln!(
                "wrote {} watch(es) to {}",
                imported.watches.len(),
                f.display()
            );
        }
        None => print!("{out}"),
    }
    for (line, why) in &imported.skipped {
        eprintln!("{}:{line}: not imported: {why}", args.file.display());
    }
    Ok(Exit::Ok)
}

/// A watchlist being written: its watches as TOML tables, and what was left out.
#[derive(Default)]
struct Imported {
    watches: Vec<String>,
    /// (line in the source, why) for each job or setting that was not brought over.
    skipped: Vec<(usize, String)>,
    names: HashSet<String>,
}

impl Imported {
    fn to_toml(&self) -> String {
        let mut out = String::from(
            "# Imported by `forewarn import`. Check it with `forewarn test NAME` before relying on it.\n",
        );
        if !self.skipped.is_empty() {
            out.push_str("# Not imported:\n");
            for (line, why) in &self.skipped {
                let _ = writeln!(out, "#   line {line}: {why}");
            }
        }
        for w in &self.watches {
            out.push('\n');
            out.push_str(w);
        }
        out
    }

    /// A name no other imported watch has.
    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// urlwatch's jobs file: YAML documents separated by `---`, one job each.
fn urlwatch(text: &str, file: &Path) -> Imported {
    let mut out = Imported::default();
    for (line, doc) in documents(text) {
        match yaml_serde::from_str::<Value>(&doc) {
            Ok(Value::Mapping(job)) => urlwatch_job(&job, line, &mut out),
            Ok(Value::Null) => {}
            Ok(_) => out.skipped.push((
                line,
                "a job is a mapping of keys (url, name, filter, ...)".into(),
            )),
            Err(e) => out
                .skipped
                .push((line, format!("not valid YAML ({e}) in {}", file.display()))),
        }
    }
    out
}

/// The YAML documents of a file, each with the line it starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let (mut start, mut cur) = (1, String::new());
    for (i, l) in text.lines().enumerate() {
        if l.trim_end() == "---" {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 2;
            continue;
        }
        cur.push_str(l);
        cur.push('\n');
    }
    docs.push((start, cur));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// The keys forewarn reads; others are listed as not imported.
const KNOWN: &[&str] = &[
    "url",
    "name",
    "filter",
    "headers",
    "use_browser",
    "navigate",
    "kind",
    "max_tries",
    "wait_for",
    "wait_for_selector",
    "timeout",
    "ssl_no_verify",
];

fn urlwatch_job(job: &yaml_serde::Mapping, line: usize, out: &mut Imported) {
    let get = |k: &str| job.get(Value::String(k.into()));
    if get("command").is_some() {
        out.skipped.push((
            line,
            "a `command` job runs a program; forewarn watches URLs (a `command` channel can run one on a change)".into(),
        ));
        return;
    }
    let url = get("url")
        .or_else(|| get("navigate"))
        .and_then(Value::as_str);
    let Some(url) = url else {
        out.skipped.push((line, "a job without `url`".into()));
        return;
    };
    let base = get("name")
        .and_then(Value::as_str)
        .map(slug)
        .unwrap_or_else(|| slug(url));
    let name = out.unique(&base);
    let mut w = format!("[[watch]]\nname = {}\nurl = {}\n", q(&name), q(url));
    if get("use_browser").and_then(Value::as_bool) == Some(true) || get("navigate").is_some() {
        w.push_str("browser = true\n");
    }
    if let Some(sel) = get("wait_for_selector")
        .or_else(|| get("wait_for"))
        .and_then(Value::as_str)
    {
        let _ = writeln!(w, "wait_for = {}", q(sel));
    }
    if let Some(n) = get("max_tries").and_then(Value::as_u64) {
        let _ = writeln!(w, "retries = {}", n.saturating_sub(1).min(10));
    }
    if get("ssl_no_verify").and_then(Value::as_bool) == Some(true) {
        w.push_str("insecure = true\n");
    }
    if let Some(t) = get("timeout").and_then(Value::as_u64) {
        let _ = writeln!(w, "timeout = {}", q(&format!("{t}s")));
    }
    if let Some(Value::Mapping(h)) = get("headers") {
        for (k, v) in h {
            if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                let _ = writeln!(w, "headers.{} = {}", q(k), q(v));
            }
        }
    }
    if let Some(f) = get("filter") {
        filters(f, line, &mut w, out);
    }
    for (k, _) in job {
        if let Some(k) = k.as_str()
            && !KNOWN.contains(&k)
        {
            out.skipped.push((
                line,
                format!("`{k}` of job `{name}`: forewarn has no such setting"),
            ));
        }
    }
    out.watches.push(w);
}

/// urlwatch filters, as a string (`css:#x,html2text`) or a list of strings and
/// `{filter: argument}` mappings.
fn filters(f: &Value, line: usize, w: &mut String, out: &mut Imported) {
    let list: Vec<(String, Option<String>)> = match f {
        Value::String(s) => s
            .split(',')
            .map(|p| match p.split_once(':') {
                Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                None => (p.trim().to_string(), None),
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some((s.clone(), None)),
                Value::Mapping(m) => m.iter().next().map(|(k, v)| {
                    let arg = match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Mapping(args) => args
                            .get(Value::String("selector".into()))
                            .or_else(|| args.get(Value::String("path".into())))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        _ => None,
                    };
                    (k.as_str().unwrap_or_default().to_string(), arg)
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let (mut select, mut ignore, mut kind) = (Vec::new(), Vec::new(), None);
    for (name, arg) in list {
        match (name.as_str(), arg) {
            // forewarn renders pages to text and normalises whitespace itself.
            ("html2text" | "strip" | "beautify" | "pretty-xml" | "format-json", _) => {}
            ("css", Some(sel)) => select.push(sel),
            ("element-by-id", Some(id)) => select.push(format!("#{id}")),
            ("element-by-class", Some(c)) => select.push(format!(".{c}")),
            ("re.sub", Some(re)) => ignore.push(re),
            ("jq", Some(path)) => match jq_pointer(&path) {
                Some(p) => {
                    kind = Some("json");
                    select.push(p);
                }
                None => out.skipped.push((
                    line,
                    format!("the jq filter `{path}`: forewarn selects JSON with JSON Pointers; only a plain path like `.a.b[0]` maps to one"),
                )),
            },
            ("xpath", Some(x)) => out.skipped.push((
                line,
                format!("the xpath filter `{x}`: forewarn selects with CSS; write it as a CSS selector in `select`"),
            )),
            (other, _) => out.skipped.push((
                line,
                format!("the `{other}` filter: forewarn has no such filter"),
            )),
        }
    }
    if let Some(k) = kind {
        let _ = writeln!(w, "kind = {}", q(k));
    }
    let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
    if !select.is_empty() {
        let _ = writeln!(w, "select = [{}]", list(&select));
    }
    if !ignore.is_empty() {
        let _ = writeln!(w, "ignore = [{}]", list(&ignore));
    }
}

/// A jq path of plain fields and indices (`.data.items[0]`) as a JSON Pointer.
fn jq_pointer(path: &str) -> Option<String> {
    let path = path.trim();
    if path == "." {
        return Some(String::new());
    }
    let mut out = String::new();
    for part in path.strip_prefix('.')?.split('.') {
        let (field, rest) = part.split_once('[').unwrap_or((part, ""));
        if !field.is_empty() {
            if !field
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                return None;
            }
            out.push('/');
            out.push_str(field);
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            let n = idx.strip_suffix(']')?;
            n.parse::<usize>().ok()?;
            out.push('/');
            out.push_str(n);
        }
    }
    Some(out)
}

/// A watch name from a job's name or URL: lowercase words joined by `-`.
fn slug(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_start_matches("www.");
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(48).collect();
    if out.is_empty() {
        "imported".into()
    } else {
        out.trim_end_matches('-').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jq_paths_that_are_plain_become_pointers() {
        assert_eq!(
            jq_pointer(".data.items[0].name").as_deref(),
            Some("/data/items/0/name")
        );
        assert_eq!(jq_pointer(".").as_deref(), Some(""));
        assert_eq!(jq_pointer(".items[] | .id"), None);
        assert_eq!(jq_pointer("map(.x)"), None);
    }

    #[test]
    fn names_are_slugs() {
        assert_eq!(
            slug("https://www.Example.com/api/v1/"),
            "example-com-api-v1"
        );
        assert_eq!(slug("Vendor Inbox (prod)"), "vendor-inbox-prod");
    }
}
