//! Requests: what to send for a watch, the retries a failure allows, and the order that visits
//! hosts in turn.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

use crate::config::Watch;
use crate::config::types::{expand_env, plain_host};
use crate::fetch::politeness::Host;
use crate::fetch::{FetchError, FetchRequest, Fetched, Fetcher, retry};
use crate::judge::WatchState;

/// One request with the retries `retry::decide` allows. A host that answers 429 / 503 is
/// slowed down for the rest of the pass.
pub(super) async fn fetch_with_retries(
    fetcher: &Fetcher,
    req: &FetchRequest,
    host: &Host,
    global: &Semaphore,
    retries: u32,
) -> Result<Fetched, (Option<u16>, String)> {
    let mut attempt = 0;
    loop {
        if let Some(n) = host.unreachable() {
            return Err((
                None,
                format!(
                    "host unreachable: the last {n} requests to it in this pass could not connect, so this one was not tried; the next run tries again"
                ),
            ));
        }
        let result = {
            let _h = host.permit().await;
            let _g = global.acquire().await;
            fetcher.fetch(req).await
        };
        let e = match result {
            Ok(f) => {
                host.reached(true);
                return Ok(f);
            }
            Err(e) => e,
        };
        host.reached(!matches!(
            e,
            FetchError::Dns(_) | FetchError::Connect(_) | FetchError::Tls(_)
        ));
        if let FetchError::Http {
            status: 429 | 503,
            retry_after,
            ..
        } = &e
        {
            host.slow_down(retry_after.unwrap_or_default());
        }
        match retry::decide(&e, attempt, retries) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            None => {
                let tries = if attempt > 0 {
                    format!(" (tried {} times)", attempt + 1)
                } else {
                    String::new()
                };
                return Err((e.status(), format!("{e}{tries}")));
            }
        }
    }
}

/// Host and port (when not the scheme's default): the key for per-host limits.
pub(super) fn host_of(w: &Watch) -> (String, Option<u16>) {
    plain_host(w.url()).unwrap_or_else(|| {
        crate::config::types::validate_url_template(w.url())
            .map(|u| (u.host_str().unwrap_or("").to_ascii_lowercase(), u.port()))
            .unwrap_or_default()
    })
}

/// Host and port: the key for visiting hosts in turn.
fn host_key(w: &Watch) -> String {
    let (h, p) = host_of(w);
    format!("{h}:{}", p.unwrap_or(0))
}

/// Watch indices ordered round-robin across hosts, so one busy host does not hold up the rest.
pub(super) fn interleave_hosts(watches: &[Watch], only: Option<Vec<u32>>) -> Vec<u32> {
    // Positions as u32: half the memory of a 100,000-watch order; 4 billion watches will not
    // fit in memory anyway.
    let count = only.as_ref().map_or(watches.len(), Vec::len);
    let positions: Box<dyn Iterator<Item = u32>> = match only {
        Some(list) => Box::new(list.into_iter()),
        None => Box::new(0..watches.len() as u32),
    };
    let mut by_host: Vec<(String, Vec<u32>)> = Vec::new();
    let mut pos: HashMap<String, usize> = HashMap::new();
    for i in positions {
        let key = host_key(&watches[i as usize]);
        let slot = *pos.entry(key.clone()).or_insert_with(|| {
            // Room for every watch in the first host's list: most lists have one host, and
            // its list is then the order.
            let room = if by_host.is_empty() { count } else { 0 };
            by_host.push((key, Vec::with_capacity(room)));
            by_host.len() - 1
        });
        by_host[slot].1.push(i);
    }
    if by_host.len() == 1 {
        return by_host.pop().map(|(_, list)| list).unwrap_or_default();
    }
    let mut order = Vec::with_capacity(count);
    let longest = by_host.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    for round in 0..longest {
        for (_, list) in &by_host {
            if let Some(&i) = list.get(round) {
                order.push(i);
            }
        }
    }
    order
}

/// The request for a watch: URL and headers expanded, stored validators attached.
pub fn request_for(w: &Watch, state: Option<&WatchState>) -> Result<FetchRequest, String> {
    let url = w.expand_url()?;
    let mut headers = HeaderMap::new();
    for (name, value) in &w.settings.headers {
        let value = expand_env(value)?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name `{name}`"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            format!("the value of header `{name}` is not a valid HTTP header value after expanding variables")
        })?;
        headers.insert(name, value);
    }
    // GitHub's API: its JSON media type, and ${GITHUB_TOKEN} when set (higher rate limits).
    if w.settings
        .version
        .as_ref()
        .is_some_and(|v| v.source == crate::config::version::Source::Github)
    {
        headers
            .entry(reqwest::header::ACCEPT)
            .or_insert(HeaderValue::from_static("application/vnd.github+json"));
        if !headers.contains_key(reqwest::header::AUTHORIZATION)
            && let Ok(token) = std::env::var("GITHUB_TOKEN")
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
    }
    // Validators only when there is content to compare against.
    let usable = state.filter(|s| s.content_hash.is_some() || s.missing_selectors.is_some());
    Ok(FetchRequest {
        url,
        headers,
        etag: usable.and_then(|s| s.etag.clone()),
        last_modified: usable.and_then(|s| s.last_modified.clone()),
        timeout: w.settings.timeout,
        max_size: w.settings.max_size,
        insecure: w.settings.insecure,
        deny_private: w.settings.deny_private,
        browser: w.settings.browser.clone(),
    })
}

/// Fetches a watch once, unconditionally, for `forewarn test`.
/// Named browser sessions keep their cookies under `sessions` when it is given.
pub async fn fetch_once(
    w: &Watch,
    sessions: Option<std::path::PathBuf>,
    browser: &crate::config::BrowserSettings,
) -> Result<(Fetched, Duration), String> {
    let fetcher = Fetcher::new(1)?.with_browser(1, sessions, browser.clone());
    let req = request_for(w, None)?;
    let start = Instant::now();
    let f = fetcher
        .fetch(&req)
        .await
        .map_err(|e: FetchError| e.to_string())?;
    Ok((f, start.elapsed()))
}

/// What the server sends for a watch, whatever the status: for `forewarn test` on a failure.
pub async fn probe_once(w: &Watch, limit: usize) -> Result<crate::fetch::Probe, String> {
    let fetcher = Fetcher::new(1)?;
    let req = request_for(w, None)?;
    fetcher.probe(&req, limit).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick read of a plain URL gives what the URL parser gives, and leaves to it
    /// everything it would normalise.
    #[test]
    fn plain_hosts_are_read_as_the_url_parser_reads_them() {
        let urls = [
            "http://127.0.0.1:8080/a",
            "https://Example.COM/x?y#z",
            "http://example.com:80/",
            "https://example.com:443",
            "https://api.example.com:8443/v1",
            "http://10.0.0.1",
            "http://host-1.example.org?q=1",
        ];
        for u in urls {
            let parsed = url::Url::parse(u).unwrap();
            let want = (parsed.host_str().unwrap().to_string(), parsed.port());
            assert_eq!(plain_host(u), Some(want), "{u}");
        }
        let left_to_the_parser = [
            "http://user:pw@example.com/",
            "http://[::1]:8080/",
            "http://0x7f.1/",
            "http://1.2.3/",
            "http://127.000.0.1/",
            "https://bücher.de/",
            "https://${HOST}/feed",
            "http://example.com:/",
            "http://example.com:99999/",
            "http://exa%41mple.com/",
        ];
        for u in left_to_the_parser {
            assert_eq!(plain_host(u), None, "{u}");
        }
    }
}
