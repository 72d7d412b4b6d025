//! `forewarn watch --metrics ADDR`: a Prometheus text endpoint at `/metrics` and a health
//! check at `/healthz`, served by the daemon itself (a few lines of HTTP/1.1 over tokio; no
//! web framework). Off by default; an address without a host listens on 127.0.0.1 only.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::judge::Outcome;

/// The check duration histogram's upper bounds, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// A scheduler that has not moved for this long is reported stuck.
const STUCK_AFTER: Duration = Duration::from_secs(120);

/// What the daemon has done since it started, for `/metrics` and `/healthz`.
pub struct Metrics {
    state: Mutex<State>,
}

struct State {
    checks: BTreeMap<&'static str, u64>,
    /// Checks per bucket of [`BUCKETS`] (and one past the last), their sum and count.
    buckets: [u64; BUCKETS.len() + 1],
    seconds: f64,
    count: u64,
    /// Per watch: last success (Unix seconds) and the last check's outcome.
    watches: HashMap<String, (Option<i64>, &'static str)>,
    outbox: Option<usize>,
    failures: BTreeMap<String, u64>,
    /// When the scheduler last moved (a check stored, a loop turned).
    tick: Instant,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics {
            state: Mutex::new(State {
                checks: BTreeMap::new(),
                buckets: [0; BUCKETS.len() + 1],
                seconds: 0.0,
                count: 0,
                watches: HashMap::new(),
                outbox: None,
                failures: BTreeMap::new(),
                tick: Instant::now(),
            }),
        })
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// One stored check.
    pub fn check(&self, o: &Outcome) {
        let (outcome, error) = crate::pipeline::check_outcome(o);
        let secs = o.duration_ms as f64 / 1000.0;
        self.with(|s| {
            *s.checks.entry(outcome).or_default() += 1;
            let b = BUCKETS
                .iter()
                .position(|&le| secs <= le)
                .unwrap_or(BUCKETS.len());
            s.buckets[b] += 1;
            s.seconds += secs;
            s.count += 1;
            let last_ok = s.watches.get(&o.name).and_then(|w| w.0);
            let ok = error.is_none().then(|| o.at.timestamp());
            s.watches.insert(o.name.clone(), (ok.or(last_ok), outcome));
            s.tick = Instant::now();
        });
    }

    /// The scheduler turned (between passes, or idle).
    pub fn tick(&self) {
        self.with(|s| s.tick = Instant::now());
    }

    pub fn outbox(&self, depth: usize) {
        self.with(|s| s.outbox = Some(depth));
    }

    pub fn notification_failed(&self, channel: &str) {
        self.with(|s| *s.failures.entry(channel.to_string()).or_default() += 1);
    }

    /// `Ok` while the scheduler runs and the database answers; else why not.
    pub fn health(&self) -> Result<(), String> {
        if !crate::store::database_reachable() {
            return Err("the database is unreachable (reconnecting)".into());
        }
        let idle = self
            .state
            .lock()
            .map(|s| s.tick.elapsed())
            .unwrap_or_default();
        if idle > STUCK_AFTER {
            return Err(format!(
                "the scheduler has not moved for {} s",
                idle.as_secs()
            ));
        }
        Ok(())
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let Ok(s) = self.state.lock() else {
            return String::new();
        };
        let mut out = String::new();
        out.push_str("# HELP forewarn_checks_total Checks stored, by outcome.\n# TYPE forewarn_checks_total counter\n");
        for (outcome, n) in &s.checks {
            let _ = writeln!(out, "forewarn_checks_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP forewarn_check_duration_seconds Time a check took, retries included.\n# TYPE forewarn_check_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += s.buckets[i];
            let _ = writeln!(
                out,
                "forewarn_check_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "forewarn_check_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            s.count
        );
        let _ = writeln!(out, "forewarn_check_duration_seconds_sum {}", s.seconds);
        let _ = writeln!(out, "forewarn_check_duration_seconds_count {}", s.count);
        let mut watches: Vec<_> = s.watches.iter().collect();
        watches.sort_by(|a, b| a.0.cmp(b.0));
        out.push_str("# HELP forewarn_watch_last_success_timestamp_seconds When the watch last answered.\n# TYPE forewarn_watch_last_success_timestamp_seconds gauge\n");
        for (name, (ok, _)) in &watches {
            if let Some(t) = ok {
                let _ = writeln!(
                    out,
                    "forewarn_watch_last_success_timestamp_seconds{{watch=\"{}\"}} {t}",
                    label(name)
                );
            }
        }
        out.push_str("# HELP forewarn_watch_state The outcome of the watch's last check (1 for it).\n# TYPE forewarn_watch_state gauge\n");
        for (name, (_, state)) in &watches {
            let _ = writeln!(
                out,
                "forewarn_watch_state{{watch=\"{}\",state=\"{state}\"}} 1",
                label(name)
            );
        }
        if let Some(n) = s.outbox {
            out.push_str("# HELP forewarn_outbox_depth Notifications queued and not yet delivered.\n# TYPE forewarn_outbox_depth gauge\n");
            let _ = writeln!(out, "forewarn_outbox_depth {n}");
        }
        out.push_str("# HELP forewarn_notification_failures_total Failed delivery attempts, by channel.\n# TYPE forewarn_notification_failures_total counter\n");
        for (channel, n) in &s.failures {
            let _ = writeln!(
                out,
                "forewarn_notification_failures_total{{channel=\"{}\"}} {n}",
                label(channel)
            );
        }
        out
    }
}

/// A label value, escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Listens on `addr` and serves until the daemon ends; returns the address bound (a port of 0
/// picks a free one).
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let m = metrics.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, &m)).await;
            });
        }
    });
    Ok(bound)
}

/// One request: `GET /metrics`, `GET /healthz`, else 404.
async fn answer(mut stream: tokio::net::TcpStream, m: &Metrics) -> std::io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", m.render()),
        "/healthz" => match m.health() {
            Ok(()) => ("200 OK", "text/plain", "ok\n".to_string()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        _ => (
            "404 Not Found",
            "text/plain",
            "/metrics or /healthz\n".to_string(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
