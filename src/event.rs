//! What one check found ([`Outcome`]) and what gets reported ([`Event`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::compare::Hash;

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
    /// The expectations' new state and what changed in them, when the watch has `expect`.
    pub contracts: Option<(crate::contract::State, Vec<crate::contract::Change>)>,
    /// `track_assets`: the page's bundles now, and (removed, added) when they changed.
    pub assets: Option<(Vec<String>, Option<AssetChange>)>,
    /// Where the watch's events are notified, and how loud they are.
    pub alert: std::sync::Arc<crate::notify::AlertPolicy>,
    pub verdict: Verdict,
    /// The verdict's content as it will be stored: compressed on the judging thread by
    /// [`Outcome::encode`], so the single database writer does not have to.
    pub stored: Option<Stored>,
}

/// A snapshot's text, compressed for the database.
#[derive(Debug, Clone)]
pub struct Stored {
    /// 0: the text as is; 1: zstd.
    pub encoding: i64,
    pub bytes: Vec<u8>,
    /// The text's length in bytes.
    pub size: usize,
    /// The content hash of the verdict it was taken from.
    pub hash: Hash,
}

impl Outcome {
    /// Compresses the content the verdict stores, if any, into `stored`, and lets go of the
    /// text: the verdict's `content` is left empty. Outcomes wait in the queue to the database
    /// writer (up to two batches of them in a cold pass) with their compressed bytes only, a
    /// third of the text or less.
    pub fn encode(&mut self) {
        if let Some((content, hash)) = self.verdict.content_mut() {
            let text = std::mem::take(content);
            let (encoding, bytes) = crate::store::encode_content(&text);
            self.stored = Some(Stored {
                encoding,
                bytes,
                size: text.len(),
                hash: *hash,
            });
        }
    }
}

impl Verdict {
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
        bump: &'static str,
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

/// One thing that happened to a watch, as reported and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<i64>,
    pub kind: String,
    pub watch: String,
    pub url: String,
    pub at: DateTime<Utc>,
    pub summary: String,
    pub diff: Option<String>,
    /// Event-specific fields (JSON object), flattened into the JSON Lines form.
    pub detail: Detail,
}

/// An event's specific fields, by key. A sorted list rather than a `serde_json::Map` (a B-tree
/// whose first node alone is 600 bytes): a pass over 100,000 new pages holds 100,000
/// one-field details until they are printed. Serialized like the map, keys in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail(Vec<(String, Value)>);

impl Detail {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets `key`, replacing (and returning) what it had.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                // Most events have one or two fields: no room for four (Vec's first growth).
                self.0.reserve_exact(1);
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a Detail {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a String, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl From<Map<String, Value>> for Detail {
    fn from(m: Map<String, Value>) -> Self {
        // A map iterates in key order: already sorted.
        Detail(m.into_iter().collect())
    }
}

impl serde::Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(d).map(Detail::from)
    }
}

impl Event {
    pub fn new(kind: &str, watch: &str, url: &str, at: DateTime<Utc>, summary: String) -> Self {
        Event {
            id: None,
            kind: kind.to_string(),
            watch: watch.to_string(),
            url: url.to_string(),
            at,
            summary,
            diff: None,
            detail: Detail::default(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.detail.insert(key.to_string(), value);
        self
    }

    /// The JSON Lines object: `event`, `watch`, `url`, `at`, `summary`, then the details.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("event".into(), json!(self.kind));
        m.insert("watch".into(), json!(self.watch));
        m.insert("url".into(), json!(self.url));
        m.insert("at".into(), json!(rfc3339(self.at)));
        m.insert("summary".into(), json!(self.summary));
        if let Some(d) = &self.diff {
            m.insert("diff".into(), json!(d));
        }
        if let Some(id) = self.id {
            m.insert("id".into(), json!(id));
        }
        for (k, v) in &self.detail {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// How loud an event is: a watch's `severity`, raised by what the event says (a broken
/// contract, a removed JSON field, a major version), filtered by a channel's `min_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The event's own severity: what it says in `severity`, else what its kind implies.
    pub fn of_event(e: &Event) -> Severity {
        if let Some(s) = e.detail.get("severity").and_then(Value::as_str)
            && let Some(s) = Severity::parse(s)
        {
            return s;
        }
        match e.kind.as_str() {
            "contract_broken" => Severity::Critical,
            "selector_missing" | "failing" | "deploy_detected" => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

impl TryFrom<String> for Severity {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Severity::parse(&s).ok_or_else(|| {
            format!("unknown severity `{s}`: use \"info\", \"warning\" or \"critical\"")
        })
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_keeps_keys_in_order_and_serializes_like_a_map() {
        let mut d = Detail::default();
        for (k, v) in [
            ("zeta", json!(1)),
            ("alpha", json!("a")),
            ("mid", json!([1, 2])),
        ] {
            assert_eq!(d.insert(k.into(), v), None);
        }
        assert_eq!(d.insert("mid".into(), json!(null)), Some(json!([1, 2])));
        assert_eq!(d.len(), 3);
        assert_eq!(d.get("alpha"), Some(&json!("a")));
        assert_eq!(d.get("missing"), None);
        let keys: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["alpha", "mid", "zeta"]);

        let mut m = Map::new();
        m.insert("zeta".into(), json!(1));
        m.insert("alpha".into(), json!("a"));
        m.insert("mid".into(), json!(null));
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(text, Value::Object(m).to_string());
        assert_eq!(serde_json::from_str::<Detail>(&text).unwrap(), d);
    }
}
