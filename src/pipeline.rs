//! One pass over the watches: fetch concurrently, judge each result off the async threads,
//! and write every outcome from one thread that owns the SQLite connection, in batched
//! transactions. Results are reported only after they are committed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Semaphore, mpsc};

use crate::compare::{self, Hash};
use crate::config::types::expand_env;
use crate::config::{HostSettings, Watch};
use crate::event::{Event, Outcome, Verdict, rfc3339};
use crate::extract::{self, Extracted};
use crate::fetch::politeness::{Host, Hosts};
use crate::fetch::{FetchError, FetchRequest, Fetched, Fetcher, retry};
use crate::learned;
use crate::store::{Store, StoreError, WatchState};

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
/// [`crate::report::is_quiet`]), to be listed in watchlist order when the pass ends.
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
                .filter(|e| !crate::report::is_quiet(&e.kind))
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
        Verdict::Changed { .. } => ("changed", None),
        Verdict::FeedChanged { .. } => ("new_entries", None),
        Verdict::NewVersion { .. } => ("new_version", None),
        Verdict::SelectorMissing { .. } => ("selector_missing", None),
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

/// Event kinds that say a watch changed: a feed with three new entries is one changed watch.
const CHANGE_KINDS: &[&str] = &[
    "changed",
    "new_entry",
    "entry_updated",
    "new_version",
    "contract_broken",
    "schema_changed",
    "deploy_detected",
];

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
                if own.iter().any(|e| CHANGE_KINDS.contains(&e.kind.as_str())) {
                    report.changed += 1;
                }
                report.failed += own
                    .iter()
                    .filter(|e| matches!(e.kind.as_str(), "error" | "blocked"))
                    .count();
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
                            judge_body(w, known.as_deref(), fetched, &db, duration_ms);
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
                                        let mut o = relearn(
                                            w,
                                            state.as_deref(),
                                            o,
                                            &first,
                                            second,
                                            &reader,
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
                        Err(e) => failed(
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
                    ..outcome(w, duration_ms, Verdict::NotModified)
                },
                Err((status, e)) => failed(w, status, duration_ms, e),
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

fn outcome(w: &Watch, duration_ms: u64, verdict: Verdict) -> Outcome {
    Outcome {
        name: w.name().to_string(),
        url: w.url_display(),
        at: crate::schedule::now(),
        duration_ms,
        status: None,
        etag: None,
        last_modified: None,
        raw_hash: None,
        keep: w.settings.keep,
        keep_for: w.settings.keep_for,
        learned: None,
        contracts: None,
        assets: None,
        alert: w.settings.alert.clone(),
        verdict,
        stored: None,
    }
}

fn failed(w: &Watch, status: Option<u16>, duration_ms: u64, error: String) -> Outcome {
    Outcome {
        status,
        ..outcome(
            w,
            duration_ms,
            Verdict::Failed {
                error,
                blocked: false,
            },
        )
    }
}

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
        .is_some_and(|v| v.source == crate::extract::version::Source::Github)
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

/// Extracts content from a body. A 0-byte 200 is a failure (a broken server or proxy, not a
/// page that lost its content); a page whose extracted text is empty is valid content.
pub fn extract_body(
    w: &Watch,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Extracted, String> {
    if body.is_empty() {
        return Err("the server answered 200 with an empty body: the last good snapshot is kept; if the page is really empty now, check it in a browser".into());
    }
    if let Some(v) = &w.settings.version {
        let releases = v.releases(body)?;
        if releases.is_empty() {
            return Err(format!(
                "no version found{}: check `package`/`repo`, or `include`, `exclude` and `prerelease`",
                if v.prerelease {
                    ""
                } else {
                    " (prereleases are skipped)"
                }
            ));
        }
        let text = releases
            .iter()
            .map(|r| serde_json::to_string(r).expect("releases serialise") + "\n")
            .collect();
        return Ok(Extracted {
            text,
            format: "version",
            missing: Vec::new(),
        });
    }
    extract::extract(&w.settings.spec, body, content_type).map_err(|e| e.to_string())
}

/// Decides what a 200 means for a watch: baseline, unchanged, changed or missing selector.
/// Also returns the extracted text when a detected change should be confirmed by a refetch.
fn judge_body(
    w: &Watch,
    state: Option<&WatchState>,
    fetched: Fetched,
    reader: &Mutex<Store>,
    duration_ms: u64,
) -> (Outcome, Option<String>) {
    let Fetched::Body {
        status,
        body,
        content_type,
        etag,
        last_modified,
    } = fetched
    else {
        unreachable!("judge_body takes bodies")
    };
    let raw_hash = compare::hash(&body);
    let base = Outcome {
        status: Some(status),
        etag,
        last_modified,
        raw_hash: Some(raw_hash),
        ..outcome(w, duration_ms, Verdict::NotModified)
    };
    let ex = match extract_body(w, &body, content_type.as_deref()) {
        Ok(ex) => ex,
        Err(error) => {
            let o = Outcome {
                verdict: Verdict::Failed {
                    error,
                    blocked: false,
                },
                ..base
            };
            return (o, None);
        }
    };
    if let Some(phrase) = blocked_page(w, &ex) {
        let o = Outcome {
            verdict: Verdict::Failed {
                error: format!(
                    "blocked: the server answered with a block or captcha page (\"{phrase}\"), not the page; the last good snapshot is kept. Check less often, or set `headers` the site accepts"
                ),
                blocked: true,
            },
            ..base
        };
        return (o, None);
    }
    // Contracts hold or not on every successful fetch, changed content or not.
    let contracts = (!w.settings.expect.is_empty()).then(|| {
        let decoded = extract::decode(&body, content_type.as_deref(), true).unwrap_or_default();
        let page = if w.settings.expect.text.is_empty() && w.settings.expect.absent.is_empty() {
            String::new()
        } else {
            extract::page_text(&body, content_type.as_deref())
        };
        let previous = state.map(|s| s.contracts.clone()).unwrap_or_default();
        crate::contract::evaluate(&w.settings.expect, status, &decoded, &page, &previous)
    });
    let assets = (w.settings.track_assets && ex.format == "html").then(|| {
        let decoded = extract::decode(&body, content_type.as_deref(), true).unwrap_or_default();
        let now = crate::contract::assets(&decoded);
        let change = state
            .and_then(|s| s.assets.as_deref())
            .and_then(|old| crate::contract::asset_changes(old, &now));
        (now, change)
    });
    let refetch = (w.settings.confirm_refetch
        && ex.format == "html"
        && state.is_some_and(|s| s.content_hash.is_some()))
    .then(|| ex.text.clone());
    let verdict = decide(
        w,
        state,
        ex,
        raw_hash,
        &body,
        content_type.as_deref(),
        reader,
    );
    let refetch =
        refetch.filter(|_| matches!(verdict, Verdict::Changed { .. } | Verdict::Pending { .. }));
    (
        Outcome {
            verdict,
            contracts,
            assets,
            ..base
        },
        refetch,
    )
}

/// Phrases of block, challenge and captcha pages that answer 200.
const BLOCK_PHRASES: &[&str] = &[
    "access denied",
    "attention required",
    "just a moment...",
    "checking your browser",
    "verify you are human",
    "verify you are a human",
    "are you a robot",
    "complete the captcha",
    "enable javascript and cookies to continue",
    "request blocked",
    "unusual traffic from your computer",
    "pardon our interruption",
];

/// The block phrase a short whole-page extract carries, if it looks like a block page. A
/// `select`ed part is the user's choice and never second-guessed; a long page that merely
/// mentions a captcha is a page.
fn blocked_page(w: &Watch, ex: &Extracted) -> Option<&'static str> {
    if !w.settings.spec.select.is_empty() || ex.format != "html" || ex.text.len() > 3000 {
        return None;
    }
    let lower = ex.text.to_lowercase();
    BLOCK_PHRASES.iter().copied().find(|p| lower.contains(p))
}

/// Pause before the confirming refetch of a changed page.
const REFETCH_PAUSE: Duration = Duration::from_millis(250);

/// After a refetch: lines that differ between the two immediate fetches are volatile. They are
/// learned as masks; if, with them, the page matches the stored snapshot, the change was noise.
fn relearn(
    w: &Watch,
    state: Option<&WatchState>,
    mut o: Outcome,
    first: &str,
    second: Fetched,
    reader: &Mutex<Store>,
) -> Outcome {
    let (
        Some(state),
        Fetched::Body {
            body, content_type, ..
        },
    ) = (state, second)
    else {
        return o;
    };
    let Ok(ex2) = extract_body(w, &body, content_type.as_deref()) else {
        return o;
    };
    if !ex2.missing.is_empty() {
        return o;
    }
    let known = learned::compile(&state.learned_masks);
    let new = learned::learn(first, &ex2.text, &known);
    if new.is_empty() {
        return o;
    }
    let mut all = state.learned_masks.clone();
    all.extend(new);
    if all.len() > learned::MAX_LEARNED {
        all.drain(..all.len() - learned::MAX_LEARNED);
    }
    let res = learned::compile(&all);
    let hash = content_hash(&w.settings.spec, &res, first);
    let previous = previous_snapshot(Some(state), reader);
    o.learned = Some(all);
    if previous
        .as_ref()
        .is_some_and(|s| content_hash(&w.settings.spec, &res, &s.content) == hash)
    {
        let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
        let d = compare::diff(
            old_text,
            first,
            &label(w, previous.as_ref()),
            &label(w, None),
        );
        o.verdict = Verdict::Noise {
            hash: Some(hash),
            text_hash: compare::hash(first.as_bytes()),
            summary: "only fragments that differ between two immediate fetches changed (learned masks); not a change".into(),
            diff: d.unified,
            masks: vec!["learned".into()],
        };
    } else {
        match &mut o.verdict {
            Verdict::Changed { hash: h, .. } | Verdict::Pending { hash: h, .. } => *h = hash,
            _ => {}
        }
    }
    o
}

fn decide(
    w: &Watch,
    state: Option<&WatchState>,
    ex: Extracted,
    raw_hash: Hash,
    body: &[u8],
    content_type: Option<&str>,
    reader: &Mutex<Store>,
) -> Verdict {
    if !ex.missing.is_empty() {
        return Verdict::SelectorMissing {
            selectors: ex.missing,
        };
    }
    if ex.format == "feed" {
        return decide_feed(w, state, ex, reader);
    }
    if ex.format == "version" {
        return decide_version(w, state, ex, reader);
    }
    let text_hash = compare::hash(ex.text.as_bytes());
    let spec = w.settings.spec.fingerprint();
    // The very text stored, under the same settings: unchanged, without masking it again (a
    // rotated ETag, a file rewritten byte for byte).
    if state.is_some_and(|s| {
        s.content_hash.is_some()
            && s.text_hash == Some(text_hash)
            && s.spec.as_deref() == Some(spec.as_str())
    }) {
        return Verdict::Unchanged { text_hash };
    }
    let Some((state, stored_hash)) = state.and_then(|s| s.content_hash.map(|h| (s, h))) else {
        // First sight stores the text's own hash: the masked one is taken from the snapshot
        // when a later text differs (below), so a cold pass never runs the masks.
        return Verdict::Baseline {
            content: ex.text,
            hash: text_hash,
            text_hash,
            spec,
            reason: None,
        };
    };
    let learned = learned::compile(&state.learned_masks);
    let hash = content_hash(&w.settings.spec, &learned, &ex.text);
    let mut read_before = None;
    let old_hash = if state.text_hash == Some(stored_hash) {
        // Stored unmasked (first sight), or masks that hid nothing: mask the stored text now,
        // under the settings it was extracted with.
        let old_spec = match state.spec.as_deref() {
            Some(s) if s != spec => extract::ExtractSpec::from_fingerprint(s),
            _ => None,
        };
        let old = previous_snapshot(Some(state), reader);
        let h = old.as_ref().map_or(stored_hash, |o| {
            content_hash(
                old_spec.as_ref().unwrap_or(&w.settings.spec),
                &learned,
                &o.content,
            )
        });
        read_before = Some(old);
        h
    } else {
        stored_hash
    };
    let mut previous = || {
        read_before
            .take()
            .unwrap_or_else(|| previous_snapshot(Some(state), reader))
    };
    if old_hash == hash {
        if state.text_hash.is_none_or(|t| t == text_hash) {
            return Verdict::Unchanged { text_hash };
        }
        // Only masked fragments differ: recorded as noise, with the real diff, never notified.
        let previous = previous();
        let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
        let d = compare::diff(
            old_text,
            &ex.text,
            &label(w, previous.as_ref()),
            &label(w, None),
        );
        let masks = changed_masks(&w.settings.spec.masks, old_text, &ex.text);
        return Verdict::Noise {
            // The masked hash, now known: the stored one may have been the old text's own.
            hash: Some(hash),
            text_hash,
            summary: format!(
                "only volatile fragments changed ({}); not a change",
                if masks.is_empty() {
                    "masked".to_string()
                } else {
                    masks.join(", ")
                }
            ),
            diff: d.unified,
            masks,
        };
    }
    let mut note = "";
    if state.spec.as_deref().is_some_and(|s| s != spec) {
        // The user edited the watch's settings: unchanged upstream content is a new baseline,
        // not an alert. Upstream changed when the body under the old settings differs.
        let upstream_same = state.raw_hash == Some(raw_hash)
            || state
                .spec
                .as_deref()
                .and_then(extract::ExtractSpec::from_fingerprint)
                .and_then(|old| {
                    let ex = extract::extract(&old, body, content_type).ok()?;
                    Some(content_hash(&old, &learned, &ex.text))
                })
                .is_some_and(|h| h == old_hash);
        if upstream_same {
            return Verdict::Baseline {
                content: ex.text,
                hash,
                text_hash,
                spec,
                reason: Some(
                    "the watch's settings changed (select, remove, ignore, masks or kind)".into(),
                ),
            };
        }
        note = " (the watch's settings changed too)";
    } else if w.settings.confirm > 1 {
        // Persistence: a change must be seen on `confirm` consecutive checks.
        let count = if state.pending_hash == Some(hash) {
            state.pending_count + 1
        } else {
            1
        };
        if count < w.settings.confirm {
            return Verdict::Pending {
                hash,
                count,
                of: w.settings.confirm,
            };
        }
    }
    let previous = previous();
    let old_text = previous.as_ref().map_or("", |s| s.content.as_str());
    let d = compare::diff(
        old_text,
        &ex.text,
        &label(w, previous.as_ref()),
        &label(w, None),
    );
    let mut summary = format!("{}{note}", compare::summary(&d, &w.settings.spec.select));
    let json = (ex.format == "json")
        .then(|| json_changes(old_text, &ex.text))
        .flatten();
    if let Some((_, values)) = &json
        && let Some(first) = values.first()
    {
        summary = format!(
            "{} value{} changed: {first}{}{note}",
            values.len(),
            if values.len() == 1 { "" } else { "s" },
            if values.len() > 1 { ", ..." } else { "" }
        );
    }
    Verdict::Changed {
        json,
        content: ex.text,
        hash,
        text_hash,
        spec,
        summary,
        diff: d.unified,
        added: d.added,
        removed: d.removed,
        previous_snapshot: previous.map(|s| s.id),
    }
}

/// A feed is compared entry by entry: new entries and edited ones are news; entries that left
/// the feed's window, reordering and feed-level fields are not.
fn decide_feed(
    w: &Watch,
    state: Option<&WatchState>,
    ex: Extracted,
    reader: &Mutex<Store>,
) -> Verdict {
    use crate::extract::feed;
    let entries = feed::from_snapshot(&ex.text).unwrap_or_default();
    let text_hash = compare::hash(ex.text.as_bytes());
    // Order-free identity: the same entries in another order hash the same.
    let mut sorted = entries.clone();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let hash = compare::hash(feed::to_snapshot(&sorted).as_bytes());
    let spec = w.settings.spec.fingerprint();
    let baseline = |reason: Option<String>| Verdict::Baseline {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec: spec.clone(),
        reason,
    };
    let state = match settled(state, hash) {
        Settled::FirstSight => return baseline(None),
        Settled::Same => return Verdict::Unchanged { text_hash },
        Settled::Compare(state) => state,
    };
    let previous = previous_snapshot(Some(state), reader);
    let Some(old) = previous
        .as_ref()
        .and_then(|s| feed::from_snapshot(&s.content))
    else {
        return baseline(Some("the watch is now read as a feed".into()));
    };
    let changes = feed::compare(&old, &entries);
    let mut new: Vec<_> = changes
        .new
        .into_iter()
        .filter(|e| w.settings.feed.wants(&e.title))
        .collect();
    let updated: Vec<_> = changes
        .updated
        .into_iter()
        .filter(|(_, e)| w.settings.feed.wants(&e.title))
        .map(|(before, after)| {
            let d = compare::diff(&before.render(), &after.render(), "before", "after");
            (after, d.unified)
        })
        .collect();
    if new.is_empty() && updated.is_empty() {
        // Only the window moved, or only entries that `match` / `exclude` leave out.
        return Verdict::Unchanged { text_hash };
    }
    let more = new.len().saturating_sub(w.settings.feed.max_entries);
    new.truncate(w.settings.feed.max_entries);
    Verdict::FeedChanged {
        content: ex.text,
        hash,
        text_hash,
        spec,
        new,
        updated,
        more,
    }
}

/// A version watch reports a newer latest version; other movement in the list (a backport on
/// an older branch, a yanked release) is stored quietly.
fn decide_version(
    w: &Watch,
    state: Option<&WatchState>,
    ex: Extracted,
    reader: &Mutex<Store>,
) -> Verdict {
    use crate::extract::version::{Release, bump, compare};
    let parse = |t: &str| -> Vec<Release> {
        t.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let releases = parse(&ex.text);
    let text_hash = compare::hash(ex.text.as_bytes());
    let hash = text_hash;
    let spec = w.settings.spec.fingerprint();
    let baseline = |reason: Option<String>| Verdict::Baseline {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec: spec.clone(),
        reason,
    };
    let state = match settled(state, hash) {
        Settled::FirstSight => return baseline(None),
        Settled::Same => return Verdict::Unchanged { text_hash },
        Settled::Compare(state) => state,
    };
    let old = previous_snapshot(Some(state), reader)
        .map(|s| parse(&s.content))
        .unwrap_or_default();
    let (Some(old_latest), Some(latest)) = (old.last(), releases.last()) else {
        return baseline(Some("the stored version list was unreadable".into()));
    };
    if compare(&latest.version, &old_latest.version) != std::cmp::Ordering::Greater {
        return baseline(Some(format!(
            "the version list changed; the latest is still {}",
            old_latest.version
        )));
    }
    let skipped = releases
        .iter()
        .filter(|r| {
            compare(&r.version, &old_latest.version) == std::cmp::Ordering::Greater
                && compare(&r.version, &latest.version) == std::cmp::Ordering::Less
        })
        .map(|r| r.version.clone())
        .collect();
    Verdict::NewVersion {
        content: ex.text.clone(),
        hash,
        text_hash,
        spec,
        old: old_latest.version.clone(),
        bump: bump(&old_latest.version, &latest.version),
        new: latest.clone(),
        skipped,
    }
}

/// Where an entry- or version-level comparison stands before comparing anything.
enum Settled<'a> {
    /// Nothing stored yet: store a baseline.
    FirstSight,
    /// The same content as stored.
    Same,
    /// Different content: compare with this state.
    Compare(&'a WatchState),
}

fn settled(state: Option<&WatchState>, hash: Hash) -> Settled<'_> {
    match state.filter(|s| s.content_hash.is_some()) {
        None => Settled::FirstSight,
        Some(s) if s.content_hash == Some(hash) => Settled::Same,
        Some(s) => Settled::Compare(s),
    }
}

/// The hash that decides "changed": the text with learned, then built-in masks applied.
fn content_hash(spec: &extract::ExtractSpec, learned: &[regex::Regex], text: &str) -> Hash {
    compare::hash(spec.masked(&learned::apply(learned, text)).as_bytes())
}

/// JSON: structure changes, and value changes that are not just the structure changing
/// (a field that appeared or vanished is reported as structure).
fn json_changes(
    old: &str,
    new: &str,
) -> Option<(crate::extract::json::SchemaChanges, Vec<String>)> {
    use crate::extract::json;
    let a: serde_json::Value = serde_json::from_str(old).ok()?;
    let b: serde_json::Value = serde_json::from_str(new).ok()?;
    let (sa, sb) = (json::structure(&a), json::structure(&b));
    let mut schema = json::schema_changes(&sa, &sb);
    schema.api = json::openapi_changes(&a, &b);
    let general = |p: &str| {
        let mut out = String::new();
        let mut depth = 0;
        for c in p.chars() {
            match c {
                '[' => {
                    depth += 1;
                    if depth == 1 {
                        out.push_str("[*]");
                    }
                }
                ']' => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let values: Vec<String> = json::value_changes(&a, &b)
        .into_iter()
        .filter(|line| {
            let path = line.trim_start_matches('`').split('`').next().unwrap_or("");
            let g = general(path);
            // A change of type is structure; a field that came or went is structure too.
            match (sa.get(&g), sb.get(&g)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            }
        })
        .collect();
    Some((schema, values))
}

/// The snapshot a watch's stored content came from, through the pass's read connection.
fn previous_snapshot(
    state: Option<&WatchState>,
    reader: &Mutex<Store>,
) -> Option<crate::store::Snapshot> {
    let id = state?.last_snapshot_id?;
    reader.lock().ok()?.snapshot(id).ok().flatten()
}

/// A diff header: the watch and the snapshot's time (now for the new side).
fn label(w: &Watch, snapshot: Option<&crate::store::Snapshot>) -> String {
    match snapshot {
        Some(s) => format!("{} {}", w.name(), rfc3339(s.taken_at)),
        None => format!("{} {}", w.name(), rfc3339(crate::schedule::now())),
    }
}

/// The masks whose fragments differ between two texts.
fn changed_masks(masks: &extract::MaskSet, old: &str, new: &str) -> Vec<String> {
    let before = masks.explain(old);
    let after = masks.explain(new);
    masks
        .names()
        .iter()
        .filter(|name| {
            let pick = |v: &[(&extract::masks::Mask, Vec<String>)]| {
                v.iter()
                    .find(|(m, _)| m.name == **name)
                    .map(|(_, f)| f.clone())
            };
            pick(&before) != pick(&after)
        })
        .map(|n| n.to_string())
        .collect()
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
