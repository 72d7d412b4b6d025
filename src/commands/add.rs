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

use super::edit::write_atomically;

pub fn run(watchlists: &[PathBuf], args: AddArgs) -> anyhow::Result<Exit> {
    let target = target_file(watchlists)?;
    let kind = kind_of(&args)?;
    let url = match &args.url {
        Some(u) => Some(validate_url_template(u).map_err(UsageError)?),
        None if kind == Kind::Version && args.source.as_deref().is_some_and(is_registry) => None,
        None => {
            return Err(UsageError(
                "`add` needs the URL to watch (a version watch of github, crates, npm or pypi needs `--source` and `--package` or `--repo` instead)".into(),
            )
            .into());
        }
    };
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
        None => unique_name(&default_name(url.as_ref(), &args), |n| {
            declared(&existing, n).is_some()
        }),
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
    check_channels(&args.notify, &existing, &parsed)?;
    if let Some(url) = &url {
        warn_if_watched(url, &existing);
    }
    write_atomically(&target, &new_src)?;
    println!(
        "added watch `{name}` to {}\ntry it: forewarn test {}",
        target.display(),
        shell_word(&name)
    );
    Ok(Exit::Ok)
}

/// `--kind`, or `version` when `--source` is given.
fn kind_of(args: &AddArgs) -> anyhow::Result<Kind> {
    let kind: Kind = match &args.kind {
        Some(k) => serde_json::from_value(serde_json::Value::String(k.clone())).map_err(|_| {
            UsageError(format!(
                "unknown kind `{k}`: use auto, html, text, json, yaml, feed or version"
            ))
        })?,
        None if args.source.is_some() => Kind::Version,
        None => Kind::Auto,
    };
    if kind == Kind::Version && args.source.is_none() {
        return Err(UsageError(
            "a version watch needs `--source` (github, crates, npm, pypi, regex or json) and `--package NAME` or `--repo OWNER/NAME` (the README's \"New versions\" section has examples)".into(),
        )
        .into());
    }
    if kind != Kind::Version && (args.package.is_some() || args.repo.is_some()) {
        return Err(UsageError(
            "`--package` and `--repo` belong to a version watch: add `--source`".into(),
        )
        .into());
    }
    Ok(kind)
}

/// Sources that are registries: the watch needs a package or repository, not a URL.
fn is_registry(source: &str) -> bool {
    matches!(source, "github" | "crates" | "npm" | "pypi")
}

/// A name from the URL, or from the package or repository a version watch follows.
fn default_name(url: Option<&url::Url>, args: &AddArgs) -> String {
    match (url, args.package.as_deref().or(args.repo.as_deref())) {
        (_, Some(p)) if url.is_none() => {
            let s: String = p
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let s = s.trim_matches('-').to_string();
            if s.is_empty() { "watch".into() } else { s }
        }
        (Some(u), _) => slug(u),
        (None, _) => "watch".into(),
    }
}

/// Every `--notify` names a channel declared where the checks will read it.
fn check_channels(
    notify: &[String],
    existing: &config::Config,
    parsed: &config::Config,
) -> anyhow::Result<()> {
    for c in notify {
        if existing.channels.contains_key(c) || parsed.channels.contains_key(c) {
            continue;
        }
        let names = existing.channels.keys().chain(parsed.channels.keys());
        let hint = match crate::config::closest(c, names.map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "declare it first, in a watchlist or in forewarn.toml beside the watchlists: [channels.{c}] type = \"desktop\""
            ),
        };
        return Err(UsageError(format!("no channel named `{c}`: {hint}")).into());
    }
    Ok(())
}

/// Says so when another watch already watches the same URL (the add goes on: two watches
/// of one page may select different parts).
fn warn_if_watched(url: &url::Url, existing: &config::Config) {
    let same = existing
        .watches
        .iter()
        .chain(&existing.disabled)
        .find(|w| url::Url::parse(w.url()).is_ok_and(|u| u == *url));
    if let Some(w) = same {
        let at = w.origin();
        eprintln!(
            "warning: `{}` ({}:{}) already watches {url}; adding another watch of it",
            w.name(),
            at.file.display(),
            at.line
        );
    }
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

/// The watch called `name`, enabled or not: a disabled watch keeps its name.
fn declared<'a>(config: &'a config::Config, name: &str) -> Option<&'a config::Watch> {
    config
        .find(name)
        .or_else(|| config.disabled.iter().find(|w| w.name() == name))
}

/// `--name`, when it is not empty and not taken.
fn chosen_name(name: &str, existing: &config::Config) -> anyhow::Result<String> {
    let n = name.trim().to_string();
    if n.is_empty() {
        return Err(UsageError("the watch name must not be empty".into()).into());
    }
    if let Some(w) = declared(existing, &n) {
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
    if let Some(url) = &args.url {
        table.insert("url", value(url));
    }
    if kind != Kind::Auto {
        table.insert("kind", value(kind_name(kind)));
    }
    for (key, v) in [
        ("source", &args.source),
        ("package", &args.package),
        ("repo", &args.repo),
        ("every", &args.every),
        ("schedule", &args.schedule),
    ] {
        if let Some(v) = v {
            table.insert(key, value(v));
        }
    }
    if !args.notify.is_empty() {
        let array = Array::from_iter(args.notify.iter().map(String::as_str));
        table.insert("notify", value(array));
    }
    if !args.expect_selector.is_empty() {
        let mut expect = Table::new();
        expect.set_dotted(true);
        let array = Array::from_iter(args.expect_selector.iter().map(String::as_str));
        expect.insert("selectors", value(array));
        table.insert("expect", Item::Table(expect));
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

/// How a kind is written in a watchlist.
fn kind_name(kind: Kind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "auto".into())
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
