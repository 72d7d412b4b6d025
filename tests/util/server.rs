//! A real HTTP/1.1 server on 127.0.0.1:0 whose pages tests can change between runs.
//!
//! Written by hand (keep-alive, conditional GETs) so that tests control every byte, and so
//! that misbehaving servers can be added for hardening tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One page the server serves.
#[derive(Clone, Debug)]
pub struct Page {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Sleep this long before answering.
    pub delay: Duration,
    /// Answer the next N requests with this status and `Retry-After` (seconds) first.
    pub fail_first: Option<(usize, u16, Option<u64>)>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Send these bytes as the whole response (status line, headers, body), then close:
    /// for servers that break HTTP on purpose.
    pub raw: Option<Vec<u8>>,
    /// With `raw`: pause this long between bytes (a body that trickles).
    pub trickle: Option<Duration>,
}

impl Page {
    pub fn html(body: &str) -> Self {
        Page {
            status: 200,
            body: body.as_bytes().to_vec(),
            content_type: "text/html; charset=utf-8".into(),
            etag: None,
            last_modified: None,
            delay: Duration::ZERO,
            fail_first: None,
            headers: Vec::new(),
            raw: None,
            trickle: None,
        }
    }

    pub fn with_type(mut self, ct: &str) -> Self {
        self.content_type = ct.into();
        self
    }

    pub fn etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.into());
        self
    }

    pub fn last_modified(mut self, lm: &str) -> Self {
        self.last_modified = Some(lm.into());
        self
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// A response written byte for byte, then the connection is closed.
    pub fn raw(bytes: &[u8]) -> Self {
        Page {
            raw: Some(bytes.to_vec()),
            ..Page::html("")
        }
    }

    /// A body of arbitrary bytes (not necessarily UTF-8).
    pub fn raw_body(mut self, bytes: &[u8]) -> Self {
        self.body = bytes.to_vec();
        self
    }

    pub fn trickle(mut self, every: Duration) -> Self {
        self.trickle = Some(every);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn fail_first(mut self, n: usize, status: u16, retry_after: Option<u64>) -> Self {
        self.fail_first = Some((n, status, retry_after));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
    /// What the server answered.
    pub status: u16,
    /// The request body (webhook deliveries).
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON: {e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct State {
    pages: HashMap<String, Page>,
    seen: Vec<Seen>,
    /// Requests being answered right now, and the most at once.
    active: usize,
    max_active: usize,
}

pub struct Server {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &st);
                });
            }
        });
        Server { port, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn set(&self, path: &str, page: Page) {
        self.state.lock().unwrap().pages.insert(path.into(), page);
    }

    /// The most requests this server was answering at the same time.
    pub fn max_concurrent(&self) -> usize {
        self.state.lock().unwrap().max_active
    }

    /// Starts counting the most requests at once afresh.
    pub fn reset_max_concurrent(&self) {
        let mut st = self.state.lock().unwrap();
        st.max_active = st.active;
    }

    /// Requests seen so far for a path.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        let st = self.state.lock().unwrap();
        st.seen.iter().filter(|s| s.path == path).cloned().collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let mut body = vec![
            0u8;
            headers
                .get("content-length")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        ];
        std::io::Read::read_exact(&mut reader, &mut body)?;
        let page = {
            let mut st = state.lock().unwrap();
            st.active += 1;
            st.max_active = st.max_active.max(st.active);
            // A page that fails its first N requests: count down, answer the failure.
            // A page set without a query answers for any query (an app's API calls).
            let bare = path.split('?').next().unwrap_or(&path).to_string();
            let mut page = st.pages.get(&path).or_else(|| st.pages.get(&bare)).cloned();
            if let Some(p) = st.pages.get_mut(&path)
                && let Some((n, status, _)) = &mut p.fail_first
            {
                if *n > 0 {
                    *n -= 1;
                    let status = *status;
                    if let Some(pg) = page.as_mut() {
                        pg.status = status;
                    }
                } else {
                    p.fail_first = None;
                    if let Some(pg) = page.as_mut() {
                        pg.fail_first = None;
                    }
                }
            }
            page
        };
        let page = page.unwrap_or_else(|| Page::html("not found").status(404));
        if !page.delay.is_zero() {
            thread::sleep(page.delay);
        }
        if let Some(raw) = &page.raw {
            state.lock().unwrap().seen.push(Seen {
                at: std::time::Instant::now(),
                path: path.clone(),
                headers: headers.clone(),
                status: 0,
                body: body.clone(),
            });
            match page.trickle {
                Some(every) => {
                    for b in raw {
                        if out.write_all(&[*b]).and_then(|_| out.flush()).is_err() {
                            break;
                        }
                        thread::sleep(every);
                    }
                }
                None => {
                    let _ = out.write_all(raw);
                }
            }
            state.lock().unwrap().active -= 1;
            let _ = out.flush();
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        // 304 only when the validator the client sent matches the current one exactly.
        let inm_ok = match (&page.etag, headers.get("if-none-match")) {
            (Some(e), Some(sent)) => e == sent,
            _ => false,
        };
        let ims_ok = match (&page.last_modified, headers.get("if-modified-since")) {
            (Some(lm), Some(sent)) => lm == sent,
            _ => false,
        };
        let not_modified =
            page.status == 200 && (inm_ok || (ims_ok && !headers.contains_key("if-none-match")));
        let status = if not_modified { 304 } else { page.status };
        state.lock().unwrap().seen.push(Seen {
            at: std::time::Instant::now(),
            path: path.clone(),
            headers: headers.clone(),
            status,
            body: body.clone(),
        });
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {}\r\n",
            reason(status),
            page.content_type
        );
        if let Some(e) = &page.etag {
            head.push_str(&format!("ETag: {e}\r\n"));
        }
        if let Some(lm) = &page.last_modified {
            head.push_str(&format!("Last-Modified: {lm}\r\n"));
        }
        for (k, v) in &page.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some((_, _, Some(secs))) = page.fail_first
            && status != 200
        {
            head.push_str(&format!("Retry-After: {secs}\r\n"));
        }
        let serial = state.lock().unwrap().seen.len();
        let body = if not_modified {
            Vec::new()
        } else {
            match std::str::from_utf8(&page.body) {
                Ok(text) => per_request(text, serial).into_bytes(),
                Err(_) => page.body.clone(),
            }
        };
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        // One write: a head and a body written apart wait out Nagle's algorithm against the
        // client's delayed ACK (40 ms a response on a kept-alive connection).
        let mut response = head.into_bytes();
        response.extend_from_slice(&body);
        out.write_all(&response)?;
        out.flush()?;
        state.lock().unwrap().active -= 1;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A body as served to request number `serial`: `{{N}}` becomes the serial (a page that
/// differs on every request: per-request tokens, node names) and `{{ROTATE:a|b|c}}` the
/// value the serial picks in turn (a teaser rotating between several values).
fn per_request(text: &str, serial: usize) -> String {
    let mut out = text.replace("{{N}}", &serial.to_string());
    while let Some(start) = out.find("{{ROTATE:") {
        let Some(len) = out[start..].find("}}") else {
            break;
        };
        let values: Vec<&str> = out[start + 9..start + len].split('|').collect();
        let pick = values[serial % values.len()].to_string();
        out.replace_range(start..start + len + 2, &pick);
    }
    out
}
