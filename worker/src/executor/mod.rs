//! Executors: run one shard's units with one strategy, emitting each unit's outcome as it ends.
//!
//! Layout:
//! - `pool`: the strategies (sequential, threads, rayon, async and the teaching variants),
//!   generic over the unit being run.
//! - `fetch`: GET a URL with a blocking or an async client, under a timeout and a body cap.
//! - `cpu`: the cancellable sum-of-squares unit and process CPU time.

mod cpu;
mod fetch;
mod pool;

pub use cpu::process_cpu_seconds;

use concur_core::policy::HostPolicy;
use concur_core::{Outcome, Strategy};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How fetch requests are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Per-request timeout.
    pub timeout: Duration,
    /// The coordinator's host rules, enforced again here on every redirect hop; with
    /// `deny_private`, names resolving to private addresses are refused too.
    pub policy: Arc<HostPolicy>,
}

/// The units of one shard.
#[derive(Debug, Clone)]
pub enum ShardWork {
    /// URLs to GET.
    Fetch {
        /// The URLs, in unit order.
        urls: Vec<String>,
        /// How each request is made.
        http: HttpConfig,
        /// Larger bodies fail the unit.
        max_body_bytes: u64,
    },
    /// Sub-ranges `lo..hi` of i to sum squares over, in unit order.
    SumSquares(Vec<(u64, u64)>),
}

impl ShardWork {
    /// Number of units.
    pub fn len(&self) -> usize {
        match self {
            ShardWork::Fetch { urls, .. } => urls.len(),
            ShardWork::SumSquares(ranges) => ranges.len(),
        }
    }

    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What running a shard took.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardRun {
    /// Wall time of the whole shard, worker clock.
    pub run_s: f64,
    /// Process CPU time consumed meanwhile.
    pub cpu_s: f64,
    /// Concurrency actually used.
    pub concurrency: u32,
    /// Set when the shard could not run at all.
    pub error: Option<String>,
}

/// Runs every unit of `work` with `strategy` and `concurrency`, calling `emit(unit, outcome)` as
/// each ends (from whichever thread ran it). Stops starting new units once `cancel` is set.
pub fn run_shard(
    work: &ShardWork,
    strategy: Strategy,
    concurrency: u32,
    cancel: &Arc<AtomicBool>,
    emit: &(dyn Fn(u32, Outcome) + Sync),
) -> ShardRun {
    let concurrency = concurrency.clamp(1, 100_000);
    let effective = if strategy == Strategy::Sequential {
        1
    } else {
        concurrency
    };
    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    let error = pool::run(work, strategy, effective, cancel, emit).err();
    ShardRun {
        run_s: start.elapsed().as_secs_f64(),
        cpu_s: (process_cpu_seconds() - cpu_before).max(0.0),
        concurrency: effective,
        error,
    }
}
