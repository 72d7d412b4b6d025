//! HTTP: one shared client, conditional GETs, a streamed body cap, and errors that say
//! what went wrong and what to do. Error texts never contain the URL (it may carry secrets).

pub mod browser;
pub mod politeness;
mod private;
pub mod retry;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};

/// The User-Agent sent with every request.
pub const USER_AGENT: &str = concat!(
    "forewarn/",
    env!("CARGO_PKG_VERSION"),
    " (change monitor; +https://crates.io/crates/forewarn)"
);

const MAX_REDIRECTS: usize = 10;
/// Pages loaded in the browser at once.
const BROWSER_TABS: usize = 2;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One request to make.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub url: url::Url,
    pub headers: HeaderMap,
    /// Stored validators, sent verbatim for a conditional GET.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub timeout: Duration,
    pub max_size: u64,
    /// `insecure = true`: accept any TLS certificate (self-signed, expired, wrong name).
    pub insecure: bool,
    /// `deny_private = true`: no private, loopback or link-local address, nor a redirect to one.
    pub deny_private: bool,
    /// `browser = true`: loaded in the process's headless Chromium, not fetched.
    pub browser: Option<crate::config::BrowserSpec>,
}

/// What the server answered.
#[derive(Debug, Clone)]
pub enum Fetched {
    NotModified {
        etag: Option<String>,
        last_modified: Option<String>,
    },
    Body {
        status: u16,
        body: Vec<u8>,
        content_type: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
        /// `track_requests`: the requests the page's scripts made (browser watches only).
        requests: Option<Vec<String>>,
        /// `screenshot = true`: a PNG of the rendered page (browser watches only).
        screenshot: Option<Vec<u8>>,
    },
}

/// What a browser watch's conditional GET of its page (`skip_unchanged_shell`) said.
enum Shell {
    /// 304: the page's document is the one rendered last time.
    Same(Fetched),
    /// Another document (or one never seen): rendered, and these validators kept with it.
    New {
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// No answer that says either (an error, a redirect left unfollowed): rendered.
    Unknown,
}

/// A response as the server sent it, for showing to a person.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `HTTP/1.1 404 Not Found`.
    pub status: String,
    pub headers: Vec<(String, String)>,
    /// The start of the body.
    pub body: Vec<u8>,
    /// The body went on past what is kept.
    pub cut: bool,
}

/// Why a fetch failed. Each message ends with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("DNS lookup failed ({0}): check the host name, or your network")]
    Dns(String),
    #[error("could not connect ({0}): the server may be down; forewarn will try again next run")]
    Connect(String),
    #[error(
        "TLS error ({0}): the certificate is not trusted or the handshake failed; check the URL's scheme and the server's certificate (for a server you control with a self-signed certificate, `insecure = true` on the watch skips verification)"
    )]
    Tls(String),
    #[error("timed out after {}: the server is slow; raise `timeout` for this watch if that is normal", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("HTTP {status}{}: {hint}{}", if reason.is_empty() { String::new() } else { format!(" {reason}") }, retry_after.map(|d| format!(" (Retry-After: {}s)", d.as_secs())).unwrap_or_default())]
    Http {
        status: u16,
        reason: String,
        hint: &'static str,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error(
        "the body is larger than the {limit_shown} cap: raise `max_size` for this watch, or `select` a smaller page",
        limit_shown = human_size(*limit)
    )]
    TooLarge { limit: u64 },
    #[error(
        "more than {MAX_REDIRECTS} redirects (or a redirect loop): point the watch at the final URL"
    )]
    TooManyRedirects,
    #[error(
        "the response broke off or could not be decoded ({0}); forewarn will try again next run"
    )]
    Body(String),
    #[error("invalid request: {0}")]
    Request(String),
    /// `deny_private = true` refused the address.
    #[error("{0}")]
    Denied(String),
    /// A browser watch: the browser is missing, would not start, or the page never settled.
    #[error("{0}")]
    Browser(String),
}

impl FetchError {
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub fn human_size(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// A client built on first use, for one combination of `insecure` and `deny_private`.
type LazyClient = std::sync::OnceLock<Result<reqwest::Client, String>>;

/// The shared HTTP client: rustls, compression, HTTP/2, keep-alive.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    per_host: usize,
    /// The other clients (`insecure`, `deny_private`, both), each built on first use.
    others: std::sync::Arc<[LazyClient; 3]>,
    /// Started by the first browser watch, and only then.
    browser: std::sync::Arc<browser::Browser>,
}

impl Fetcher {
    pub fn new(per_host: usize) -> Result<Self, String> {
        Ok(Fetcher {
            client: Self::build(per_host, false, false)?,
            per_host,
            others: Default::default(),
            browser: std::sync::Arc::new(browser::Browser::new(
                BROWSER_TABS,
                None,
                Default::default(),
            )),
        })
    }

    /// Loads up to `tabs` pages of browser watches at once in the browser `settings` name,
    /// and keeps the cookies of named browser sessions (`session = "NAME"`) under `sessions`.
    pub fn with_browser(
        mut self,
        tabs: usize,
        sessions: Option<std::path::PathBuf>,
        settings: crate::config::BrowserSettings,
    ) -> Self {
        self.browser = std::sync::Arc::new(browser::Browser::new(tabs, sessions, settings));
        self
    }

    /// Loads browser watches in `browser` when given (one kept across passes).
    pub fn with_shared_browser(
        mut self,
        browser: Option<std::sync::Arc<browser::Browser>>,
    ) -> Self {
        if let Some(b) = browser {
            self.browser = b;
        }
        self
    }

    /// The client a request's `insecure` and `deny_private` ask for.
    fn client_for(&self, req: &FetchRequest) -> Result<&reqwest::Client, FetchError> {
        let slot = match (req.insecure, req.deny_private) {
            (false, false) => return Ok(&self.client),
            (true, false) => 0,
            (false, true) => 1,
            (true, true) => 2,
        };
        self.others[slot]
            .get_or_init(|| Self::build(self.per_host, req.insecure, req.deny_private))
            .as_ref()
            .map_err(|e| FetchError::Request(e.clone()))
    }

    /// Sends the GET: the watch's headers, the validators, the client its TLS setting needs.
    async fn send(&self, req: &FetchRequest) -> Result<reqwest::Response, FetchError> {
        let mut headers = req.headers.clone();
        if let Some(etag) = &req.etag
            && let Ok(v) = HeaderValue::from_str(etag)
        {
            headers.insert(IF_NONE_MATCH, v);
        }
        if let Some(lm) = &req.last_modified
            && let Ok(v) = HeaderValue::from_str(lm)
        {
            headers.insert(IF_MODIFIED_SINCE, v);
        }
        if req.deny_private {
            private::check_url(&req.url).map_err(FetchError::Denied)?;
        }
        let client = self.client_for(req)?;
        let send = client
            .get(req.url.clone())
            .headers(headers)
            .timeout(req.timeout)
            .send();
        send.await.map_err(|e| classify(e, req.timeout))
    }

    /// `skip_unchanged_shell`: the page's own document, asked for with the stored
    /// validators (its body is not read). Any failure is left for the browser to meet.
    async fn shell(&self, req: &FetchRequest) -> Shell {
        let Ok(resp) = self.send(req).await else {
            return Shell::Unknown;
        };
        let header = |name: HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        match resp.status() {
            StatusCode::NOT_MODIFIED if req.etag.is_some() || req.last_modified.is_some() => {
                Shell::Same(Fetched::NotModified {
                    etag,
                    last_modified,
                })
            }
            s if s.is_success() => Shell::New {
                etag,
                last_modified,
            },
            _ => Shell::Unknown,
        }
    }

    /// What the server sends, whatever its status: the status line, the headers and the
    /// first `limit` bytes of the body (for `forewarn test` on a failing watch).
    pub async fn probe(&self, req: &FetchRequest, limit: usize) -> Result<Probe, FetchError> {
        let mut resp = self.send(req).await?;
        let status = format!("{:?} {}", resp.version(), resp.status());
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while body.len() <= limit
            && let Some(chunk) = resp.chunk().await.map_err(|e| classify(e, req.timeout))?
        {
            body.extend_from_slice(&chunk);
        }
        let cut = body.len() > limit;
        body.truncate(limit);
        Ok(Probe {
            status,
            headers,
            body,
            cut,
        })
    }

    fn build(
        per_host: usize,
        insecure: bool,
        deny_private: bool,
    ) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder();
        builder = if deny_private {
            builder
                .dns_resolver(std::sync::Arc::new(private::PublicOnly))
                .redirect(private::redirects(MAX_REDIRECTS))
        } else {
            builder.redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        };
        builder
            .danger_accept_invalid_certs(insecure)
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(per_host.max(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
    }

    /// A browser watch's page: rendered, unless `skip_unchanged_shell` finds its document
    /// unchanged.
    async fn render(
        &self,
        req: &FetchRequest,
        render: &crate::config::BrowserSpec,
    ) -> Result<Fetched, FetchError> {
        if req.deny_private {
            private::check_url(&req.url).map_err(FetchError::Denied)?;
        }
        let mut shell = (None, None);
        if render.skip_unchanged_shell {
            match self.shell(req).await {
                Shell::Same(not_modified) => return Ok(not_modified),
                Shell::New {
                    etag,
                    last_modified,
                } => shell = (etag, last_modified),
                Shell::Unknown => {}
            }
        }
        let mut fetched = self.browser.render(&req.url, render, req.timeout).await?;
        if let Fetched::Body {
            etag,
            last_modified,
            ..
        } = &mut fetched
        {
            (*etag, *last_modified) = shell;
        }
        Ok(fetched)
    }

    /// One GET, conditional when validators are given. The body is streamed and stopped at
    /// `max_size` decoded bytes, so neither a huge body nor a compression bomb is buffered.
    pub async fn fetch(&self, req: &FetchRequest) -> Result<Fetched, FetchError> {
        if let Some(render) = &req.browser {
            // Boxed: a page loaded in the browser is a future of kilobytes, and every plain
            // fetch (a task's whole state while it waits for its response) would be as large.
            return Box::pin(self.render(req, render)).await;
        }
        let mut resp = self.send(req).await?;
        let status = resp.status();
        let header = |name: HeaderName, resp: &reqwest::Response| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(ETAG, &resp);
        let last_modified = header(LAST_MODIFIED, &resp);
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified {
                etag,
                last_modified,
            });
        }
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry::parse_retry_after);
            // GitHub (and others using its headers): an exhausted rate limit is a 403 or 429
            // with X-RateLimit-Remaining: 0 and the reset time in X-RateLimit-Reset.
            if matches!(status.as_u16(), 403 | 429)
                && header(HeaderName::from_static("x-ratelimit-remaining"), &resp).as_deref()
                    == Some("0")
            {
                let reset = header(HeaderName::from_static("x-ratelimit-reset"), &resp)
                    .and_then(|r| r.trim().parse::<i64>().ok())
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
                let wait = reset.and_then(|r| (r - chrono::Utc::now()).to_std().ok());
                return Err(FetchError::Http {
                    status: status.as_u16(),
                    reason: "rate limit exhausted".into(),
                    hint: "the API's rate limit is used up; set GITHUB_TOKEN (or an Authorization header) for a higher limit, or check less often",
                    retry_after: wait.or(Some(Duration::from_secs(3600))),
                });
            }
            return Err(http_error(status, retry_after));
        }
        if resp.content_length().is_some_and(|n| n > req.max_size) {
            return Err(FetchError::TooLarge {
                limit: req.max_size,
            });
        }
        let content_type = header(CONTENT_TYPE, &resp);
        let mut body = Vec::with_capacity(
            resp.content_length()
                .map_or(16 * 1024, |n| n.min(req.max_size) as usize),
        );
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(e, req.timeout))? {
            if (body.len() + chunk.len()) as u64 > req.max_size {
                return Err(FetchError::TooLarge {
                    limit: req.max_size,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            status: status.as_u16(),
            body,
            content_type,
            etag,
            last_modified,
            requests: None,
            screenshot: None,
        })
    }
}

fn http_error(status: StatusCode, retry_after: Option<Duration>) -> FetchError {
    let hint = match status.as_u16() {
        401 | 403 => {
            "access denied; check the credentials in `headers` (and that the token has not expired)"
        }
        404 | 410 => "the page is gone; the vendor may have moved it: update the watch's URL",
        408 | 429 => "the server asks forewarn to slow down; check less often",
        500..=599 => {
            "the server is failing; the last good snapshot is kept and the next run tries again"
        }
        _ => "the server refused the request; check the URL and `headers`",
    };
    FetchError::Http {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_string(),
        hint,
        retry_after,
    }
}

/// Maps a reqwest error to a typed failure, without the URL.
fn classify(e: reqwest::Error, timeout: Duration) -> FetchError {
    let e = e.without_url();
    let text = chain(&e);
    let lower = text.to_ascii_lowercase();
    if let Some(at) = text.find(private::REFUSES) {
        let refusal = &text[at..];
        FetchError::Denied(refusal.split(": ").next().unwrap_or(refusal).to_string())
    } else if e.is_timeout() || lower.contains("timed out") {
        FetchError::Timeout(timeout)
    } else if e.is_redirect() {
        FetchError::TooManyRedirects
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        FetchError::Dns(text)
    } else if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalid peer")
    {
        FetchError::Tls(text)
    } else if e.is_connect() {
        FetchError::Connect(text)
    } else if e.is_body() || e.is_decode() {
        FetchError::Body(text)
    } else if e.is_builder() {
        FetchError::Request(text)
    } else {
        FetchError::Body(text)
    }
}

/// An error and its sources, joined with ": ", repeated messages dropped.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}
