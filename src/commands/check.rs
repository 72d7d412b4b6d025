//! `forewarn check`: every watch once; a report of what changed, silence when nothing did.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Exit;
use crate::cli::{CheckArgs, CheckFormat};
use crate::pipeline::{self, Limits};
use crate::report::{self, Format};
use crate::store::Store;

/// Events the text report leaves out: first sight, noise, and changes awaiting confirmation.
/// JSON Lines carries them all.
const QUIET: &[&str] = &["baseline", "noise", "pending"];

pub fn run(db: &Path, watchlists: &[PathBuf], args: CheckArgs) -> anyhow::Result<Exit> {
    let mut config = super::load_config(watchlists)?;
    let watches: Vec<_> = if args.only.is_empty() {
        std::mem::take(&mut config.watches)
    } else {
        let mut picked = Vec::new();
        for name in &args.only {
            let w = super::find_watch(&config, name)?;
            if !picked
                .iter()
                .any(|p: &crate::config::Watch| p.name == w.name)
            {
                picked.push(w.clone());
            }
        }
        picked
    };
    if watches.is_empty() {
        return Err(crate::UsageError(format!(
            "no watches in {}: add one with `forewarn add URL --name NAME`",
            describe_files(&config.files)
        ))
        .into());
    }
    let store = Store::open(db)?;
    let limits = Limits {
        concurrency: args.concurrency as usize,
        per_host: args.per_host as usize,
    };
    let (pass, _store) = super::runtime()?.block_on(pipeline::run_pass(watches, store, limits))?;

    let mut out = String::new();
    match args.format {
        CheckFormat::Json => {
            out = report::render(&report::Json, &pass.events);
            let summary = serde_json::json!({
                "event": "summary",
                "checked": pass.checked,
                "changed": pass.changed,
                "failed": pass.failed,
                "not_modified": pass.not_modified,
                "duration_ms": pass.duration.as_millis() as u64,
            });
            out.push_str(&summary.to_string());
            out.push('\n');
        }
        CheckFormat::Text => {
            let shown: Vec<_> = pass
                .events
                .iter()
                .filter(|e| !QUIET.contains(&e.kind.as_str()))
                .cloned()
                .collect();
            if !shown.is_empty() {
                let text = report::Text { with_time: false };
                text.header(&shown, &mut out);
                for e in &shown {
                    text.event(e, &mut out);
                }
                out.push_str(&format!(
                    "forewarn: {} changed, {} failed, {} checked in {:.1}s\n",
                    pass.changed,
                    pass.failed,
                    pass.checked,
                    pass.duration.as_secs_f64()
                ));
                if pass.failed > 0 {
                    let first = shown.iter().find(|e| e.kind == "error").map(|e| &e.watch);
                    if let Some(name) = first {
                        out.push_str(&format!(
                            "hint: `forewarn test {name}` fetches a failing watch and shows what the server sends\n"
                        ));
                    }
                }
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;

    Ok(if pass.failed > 0 {
        Exit::WatchesFailed
    } else if args.fail_on_change && pass.changed > 0 {
        Exit::ChangesFound
    } else {
        Exit::Ok
    })
}

fn describe_files(files: &[PathBuf]) -> String {
    if files.is_empty() {
        format!(
            "{} (no watchlist files found)",
            crate::config::default_watchlist_dir().display()
        )
    } else {
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
