//! What one check found ([`Outcome`]): the judge's [`Verdict`] and what the store needs
//! beside it.

use chrono::{DateTime, Utc};

use crate::compare::Hash;
use crate::config::Watch;

/// Assets (removed, added) in a frontend deploy.
pub type AssetChange = (Vec<String>, Vec<String>);

/// The result of checking one watch once, before it is stored.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// The URL as shown: `${VAR}` unexpanded, credentials redacted.
    pub url: String,
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub raw_hash: Option<Hash>,
    pub keep: u32,
    /// Snapshots older than this are pruned too (the newest is always kept).
    pub keep_for: Option<std::time::Duration>,
    /// A new set of learned masks for the watch, when this check learned some.
    pub learned: Option<Vec<String>>,
    /// The two immediate fetches of a changed page differed in most of their lines: the
    /// page is volatile as a whole (see [`super::volatile`]).
    pub churn: bool,
    /// The expectations' new state and what changed in them, when the watch has `expect`.
    pub contracts: Option<(super::contract::State, Vec<super::contract::Change>)>,
    /// `track_assets`: the page's bundles now, and (removed, added) when they changed.
    pub assets: Option<(Vec<String>, Option<AssetChange>)>,
    /// `track_requests`: the page's script requests now, and (removed, added) when they changed.
    pub requests: Option<(Vec<String>, Option<AssetChange>)>,
    /// `screenshot = true`: the rendered page as PNG, kept with the snapshot this check stores.
    pub screenshot: Option<Vec<u8>>,
    /// `verify`: the watch's verify, and the body as fetched (or rendered) for it.
    pub verify: Option<std::sync::Arc<crate::config::Verify>>,
    pub body: Option<Vec<u8>>,
    /// `max_response_time`: a slower answer counts as degraded.
    pub max_response_time: Option<std::time::Duration>,
    /// Where the watch's events are notified, and how loud they are.
    pub alert: std::sync::Arc<crate::config::alert::AlertPolicy>,
    pub verdict: Verdict,
    /// The verdict's content as it will be stored: compressed on the judging thread by
    /// [`Outcome::encode`], so the single database writer does not have to.
    pub stored: Option<Stored>,
}

/// A snapshot's text, compressed for the database.
#[derive(Debug, Clone)]
pub struct Stored {
    /// One of [`crate::codec::encoding`].
    pub encoding: i64,
    pub bytes: Vec<u8>,
    /// The text's length in bytes.
    pub size: usize,
    /// The content hash of the verdict it was taken from.
    pub hash: Hash,
}

impl Outcome {
    /// A check of `w` that took `duration_ms` and came to `verdict`, at the clock's now.
    pub fn new(w: &Watch, duration_ms: u64, verdict: Verdict) -> Outcome {
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
            churn: false,
            contracts: None,
            assets: None,
            requests: None,
            screenshot: None,
            verify: w.settings.verify.clone(),
            body: None,
            max_response_time: w.settings.max_response_time,
            alert: w.settings.alert.clone(),
            verdict,
            stored: None,
        }
    }

    /// A check that failed with `error`.
    pub fn failed(w: &Watch, status: Option<u16>, duration_ms: u64, error: String) -> Outcome {
        Outcome {
            status,
            ..Outcome::new(
                w,
                duration_ms,
                Verdict::Failed {
                    error,
                    blocked: false,
                },
            )
        }
    }

    /// Compresses the content the verdict stores, if any, into `stored`, and lets go of the
    /// text: the verdict's `content` is left empty. Outcomes wait in the queue to the database
    /// writer (up to two batches of them in a cold pass) with their compressed bytes only, a
    /// third of the text or less.
    pub fn encode(&mut self) {
        if let Some((content, hash)) = self.verdict.content_mut() {
            let text = std::mem::take(content);
            let (encoding, bytes) = crate::codec::encode_content(&text);
            self.stored = Some(Stored {
                encoding,
                bytes,
                size: text.len(),
                hash: *hash,
            });
        }
    }
}

/// The content a verdict stores as a new snapshot.
#[derive(Debug, Clone, Copy)]
pub struct NewContent<'a> {
    /// Empty once [`Outcome::encode`] took it (see [`Outcome::stored`]).
    pub text: &'a str,
    pub hash: &'a Hash,
    pub text_hash: &'a Hash,
    /// The extraction settings it was taken with.
    pub spec: &'a str,
    /// Whether it is a change (rather than a baseline).
    pub is_change: bool,
}

impl Verdict {
    /// The content this verdict stores as a snapshot, if it stores one.
    pub fn content(&self) -> Option<NewContent<'_>> {
        let (text, hash, text_hash, spec, is_change) = match self {
            Verdict::Baseline {
                content,
                hash,
                text_hash,
                spec,
                ..
            } => (content, hash, text_hash, spec, false),
            Verdict::Changed {
                content,
                hash,
                text_hash,
                spec,
                ..
            }
            | Verdict::FeedChanged {
                content,
                hash,
                text_hash,
                spec,
                ..
            }
            | Verdict::NewVersion {
                content,
                hash,
                text_hash,
                spec,
                ..
            } => (content, hash, text_hash, spec, true),
            _ => return None,
        };
        Some(NewContent {
            text,
            hash,
            text_hash,
            spec,
            is_change,
        })
    }

    /// The content this verdict stores as a snapshot, and its hash, if it stores one.
    fn content_mut(&mut self) -> Option<(&mut String, &Hash)> {
        match self {
            Verdict::Baseline { content, hash, .. }
            | Verdict::Changed { content, hash, .. }
            | Verdict::FeedChanged { content, hash, .. }
            | Verdict::NewVersion { content, hash, .. } => Some((content, hash)),
            _ => None,
        }
    }
}

/// What a check decided.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// 304: unchanged, verified now.
    NotModified,
    /// 200 with the same content as stored.
    Unchanged { text_hash: Hash },
    /// The text changed, but only in masked (volatile) fragments: recorded, never notified.
    Noise {
        /// A new content hash, when newly learned masks changed what the content hashes to.
        hash: Option<Hash>,
        text_hash: Hash,
        summary: String,
        diff: String,
        masks: Vec<String>,
    },
    /// A change seen on `count` consecutive checks, not yet the `of` that `confirm` asks for.
    Pending { hash: Hash, count: u32, of: u32 },
    /// First sight, or new settings on unchanged upstream content: stored quietly.
    Baseline {
        content: String,
        hash: Hash,
        text_hash: Hash,
        spec: String,
        reason: Option<String>,
    },
    Changed {
        content: String,
        hash: Hash,
        text_hash: Hash,
        spec: String,
        summary: String,
        diff: String,
        added: usize,
        removed: usize,
        previous_snapshot: Option<i64>,
        /// A page's structure: the ids, classes and test ids that went and came.
        structure: Option<crate::extract::structure::Changes>,
        /// JSON: structure changes, and value changes at paths both versions have.
        json: Option<(crate::extract::json::SchemaChanges, Vec<String>)>,
    },
    /// A feed with new or edited entries (after `match` / `exclude`).
    FeedChanged {
        content: String,
        hash: Hash,
        text_hash: Hash,
        spec: String,
        new: Vec<crate::extract::feed::FeedEntry>,
        /// (entry, diff of its text)
        updated: Vec<(crate::extract::feed::FeedEntry, String)>,
        /// New entries beyond `max_entries`, counted but not reported one by one.
        more: usize,
    },
    /// A newer version than the stored latest.
    NewVersion {
        content: String,
        hash: Hash,
        text_hash: Hash,
        spec: String,
        old: String,
        new: crate::extract::version::Release,
        bump: crate::extract::version::Bump,
        /// Versions between the old latest and the new one.
        skipped: Vec<String>,
    },
    /// `select` entries that matched nothing. No snapshot is taken.
    SelectorMissing { selectors: Vec<String> },
    Failed {
        error: String,
        /// A 200 that is really a block or captcha page: reported as `blocked`.
        blocked: bool,
    },
}
