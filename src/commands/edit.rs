//! `forewarn remove NAME`, `disable NAME`, `enable NAME`: edit the watchlist file that
//! declares the watch, keeping its comments and layout.

use std::path::Path;

use anyhow::Context;
use toml_edit::{DocumentMut, Item, Table, value};

use crate::Exit;
use crate::UsageError;
use crate::cli::NameArgs;
use crate::config::{self, Config, Watch};

/// What to do to the watch's table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Remove,
    Disable,
    Enable,
}

pub fn run(watchlists: &[std::path::PathBuf], args: NameArgs, edit: Edit) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    let (w, enabled) = declared(&config, &args.name)?;
    let file = w.origin().file.to_path_buf();
    let said = match (edit, enabled) {
        (Edit::Disable, false) => Some("is already disabled"),
        (Edit::Enable, true) => Some("is already enabled"),
        _ => None,
    };
    if let Some(said) = said {
        println!("`{}` {said} ({})", args.name, file.display());
        return Ok(Exit::Ok);
    }
    let src = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let new_src = edited(&file, &src, &args.name, edit)?;
    if edit == Edit::Remove && only_comments(&new_src) {
        // An empty watchlist is a load error: the file goes with its last watch.
        std::fs::remove_file(&file).with_context(|| format!("cannot delete {}", file.display()))?;
        println!(
            "removed watch `{}`, the last in {}, and so the file; its stored history stays in the database (`forewarn report {}`)",
            args.name,
            file.display(),
            crate::report::shell_word(&args.name)
        );
        return Ok(Exit::Ok);
    }
    // What we write must load: check it before touching the file.
    let mut parsed = Config::default();
    let mut errors = Vec::new();
    config::parse_file(&file, &new_src, &mut parsed, &mut errors);
    if let Some(e) = errors.into_iter().next() {
        return Err(UsageError(format!("the edited watchlist would not load: {e}")).into());
    }
    write_atomically(&file, &new_src)?;
    let name = crate::report::shell_word(&args.name);
    match edit {
        Edit::Remove => println!(
            "removed watch `{}` from {}; its stored history stays in the database (`forewarn report {name}`)",
            args.name,
            file.display()
        ),
        Edit::Disable => println!(
            "disabled watch `{}` in {} (`enabled = false`): it is not checked until `forewarn enable {name}`",
            args.name,
            file.display()
        ),
        Edit::Enable => println!(
            "enabled watch `{}` in {}: the next `forewarn check` checks it",
            args.name,
            file.display()
        ),
    }
    Ok(Exit::Ok)
}

/// Nothing but blank lines and comments.
fn only_comments(src: &str) -> bool {
    src.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// The watch called `name`, enabled or not, and whether it is enabled.
fn declared<'a>(config: &'a Config, name: &str) -> anyhow::Result<(&'a Watch, bool)> {
    if let Some(w) = config.find(name) {
        return Ok((w, true));
    }
    match config.disabled.iter().find(|w| w.name() == name) {
        Some(w) => Ok((w, false)),
        None => Err(UsageError(config.unknown_watch(name)).into()),
    }
}

/// The file's text with the watch's `[[watch]]` table edited.
fn edited(file: &Path, src: &str, name: &str, edit: Edit) -> anyhow::Result<String> {
    let mut doc: DocumentMut = src
        .parse()
        .map_err(|e| UsageError(format!("{}: not valid TOML: {e}", file.display())))?;
    let not_found = || {
        UsageError(format!(
            "{}: no [[watch]] table named `{name}` (is it written inline?): edit the file by hand",
            file.display()
        ))
    };
    let Some(Item::ArrayOfTables(aot)) = doc.get_mut("watch") else {
        return Err(not_found().into());
    };
    let is_it = |t: &Table| t.get("name").and_then(Item::as_str) == Some(name);
    let at = aot.iter().position(is_it).ok_or_else(not_found)?;
    match edit {
        Edit::Remove => {
            let gone = aot.remove(at);
            // Comments above the table that a blank line parts from it belong to the file
            // (a header, a section note): they stay, above what came next.
            let prefix = gone.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
            let kept = prefix.rfind("\n\n").map_or("", |i| &prefix[..i + 2]);
            if !kept.trim().is_empty() {
                match aot.get_mut(at) {
                    Some(next) => {
                        let old = next.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
                        let joined = format!("{kept}{}", old.trim_start_matches('\n'));
                        next.decor_mut().set_prefix(joined);
                    }
                    None => {
                        let trailing = doc.trailing().as_str().unwrap_or("").to_string();
                        doc.set_trailing(format!("{kept}{trailing}"));
                    }
                }
            }
        }
        Edit::Disable => {
            let table = aot.get_mut(at).expect("found above");
            table.insert("enabled", value(false));
        }
        Edit::Enable => {
            let table = aot.get_mut(at).expect("found above");
            table.remove("enabled");
        }
    }
    Ok(doc.to_string())
}

/// Writes `text` to `path` through a temporary file, so a crash leaves the old file or the
/// new one, never half of one.
pub(super) fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
