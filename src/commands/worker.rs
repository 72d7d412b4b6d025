//! One of several workers on a shared (PostgreSQL) database: `forewarn watch` and
//! `check --due` register themselves, claim the due watches they check (a lease per watch),
//! renew their leases while they run, and take their share of each host's politeness limits.
//! On SQLite there is one worker at most (the database lock), and none of this is needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Config, Watch};
use crate::pipeline::Limits;
use crate::store::{Claim, Engine, Store, WorkerRow, lease::Held};

/// How often a worker renews its leases and says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);

pub struct Worker {
    pub id: String,
    row: WorkerRow,
    /// Live workers (this one included), as last counted by the heartbeat.
    live: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

/// A digest of the watchlist files (their paths and contents): workers on one database
/// should run the same one.
pub fn watchlist_digest(config: &Config) -> String {
    let mut files = config.files.clone();
    files.sort();
    let mut h = blake3::Hasher::new();
    for f in &files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(&std::fs::read(f).unwrap_or_default());
    }
    h.finalize().to_hex()[..12].to_string()
}

impl Worker {
    /// Registers this process as a worker when the database is shared (PostgreSQL); `None`
    /// on SQLite. The second value says how this worker's watchlist differs from the other
    /// live workers', if it does.
    pub fn join(
        store: &Store,
        command: &str,
        config: &Config,
    ) -> anyhow::Result<Option<(Worker, Option<String>)>> {
        if store.engine() != Engine::Postgres {
            return Ok(None);
        }
        let now = crate::schedule::now();
        let host = crate::store::host_name();
        let row = WorkerRow {
            id: format!("{host}:{}:{}", std::process::id(), now.timestamp_millis()),
            host,
            pid: i64::from(std::process::id()),
            command: command.to_string(),
            watchlist: watchlist_digest(config),
            watches: config.watches.len() as i64,
            started_at: now,
            last_seen: now,
            stopped_at: None,
        };
        store.register_worker(&row)?;
        let (others, warning) = compare(store, &row)?;
        let live = Arc::new(AtomicUsize::new(others.max(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat =
            spawn_heartbeat(store.second()?, row.id.clone(), live.clone(), stop.clone());
        let worker = Worker {
            id: row.id.clone(),
            row,
            live,
            stop,
            heartbeat: Some(heartbeat),
        };
        Ok(Some((worker, warning)))
    }

    /// The watchlists were reloaded: the database records the new digest; says how it
    /// differs from the other workers', if it does.
    pub fn rejoin(&mut self, store: &Store, config: &Config) -> anyhow::Result<Option<String>> {
        self.row.watchlist = watchlist_digest(config);
        self.row.watches = config.watches.len() as i64;
        self.row.last_seen = crate::schedule::now();
        store.register_worker(&self.row)?;
        Ok(compare(store, &self.row)?.1)
    }

    /// The live workers, this one included.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// Claims this worker's share of the due watches (positions in `pool`, with the last
    /// check each was planned from); returns the positions it got. The store holds the
    /// leases until the pass stores each outcome.
    pub fn claim(
        &self,
        store: &mut Store,
        pool: &[Watch],
        due: &[(u32, Option<DateTime<Utc>>)],
    ) -> anyhow::Result<Vec<u32>> {
        let share = due.len().div_ceil(self.live());
        let wanted: Vec<Claim<'_>> = due
            .iter()
            .map(|&(i, last_check)| {
                let w = &pool[i as usize];
                Claim {
                    name: w.name(),
                    last_check,
                    ttl_ms: 2 * w.settings.timeout.as_millis() as i64 + 5_000,
                }
            })
            .collect();
        let got = store.claim(&self.id, &wanted, share, crate::schedule::now())?;
        let names = got.iter().map(|&k| wanted[k].name.to_string()).collect();
        store.hold(Some(Held {
            owner: self.id.clone(),
            names,
        }));
        Ok(got.into_iter().map(|k| due[k].0).collect())
    }

    /// Each worker takes its share of every host's limits: with N workers, a host sees at
    /// most what one worker alone would send it (concurrency divided, intervals multiplied).
    pub fn share(&self, limits: &mut Limits) {
        let n = self.live();
        if n <= 1 {
            return;
        }
        limits.per_host = (limits.per_host / n).max(1);
        for h in limits.hosts.values_mut() {
            h.concurrency = h.concurrency.map(|c| (c / n).max(1));
            h.interval = h.interval.map(|i| i * n as u32);
        }
    }

    /// Stops the heartbeat; the worker's leases end now and `list` shows it stopped.
    pub fn leave(mut self, store: &Store) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        if let Err(e) = store.unregister_worker(&self.id, crate::schedule::now()) {
            eprintln!(
                "forewarn: this worker's leases were not released ({e}); they end by themselves"
            );
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The live workers (this one included), and a warning naming those whose watchlist
/// differs from `me`'s.
fn compare(store: &Store, me: &WorkerRow) -> anyhow::Result<(usize, Option<String>)> {
    let live = live_workers(store, crate::schedule::now())?;
    let differs = live
        .iter()
        .filter(|w| w.id != me.id && w.watchlist != me.watchlist)
        .map(|w| format!("{} (pid {}, watchlist {})", w.host, w.pid, w.watchlist))
        .collect::<Vec<_>>();
    let warning = (!differs.is_empty()).then(|| {
        format!(
            "this worker's watchlist ({}) differs from that of {}: workers on one database should run the same watchlist files",
            me.watchlist,
            differs.join(", ")
        )
    });
    Ok((live.len(), warning))
}

/// The workers seen lately and not stopped.
pub fn live_workers(store: &Store, now: DateTime<Utc>) -> anyhow::Result<Vec<WorkerRow>> {
    Ok(store
        .workers()?
        .into_iter()
        .filter(|w| {
            w.stopped_at.is_none()
                && (now - w.last_seen).num_milliseconds() < crate::store::lease::GONE_AFTER_MS
        })
        .collect())
}

/// Renews the worker's leases every [`HEARTBEAT`] on its own connection, and counts the live
/// workers; a database that is down is waited out (the pass's writer says so).
fn spawn_heartbeat(
    store: Store,
    id: String,
    live: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("forewarn-heartbeat".into())
        .spawn(move || {
            let tick = Duration::from_millis(100);
            let mut waited = HEARTBEAT;
            while !stop.load(Ordering::Relaxed) {
                if waited >= HEARTBEAT {
                    waited = Duration::ZERO;
                    let now = crate::schedule::now();
                    if store.renew(&id, now).is_ok()
                        && let Ok(w) = live_workers(&store, now)
                    {
                        live.store(w.len().max(1), Ordering::Relaxed);
                    }
                }
                std::thread::sleep(tick);
                waited += tick;
            }
        })
        .expect("start the heartbeat thread")
}
