//! Per-host politeness: a concurrency limit and a minimum interval between the starts of two
//! requests, overridable per host, and slowed down when the host asks (429 / 503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::config::HostSettings;

/// The slowest forewarn slows a host down to within a pass.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Connection-level failures in a row (DNS, connect, TLS) after which a host's remaining
/// watches in this pass fail at once instead of each trying (and retrying) to connect.
pub const UNREACHABLE_AFTER: u32 = 5;

/// One host's limits.
#[derive(Debug)]
pub struct Host {
    sem: Semaphore,
    interval: Mutex<Duration>,
    next: Mutex<Option<Instant>>,
    unreachable: AtomicU32,
}

impl Host {
    fn new(concurrency: usize, interval: Duration) -> Self {
        Host {
            sem: Semaphore::new(concurrency.max(1)),
            interval: Mutex::new(interval),
            next: Mutex::new(None),
            unreachable: AtomicU32::new(0),
        }
    }

    /// Waits for a free slot on this host and for its interval since the last start.
    pub async fn permit(&self) -> SemaphorePermit<'_> {
        let permit = self
            .sem
            .acquire()
            .await
            .expect("host semaphores are never closed");
        let start = {
            let interval = *self.interval.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let start = next.map_or(now, |n| n.max(now));
            *next = Some(start + interval);
            start
        };
        // Only when there is something to wait for: a timer, even one already due, costs a
        // tick of the timer wheel (about 1 ms), which is 25 s over 100,000 requests.
        if start > Instant::now() {
            tokio::time::sleep_until(start).await;
        }
        permit
    }

    /// The host asked for less (429 / 503): at least double the interval between requests.
    pub fn slow_down(&self, at_least: Duration) {
        let mut i = self.interval.lock().unwrap_or_else(|e| e.into_inner());
        *i = (*i * 2)
            .max(at_least)
            .max(Duration::from_secs(1))
            .min(MAX_INTERVAL);
    }

    /// Records whether a request reached the host at all.
    pub fn reached(&self, yes: bool) {
        if yes {
            self.unreachable.store(0, Ordering::Relaxed);
        } else {
            self.unreachable.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connection-level failures in a row, when there were enough to stop trying this pass.
    pub fn unreachable(&self) -> Option<u32> {
        let n = self.unreachable.load(Ordering::Relaxed);
        (n >= UNREACHABLE_AFTER).then_some(n)
    }

    pub fn interval(&self) -> Duration {
        *self.interval.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The limits of every host a pass talks to.
#[derive(Debug, Default)]
pub struct Hosts {
    map: Mutex<HashMap<String, Arc<Host>>>,
    settings: HashMap<String, HostSettings>,
    per_host: usize,
}

impl Hosts {
    pub fn new(settings: HashMap<String, HostSettings>, per_host: usize) -> Self {
        Hosts {
            map: Mutex::default(),
            settings,
            per_host,
        }
    }

    /// The limits for `host` (and `port`, when not the scheme's default).
    pub fn get(&self, host: &str, port: Option<u16>) -> Arc<Host> {
        let key = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.clone())
            .or_insert_with(|| {
                let s = self
                    .settings
                    .get(&key)
                    .or_else(|| self.settings.get(host))
                    .copied()
                    .unwrap_or_default();
                Arc::new(Host::new(
                    s.concurrency.unwrap_or(self.per_host),
                    s.interval.unwrap_or(Duration::ZERO),
                ))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn interval_spaces_request_starts() {
        let mut settings = HashMap::new();
        settings.insert(
            "api.example.com".to_string(),
            HostSettings {
                concurrency: Some(8),
                interval: Some(Duration::from_secs(2)),
            },
        );
        let hosts = Hosts::new(settings, 4);
        let h = hosts.get("api.example.com", None);
        let t0 = Instant::now();
        for i in 0..3u32 {
            drop(h.permit().await);
            assert_eq!(Instant::now() - t0, Duration::from_secs(2) * i);
        }
        h.slow_down(Duration::from_secs(5));
        assert_eq!(h.interval(), Duration::from_secs(5));
        // Other hosts are not affected.
        assert_eq!(
            hosts.get("other.example.com", None).interval(),
            Duration::ZERO
        );
    }
}
