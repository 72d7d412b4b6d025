//! The subcommands. Each file has a `run()`; cheap ones never open the store.

mod ack;
mod add;
mod check;
mod due_gate;
mod edit;
mod history;
mod import;
mod incident;
mod init;
mod list;
mod metrics;
mod notify;
mod report;
mod test;
mod watch;
mod worker;

use std::path::PathBuf;

use anyhow::Context;

use crate::Exit;
use crate::cli::{Cli, Command};
use crate::config::{self, Config, Watch};

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    crate::report::color::set(cli.color);
    let db = cli
        .db
        .clone()
        .unwrap_or_else(crate::pipeline::default_db_path);
    match cli.command {
        Command::Check(args) => check::run(&db, &cli.watchlists, args),
        Command::Watch(args) => watch::run(&db, &cli.watchlists, args),
        Command::Add(args) => add::run(&cli.watchlists, *args),
        Command::Remove(args) => edit::run(&cli.watchlists, args, edit::Edit::Remove),
        Command::Disable(args) => edit::run(&cli.watchlists, args, edit::Edit::Disable),
        Command::Enable(args) => edit::run(&cli.watchlists, args, edit::Edit::Enable),
        Command::Test(args) => test::run(&db, &cli.watchlists, args),
        Command::List(args) => list::run(&db, &cli.watchlists, args),
        Command::Report(args) => report::run(&db, &cli.watchlists, args),
        Command::Timeline(args) => history::timeline(&db, args),
        Command::Incident(args) => incident::run(&db, args),
        Command::Show(args) => history::show(&db, args),
        Command::Diff(args) => history::diff(&db, args),
        Command::Gc => history::gc(&db, &cli.watchlists),
        Command::Notify(cmd) => notify::run(&db, &cli.watchlists, cmd),
        Command::Ack(args) => ack::run(&db, args),
        Command::Init(args) => init::run(args),
        Command::Completions { shell } => init::completions(shell),
        Command::Man => init::man(),
        Command::Import(args) => import::run(args),
    }
}

/// Loads the watchlists; problems become exit 3.
fn load_config(watchlists: &[PathBuf]) -> anyhow::Result<Config> {
    Ok(config::load(watchlists)?)
}

/// The watch called `name`, or a usage error with a suggestion.
fn find_watch<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a Watch> {
    config
        .find(name)
        .ok_or_else(|| crate::UsageError(config.unknown_watch(name)).into())
}

/// Pings the heartbeat URL after a pass; a failure is reported on stderr, never fatal.
async fn heartbeat(url: &crate::config::UrlTemplate) {
    let result = async {
        let url = url.expand()?;
        let client = reqwest::Client::builder()
            .user_agent(crate::fetch::USER_AGENT)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", resp.status()))
        }
    }
    .await;
    if let Err(e) = result {
        eprintln!(
            "forewarn: warning: heartbeat ping to {} failed: {e}",
            url.display()
        );
    }
}

/// Columns padded to their widest cell; the last column is not padded.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        widen(&mut widths, r);
    }
    let mut out = String::new();
    table_line(&header.map(String::from), &widths, &mut out);
    for r in rows {
        table_line(r, &widths, &mut out);
    }
    out
}

/// Widens a table's columns to fit a row.
fn widen<const N: usize>(widths: &mut [usize; N], row: &[String; N]) {
    for (w, c) in widths.iter_mut().zip(row) {
        *w = (*w).max(c.chars().count());
    }
}

/// One row of a table: each cell padded to its column's width, the last as it is.
fn table_line<const N: usize>(row: &[String; N], widths: &[usize; N], out: &mut String) {
    let start = out.len();
    for (i, c) in row.iter().enumerate() {
        if i + 1 == N {
            out.push_str(c);
        } else {
            out.push_str(&format!("{c:<w$}  ", w = widths[i]));
        }
    }
    out.truncate(start + out[start..].trim_end().len());
    out.push('\n');
}

/// Watches whose stored schedules `check --due` and the daemon read at once.
const SCHEDULE_GROUP: usize = 1024;

/// The stored schedules of a group of watches, by name (none without a database yet).
pub(crate) fn schedules_of(
    store: Option<&crate::store::Store>,
    group: &[crate::config::Watch],
) -> anyhow::Result<std::collections::HashMap<String, crate::store::ScheduleState>> {
    let Some(store) = store else {
        return Ok(Default::default());
    };
    let names: Vec<&str> = group.iter().map(|w| w.name()).collect();
    Ok(store.load_schedules_of(&names)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
