//! What is retried, decided in one place: timeouts (once), connection failures and broken
//! bodies, and HTTP 408, 429, 500, 502, 503, 504. Never DNS or TLS errors, other 4xx, or a body
//! over the cap. `Retry-After` is honoured up to a cap; backoff doubles with jitter.

use std::time::Duration;

use super::FetchError;

/// The longest `Retry-After` forewarn waits within a check; longer means "fail now, the next
/// run tries again".
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

const BASE: Duration = Duration::from_millis(500);

/// How long to wait before attempt `attempt + 1`, or `None` to give up.
pub fn decide(e: &FetchError, attempt: u32, retries: u32) -> Option<Duration> {
    if attempt >= retries {
        return None;
    }
    let backoff = BASE * 2u32.saturating_pow(attempt.min(6)) + jitter();
    match e {
        // A slow server gets one more chance, not `retries` more full timeouts.
        FetchError::Timeout(_) => (attempt == 0).then_some(backoff),
        FetchError::Connect(_) | FetchError::Body(_) => Some(backoff),
        FetchError::Http {
            status: 408 | 429 | 500 | 502 | 503 | 504,
            retry_after,
            ..
        } => match retry_after {
            Some(d) if *d <= RETRY_AFTER_CAP => Some(*d),
            Some(_) => None,
            None => Some(backoff),
        },
        _ => None,
    }
}

/// 0-250 ms, from the clock's low bits: enough to keep retries from marching in step.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(nanos % 250))
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, retry_after: Option<Duration>) -> FetchError {
        FetchError::Http {
            status,
            reason: String::new(),
            hint: "",
            retry_after,
        }
    }

    #[test]
    fn what_is_retried() {
        assert!(decide(&http(503, None), 0, 2).is_some());
        assert!(
            decide(&http(503, None), 2, 2).is_none(),
            "a few tries at most"
        );
        assert!(decide(&http(404, None), 0, 2).is_none());
        assert!(decide(&http(403, None), 0, 2).is_none());
        assert!(decide(&FetchError::Dns("x".into()), 0, 2).is_none());
        assert!(decide(&FetchError::Tls("x".into()), 0, 2).is_none());
        assert!(decide(&FetchError::TooLarge { limit: 1 }, 0, 2).is_none());
        assert!(decide(&FetchError::Timeout(Duration::from_secs(1)), 0, 2).is_some());
        assert!(decide(&FetchError::Timeout(Duration::from_secs(1)), 1, 2).is_none());
        assert_eq!(
            decide(&http(429, Some(Duration::from_secs(3))), 0, 2),
            Some(Duration::from_secs(3))
        );
        assert!(decide(&http(429, Some(Duration::from_secs(3600))), 0, 2).is_none());
        // 500 ms then 2 s, each plus up to 250 ms of jitter: doubling whatever the jitter.
        let first = decide(&http(500, None), 0, 5).unwrap();
        let third = decide(&http(500, None), 2, 5).unwrap();
        assert!(first < Duration::from_millis(750), "{first:?}");
        assert!(third >= Duration::from_secs(2), "{third:?}");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
