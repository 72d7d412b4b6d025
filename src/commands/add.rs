//! `forewarn add URL`: append a watch to a watchlist, keeping its comments and layout.

use std::path::{Path, PathBuf};

use anyhow::Context;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use crate::Exit;
use crate::UsageError;
use crate::cli::AddArgs;
use crate::config::{self, Kind, types::validate_url_template};
use crate::extract::ExtractSpec;
use crate::report::shell_word;

pub fn run(watchlists: &[PathBuf], args: AddArgs) -> anyhow::Result<Exit> {
    let target = target_file(watchlists)?;
    let url = validate_url_template(&args.url).map_err(UsageError)?;
    let kind: Kind = match &args.kind {
        Some(k) => serde_json::from_value(serde_json::Value::String(k.clone())).map_err(|_| {
            UsageError(format!(
                "unknown kind `{k}`: use auto, html, text, json, yaml or feed"
            ))
        })?,
        None => Kind::Auto,
    };
    if kind == Kind::Version {
        return Err(UsageError(
            "a version watch needs `source` (github, crates, npm, pypi, regex or json) and its `package` or `repo`: write it in the watchlist by hand (the README's \"New versions\" section has examples)".into(),
        )
        .into());
    }
    // Validates selectors and regexes exactly as loading the watchlist would.
    ExtractSpec::new(
        kind,
        args.select.clone(),
        args.remove.clone(),
        args.ignore.clone(),
    )
    .map_err(UsageError)?;
    let existing = existing_watches(watchlists, &target)?;
    let name = match &args.name {
        Some(n) => chosen_name(n, &existing)?,
        None => unique_name(&slug(&url), |n| existing.find(n).is_some()),
    };
    let src = if target.exists() {
        std::fs::read_to_string(&target)
            .with_context(|| format!("cannot read {}", target.display()))?
    } else {
        String::new()
    };
    let new_src = with_watch(&target, &src, watch_table(&name, kind, &args))?;
    // What we write must load: check it before touching the file.
    let mut parsed = config::Config::default();
    let mut errors = Vec::new();
    config::parse_file(&target, &new_src, &mut parsed, &mut errors);
    if let Some(e) = errors.into_iter().next() {
        return Err(UsageError(format!("the new watch would not load: {e}")).into());
    }
    write_atomically(&target, &new_src)?;
    println!(
        "added watch `{name}` to {}\ntry it: forewarn test {}",
        target.display(),
        shell_word(&name)
    );
    Ok(Exit::Ok)
}

/// The watches already declared where the checks will read them (the watchlist folder, when
/// the target is in it or none was named), and in the target file: names are unique across
/// all of them. `forewarn.toml` beside them is read as the other commands read it.
fn existing_watches(watchlists: &[PathBuf], target: &Path) -> anyhow::Result<config::Config> {
    let dir = config::default_watchlist_dir();
    let in_dir = |t: &Path| match (t.parent().map(Path::canonicalize), dir.canonicalize()) {
        (Some(Ok(p)), Ok(d)) => p == d,
        _ => false,
    };
    let mut sources: Vec<PathBuf> = Vec::new();
    if dir.is_dir() && (watchlists.is_empty() || in_dir(target)) {
        sources.push(dir.clone());
    }
    if target.exists() && sources.is_empty() {
        sources.push(target.to_path_buf());
    }
    if sources.is_empty() {
        return Ok(config::Config::default());
    }
    config::load(&sources).map_err(|e| {
        eprintln!("forewarn add: the watchlists have problems; fix them before adding a watch:");
        anyhow::Error::new(e)
    })
}

/// `--name`, when it is not empty and not taken.
fn chosen_name(name: &str, existing: &config::Config) -> anyhow::Result<String> {
    let n = name.trim().to_string();
    if n.is_empty() {
        return Err(UsageError("the watch name must not be empty".into()).into());
    }
    if let Some(w) = existing.find(&n) {
        return Err(UsageError(format!(
            "a watch named `{n}` already exists ({}:{}): pick another --name",
            w.origin().file.display(),
            w.origin().line
        ))
        .into());
    }
    Ok(n)
}

/// The new `[[watch]]` table: only the keys given.
fn watch_table(name: &str, kind: Kind, args: &AddArgs) -> Table {
    let mut table = Table::new();
    table.insert("name", value(name));
    table.insert("url", value(&args.url));
    if kind != Kind::Auto {
        table.insert("kind", value(args.kind.as_deref().unwrap_or("auto")));
    }
    for (key, list) in [
        ("select", &args.select),
        ("remove", &args.remove),
        ("ignore", &args.ignore),
    ] {
        match list.as_slice() {
            [] => {}
            [one] => {
                table.insert(key, value(one));
            }
            many => {
                let array = Array::from_iter(many.iter().map(String::as_str));
                table.insert(key, value(array));
            }
        }
    }
    table
}

/// The watchlist's text with `table` appended as its last `[[watch]]`, comments and layout
/// kept.
fn with_watch(target: &Path, src: &str, mut table: Table) -> anyhow::Result<String> {
    let mut doc: DocumentMut = src
        .parse()
        .map_err(|e| UsageError(format!("{}: not valid TOML: {e}", target.display())))?;
    if !src.trim().is_empty() {
        table.decor_mut().set_prefix("\n");
    }
    match doc.get_mut("watch") {
        None => {
            let mut aot = ArrayOfTables::new();
            aot.push(table);
            doc.insert("watch", Item::ArrayOfTables(aot));
        }
        Some(Item::ArrayOfTables(aot)) => aot.push(table),
        Some(_) => {
            return Err(UsageError(format!(
                "{}: `watch` is not written as [[watch]] tables; add the watch by hand",
                target.display()
            ))
            .into());
        }
    }
    Ok(doc.to_string())
}

/// The file `add` writes: a single `--watchlist FILE`, or `default.toml` in the folder.
fn target_file(watchlists: &[PathBuf]) -> anyhow::Result<PathBuf> {
    match watchlists {
        [] => Ok(config::default_watchlist_dir().join("default.toml")),
        [one] if one.is_dir() => Ok(one.join("default.toml")),
        [one] => Ok(one.clone()),
        _ => Err(UsageError("`add` writes one file: pass a single --watchlist FILE".into()).into()),
    }
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// "https://app.vendor.example/inbox" -> "app-vendor-example-inbox".
fn slug(url: &url::Url) -> String {
    let raw = format!(
        "{}{}",
        url.host_str().unwrap_or("watch").trim_start_matches("www."),
        url.path()
    );
    let mut s = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "watch".into() } else { s }
}

fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        let u = url::Url::parse("https://www.App.Vendor.example/inbox/").unwrap();
        assert_eq!(slug(&u), "app-vendor-example-inbox");
        assert_eq!(unique_name("a", |n| n == "a" || n == "a-2"), "a-3");
    }
}
