//! `[channels.NAME]`: where notifications go, declared once and used by name in `notify`.

use std::collections::BTreeMap;
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
}

const TYPES: &str = "desktop, webhook, slack, discord, email or command";

/// Validates one channel. `span` is the table's place in the file, for errors that belong
/// to the whole table.
pub(super) fn resolve(
    name: &str,
    raw: RawChannel,
    span: std::ops::Range<usize>,
    file: &Path,
    src: &str,
    line: usize,
    errors: &mut Vec<ConfigError>,
) -> Option<Channel> {
    let at =
        |span: std::ops::Range<usize>, msg: String| ConfigError::at(file, src, Some(span), msg);
    let before = errors.len();
    if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == ',') {
        errors.push(at(
            span.clone(),
            format!("invalid channel name `{name}`: use letters, digits, `-` and `_`"),
        ));
    }
    let Some(kind) = raw.kind.as_ref() else {
        errors.push(
            at(
                span,
                format!("channel `{name}` has no `type`: set type = \"{TYPES}\""),
            )
            .with_hint(format!(
                "for example: [channels.{name}] type = \"webhook\" url = \"${{HOOK_URL}}\""
            )),
        );
        return None;
    };
    let kind_str = kind.get_ref().trim().to_ascii_lowercase();
    // Which keys each type takes, so a misplaced key is named, not silently ignored.
    let keys: &[(&str, bool)] = &[
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
    ];
    let allowed: &[&str] = match kind_str.as_str() {
        "desktop" => &[],
        "webhook" => &["url", "secret", "headers"],
        "slack" | "discord" => &["url"],
        "email" => &[
            "host", "port", "tls", "username", "password", "from", "to", "ca_file",
        ],
        "command" => &["command"],
        other => {
            let mut e = at(
                kind.span(),
                format!("unknown channel type `{other}`: use {TYPES}"),
            );
            if let Some(best) = super::closest(
                other,
                ["desktop", "webhook", "slack", "discord", "email", "command"].into_iter(),
            ) {
                e = e.with_hint(format!("did you mean `{best}`?"));
            }
            errors.push(e);
            return None;
        }
    };
    for (key, set) in keys {
        if *set && !allowed.contains(key) {
            errors.push(at(
                kind.span(),
                format!(
                    "channel `{name}` (type = \"{kind_str}\") does not take `{key}`{}",
                    match *key {
                        "url" => ": `url` is for webhook, slack and discord channels",
                        "secret" | "headers" => ": it is for webhook channels",
                        "command" => ": it is for command channels",
                        _ => ": it is for email channels",
                    }
                ),
            ));
        }
    }
    let env_syntax = |s: &Spanned<String>, errors: &mut Vec<ConfigError>| {
        if let Err(e) = types::expand_env_syntax(s.get_ref()) {
            errors.push(at(s.span(), e));
        }
    };
    let batch = match &raw.batch {
        None => Batch::Pass,
        Some(b) => match b.get_ref().trim() {
            "pass" => Batch::Pass,
            "none" => Batch::None,
            other => match DurationStr::try_from(other.to_string()) {
                Ok(d) => Batch::Window(d.0),
                Err(e) => {
                    errors.push(at(
                        b.span(),
                        format!(
                            "invalid `batch`: {e}. Use \"pass\" (one message per pass, the default), \"none\" (one per event) or a window like \"10m\""
                        ),
                    ));
                    Batch::Pass
                }
            },
        },
    };
    let need = |key: &str, errors: &mut Vec<ConfigError>| {
        errors.push(at(
            kind.span(),
            format!("channel `{name}` (type = \"{kind_str}\") needs `{key}`"),
        ));
    };
    let target = match kind_str.as_str() {
        "desktop" => Some(Target::Desktop),
        "webhook" | "slack" | "discord" => {
            if let Some(s) = &raw.secret {
                env_syntax(s, errors);
            }
            let mut headers = Vec::new();
            for (k, v) in raw.headers.iter().flatten() {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                    errors.push(at(v.span(), format!("invalid HTTP header name `{k}`")));
                }
                env_syntax(v, errors);
                headers.push((k.clone(), v.get_ref().clone()));
            }
            match &raw.url {
                None => {
                    need("url", errors);
                    None
                }
                Some(u) => {
                    let url = u.get_ref().clone();
                    Some(match kind_str.as_str() {
                        "webhook" => Target::Webhook {
                            url,
                            secret: raw.secret.as_ref().map(|s| s.get_ref().clone()),
                            headers,
                        },
                        "slack" => Target::Slack { url },
                        _ => Target::Discord { url },
                    })
                }
            }
        }
        "email" => {
            for s in [&raw.host, &raw.username, &raw.password, &raw.from]
                .into_iter()
                .flatten()
            {
                env_syntax(s, errors);
            }
            let tls = match &raw.tls {
                None => Tls::Starttls,
                Some(t) => match t.get_ref().trim().to_ascii_lowercase().as_str() {
                    "starttls" => Tls::Starttls,
                    "tls" | "smtps" => Tls::Wrapper,
                    "none" | "plain" => Tls::None,
                    other => {
                        errors.push(at(
                            t.span(),
                            format!(
                                "unknown `tls` = \"{other}\": use \"starttls\" (port 587, the default), \"tls\" (port 465) or \"none\" (plain SMTP, for a relay on localhost)"
                            ),
                        ));
                        Tls::Starttls
                    }
                },
            };
            if raw.username.is_some() != raw.password.is_some() {
                errors.push(at(
                    kind.span(),
                    format!("channel `{name}`: set both `username` and `password`, or neither"),
                ));
            }
            let to: Vec<String> = raw
                .to
                .as_ref()
                .map(|t| t.get_ref().clone().into_vec())
                .unwrap_or_default();
            if let Some(t) = &raw.to {
                for addr in &to {
                    if let Err(e) = check_mailbox(addr) {
                        errors.push(at(t.span(), e));
                    }
                }
                if to.is_empty() {
                    errors.push(at(t.span(), "`to` lists no address".into()));
                }
            }
            if let Some(f) = &raw.from
                && let Err(e) = check_mailbox(f.get_ref())
            {
                errors.push(at(f.span(), e));
            }
            match (&raw.host, &raw.from, &raw.to) {
                (Some(host), Some(from), Some(_)) => Some(Target::Email(EmailTarget {
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
                    ca_file: raw.ca_file.as_ref().map(|c| {
                        let p = Path::new(c);
                        if p.is_relative() {
                            file.parent().unwrap_or(Path::new(".")).join(p)
                        } else {
                            p.to_path_buf()
                        }
                    }),
                })),
                (host, from, to) => {
                    for (key, missing) in [
                        ("host", host.is_none()),
                        ("from", from.is_none()),
                        ("to", to.is_none()),
                    ] {
                        if missing {
                            need(key, errors);
                        }
                    }
                    None
                }
            }
        }
        "command" => match &raw.command {
            None => {
                need("command", errors);
                None
            }
            Some(c) => {
                let argv = c.get_ref().clone().into_vec();
                if argv.is_empty() || argv[0].trim().is_empty() {
                    errors.push(at(c.span(), "`command` is empty".into()));
                    None
                } else {
                    Some(Target::Command {
                        shell: matches!(c.get_ref(), OneOrMany::One(_)),
                        argv,
                    })
                }
            }
        },
        _ => unreachable!("checked above"),
    };
    let target = target?;
    if errors.len() != before {
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
