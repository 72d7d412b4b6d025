//! `webhook` (forewarn's JSON document, optionally signed), `slack` and `discord` (their
//! incoming-webhook formats, cut to the services' limits).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Message;
use super::render;
use crate::config::UrlTemplate;
use crate::config::types::expand_env;

/// Slack shows up to about 4,000 characters of `text` before folding it; Discord refuses
/// `content` over 2,000.
const SLACK_LIMIT: usize = 3_900;
const DISCORD_LIMIT: usize = 2_000;
/// Chat messages carry as much of the diff as the service takes, then say where the rest is.
const CHAT_DIFF_LINES: usize = 1_000;

/// The generic webhook: forewarn's JSON document, signed with HMAC-SHA256 when `secret` is
/// set (`X-Forewarn-Signature: sha256=<hex>` over the exact body bytes).
pub async fn send_generic(
    url: &UrlTemplate,
    secret: Option<&str>,
    headers: &[(String, String)],
    msg: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let body = serde_json::to_vec(&render::json(msg)).expect("JSON serialises");
    let mut extra: Vec<(String, String)> = vec![("X-Forewarn-Delivery".into(), msg.id.clone())];
    if let Some(secret) = secret {
        let key = expand_env(secret).map_err(|e| format!("`secret`: {e}"))?;
        extra.push((
            "X-Forewarn-Signature".into(),
            format!("sha256={}", sign(&key, &body)),
        ));
    }
    for (k, v) in headers {
        let v = expand_env(v).map_err(|e| format!("header `{k}`: {e}"))?;
        extra.push((k.clone(), v));
    }
    post(url, body, &extra, timeout).await
}

/// Hex HMAC-SHA256 of `body` with `key`.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length works");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn send_slack(url: &UrlTemplate, msg: &Message, timeout: Duration) -> Result<(), String> {
    let text = format!(
        "*{}*\n{}",
        slack_escape(&render::title(msg)),
        slack_escape(&render::text(msg, CHAT_DIFF_LINES))
    );
    let text = render::cut(&text, SLACK_LIMIT, "Slack");
    let body = json!({"text": text, "unfurl_links": false, "unfurl_media": false});
    post(url, body.to_string().into_bytes(), &[], timeout).await
}

pub async fn send_discord(
    url: &UrlTemplate,
    msg: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let text = format!(
        "**{}**\n{}",
        render::title(msg),
        render::text(msg, CHAT_DIFF_LINES)
    );
    let text = render::cut(&text, DISCORD_LIMIT, "Discord");
    // Mentions in third-party text must not ping anyone.
    let body = json!({
        "content": text,
        "username": "forewarn",
        "allowed_mentions": {"parse": []},
    });
    post(url, body.to_string().into_bytes(), &[], timeout).await
}

/// Slack's three control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A webhook URL carries its secret in the path: people see only scheme, host and port.
pub fn shown(url: &url::Url) -> String {
    let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(p) = url.port() {
        s.push_str(&format!(":{p}"));
    }
    if url.path().len() > 1 {
        s.push_str("/…");
    }
    s
}

async fn post(
    url: &UrlTemplate,
    body: Vec<u8>,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let target = url.expand().map_err(|e| format!("bad webhook URL: {e}"))?;
    let where_ = shown(&target);
    post_to(target, &where_, body, "application/json", headers, timeout).await
}

/// POSTs `body` to `target` (shown as `where_`: never with a secret in its path), and says
/// what the service answered when it refused.
pub(super) async fn post_to(
    target: url::Url,
    where_: &str,
    body: Vec<u8>,
    content_type: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .user_agent(crate::fetch::USER_AGENT)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client
        .post(target)
        .header("Content-Type", content_type)
        .body(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.map_err(|e| describe(&e, where_))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(format!(
        "{where_} answered HTTP {}{}",
        status,
        service_message(&text)
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    ))
}

/// What the service said about a refused message: Slack answers plain text
/// (`invalid_payload`), Discord and most others JSON with `message` or `error`.
fn service_message(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        for key in ["message", "error", "error_description", "detail"] {
            if let Some(m) = v.get(key).and_then(Value::as_str) {
                return Some(m.to_string());
            }
        }
    }
    let first: String = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Some(first)
}

fn describe(e: &reqwest::Error, where_: &str) -> String {
    let mut msg = if e.is_timeout() {
        format!("{where_} did not answer in time")
    } else if e.is_connect() {
        format!("cannot connect to {where_}")
    } else {
        format!("sending to {where_} failed")
    };
    // The innermost cause says it best ("Connection refused", "dns error").
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    if let Some(l) = last {
        msg.push_str(&format!(": {l}"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_urls_are_shown_without_their_path() {
        let u = url::Url::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(shown(&u), "https://hooks.slack.com/…");
        let u = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(shown(&u), "http://127.0.0.1:8080");
    }

    #[test]
    fn service_messages_are_read_from_json_or_text() {
        assert_eq!(
            service_message(r#"{"message": "Unknown Webhook", "code": 10015}"#).as_deref(),
            Some("Unknown Webhook")
        );
        assert_eq!(
            service_message("invalid_token").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(service_message(""), None);
    }
}
