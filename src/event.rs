//! The vocabulary every stage shares: what gets reported ([`Event`]), its kind ([`EventKind`])
//! and how loud it is ([`Severity`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

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
