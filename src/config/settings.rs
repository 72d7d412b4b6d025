//! Settings shared between watches, and between watchlists: a watch's resolved settings (one
//! copy per distinct value, however many watches use it), feed options, per-host politeness,
//! and what a file's top level declares (`[hosts]`, `heartbeat_url`, `[channels]`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawHost;
use super::spec::ExtractSpec;
use super::{Config, ConfigError, alert, channels, expect, version};
use crate::schedule::{Schedule, Timing, Zone};

/// Politeness settings for one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Requests in flight at once to this host.
    pub concurrency: Option<usize>,
    /// Minimum time between the starts of two requests to this host.
    pub interval: Option<Duration>,
}

/// `[browser]`: which browser the browser watches run in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserSettings {
    /// The Chromium to start (default: `FOREWARN_BROWSER`, else `chromium` or
    /// `google-chrome` on `PATH`).
    pub executable: Option<std::path::PathBuf>,
    /// A running browser's DevTools address (`ws://.../devtools/browser/...`, or
    /// `http://host:port`), used instead of starting one.
    pub endpoint: Option<String>,
}

/// A watch's settings, with its file's defaults applied.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The watchlist file the watch is in.
    pub file: Arc<Path>,
    /// Shared by the watches of a file that extract the same way (most use the defaults).
    pub spec: Arc<ExtractSpec>,
    /// Header names and value templates (`${VAR}` expanded at run time).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub keep: u32,
    /// Snapshots older than this are pruned (the newest always stays).
    pub keep_for: Option<Duration>,
    pub max_size: u64,
    /// Consecutive checks a change must be seen on before it is reported.
    pub confirm: u32,
    /// On a detected change to an HTML page, fetch again after a pause and learn masks from
    /// what differs between the two fetches.
    pub confirm_refetch: bool,
    /// When the watch runs (`schedule` or `every`, in `timezone`).
    pub timing: Timing,
    /// Retries of a failed request within one check (timeouts, 5xx, 429, resets).
    pub retries: u32,
    /// Feeds: which entries count.
    pub feed: Arc<FeedOptions>,
    /// What the integration assumes about the page.
    pub expect: Arc<expect::Expect>,
    /// Report a change in the page's script and stylesheet URLs (a frontend deploy).
    pub track_assets: bool,
    /// Accept any TLS certificate (a self-signed internal server). Off by default.
    pub insecure: bool,
    /// `deny_private = true`: never fetch a private, loopback or link-local address (the
    /// URL's, a name's or a redirect's). Off by default.
    pub deny_private: bool,
    /// `browser = true`: rendered in headless Chromium (with its `wait_for`), not fetched.
    pub browser: Option<BrowserSpec>,
    /// `kind = "version"`: where versions come from and which count.
    pub version: Option<Box<version::VersionSpec>>,
    /// `notify`, `severity`, `failures_before_alert`, `remind_every`.
    pub alert: Arc<alert::AlertPolicy>,
    /// `verify`: the integration's own check, run after a detected change.
    pub verify: Option<Arc<Verify>>,
    /// `max_response_time`: a slower answer counts as degraded.
    pub max_response_time: Option<Duration>,
}

/// `verify`: a command that says whether the integration still works, run after a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verify {
    pub command: VerifyCommand,
    /// Killed past it, and counted as failing (`verify_timeout`, default 5 minutes).
    pub timeout: Duration,
    /// The event kinds that start it (`verify_on`).
    pub on: Vec<crate::event::EventKind>,
}

/// A string is run by `sh -c`; a list is run as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VerifyCommand {
    Shell(String),
    Argv(Vec<String>),
}

/// `verify_on` when it is not given.
pub const VERIFY_ON: [crate::event::EventKind; 5] = [
    crate::event::EventKind::Changed,
    crate::event::EventKind::SchemaChanged,
    crate::event::EventKind::ContractBroken,
    crate::event::EventKind::DeployDetected,
    crate::event::EventKind::NewVersion,
];

/// `verify_timeout` when it is not given.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(300);

/// What makes two watches' settings the same when neither has a feed filter, an expectation
/// or a version source of its own (those are compared by their shared copies).
#[derive(PartialEq, Eq, Hash)]
pub(super) struct SettingsKey {
    spec: *const ExtractSpec,
    alert: *const alert::AlertPolicy,
    headers: Vec<(String, String)>,
    timeout: Duration,
    keep: u32,
    keep_for: Option<Duration>,
    max_size: u64,
    confirm: u32,
    confirm_refetch: bool,
    /// A cron expression, or how often.
    schedule: (String, Duration),
    zone: Zone,
    retries: u32,
    track_assets: bool,
    insecure: bool,
    deny_private: bool,
    browser: Option<BrowserSpec>,
    verify: Option<Verify>,
    max_response_time: Option<Duration>,
}

impl SettingsKey {
    /// `None` when the settings are the watch's own (a feed filter, an expectation, a version).
    pub(super) fn of(
        s: &WatchSettings,
        default_feed: &FeedOptions,
        no_expect: &expect::Expect,
    ) -> Option<Self> {
        if s.version.is_some()
            || !std::ptr::eq(&*s.feed, default_feed)
            || !std::ptr::eq(&*s.expect, no_expect)
        {
            return None;
        }
        Some(SettingsKey {
            spec: Arc::as_ptr(&s.spec),
            alert: Arc::as_ptr(&s.alert),
            headers: s.headers.clone(),
            timeout: s.timeout,
            keep: s.keep,
            keep_for: s.keep_for,
            max_size: s.max_size,
            confirm: s.confirm,
            confirm_refetch: s.confirm_refetch,
            schedule: match &s.timing.schedule {
                Schedule::Cron { text, .. } => (text.clone(), Duration::ZERO),
                Schedule::Every(d) => (String::new(), *d),
            },
            zone: s.timing.zone,
            retries: s.retries,
            track_assets: s.track_assets,
            insecure: s.insecure,
            deny_private: s.deny_private,
            browser: s.browser.clone(),
            verify: s.verify.as_deref().cloned(),
            max_response_time: s.max_response_time,
        })
    }
}

/// `browser = true`: the page is loaded in headless Chromium, and read once `wait_for` (a CSS
/// selector) is there, or once its network is quiet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrowserSpec {
    pub wait_for: Option<String>,
    /// Run in order before the page is read (a login), unless `logged_in` is there already.
    pub steps: Vec<Step>,
    /// A CSS selector the page shows when the session is logged in.
    pub logged_in: Option<String>,
    /// `track_requests = true`: the page's fetch and XHR requests are compared between checks.
    pub track_requests: bool,
    /// `skip_unchanged_shell = true`: the page's own document is asked for first with the
    /// stored validators, and a 304 is taken as no change without rendering.
    pub skip_unchanged_shell: bool,
    /// `screenshot = true`: a PNG of the rendered page is kept with each stored snapshot.
    pub screenshot: bool,
    /// `session = "NAME"`: the watches of one session share a browser context, whose cookies
    /// are kept between runs, so they log in once.
    pub session: Option<String>,
}

/// One step of a browser watch's `steps`. Values keep their `${VAR}`s: they are expanded
/// from the environment only when the step runs, and never stored or shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Goto(String),
    Fill { selector: String, value: String },
    Click(String),
    Press(String),
    WaitFor(String),
    Wait(Duration),
}

/// Feed options: `match` / `exclude` regexes on entry titles, and a cap on entries reported
/// per check (the rest are counted).
#[derive(Debug, Clone)]
pub struct FeedOptions {
    pub match_title: Option<regex::Regex>,
    pub exclude_title: Option<regex::Regex>,
    pub max_entries: usize,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            match_title: None,
            exclude_title: None,
            max_entries: 10,
        }
    }
}

impl FeedOptions {
    pub(super) fn is_default(&self) -> bool {
        self.match_title.is_none() && self.exclude_title.is_none() && self.max_entries == 10
    }

    /// Whether an entry with this title is reported.
    pub fn wants(&self, title: &str) -> bool {
        self.match_title.as_ref().is_none_or(|r| r.is_match(title))
            && !self
                .exclude_title
                .as_ref()
                .is_some_and(|r| r.is_match(title))
    }
}

/// The shared copies of one file's watches: one allocation per distinct value, not one per
/// watch (most watches use their file's defaults).
pub(super) struct Shared {
    file: Arc<Path>,
    specs: HashMap<String, Arc<ExtractSpec>>,
    /// The spec the last watch got: the next one most often asks for the same.
    last_spec: Option<Arc<ExtractSpec>>,
    policies: HashMap<alert::AlertPolicy, Arc<alert::AlertPolicy>>,
    settings: HashMap<SettingsKey, Arc<WatchSettings>>,
    no_expect: Arc<expect::Expect>,
    default_feed: Arc<FeedOptions>,
}

impl Shared {
    pub(super) fn new(file: &Path) -> Self {
        Shared {
            file: file.into(),
            specs: HashMap::new(),
            last_spec: None,
            policies: HashMap::new(),
            settings: HashMap::new(),
            no_expect: Arc::new(expect::Expect::default()),
            default_feed: Arc::new(FeedOptions::default()),
        }
    }

    /// The watchlist file, shared by its watches.
    pub(super) fn file(&self) -> Arc<Path> {
        self.file.clone()
    }

    pub(super) fn spec(&mut self, spec: ExtractSpec) -> Arc<ExtractSpec> {
        if let Some(last) = self.last_spec.as_ref().filter(|l| l.same_as(&spec)) {
            return last.clone();
        }
        let shared = self
            .specs
            .entry(spec.fingerprint().to_string())
            .or_insert_with(|| Arc::new(spec))
            .clone();
        self.last_spec = Some(shared.clone());
        shared
    }

    pub(super) fn policy(&mut self, policy: alert::AlertPolicy) -> Arc<alert::AlertPolicy> {
        if let Some(p) = self.policies.get(&policy) {
            return p.clone();
        }
        let shared = Arc::new(policy.clone());
        self.policies.insert(policy, shared.clone());
        shared
    }

    pub(super) fn expect(&self, expect: expect::Expect) -> Arc<expect::Expect> {
        if expect.is_empty() {
            self.no_expect.clone()
        } else {
            Arc::new(expect)
        }
    }

    pub(super) fn feed(&self, feed: FeedOptions) -> Arc<FeedOptions> {
        if feed.is_default() {
            self.default_feed.clone()
        } else {
            Arc::new(feed)
        }
    }

    /// The shared copy of these settings, unless they are the watch's own.
    pub(super) fn settings(&mut self, settings: WatchSettings) -> Arc<WatchSettings> {
        match SettingsKey::of(&settings, &self.default_feed, &self.no_expect) {
            Some(key) => self
                .settings
                .entry(key)
                .or_insert_with(|| Arc::new(settings))
                .clone(),
            None => Arc::new(settings),
        }
    }
}

/// `[escalations.NAME]`: names global across files, steps in order; each step's channel is
/// checked once every file is read, as `notify` is.
fn escalation_of(
    file: &Path,
    src: &str,
    name: String,
    e: Spanned<super::raw::RawEscalation>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    let span = e.span();
    if config.escalations.contains_key(&name) {
        let message =
            format!("duplicate escalation `{name}`: escalation names are global across watchlists");
        errors.push(ConfigError::at(file, src, Some(span), message));
        return;
    }
    let e = e.into_inner();
    if e.steps.is_empty() {
        let message = format!(
            "escalation `{name}` has no steps: write steps = [{{ notify = \"chat\" }}, {{ after = \"10m\", notify = \"sms\" }}]"
        );
        errors.push(ConfigError::at(file, src, Some(span), message));
        return;
    }
    for s in &e.steps {
        let err = ConfigError::at(file, src, Some(span.clone()), String::new());
        config.unresolved.push((s.notify.clone(), err));
    }
    let steps = e
        .steps
        .into_iter()
        .map(|s| (s.after.map_or(Duration::ZERO, |d| d.0), s.notify))
        .collect();
    let escalation = alert::Escalation {
        name: name.clone(),
        min_severity: e.min_severity.unwrap_or(crate::event::Severity::Critical),
        steps,
    };
    config.escalations.insert(name, escalation);
}

/// `[browser]`, once across files: an executable or an endpoint.
fn browser_of(
    file: &Path,
    src: &str,
    b: Spanned<super::raw::RawBrowser>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    let span = b.span();
    let mut problem = |m: String| errors.push(ConfigError::at(file, src, Some(span.clone()), m));
    if config.browser.is_some() {
        return problem("`[browser]` is set in more than one watchlist: keep one".into());
    }
    let b = b.into_inner();
    if b.executable.is_some() && b.endpoint.is_some() {
        return problem(
            "`[browser]` takes `executable` (a browser to start) or `endpoint` (one running), not both"
                .into(),
        );
    }
    if let Some(e) = &b.endpoint
        && !["ws://", "wss://", "http://", "https://"]
            .iter()
            .any(|s| e.starts_with(s))
    {
        return problem(format!(
            "invalid browser endpoint `{e}`: give the DevTools address, like \"ws://127.0.0.1:9222/devtools/browser/...\" or \"http://127.0.0.1:9222\""
        ));
    }
    // A path with a folder in it is read from the watchlist's folder; a bare name from PATH.
    let executable = b.executable.map(|x| {
        let p = std::path::PathBuf::from(&x);
        match file.parent() {
            Some(dir) if x.contains('/') && p.is_relative() => dir.join(p),
            _ => p,
        }
    });
    config.browser = Some(BrowserSettings {
        executable,
        endpoint: b.endpoint,
    });
}

/// What a file's top level declares for every watchlist: per-host politeness, the heartbeat
/// URL (once across files) and notification channels (names global across files).
pub(super) fn apply_top_level(
    file: &Path,
    src: &str,
    hosts: BTreeMap<String, RawHost>,
    raw: super::raw::RawFile,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    let (heartbeat_url, raw_channels) = (raw.heartbeat_url, raw.channels);
    if let Some(b) = raw.browser {
        browser_of(file, src, b, config, errors);
    }
    for (name, e) in raw.escalations.into_iter().flatten() {
        escalation_of(file, src, name, e, config, errors);
    }
    for (host, h) in hosts {
        let settings = HostSettings {
            concurrency: h.concurrency.map(|c| c.0 as usize),
            interval: h.interval.map(|d| d.0),
        };
        config.hosts.insert(host.to_ascii_lowercase(), settings);
    }
    if let Some(hb) = heartbeat_url {
        if config.heartbeat_url.is_some() {
            errors.push(ConfigError::at(
                file,
                src,
                Some(hb.span()),
                "`heartbeat_url` is set in more than one watchlist: keep one".into(),
            ));
        } else {
            config.heartbeat_url = Some(hb.into_inner());
        }
    }
    for (name, raw) in raw_channels.into_iter().flatten() {
        let span = raw.span();
        if let Some(first) = config.channels.get(&name) {
            let message = format!(
                "duplicate channel `{name}` (first declared at {}:{}): channel names are global across watchlists",
                first.origin.file.display(),
                first.origin.line
            );
            errors.push(ConfigError::at(file, src, Some(span), message));
            continue;
        }
        let line = src[..span.start.min(src.len())].matches('\n').count() + 1;
        if let Some(c) = channels::resolve(&name, raw.into_inner(), span, file, src, line, errors) {
            config.channels.insert(name, c);
        }
    }
}
