//! The strategies' own overhead, apart from any coordination: shards of empty units (sum of
//! squares over 0..0) run straight through the executor, as a worker's slot runs them, with
//! the slot's resources kept between shards.
//!
//! Two figures per strategy: the fixed cost of a one-unit shard (what a tiny shard pays before
//! any work), and the cost per unit inside a 10,000-unit shard (what fan-out to threads or
//! tasks costs per item). Wall and process CPU, best of several rounds.
//!
//! Run: `cargo bench -p concur-worker --bench executor`

use concur_core::{Outcome, Strategy};
use concur_worker::executor::{
    DEFAULT_MAX_THREADS, Pace, SlotResources, Units, process_cpu_seconds, run_shard,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

const ROUNDS: usize = 5;

/// Wall and CPU seconds of the fastest of [`ROUNDS`] runs of `shards` shards of `units`
/// empty units each, checking that every unit ran.
fn best(strategy: Strategy, concurrency: u32, shards: usize, units: usize) -> (f64, f64) {
    let work = Units::SumSquares(vec![(0, 0); units]);
    let cancel = Arc::new(AtomicBool::new(false));
    let mut resources = SlotResources::new(DEFAULT_MAX_THREADS);
    let mut fastest = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let done = AtomicU64::new(0);
        let emit = |_: u32, outcome: Outcome| {
            assert!(outcome.ok, "{outcome:?}");
            done.fetch_add(1, Ordering::Relaxed);
        };
        let (cpu_before, start) = (process_cpu_seconds(), Instant::now());
        for _ in 0..shards {
            let timing = run_shard(
                &work,
                strategy,
                concurrency,
                &Pace::default(),
                &mut resources,
                &cancel,
                &emit,
            );
            assert!(timing.error.is_empty(), "{}", timing.error);
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu_before;
        assert_eq!(done.load(Ordering::Relaxed), (shards * units) as u64);
        if wall < fastest.0 {
            fastest = (wall, cpu);
        }
    }
    fastest
}

fn main() {
    let strategies = [
        ("sequential", Strategy::Sequential, 1),
        ("threads", Strategy::Threads, 8),
        ("rayon", Strategy::Rayon, 2),
        ("async (CPU to a pool)", Strategy::Async, 64),
        ("async-cpu", Strategy::AsyncCpu, 64),
    ];
    println!("# executor overhead, empty units, best of {ROUNDS} rounds");
    println!(
        "{:<24} {:>16} {:>16} {:>16} {:>16}",
        "strategy", "1-unit shard", "  (CPU)", "per unit (10k)", "  (CPU)"
    );
    for (name, strategy, concurrency) in strategies {
        let shards = 2_000;
        let (shard_wall, shard_cpu) = best(strategy, concurrency, shards, 1);
        let units = 10_000;
        let (unit_wall, unit_cpu) = best(strategy, concurrency, 1, units);
        println!(
            "{:<24} {:>13.2} µs {:>13.2} µs {:>13.0} ns {:>13.0} ns",
            format!("{name} x{concurrency}"),
            shard_wall / shards as f64 * 1e6,
            shard_cpu / shards as f64 * 1e6,
            unit_wall / units as f64 * 1e9,
            unit_cpu / units as f64 * 1e9,
        );
    }
}
