//! The `check --due` gate: cron starts `check --due` every few minutes, and most of those runs
//! find nothing due. After each run the earliest next due time is stored with a stamp of the
//! watchlist files (paths, sizes, modification times). The next run compares the stamp, reads
//! one row and, when nothing can be due yet, exits without parsing the watchlists.
//!
//! The gate errs on the side of checking: any doubt (a file edited, added or removed, another
//! command having run, an unreadable row) means the full computation.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::Store;

const KEY: &str = "due_gate";

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Gate {
    stamp: Vec<(PathBuf, u64, i128)>,
    /// Milliseconds since the epoch: nothing is due before this.
    next_due: i64,
}

/// The watchlist files as they are now, or `None` when they cannot be listed.
fn stamp(watchlists: &[PathBuf]) -> Option<Vec<(PathBuf, u64, i128)>> {
    let files = crate::config::discover(watchlists).ok()?;
    files
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(&f).ok()?;
            let mtime = m
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_nanos() as i128;
            Some((f, m.len(), mtime))
        })
        .collect()
}

/// True when the stored gate proves that nothing is due at `now`.
pub fn nothing_due(db: &Path, watchlists: &[PathBuf], now: DateTime<Utc>) -> bool {
    let Ok(Some(store)) = Store::open_read_only(db) else {
        return false;
    };
    let Some(gate) = store
        .meta(KEY)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_str::<Gate>(&v).ok())
    else {
        return false;
    };
    now.timestamp_millis() < gate.next_due && stamp(watchlists).as_ref() == Some(&gate.stamp)
}

/// Records the earliest next due time for the watchlists as they are now.
pub fn record(store: &Store, watchlists: &[PathBuf], next_due: DateTime<Utc>) {
    let Some(stamp) = stamp(watchlists) else {
        return;
    };
    let gate = Gate {
        stamp,
        next_due: next_due.timestamp_millis(),
    };
    if let Ok(v) = serde_json::to_string(&gate) {
        // Best effort: without a gate the next run just does the full computation.
        let _ = store.set_meta(KEY, &v);
    }
}

/// Forgets the gate (any `check` that is not `--due` moves due times).
pub fn clear(store: &Store) {
    let _ = store.set_meta(KEY, "null");
}
