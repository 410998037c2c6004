//! The demo's scenarios: the seven reference rows of the Python post (with its published
//! times) and concur's own rows, which show what Rust and concur's strategies add.

use concur_core::Strategy;

/// Which job a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobKind {
    /// GET every URL from the site simulator.
    Io,
    /// Sum of squares for 20 values of n.
    Cpu,
}

/// How many worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Processes {
    One,
    /// One per core (or `--processes`), like the post's process pool.
    PerCore,
}

/// Threads or tasks per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concurrency {
    Fixed(u32),
    /// One task per URL (the post's `asyncio.gather` over every URL).
    PerItem,
    /// One per core (rayon's natural pool size).
    PerCore,
}

/// One row of the demo.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) job: JobKind,
    pub(crate) processes: Processes,
    pub(crate) strategy: Strategy,
    pub(crate) concurrency: Concurrency,
    /// The post's published wall time, for the reference rows.
    pub(crate) python_s: Option<f64>,
    /// What the row shows.
    pub(crate) about: &'static str,
}

const fn row(
    name: &'static str,
    job: JobKind,
    processes: Processes,
    strategy: Strategy,
    concurrency: Concurrency,
    python_s: Option<f64>,
    about: &'static str,
) -> Scenario {
    Scenario {
        name,
        job,
        processes,
        strategy,
        concurrency,
        python_s,
        about,
    }
}

/// Every scenario, in the order printed. The first seven are the post's (DESIGN.md, "The
/// reference scenarios"); `io-sync` and `cpu-sync` are the baselines of their job's rows.
#[rustfmt::skip]
pub(crate) const SCENARIOS: [Scenario; 12] = [
    row("io-sync", JobKind::Io, Processes::One, Strategy::Sequential, Concurrency::Fixed(1), Some(15.9), "one request after another"),
    row("io-threads", JobKind::Io, Processes::One, Strategy::Threads, Concurrency::Fixed(5), Some(3.86), "thread pool of 5, a client per thread"),
    row("io-async", JobKind::Io, Processes::One, Strategy::Async, Concurrency::PerItem, Some(3.42), "event loop, one task per URL, a connection each"),
    row("io-processes", JobKind::Io, Processes::PerCore, Strategy::Sequential, Concurrency::Fixed(1), Some(4.15), "one sequential process per core"),
    row("cpu-sync", JobKind::Cpu, Processes::One, Strategy::Sequential, Concurrency::Fixed(1), Some(9.24), "one n after another"),
    row("cpu-threads", JobKind::Cpu, Processes::One, Strategy::Threads, Concurrency::Fixed(5), Some(9.19), "thread pool of 5 (Python: the GIL serialises it)"),
    row("cpu-processes", JobKind::Cpu, Processes::PerCore, Strategy::Sequential, Concurrency::Fixed(1), Some(1.59), "one sequential process per core"),
    row("io-threads-10", JobKind::Io, Processes::One, Strategy::Threads, Concurrency::Fixed(10), None, "10 threads: the post author's best pool size"),
    row("io-async-blocking", JobKind::Io, Processes::One, Strategy::AsyncBlocking, Concurrency::PerItem, None, "teaching: blocking calls inside async tasks"),
    row("cpu-rayon", JobKind::Cpu, Processes::One, Strategy::Rayon, Concurrency::PerCore, None, "rayon work-stealing pool, one thread per core"),
    row("cpu-async", JobKind::Cpu, Processes::One, Strategy::Async, Concurrency::Fixed(64), None, "async with a high limit: CPU work moved off the event loop"),
    row("cpu-async-cpu", JobKind::Cpu, Processes::One, Strategy::AsyncCpu, Concurrency::Fixed(64), None, "teaching: CPU work run on the event loop itself"),
];

/// The reference scenarios' names, as the JSON contract lists them.
#[cfg(test)]
const REFERENCE: [&str; 7] = [
    "io-sync",
    "io-threads",
    "io-async",
    "io-processes",
    "cpu-sync",
    "cpu-threads",
    "cpu-processes",
];

impl Scenario {
    /// Worker processes on a machine with `cores` cores (or the `--processes` override).
    pub(crate) fn processes(&self, per_core: u32) -> u32 {
        match self.processes {
            Processes::One => 1,
            Processes::PerCore => per_core,
        }
    }

    /// Threads or tasks per process for a job of `items` items.
    pub(crate) fn concurrency(&self, items: u32, cores: u32) -> u32 {
        match self.concurrency {
            Concurrency::Fixed(n) => n,
            Concurrency::PerItem => items.max(1),
            Concurrency::PerCore => cores.max(1),
        }
    }

    /// The name of the sequential row this one's speedup is measured against.
    pub(crate) fn baseline(&self) -> &'static str {
        match self.job {
            JobKind::Io => "io-sync",
            JobKind::Cpu => "cpu-sync",
        }
    }
}

/// The post's sequential time for `job`, for its speedups.
pub(crate) fn python_baseline(job: JobKind) -> f64 {
    match job {
        JobKind::Io => 15.9,
        JobKind::Cpu => 9.24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_rows_come_first_with_the_posts_times() {
        for (scenario, name) in SCENARIOS.iter().zip(REFERENCE) {
            assert_eq!(scenario.name, name);
            assert!(scenario.python_s.is_some());
        }
        assert!(SCENARIOS[7..].iter().all(|s| s.python_s.is_none()));
        assert_eq!(python_baseline(JobKind::Io), SCENARIOS[0].python_s.unwrap());
        assert_eq!(
            python_baseline(JobKind::Cpu),
            SCENARIOS[4].python_s.unwrap()
        );
    }
}
