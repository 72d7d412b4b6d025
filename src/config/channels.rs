//! `[channels.NAME]`: where notifications go, declared once and used by name in `notify`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::alert::{Batch, Channel, EmailTarget, Target, Tls};
use super::types::{self, DurationStr, OneOrMany, UrlTemplate};
use super::{ConfigError, Origin};
use crate::event::Severity;

/// Default time one delivery may take (connect, send, answer).
pub const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time a `command` channel's program may run.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One `[channels.NAME]` table as written. Keys that do not belong to the channel's `type`
/// are refused with a message saying which type they are for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    min_severity: Option<Severity>,
    batch: Option<Spanned<String>>,
    immediate: Option<Severity>,
    timeout: Option<DurationStr>,
    // webhook, slack, discord
    url: Option<Spanned<UrlTemplate>>,
    secret: Option<Spanned<String>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
    // email
    host: Option<Spanned<String>>,
    port: Option<u16>,
    tls: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<OneOrMany<String>>>,
    ca_file: Option<String>,
    // command
    command: Option<Spanned<OneOrMany<String>>>,
    // ntfy
    token: Option<Spanned<String>>,
    // pagerduty
    routing_key: Option<Spanned<String>>,
    // telegram
    bot_token: Option<Spanned<String>>,
    chat_id: Option<Spanned<String>>,
    // twilio (with `from` and `to`)
    account_sid: Option<Spanned<String>>,
    auth_token: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    /// The service's API address, for tests and self-hosted services.
    api_url: Option<Spanned<String>>,
}

const TYPES: &str =
    "desktop, webhook, slack, discord, email, command, ntfy, pagerduty, telegram or twilio";

/// The channel types, as written in `type`.
const KINDS: [&str; 10] = [
    "desktop",
    "webhook",
    "slack",
    "discord",
    "email",
    "command",
    "ntfy",
    "pagerduty",
    "telegram",
    "twilio",
];

/// One channel's name, type and file, and the problems found in it.
struct Ctx<'a> {
    name: &'a str,
    kind: String,
    kind_span: Range<usize>,
    file: &'a Path,
    src: &'a str,
    errors: &'a mut Vec<ConfigError>,
}

impl Ctx<'_> {
    fn at(&mut self, span: Range<usize>, msg: String) {
        self.errors
            .push(ConfigError::at(self.file, self.src, Some(span), msg));
    }

    /// A key the channel's type needs is missing.
    fn need(&mut self, key: &str) {
        let msg = format!(
            "channel `{}` (type = \"{}\") needs `{key}`",
            self.name, self.kind
        );
        self.at(self.kind_span.clone(), msg);
    }

    fn env_syntax(&mut self, s: &Spanned<String>) {
        if let Err(e) = types::expand_env_syntax(s.get_ref()) {
            self.at(s.span(), e);
        }
    }
}

/// Validates one channel. `span` is the table's place in the file, for errors that belong
/// to the whole table.
pub(super) fn resolve(
    name: &str,
    raw: RawChannel,
    span: Range<usize>,
    file: &Path,
    src: &str,
    line: usize,
    errors: &mut Vec<ConfigError>,
) -> Option<Channel> {
    let at = |span: Range<usize>, msg: String| ConfigError::at(file, src, Some(span), msg);
    let before = errors.len();
    if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == ',') {
        errors.push(at(
            span.clone(),
            format!("invalid channel name `{name}`: use letters, digits, `-` and `_`"),
        ));
    }
    let Some(kind) = raw.kind.as_ref() else {
        let example =
            format!("for example: [channels.{name}] type = \"webhook\" url = \"${{HOOK_URL}}\"");
        let msg = format!("channel `{name}` has no `type`: set type = \"{TYPES}\"");
        errors.push(at(span, msg).with_hint(example));
        return None;
    };
    let kind_str = kind.get_ref().trim().to_ascii_lowercase();
    if !KINDS.contains(&kind_str.as_str()) {
        let mut e = at(
            kind.span(),
            format!("unknown channel type `{kind_str}`: use {TYPES}"),
        );
        if let Some(best) = super::closest(&kind_str, KINDS.into_iter()) {
            e = e.with_hint(format!("did you mean `{best}`?"));
        }
        errors.push(e);
        return None;
    }
    let mut ctx = Ctx {
        name,
        kind: kind_str,
        kind_span: kind.span(),
        file,
        src,
        errors,
    };
    check_keys(&raw, &mut ctx);
    let batch = batch_of(&raw, &mut ctx);
    let target = match ctx.kind.as_str() {
        "desktop" => Some(Target::Desktop),
        "webhook" | "slack" | "discord" => web_target(&raw, &mut ctx),
        "email" => email_target(&raw, &mut ctx),
        "command" => command_target(&raw, &mut ctx),
        _ => service_target(&raw, &mut ctx),
    }?;
    if ctx.errors.len() != before {
        return None;
    }
    let default_timeout = match target {
        Target::Command { .. } => DEFAULT_COMMAND_TIMEOUT,
        _ => DEFAULT_CHANNEL_TIMEOUT,
    };
    Some(Channel {
        name: name.to_string(),
        target,
        min_severity: raw.min_severity.unwrap_or_default(),
        batch,
        immediate: raw.immediate,
        timeout: raw.timeout.map_or(default_timeout, |d| d.0),
        origin: Origin {
            file: file.into(),
            line,
        },
    })
}

/// Each key set that the channel's type does not take is named, not silently ignored.
fn check_keys(raw: &RawChannel, ctx: &mut Ctx<'_>) {
    let keys: [(&str, bool); 20] = [
        ("url", raw.url.is_some()),
        ("secret", raw.secret.is_some()),
        ("headers", raw.headers.is_some()),
        ("host", raw.host.is_some()),
        ("port", raw.port.is_some()),
        ("tls", raw.tls.is_some()),
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("from", raw.from.is_some()),
        ("to", raw.to.is_some()),
        ("ca_file", raw.ca_file.is_some()),
        ("command", raw.command.is_some()),
        ("token", raw.token.is_some()),
        ("routing_key", raw.routing_key.is_some()),
        ("bot_token", raw.bot_token.is_some()),
        ("chat_id", raw.chat_id.is_some()),
        ("account_sid", raw.account_sid.is_some()),
        ("auth_token", raw.auth_token.is_some()),
        ("mode", raw.mode.is_some()),
        ("api_url", raw.api_url.is_some()),
    ];
    let allowed: &[&str] = match ctx.kind.as_str() {
        "webhook" => &["url", "secret", "headers"],
        "slack" | "discord" => &["url"],
        "email" => &[
            "host", "port", "tls", "username", "password", "from", "to", "ca_file",
        ],
        "command" => &["command"],
        "ntfy" => &["url", "token"],
        "pagerduty" => &["routing_key", "api_url"],
        "telegram" => &["bot_token", "chat_id", "api_url"],
        "twilio" => &["account_sid", "auth_token", "from", "to", "mode", "api_url"],
        _ => &[],
    };
    for (key, set) in keys {
        if !set || allowed.contains(&key) {
            continue;
        }
        let why = match key {
            "url" => ": `url` is for webhook, slack, discord and ntfy channels",
            "secret" | "headers" => ": it is for webhook channels",
            "command" => ": it is for command channels",
            "token" => ": it is for ntfy channels",
            "routing_key" => ": it is for pagerduty channels",
            "bot_token" | "chat_id" => ": it is for telegram channels",
            "account_sid" | "auth_token" | "mode" => ": it is for twilio channels",
            "api_url" => ": it is for pagerduty, telegram and twilio channels",
            "from" | "to" => ": it is for email and twilio channels",
            _ => ": it is for email channels",
        };
        let msg = format!(
            "channel `{}` (type = \"{}\") does not take `{key}`{why}",
            ctx.name, ctx.kind
        );
        ctx.at(ctx.kind_span.clone(), msg);
    }
}

/// `batch = "pass" | "none" | "10m"`.
fn batch_of(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Batch {
    let Some(b) = &raw.batch else {
        return Batch::Pass;
    };
    match b.get_ref().trim() {
        "pass" => Batch::Pass,
        "none" => Batch::None,
        other => DurationStr::try_from(other.to_string()).map_or_else(
            |e| {
                ctx.at(
                    b.span(),
                    format!(
                        "invalid `batch`: {e}. Use \"pass\" (one message per pass, the default), \"none\" (one per event) or a window like \"10m\""
                    ),
                );
                Batch::Pass
            },
            |d| Batch::Window(d.0),
        ),
    }
}

/// A webhook, slack or discord channel.
fn web_target(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Option<Target> {
    if let Some(s) = &raw.secret {
        ctx.env_syntax(s);
    }
    let mut headers = Vec::new();
    for (k, v) in raw.headers.iter().flatten() {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            ctx.at(v.span(), format!("invalid HTTP header name `{k}`"));
        }
        ctx.env_syntax(v);
        headers.push((k.clone(), v.get_ref().clone()));
    }
    let Some(url) = &raw.url else {
        ctx.need("url");
        return None;
    };
    let url = url.get_ref().clone();
    Some(match ctx.kind.as_str() {
        "webhook" => Target::Webhook {
            url,
            secret: raw.secret.as_ref().map(|s| s.get_ref().clone()),
            headers,
        },
        "slack" => Target::Slack { url },
        _ => Target::Discord { url },
    })
}

/// `tls = "starttls" | "tls" | "none"`.
fn tls_of(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Tls {
    let Some(t) = &raw.tls else {
        return Tls::Starttls;
    };
    match t.get_ref().trim().to_ascii_lowercase().as_str() {
        "starttls" => Tls::Starttls,
        "tls" | "smtps" => Tls::Wrapper,
        "none" | "plain" => Tls::None,
        other => {
            ctx.at(
                t.span(),
                format!(
                    "unknown `tls` = \"{other}\": use \"starttls\" (port 587, the default), \"tls\" (port 465) or \"none\" (plain SMTP, for a relay on localhost)"
                ),
            );
            Tls::Starttls
        }
    }
}

/// An email channel: the relay, its TLS, the sender and the recipients, each checked.
fn email_target(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Option<Target> {
    for s in [&raw.host, &raw.username, &raw.password, &raw.from]
        .into_iter()
        .flatten()
    {
        ctx.env_syntax(s);
    }
    let tls = tls_of(raw, ctx);
    if raw.username.is_some() != raw.password.is_some() {
        let msg = format!(
            "channel `{}`: set both `username` and `password`, or neither",
            ctx.name
        );
        ctx.at(ctx.kind_span.clone(), msg);
    }
    let to = recipients(raw, ctx);
    if let Some(f) = &raw.from
        && let Err(e) = check_mailbox(f.get_ref())
    {
        ctx.at(f.span(), e);
    }
    let (Some(host), Some(from), Some(_)) = (&raw.host, &raw.from, &raw.to) else {
        for (key, missing) in [
            ("host", raw.host.is_none()),
            ("from", raw.from.is_none()),
            ("to", raw.to.is_none()),
        ] {
            if missing {
                ctx.need(key);
            }
        }
        return None;
    };
    let ca_file = raw.ca_file.as_ref().map(|c| {
        // A relative path is relative to the watchlist it is written in.
        let p = Path::new(c);
        if p.is_relative() {
            ctx.file.parent().unwrap_or(Path::new(".")).join(p)
        } else {
            p.to_path_buf()
        }
    });
    Some(Target::Email(EmailTarget {
        host: host.get_ref().trim().to_string(),
        port: raw.port.unwrap_or(match tls {
            Tls::Starttls => 587,
            Tls::Wrapper => 465,
            Tls::None => 25,
        }),
        tls,
        username: raw.username.as_ref().map(|u| u.get_ref().clone()),
        password: raw.password.as_ref().map(|p| p.get_ref().clone()),
        from: from.get_ref().clone(),
        to,
        ca_file,
    }))
}

/// `to`: one address or a list, each a valid mailbox.
fn recipients(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Vec<String> {
    let Some(t) = &raw.to else {
        return Vec::new();
    };
    let to = t.get_ref().clone().into_vec();
    for addr in &to {
        if let Err(e) = check_mailbox(addr) {
            ctx.at(t.span(), e);
        }
    }
    if to.is_empty() {
        ctx.at(t.span(), "`to` lists no address".into());
    }
    to
}

/// An ntfy, PagerDuty, Telegram or Twilio channel: its keys there, `${VAR}`s well formed.
fn service_target(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Option<Target> {
    let api = |default: &str| {
        raw.api_url
            .as_ref()
            .map_or(default, |a| a.get_ref().as_str())
            .trim_end_matches('/')
            .to_string()
    };
    let kind = ctx.kind.clone();
    Some(match kind.as_str() {
        "ntfy" => {
            let token = raw.token.as_ref().map(|t| {
                ctx.env_syntax(t);
                t.get_ref().clone()
            });
            let Some(url) = &raw.url else {
                ctx.need("url");
                return None;
            };
            Target::Ntfy {
                url: url.get_ref().clone(),
                token,
            }
        }
        "pagerduty" => Target::PagerDuty {
            routing_key: required(ctx, "routing_key", &raw.routing_key)?,
            api_url: api("https://events.pagerduty.com"),
        },
        "telegram" => {
            let bot_token = required(ctx, "bot_token", &raw.bot_token);
            let chat_id = required(ctx, "chat_id", &raw.chat_id);
            Target::Telegram {
                bot_token: bot_token?,
                chat_id: chat_id?,
                api_url: api("https://api.telegram.org"),
            }
        }
        _ => twilio_target(raw, ctx, api("https://api.twilio.com"))?,
    })
}

/// A Twilio channel: the account, the numbers, and `mode = "sms" | "call"`.
fn twilio_target(raw: &RawChannel, ctx: &mut Ctx<'_>, api_url: String) -> Option<Target> {
    let (sid, token, from) = (
        required(ctx, "account_sid", &raw.account_sid),
        required(ctx, "auth_token", &raw.auth_token),
        required(ctx, "from", &raw.from),
    );
    let call = match raw.mode.as_ref().map(|m| m.get_ref().trim()) {
        None | Some("sms") => false,
        Some("call") => true,
        Some(other) => {
            let span = raw.mode.as_ref().expect("set").span();
            ctx.at(
                span,
                format!("unknown `mode` = \"{other}\": use \"sms\" (a text message) or \"call\""),
            );
            false
        }
    };
    let to = match &raw.to {
        Some(t) => t.get_ref().clone().into_vec(),
        None => {
            ctx.need("to");
            Vec::new()
        }
    };
    Some(Target::Twilio {
        account_sid: sid?,
        auth_token: token?,
        from: from?,
        to: (!to.is_empty()).then_some(to)?,
        call,
        api_url,
    })
}

/// A key the channel needs, its `${VAR}`s checked; said when it is missing.
fn required(ctx: &mut Ctx<'_>, key: &str, v: &Option<Spanned<String>>) -> Option<String> {
    match v {
        Some(s) => {
            ctx.env_syntax(s);
            Some(s.get_ref().trim().to_string())
        }
        None => {
            ctx.need(key);
            None
        }
    }
}

/// A command channel: a shell line (a string) or an argv (a list).
fn command_target(raw: &RawChannel, ctx: &mut Ctx<'_>) -> Option<Target> {
    let Some(c) = &raw.command else {
        ctx.need("command");
        return None;
    };
    let argv = c.get_ref().clone().into_vec();
    if argv.is_empty() || argv[0].trim().is_empty() {
        ctx.at(c.span(), "`command` is empty".into());
        return None;
    }
    Some(Target::Command {
        shell: matches!(c.get_ref(), OneOrMany::One(_)),
        argv,
    })
}

/// `user@example.com` or `Name <user@example.com>`; `${VAR}` allowed.
fn check_mailbox(s: &str) -> Result<(), String> {
    types::expand_env_syntax(s)?;
    if s.contains("${") {
        return Ok(());
    }
    s.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| {
            format!("invalid email address `{s}` ({e}): write it like \"ops@example.com\" or \"Ops <ops@example.com>\"")
        })
}
