//! `forewarn notify test|status|retry`, and the delivery step `check` and `watch` share.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::Exit;
use crate::cli::{CheckFormat, NotifyCommand};
use crate::config::{Config, closest};
use crate::notify::{self, Delivery, Message};
use crate::store::{Store, lock};

pub fn run(db: &Path, watchlists: &[PathBuf], cmd: NotifyCommand) -> anyhow::Result<Exit> {
    let config = super::load_config(watchlists)?;
    match cmd {
        NotifyCommand::Test { channel } => test(&config, &channel),
        NotifyCommand::Status { format } => status(db, &config, format),
        NotifyCommand::Retry { channel } => retry(db, &config, channel.as_deref()),
        NotifyCommand::Deliver => deliver_now(db, &config),
    }
}

/// `notify deliver`: what is due now goes out (retries, closed windows, escalation steps).
fn deliver_now(db: &Path, config: &Config) -> anyhow::Result<Exit> {
    let _lock = lock::acquire(db, "notify deliver", Duration::from_secs(30))?;
    let mut store = Store::open(db)?;
    let d = deliver_due(&mut store, config)?;
    let sent: usize = d.sent.iter().map(|(_, n)| n).sum();
    println!(
        "{sent} notification(s) sent in {} message(s); {} pending{}",
        d.sent.len(),
        d.pending,
        d.next_due
            .map(|t| format!(", next due {}", crate::event::rfc3339(t)))
            .unwrap_or_default()
    );
    print_delivery(&d);
    Ok(exit_of(&d))
}

fn channel<'a>(
    config: &'a Config,
    name: &str,
) -> anyhow::Result<&'a crate::config::alert::Channel> {
    config.channels.get(name).ok_or_else(|| {
        let mut msg = format!("no channel named `{name}` in the watchlists");
        match closest(name, config.channels.keys().map(String::as_str)) {
            Some(best) => msg.push_str(&format!("; did you mean `{best}`?")),
            None if config.channels.is_empty() => msg.push_str(
                "; declare one, for example [channels.desktop] type = \"desktop\", in a watchlist or in forewarn.toml beside them",
            ),
            None => msg.push_str(&format!(
                "; declared: {}",
                config.channels.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
        crate::UsageError(msg).into()
    })
}

fn test(config: &Config, name: &str) -> anyhow::Result<Exit> {
    let ch = channel(config, name)?;
    let rt = super::runtime()?;
    let msg = Message::sample(name);
    match rt.block_on(notify::send(ch, &msg)) {
        Ok(()) => {
            println!(
                "sent a test message through `{name}` ({}); check that it arrived",
                ch.target.kind()
            );
            Ok(Exit::Ok)
        }
        Err(e) => Err(anyhow::anyhow!(
            "the test message through `{name}` ({}, {}:{}) failed: {e}",
            ch.target.kind(),
            ch.origin.file.display(),
            ch.origin.line
        )),
    }
}

fn status(db: &Path, config: &Config, format: CheckFormat) -> anyhow::Result<Exit> {
    let stats = match Store::open_read_only(db)? {
        Some(s) => s.outbox_by_channel()?,
        None => Vec::new(),
    };
    let now = crate::schedule::now();
    let mut names: Vec<&String> = config.channels.keys().collect();
    for (n, _) in &stats {
        if !config.channels.contains_key(n) {
            names.push(n);
        }
    }
    let mut out = String::new();
    let mut rows = Vec::new();
    for n in names {
        let s = stats
            .iter()
            .find(|(c, _)| c == n)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        let kind = config
            .channels
            .get(n)
            .map_or("(not declared any more)", |c| c.target.kind());
        if format == CheckFormat::Json {
            out.push_str(
                &json!({
                    "channel": n, "type": kind, "delivered": s.delivered, "pending": s.pending,
                    "failed": s.failed,
                    "last_delivered": s.last_delivered_at.map(crate::event::rfc3339),
                    "last_error": s.last_error,
                })
                .to_string(),
            );
            out.push('\n');
        } else {
            rows.push([
                n.clone(),
                kind.to_string(),
                s.delivered.to_string(),
                s.pending.to_string(),
                s.failed.to_string(),
                s.last_delivered_at
                    .map_or("never".into(), |t| crate::report::ago(t, now)),
                s.last_error.unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    if format == CheckFormat::Text {
        out = super::table(
            &[
                "CHANNEL",
                "TYPE",
                "DELIVERED",
                "PENDING",
                "FAILED",
                "LAST SENT",
                "LAST ERROR",
            ],
            &rows,
        );
    }
    print!("{out}");
    Ok(Exit::Ok)
}

fn retry(db: &Path, config: &Config, only: Option<&str>) -> anyhow::Result<Exit> {
    if let Some(name) = only {
        channel(config, name)?;
    }
    let _lock = lock::acquire(db, "notify retry", Duration::from_secs(5))?;
    let mut store = Store::open(db)?;
    let n = store.outbox_retry(only, crate::schedule::now().timestamp_millis())?;
    println!("{n} failed notification(s) queued again");
    let d = deliver_due(&mut store, config)?;
    print_delivery(&d);
    Ok(exit_of(&d))
}

/// Everything due now, within a minute: retries, closed windows, escalation steps.
fn deliver_due(store: &mut Store, config: &Config) -> anyhow::Result<Delivery> {
    let rt = super::runtime()?;
    Ok(rt.block_on(notify::deliver(
        store,
        &config.channels,
        &config.escalations,
        Duration::from_secs(60),
    ))?)
}

fn exit_of(d: &Delivery) -> Exit {
    if d.failures.is_empty() {
        Exit::Ok
    } else {
        Exit::Internal
    }
}

/// Delivery problems on stderr: which channel, what went wrong, what happens next.
pub(super) fn print_delivery(d: &Delivery) {
    for (channel, err) in &d.failures {
        eprintln!("forewarn: notification to `{channel}` failed: {err}");
    }
    if !d.failures.is_empty() || d.given_up > 0 {
        let mut tail = Vec::new();
        if d.pending > 0 {
            tail.push(format!(
                "{} notification(s) stay queued and are retried{}",
                d.pending,
                d.next_due
                    .map(|t| format!(" from {}", crate::event::rfc3339(t)))
                    .unwrap_or_default()
            ));
        }
        if d.given_up > 0 {
            tail.push(format!(
                "{} given up after {} attempts (`forewarn notify retry` queues them again)",
                d.given_up,
                notify::MAX_ATTEMPTS
            ));
        }
        if !tail.is_empty() {
            eprintln!("forewarn: {}", tail.join("; "));
        }
    }
}

/// Delivers what is due (after a pass), within `budget`. Errors are reported, never fatal:
/// the notifications stay queued.
pub(super) async fn deliver_after_pass(
    store: &mut Store,
    config: &Config,
    budget: Duration,
) -> Option<Delivery> {
    if config.channels.is_empty() {
        return None;
    }
    match notify::deliver(store, &config.channels, &config.escalations, budget).await {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("forewarn: notifications not delivered this run: {e}");
            None
        }
    }
}
