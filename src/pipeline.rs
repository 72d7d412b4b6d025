//! One pass over the watches: fetch concurrently, judge each result off the async threads,
//! and write every outcome from one thread that owns the SQLite connection, in batched
//! transactions. Results are reported only after they are committed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Semaphore, mpsc};

use crate::config::types::expand_env;
use crate::config::{HostSettings, Watch};
use crate::event::{Event, EventKind};
use crate::fetch::politeness::{Host, Hosts};
use crate::fetch::{FetchError, FetchRequest, Fetched, Fetcher, retry};
use crate::judge::{self, History, Outcome, Snapshot, Verdict, WatchState};
use crate::store::{Store, StoreError};

/// Concurrency limits for a pass.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests in flight at once, across all hosts.
    pub concurrency: usize,
    /// Requests in flight at once to one host, unless `[hosts]` says otherwise.
    pub per_host: usize,
    /// `[hosts."..."]` overrides.
    pub hosts: HashMap<String, HostSettings>,
    /// Show a progress bar on stderr (only ever on an interactive terminal).
    pub progress: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 32,
            per_host: 4,
            hosts: HashMap::new(),
            progress: false,
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
                .filter(|e| !e.kind.is_quiet())
                .map(|e| (position, e.clone())),
        );
    }
}

/// What a check came to, in a word (`not_modified`, `changed`, `failed`...), and its error.
pub fn check_outcome(o: &Outcome) -> (&'static str, Option<&str>) {
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
    pub not_modified: usize,
    pub duration: Duration,
}

/// Outcomes written per transaction at most.
const BATCH: usize = 512;

/// Watches whose stored state is loaded at once.
const STATE_GROUP: usize = 1024;

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
    let reader = Arc::new(Mutex::new(
        Store::open_read_only(store.path())?
            .ok_or_else(|| anyhow::anyhow!("the database vanished while opening it"))?,
    ));
    let fetcher = Fetcher::new(limits.per_host).map_err(anyhow::Error::msg)?;

    let (tx, mut rx) = mpsc::channel::<(usize, Outcome)>(BATCH);
    let bar = limits.progress.then(|| {
        let bar = indicatif::ProgressBar::new(only.as_ref().map_or(watches.len(), Vec::len) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} checked, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let writer_bar = bar.clone();
    type Written<S> = (Store, S, Result<PassReport, StoreError>);
    let writer = std::thread::spawn(move || -> Written<S> {
        let (mut store, mut sink) = (store, sink);
        let mut report = PassReport::default();
        let mut positions = Vec::with_capacity(BATCH);
        let mut pending = Vec::with_capacity(BATCH);
        while let Some((position, o)) = rx.blocking_recv() {
            positions.push(position);
            pending.push(o);
            while pending.len() < BATCH {
                match rx.try_recv() {
                    Ok((position, o)) => {
                        positions.push(position);
                        pending.push(o);
                    }
                    Err(_) => break,
                }
            }
            if let Some(b) = &writer_bar {
                b.inc(pending.len() as u64);
            }
            let events = match store.apply_batch(&pending) {
                Ok(ev) => ev,
                Err(e) => return (store, sink, Err(e)),
            };
            // A batch's events come check by check; each check's events name its watch.
            let mut rest = events.as_slice();
            for (&position, o) in positions.iter().zip(&pending) {
                let n = rest.iter().take_while(|e| e.watch == o.name).count();
                let (own, next) = rest.split_at(n);
                rest = next;
                report.checked += 1;
                if matches!(o.verdict, Verdict::NotModified) {
                    report.not_modified += 1;
                }
                if own.iter().any(|e| e.kind.is_change()) {
                    report.changed += 1;
                }
                report.failed += own.iter().filter(|e| e.kind.is_failure()).count();
                sink.check(position, o, own);
            }
            debug_assert!(rest.is_empty(), "events of no check in the batch");
            sink.committed();
            positions.clear();
            pending.clear();
        }
        (store, sink, Ok(report))
    });

    let global = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Twice as many judgments as cores: with one per core, a core idled each time a judgment
    // ended until the next body was handed to a blocking thread (a cold pass over 10,000
    // pages on 2 cores: 4.7 s with 2, 3.6 s with 4; 6 or 8 were no faster).
    let cpu = Arc::new(Semaphore::new(cpus * 2));
    // Bounds the tasks alive at once (and so the bodies held in memory).
    let slots = Arc::new(Semaphore::new(limits.concurrency.max(1) * 2));
    let hosts = Hosts::new(limits.hosts.clone(), limits.per_host);
    let mut tasks = tokio::task::JoinSet::new();

    let order = interleave_hosts(&watches, only);
    let mut states: HashMap<String, WatchState> = HashMap::new();
    for (pos, idx) in order.iter().enumerate() {
        let idx = *idx as usize;
        if pos % STATE_GROUP == 0 {
            // The stored states of the next group of watches; each task takes its own, so a
            // slow check holds its state, not its group's.
            let names: Vec<&str> = order[pos..(pos + STATE_GROUP).min(order.len())]
                .iter()
                .map(|&i| watches[i as usize].name())
                .collect();
            let loaded = reader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .load_states_of(&names)?;
            states = loaded;
        }
        let (host, port) = host_of(&watches[idx]);
        let host = hosts.get(&host, port);
        let slot = slots.clone().acquire_owned().await?;
        let state: Option<Arc<WatchState>> = states.remove(watches[idx].name()).map(Arc::new);
        let (watches, reader, fetcher, global, cpu, tx) = (
            watches.clone(),
            reader.clone(),
            fetcher.clone(),
            global.clone(),
            cpu.clone(),
            tx.clone(),
        );
        tasks.spawn(async move {
            let w = &watches[idx];
            let start = Instant::now();
            let fetched = match request_for(w, state.as_deref()) {
                Ok(req) => {
                    fetch_with_retries(&fetcher, &req, &host, &global, w.settings.retries).await
                }
                Err(e) => Err((None, e)),
            };
            let duration_ms = start.elapsed().as_millis() as u64;
            let mut outcome = match fetched {
                Ok(Fetched::Body { .. }) => {
                    let _c = cpu.acquire().await;
                    let (all, known, db) = (watches.clone(), state.clone(), reader.clone());
                    let fetched = fetched.expect("matched Ok");
                    let judged = tokio::task::spawn_blocking(move || {
                        let w = &all[idx];
                        let (mut o, refetch) =
                            judge::judge_body(w, known.as_deref(), fetched, &*db, duration_ms);
                        // A change to confirm is judged again after the refetch: compressing
                        // this one would be wasted (the writer compresses it if the refetch
                        // fails).
                        if refetch.is_none() {
                            o.encode();
                        }
                        (o, refetch)
                    })
                    .await;
                    match judged {
                        Ok((o, None)) => o,
                        Ok((o, Some(first))) => {
                            // Confirm by refetching. The pause holds no slot or permit, so
                            // the pauses of many changed pages overlap.
                            drop(slot);
                            drop(_c);
                            tokio::time::sleep(REFETCH_PAUSE).await;
                            let second = match request_for(w, None) {
                                Ok(req) => {
                                    let _h = host.permit().await;
                                    let _g = global.acquire().await;
                                    fetcher.fetch(&req).await.ok()
                                }
                                Err(_) => None,
                            };
                            match second {
                                Some(second @ Fetched::Body { .. }) => {
                                    let _c = cpu.acquire().await;
                                    let (watches, state) = (watches.clone(), state.clone());
                                    let fallback = o.clone();
                                    tokio::task::spawn_blocking(move || {
                                        let w = &watches[idx];
                                        let mut o = judge::relearn(
                                            w,
                                            state.as_deref(),
                                            o,
                                            &first,
                                            second,
                                            &*reader,
                                        );
                                        o.encode();
                                        o
                                    })
                                    .await
                                    .unwrap_or(fallback)
                                }
                                _ => o,
                            }
                        }
                        Err(e) => Outcome::failed(
                            w,
                            None,
                            duration_ms,
                            format!("internal error while judging: {e}"),
                        ),
                    }
                }
                Ok(Fetched::NotModified {
                    etag,
                    last_modified,
                }) => Outcome {
                    etag,
                    last_modified,
                    status: Some(304),
                    ..Outcome::new(w, duration_ms, Verdict::NotModified)
                },
                Err((status, e)) => Outcome::failed(w, status, duration_ms, e),
            };
            outcome.at = crate::schedule::now();
            let _ = tx.send((idx, outcome)).await;
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    drop(tx);
    while tasks.join_next().await.is_some() {}

    let (store, sink, report) = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the database writer thread panicked"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = PassReport {
        duration: started.elapsed(),
        ..report?
    };
    Ok((report, store, sink))
}

/// The pass reads previous snapshots through its own read-only connection.
impl History for Mutex<Store> {
    fn snapshot(&self, id: i64) -> Option<Snapshot> {
        self.lock().ok()?.snapshot(id).ok().flatten()
    }
}

/// Pause before the confirming refetch of a changed page.
pub const REFETCH_PAUSE: Duration = Duration::from_millis(250);

/// One request with the retries `retry::decide` allows. A host that answers 429 / 503 is
/// slowed down for the rest of the pass.
async fn fetch_with_retries(
    fetcher: &Fetcher,
    req: &FetchRequest,
    host: &Host,
    global: &Semaphore,
    retries: u32,
) -> Result<Fetched, (Option<u16>, String)> {
    let mut attempt = 0;
    loop {
        if let Some(n) = host.unreachable() {
            return Err((
                None,
                format!(
                    "host unreachable: the last {n} requests to it in this pass could not connect, so this one was not tried; the next run tries again"
                ),
            ));
        }
        let result = {
            let _h = host.permit().await;
            let _g = global.acquire().await;
            fetcher.fetch(req).await
        };
        let e = match result {
            Ok(f) => {
                host.reached(true);
                return Ok(f);
            }
            Err(e) => e,
        };
        host.reached(!matches!(
            e,
            FetchError::Dns(_) | FetchError::Connect(_) | FetchError::Tls(_)
        ));
        if let FetchError::Http {
            status: 429 | 503,
            retry_after,
            ..
        } = &e
        {
            host.slow_down(retry_after.unwrap_or_default());
        }
        match retry::decide(&e, attempt, retries) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            None => {
                let tries = if attempt > 0 {
                    format!(" (tried {} times)", attempt + 1)
                } else {
                    String::new()
                };
                return Err((e.status(), format!("{e}{tries}")));
            }
        }
    }
}

/// Host and port (when not the scheme's default): the key for per-host limits.
fn host_of(w: &Watch) -> (String, Option<u16>) {
    crate::config::types::validate_url_template(w.url())
        .map(|u| (u.host_str().unwrap_or("").to_ascii_lowercase(), u.port()))
        .unwrap_or_default()
}

/// Host and port: the key for visiting hosts in turn.
fn host_key(w: &Watch) -> String {
    let (h, p) = host_of(w);
    format!("{h}:{}", p.unwrap_or(0))
}

/// Watch indices ordered round-robin across hosts, so one busy host does not hold up the rest.
fn interleave_hosts(watches: &[Watch], only: Option<Vec<u32>>) -> Vec<u32> {
    // Positions as u32: half the memory of a 100,000-watch order; 4 billion watches will not
    // fit in memory anyway.
    let count = only.as_ref().map_or(watches.len(), Vec::len);
    let positions: Box<dyn Iterator<Item = u32>> = match only {
        Some(list) => Box::new(list.into_iter()),
        None => Box::new(0..watches.len() as u32),
    };
    let mut by_host: Vec<(String, Vec<u32>)> = Vec::new();
    let mut pos: HashMap<String, usize> = HashMap::new();
    for i in positions {
        let key = host_key(&watches[i as usize]);
        let slot = *pos.entry(key.clone()).or_insert_with(|| {
            // Room for every watch in the first host's list: most lists have one host, and
            // its list is then the order.
            let room = if by_host.is_empty() { count } else { 0 };
            by_host.push((key, Vec::with_capacity(room)));
            by_host.len() - 1
        });
        by_host[slot].1.push(i);
    }
    if by_host.len() == 1 {
        return by_host.pop().map(|(_, list)| list).unwrap_or_default();
    }
    let mut order = Vec::with_capacity(count);
    let longest = by_host.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    for round in 0..longest {
        for (_, list) in &by_host {
            if let Some(&i) = list.get(round) {
                order.push(i);
            }
        }
    }
    order
}

/// The request for a watch: URL and headers expanded, stored validators attached.
pub fn request_for(w: &Watch, state: Option<&WatchState>) -> Result<FetchRequest, String> {
    let url = w.expand_url()?;
    let mut headers = HeaderMap::new();
    for (name, value) in &w.settings.headers {
        let value = expand_env(value)?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name `{name}`"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            format!("the value of header `{name}` is not a valid HTTP header value after expanding variables")
        })?;
        headers.insert(name, value);
    }
    // GitHub's API: its JSON media type, and ${GITHUB_TOKEN} when set (higher rate limits).
    if w.settings
        .version
        .as_ref()
        .is_some_and(|v| v.source == crate::config::version::Source::Github)
    {
        headers
            .entry(reqwest::header::ACCEPT)
            .or_insert(HeaderValue::from_static("application/vnd.github+json"));
        if !headers.contains_key(reqwest::header::AUTHORIZATION)
            && let Ok(token) = std::env::var("GITHUB_TOKEN")
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
    }
    // Validators only when there is content to compare against.
    let usable = state.filter(|s| s.content_hash.is_some() || s.missing_selectors.is_some());
    Ok(FetchRequest {
        url,
        headers,
        etag: usable.and_then(|s| s.etag.clone()),
        last_modified: usable.and_then(|s| s.last_modified.clone()),
        timeout: w.settings.timeout,
        max_size: w.settings.max_size,
        insecure: w.settings.insecure,
    })
}

/// Where the database lives: `--db`, else `$FOREWARN_DB`, else the per-user data folder.
pub fn default_db_path() -> PathBuf {
    crate::paths::data_dir().join("forewarn.db")
}

/// Fetches a watch once, unconditionally, for `forewarn test`.
pub async fn fetch_once(w: &Watch) -> Result<(Fetched, Duration), String> {
    let fetcher = Fetcher::new(1)?;
    let req = request_for(w, None)?;
    let start = Instant::now();
    let f = fetcher
        .fetch(&req)
        .await
        .map_err(|e: FetchError| e.to_string())?;
    Ok((f, start.elapsed()))
}
