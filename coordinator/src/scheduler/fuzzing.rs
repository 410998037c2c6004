//! Drives the scheduler with an arbitrary byte string as a sequence of events, honest and
//! hostile, checking its invariants after every step. Used by the cargo-fuzz target
//! `fuzz/fuzz_targets/scheduler.rs` and by a property test on stable Rust.

use super::{
    Assignment, Comm, LeaseKey, Persist, Scheduler, SchedulerConfig, ShardTiming, WorkerInfo,
};
use concur_core::plan::Unit;
use concur_core::{JobSpec, NumberSpec, Outcome, Strategy, Workload, kernel};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Recorder {
    assigned: Vec<(u64, Assignment)>,
}

impl Comm for Recorder {
    fn assign(&mut self, worker: u64, assignment: Assignment) {
        self.assigned.push((worker, assignment));
    }
    fn cancel(&mut self, _: u64, _: LeaseKey, _: &str) {}
    fn job_changed(&mut self, _: u64) {}
    fn accepted(&mut self, _: u64, _: LeaseKey) {}
    fn persist(&mut self, _: Persist) {}
}

/// Reads bytes one at a time, zero once exhausted.
struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }
}

fn honest(assignment: &Assignment) -> Vec<(u32, Outcome)> {
    assignment
        .units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let value = match unit {
                Unit::SumSquares { lo, hi, .. } => kernel::sum_squares_range(*lo, *hi),
                Unit::Fetch { .. } => 0,
            };
            let outcome = Outcome {
                ok: true,
                value,
                ..Outcome::default()
            };
            (i as u32, outcome)
        })
        .collect()
}

/// Applies the events encoded in `data`; panics if an invariant breaks.
pub fn drive(data: &[u8]) {
    let mut bytes = Bytes(data.iter());
    let mut s = Scheduler::new(SchedulerConfig {
        lease_timeout: Some(Duration::from_secs(30)),
        ..SchedulerConfig::default()
    });
    let mut comm = Recorder::default();
    let mut now = Instant::now();
    let mut workers: Vec<u64> = Vec::new();
    let mut jobs: Vec<u64> = Vec::new();
    let mut steps = 0;
    while !bytes.0.as_slice().is_empty() && steps < 10_000 {
        steps += 1;
        match bytes.next() % 9 {
            0 => {
                let info = WorkerInfo {
                    slots: u32::from(bytes.next() % 4),
                    ..WorkerInfo::default()
                };
                workers.push(s.on_worker_attached(info, now, &mut comm));
            }
            1 => {
                let count = bytes.next() % 6;
                let values: Vec<u64> = (0..count).map(|_| u64::from(bytes.next()) * 97).collect();
                let spec = JobSpec {
                    workload: Workload::SumSquares(NumberSpec::List(values)),
                    strategy: Strategy::Sequential,
                    concurrency: u32::from(bytes.next() % 3),
                    shards: Some(u32::from(bytes.next() % 9)),
                    max_retries: Some(u32::from(bytes.next() % 3)),
                    label: String::new(),
                };
                if let Ok(id) = s.on_job_submitted(spec, now, 0, &mut comm) {
                    jobs.push(id);
                }
            }
            2 | 3 => {
                // A lease made up from the bytes: usually stale or foreign.
                let worker = u64::from(bytes.next() % 8);
                let lease = LeaseKey {
                    job_id: u64::from(bytes.next() % 6),
                    shard_id: u32::from(bytes.next() % 10),
                    attempt: u32::from(bytes.next() % 4),
                };
                let results = (0..bytes.next() % 4)
                    .map(|_| (u32::from(bytes.next()), Outcome::failed("forged", f64::NAN)))
                    .collect();
                s.on_unit_results(worker, lease, results, now, &mut comm);
                if bytes.next() % 2 == 0 {
                    s.on_shard_finished(worker, lease, ShardTiming::default(), now, &mut comm);
                }
            }
            4 | 5 => {
                if !comm.assigned.is_empty() {
                    let index = usize::from(bytes.next()) % comm.assigned.len();
                    let (worker, assignment) = comm.assigned.swap_remove(index);
                    s.on_unit_results(
                        worker,
                        assignment.lease,
                        honest(&assignment),
                        now,
                        &mut comm,
                    );
                    s.on_shard_finished(
                        worker,
                        assignment.lease,
                        ShardTiming::default(),
                        now,
                        &mut comm,
                    );
                }
            }
            6 => {
                if !workers.is_empty() {
                    let worker = workers.swap_remove(usize::from(bytes.next()) % workers.len());
                    s.on_worker_lost(worker, now, &mut comm);
                }
            }
            7 => {
                if !jobs.is_empty() {
                    let job = jobs[usize::from(bytes.next()) % jobs.len()];
                    let _ = s.on_cancel(job, now, &mut comm);
                }
            }
            _ => {
                now += Duration::from_millis(u64::from(bytes.next()) * 50);
                for lost in s.on_tick(now, &mut comm) {
                    workers.retain(|w| *w != lost);
                }
            }
        }
        check_invariants(&s, now);
    }
}

fn check_invariants(s: &Scheduler, now: Instant) {
    for (progress, _, _) in s.list_jobs(now) {
        assert!(progress.items_done <= progress.items_total, "{progress:?}");
        assert!(progress.items_failed <= progress.items_done, "{progress:?}");
        assert!(
            progress.shards_done <= progress.shards_total,
            "{progress:?}"
        );
        assert!(
            progress.shards_done + progress.shards_running <= progress.shards_total,
            "{progress:?}"
        );
        if progress.shards_done == progress.shards_total {
            assert!(
                progress.state.is_final(),
                "all shards done but {progress:?}"
            );
        }
        if progress.state.is_final() {
            assert_eq!(progress.shards_running, 0, "{progress:?}");
        }
    }
    let load: u32 = s.list_workers(now).iter().map(|w| w.running).sum();
    let running: u32 = s
        .list_jobs(now)
        .iter()
        .map(|(p, _, _)| p.shards_running)
        .sum();
    assert_eq!(
        load, running,
        "workers' loads and jobs' running shards disagree"
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_event_streams_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            super::drive(&data);
        }
    }
}
