//! nvchecker's configuration (TOML): a table per package, its `source` and the source's own
//! key (`github = "owner/repo"`, `pypi = "name"`, ...), as `kind = "version"` watches.

use std::fmt::Write as _;

use super::{Imported, q, slug};

/// nvchecker's sources and forewarn's name for each; the key that names the package is the
/// source's own name (`cratesio = "serde"`), else the table's name.
const SOURCES: &[(&str, &str)] = &[
    ("github", "github"),
    ("cratesio", "crates"),
    ("npm", "npm"),
    ("pypi", "pypi"),
    ("regex", "regex"),
];

/// Keys of a package forewarn reads; the others are listed as not imported.
const KNOWN: &[&str] = &[
    "source",
    "github",
    "cratesio",
    "npm",
    "pypi",
    "url",
    "regex",
    "prefix",
    "include_regex",
    "exclude_regex",
    "use_max_tag",
    "use_latest_release",
    "use_pre_release",
];

pub(super) fn import(text: &str) -> Result<Imported, String> {
    let doc: toml_edit::Document<String> =
        toml_edit::Document::parse(text.to_string()).map_err(|e| format!("not valid TOML: {e}"))?;
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map_or(0, |s| {
            text[..s.start.min(text.len())].lines().count().max(1)
        })
    };
    let mut out = Imported::default();
    for (key, item) in doc.as_table().iter() {
        let line = line_of(doc.as_table().key(key).and_then(|k| k.span()));
        if key == "__config__" {
            out.skipped.push((
                line,
                "`[__config__]`: forewarn keeps the versions it has seen in its database (no oldver/newver files)".into(),
            ));
            continue;
        }
        match item.as_table_like() {
            Some(t) => package(key, t, line, &mut out),
            None => out
                .skipped
                .push((line, format!("`{key}` is not a package table"))),
        }
    }
    Ok(out)
}

fn package(key: &str, t: &dyn toml_edit::TableLike, line: usize, out: &mut Imported) {
    let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let b = |k: &str| t.get(k).and_then(|v| v.as_bool()) == Some(true);
    let Some(source) = s("source") else {
        out.skipped
            .push((line, format!("package `{key}` has no `source`")));
        return;
    };
    let Some(&(_, ours)) = SOURCES.iter().find(|(theirs, _)| *theirs == source) else {
        out.skipped.push((
            line,
            format!("package `{key}`: the `{source}` source has no forewarn equivalent (github, cratesio, npm, pypi and regex do)"),
        ));
        return;
    };
    let name = out.unique(&slug(key));
    let mut w = format!(
        "[[watch]]\nname = {}\nkind = \"version\"\nsource = {}\n",
        q(&name),
        q(ours)
    );
    match ours {
        "github" => {
            let repo = s("github").unwrap_or_else(|| key.to_string());
            let _ = writeln!(w, "repo = {}", q(&repo));
            if b("use_max_tag") {
                w.push_str("tags = true\n");
            }
        }
        "regex" => {
            let (Some(url), Some(re)) = (s("url"), s("regex")) else {
                out.skipped.push((
                    line,
                    format!("package `{key}`: a regex source needs `url` and `regex`"),
                ));
                out.names.remove(&name);
                return;
            };
            let _ = writeln!(w, "url = {}\npattern = {}", q(&url), q(&re));
        }
        other => {
            let theirs = SOURCES
                .iter()
                .find(|(_, o)| *o == other)
                .map_or(other, |s| s.0);
            let package = s(theirs).unwrap_or_else(|| key.to_string());
            let _ = writeln!(w, "package = {}", q(&package));
        }
    }
    if b("use_pre_release") {
        w.push_str("prerelease = true\n");
    }
    for (theirs, ours) in [
        ("include_regex", "include"),
        ("exclude_regex", "exclude"),
        ("prefix", "prefix"),
    ] {
        if let Some(v) = s(theirs) {
            let _ = writeln!(w, "{ours} = {}", q(&v));
        }
    }
    for (k, _) in t.iter() {
        if !KNOWN.contains(&k) {
            out.skipped.push((
                line,
                format!("`{k}` of package `{key}`: forewarn has no such setting"),
            ));
        }
    }
    out.watches.push(w);
}
