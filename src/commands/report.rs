//! `forewarn report [NAME]`: past changes read back from the database.

use std::path::{Path, PathBuf};

use crate::Exit;
use crate::cli::{ReportArgs, ReportFormat};
use crate::report::{self, Format};
use crate::store::{EventFilter, Store};

/// What `report` shows unless `--all` is given.
const NOTABLE: &[&str] = &[
    "changed",
    "new_entry",
    "entry_updated",
    "new_version",
    "contract_broken",
    "deploy_detected",
    "schema_changed",
    "contract_restored",
    "error",
    "blocked",
    "selector_missing",
    "selector_restored",
    "recovered",
];

pub fn run(db: &Path, watchlists: &[PathBuf], args: ReportArgs) -> anyhow::Result<Exit> {
    let since = crate::schedule::now() - chrono::Duration::from_std(args.since)?;
    let Some(store) = Store::open_read_only(db)? else {
        eprintln!(
            "no database at {} yet: run `forewarn check` first",
            db.display()
        );
        return Ok(Exit::Ok);
    };
    if let Some(name) = &args.name
        && !store.load_states()?.contains_key(name)
    {
        // Not in the database: maybe a typo of a configured watch.
        let hint = crate::config::load(watchlists)
            .ok()
            .map(|c| c.unknown_watch(name))
            .unwrap_or_else(|| format!("no watch named `{name}` in the database"));
        return Err(crate::UsageError(hint).into());
    }
    let filter = EventFilter {
        watch: args.name.clone(),
        since: Some(since),
        kinds: if args.all {
            Vec::new()
        } else {
            NOTABLE.iter().map(|s| s.to_string()).collect()
        },
    };
    let events = store.events(&filter)?;
    let out = match args.format {
        ReportFormat::Json => report::render(&report::Json, &events),
        ReportFormat::Html => report::html::render(
            &events,
            &format!(
                "forewarn report{} since {}",
                args.name
                    .as_deref()
                    .map(|n| format!(" for {n}"))
                    .unwrap_or_default(),
                report::when(since)
            ),
        ),
        _ if events.is_empty() => format!(
            "no changes{} since {}\n",
            args.name
                .as_deref()
                .map(|n| format!(" to `{n}`"))
                .unwrap_or_default(),
            report::when(since)
        ),
        ReportFormat::Markdown => report::render(&report::Markdown, &events),
        ReportFormat::Text => {
            let mut s = String::new();
            let f = report::Text { with_time: true };
            for e in &events {
                f.event(e, &mut s);
            }
            s
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &out).map_err(|e| {
                anyhow::anyhow!("cannot write the report to {}: {e}", path.display())
            })?;
            eprintln!("report written to {}", path.display());
        }
        None => print!("{out}"),
    }
    Ok(Exit::Ok)
}
