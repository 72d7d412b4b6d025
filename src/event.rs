//! The vocabulary every stage shares: what gets reported ([`Event`]), its kind ([`EventKind`])
//! and how loud it is ([`Severity`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// What happened to a watch. The serialised names (`changed`, `new_entry`, ...) are a
/// contract: JSON Lines, webhooks, the database and `--kind` filters use them as documented.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Changed,
    SchemaChanged,
    NewEntry,
    EntryUpdated,
    NewVersion,
    ContractBroken,
    ContractRestored,
    DeployDetected,
    RequestsChanged,
    SelectorMissing,
    SelectorRestored,
    Volatile,
    Error,
    Blocked,
    Failing,
    /// `max_response_time`: slow answers on `failures_before_alert` checks in a row.
    Degraded,
    Recovered,
    Baseline,
    Noise,
    Pending,
    Notified,
    /// Someone acknowledged an escalating event (`forewarn ack`): in the timeline.
    Acknowledged,
    Test,
}

/// Whether a kind of event is sent to a watch's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    Always,
    Never,
    /// `recovered`: only when the failure it ends was alerted (a blip needs no all-clear).
    WhenAlerted,
}

/// What one kind of event is: the one table every stage reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The serialised name.
    pub name: &'static str,
    /// The text report's heading (`CHANGED`, `SELECTOR MISSING`).
    pub heading: &'static str,
    /// How a message names it ("structure changed", "selector back").
    pub label: &'static str,
    /// Counts as a changed watch in a pass's summary.
    pub change: bool,
    pub notified: Notified,
    /// The severity an event of this kind has unless it says otherwise.
    pub severity: Severity,
    /// Left out of the text reports of `check` and `watch` (JSON Lines carry it).
    pub quiet: bool,
}

const fn row(
    name: &'static str,
    heading: &'static str,
    label: &'static str,
    change: bool,
    notified: Notified,
    severity: Severity,
    quiet: bool,
) -> KindInfo {
    KindInfo {
        name,
        heading,
        label,
        change,
        notified,
        severity,
        quiet,
    }
}

impl EventKind {
    /// Every kind, in the order of the table.
    pub const ALL: [EventKind; 23] = [
        EventKind::Changed,
        EventKind::SchemaChanged,
        EventKind::NewEntry,
        EventKind::EntryUpdated,
        EventKind::NewVersion,
        EventKind::ContractBroken,
        EventKind::ContractRestored,
        EventKind::DeployDetected,
        EventKind::RequestsChanged,
        EventKind::SelectorMissing,
        EventKind::SelectorRestored,
        EventKind::Volatile,
        EventKind::Error,
        EventKind::Blocked,
        EventKind::Failing,
        EventKind::Degraded,
        EventKind::Recovered,
        EventKind::Baseline,
        EventKind::Noise,
        EventKind::Pending,
        EventKind::Notified,
        EventKind::Acknowledged,
        EventKind::Test,
    ];

    /// The table: per kind, its name, heading, label, whether it is a change, whether it is
    /// notified, its default severity and whether the text report leaves it out.
    #[rustfmt::skip]
    pub const fn info(self) -> KindInfo {
        match self {
            EventKind::Changed => row("changed", "CHANGED", "changed", true, Notified::Always, Severity::Info, false),
            EventKind::SchemaChanged => row("schema_changed", "SCHEMA CHANGED", "structure changed", true, Notified::Always, Severity::Info, false),
            EventKind::NewEntry => row("new_entry", "NEW ENTRY", "new entry", true, Notified::Always, Severity::Info, false),
            EventKind::EntryUpdated => row("entry_updated", "ENTRY UPDATED", "entry edited", true, Notified::Always, Severity::Info, false),
            EventKind::NewVersion => row("new_version", "NEW VERSION", "new version", true, Notified::Always, Severity::Info, false),
            EventKind::ContractBroken => row("contract_broken", "CONTRACT BROKEN", "contract broken", true, Notified::Always, Severity::Critical, false),
            EventKind::ContractRestored => row("contract_restored", "CONTRACT HOLDS", "contract restored", false, Notified::Always, Severity::Info, false),
            EventKind::DeployDetected => row("deploy_detected", "DEPLOY DETECTED", "frontend deploy", true, Notified::Always, Severity::Warning, false),
            EventKind::RequestsChanged => row("requests_changed", "REQUESTS CHANGED", "the page's requests changed", true, Notified::Always, Severity::Warning, false),
            EventKind::SelectorMissing => row("selector_missing", "SELECTOR MISSING", "selector missing", true, Notified::Always, Severity::Warning, false),
            EventKind::SelectorRestored => row("selector_restored", "SELECTOR BACK", "selector back", false, Notified::Always, Severity::Info, false),
            EventKind::Volatile => row("volatile", "VOLATILE", "changes on most checks", false, Notified::Always, Severity::Warning, false),
            EventKind::Error => row("error", "FAILED", "failed", false, Notified::Never, Severity::Info, false),
            EventKind::Blocked => row("blocked", "BLOCKED", "blocked", false, Notified::Never, Severity::Info, false),
            EventKind::Failing => row("failing", "FAILING", "failing", false, Notified::Always, Severity::Warning, false),
            EventKind::Degraded => row("degraded", "DEGRADED", "slow responses", false, Notified::Always, Severity::Warning, false),
            EventKind::Recovered => row("recovered", "RECOVERED", "recovered", false, Notified::WhenAlerted, Severity::Info, false),
            EventKind::Baseline => row("baseline", "BASELINE", "baseline", false, Notified::Never, Severity::Info, true),
            EventKind::Noise => row("noise", "NOISE", "noise", false, Notified::Never, Severity::Info, true),
            EventKind::Pending => row("pending", "PENDING", "pending", false, Notified::Never, Severity::Info, true),
            EventKind::Notified => row("notified", "NOTIFIED", "notified", false, Notified::Never, Severity::Info, false),
            EventKind::Acknowledged => row("acknowledged", "ACKNOWLEDGED", "acknowledged", false, Notified::Never, Severity::Info, false),
            EventKind::Test => row("test", "TEST", "test", false, Notified::Never, Severity::Info, false),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.info().name
    }

    /// The kind with this serialised name.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub const fn is_change(self) -> bool {
        self.info().change
    }

    pub const fn is_quiet(self) -> bool {
        self.info().quiet
    }

    /// A failed check (`error` or `blocked`).
    pub const fn is_failure(self) -> bool {
        matches!(self, EventKind::Error | EventKind::Blocked)
    }

    pub const fn heading(self) -> &'static str {
        self.info().heading
    }

    pub const fn label(self) -> &'static str {
        self.info().label
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::from_name(s.trim()).ok_or_else(|| {
            let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown event kind `{s}`: use one of {}", names.join(", "))
        })
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One thing that happened to a watch, as reported and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<i64>,
    pub kind: EventKind,
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
    /// What the event's `verify` said, in a line: "verify failed (exit 1 after 0.4s): the
    /// last line it printed", "verify passed (0.2s)", "verify timed out ...", "verify was
    /// interrupted ...", "verify is running".
    pub fn verify_line(&self) -> Option<String> {
        self.detail.get("verify").map(verify_line)
    }

    pub fn new(
        kind: EventKind,
        watch: &str,
        url: &str,
        at: DateTime<Utc>,
        summary: String,
    ) -> Self {
        Event {
            id: None,
            kind,
            watch: watch.to_string(),
            url: url.to_string(),
            at,
            summary,
            diff: None,
            detail: Detail::default(),
        }
    }

    /// Whether the event is sent to the watch's channels (see [`KindInfo::notified`]).
    pub fn is_notified(&self) -> bool {
        // A change of a watch told once that it is `volatile`: stored, not alerted again.
        if self.is_volatile() {
            return false;
        }
        match self.kind.info().notified {
            Notified::Always => true,
            Notified::Never => false,
            Notified::WhenAlerted => {
                self.detail.get("alerted").and_then(Value::as_bool) == Some(true)
            }
        }
    }

    /// A change of a volatile watch (`volatile: true`): stored and reported, never alerted
    /// nor printed by `check`.
    pub fn is_volatile(&self) -> bool {
        self.detail.get("volatile").and_then(Value::as_bool) == Some(true)
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

/// A word a shell reads back as itself: a watch name in a command to copy.
pub fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A duration in milliseconds, saturating (durations are stored and compared as i64 ms).
pub fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// How loud an event is: a watch's `severity`, raised by what the event says (a broken
/// contract, a removed JSON field, a major version), filtered by a channel's `min_severity`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(try_from = "String", rename_all = "lowercase")]
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
        e.kind.info().severity
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

/// [`Event::verify_line`] of a verify's verdict.
pub fn verify_line(v: &Value) -> String {
    let took = v["duration_ms"]
        .as_u64()
        .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
        .unwrap_or_default();
    let last = v["output"]
        .as_str()
        .and_then(|o| o.lines().rev().find(|l| !l.trim().is_empty()))
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    match v["state"].as_str().unwrap_or_default() {
            "passed" => format!("verify passed ({took})"),
            "failed" => match v["exit"].as_i64() {
                Some(code) => format!("verify failed (exit {code} after {took}){last}"),
                None => format!("verify failed ({took}){last}"),
            },
            "timed_out" => format!("verify timed out and was killed after {took}"),
            "interrupted" => {
                "verify was interrupted (forewarn stopped while it ran); the notifications went out without it"
                    .to_string()
            }
            _ => "verify is running".to_string(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_keeps_its_documented_name_in_json_and_text() {
        let documented = [
            "changed",
            "schema_changed",
            "new_entry",
            "entry_updated",
            "new_version",
            "contract_broken",
            "contract_restored",
            "deploy_detected",
            "requests_changed",
            "selector_missing",
            "selector_restored",
            "volatile",
            "error",
            "blocked",
            "failing",
            "degraded",
            "recovered",
            "baseline",
            "noise",
            "pending",
            "notified",
            "acknowledged",
            "test",
        ];
        assert_eq!(EventKind::ALL.len(), documented.len());
        for (kind, name) in EventKind::ALL.into_iter().zip(documented) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
            assert_eq!(
                serde_json::from_value::<EventKind>(json!(name)).unwrap(),
                kind
            );
            assert_eq!(name.parse::<EventKind>(), Ok(kind));
        }
        assert!(
            "new-entry"
                .parse::<EventKind>()
                .unwrap_err()
                .contains("new_entry")
        );
    }

    #[test]
    fn the_kind_table_says_what_is_a_change_notified_and_how_loud() {
        use EventKind as K;
        let changes: Vec<K> = K::ALL.into_iter().filter(|k| k.is_change()).collect();
        assert_eq!(
            changes,
            [
                K::Changed,
                K::SchemaChanged,
                K::NewEntry,
                K::EntryUpdated,
                K::NewVersion,
                K::ContractBroken,
                K::DeployDetected,
                K::RequestsChanged,
                K::SelectorMissing
            ]
        );
        let quiet: Vec<K> = K::ALL.into_iter().filter(|k| k.is_quiet()).collect();
        assert_eq!(quiet, [K::Baseline, K::Noise, K::Pending]);
        let at = DateTime::<Utc>::default();
        let event = |k| Event::new(k, "w", "http://127.0.0.1/", at, String::new());
        for k in [
            K::Error,
            K::Blocked,
            K::Baseline,
            K::Noise,
            K::Pending,
            K::Test,
        ] {
            assert!(!event(k).is_notified(), "{k}");
        }
        for k in [
            K::Changed,
            K::SelectorMissing,
            K::ContractRestored,
            K::Failing,
        ] {
            assert!(event(k).is_notified(), "{k}");
        }
        assert!(!event(K::Recovered).is_notified());
        assert!(
            event(K::Recovered)
                .with("alerted", json!(true))
                .is_notified()
        );
        assert_eq!(
            Severity::of_event(&event(K::ContractBroken)),
            Severity::Critical
        );
        assert_eq!(
            Severity::of_event(&event(K::DeployDetected)),
            Severity::Warning
        );
        let raised = event(K::NewVersion).with("severity", json!(Severity::Warning));
        assert_eq!(Severity::of_event(&raised), Severity::Warning);
        assert_eq!(K::SelectorRestored.heading(), "SELECTOR BACK");
        assert_eq!(K::SchemaChanged.label(), "structure changed");
    }

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
