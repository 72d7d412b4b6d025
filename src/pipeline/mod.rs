//! One pass over the watches: fetch concurrently, judge each result (a large one off the async
//! threads), and write every outcome from one thread that owns the SQLite connection, in
//! batched transactions. Results are reported only after they are committed.

mod check;
mod request;
pub mod verify;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use crate::config::{HostSettings, Watch};
use crate::event::{Event, EventKind};
use crate::fetch::Fetcher;
use crate::fetch::politeness::Hosts;
use crate::judge::{Outcome, Verdict, WatchState};
use crate::store::{Store, StoreError};
use check::Pass;
pub use request::{fetch_once, probe_once, request_for};
use request::{host_of, interleave_hosts};

/// Concurrency limits for a pass.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests in flight at once, across all hosts.
    pub concurrency: usize,
    /// Requests in flight at once to one host, unless `[hosts]` says otherwise. The default,
    /// 6, is what browsers open to one host (4 made a warm pass over 10,000 watches of one
    /// host 8 % slower, each connection waiting out its round trips).
    pub per_host: usize,
    /// `[hosts."..."]` overrides.
    pub hosts: HashMap<String, HostSettings>,
    /// Show a progress bar on stderr (only ever on an interactive terminal).
    pub progress: bool,
    /// Browser watches' pages loaded at once.
    pub browser_tabs: usize,
    /// `[browser]`: the browser to start, or the one running to use.
    pub browser: crate::config::BrowserSettings,
    /// A browser kept across passes (the daemon's): used instead of starting one per pass.
    pub shared_browser: Option<Arc<crate::fetch::browser::Browser>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 32,
            per_host: 6,
            hosts: HashMap::new(),
            progress: false,
            browser_tabs: 2,
            browser: Default::default(),
            shared_browser: None,
        }
    }
}

/// Where a pass's results go: each check is handed over on the database writer's thread as
/// soon as its batch is committed, so a pass holds no result longer than a batch, whatever the
/// number of watches (a first pass over 100,000 pages has 100,000 `baseline` events).
pub trait Sink: Send + 'static {
    /// One check: the watch's position in the list given to [`run_pass`], what the check
    /// found, and the events it stored or reported (in the order they happened). Checks come
    /// in the order they finished.
    fn check(&mut self, position: usize, outcome: &Outcome, events: &[Event]);
    /// After each committed batch of checks.
    fn committed(&mut self) {}
}

/// A [`Sink`] that keeps the events the text report shows (see
/// [`crate::event::KindInfo::quiet`]), to be listed in watchlist order when the pass ends.
#[derive(Debug, Default)]
pub struct Shown {
    events: Vec<(usize, Event)>,
}

impl Shown {
    /// The kept events, in watchlist order (a watch's own in the order they happened).
    pub fn into_events(mut self) -> Vec<Event> {
        self.events.sort_by_key(|(position, _)| *position);
        self.events.into_iter().map(|(_, e)| e).collect()
    }
}

impl Sink for Shown {
    fn check(&mut self, position: usize, _: &Outcome, events: &[Event]) {
        self.events.extend(
            events
                .iter()
                .filter(|e| !e.kind.is_quiet() && !e.is_volatile())
                .map(|e| (position, e.clone())),
        );
    }
}

/// What a check came to, in a word (`not_modified`, `changed`, `failed`...), and its error.
pub fn check_outcome(o: &Outcome) -> (&'static str, Option<&str>) {
    // A contract that broke on this check is the news, whatever the content did.
    let broke = o
        .contracts
        .as_ref()
        .is_some_and(|(_, changes)| changes.iter().any(|c| c.broken));
    if broke && !matches!(o.verdict, Verdict::Failed { .. }) {
        return (EventKind::ContractBroken.as_str(), None);
    }
    match &o.verdict {
        Verdict::NotModified => ("not_modified", None),
        Verdict::Unchanged { .. } => ("unchanged", None),
        Verdict::Noise { .. } => ("noise", None),
        Verdict::Pending { .. } => ("pending", None),
        Verdict::Baseline { .. } => ("baseline", None),
        Verdict::Changed { .. } => (EventKind::Changed.as_str(), None),
        Verdict::FeedChanged { .. } => ("new_entries", None),
        Verdict::NewVersion { .. } => (EventKind::NewVersion.as_str(), None),
        Verdict::SelectorMissing { .. } => (EventKind::SelectorMissing.as_str(), None),
        Verdict::Failed { error, blocked } => (
            if *blocked { "blocked" } else { "failed" },
            Some(error.as_str()),
        ),
    }
}

/// What a pass did: its counts (the results went to its [`Sink`]).
#[derive(Debug, Default)]
pub struct PassReport {
    pub checked: usize,
    pub changed: usize,
    pub failed: usize,
    /// Failed checks already alerted and not printed again this time.
    pub failed_quietly: usize,
    pub not_modified: usize,
    /// First checks: a baseline stored, nothing to compare with yet.
    pub baselines: usize,
    pub duration: Duration,
    /// `verify`: what each verify run after this pass's changes said.
    pub verified: Vec<verify::Verified>,
}

/// Outcomes written per transaction at most.
const BATCH: usize = 512;

/// Watches whose stored state is loaded at once. A state is about a kilobyte before its
/// strings: a group of 1,024 and the map holding it were 2.3 MB of a warm pass's 9 MB heap
/// peak (its resident size: 31 MB with 1,024, 28 MB with 256, no slower).
const STATE_GROUP: usize = 256;

/// Checks each watch at the positions `only` (every watch when `None`) once, stores what it
/// finds and hands each result to `sink` once it is committed; returns the counts, the store
/// and the sink. The list is shared, not copied: the daemon and `check --due` keep theirs whole
/// for scheduling.
pub async fn run_pass<S: Sink>(
    watches: Arc<Vec<Watch>>,
    only: Option<Vec<u32>>,
    store: Store,
    limits: Limits,
    sink: S,
) -> Result<(PassReport, Store, S), anyhow::Error> {
    let started = Instant::now();
    let mut store = store;
    // Verifies a process that died left running: their events say so, and go out.
    store.interrupt_verifies()?;
    let pass_watches = watches.clone();
    let order = interleave_hosts(&watches, only);
    let pass = Arc::new(Pass {
        watches,
        reader: Mutex::new(
            store
                .reader()?
                .ok_or_else(|| anyhow::anyhow!("the database vanished while opening it"))?,
        ),
        fetcher: Fetcher::new(limits.per_host)
            .map_err(anyhow::Error::msg)?
            .with_browser(
                limits.browser_tabs,
                Some(sessions_dir(store.path())),
                limits.browser.clone(),
            )
            .with_shared_browser(limits.shared_browser.clone()),
        global: Semaphore::new(limits.concurrency.max(1)),
        // Twice as many judgments as cores: with one per core, a core idled each time a
        // judgment ended until the next body was handed to a blocking thread (a cold pass
        // over 10,000 pages on 2 cores: 4.7 s with 2, 3.6 s with 4; 6 or 8 were no faster).
        cpu: Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()) * 2),
    });
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>(BATCH);
    let bar = limits.progress.then(|| progress_bar(order.len()));
    let writer = writer::spawn(store, sink, rx, bar.clone());
    // The spawner runs as a task of the runtime, not on the thread that waits for the pass:
    // woken there each time a check ended, that thread cost a futex wake and a context switch
    // per watch (a sixth of the CPU of a warm pass).
    let total = order.len();
    let spawner = {
        let (pass, hosts) = (
            pass.clone(),
            Hosts::new(limits.hosts.clone(), limits.per_host),
        );
        let concurrency = limits.concurrency;
        tokio::spawn(async move { spawn_checks(&pass, &order, concurrency, hosts, tx).await })
    };
    spawner.await??;

    let (mut store, sink, mut report, failed, jobs) =
        tokio::task::spawn_blocking(move || writer.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the database writer thread panicked"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // The judges' reader is gone: the log can be copied back and cut to nothing.
    drop(pass);
    // `list` reads a day of response times; older ones go.
    let day_ago = crate::schedule::now().timestamp_millis() - 25 * 3_600_000;
    if let Err(e) = store.prune_timings(day_ago) {
        eprintln!("forewarn: old response times not pruned: {e}");
    }
    store.checkpoint(true);
    if let Some(e) = failed {
        // Say exactly what is stored: the batches before this one were committed.
        return Err(anyhow::Error::new(e).context(format!(
            "{} of this pass's {} checks were stored before the database failed; the rest were not (their pages are checked again next run)",
            report.checked,
            total
        )));
    }
    // The changes stored, their notifications held: each verify says whether the
    // integration still works, then they go out.
    report.verified = verify::run(&pass_watches, jobs, &mut store).await?;
    let report = PassReport {
        duration: started.elapsed(),
        ..report
    };
    Ok((report, store, sink))
}

/// Starts a check per watch in `order`, within the pass's limits, each sending its outcome to
/// the writer; returns when all have.
async fn spawn_checks(
    pass: &Arc<Pass>,
    order: &[u32],
    concurrency: usize,
    hosts: Hosts,
    tx: mpsc::Sender<(usize, Outcome)>,
) -> Result<(), anyhow::Error> {
    // Bounds the checks alive at once (and so the bodies held in memory).
    let slots = Arc::new(Semaphore::new(concurrency.max(1) * 2));
    let mut tasks = tokio::task::JoinSet::new();
    let mut states: HashMap<String, WatchState> = HashMap::new();
    for (pos, &idx) in order.iter().enumerate() {
        let idx = idx as usize;
        if pos % STATE_GROUP == 0 {
            states = load_states(pass, &order[pos..(pos + STATE_GROUP).min(order.len())])?;
        }
        let w = &pass.watches[idx];
        let (host, port) = host_of(w);
        let host = hosts.get(&host, port);
        let mut slot = Some(slots.clone().acquire_owned().await?);
        let state = states.remove(w.name()).map(Arc::new);
        let (pass, tx) = (pass.clone(), tx.clone());
        tasks.spawn(async move {
            // Boxed: the check's state machine (its fetch, retries and judgment) is kilobytes,
            // and a task is moved into place on spawn; the box is moved as a pointer.
            let outcome = Box::pin(check::one(pass, idx, state, host, &mut slot)).await;
            let _ = tx.send((idx, outcome)).await;
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    drop(tx);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The stored states of the next group of watches; each check takes its own, so a slow check
/// holds its state, not its group's.
fn load_states(pass: &Pass, group: &[u32]) -> Result<HashMap<String, WatchState>, StoreError> {
    let names: Vec<&str> = group
        .iter()
        .map(|&i| pass.watches[i as usize].name())
        .collect();
    pass.reader
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .load_states_of(&names)
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} checked, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Pause before the confirming refetch of a changed page.
pub const REFETCH_PAUSE: Duration = Duration::from_millis(250);

/// Where the database lives: `--db`, else `$FOREWARN_DB`, else the per-user data folder.
/// Where named browser sessions keep their cookies: `browser-sessions/` beside the database.
/// On PostgreSQL (no folder beside the database), they are kept in the data folder.
pub fn sessions_dir(db: &std::path::Path) -> PathBuf {
    if db.to_str().is_some_and(crate::store::is_postgres_url) {
        return crate::paths::data_dir().join("browser-sessions");
    }
    db.parent()
        .unwrap_or(std::path::Path::new("."))
        .join("browser-sessions")
}

pub fn default_db_path() -> PathBuf {
    crate::paths::data_dir().join("forewarn.db")
}
