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
mod raw;
mod read;
mod resolve;
mod settings;
pub mod spec;
pub mod types;
pub mod version;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use diagnostic::{ConfigError, ConfigErrors, closest};
pub use read::parse_file;
pub use settings::{
    BrowserSettings, BrowserSpec, FeedOptions, HostSettings, Step, Verify, VerifyCommand,
    WatchSettings,
};
pub use types::{ByteSize, DurationStr, OneOrMany, RegexStr, UrlTemplate};

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
    /// YAML (an OpenAPI document, a config): compared as a structured document, like JSON.
    Yaml,
    /// RSS, Atom or JSON Feed: compared entry by entry.
    Feed,
    /// The newest version a registry, GitHub, a page or a document lists.
    Version,
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

/// Everything loaded from the watchlists.
#[derive(Debug, Default)]
pub struct Config {
    pub watches: Vec<Watch>,
    /// Watches with `enabled = false`: validated and their names reserved, never checked.
    pub disabled: Vec<Watch>,
    pub files: Vec<PathBuf>,
    /// Per-host politeness, by host name (with `:port` when not the scheme's default).
    pub hosts: HashMap<String, HostSettings>,
    /// Pinged after every pass, so a dead crawler is noticed too.
    pub heartbeat_url: Option<UrlTemplate>,
    /// `[browser]`: the browser browser watches run in, when a watchlist says.
    pub browser: Option<BrowserSettings>,
    /// `[escalations.NAME]` from every file.
    pub escalations: BTreeMap<String, alert::Escalation>,
    /// `[channels.NAME]` from every file.
    pub channels: BTreeMap<String, alert::Channel>,
    /// `notify` entries to check once every file is read: (channel name, where it was written).
    pub(super) unresolved: Vec<(String, ConfigError)>,
}

impl Config {
    pub fn find(&self, name: &str) -> Option<&Watch> {
        self.watches.iter().find(|w| w.name() == name)
    }

    /// Error text for a name that matches no watch, with a suggestion.
    pub fn unknown_watch(&self, name: &str) -> String {
        if let Some(w) = self.disabled.iter().find(|w| w.name() == name) {
            let at = w.origin();
            return format!(
                "the watch `{name}` is disabled ({}:{}, `enabled = false`): `forewarn enable {name}` turns it back on",
                at.file.display(),
                at.line
            );
        }
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
    let mut extra = Vec::new();
    for root in &roots {
        if let Some(shared) = shared_file_for(root)
            && !files.iter().chain(&extra).any(|f| same_file(f, &shared))
        {
            extra.push(shared);
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

/// `forewarn.toml` beside the watchlists: channels and hosts shared by every watchlist. Next
/// to a watchlist folder; for a watchlist file, in its folder or else beside that folder
/// (`watchlists/vendor.toml` finds the `forewarn.toml` next to `watchlists/`, as the whole
/// folder does).
fn shared_file_for(root: &Path) -> Option<PathBuf> {
    let folder = |p: &Path| -> PathBuf {
        match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let mut dirs = vec![folder(root)];
    if !root.is_dir() && dirs[0] != Path::new(".") {
        dirs.push(folder(&dirs[0]));
    }
    dirs.into_iter()
        .map(|d| d.join(SHARED_FILE))
        .find(|f| f.is_file())
}

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
        if let Err(e) = read::read_watchlist(file, &mut config, &mut errors) {
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
    // In file order, and in each file by line (a watch's problems come as serde finds them).
    errors.sort_by_key(|e| (files.iter().position(|f| *f == e.file), e.line));
    check_unique_names(config.watches.iter().chain(&config.disabled), &mut errors);
    resolve_notify(&mut config, &mut errors);
    config.files = files;
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
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
    let escalations = &config.escalations;
    for w in &mut config.watches {
        if let Some(e) = &w.settings.alert.escalate
            && !escalations.contains_key(&e.name)
            && reported.insert((e.name.clone(), w.origin().file.to_path_buf(), None))
        {
            let mut err = ConfigError::whole_file(
                &w.origin().file,
                format!(
                    "`escalate` names `{}`, but no [escalations.{}] is declared",
                    e.name, e.name
                ),
                closest(&e.name, escalations.keys().map(String::as_str))
                    .map(|b| format!("did you mean `{b}`?")),
            );
            err.line = Some(w.origin().line);
            errors.push(err);
        }
        if w.settings.alert.targets.is_empty() && w.settings.alert.escalate.is_none() {
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
                p.escalate = p.escalate.and_then(|e| escalations.get(&e.name).cloned());
                p.resolves = p
                    .targets
                    .iter()
                    .filter(|(n, _)| {
                        channels
                            .get(n)
                            .is_some_and(|c| matches!(c.target, alert::Target::PagerDuty { .. }))
                    })
                    .map(|(n, _)| n.clone())
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

fn check_unique_names<'a>(watches: impl Iterator<Item = &'a Watch>, errors: &mut Vec<ConfigError>) {
    let mut seen: HashMap<&str, &Watch> = HashMap::with_capacity(watches.size_hint().0);
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
        read::parse_streamed(Path::new("t.toml"), src.as_bytes(), &mut c, &mut e).is_ok()
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
            // `b` is read past its unknown key, so its other problems show too; `c`, with a
            // wrong value, is not resolved (the load fails all the same).
            assert_eq!(names, [("a", 6), ("b", 12)]);
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
        let src = "[[watch]]\nname = \"a\"\nurl = \"https://e.com/\"\nignore = \"\"\"\n[[watch]]\n\"\"\"\n";
        assert!(!streams(src));
        let (w, e) = parse(src);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].settings.spec.ignore, ["[[watch]]\n"]);
        // A syntax error is reported by the whole-file parse, at its place.
        let (_, e) = parse("[[watch]]\nname = \"a\"\n[[watch]]\nname = = 1\n");
        assert_eq!(e[0].line, Some(4), "{e:?}");
        // Watches written as an inline array before any [[watch]] line.
        let (w, e) = parse("watch = [{ name = \"a\", url = \"https://e.com/\" }]\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn each_count_below_one_is_reported_at_its_value() {
        let (w, e) = parse(
            "[defaults]\nkeep = 0\n[hosts.\"e.com\"]\nconcurrency = 0\n\n[[watch]]\nname = \"a\"\nurl = \"https://e.com/a\"\nconfirm = 0\n\n[[watch]]\nname = \"b\"\nurl = \"https://e.com/b\"\nfailures_before_alert = 0\n\n[[watch]]\nname = \"c\"\nurl = \"https://e.com/c\"\n",
        );
        let at: Vec<_> = e.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(
            at,
            [
                (Some(2), Some(8)),
                (Some(4), Some(15)),
                (Some(9), Some(11)),
                (Some(14), Some(25))
            ],
            "{e:?}"
        );
        for (e, key) in e
            .iter()
            .zip(["keep", "concurrency", "confirm", "failures_before_alert"])
        {
            assert!(
                e.message
                    .starts_with(&format!("`{key}` must be at least 1")),
                "{e}"
            );
        }
        // A wrong default does not hide the watches: the good one is still read.
        assert_eq!(w.iter().map(|w| w.name()).collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn empty_file_is_an_error() {
        let (_, e) = parse("# nothing here\n\n");
        assert!(e[0].message.contains("empty"));
    }
}
