//! `forewarn check`: every watch once; a report of what changed, silence when nothing did.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::due_gate;
use super::worker::Worker;
use crate::Exit;
use crate::cli::{CheckArgs, CheckFormat};
use crate::event::EventKind;
use crate::pipeline::{self, Limits, Shown, Sink};
use crate::report::{self, Format};
use crate::schedule;
use crate::store::{Store, lock};

/// How long `check` waits for another forewarn (say `watch`) to release the database.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn run(db: &Path, watchlists: &[PathBuf], args: CheckArgs) -> anyhow::Result<Exit> {
    // Cron starts `check --due` every few minutes: most runs end here, in a few milliseconds.
    if args.due && args.only.is_empty() && due_gate::nothing_due(db, watchlists, schedule::now()) {
        print_empty_summary(&args);
        return Ok(Exit::Ok);
    }
    let mut config = super::load_config(watchlists)?;
    let mut picked = Vec::new();
    for name in &args.only {
        let w = super::find_watch(&config, name)?;
        if !picked
            .iter()
            .any(|p: &crate::config::Watch| p.name() == w.name())
        {
            picked.push(w.clone());
        }
    }
    let pool = std::sync::Arc::new(if args.only.is_empty() {
        std::mem::take(&mut config.watches)
    } else {
        picked
    });
    if pool.is_empty() && !config.disabled.is_empty() {
        let n = config.disabled.len();
        return Err(crate::UsageError(format!(
            "the {n} watch{} in {} {} disabled (`enabled = false`): delete that line from a watch once its URL is yours, or `forewarn enable NAME`",
            if n == 1 { "" } else { "es" },
            describe_files(&config.files),
            if n == 1 { "is" } else { "are all" }
        ))
        .into());
    }
    if pool.is_empty() {
        return Err(crate::UsageError(format!(
            "no watches in {}: add one with `forewarn add URL --name NAME`",
            describe_files(&config.files)
        ))
        .into());
    }
    if args.due {
        return check_due(db, watchlists, &config, pool, &args);
    }
    let _lock = lock::acquire(db, "check", LOCK_WAIT)?;
    let store = Store::open(db)?;
    Ok(check_watches(store, None, &config, pool, None, &args)?.0)
}

fn print_empty_summary(args: &CheckArgs) {
    if args.format == CheckFormat::Json {
        println!(
            "{}",
            serde_json::json!({"event": "summary", "checked": 0, "changed": 0, "failed": 0, "not_modified": 0, "duration_ms": 0})
        );
    }
}

/// `check --due`: only the watches of `pool` whose schedule fired since their last check (the
/// pass is handed their positions; `pool` stays whole for the next due time); then the gate
/// for the next run.
fn check_due(
    db: &Path,
    watchlists: &[PathBuf],
    config: &crate::config::Config,
    pool: std::sync::Arc<Vec<crate::config::Watch>>,
    args: &CheckArgs,
) -> anyhow::Result<Exit> {
    let reader = Store::open_read_only(db)?;
    let now = schedule::now();
    let mut due: Vec<(u32, Option<chrono::DateTime<chrono::Utc>>)> = Vec::new();
    for (g, group) in pool.chunks(super::SCHEDULE_GROUP).enumerate() {
        let states = super::schedules_of(reader.as_ref(), group)?;
        for (i, w) in group.iter().enumerate() {
            let s = states.get(w.name());
            let timing = &w.settings.timing;
            let last = s.and_then(|s| s.0);
            if schedule::is_due(timing, last, s.map_or(0, |s| s.1), now) {
                due.push(((g * super::SCHEDULE_GROUP + i) as u32, last));
            }
        }
    }
    drop(reader);
    let (exit, delivery) = if due.is_empty() {
        print_empty_summary(args);
        // Nothing to fetch, but a retry or a closing batch window may be due.
        (Exit::Ok, deliver_only(db, config, args)?)
    } else {
        let _lock = lock::acquire(db, "check", LOCK_WAIT)?;
        let mut store = Store::open(db)?;
        // On a shared database, only the due watches no other worker has.
        match Worker::join(&store, "check --due", config)? {
            Some((worker, warning)) => {
                if let Some(w) = warning {
                    eprintln!("forewarn: {w}");
                }
                let mine = worker.claim(&mut store, &pool, &due)?;
                if mine.is_empty() {
                    print_empty_summary(args);
                    worker.leave(&store);
                    (Exit::Ok, None)
                } else {
                    check_watches(store, Some(worker), config, pool.clone(), Some(mine), args)?
                }
            }
            None => {
                let due = due.into_iter().map(|(i, _)| i).collect();
                check_watches(store, None, config, pool.clone(), Some(due), args)?
            }
        }
    };
    // Only when every watch was considered: with --only the gate would not cover the rest.
    if args.only.is_empty() {
        let store = Store::open(db)?;
        let now = schedule::now();
        let mut next = None;
        for group in pool.chunks(super::SCHEDULE_GROUP) {
            let states = super::schedules_of(Some(&store), group)?;
            let soonest = group
                .iter()
                .map(|w| {
                    let s = states.get(w.name());
                    let timing = &w.settings.timing;
                    schedule::due_for_cron(timing, s.and_then(|s| s.0), s.map_or(0, |s| s.1), now)
                })
                .min();
            next = next.into_iter().chain(soonest).min();
        }
        let next = match (next, delivery.and_then(|d| d.next_due)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(next) = next {
            due_gate::record(&store, watchlists, next);
        }
    }
    Ok(exit)
}

/// Delivers queued notifications without a pass (`check --due` with nothing due).
fn deliver_only(
    db: &Path,
    config: &crate::config::Config,
    args: &CheckArgs,
) -> anyhow::Result<Option<crate::notify::Delivery>> {
    if args.no_notify || config.channels.is_empty() {
        return Ok(None);
    }
    let _lock = lock::acquire(db, "check", LOCK_WAIT)?;
    let mut store = Store::open(db)?;
    let rt = super::runtime()?;
    let d = rt.block_on(super::notify::deliver_after_pass(
        &mut store,
        config,
        args.notify_timeout,
    ));
    if let Some(d) = &d {
        super::notify::print_delivery(d);
    }
    Ok(d)
}

/// One pass over the watches at the positions `only` (all of `watches` when `None`), holding
/// the database lock, its report, and the delivery of what it queued (within
/// `--notify-timeout`, so cron mode really notifies).
fn check_watches(
    store: Store,
    worker: Option<Worker>,
    config: &crate::config::Config,
    watches: std::sync::Arc<Vec<crate::config::Watch>>,
    only: Option<Vec<u32>>,
    args: &CheckArgs,
) -> anyhow::Result<(Exit, Option<crate::notify::Delivery>)> {
    let mut limits = Limits {
        concurrency: args.concurrency as usize,
        per_host: args.per_host as usize,
        hosts: config.hosts.clone(),
        // Many watches, a person watching: never when piped or under cron.
        progress: only.as_ref().map_or(watches.len(), Vec::len) >= 20
            && std::io::stderr().is_terminal(),
        browser_tabs: args.browser_tabs as usize,
        browser: config.browser.clone().unwrap_or_default(),
        shared_browser: None,
    };
    if let Some(w) = &worker {
        w.share(&mut limits);
    }
    let rt = super::runtime()?;
    let (pass, mut store, shown, unwritten) = match args.format {
        CheckFormat::Json => {
            let sink = JsonLines {
                out: std::io::BufWriter::new(std::io::stdout()),
                failed: None,
            };
            let (pass, store, sink) =
                rt.block_on(pipeline::run_pass(watches, only, store, limits, sink))?;
            (pass, store, Vec::new(), sink.failed)
        }
        CheckFormat::Text => {
            let (pass, store, shown) = rt.block_on(pipeline::run_pass(
                watches,
                only,
                store,
                limits,
                Shown::default(),
            ))?;
            let mut shown = shown.into_events();
            with_verdicts(&mut shown, &pass.verified);
            (pass, store, shown, None)
        }
    };
    // A pass moves due times (a recovery ends a backoff): the next `--due` recomputes.
    due_gate::clear(&store);
    if let Some(url) = &config.heartbeat_url {
        rt.block_on(super::heartbeat(url));
    }

    print_report(args, &pass, &shown, unwritten)?;

    let delivery = if args.no_notify {
        None
    } else {
        rt.block_on(super::notify::deliver_after_pass(
            &mut store,
            config,
            args.notify_timeout,
        ))
    };
    if let Some(d) = &delivery {
        super::notify::print_delivery(d);
    }
    if let Some(w) = worker {
        store.hold(None);
        w.leave(&store);
    }

    let exit = if pass.failed > 0 {
        Exit::WatchesFailed
    } else if args.fail_on_change && pass.changed > 0 {
        Exit::ChangesFound
    } else {
        Exit::Ok
    };
    Ok((exit, delivery))
}

/// The pass's report on stdout: JSON's tail (its lines went out as they were stored), or the
/// text report, coloured on a terminal. A reader that went away (`| head`) is no failure.
fn print_report(
    args: &CheckArgs,
    pass: &pipeline::PassReport,
    shown: &[crate::event::Event],
    unwritten: Option<std::io::Error>,
) -> anyhow::Result<()> {
    let mut out = String::new();
    match args.format {
        CheckFormat::Json => {
            // After the due gate and the heartbeat, as when the lines were printed at the end.
            // A reader that went away (`| head`) is no failure: the results are stored and
            // queued. Any other write error is.
            match unwritten {
                Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(anyhow::Error::new(e).context("writing JSON Lines to stdout"));
                }
                _ => {}
            }
            json_tail(pass, &mut out);
        }
        CheckFormat::Text => {
            text_report(shown, pass, &mut out);
            out = report::color::for_stdout(out);
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(())
}

/// `check --format json`'s last lines: each verify's verdict (they ran once the pass was
/// stored, after its events were printed), then the summary.
fn json_tail(pass: &pipeline::PassReport, out: &mut String) {
    // The verifies ran once the pass was stored: their verdicts follow its events.
    for v in &pass.verified {
        let line = serde_json::json!({
            "verify": v.verdict,
            "watch": v.watch,
            "events": v.events,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    let summary = serde_json::json!({
        "event": "summary",
        "checked": pass.checked,
        "changed": pass.changed,
        "failed": pass.failed,
        "not_modified": pass.not_modified,
        "baselines": pass.baselines,
        "duration_ms": pass.duration.as_millis() as u64,
    });
    out.push_str(&summary.to_string());
    out.push('\n');
}

/// Puts each verify's verdict into the events it ran for (a failure makes them critical), so
/// the text report shows it.
fn with_verdicts(events: &mut [crate::event::Event], verified: &[pipeline::verify::Verified]) {
    for v in verified {
        for e in events
            .iter_mut()
            .filter(|e| e.id.is_some_and(|id| v.events.contains(&id)))
        {
            e.detail.insert("verify".into(), v.verdict.clone());
            if !v.passed() && v.verdict["state"] != "interrupted" {
                e.detail
                    .insert("severity".into(), serde_json::json!("critical"));
            }
        }
    }
}

/// `check --format json`: each check's lines are printed as soon as its batch is committed, in
/// the order the checks finished, so a pass over 100,000 watches holds none of them (and a
/// script reading the pipe sees them come).
struct JsonLines {
    out: std::io::BufWriter<std::io::Stdout>,
    /// The first write that failed (a closed pipe): the pass goes on, storing what it finds.
    failed: Option<std::io::Error>,
}

impl JsonLines {
    fn write(&mut self, e: &crate::event::Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, &e.to_json())?;
        self.out.write_all(b"\n")
    }
}

impl Sink for JsonLines {
    fn check(&mut self, _: usize, _: &crate::judge::Outcome, events: &[crate::event::Event]) {
        report::check_lines(events, |e| {
            if self.failed.is_none() {
                self.failed = self.write(e).err();
            }
        });
    }

    fn committed(&mut self) {
        if self.failed.is_none() {
            self.failed = self.out.flush().err();
        }
    }
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

/// What cron mails: silence when nothing changed, except for a person at a terminal, who is
/// told what the pass did (on a first run: the baselines it stored).
fn text_report(shown: &[crate::event::Event], pass: &pipeline::PassReport, out: &mut String) {
    if shown.is_empty() && !std::io::stdout().is_terminal() {
        return;
    }
    let text = report::Text { with_time: false };
    text.header(shown, out);
    for e in shown {
        text.event(e, out);
    }
    out.push_str(&summary_line(pass));
    let failing = shown.iter().find(|e| e.kind == EventKind::Error);
    if let Some(name) = failing.map(|e| &e.watch) {
        out.push_str(&format!(
            "hint: `forewarn test {name}` fetches a failing watch and shows what the server sends\n"
        ));
    }
}

/// `forewarn: 1 changed, 0 failed, 6 checked in 0.4s; 5 baselines stored`.
fn summary_line(pass: &pipeline::PassReport) -> String {
    let mut line = format!("forewarn: {} changed, {} failed", pass.changed, pass.failed,);
    if pass.failed_quietly > 0 {
        line.push_str(&format!(
            " ({} already alerted, printed again once a day: `forewarn list`)",
            pass.failed_quietly
        ));
    }
    line.push_str(&format!(
        ", {} checked in {:.1}s",
        pass.checked,
        pass.duration.as_secs_f64()
    ));
    match pass.baselines {
        0 => {}
        1 => line.push_str(
            "; 1 baseline stored (the first check of a watch: nothing to compare with yet)",
        ),
        n => line.push_str(&format!(
            "; {n} baselines stored (first checks: nothing to compare with yet)"
        )),
    }
    line.push('\n');
    line
}
