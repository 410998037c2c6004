//! The worker's Prometheus metrics, served on `--metrics-listen`: what this process ran, how
//! long, and whether it is attached. Process-wide (one worker per process), updated with
//! atomics from the slot threads.

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use concur_core::exposition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Every metric the worker exports.
#[derive(Debug)]
pub struct WorkerMetrics {
    registry: Registry,
    units: Family<Outcome, Counter>,
    bytes: Counter,
    shards: Counter,
    shard_run: Histogram,
    running: Gauge,
    queued: Gauge,
    attached: Gauge,
    attaches: Counter,
    attach_failures: Counter,
}

impl WorkerMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("concur_worker");
        let metrics = Self {
            registry: Registry::default(),
            units: Family::default(),
            bytes: Counter::default(),
            shards: Counter::default(),
            shard_run: Histogram::new(exponential_buckets(0.0001, 4.0, 11)),
            running: Gauge::default(),
            queued: Gauge::default(),
            attached: Gauge::default(),
            attaches: Counter::default(),
            attach_failures: Counter::default(),
        };
        for outcome in ["ok", "failed"] {
            let _ = metrics.units.get_or_create(&Outcome { outcome });
        }
        let r = &mut registry;
        r.register(
            "units",
            "Units (items or parts of items) run, by outcome",
            metrics.units.clone(),
        );
        r.register("fetched_bytes", "Body bytes fetched", metrics.bytes.clone());
        r.register("shards", "Shards run to their end", metrics.shards.clone());
        r.register(
            "shard_run_seconds",
            "Shard execution time",
            metrics.shard_run.clone(),
        );
        r.register(
            "running_shards",
            "Shards running in a slot now",
            metrics.running.clone(),
        );
        r.register(
            "queued_shards",
            "Leased shards waiting for a free slot (the prefetch window)",
            metrics.queued.clone(),
        );
        r.register(
            "attached",
            "1 while attached to a coordinator",
            metrics.attached.clone(),
        );
        r.register(
            "attaches",
            "Successful attaches (1 + reconnections)",
            metrics.attaches.clone(),
        );
        r.register(
            "attach_failures",
            "Failed attach attempts",
            metrics.attach_failures.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// A unit ended.
    pub(crate) fn unit(&self, ok: bool, bytes: u64) {
        let outcome = if ok { "ok" } else { "failed" };
        self.units.get_or_create(&Outcome { outcome }).inc();
        self.bytes.inc_by(bytes);
    }

    /// A shard started (`+1`) or ended (`-1`) in a slot; `run_s` once it ended.
    pub(crate) fn shard_running(&self, delta: i64, run_s: Option<f64>) {
        self.running.inc_by(delta);
        if let Some(run_s) = run_s {
            self.shards.inc();
            self.shard_run.observe(run_s);
        }
    }

    /// Shards waiting for a slot.
    pub(crate) fn queued(&self, count: usize) {
        self.queued.set(count as i64);
    }

    /// The worker attached (`true`) or its session ended.
    pub(crate) fn attached(&self, attached: bool) {
        if attached {
            self.attaches.inc();
        }
        self.attached.set(i64::from(attached));
    }

    /// An attach attempt failed.
    pub(crate) fn attach_failed(&self) {
        self.attach_failures.inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(4096);
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// This process's metrics.
pub fn global() -> &'static WorkerMetrics {
    static METRICS: OnceLock<WorkerMetrics> = OnceLock::new();
    METRICS.get_or_init(WorkerMetrics::new)
}

/// Serves `/metrics` on `listener` until the process ends.
///
/// # Errors
/// The server fails.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let router = Router::new().route(
        "/metrics",
        get(|headers: HeaderMap| async move {
            let text = global().render();
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let (content_type, body) = exposition::negotiate(accept, text);
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }),
    );
    axum::serve(listener, router).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_shards_are_counted() {
        let metrics = WorkerMetrics::new();
        metrics.unit(true, 10);
        metrics.unit(false, 0);
        metrics.shard_running(1, None);
        metrics.shard_running(-1, Some(0.5));
        let text = metrics.render();
        for line in [
            "concur_worker_units_total{outcome=\"ok\"} 1",
            "concur_worker_units_total{outcome=\"failed\"} 1",
            "concur_worker_fetched_bytes_total 10",
            "concur_worker_shards_total 1",
            "concur_worker_running_shards 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
