//! Command-line interface: global flags and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  the pass completed (changes found or not)
  1  internal error (database, I/O)
  2  one or more watches failed (the others ran)
  3  invalid watchlist or arguments (nothing fetched)
  4  with --fail-on-change: changes were found, as the summary counts them: changed,
     schema_changed, new_entry, entry_updated, new_version, contract_broken,
     deploy_detected, selector_missing (2 wins when watches also failed)";

/// forewarn: an early-warning crawler for third-party changes.
///
/// Polls the pages, JSON APIs and feeds in your watchlists, asks cheaply whether anything
/// changed (conditional requests, then a hash of the extracted content) and reports what did.
#[derive(Debug, Parser)]
#[command(name = "forewarn", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// The database [default: $XDG_DATA_HOME/forewarn/forewarn.db]
    #[arg(long, global = true, env = "FOREWARN_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// A watchlist file or folder of *.toml (repeatable) [default: ./watchlists/, else
    /// $XDG_CONFIG_HOME/forewarn/watchlists/]
    #[arg(long = "watchlist", global = true, value_name = "PATH")]
    pub watchlists: Vec<PathBuf>,

    /// Colour diffs and headings: on a terminal only (auto; never when NO_COLOR is set), or
    /// always, or never
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    pub color: crate::report::color::ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every watch once and report what changed (what cron runs)
    Check(CheckArgs),
    /// Run as a daemon: check every watch on its own schedule until stopped
    Watch(WatchArgs),
    /// Add a watch to a watchlist, keeping the file's comments and layout
    Add(Box<AddArgs>),
    /// Remove a watch from its watchlist (its stored history stays), keeping comments
    Remove(NameArgs),
    /// Stop checking a watch without removing it (`enabled = false` in its watchlist)
    Disable(NameArgs),
    /// Check a disabled watch again
    Enable(NameArgs),
    /// Fetch one watch and show what would be compared, without writing anything
    Test(TestArgs),
    /// Show each watch: last check, last change, state, validators
    List(ListArgs),
    /// Read past changes back from the database
    Report(ReportArgs),
    /// What happened, in order: changes, failures, recoveries, contract breaks
    Timeline(TimelineArgs),
    /// A one-page account of an upstream incident, for the team and its customers
    Incident(IncidentArgs),
    /// Print a stored snapshot (the newest by default)
    Show(ShowArgs),
    /// Diff two stored snapshots of a watch (the last two by default)
    Diff(DiffArgs),
    /// Prune snapshots to each watch's keep / keep_for and compact the database
    Gc,
    /// Notification channels: send a test message, show delivery state, retry failures
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Acknowledge an escalating event (by id) or every open one of a watch: its remaining
    /// escalation steps are not taken
    Ack(AckArgs),
    /// Start a watchlist folder: a commented starter watchlist and a forewarn.toml
    Init(InitArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), for `man -l -` or a man folder
    Man,
    /// Write a watchlist from another tool's list, saying by line what could not be imported
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tool the list is from
    #[arg(value_enum)]
    pub source: ImportSource,
    /// Its list (urlwatch: urls.yaml; changedetection: url-watches.json or a backup .zip;
    /// nvchecker: its .toml)
    pub file: PathBuf,
    /// Write the watchlist to FILE [default: standard output]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportSource {
    /// urlwatch's jobs file (urls.yaml)
    Urlwatch,
    /// changedetection.io's url-watches.json, or a backup archive holding it
    Changedetection,
    /// nvchecker's configuration (packages as `kind = "version"` watches)
    Nvchecker,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to set up [default: the current one]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The event id (`report` and the messages show it), or a watch's name
    #[arg(required_unless_present = "list")]
    pub target: Option<String>,
    /// Why, or what is being done: kept with the acknowledgement, shown in the timeline
    #[arg(long)]
    pub note: Option<String>,
    /// The escalations not yet acknowledged
    #[arg(long, conflicts_with = "target")]
    pub list: bool,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a sample message through a channel and say exactly what went wrong if it fails
    Test {
        /// The channel, as declared in [channels.NAME]
        channel: String,
    },
    /// Each channel: delivered, pending and failed notifications, and the last error
    Status {
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Send what is due now (retries, closing batch windows, escalation steps) and exit: for cron
    Deliver,
    /// Queue the notifications that failed for good (or one channel's) for another try, and
    /// deliver what is due now
    Retry {
        /// Only this channel
        channel: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Markdown,
    Json,
    /// One self-contained HTML file (inline CSS, no script, no remote resource)
    Html,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only this watch (repeatable)
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Output format: a text report, or JSON Lines (one event per line)
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Exit 4 when changes were found
    #[arg(long)]
    pub fail_on_change: bool,
    /// Check only the watches whose schedule fired since their last check (for cron:
    /// `*/5 * * * * forewarn check --due`)
    #[arg(long)]
    pub due: bool,
    /// Requests in flight at once, across all hosts
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Requests in flight at once to one host
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub per_host: u16,
    /// Pages of browser watches loaded at once (tabs of the one browser)
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub browser_tabs: u16,
    /// Do not send notifications now: they stay queued for the next run
    #[arg(long)]
    pub no_notify: bool,
    /// How long to spend delivering notifications before exiting (what is left stays
    /// queued for the next run)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_since)]
    pub notify_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Log format on stderr: one line per check (watch, outcome, status, time taken)
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Requests in flight at once, across all hosts
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Requests in flight at once to one host
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub per_host: u16,
    /// Pages of browser watches loaded at once (tabs of the one browser)
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub browser_tabs: u16,
    /// Serve Prometheus metrics at http://ADDR/metrics and a health check at /healthz
    /// (ADDR is host:port, or a port on 127.0.0.1)
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics_addr)]
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The URL to watch (a version watch of github, crates, npm or pypi needs none)
    pub url: Option<String>,
    /// The watch's name, unique across all watchlists [default: from the URL]
    #[arg(long)]
    pub name: Option<String>,
    /// CSS selector of a part to compare (repeatable)
    #[arg(long, value_name = "CSS")]
    pub select: Vec<String>,
    /// CSS selector of a part to drop before comparing (repeatable)
    #[arg(long, value_name = "CSS")]
    pub remove: Vec<String>,
    /// Regex deleted before comparing (repeatable)
    #[arg(long, value_name = "REGEX")]
    pub ignore: Vec<String>,
    /// How to read the body: auto, html, text, json, yaml, feed or version
    #[arg(long)]
    pub kind: Option<String>,
    /// How often to check, like 15m or 1h (instead of the watchlist's default schedule)
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// When to check, as a cron line like "*/15 * * * *"
    #[arg(long, value_name = "CRON", conflicts_with = "every")]
    pub schedule: Option<String>,
    /// A channel to notify, declared as [channels.NAME] (repeatable)
    #[arg(long, value_name = "CHANNEL")]
    pub notify: Vec<String>,
    /// A CSS selector the integration needs on the page: `expect.selectors` (repeatable)
    #[arg(long, value_name = "CSS")]
    pub expect_selector: Vec<String>,
    /// A version watch: where releases are read (github, crates, npm, pypi, regex or json)
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// The package of a crates, npm or pypi version watch
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// The OWNER/NAME of a github version watch
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The watch, by name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The watch to fetch
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Show each watch's last error whole (the table cuts it to fit)
    #[arg(long)]
    pub long: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only this watch
    pub name: Option<String>,
    /// How far back, like 7d, 12h or 30m
    #[arg(long, default_value = "7d", value_parser = parse_since)]
    pub since: std::time::Duration,
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Include every event (baselines, recoveries), not only changes and problems
    #[arg(long)]
    pub all: bool,
    /// Write the report to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimelineFormat {
    Markdown,
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IncidentFormat {
    Markdown,
    Html,
}

#[derive(Debug, Args)]
pub struct IncidentArgs {
    /// How far back the incident goes, like 2d, 12h or 30m
    #[arg(long, default_value = "7d", value_parser = parse_since)]
    pub since: std::time::Duration,
    /// Only this watch's events
    #[arg(long, value_name = "NAME")]
    pub watch: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = IncidentFormat::Markdown)]
    pub format: IncidentFormat,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// How far back, like 2d, 12h or 30m
    #[arg(long, default_value = "2d", value_parser = parse_since)]
    pub since: std::time::Duration,
    /// Output format
    #[arg(long, value_enum, default_value_t = TimelineFormat::Markdown)]
    pub format: TimelineFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The watch
    pub name: String,
    /// The snapshot id: `report` shows each event's (`snapshot`, `previous_snapshot` in its JSON)
    pub id: Option<i64>,
    /// The snapshot's screenshot (PNG) instead of its text: browser watches with `screenshot = true`
    #[arg(long)]
    pub screenshot: bool,
    /// Write to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The watch
    pub name: String,
    /// The older snapshot id [default: the one before the newest]
    #[arg(long)]
    pub from: Option<i64>,
    /// The newer snapshot id [default: the newest]
    #[arg(long)]
    pub to: Option<i64>,
}

/// `watch --metrics ADDR`: host:port, or a bare port on 127.0.0.1.
fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not an address: give host:port (127.0.0.1:9464) or a port"))
}

fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write it like 7d, 12h or 30m"))
}
