//! What the judge compares with: a watch's stored state and the snapshot it points at.

use chrono::{DateTime, Utc};

use crate::compare::Hash;

/// What the store remembers about one watch between checks.
#[derive(Debug, Clone, Default)]
pub struct WatchState {
    pub id: i64,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_hash: Option<Hash>,
    pub raw_hash: Option<Hash>,
    pub spec: Option<String>,
    pub last_snapshot_id: Option<i64>,
    pub last_check_at: Option<DateTime<Utc>>,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_change_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_duration_ms: Option<u64>,
    pub consecutive_failures: u32,
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub missing_selectors: Option<Vec<String>>,
    pub missing_since: Option<DateTime<Utc>>,
    pub text_hash: Option<Hash>,
    pub pending_hash: Option<Hash>,
    pub pending_count: u32,
    /// Line patterns learned from two immediate fetches (see [`super::learned`]).
    pub learned_masks: Vec<String>,
    /// The last state of each `expect`ation.
    pub contracts: super::contract::State,
    /// `track_assets`: script and stylesheet URLs at the last check.
    pub assets: Option<Vec<String>>,
    /// `track_requests`: the page's script requests at the last check.
    pub requests: Option<Vec<String>>,
    /// Since when the watch has been told volatile (see [`super::volatile`]).
    pub volatile_since: Option<DateTime<Utc>>,
    /// `verify`: when its last verify failed, and what it said (until one passes).
    pub verify_failed: Option<(DateTime<Utc>, String)>,
    /// The last answered check found the very text stored (a 304, or the same text again):
    /// the page does not churn from one request to the next.
    pub last_identical: bool,
}

/// A stored snapshot's content.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: i64,
    pub taken_at: DateTime<Utc>,
    pub content: String,
}
