//! Where a watch's events go: the channels declared in `[channels.NAME]`, and each watch's
//! routing and loudness (`notify`, `severity`, `failures_before_alert`, `remind_every`).

use std::time::Duration;

use super::{Origin, UrlTemplate};
use crate::event::Severity;

/// A channel, as declared in `[channels.NAME]`.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub target: Target,
    /// Events below this severity are not sent here.
    pub min_severity: Severity,
    pub batch: Batch,
    /// Events at or above this severity skip a `batch` window.
    pub immediate: Option<Severity>,
    /// How long one delivery may take.
    pub timeout: Duration,
    pub origin: Origin,
}

/// `[escalations.NAME]`: events at or above `min_severity` go to each step's channel in
/// turn, each `after` the one before, until someone acknowledges (`forewarn ack`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Escalation {
    pub name: String,
    pub min_severity: Severity,
    /// (wait after the step before, channel); the first step's wait counts from the event.
    pub steps: Vec<(Duration, String)>,
}

/// How a channel groups events into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// One message per pass (a digest when the pass found several events). The default.
    Pass,
    /// One message per event.
    None,
    /// Events are collected from the first one on for this long, then sent as one digest.
    Window(Duration),
}

#[derive(Debug, Clone)]
pub enum Target {
    Desktop,
    Webhook {
        url: UrlTemplate,
        /// HMAC-SHA256 key for the `X-Forewarn-Signature` header (`${VAR}` allowed).
        secret: Option<String>,
        headers: Vec<(String, String)>,
    },
    Slack {
        url: UrlTemplate,
    },
    Discord {
        url: UrlTemplate,
    },
    Email(EmailTarget),
    Command {
        argv: Vec<String>,
        /// A single string is run by `sh -c`; a list is run as is.
        shell: bool,
    },
    /// An ntfy topic (`url`), with an access `token` for a protected one.
    Ntfy {
        url: UrlTemplate,
        token: Option<String>,
    },
    /// PagerDuty's Events API v2: a trigger per event, a resolve when its condition clears.
    PagerDuty {
        routing_key: String,
        api_url: String,
    },
    Telegram {
        bot_token: String,
        chat_id: String,
        api_url: String,
    },
    /// A text message, or a call that speaks a short summary, to each of `to`.
    Twilio {
        account_sid: String,
        auth_token: String,
        from: String,
        to: Vec<String>,
        call: bool,
        api_url: String,
    },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Desktop => "desktop",
            Target::Webhook { .. } => "webhook",
            Target::Slack { .. } => "slack",
            Target::Discord { .. } => "discord",
            Target::Email(_) => "email",
            Target::Command { .. } => "command",
            Target::Ntfy { .. } => "ntfy",
            Target::PagerDuty { .. } => "pagerduty",
            Target::Telegram { .. } => "telegram",
            Target::Twilio { .. } => "twilio",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailTarget {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// A PEM file with the CA that signed the server's certificate (an internal relay).
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Wrapper,
    /// No encryption: only for a relay on localhost.
    None,
}

/// How a watch's events are routed: `notify`, `severity`, `failures_before_alert`,
/// `remind_every`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertPolicy {
    /// (channel, its `min_severity`), resolved when the watchlists load.
    pub targets: Vec<(String, Severity)>,
    /// Channels that hear a condition clear whatever its severity (PagerDuty resolves the
    /// incident it opened).
    pub resolves: Vec<String>,
    /// `escalate = "NAME"`: the escalation its loud events go through.
    pub escalate: Option<Escalation>,
    /// The watch's floor: an event is at least this loud.
    pub severity: Severity,
    /// Consecutive failed checks before a `failing` alert.
    pub failures_before_alert: u32,
    /// While a watch keeps failing, alert again this often.
    pub remind_every: Option<Duration>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            targets: Vec::new(),
            resolves: Vec::new(),
            escalate: None,
            severity: Severity::Info,
            failures_before_alert: 3,
            remind_every: None,
        }
    }
}
