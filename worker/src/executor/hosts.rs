//! Per-host politeness for fetch: at most N requests in flight to one host and a least time
//! between the starts of two requests to it, for every slot of a worker running one job.
//!
//! A host is the URL's authority (`name:port`) as written: two names of one machine are two
//! hosts, as they are to a browser's per-host connection limit.

use super::waitable::{Try, Waitable};
use concur_core::pacing::Pacing;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Host {
    in_flight: u32,
    /// The earliest the next request may start.
    next_start: Option<Instant>,
}

/// Hosts in the table before the first sweep of idle ones.
const FIRST_SWEEP: usize = 64;

/// The hosts seen, and when to sweep the idle ones out.
#[derive(Debug, Default)]
struct Table {
    hosts: HashMap<String, Host>,
    /// Sweep once the table holds more hosts than this (doubling after each sweep, so a
    /// sweep costs O(1) per request spread out).
    sweep_above: usize,
}

impl Table {
    /// Drops hosts with nothing in flight whose delay has passed.
    fn sweep(&mut self, now: Instant) {
        if self.hosts.len() <= self.sweep_above.max(FIRST_SWEEP) {
            return;
        }
        self.hosts
            .retain(|_, h| h.in_flight > 0 || h.next_start.is_some_and(|t| t > now));
        self.sweep_above = (self.hosts.len() * 2).max(FIRST_SWEEP);
    }
}

/// The gates of every host one job's fetches reach, on one worker.
#[derive(Debug)]
pub(crate) struct HostGates {
    max_in_flight: u32,
    delay: Duration,
    hosts: Waitable<Table>,
}

/// A request's place at its host; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    gates: &'a HostGates,
    host: String,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let mut table = self.gates.hosts.lock();
        if let Some(host) = table.hosts.get_mut(&self.host) {
            host.in_flight = host.in_flight.saturating_sub(1);
            // Forget idle hosts whose delay has passed (the others go in a later sweep): a
            // job over a million hosts must not keep a million entries.
            let idle = host.in_flight == 0 && host.next_start.is_none_or(|t| t <= Instant::now());
            if idle {
                table.hosts.remove(&self.host);
            }
        }
        drop(table);
        self.gates.hosts.wake();
    }
}

/// The host part of `url` (`name:port`, lower case), or the whole text if it has none.
pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    authority.to_ascii_lowercase()
}

impl HostGates {
    /// Gates for `pacing`'s per-host cap and delay (`None` when it asks for neither).
    pub(crate) fn for_pacing(pacing: &Pacing) -> Option<Self> {
        pacing.is_polite().then(|| Self {
            max_in_flight: if pacing.per_host_connections == 0 {
                u32::MAX
            } else {
                pacing.per_host_connections
            },
            delay: Duration::from_millis(pacing.per_host_delay_ms),
            hosts: Waitable::new(Table::default()),
        })
    }

    fn take(&self, table: &mut Table, url_host: &str, now: Instant) -> Try<()> {
        table.sweep(now);
        let host = table.hosts.entry(url_host.to_string()).or_default();
        if host.in_flight >= self.max_in_flight {
            return Try::Wait(None);
        }
        if let Some(next) = host.next_start.filter(|t| *t > now) {
            return Try::Wait(Some(next - now));
        }
        host.in_flight += 1;
        host.next_start = (!self.delay.is_zero()).then(|| now + self.delay);
        Try::Ready(())
    }

    /// Waits (blocking the thread) until a request to `url`'s host may start; `None` once
    /// `cancel` is set.
    pub(crate) fn enter_blocking(&self, url: &str, cancel: &AtomicBool) -> Option<Entry<'_>> {
        let host = host_of(url);
        self.hosts
            .wait_blocking(cancel, |table, now| self.take(table, &host, now))?;
        Some(Entry { gates: self, host })
    }

    /// Waits on the event loop until a request to `url`'s host may start; `None` once `cancel`
    /// is set.
    pub(crate) async fn enter(&self, url: &str, cancel: &AtomicBool) -> Option<Entry<'_>> {
        let host = host_of(url);
        self.hosts
            .wait(cancel, |table, now| self.take(table, &host, now))
            .await?;
        Some(Entry { gates: self, host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn gates(connections: u32, delay_ms: u64) -> HostGates {
        HostGates::for_pacing(&Pacing {
            per_host_connections: connections,
            per_host_delay_ms: delay_ms,
            ..Pacing::default()
        })
        .unwrap()
    }

    #[test]
    fn hosts_are_authorities() {
        assert_eq!(host_of("http://Example.com:8080/a?b"), "example.com:8080");
        assert_eq!(host_of("https://user:pw@h.example/x"), "h.example");
        assert_eq!(host_of("http://[::1]:80/"), "[::1]:80");
        assert!(HostGates::for_pacing(&Pacing::default()).is_none());
    }

    #[test]
    fn no_more_than_the_cap_in_flight_per_host() {
        let gates = Arc::new(gates(2, 0));
        let (now, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        std::thread::scope(|scope| {
            for _ in 0..6 {
                let (gates, now, peak) = (&gates, &now, &peak);
                scope.spawn(move || {
                    let cancel = AtomicBool::new(false);
                    for _ in 0..5 {
                        let _entry = gates.enter_blocking("http://a:1/x", &cancel).unwrap();
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        // Another host is not held up by the first one's cap.
        let cancel = AtomicBool::new(false);
        let _a = gates.enter_blocking("http://a:1/", &cancel).unwrap();
        let _b = gates.enter_blocking("http://a:1/", &cancel).unwrap();
        assert!(gates.enter_blocking("http://b:1/", &cancel).is_some());
        assert!(
            gates
                .enter_blocking("http://a:1/", &AtomicBool::new(true))
                .is_none()
        );
    }

    #[test]
    fn hosts_spaced_by_a_delay_are_swept_once_idle() {
        // 400 hosts, one request each, 0.1 ms apart, 2 ms delay: about 20 hosts are within
        // their delay at any moment; without sweeps the table would keep all 400.
        let gates = gates(0, 2);
        let cancel = AtomicBool::new(false);
        for i in 0..400 {
            drop(
                gates
                    .enter_blocking(&format!("http://h{i}:1/"), &cancel)
                    .unwrap(),
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        let kept = gates.hosts.lock().hosts.len();
        assert!(kept <= 2 * FIRST_SWEEP, "{kept} hosts kept");
    }

    #[test]
    fn starts_to_one_host_are_spaced_by_the_delay() {
        let gates = gates(0, 30);
        let cancel = AtomicBool::new(false);
        let start = Instant::now();
        for _ in 0..4 {
            drop(gates.enter_blocking("http://a:1/", &cancel).unwrap());
        }
        // Three gaps of at least 30 ms after the first start.
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let start = Instant::now();
        runtime.block_on(async {
            for _ in 0..3 {
                drop(gates.enter("http://c:1/", &cancel).await.unwrap());
            }
        });
        assert!(
            start.elapsed() >= Duration::from_millis(60),
            "{:?}",
            start.elapsed()
        );
    }
}
