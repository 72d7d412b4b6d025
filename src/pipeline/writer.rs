//! The pass's database writer: one thread owns the SQLite connection, writes outcomes in
//! batched transactions, and hands each check to the sink once its batch is committed.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::mpsc::Receiver;

use super::verify::Job;
use super::{BATCH, PassReport, Sink};
use crate::event::Event;
use crate::judge::{Outcome, Verdict};
use crate::store::{Store, StoreError};

/// What the writer gives back: the store, the sink, the counts of what it committed, and the
/// error that stopped it, if one did.
pub(super) type Written<S> = (Store, S, PassReport, Option<StoreError>, Vec<Job>);

/// How long a batch waits for a busy database before the pass gives up on it. The pass's own
/// connections (the judges' reader, this writer) never hold the write lock against each
/// other for long; only another program can hold it this long.
const BUSY_PATIENCE: Duration = Duration::from_secs(120);

/// Starts the writer; it ends when every sender of `rx` is gone, or at the first store error.
pub(super) fn spawn<S: Sink>(
    mut store: Store,
    mut sink: S,
    mut rx: Receiver<(usize, Outcome)>,
    bar: Option<ProgressBar>,
) -> JoinHandle<Written<S>> {
    std::thread::spawn(move || {
        let mut report = PassReport::default();
        let mut batch = Vec::with_capacity(BATCH);
        let mut jobs = Vec::new();
        while receive(&mut rx, &mut batch) {
            if let Some(b) = &bar {
                b.inc(batch.len() as u64);
            }
            let events = match apply_patiently(&mut store, &batch) {
                Ok(ev) => ev,
                Err(e) => return (store, sink, report, Some(e), jobs),
            };
            hand_over(&batch, &events, &mut report, &mut sink, &mut jobs);
            sink.committed();
            batch.clear();
            store.checkpoint(false);
        }
        (store, sink, report, None, jobs)
    })
}

/// Applies a batch, trying again while the database is busy (the transaction rolled back,
/// so the batch is applied whole or not at all), for up to [`BUSY_PATIENCE`].
fn apply_patiently(
    store: &mut Store,
    batch: &[(usize, Outcome)],
) -> Result<Vec<Event>, StoreError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match store.apply_batch(batch.iter().map(|(_, o)| o)) {
            Err(StoreError::Locked { .. }) if start.elapsed() < BUSY_PATIENCE => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}

/// How long a batch gathers outcomes after its first. A transaction per handful of outcomes
/// cost the warm pass over 10,000 watches a sixth of its CPU; a result waits this long at most.
const GATHER: Duration = Duration::from_millis(20);

/// How long the writer sleeps between looks at the channel while gathering: a quarter of
/// [`GATHER`]; a batch of [`BATCH`] outcomes takes longer than that to arrive.
const NAP: Duration = Duration::from_millis(5);

/// Waits for one outcome, then gathers more for up to [`GATHER`], up to a batch. False when
/// the pass is over.
fn receive(rx: &mut Receiver<(usize, Outcome)>, batch: &mut Vec<(usize, Outcome)>) -> bool {
    use tokio::sync::mpsc::error::TryRecvError;
    let Some(first) = rx.blocking_recv() else {
        return false;
    };
    batch.push(first);
    let deadline = Instant::now() + GATHER;
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(next) => batch.push(next),
            Err(TryRecvError::Empty) => match deadline.checked_duration_since(Instant::now()) {
                // Gathered in a few naps, not a millisecond's: each nap is a context switch
                // (a warm pass over 10,000 watches napped 1,400 times).
                Some(left) if !left.is_zero() => std::thread::sleep(left.min(NAP)),
                _ => break,
            },
            Err(_) => break,
        }
    }
    true
}

/// Counts each committed check and gives it to the sink with its own events: a batch's events
/// come check by check, and each check's events name its watch.
fn hand_over<S: Sink>(
    batch: &[(usize, Outcome)],
    events: &[Event],
    report: &mut PassReport,
    sink: &mut S,
    jobs: &mut Vec<Job>,
) {
    let mut rest = events;
    for (position, o) in batch {
        let n = rest.iter().take_while(|e| e.watch == o.name).count();
        let (own, next) = rest.split_at(n);
        rest = next;
        report.checked += 1;
        match o.verdict {
            Verdict::NotModified => report.not_modified += 1,
            Verdict::Baseline { .. } => report.baselines += 1,
            _ => {}
        }
        if own.iter().any(|e| e.kind.is_change()) {
            report.changed += 1;
        }
        // Failed checks, shown or not (an alerted failure is printed once a day).
        if matches!(o.verdict, Verdict::Failed { .. }) {
            report.failed += 1;
            if !own.iter().any(|e| e.kind.is_failure()) {
                report.failed_quietly += 1;
            }
        }
        let verifying: Vec<(i64, crate::event::EventKind)> = own
            .iter()
            .filter(|e| e.detail.get("verify").is_some())
            .filter_map(|e| Some((e.id?, e.kind)))
            .collect();
        if !verifying.is_empty() {
            jobs.push(Job {
                position: *position,
                events: verifying,
                body: o.body.clone(),
            });
        }
        sink.check(*position, o, own);
    }
    debug_assert!(rest.is_empty(), "events of no check in the batch");
}
