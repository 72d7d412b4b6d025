//! Watchlists: discovery, parsing, validation and the resolved [`Watch`] list.
//!
//! Validation happens while parsing: every key is known (`deny_unknown_fields`), values are
//! self-validating newtypes, and a second pass checks what spans watches and files (unique
//! names, selectors that depend on the watch's kind). Every problem names its file, line and
//! column; all problems are collected before anything is fetched.

pub mod alert;
mod channels;
mod diagnostic;
pub mod expect;
pub mod json_path;
pub mod masks;
pub mod spec;
pub mod types;
pub mod version;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use diagnostic::{ConfigError, ConfigErrors, closest};
pub use types::{ByteSize, DurationStr, OneOrMany, RegexStr, UrlTemplate};

use crate::schedule::{Schedule, Timing, Zone};
use masks::MaskSet;
use spec::ExtractSpec;

/// Default per-request timeout (connect + headers + body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default number of snapshots kept per watch.
pub const DEFAULT_KEEP: u32 = 20;
/// Default cap on a response body, after decompression.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;

/// How a watch's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Decided by the response: HTML pages are extracted, JSON is canonicalised, the rest is text.
    #[default]
    Auto,
    Html,
    Text,
    Json,
    /// RSS, Atom or JSON Feed: compared entry by entry.
    Feed,
    /// The newest version a registry, GitHub, a page or a document lists.
    Version,
}

/// `masks = true | false | ["timestamps", ...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum MasksSetting {
    All(bool),
    Some(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    schedule: Option<Spanned<String>>,
    every: Option<Spanned<DurationStr>>,
    timezone: Option<Spanned<String>>,
    retries: Option<u32>,
    masks: Option<Spanned<MasksSetting>>,
    confirm: Option<Spanned<u32>>,
    confirm_refetch: Option<bool>,
    keep_for: Option<DurationStr>,
    timeout: Option<DurationStr>,
    keep: Option<Spanned<u32>>,
    max_size: Option<ByteSize>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    ignore: Option<Spanned<OneOrMany<String>>>,
    notify: Option<Spanned<OneOrMany<String>>>,
    severity: Option<crate::event::Severity>,
    failures_before_alert: Option<Spanned<u32>>,
    remind_every: Option<DurationStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    name: Spanned<String>,
    url: Option<Spanned<UrlTemplate>>,
    #[serde(default)]
    kind: Kind,
    select: Option<Spanned<OneOrMany<String>>>,
    remove: Option<Spanned<OneOrMany<String>>>,
    ignore: Option<Spanned<OneOrMany<String>>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    timeout: Option<DurationStr>,
    keep: Option<Spanned<u32>>,
    keep_for: Option<DurationStr>,
    max_size: Option<ByteSize>,
    masks: Option<Spanned<MasksSetting>>,
    confirm: Option<Spanned<u32>>,
    confirm_refetch: Option<bool>,
    schedule: Option<Spanned<String>>,
    every: Option<Spanned<DurationStr>>,
    timezone: Option<Spanned<String>>,
    retries: Option<u32>,
    expect: Option<RawExpect>,
    track_assets: Option<bool>,
    insecure: Option<bool>,
    ignore_paths: Option<Spanned<OneOrMany<String>>>,
    // kind = "version"
    source: Option<Spanned<version::Source>>,
    package: Option<Spanned<String>>,
    repo: Option<Spanned<String>>,
    registry: Option<Spanned<UrlTemplate>>,
    prerelease: Option<bool>,
    include: Option<Spanned<String>>,
    prefix: Option<String>,
    tags: Option<bool>,
    pattern: Option<Spanned<String>>,
    pointer: Option<String>,
    #[serde(rename = "match")]
    match_: Option<Spanned<String>>,
    exclude: Option<Spanned<String>>,
    max_entries: Option<Spanned<u32>>,
    notify: Option<Spanned<OneOrMany<String>>>,
    severity: Option<crate::event::Severity>,
    failures_before_alert: Option<Spanned<u32>>,
    remind_every: Option<DurationStr>,
}

/// `expect.selectors`, `expect.text`, `expect.absent`, `expect.status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    selectors: Option<Spanned<OneOrMany<String>>>,
    text: Option<OneOrMany<String>>,
    absent: Option<OneOrMany<String>>,
    status: Option<u16>,
    paths: Option<Spanned<OneOrMany<String>>>,
}

/// The file's top level, without `watch` (each watch is read on its own, so that one bad
/// watch does not hide the problems of the next).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<RawDefaults>,
    hosts: Option<BTreeMap<String, RawHost>>,
    heartbeat_url: Option<Spanned<UrlTemplate>>,
    channels: Option<BTreeMap<String, Spanned<channels::RawChannel>>>,
}

/// `[hosts."api.github.com"]`: politeness towards one host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    concurrency: Option<Spanned<u32>>,
    interval: Option<DurationStr>,
}

/// Politeness settings for one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// Requests in flight at once to this host.
    pub concurrency: Option<usize>,
    /// Minimum time between the starts of two requests to this host.
    pub interval: Option<Duration>,
}

/// Where a watch was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Shared by every watch of the file.
    pub file: std::sync::Arc<Path>,
    pub line: usize,
}

/// One watch, validated and with its file's defaults applied.
///
/// A watch of a 100,000-watch list costs 32 bytes and one allocation for its name and URL:
/// everything else is in its [`WatchSettings`], shared by the watches of a file that come to
/// the same settings (most use the file's defaults). A pass is handed the whole list and the
/// positions of the due watches, not copies of them.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The name, then the URL template.
    text: Box<str>,
    name_len: u32,
    /// The 1-based line of its `name` (the file is in its settings).
    line: u32,
    /// How it is fetched, judged and reported.
    pub settings: std::sync::Arc<WatchSettings>,
}

impl Watch {
    pub fn new(
        name: &str,
        url: &str,
        line: usize,
        settings: std::sync::Arc<WatchSettings>,
    ) -> Self {
        let mut text = String::with_capacity(name.len() + url.len());
        text.push_str(name);
        text.push_str(url);
        Watch {
            text: text.into_boxed_str(),
            // A name is one line and a watchlist is edited by people: neither reaches 4 billion.
            name_len: u32::try_from(name.len()).unwrap_or(u32::MAX),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            settings,
        }
    }

    pub fn name(&self) -> &str {
        &self.text[..self.name_len as usize]
    }

    /// The URL template as written (`${VAR}` not expanded).
    pub fn url(&self) -> &str {
        &self.text[self.name_len as usize..]
    }

    /// The URL as shown and stored (see [`UrlTemplate::display`]).
    pub fn url_display(&self) -> String {
        types::redact_userinfo(self.url())
    }

    /// The URL to fetch (see [`UrlTemplate::expand`]).
    pub fn expand_url(&self) -> Result<url::Url, String> {
        types::expand_url(self.url())
    }

    /// Where it was declared.
    pub fn origin(&self) -> Origin {
        Origin {
            file: self.settings.file.clone(),
            line: self.line as usize,
        }
    }
}

/// A watch's settings, with its file's defaults applied.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The watchlist file the watch is in.
    pub file: std::sync::Arc<Path>,
    /// Shared by the watches of a file that extract the same way (most use the defaults).
    pub spec: std::sync::Arc<ExtractSpec>,
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
    pub feed: std::sync::Arc<FeedOptions>,
    /// What the integration assumes about the page.
    pub expect: std::sync::Arc<expect::Expect>,
    /// Report a change in the page's script and stylesheet URLs (a frontend deploy).
    pub track_assets: bool,
    /// Accept any TLS certificate (a self-signed internal server). Off by default.
    pub insecure: bool,
    /// `kind = "version"`: where versions come from and which count.
    pub version: Option<Box<version::VersionSpec>>,
    /// `notify`, `severity`, `failures_before_alert`, `remind_every`.
    pub alert: std::sync::Arc<alert::AlertPolicy>,
}

/// What makes two watches' settings the same when neither has a feed filter, an expectation
/// or a version source of its own (those are compared by their shared copies).
#[derive(PartialEq, Eq, Hash)]
struct SettingsKey {
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
}

impl SettingsKey {
    /// `None` when the settings are the watch's own (a feed filter, an expectation, a version).
    fn of(
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
            spec: std::sync::Arc::as_ptr(&s.spec),
            alert: std::sync::Arc::as_ptr(&s.alert),
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
        })
    }
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
    fn is_default(&self) -> bool {
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

/// Everything loaded from the watchlists.
#[derive(Debug, Default)]
pub struct Config {
    pub watches: Vec<Watch>,
    pub files: Vec<PathBuf>,
    /// Per-host politeness, by host name (with `:port` when not the scheme's default).
    pub hosts: HashMap<String, HostSettings>,
    /// Pinged after every pass, so a dead crawler is noticed too.
    pub heartbeat_url: Option<UrlTemplate>,
    /// `[channels.NAME]` from every file.
    pub channels: BTreeMap<String, alert::Channel>,
    /// `notify` entries to check once every file is read: (channel name, where it was written).
    unresolved: Vec<(String, ConfigError)>,
}

impl Config {
    pub fn find(&self, name: &str) -> Option<&Watch> {
        self.watches.iter().find(|w| w.name() == name)
    }

    /// Error text for a name that matches no watch, with a suggestion.
    pub fn unknown_watch(&self, name: &str) -> String {
        let mut msg = format!("no watch named `{name}` in the watchlists");
        if let Some(best) = closest(name, self.watches.iter().map(|w| w.name())) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        } else {
            msg.push_str("; `forewarn list` shows the watches");
        }
        msg
    }
}

/// The watchlist files to read: each given path (a file, or a folder of `*.toml`), else
/// `./watchlists/`, else `$XDG_CONFIG_HOME/forewarn/watchlists/`.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigErrors> {
    let roots: Vec<PathBuf> = if paths.is_empty() {
        vec![default_watchlist_dir()]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for root in roots.clone() {
        if root.is_dir() {
            match std::fs::read_dir(&root) {
                Ok(rd) => {
                    let mut found: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(ConfigError::whole_file(
                    &root,
                    format!("cannot read the watchlist folder: {e}"),
                    None,
                )),
            }
        } else if root.is_file() {
            files.push(root);
        } else {
            errors.push(ConfigError::whole_file(
                &root,
                "no such watchlist file or folder".into(),
                Some("create it with `forewarn add URL`, or pass --watchlist PATH".into()),
            ));
        }
    }
    // `forewarn.toml` beside the watchlists (next to a watchlist folder, or in the folder of
    // a watchlist file): channels and hosts shared by every watchlist.
    let mut extra = Vec::new();
    for root in &roots {
        let dir = if root.is_dir() {
            root.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
        } else {
            root.parent()
        };
        if let Some(dir) = dir {
            let shared = dir.join(SHARED_FILE);
            if shared.is_file() && !files.iter().chain(&extra).any(|f| same_file(f, &shared)) {
                extra.push(shared);
            }
        }
    }
    files.extend(extra);
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The shared settings file looked for beside the watchlists.
pub const SHARED_FILE: &str = "forewarn.toml";

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `./watchlists` if it exists, else the per-user folder.
pub fn default_watchlist_dir() -> PathBuf {
    let local = PathBuf::from("watchlists");
    if local.is_dir() {
        return local;
    }
    crate::paths::config_dir().join("watchlists")
}

/// Loads and validates the watchlists. Returns every problem found, not just the first.
pub fn load(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    let files = discover(paths)?;
    let mut config = Config::default();
    let mut errors = Vec::new();
    for file in &files {
        if let Err(e) = read_watchlist(file, &mut config, &mut errors) {
            errors.push(ConfigError::whole_file(
                file,
                format!("cannot read the watchlist: {e}"),
                None,
            ));
        }
    }
    // Growing by doubling left up to half the list unused (a large list is mapped memory, so
    // this is a remap, not a copy).
    config.watches.shrink_to_fit();
    check_unique_names(&config.watches, &mut errors);
    resolve_notify(&mut config, &mut errors);
    config.files = files;
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads one watchlist file, appending its watches and its problems. The file is read a
/// [[watch]] at a time when its layout allows (see [`Chunks`]): a 100,000-watch list is never
/// held whole, as text or as a parse tree (150 MB; one watch's is 1 KB).
fn read_watchlist(
    file: &Path,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) -> std::io::Result<()> {
    let reader = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(file)?);
    match parse_streamed(file, reader, config, errors) {
        Err(Stop::Io(e)) => Err(e),
        Err(Stop::Whole) => {
            let src = std::fs::read_to_string(file)?;
            parse_whole(file, &src, config, errors);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Parses one watchlist file's text, appending its watches and its problems.
pub fn parse_file(file: &Path, src: &str, config: &mut Config, errors: &mut Vec<ConfigError>) {
    match parse_streamed(file, src.as_bytes(), config, errors) {
        Ok(()) => {}
        // Reading from memory fails only on a layout that needs the whole text.
        Err(Stop::Whole | Stop::Io(_)) => parse_whole(file, src, config, errors),
    }
}

/// Why a watchlist could not be read a [[watch]] at a time.
enum Stop {
    /// Its layout needs a whole-file parse (see [`Chunks`]). What it added is undone.
    Whole,
    Io(std::io::Error),
}

/// One `[[watch]]` table's text: from its `[[watch]]` line to the next.
struct Chunk {
    text: String,
    /// Lines of the file before it.
    lines_before: usize,
}

/// A watchlist read a line at a time: the head (the text before the first `[[watch]]` line),
/// then one [`Chunk`] per `[[watch]]`.
///
/// Parsing the chunks one by one means the same as parsing the whole file when each parses
/// on its own as a document holding only its watch and the head holds no `watch`. Otherwise
/// (a table after the watches, a `[[watch]]` line inside a multi-line string, a syntax error)
/// the caller undoes what it added and parses the whole file, which reports any error with
/// its position.
struct Chunks<R> {
    reader: R,
    /// The `[[watch]]` line that starts the next chunk, and its 0-based line number.
    next: Option<(String, usize)>,
    line: usize,
}

impl<R: std::io::BufRead> Chunks<R> {
    /// Reads the head.
    fn open(reader: R) -> std::io::Result<(String, Self)> {
        let mut chunks = Chunks {
            reader,
            next: None,
            line: 0,
        };
        let mut head = String::new();
        chunks.read_to_header(&mut head)?;
        Ok((head, chunks))
    }

    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let Some((mut text, lines_before)) = self.next.take() else {
            return Ok(None);
        };
        self.read_to_header(&mut text)?;
        Ok(Some(Chunk { text, lines_before }))
    }

    /// Appends lines to `text` up to the next `[[watch]]` line (kept in `next`) or the end.
    fn read_to_header(&mut self, text: &mut String) -> std::io::Result<()> {
        let mut l = String::new();
        loop {
            l.clear();
            if self.reader.read_line(&mut l)? == 0 {
                return Ok(());
            }
            self.line += 1;
            if is_watch_header(&l) {
                self.next = Some((std::mem::take(&mut l), self.line - 1));
                return Ok(());
            }
            text.push_str(&l);
        }
    }
}

/// A `[[watch]]` line (comments and spaces aside).
fn is_watch_header(line: &str) -> bool {
    let t = line.trim();
    let t = t.split_once('#').map_or(t, |(code, _)| code.trim_end());
    t.strip_prefix("[[")
        .and_then(|t| t.strip_suffix("]]"))
        .is_some_and(|inner| inner.trim() == "watch")
}

/// The [[watch]] items of a chunk, when it holds nothing else.
fn chunk_items(chunk: &str) -> Option<Vec<toml::Spanned<toml::de::DeValue<'_>>>> {
    let mut t = toml::de::DeTable::parse(chunk).ok()?;
    if t.get_ref().len() != 1 {
        return None;
    }
    match t.get_mut().remove("watch").map(|v| v.into_inner()) {
        Some(toml::de::DeValue::Array(a)) => Some(a.into_iter().collect()),
        _ => None,
    }
}

/// What a file adds to a [`Config`], to take back when it has to be parsed again whole.
struct Undo {
    watches: usize,
    errors: usize,
    unresolved: usize,
    hosts: HashMap<String, HostSettings>,
    heartbeat_url: Option<UrlTemplate>,
    channels: BTreeMap<String, alert::Channel>,
}

impl Undo {
    fn of(config: &Config, errors: &[ConfigError]) -> Self {
        Undo {
            watches: config.watches.len(),
            errors: errors.len(),
            unresolved: config.unresolved.len(),
            hosts: config.hosts.clone(),
            heartbeat_url: config.heartbeat_url.clone(),
            channels: config.channels.clone(),
        }
    }

    fn undo(self, config: &mut Config, errors: &mut Vec<ConfigError>) {
        config.watches.truncate(self.watches);
        errors.truncate(self.errors);
        config.unresolved.truncate(self.unresolved);
        config.hosts = self.hosts;
        config.heartbeat_url = self.heartbeat_url;
        config.channels = self.channels;
    }
}

/// Parses a watchlist a [[watch]] at a time; [`Stop::Whole`] (with everything it added
/// undone) when the layout needs a whole-file parse.
fn parse_streamed<R: std::io::BufRead>(
    file: &Path,
    reader: R,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) -> Result<(), Stop> {
    let (head, mut chunks) = Chunks::open(reader).map_err(Stop::Io)?;
    if chunks.next.is_none() {
        // No [[watch]] line: the head is the whole file.
        parse_whole(file, &head, config, errors);
        return Ok(());
    }
    let undo = Undo::of(config, errors);
    let mut next = || chunks.next_chunk();
    match parse_with(file, &head, Some(&mut next), config, errors) {
        Ok(()) => Ok(()),
        Err(stop) => {
            undo.undo(config, errors);
            Err(stop)
        }
    }
}

/// Parses a watchlist's whole text at once.
fn parse_whole(file: &Path, src: &str, config: &mut Config, errors: &mut Vec<ConfigError>) {
    if src
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        errors.push(ConfigError::whole_file(
            file,
            "the watchlist is empty".into(),
            Some("add a [[watch]] table with `name` and `url` (see watchlists/example.toml), or delete the file".into()),
        ));
        return;
    }
    let _ = parse_with(file, src, None, config, errors);
}

type NextChunk<'a> = &'a mut dyn FnMut() -> std::io::Result<Option<Chunk>>;

/// Parses a watchlist: `src` is the whole text, or with `chunks` the head before the first
/// `[[watch]]` line, the watches coming from `chunks` one at a time. With `chunks`, a layout
/// that needs a whole-file parse stops it with [`Stop::Whole`] (the caller undoes what it added).
fn parse_with(
    file: &Path,
    src: &str,
    mut chunks: Option<NextChunk<'_>>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) -> Result<(), Stop> {
    let streamed = chunks.is_some();
    let toml_error =
        |e: toml::de::Error| ConfigError::at(file, src, e.span(), e.message().to_string());
    let mut root = match toml::de::DeTable::parse(src) {
        Ok(r) => r,
        Err(_) if streamed => return Err(Stop::Whole),
        Err(e) => {
            errors.push(toml_error(e));
            return Ok(());
        }
    };
    let watch_item = root.get_mut().remove("watch");
    if streamed && watch_item.is_some() {
        return Err(Stop::Whole);
    }
    let raw = match RawFile::deserialize(toml::de::Deserializer::from(root)) {
        Ok(r) => r,
        Err(_) if streamed => return Err(Stop::Whole),
        Err(e) => {
            errors.push(toml_error(e));
            return Ok(());
        }
    };
    for (host, h) in raw.hosts.into_iter().flatten() {
        let concurrency = match h.concurrency {
            Some(c) if *c.get_ref() == 0 => {
                errors.push(ConfigError::at(
                    file,
                    src,
                    Some(c.span()),
                    "`concurrency` must be at least 1".into(),
                ));
                None
            }
            Some(c) => Some(*c.get_ref() as usize),
            None => None,
        };
        config.hosts.insert(
            host.to_ascii_lowercase(),
            HostSettings {
                concurrency,
                interval: h.interval.map(|d| d.0),
            },
        );
    }
    if let Some(hb) = raw.heartbeat_url {
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
    for (name, raw_channel) in raw.channels.into_iter().flatten() {
        let span = raw_channel.span();
        let line = src[..span.start.min(src.len())].matches('\n').count() + 1;
        if let Some(first) = config.channels.get(&name) {
            errors.push(ConfigError::at(
                file,
                src,
                Some(span),
                format!(
                    "duplicate channel `{name}` (first declared at {}:{}): channel names are global across watchlists",
                    first.origin.file.display(),
                    first.origin.line
                ),
            ));
            continue;
        }
        if let Some(c) = channels::resolve(
            &name,
            raw_channel.into_inner(),
            span,
            file,
            src,
            line,
            errors,
        ) {
            config.channels.insert(name, c);
        }
    }
    // Each [[watch]] is deserialized and resolved in turn, and its parse tree dropped: a
    // 100,000-watch file never holds two forms of every watch at once.
    let mut items = Vec::new();
    if let Some(item) = watch_item {
        let span = item.span();
        match item.into_inner() {
            toml::de::DeValue::Array(array) => items = array.into_iter().collect(),
            _ => errors.push(ConfigError::at(
                file,
                src,
                Some(span),
                "`watch` must be a list of [[watch]] tables".into(),
            )),
        }
    }
    let defaults = raw.defaults.unwrap_or_default();
    // The text the spans being resolved are in: the whole file or its head, then each
    // streamed [[watch]] chunk; and the lines of the file before it.
    let ctx = std::cell::RefCell::new((std::borrow::Cow::Borrowed(src), 0usize));
    // 1-based line of a byte offset. Watches come in file order, so the newlines are counted
    // on from the previous watch's (a line index of a 100,000-watch file would be 4 MB).
    let counted = std::cell::Cell::new((0usize, 1usize));
    let line_of = |offset: usize| {
        let c = ctx.borrow();
        let offset = offset.min(c.0.len());
        let (mut from, mut line) = counted.get();
        if offset < from {
            (from, line) = (0, 1 + c.1);
        }
        line += c.0.as_bytes()[from..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted.set((offset, line));
        line
    };
    let at_opt = |span: Option<std::ops::Range<usize>>, msg: String| {
        let c = ctx.borrow();
        let mut e = ConfigError::at(file, &c.0, span, msg);
        if let Some(l) = e.line.as_mut() {
            *l += c.1;
        }
        e
    };
    let at = |span: std::ops::Range<usize>, msg: String| at_opt(Some(span), msg);
    let watch_error = |e: toml::de::Error| at_opt(e.span(), e.message().to_string());
    let check_headers = |headers: &BTreeMap<String, Spanned<String>>,
                         errors: &mut Vec<ConfigError>| {
        for (name, value) in headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(at(
                    value.span(),
                    format!("invalid HTTP header name `{name}`"),
                ));
            }
            if let Err(e) = types::expand_env_syntax(value.get_ref()) {
                errors.push(at(value.span(), e));
            }
        }
    };
    if let Some(h) = &defaults.headers {
        check_headers(h, errors);
    }
    let default_ignore = match &defaults.ignore {
        Some(i) => check_regexes(i.get_ref()).unwrap_or_else(|e| {
            errors.push(at(i.span(), e));
            Vec::new()
        }),
        None => Vec::new(),
    };
    // Checked once here, so a bad value is one problem, not one per watch.
    let default_zone = match &defaults.timezone {
        Some(z) => zone_of(z.get_ref()).unwrap_or_else(|e| {
            errors.push(at(z.span(), e));
            Zone::Local
        }),
        None => Zone::Local,
    };
    let default_schedule = match schedule_of(defaults.schedule.as_ref(), defaults.every.as_ref()) {
        Ok(s) => s,
        Err((span, e)) => {
            errors.push(at(span, e));
            None
        }
    };
    let default_masks = match &defaults.masks {
        Some(m) => masks_of(m.get_ref()).unwrap_or_else(|e| {
            errors.push(at(m.span(), e));
            MaskSet::none()
        }),
        None => MaskSet::all(),
    };
    if let Some(k) = &defaults.keep
        && *k.get_ref() == 0
    {
        errors.push(at(k.span(), "`keep` must be at least 1".into()));
    }
    if let Some(f) = &defaults.failures_before_alert
        && *f.get_ref() == 0
    {
        errors.push(at(
            f.span(),
            "`failures_before_alert` must be at least 1".into(),
        ));
    }
    // Channel names are checked once every file is read (a channel may be declared later).
    // The first place each name appears in this file is enough (and keeps a 100,000-watch
    // file from computing 100,000 error positions).
    let mut noted = std::collections::HashSet::new();
    let mut unresolved = Vec::new();
    let mut note_channels = |list: &Spanned<OneOrMany<String>>| -> Vec<String> {
        let names = list.get_ref().clone().into_vec();
        for n in &names {
            if noted.insert(n.clone()) {
                unresolved.push((n.clone(), at(list.span(), String::new())));
            }
        }
        names
    };
    let default_notify = defaults.notify.as_ref().map(&mut note_channels);
    let mut policies: HashMap<alert::AlertPolicy, std::sync::Arc<alert::AlertPolicy>> =
        HashMap::new();
    // Shared parts: one allocation per distinct value, not one per watch.
    let mut shared_specs: HashMap<String, std::sync::Arc<ExtractSpec>> = HashMap::new();
    let no_expect = std::sync::Arc::new(expect::Expect::default());
    let default_feed = std::sync::Arc::new(FeedOptions::default());
    let mut shared_settings: HashMap<SettingsKey, std::sync::Arc<WatchSettings>> = HashMap::new();
    let origin_file: std::sync::Arc<Path> = file.into();
    let out = &mut config.watches;
    out.reserve(items.len());
    let mut whole_items = Some(items);
    loop {
        if let Some(next) = chunks.as_mut() {
            let Some(chunk) = next().map_err(Stop::Io)? else {
                break;
            };
            counted.set((0, 1 + chunk.lines_before));
            *ctx.borrow_mut() = (std::borrow::Cow::Owned(chunk.text), chunk.lines_before);
        }
        let text = ctx.borrow();
        let items = if streamed {
            chunk_items(&text.0).ok_or(Stop::Whole)?
        } else {
            match whole_items.take() {
                Some(items) => items,
                None => break,
            }
        };
        for item in items {
            let w = match RawWatch::deserialize(toml::de::ValueDeserializer::from(item)) {
                Ok(w) => w,
                Err(e) => {
                    errors.push(watch_error(e));
                    continue;
                }
            };
            let notify = w.notify.as_ref().map(&mut note_channels);
            let name = w.name.get_ref().trim();
            if name.is_empty() || name.chars().any(char::is_control) {
                errors.push(at(
                    w.name.span(),
                    "a watch name must be a non-empty line of text".into(),
                ));
                continue;
            }
            let line = line_of(w.name.span().start);
            let mut ok = true;
            if let Some(h) = &w.headers {
                let before = errors.len();
                check_headers(h, errors);
                ok &= errors.len() == before;
            }
            // `select` and `remove`: checked for the watch's kind, or one problem at the key.
            type Check = fn(Kind, &[String]) -> Result<Vec<String>, String>;
            let mut selectors = |list: &Option<Spanned<OneOrMany<String>>>, check: Check| {
                let Some(s) = list else {
                    return Vec::new();
                };
                check(w.kind, &s.get_ref().clone().into_vec()).unwrap_or_else(|e| {
                    errors.push(at(s.span(), e));
                    ok = false;
                    Vec::new()
                })
            };
            let select = selectors(&w.select, ExtractSpec::check_select);
            let remove = selectors(&w.remove, ExtractSpec::check_remove);
            let keep = match w.keep.as_ref().or(defaults.keep.as_ref()) {
                Some(k) if *k.get_ref() == 0 => {
                    errors.push(at(k.span(), "`keep` must be at least 1".into()));
                    ok = false;
                    DEFAULT_KEEP
                }
                Some(k) => *k.get_ref(),
                None => DEFAULT_KEEP,
            };
            let confirm = match w.confirm.as_ref().or(defaults.confirm.as_ref()) {
                Some(c) if *c.get_ref() == 0 => {
                    errors.push(at(
                        c.span(),
                        "`confirm` must be at least 1 (1 reports a change at once)".into(),
                    ));
                    ok = false;
                    1
                }
                Some(c) => *c.get_ref(),
                None => 1,
            };
            let masks = match &w.masks {
                Some(m) => match masks_of(m.get_ref()) {
                    Ok(m) => m,
                    Err(e) => {
                        errors.push(at(m.span(), e));
                        ok = false;
                        MaskSet::none()
                    }
                },
                None => default_masks.clone(),
            };
            let zone = match &w.timezone {
                Some(z) => match zone_of(z.get_ref()) {
                    Ok(z) => z,
                    Err(e) => {
                        errors.push(at(z.span(), e));
                        ok = false;
                        Zone::Local
                    }
                },
                None => default_zone,
            };
            let schedule = match schedule_of(w.schedule.as_ref(), w.every.as_ref()) {
                Ok(Some(s)) => s,
                Ok(None) => default_schedule
                    .clone()
                    .unwrap_or(Schedule::Every(crate::schedule::DEFAULT_EVERY)),
                Err((span, e)) => {
                    errors.push(at(span, e));
                    ok = false;
                    Schedule::Every(crate::schedule::DEFAULT_EVERY)
                }
            };
            let mut expect = expect::Expect::default();
            if let Some(x) = &w.expect {
                if let Some(sels) = &x.selectors {
                    for s in sels.get_ref().clone().into_vec() {
                        match types::parse_selector(&s) {
                            Ok(sel) => expect.selectors.push((s, sel)),
                            Err(e) => {
                                errors.push(at(sels.span(), e));
                                ok = false;
                            }
                        }
                    }
                }
                expect.text = x.text.clone().map(OneOrMany::into_vec).unwrap_or_default();
                expect.absent = x
                    .absent
                    .clone()
                    .map(OneOrMany::into_vec)
                    .unwrap_or_default();
                expect.status = x.status;
                if let Some(paths) = &x.paths {
                    for p in paths.get_ref().clone().into_vec() {
                        match json_path::check_path(&p) {
                            Ok(()) => expect.paths.push(p),
                            Err(e) => {
                                errors.push(at(paths.span(), e));
                                ok = false;
                            }
                        }
                    }
                }
            }
            let ignore_paths = match &w.ignore_paths {
                Some(p) => {
                    let list = p.get_ref().clone().into_vec();
                    for path in &list {
                        if let Err(e) = json_path::check_path(path) {
                            errors.push(at(p.span(), e));
                            ok = false;
                        }
                    }
                    list
                }
                None => Vec::new(),
            };
            let mut regex_at = |r: &Option<Spanned<String>>, ok: &mut bool| match r {
                Some(r) => match regex::Regex::new(r.get_ref()) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        errors.push(at(r.span(), format!("invalid regex: {e}")));
                        *ok = false;
                        None
                    }
                },
                None => None,
            };
            let include_re = regex_at(&w.include, &mut ok);
            let pattern_re = regex_at(&w.pattern, &mut ok);
            let feed = FeedOptions {
                match_title: regex_at(&w.match_, &mut ok),
                exclude_title: regex_at(&w.exclude, &mut ok),
                max_entries: w
                    .max_entries
                    .as_ref()
                    .map_or(10, |m| (*m.get_ref()).max(1) as usize),
            };
            let own_ignore = match &w.ignore {
                Some(i) => match check_regexes(i.get_ref()) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(at(i.span(), e));
                        ok = false;
                        Vec::new()
                    }
                },
                None => Vec::new(),
            };
            let failures_before_alert = match w
                .failures_before_alert
                .as_ref()
                .or(defaults.failures_before_alert.as_ref())
            {
                Some(f) if *f.get_ref() == 0 => {
                    errors.push(at(
                        f.span(),
                        "`failures_before_alert` must be at least 1".into(),
                    ));
                    ok = false;
                    3
                }
                Some(f) => *f.get_ref(),
                None => 3,
            };
            if !ok {
                continue;
            }
            let (url, version) = match resolve_source(&w, &feed, include_re, pattern_re) {
                Ok(r) => r,
                Err((span, e)) => {
                    errors.push(at(span.unwrap_or_else(|| w.name.span()), e));
                    continue;
                }
            };
            let mut ignore = default_ignore.clone();
            ignore.extend(own_ignore);
            let mut headers: BTreeMap<String, String> = defaults
                .headers
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect();
            for (k, v) in w.headers.into_iter().flatten() {
                headers.insert(k, v.into_inner());
            }
            let spec = match ExtractSpec::new(w.kind, select, remove, ignore) {
                Ok(s) => {
                    let s = s.with_masks(masks).with_ignore_paths(ignore_paths);
                    shared_specs
                        .entry(s.fingerprint())
                        .or_insert_with(|| std::sync::Arc::new(s))
                        .clone()
                }
                Err(e) => {
                    errors.push(at(w.name.span(), e));
                    continue;
                }
            };
            let expect = if expect.is_empty() {
                no_expect.clone()
            } else {
                std::sync::Arc::new(expect)
            };
            let settings = WatchSettings {
                file: origin_file.clone(),
                expect,
                track_assets: w.track_assets.unwrap_or(false),
                insecure: w.insecure.unwrap_or(false),
                spec,
                headers: headers.into_iter().collect(),
                timeout: w
                    .timeout
                    .or(defaults.timeout)
                    .map_or(DEFAULT_TIMEOUT, |d| d.0),
                keep,
                keep_for: w.keep_for.or(defaults.keep_for).map(|d| d.0),
                max_size: w
                    .max_size
                    .or(defaults.max_size)
                    .map_or(DEFAULT_MAX_SIZE, |s| s.0),
                confirm,
                confirm_refetch: w
                    .confirm_refetch
                    .or(defaults.confirm_refetch)
                    .unwrap_or(true),
                timing: Timing { schedule, zone },
                // One shared policy per distinct setting, not one allocation per watch.
                alert: {
                    let policy = alert::AlertPolicy {
                        // Names for now; `resolve_notify` adds each channel's `min_severity`.
                        targets: notify
                            .or_else(|| default_notify.clone())
                            .unwrap_or_default()
                            .into_iter()
                            .map(|n| (n, crate::event::Severity::Info))
                            .collect(),
                        severity: w.severity.or(defaults.severity).unwrap_or_default(),
                        failures_before_alert,
                        remind_every: w.remind_every.or(defaults.remind_every).map(|d| d.0),
                    };
                    policies
                        .entry(policy.clone())
                        .or_insert_with(|| std::sync::Arc::new(policy))
                        .clone()
                },
                retries: w.retries.or(defaults.retries).unwrap_or(2).min(10),
                feed: if feed.is_default() {
                    default_feed.clone()
                } else {
                    std::sync::Arc::new(feed)
                },
                version: version.map(Box::new),
            };
            let settings = match SettingsKey::of(&settings, &default_feed, &no_expect) {
                Some(key) => shared_settings
                    .entry(key)
                    .or_insert_with(|| std::sync::Arc::new(settings))
                    .clone(),
                None => std::sync::Arc::new(settings),
            };
            out.push(Watch::new(name, url.template(), line, settings));
        }
    }
    config.unresolved.extend(unresolved);
    Ok(())
}

type Resolved = (UrlTemplate, Option<version::VersionSpec>);

/// The URL a watch fetches, and for `kind = "version"` how to read versions: the source's
/// real path under its base URL (`registry` overrides the base).
fn resolve_source(
    w: &RawWatch,
    feed: &FeedOptions,
    include: Option<regex::Regex>,
    pattern: Option<regex::Regex>,
) -> Result<Resolved, (Option<std::ops::Range<usize>>, String)> {
    use version::{Source, VersionSpec};
    if w.kind != Kind::Version {
        for (key, set) in [
            ("source", w.source.is_some()),
            ("package", w.package.is_some()),
            ("repo", w.repo.is_some()),
            ("registry", w.registry.is_some()),
            ("pattern", w.pattern.is_some()),
            ("include", w.include.is_some()),
        ] {
            if set {
                return Err((None, format!("`{key}` is for kind = \"version\" watches")));
            }
        }
        let url = w
            .url
            .as_ref()
            .ok_or((None, "missing field `url`".to_string()))?;
        return Ok((url.get_ref().clone(), None));
    }
    let source = w.source.as_ref().ok_or((
        None,
        "kind = \"version\" needs `source`: github, crates, npm, pypi, regex or json".to_string(),
    ))?;
    let src = *source.get_ref();
    let name = match src {
        Source::Crates | Source::Npm | Source::Pypi => w
            .package
            .as_ref()
            .map(|p| p.get_ref().trim().to_string())
            .filter(|p| !p.is_empty())
            .ok_or((
                Some(source.span()),
                format!(
                    "source = \"{}\" needs `package`",
                    format!("{src:?}").to_lowercase()
                ),
            ))?,
        Source::Github => {
            let repo = w.repo.as_ref().ok_or((
                Some(source.span()),
                "source = \"github\" needs `repo = \"owner/name\"`".to_string(),
            ))?;
            let r = repo.get_ref().trim();
            if r.split('/').filter(|p| !p.is_empty()).count() != 2 {
                return Err((
                    Some(repo.span()),
                    format!("`repo` must be \"owner/name\", not `{r}`"),
                ));
            }
            r.to_string()
        }
        Source::Regex | Source::Json => String::new(),
    };
    let url = match src {
        Source::Regex | Source::Json => {
            let url = w.url.as_ref().ok_or((
                Some(source.span()),
                format!(
                    "source = \"{}\" needs `url`",
                    format!("{src:?}").to_lowercase()
                ),
            ))?;
            if src == Source::Regex && pattern.is_none() {
                return Err((
                    Some(source.span()),
                    "source = \"regex\" needs `pattern` with a capture group for the version"
                        .into(),
                ));
            }
            url.get_ref().clone()
        }
        _ => {
            let base = w
                .registry
                .as_ref()
                .map(|r| r.get_ref().template().trim_end_matches('/').to_string())
                .unwrap_or_else(|| src.default_base().to_string());
            let spec_path = VersionSpec {
                source: src,
                name: name.clone(),
                tags: w.tags.unwrap_or(false),
                prerelease: false,
                prefix: None,
                include: None,
                exclude: None,
                pattern: None,
                pointer: None,
            }
            .path();
            UrlTemplate::try_from(format!("{base}{spec_path}")).map_err(|e| (None, e))?
        }
    };
    Ok((
        url,
        Some(VersionSpec {
            source: src,
            name,
            tags: w.tags.unwrap_or(false),
            prerelease: w.prerelease.unwrap_or(false),
            prefix: w.prefix.clone(),
            include,
            exclude: feed.exclude_title.clone(),
            pattern,
            pointer: w.pointer.clone(),
        }),
    ))
}

fn zone_of(name: &str) -> Result<Zone, String> {
    name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
        format!("unknown time zone `{name}`: use an IANA name like \"Europe/Berlin\" or \"UTC\"")
    })
}

/// `schedule` (cron) or `every`, not both.
fn schedule_of(
    cron: Option<&Spanned<String>>,
    every: Option<&Spanned<DurationStr>>,
) -> Result<Option<Schedule>, (std::ops::Range<usize>, String)> {
    match (cron, every) {
        (Some(c), Some(_)) => Err((
            c.span(),
            "set `schedule` (cron) or `every`, not both".into(),
        )),
        (Some(c), None) => Schedule::cron(c.get_ref())
            .map(Some)
            .map_err(|e| (c.span(), e)),
        (None, Some(e)) => Ok(Some(Schedule::Every(e.get_ref().0))),
        (None, None) => Ok(None),
    }
}

fn masks_of(setting: &MasksSetting) -> Result<MaskSet, String> {
    match setting {
        MasksSetting::All(true) => Ok(MaskSet::all()),
        MasksSetting::All(false) => Ok(MaskSet::none()),
        MasksSetting::Some(list) => MaskSet::from_names(list),
    }
}

fn check_regexes(list: &OneOrMany<String>) -> Result<Vec<String>, String> {
    let list = list.clone().into_vec();
    for r in &list {
        RegexStr::try_from(r.clone())?;
    }
    Ok(list)
}

/// Every `notify` entry must name a declared channel; each watch's targets get the
/// channel's `min_severity`.
fn resolve_notify(config: &mut Config, errors: &mut Vec<ConfigError>) {
    let mut reported = std::collections::HashSet::new();
    for (name, mut err) in std::mem::take(&mut config.unresolved) {
        if config.channels.contains_key(&name) {
            continue;
        }
        if !reported.insert((name.clone(), err.file.clone(), err.line)) {
            continue;
        }
        err.message = format!("`notify` names `{name}`, but no [channels.{name}] is declared");
        err.hint = Some(
            match closest(&name, config.channels.keys().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None if config.channels.is_empty() => format!(
                    "declare it in a watchlist or in forewarn.toml beside the watchlists: [channels.{name}] type = \"desktop\""
                ),
                None => format!(
                    "declared channels: {}",
                    config
                        .channels
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        );
        errors.push(err);
    }
    let mut resolved: HashMap<alert::AlertPolicy, std::sync::Arc<alert::AlertPolicy>> =
        HashMap::new();
    // Each shared copy of settings is resolved once, and stays shared.
    let mut settings: HashMap<*const WatchSettings, std::sync::Arc<WatchSettings>> = HashMap::new();
    for w in &mut config.watches {
        if w.settings.alert.targets.is_empty() {
            continue;
        }
        if let Some(s) = settings.get(&std::sync::Arc::as_ptr(&w.settings)) {
            w.settings = s.clone();
            continue;
        }
        let channels = &config.channels;
        let alert = &w.settings.alert;
        let alert = resolved
            .entry((**alert).clone())
            .or_insert_with(|| {
                let mut p = (**alert).clone();
                p.targets = p
                    .targets
                    .iter()
                    .filter_map(|(n, _)| channels.get(n).map(|c| (n.clone(), c.min_severity)))
                    .collect();
                std::sync::Arc::new(p)
            })
            .clone();
        let old = std::sync::Arc::as_ptr(&w.settings);
        w.settings = std::sync::Arc::new(WatchSettings {
            alert,
            ..(*w.settings).clone()
        });
        settings.insert(old, w.settings.clone());
    }
}

fn check_unique_names(watches: &[Watch], errors: &mut Vec<ConfigError>) {
    let mut seen: HashMap<&str, &Watch> = HashMap::with_capacity(watches.len());
    for w in watches {
        if let Some(first) = seen.get(w.name()).map(|f| f.origin()) {
            let mut e = ConfigError::whole_file(
                &w.origin().file,
                format!(
                    "duplicate watch name `{}` (first declared at {}:{})",
                    w.name(),
                    first.file.display(),
                    first.line
                ),
                Some(
                    "watch names are the key in the database: give each watch its own name".into(),
                ),
            );
            e.line = Some(w.origin().line);
            e.column = Some(1);
            errors.push(e);
        } else {
            seen.insert(w.name(), w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> (Vec<Watch>, Vec<ConfigError>) {
        let mut c = Config::default();
        let mut e = Vec::new();
        parse_file(Path::new("t.toml"), src, &mut c, &mut e);
        (c.watches, e)
    }

    #[test]
    fn defaults_apply() {
        let (w, e) = parse(
            r##"
[defaults]
timeout = "5s"
headers = { "X-A" = "1" }
[[watch]]
name = "a"
url = "https://example.com/"
select = "#x"
headers = { "X-B" = "${TOKEN}" }
"##,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w[0].settings.timeout, Duration::from_secs(5));
        assert_eq!(w[0].settings.headers.len(), 2);
        assert_eq!(w[0].origin().line, 6);
    }

    #[test]
    fn bad_selector_is_located() {
        let (_, e) = parse("[[watch]]\nname = \"a\"\nurl = \"https://e.com/\"\nselect = \"##\"\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, Some(4));
        assert!(e[0].message.contains("invalid CSS selector"), "{}", e[0]);
    }

    #[test]
    fn bad_default_masks_are_one_problem() {
        let (_, e) = parse(
            "[defaults]\nmasks = [\"nope\"]\n[[watch]]\nname = \"a\"\nurl = \"https://e.com/\"\n[[watch]]\nname = \"b\"\nurl = \"https://e.com/b\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(2));
    }

    /// Whether a watchlist parses a [[watch]] at a time (else it is parsed whole).
    fn streams(src: &str) -> bool {
        let (mut c, mut e) = (Config::default(), Vec::new());
        parse_streamed(Path::new("t.toml"), src.as_bytes(), &mut c, &mut e).is_ok()
    }

    /// A file with several watches, one with a subtable and one with two mistakes.
    const CHUNKY: &str = r##"# head
[defaults]
timeout = "5s"

[[watch]]
name = "a"
url = "https://e.com/a"
[watch.expect]
selectors = ["#app"]

[[watch]]   # a comment
name = "b"
url = "https://e.com/b"
selct = "#x"

  [[ watch ]]
name = "c"
url = "https://e.com/c"
keep = 0
"##;

    #[test]
    fn watches_parsed_one_at_a_time_mean_what_the_whole_file_means() {
        assert!(streams(CHUNKY));
        let (w, e) = parse(CHUNKY);
        // The same file with a table after the watches is parsed whole.
        let whole = format!("{CHUNKY}\n[hosts.\"e.com\"]\nconcurrency = 1\n");
        assert!(!streams(&whole));
        let (w2, e2) = parse(&whole);
        for (w, e) in [(&w, &e), (&w2, &e2)] {
            let names: Vec<_> = w.iter().map(|w| (w.name(), w.origin().line)).collect();
            assert_eq!(names, [("a", 6)]);
            assert_eq!(w[0].settings.timeout, Duration::from_secs(5));
            assert!(!w[0].settings.expect.is_empty());
            let at: Vec<_> = e.iter().map(|e| (e.line, e.column)).collect();
            assert_eq!(at, [(Some(14), Some(1)), (Some(19), Some(8))], "{e:?}");
            assert!(e[0].message.contains("selct"), "{}", e[0]);
            assert!(e[0].snippet.as_ref().unwrap().0.starts_with("selct"));
        }
    }

    #[test]
    fn watches_with_the_same_settings_share_one_copy() {
        let mut src = String::from(
            "[defaults]\ntimeout = \"5s\"\nnotify = [\"me\"]\n[channels.me]\ntype = \"command\"\ncommand = \"true\"\n",
        );
        for i in 0..6 {
            let own = match i {
                2 => "timeout = \"9s\"\n",
                4 => "expect = { text = \"Sign in\" }\n",
                _ => "",
            };
            src.push_str(&format!(
                "\n[[watch]]\nname = \"w{i}\"\nurl = \"https://example.com/{i}\"\n{own}"
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(&file, &src).unwrap();
        for src in [
            src.clone(),
            format!("{src}\n[hosts.\"e.com\"]\nconcurrency = 1\n"),
        ] {
            std::fs::write(&file, &src).unwrap();
            let c = load(std::slice::from_ref(&file)).unwrap();
            let w = &c.watches;
            let shared =
                |a: usize, b: usize| std::sync::Arc::ptr_eq(&w[a].settings, &w[b].settings);
            assert!(shared(0, 1) && shared(0, 3) && shared(0, 5));
            assert!(!shared(0, 2), "its own timeout");
            assert!(!shared(0, 4), "its own expectation");
            assert_eq!(w[2].settings.timeout, Duration::from_secs(9));
            assert_eq!(w[5].settings.timeout, Duration::from_secs(5));
            // Channels resolved once per copy, and still shared.
            for w in w {
                assert_eq!(w.settings.alert.targets.len(), 1, "{}", w.name());
            }
            let lines: Vec<_> = w.iter().map(|w| w.origin().line).collect();
            assert_eq!(lines, [9, 13, 17, 22, 26, 31]);
        }
    }

    #[test]
    fn what_chunks_cannot_mean_is_parsed_whole() {
        // `[[watch]]` inside a multi-line string: a chunk would not parse alone.
        let src = "[[watch]]\nname = \"a\"\nurl = \"https://e.com/\"\nheaders = { X = \"\"\"\n[[watch]]\n\"\"\" }\n";
        assert!(!streams(src));
        let (w, e) = parse(src);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].settings.headers, [("X".into(), "[[watch]]\n".into())]);
        // A syntax error is reported by the whole-file parse, at its place.
        let (_, e) = parse("[[watch]]\nname = \"a\"\n[[watch]]\nname = = 1\n");
        assert_eq!(e[0].line, Some(4), "{e:?}");
        // Watches written as an inline array before any [[watch]] line.
        let (w, e) = parse("watch = [{ name = \"a\", url = \"https://e.com/\" }]\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn empty_file_is_an_error() {
        let (_, e) = parse("# nothing here\n\n");
        assert!(e[0].message.contains("empty"));
    }
}
