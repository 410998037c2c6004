//! Prometheus metrics: counters and histograms updated as events are routed (atomics, no lock
//! of their own), gauges of current state read from the scheduler when scraped.

use crate::scheduler::{Persist, Scheduler};
use crate::store::WriteOp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// A state label (`state="busy"`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct State {
    state: &'static str,
}

/// An outcome label (`outcome="ok"`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    outcome: &'static str,
}

/// A cause label (`cause="silent"`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Cause {
    cause: &'static str,
}

fn state(state: &'static str) -> State {
    State { state }
}

fn outcome(outcome: &'static str) -> Outcome {
    Outcome { outcome }
}

/// Every metric the coordinator exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    items: Family<Outcome, Counter>,
    bytes: Counter,
    shards_finished: Family<Outcome, Counter>,
    leases: Counter,
    reruns: Counter,
    stale: Counter,
    jobs_finished: Family<State, Counter>,
    worker_losses: Family<Cause, Counter>,
    dispatch_latency: Histogram,
    commit_latency: Histogram,
    store_write: Histogram,
    shard_run: Histogram,
    workers: Family<State, Gauge>,
    jobs: Family<State, Gauge>,
    shards: Family<State, Gauge>,
    active_items: Family<State, Gauge>,
    scrape_seconds: Gauge<f64, AtomicU64>,
}

/// 100 µs to ~100 s in factors of 4: latencies from a loopback hop to a slow disk.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `concur` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("concur");
        let metrics = Self {
            items: Family::default(),
            bytes: Counter::default(),
            shards_finished: Family::default(),
            leases: Counter::default(),
            reruns: Counter::default(),
            stale: Counter::default(),
            jobs_finished: Family::default(),
            worker_losses: Family::default(),
            dispatch_latency: latency_buckets(),
            commit_latency: latency_buckets(),
            store_write: latency_buckets(),
            shard_run: latency_buckets(),
            workers: Family::default(),
            jobs: Family::default(),
            shards: Family::default(),
            active_items: Family::default(),
            scrape_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "items",
            "Items committed, by outcome (ok or failed); rate() gives items/s",
            metrics.items.clone(),
        );
        r.register(
            "fetched_bytes",
            "Body bytes fetched by committed items",
            metrics.bytes.clone(),
        );
        r.register(
            "shards_finished",
            "Shards finished, by outcome (committed or gave_up)",
            metrics.shards_finished.clone(),
        );
        r.register("leases", "Shard leases handed out", metrics.leases.clone());
        r.register(
            "shard_reruns",
            "Leases of a shard after its first (a lost or slow worker's re-run)",
            metrics.reruns.clone(),
        );
        r.register(
            "stale_results",
            "Results refused because their lease had been superseded",
            metrics.stale.clone(),
        );
        r.register(
            "jobs_finished",
            "Jobs finished, by final state",
            metrics.jobs_finished.clone(),
        );
        r.register(
            "worker_losses",
            "Workers lost, by cause (silent, disconnected, or stuck: not reading its messages)",
            metrics.worker_losses.clone(),
        );
        r.register(
            "dispatch_latency_seconds",
            "Lease to the shard's start on its worker (anchored on the coordinator's clock)",
            metrics.dispatch_latency.clone(),
        );
        r.register(
            "commit_latency_seconds",
            "A batch of changes handed to the store until stored (acknowledgements wait this long)",
            metrics.commit_latency.clone(),
        );
        r.register(
            "store_write_seconds",
            "One store transaction",
            metrics.store_write.clone(),
        );
        r.register(
            "shard_run_seconds",
            "Shard execution time on its worker",
            metrics.shard_run.clone(),
        );
        r.register(
            "workers",
            "Attached workers, by state",
            metrics.workers.clone(),
        );
        r.register(
            "jobs",
            "Jobs in memory (unfinished, or finished moments ago), by state",
            metrics.jobs.clone(),
        );
        r.register(
            "active_shards",
            "Shards of unfinished jobs, by state (pending, running, done)",
            metrics.shards.clone(),
        );
        r.register(
            "active_items",
            "Items of unfinished jobs, by state (ok, failed, unfinished)",
            metrics.active_items.clone(),
        );
        r.register(
            "last_scrape_seconds",
            "Time the previous scrape took to gather these figures",
            metrics.scrape_seconds.clone(),
        );
        // Every series exists from the start: a rate over a counter born mid-way is wrong.
        for name in ["ok", "failed"] {
            let _ = metrics.items.get_or_create(&outcome(name));
        }
        for name in ["committed", "gave_up"] {
            let _ = metrics.shards_finished.get_or_create(&outcome(name));
        }
        for name in ["succeeded", "failed", "cancelled"] {
            let _ = metrics.jobs_finished.get_or_create(&state(name));
        }
        for cause in ["silent", "disconnected", "stuck"] {
            let _ = metrics.worker_losses.get_or_create(&Cause { cause });
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one event's durable changes.
    pub(crate) fn observe(&self, ops: &[WriteOp]) {
        for op in ops {
            let WriteOp::Persist(event) = op else {
                continue;
            };
            match event {
                Persist::ShardLeased { lease } => {
                    self.leases.inc();
                    if lease.attempt.get() > 1 {
                        self.reruns.inc();
                    }
                }
                Persist::ShardCommitted { row, outcomes, .. } => {
                    self.shards_finished
                        .get_or_create(&outcome("committed"))
                        .inc();
                    let ok = outcomes.iter().filter(|o| o.ok).count() as u64;
                    let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
                    self.items.get_or_create(&outcome("ok")).inc_by(ok);
                    self.items
                        .get_or_create(&outcome("failed"))
                        .inc_by(outcomes.len() as u64 - ok);
                    self.bytes.inc_by(bytes);
                    self.dispatch_latency
                        .observe((row.start_s - row.queue_s).max(0.0));
                    self.shard_run.observe(row.run_s);
                }
                Persist::ShardGaveUp { row, .. } => {
                    self.shards_finished
                        .get_or_create(&outcome("gave_up"))
                        .inc();
                    self.items
                        .get_or_create(&outcome("failed"))
                        .inc_by(row.items);
                }
                Persist::StaleResults { count, .. } => {
                    self.stale.inc_by(*count);
                }
                Persist::JobFinished { record } => {
                    self.jobs_finished
                        .get_or_create(&state(record.state.as_str()))
                        .inc();
                }
                _ => {}
            }
        }
    }

    /// A worker left the pool without draining.
    pub(crate) fn worker_lost(&self, cause: &'static str) {
        self.worker_losses.get_or_create(&Cause { cause }).inc();
    }

    /// A batch was stored `seconds` after it was handed to the store.
    pub(crate) fn batch_committed(&self, seconds: f64) {
        self.commit_latency.observe(seconds);
    }

    /// One store transaction took `seconds`.
    pub fn store_wrote(&self, seconds: f64) {
        self.store_write.observe(seconds);
    }

    /// Sets the gauges from the scheduler's current state (under the caller's lock: it reads
    /// workers and in-memory jobs, no store).
    pub(crate) fn sample(&self, scheduler: &Scheduler, now: Instant) {
        self.workers.clear();
        for worker in scheduler.list_workers(now) {
            self.workers.get_or_create(&state(worker.state)).inc();
        }
        self.jobs.clear();
        let (mut pending, mut running, mut done) = (0i64, 0i64, 0i64);
        let (mut ok, mut failed, mut unfinished) = (0i64, 0i64, 0i64);
        for record in scheduler.job_records(now) {
            self.jobs.get_or_create(&state(record.state.as_str())).inc();
            if record.state.is_final() {
                continue;
            }
            running += i64::from(record.shards_running);
            done += i64::from(record.shards_done);
            pending += i64::from(
                record
                    .shards_total
                    .saturating_sub(record.shards_done + record.shards_running),
            );
            ok += record.items.ok as i64;
            failed += record.items.failed as i64;
            unfinished += record.items.unfinished() as i64;
        }
        for (name, value) in [("pending", pending), ("running", running), ("done", done)] {
            self.shards.get_or_create(&state(name)).set(value);
        }
        for (name, value) in [("ok", ok), ("failed", failed), ("unfinished", unfinished)] {
            self.active_items.get_or_create(&state(name)).set(value);
        }
    }

    /// The OpenMetrics text of every metric; `took_s` is how long gathering took.
    pub(crate) fn render(&self, took_s: f64) -> String {
        self.scrape_seconds.set(took_s);
        let mut text = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::report::ShardRow;
    use concur_core::{Attempt, JobId, LeaseKey, ShardId};

    #[test]
    fn committed_shards_count_items_bytes_and_reruns() {
        let metrics = Metrics::new();
        let lease = LeaseKey {
            job_id: JobId(1),
            shard_id: ShardId(0),
            attempt: Attempt(2),
        };
        let item = |ok| concur_core::Outcome {
            ok,
            bytes: 100,
            ..concur_core::Outcome::default()
        };
        metrics.observe(&[
            WriteOp::Persist(Persist::ShardLeased { lease }),
            WriteOp::Persist(Persist::ShardCommitted {
                lease,
                first_item: 0,
                row: ShardRow::default(),
                outcomes: vec![item(true), item(true), item(false)],
            }),
        ]);
        let text = metrics.render(0.0);
        for line in [
            "concur_items_total{outcome=\"ok\"} 2",
            "concur_items_total{outcome=\"failed\"} 1",
            "concur_fetched_bytes_total 300",
            "concur_shard_reruns_total 1",
            "concur_leases_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
