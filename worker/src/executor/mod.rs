//! Executors: run one shard's units with one strategy, emitting each unit's outcome as it ends.
//!
//! Layout:
//! - `pool`: the strategies (sequential, threads, rayon, async and the teaching variants),
//!   generic over the unit being run.
//! - `fetch`: GET a URL with a blocking or an async client, under a timeout and a body cap.
//! - `lane`: the async strategies' plain-HTTP path, each task with its own connections.
//! - `exec`: run a program for one item in its own process group, with a timeout.
//! - `cpu`: the cancellable sum-of-squares unit and process CPU time.
//! - `resources`: what a slot keeps between shards (runtimes, clients, warm connections).
//! - `limiter`, `hosts`: pacing — the tuned in-flight limit of `--concurrency auto` and
//!   per-host politeness — shared by the slots running one job (`waitable` lets threads and
//!   tasks wait on them alike); `paced` runs one unit under them, retrying shed ones.

mod cpu;
mod exec;
mod fetch;
mod hosts;
mod lane;
mod limiter;
mod paced;
mod pool;
mod resources;
mod waitable;

pub use cpu::process_cpu_seconds;
pub use resources::SlotResources;

use concur_core::pacing::Pacing;
use concur_core::policy::HostPolicy;
use concur_core::protocol::{ExecCommand, ShardTiming};
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

/// The units of one shard, as the executor runs them.
#[derive(Debug, Clone)]
pub enum Units {
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
    /// A program run once per item.
    Exec {
        /// What every unit runs.
        command: Arc<ExecCommand>,
        /// The items, in unit order.
        items: Vec<String>,
    },
}

impl Units {
    /// Number of units.
    pub fn len(&self) -> usize {
        match self {
            Units::Fetch { urls, .. } => urls.len(),
            Units::SumSquares(ranges) => ranges.len(),
            Units::Exec { items, .. } => items.len(),
        }
    }

    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What paces a shard's units beyond its fixed concurrency: the worker's tuned in-flight limit
/// for the job and its per-host gates, both shared by every slot running the job's shards and
/// carried from one shard to the next.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    limiter: Option<Arc<limiter::Limiter>>,
    hosts: Option<Arc<hosts::HostGates>>,
}

impl Pace {
    /// The pace of a job with `pacing` whose concurrency (the ceiling, when auto) is `ceiling`.
    pub fn new(pacing: &Pacing, ceiling: u32) -> Self {
        Self {
            limiter: pacing
                .auto
                .then(|| Arc::new(limiter::Limiter::new(ceiling))),
            hosts: hosts::HostGates::for_pacing(pacing).map(Arc::new),
        }
    }

    /// True when it paces anything (a tuned limit or host gates).
    pub fn is_paced(&self) -> bool {
        self.limiter.is_some() || self.hosts.is_some()
    }

    /// True when a copy of it is held elsewhere (a queued or running shard).
    pub fn in_use(&self) -> bool {
        self.limiter
            .as_ref()
            .is_some_and(|l| Arc::strong_count(l) > 1)
            || self
                .hosts
                .as_ref()
                .is_some_and(|h| Arc::strong_count(h) > 1)
    }
}

/// Threads a shard may start at most when the worker is not told otherwise.
pub const DEFAULT_MAX_THREADS: u32 = 512;

/// The concurrency a shard really gets: 1 for sequential; otherwise at most the units it has
/// (more threads or tasks than units would only idle) and, for strategies that start a thread
/// per unit of concurrency, at most the worker's `max_threads`.
pub fn effective_concurrency(
    strategy: Strategy,
    concurrency: u32,
    units: usize,
    max_threads: u32,
) -> u32 {
    let wanted = concurrency.clamp(1, 100_000).min(units.max(1) as u32);
    match strategy {
        Strategy::Sequential => 1,
        // Tasks are cheap; their blocking pool is capped inside the event loop.
        Strategy::Async | Strategy::AsyncBlocking | Strategy::AsyncCpu => wanted,
        Strategy::Threads | Strategy::Rayon => wanted.min(max_threads.max(1)),
    }
}

/// Runs every unit of `work` with `strategy` and `concurrency`, calling `emit(unit, outcome)` as
/// each ends (from whichever thread ran it). Stops starting new units once `cancel` is set, and
/// returns only once every thread it started has stopped.
pub fn run_shard(
    work: &Units,
    strategy: Strategy,
    concurrency: u32,
    pace: &Pace,
    resources: &mut SlotResources,
    cancel: &Arc<AtomicBool>,
    emit: &(dyn Fn(u32, Outcome) + Sync),
) -> ShardTiming {
    let max_threads = resources.max_threads;
    let effective = effective_concurrency(strategy, concurrency, work.len(), max_threads);
    let cpu_before = process_cpu_seconds();
    let limit_mark = pace.limiter.as_ref().map(|l| l.mark());
    let start = Instant::now();
    // A unit's start is its end less its own duration, both on this process's clock.
    let timed = |unit: u32, mut outcome: Outcome| {
        outcome.start_s = (start.elapsed().as_secs_f64() - outcome.duration_s).max(0.0);
        emit(unit, outcome);
    };
    let error = pool::run(work, strategy, effective, pace, resources, cancel, &timed).err();
    // A tuned shard reports the limit it ran under, averaged over its run: with the shards'
    // start times, the limit over the job's time.
    let concurrency = match (&pace.limiter, limit_mark) {
        (Some(limiter), Some(mark)) => {
            (limiter.mean_since(mark).round() as u32).clamp(1, effective)
        }
        _ => effective,
    };
    ShardTiming {
        run_s: start.elapsed().as_secs_f64(),
        cpu_s: (process_cpu_seconds() - cpu_before).max(0.0),
        concurrency,
        error: error.unwrap_or_default(),
        ..ShardTiming::default()
    }
}

/// A server for cancellation tests: accepts one connection, reads the request, never answers,
/// and sends the result of its next read (0 once the client closed the connection). Its port.
#[cfg(test)]
fn stalling_server() -> (u16, std::sync::mpsc::Receiver<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed_sender, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 1024];
        let _ = std::io::Read::read(&mut stream, &mut buffer);
        let n = std::io::Read::read(&mut stream, &mut buffer).unwrap_or(0);
        let _ = closed_sender.send(n);
    });
    (port, closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_never_exceed_units_or_the_worker_cap() {
        // The operator's probe: rayon x2000 for one item started 2,007 threads.
        assert_eq!(effective_concurrency(Strategy::Rayon, 2000, 1, 512), 1);
        assert_eq!(
            effective_concurrency(Strategy::Threads, 2000, 5000, 512),
            512
        );
        assert_eq!(effective_concurrency(Strategy::Threads, 8, 3, 512), 3);
        assert_eq!(effective_concurrency(Strategy::Sequential, 64, 100, 512), 1);
        assert_eq!(
            effective_concurrency(Strategy::Async, 1000, 5000, 512),
            1000
        );
        assert_eq!(effective_concurrency(Strategy::Async, 1000, 10, 512), 10);
    }

    #[test]
    fn a_cpu_shard_with_absurd_concurrency_starts_one_thread() {
        let work = Units::SumSquares(vec![(0, 1_000_000)]);
        let cancel = Arc::new(AtomicBool::new(false));
        let threads_before = threads_now();
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let emit = |_: u32, _: Outcome| {
            peak.fetch_max(threads_now(), std::sync::atomic::Ordering::Relaxed);
        };
        let run = run_shard(
            &work,
            Strategy::Rayon,
            2000,
            &Pace::default(),
            &mut SlotResources::new(DEFAULT_MAX_THREADS),
            &cancel,
            &emit,
        );
        assert_eq!(run.concurrency, 1);
        let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            peak <= threads_before + 4,
            "{threads_before} threads before, {peak} at peak"
        );
    }

    fn threads_now() -> usize {
        std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
    }
}
