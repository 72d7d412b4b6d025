//! Phone and pager services: `ntfy` (a push to a topic), `pagerduty` (Events API v2: an
//! incident per condition, resolved when it clears), `telegram` (a bot's message to a chat)
//! and `twilio` (a text message, or a call that speaks a summary). Each request is the one
//! the service documents; `api_url` points it at a test server or a self-hosted service.

use std::time::Duration;

use serde_json::{Value, json};

use super::webhook::post_to;
use super::{Message, render};
use crate::config::UrlTemplate;
use crate::config::types::expand_env;
use crate::event::{Event, EventKind, Severity};

/// Telegram refuses a message over 4,096 characters; a text message is cut to 1,600 (ten
/// SMS segments); a call speaks 300 characters at most.
const TELEGRAM_LIMIT: usize = 4_000;
const SMS_LIMIT: usize = 1_600;
const CALL_LIMIT: usize = 300;
/// PagerDuty's `summary` is at most 1,024 characters.
const PAGERDUTY_SUMMARY: usize = 1_024;

fn secret(what: &str, v: &str) -> Result<String, String> {
    expand_env(v).map_err(|e| format!("`{what}`: {e}"))
}

fn parse(url: &str) -> Result<url::Url, String> {
    url::Url::parse(url).map_err(|e| format!("bad `api_url` {url}: {e}"))
}

/// ntfy: JSON publishing to the server the topic URL names, with the title, a priority from
/// the severity and tags.
pub async fn send_ntfy(
    url: &UrlTemplate,
    token: Option<&str>,
    msg: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let topic_url = url.expand().map_err(|e| format!("bad ntfy URL: {e}"))?;
    let topic = topic_url.path().trim_matches('/').to_string();
    if topic.is_empty() || topic.contains('/') {
        return Err(format!(
            "the ntfy `url` must name a topic, like https://ntfy.sh/my-topic (got {topic_url})"
        ));
    }
    let mut server = topic_url.clone();
    server.set_path("/");
    let (priority, tags) = match msg.severity() {
        Severity::Critical => (5, vec!["rotating_light"]),
        Severity::Warning => (4, vec!["warning"]),
        Severity::Info => (3, vec!["information_source"]),
    };
    let mut body = json!({
        "topic": topic,
        "title": render::title(msg),
        "message": render::cut(&render::text(msg, 20), 4_000, "ntfy"),
        "priority": priority,
        "tags": tags,
    });
    if let [(e, _)] = msg.items.as_slice()
        && e.url.starts_with("http")
    {
        body["click"] = json!(e.url);
    }
    let mut headers = vec![("X-Forewarn-Delivery".to_string(), msg.id.clone())];
    if let Some(t) = token {
        headers.push((
            "Authorization".into(),
            format!("Bearer {}", secret("token", t)?),
        ));
    }
    let where_ = super::webhook::shown(&server);
    let bytes = body.to_string().into_bytes();
    post_to(
        server,
        &where_,
        bytes,
        "application/json",
        &headers,
        timeout,
    )
    .await
}

/// PagerDuty: one Events API v2 call per event: `trigger` with a key stable per watch and
/// condition, `resolve` with the same key when the condition clears.
pub async fn send_pagerduty(
    routing_key: &str,
    api_url: &str,
    msg: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let key = secret("routing_key", routing_key)?;
    let target = parse(&format!("{api_url}/v2/enqueue"))?;
    let where_ = super::webhook::shown(&target);
    for (e, severity) in &msg.items {
        let body = pagerduty_event(&key, e, *severity);
        let bytes = body.to_string().into_bytes();
        post_to(
            target.clone(),
            &where_,
            bytes,
            "application/json",
            &[],
            timeout,
        )
        .await?;
    }
    Ok(())
}

/// The incident an event opens or closes: (`trigger` or `resolve`, its `dedup_key`).
pub fn pagerduty_action(e: &Event) -> (&'static str, String) {
    let key = |condition: &str| format!("forewarn/{}/{condition}", e.watch);
    let expectation = || {
        e.detail
            .get("expectation")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match e.kind {
        EventKind::Recovered => ("resolve", key("failing")),
        EventKind::Error | EventKind::Failing | EventKind::Blocked => ("trigger", key("failing")),
        EventKind::ContractRestored => ("resolve", key(&format!("contract {}", expectation()))),
        EventKind::ContractBroken => ("trigger", key(&format!("contract {}", expectation()))),
        EventKind::SelectorRestored => ("resolve", key("selector")),
        EventKind::SelectorMissing => ("trigger", key("selector")),
        _ => match e.detail.get("verify").and_then(|v| v["passed"].as_bool()) {
            Some(false) => ("trigger", key("verify")),
            Some(true) => ("resolve", key("verify")),
            None => (
                "trigger",
                key(&format!("{} {}", e.kind.as_str(), e.id.unwrap_or(0))),
            ),
        },
    }
}

fn pagerduty_event(routing_key: &str, e: &Event, severity: Severity) -> Value {
    let (action, dedup_key) = pagerduty_action(e);
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
    });
    if action == "trigger" {
        let summary: String = format!("{}: {} — {}", e.watch, e.kind.label(), e.summary)
            .chars()
            .take(PAGERDUTY_SUMMARY)
            .collect();
        body["payload"] = json!({
            "summary": summary,
            "source": e.url,
            "severity": match severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
                Severity::Info => "info",
            },
            "timestamp": crate::event::rfc3339(e.at),
            "component": e.watch,
            "class": e.kind.as_str(),
            "custom_details": {
                "event_id": e.id,
                "verify": e.verify_line(),
                "acknowledge": "acknowledge the incident in PagerDuty",
            },
        });
        if e.url.starts_with("http") {
            body["links"] = json!([{"href": e.url, "text": "the watched page"}]);
        }
    }
    body
}

/// Telegram: the bot's `sendMessage` to the chat.
pub async fn send_telegram(
    bot_token: &str,
    chat_id: &str,
    api_url: &str,
    msg: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let token = secret("bot_token", bot_token)?;
    let target = parse(&format!("{api_url}/bot{token}/sendMessage"))?;
    // The token is in the path: shown without it.
    let where_ = super::webhook::shown(&target);
    let text = format!("{}\n{}", render::title(msg), render::text(msg, 40));
    let body = json!({
        "chat_id": secret("chat_id", chat_id)?,
        "text": render::cut(&text, TELEGRAM_LIMIT, "Telegram"),
        "disable_web_page_preview": true,
    });
    let bytes = body.to_string().into_bytes();
    post_to(target, &where_, bytes, "application/json", &[], timeout).await
}

/// Twilio's parts of a channel.
pub struct Twilio<'a> {
    pub account_sid: &'a str,
    pub auth_token: &'a str,
    pub from: &'a str,
    pub to: &'a [String],
    pub call: bool,
    pub api_url: &'a str,
}

/// Twilio: a text message (`Messages.json`) or a call that speaks the title (`Calls.json`
/// with TwiML), to each number.
pub async fn send_twilio(t: &Twilio<'_>, msg: &Message, timeout: Duration) -> Result<(), String> {
    use base64::Engine;
    let sid = secret("account_sid", t.account_sid)?;
    let token = secret("auth_token", t.auth_token)?;
    let from = secret("from", t.from)?;
    let what = if t.call { "Calls" } else { "Messages" };
    let target = parse(&format!(
        "{}/2010-04-01/Accounts/{sid}/{what}.json",
        t.api_url
    ))?;
    let where_ = super::webhook::shown(&target);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
    let headers = [("Authorization".to_string(), format!("Basic {auth}"))];
    for to in t.to {
        let to = secret("to", to)?;
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("From", &from).append_pair("To", &to);
        if t.call {
            form.append_pair("Twiml", &spoken(msg));
        } else {
            let text = format!("{}\n{}", render::title(msg), render::text(msg, 5));
            form.append_pair("Body", &render::cut(&text, SMS_LIMIT, "SMS"));
        }
        let body = form.finish().into_bytes();
        post_to(
            target.clone(),
            &where_,
            body,
            "application/x-www-form-urlencoded",
            &headers,
            timeout,
        )
        .await?;
    }
    Ok(())
}

/// What a call says: the title and the first event's summary, twice, as TwiML.
fn spoken(msg: &Message) -> String {
    let summary = msg
        .items
        .first()
        .map(|(e, _)| e.summary.clone())
        .unwrap_or_default();
    let text: String = format!("forewarn alert. {}. {summary}", render::title(msg))
        .chars()
        .take(CALL_LIMIT)
        .collect();
    let text = text.replace('&', "and").replace(['<', '>', '"', '`'], " ");
    format!("<Response><Say>{text}</Say><Pause length=\"1\"/><Say>{text}</Say></Response>")
}
