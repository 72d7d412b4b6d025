//! Notifications: channels, routing, batching and durable delivery.
//!
//! A detected event that a watch routes somewhere becomes one outbox row per channel, written
//! in the same transaction as the event ([`crate::store`]). Delivery is separate: [`deliver`]
//! reads what is due, groups it into messages (one digest per channel per pass by default,
//! windows with `batch = "10m"`, one message per event with `batch = "none"`), claims the
//! rows, sends, and marks each delivered or schedules a retry with backoff. A crash between
//! detection and delivery loses nothing: the rows are still pending on the next run. A claim
//! is atomic, so two processes never send the same row.

mod command;
mod desktop;
mod email;
pub mod render;
mod services;
mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::alert::{Batch, Channel, Escalation, Target};
use crate::event::{Event, EventKind, Severity};
use crate::store::{Queued, Store, StoreError};

/// Deliveries tried before a row is given up as failed (about a day of backoff).
pub const MAX_ATTEMPTS: u32 = 12;
/// A claim older than this belongs to a process that died mid-delivery: the row is retried.
const STALE_CLAIM: Duration = Duration::from_secs(10 * 60);

/// Events that are worth telling someone about. Noise, baselines, pending changes and the
/// individual failed checks are not (a watch's failure becomes `failing` after
/// `failures_before_alert` checks).
pub fn notifiable(e: &Event) -> bool {
    e.is_notified()
}

/// One message to one channel: a single event or a digest.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    /// Stable across retries of the same rows: receivers can de-duplicate on it.
    pub id: String,
    pub items: Vec<(Event, Severity)>,
}

impl Message {
    pub fn severity(&self) -> Severity {
        self.items.iter().map(|(_, s)| *s).max().unwrap_or_default()
    }

    /// A sample message for `forewarn notify test`.
    pub fn sample(channel: &str) -> Message {
        let mut e = Event::new(
            EventKind::Test,
            "forewarn-test",
            "https://example.com/",
            Utc::now(),
            format!("forewarn test notification: channel `{channel}` works"),
        );
        e.diff = Some("-the line before\n+the line after\n".into());
        Message {
            channel: channel.to_string(),
            id: format!("test-{}", Utc::now().timestamp_millis()),
            items: vec![(e, Severity::Info)],
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Default)]
pub struct Delivery {
    /// (channel, events) for each message sent.
    pub sent: Vec<(String, usize)>,
    /// (channel, error) for each message that failed this round.
    pub failures: Vec<(String, String)>,
    /// Rows given up after [`MAX_ATTEMPTS`].
    pub given_up: usize,
    /// Rows still pending (held in a batch window, backing off, or not reached in time).
    pub pending: usize,
    /// When something pending becomes due.
    pub next_due: Option<DateTime<Utc>>,
}

/// Sends what is due. Stops starting new messages after `budget`; whatever was not sent stays
/// pending for the next run.
pub async fn deliver(
    store: &mut Store,
    channels: &BTreeMap<String, Channel>,
    escalations: &BTreeMap<String, Escalation>,
    budget: Duration,
) -> Result<Delivery, StoreError> {
    let started = std::time::Instant::now();
    let now = crate::schedule::now();
    let now_ms = now.timestamp_millis();
    store.outbox_release_stale(now_ms - crate::event::millis(STALE_CLAIM))?;
    // Escalation steps due now queue their channels, sent below with the rest.
    store.escalate_due(now_ms, escalations)?;
    let next_step = store.next_escalation_at()?;
    let mut queued = store.outbox_pending()?;
    let mut report = Delivery {
        next_due: next_step,
        ..Delivery::default()
    };
    if queued.is_empty() {
        return Ok(report);
    }
    // A message about an escalating event says how to stop the escalation.
    for q in &mut queued {
        if let Some(id) = q.event.id
            && let Some(name) = store.escalation_of(id)?
        {
            q.event
                .detail
                .insert("escalation".into(), serde_json::json!(name));
        }
    }
    let (plans, next_due) = plan(queued, channels, now_ms);
    report.next_due = match (
        next_due.and_then(DateTime::from_timestamp_millis),
        next_step,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    for plan in plans {
        if started.elapsed() >= budget {
            continue;
        }
        let ids: Vec<i64> = plan.rows.iter().map(|q| q.id).collect();
        let claimed = store.outbox_claim(&ids, now_ms)?;
        let rows: Vec<Queued> = plan
            .rows
            .into_iter()
            .filter(|q| claimed.contains(&q.id))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let channel = &channels[&plan.channel];
        let msg = Message {
            channel: channel.name.clone(),
            id: format!("{}-{}-{}", channel.name, rows[0].id, rows.len()),
            items: rows.iter().map(|q| (q.event.clone(), q.severity)).collect(),
        };
        let ids: Vec<i64> = rows.iter().map(|q| q.id).collect();
        let result = send(channel, &msg).await;
        let done_ms = crate::schedule::now().timestamp_millis();
        match result {
            Ok(()) => {
                store.outbox_delivered(&ids, done_ms, &msg.id)?;
                report.sent.push((channel.name.clone(), ids.len()));
            }
            Err(err) => {
                let attempts = rows.iter().map(|q| q.attempts).max().unwrap_or(0) + 1;
                let next = (attempts < MAX_ATTEMPTS).then(|| done_ms + backoff(attempts));
                match next {
                    None => report.given_up += ids.len(),
                    Some(n) => {
                        let n = report.next_due.map_or(n, |d| d.timestamp_millis().min(n));
                        report.next_due = DateTime::from_timestamp_millis(n);
                    }
                }
                store.outbox_failed(&ids, &err, next)?;
                report.failures.push((channel.name.clone(), err));
            }
        }
    }
    report.pending = store.outbox_count_pending()?;
    Ok(report)
}

/// Delay before the next attempt: 30 s, doubling, at most an hour, with a little jitter so a
/// batch of failures does not retry in lockstep.
pub fn backoff(attempts: u32) -> i64 {
    let base = 30_000i64.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    let capped = base.min(3_600_000);
    capped + (capped / 10) * (i64::from(attempts) % 3) / 2
}

struct Plan {
    channel: String,
    rows: Vec<Queued>,
}

/// Groups what is queued into messages that are due now, and says when the rest comes due.
/// Rows for a channel no longer configured stay pending (another watchlist set may own it).
fn plan(
    queued: Vec<Queued>,
    channels: &BTreeMap<String, Channel>,
    now_ms: i64,
) -> (Vec<Plan>, Option<i64>) {
    let mut by_channel: BTreeMap<String, Vec<Queued>> = BTreeMap::new();
    let mut next: Option<i64> = None;
    let mut later = |t: i64| next = Some(next.map_or(t, |n: i64| n.min(t)));
    for q in queued {
        if !channels.contains_key(&q.channel) {
            continue;
        }
        if q.next_attempt_at > now_ms {
            later(q.next_attempt_at);
            continue;
        }
        by_channel.entry(q.channel.clone()).or_default().push(q);
    }
    let mut plans = Vec::new();
    for (name, rows) in by_channel {
        let ch = &channels[&name];
        match ch.batch {
            Batch::None => {
                for q in rows {
                    plans.push(Plan {
                        channel: name.clone(),
                        rows: vec![q],
                    });
                }
            }
            Batch::Pass => plans.push(Plan {
                channel: name,
                rows,
            }),
            Batch::Window(w) => {
                let w = crate::event::millis(w);
                // Retries and loud events go now; the rest wait for the window that the
                // oldest of them opened.
                let (now_rows, held): (Vec<Queued>, Vec<Queued>) =
                    rows.into_iter().partition(|q| {
                        q.attempts > 0 || ch.immediate.is_some_and(|imm| q.severity >= imm)
                    });
                let oldest = held.iter().map(|q| q.created_at).min();
                let mut send = now_rows;
                match oldest {
                    Some(o) if o + w <= now_ms => send.extend(held),
                    Some(o) => later(o + w),
                    None => {}
                }
                if !send.is_empty() {
                    send.sort_by_key(|q| q.id);
                    plans.push(Plan {
                        channel: name,
                        rows: send,
                    });
                }
            }
        }
    }
    (plans, next)
}

/// Sends one message through one channel, within the channel's timeout.
pub async fn send(channel: &Channel, msg: &Message) -> Result<(), String> {
    let work = async {
        match &channel.target {
            Target::Desktop => desktop::send(msg).await,
            Target::Webhook {
                url,
                secret,
                headers,
            } => webhook::send_generic(url, secret.as_deref(), headers, msg, channel.timeout).await,
            Target::Slack { url } => webhook::send_slack(url, msg, channel.timeout).await,
            Target::Discord { url } => webhook::send_discord(url, msg, channel.timeout).await,
            Target::Email(t) => email::send(t, msg, channel.timeout).await,
            Target::Command { argv, shell } => {
                command::send(argv, *shell, msg, channel.timeout).await
            }
            Target::Ntfy { url, token } => {
                services::send_ntfy(url, token.as_deref(), msg, channel.timeout).await
            }
            Target::PagerDuty {
                routing_key,
                api_url,
            } => services::send_pagerduty(routing_key, api_url, msg, channel.timeout).await,
            Target::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => services::send_telegram(bot_token, chat_id, api_url, msg, channel.timeout).await,
            Target::Twilio {
                account_sid,
                auth_token,
                from,
                to,
                call,
                api_url,
            } => {
                let t = services::Twilio {
                    account_sid,
                    auth_token,
                    from,
                    to,
                    call: *call,
                    api_url,
                };
                services::send_twilio(&t, msg, channel.timeout).await
            }
        }
    };
    match tokio::time::timeout(channel.timeout + Duration::from_secs(1), work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {} (the channel's `timeout`)",
            humantime::format_duration(channel.timeout)
        )),
    }
}

/// Lets desktop notifications in a long-running `forewarn watch` open the page when clicked.
pub fn keep_desktop_actions(on: bool) {
    desktop::KEEP_ACTIONS.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn queued(id: i64, channel: &str, created_at: i64, severity: Severity) -> Queued {
        Queued {
            id,
            channel: channel.into(),
            severity,
            created_at,
            attempts: 0,
            next_attempt_at: created_at,
            event: Event::new(EventKind::Changed, "w", "http://x/", Utc::now(), "s".into()),
        }
    }

    fn channel(name: &str, batch: Batch, immediate: Option<Severity>) -> Channel {
        Channel {
            name: name.into(),
            target: Target::Desktop,
            min_severity: Severity::Info,
            batch,
            immediate,
            timeout: Duration::from_secs(5),
            origin: Origin {
                file: std::path::Path::new("x.toml").into(),
                line: 1,
            },
        }
    }

    #[test]
    fn a_pass_is_one_message_per_channel_and_none_splits() {
        let mut chans = BTreeMap::new();
        chans.insert("a".into(), channel("a", Batch::Pass, None));
        chans.insert("b".into(), channel("b", Batch::None, None));
        let q: Vec<Queued> = (1..=12)
            .flat_map(|i| {
                [
                    queued(i * 2, "a", 0, Severity::Info),
                    queued(i * 2 + 1, "b", 0, Severity::Info),
                ]
            })
            .collect();
        let (plans, next) = plan(q, &chans, 1000);
        assert_eq!(next, None);
        assert_eq!(plans.iter().filter(|p| p.channel == "a").count(), 1);
        assert_eq!(plans.iter().filter(|p| p.channel == "b").count(), 12);
    }

    #[test]
    fn a_window_holds_until_it_closes_and_critical_skips_it() {
        let mut chans = BTreeMap::new();
        chans.insert(
            "w".into(),
            channel(
                "w",
                Batch::Window(Duration::from_secs(600)),
                Some(Severity::Critical),
            ),
        );
        let q = vec![
            queued(1, "w", 1_000, Severity::Info),
            queued(2, "w", 2_000, Severity::Critical),
            queued(3, "w", 3_000, Severity::Warning),
        ];
        let (plans, next) = plan(q.clone(), &chans, 5_000);
        assert_eq!(plans.len(), 1);
        assert_eq!(
            plans[0].rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(next, Some(601_000));
        let (plans, next) = plan(q, &chans, 601_000);
        assert_eq!(plans[0].rows.len(), 3);
        assert_eq!(next, None);
    }

    #[test]
    fn retries_wait_for_their_time_and_unknown_channels_stay() {
        let mut chans = BTreeMap::new();
        chans.insert("a".into(), channel("a", Batch::Pass, None));
        let mut r = queued(1, "a", 0, Severity::Info);
        r.attempts = 2;
        r.next_attempt_at = 90_000;
        let q = vec![r, queued(2, "gone", 0, Severity::Info)];
        let (plans, next) = plan(q, &chans, 10_000);
        assert!(plans.is_empty());
        assert_eq!(next, Some(90_000));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert!((30_000..34_000).contains(&backoff(1)));
        assert!(backoff(2) >= 60_000 && backoff(2) < 70_000);
        assert!(backoff(30) <= 3_960_000);
    }
}
