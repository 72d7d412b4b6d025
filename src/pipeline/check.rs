//! One check of one watch within a pass: fetch with retries, judge off the async threads, and
//! confirm a change with a second fetch.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::REFETCH_PAUSE;
use super::request::{fetch_with_retries, request_for};
use crate::config::Watch;
use crate::fetch::politeness::Host;
use crate::fetch::{Fetched, Fetcher};
use crate::judge::{self, History, Outcome, Snapshot, Verdict, WatchState};
use crate::store::Store;

/// What every check of a pass shares.
pub(super) struct Pass {
    pub watches: Arc<Vec<Watch>>,
    /// Previous snapshots are read through the pass's own read-only connection.
    pub reader: Mutex<Store>,
    pub fetcher: Fetcher,
    /// Requests in flight, across all hosts.
    pub global: Semaphore,
    /// Judgments running at once.
    pub cpu: Semaphore,
}

/// The pass reads previous snapshots through its own read-only connection.
impl History for Mutex<Store> {
    fn snapshot(&self, id: i64) -> Option<Snapshot> {
        let store = self.lock().ok()?;
        // A busy moment (the writer's checkpoint) is waited out, never read as "no snapshot".
        let mut pause = std::time::Duration::from_millis(10);
        for _ in 0..60 {
            match store.snapshot(id) {
                Err(crate::store::StoreError::Locked { .. }) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_secs(1));
                }
                done => return done.ok().flatten(),
            }
        }
        None
    }
}

/// One watch, from its request to the outcome the writer stores. `slot` bounds the checks
/// alive at once (and so the bodies and outcomes held): the caller holds it until the writer
/// has the outcome, and it is given back early while a changed page waits to be fetched again.
pub(super) async fn one(
    pass: Arc<Pass>,
    idx: usize,
    state: Option<Arc<WatchState>>,
    host: Arc<Host>,
    slot: &mut Option<OwnedSemaphorePermit>,
) -> Outcome {
    let w = &pass.watches[idx];
    let start = Instant::now();
    let (fetched, conditional) = match request_for(w, state.as_deref()) {
        Ok(req) => {
            let retries = w.settings.retries;
            let conditional = req.etag.is_some() || req.last_modified.is_some();
            let fetched =
                fetch_with_retries(&pass.fetcher, &req, &host, &pass.global, retries).await;
            (fetched, conditional)
        }
        Err(e) => (Err((None, e)), false),
    };
    let duration_ms = start.elapsed().as_millis() as u64;
    let mut outcome = match fetched {
        Ok(body @ Fetched::Body { .. }) => {
            // Boxed: a judgment and a change held across the pause and the refetch are
            // kilobytes of state, and every check's task (most of them a 304) would be as
            // large, copied each time it is moved.
            Box::pin(async {
                let judged = judge(pass.clone(), idx, state, body, duration_ms).await;
                judged.confirm(&pass, idx, &host, slot).await
            })
            .await
        }
        // Nothing was asked conditionally: a 304 is the server's mistake, and there is
        // nothing to compare (left alone, the watch would never get a baseline).
        Ok(Fetched::NotModified { .. }) if !conditional => Outcome::failed(
            w,
            Some(304),
            duration_ms,
            "the server answered 304 Not Modified to a request without validators (no ETag or Last-Modified was sent), so there is nothing to compare: it is misconfigured; forewarn asks again on the next check".into(),
        ),
        Ok(Fetched::NotModified {
            etag,
            last_modified,
        }) => Outcome {
            etag,
            last_modified,
            status: Some(304),
            ..Outcome::new(w, duration_ms, Verdict::NotModified)
        },
        Err((status, e)) => Outcome::failed(w, status, duration_ms, for_watch(w, e)),
    };
    outcome.at = crate::schedule::now();
    outcome
}

/// A judged body: done, or a change to confirm with a second fetch.
enum Judged {
    Done(Outcome),
    Confirm {
        outcome: Outcome,
        state: Option<Arc<WatchState>>,
        /// Where the extracted text of the first fetch is.
        first: judge::First,
    },
}

/// Bodies up to this size are judged on the runtime's own thread (a millisecond or two of
/// work): handing each page to a blocking thread and back, two wake-ups across cores, cost a
/// tenth of a cold pass's CPU. Larger ones go to a blocking thread.
const JUDGE_INLINE_UP_TO: usize = 128 << 10;

/// Judges a body within the pass's limit of judgments at once.
async fn judge(
    pass: Arc<Pass>,
    idx: usize,
    state: Option<Arc<WatchState>>,
    body: Fetched,
    duration_ms: u64,
) -> Judged {
    let _cpu = pass.cpu.acquire().await;
    let (p, known) = (pass.clone(), state.clone());
    let small = matches!(&body, Fetched::Body { body, .. } if body.len() <= JUDGE_INLINE_UP_TO);
    let work = move || {
        let w = &p.watches[idx];
        let (mut o, refetch) = judge::judge_body(w, known.as_deref(), body, &p.reader, duration_ms);
        // A change to confirm is judged again after the refetch: compressing this one
        // would be wasted (the writer compresses it if the refetch fails).
        if refetch.is_none() {
            o.encode();
        }
        (o, refetch)
    };
    let judged = if small {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|p| {
            let msg = p.downcast_ref::<&str>().map(|s| s.to_string());
            msg.or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into())
        })
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    };
    match judged {
        Ok((o, None)) => Judged::Done(o),
        Ok((outcome, Some(first))) => Judged::Confirm {
            outcome,
            state,
            first,
        },
        Err(e) => Judged::Done(Outcome::failed(
            &pass.watches[idx],
            None,
            duration_ms,
            format!("internal error while judging: {e}"),
        )),
    }
}

impl Judged {
    /// Fetches a changed page again after a pause that holds no slot or permit (so the pauses
    /// of many changed pages overlap); lines that differ between the two fetches are learned
    /// as volatile. Without a second body the first judgment stands.
    async fn confirm(
        self,
        pass: &Arc<Pass>,
        idx: usize,
        host: &Host,
        slot: &mut Option<OwnedSemaphorePermit>,
    ) -> Outcome {
        let (o, state, first) = match self {
            Judged::Done(o) => return o,
            Judged::Confirm {
                outcome,
                state,
                first,
            } => (outcome, state, first),
        };
        drop(slot.take());
        tokio::time::sleep(REFETCH_PAUSE).await;
        let second = match request_for(&pass.watches[idx], None) {
            Ok(req) => {
                let _h = host.permit().await;
                let _g = pass.global.acquire().await;
                pass.fetcher.fetch(&req).await.ok()
            }
            Err(_) => None,
        };
        let Some(second @ Fetched::Body { .. }) = second else {
            return o;
        };
        let _cpu = pass.cpu.acquire().await;
        let p = pass.clone();
        // No copy of the outcome is kept against a panic: a huge page would be held twice.
        tokio::task::spawn_blocking(move || {
            let w = &p.watches[idx];
            let mut o = judge::relearn(w, state.as_deref(), o, first, second, &p.reader);
            o.encode();
            o
        })
        .await
        .unwrap_or_else(|e| {
            let w = &pass.watches[idx];
            Outcome::failed(
                w,
                None,
                0,
                format!("internal error while confirming a change: {e}"),
            )
        })
    }
}

/// A fetch error in the watch's terms: a version watch read from a registry has no URL of
/// its own to update, but a `repo` or `package` to check.
fn for_watch(w: &Watch, error: String) -> String {
    use crate::config::version::Source;
    match &w.settings.version {
        Some(v) if !matches!(v.source, Source::Regex | Source::Json) => error.replace(
            "the page is gone; the vendor may have moved it: update the watch's URL",
            "the registry has no such project: check the watch's `repo` or `package` (renamed, moved or private?)",
        ),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    fn size_of<F: std::future::Future>(_: &F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A check's task is as large as the largest state of its future, and is moved whole when
    /// spawned and boxed: a browser page, a judgment and a change waiting for its refetch are
    /// boxed, so a plain fetch (what most checks are) stays small. Unboxed, a check was 4.5 KB
    /// and its fetch 4.5 KB (copied for every 304 of a warm pass).
    #[test]
    fn a_plain_check_is_a_small_future() {
        let mut config = crate::config::Config::default();
        let mut errors = Vec::new();
        let src = "[[watch]]\nname = 'a'\nurl = 'http://127.0.0.1:9/'\n";
        crate::config::parse_file(
            std::path::Path::new("t.toml"),
            src,
            &mut config,
            &mut errors,
        );
        let w = config.watches.remove(0);
        let fetcher = crate::fetch::Fetcher::new(1).unwrap();
        let req = super::request_for(&w, None).unwrap();
        assert!(
            size_of(&fetcher.fetch(&req)) <= 1024,
            "{}",
            size_of(&fetcher.fetch(&req))
        );

        let dir = tempfile::tempdir().unwrap();
        let pass = Arc::new(super::Pass {
            watches: Arc::new(vec![w]),
            reader: std::sync::Mutex::new(
                crate::store::Store::open(&dir.path().join("db")).unwrap(),
            ),
            fetcher,
            global: tokio::sync::Semaphore::new(1),
            cpu: tokio::sync::Semaphore::new(1),
        });
        let host = crate::fetch::politeness::Hosts::new(Default::default(), 1).get("a", None);
        let mut slot = None;
        let check = super::one(pass, 0, None, host, &mut slot);
        assert!(size_of(&check) <= 2048, "{}", size_of(&check));
    }
}
