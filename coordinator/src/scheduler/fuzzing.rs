//! Drives the scheduler with an arbitrary byte string as a sequence of events, honest and
//! hostile, checking its invariants after every step. Used by the cargo-fuzz target
//! `fuzz/fuzz_targets/scheduler.rs` (feature `fuzzing`) and by a property test on stable Rust;
//! not part of the production library.

use super::testing::{RecordingComm, honest_results, info};
use super::{Scheduler, SchedulerConfig};
use concur_core::protocol::ShardTiming;
use concur_core::{Attempt, JobId, JobSpec, LeaseKey, NumberSpec, Outcome, ShardId, Strategy};
use concur_core::{WorkerId, Workload};
use std::time::{Duration, Instant};

/// Reads bytes one at a time, zero once exhausted.
struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }
}

/// Applies the events encoded in `data`; panics if an invariant breaks.
pub fn drive(data: &[u8]) {
    let mut bytes = Bytes(data.iter());
    let mut s = Scheduler::new(SchedulerConfig {
        lease_timeout: Some(Duration::from_secs(30)),
        ..SchedulerConfig::default()
    });
    let mut comm = RecordingComm::default();
    let mut now = Instant::now();
    let mut workers: Vec<WorkerId> = Vec::new();
    let mut jobs: Vec<JobId> = Vec::new();
    let mut steps = 0;
    while !bytes.0.as_slice().is_empty() && steps < 10_000 {
        steps += 1;
        match bytes.next() % 10 {
            0 => {
                let worker = concur_core::protocol::WorkerInfo {
                    prefetch: u32::from(bytes.next() % 3),
                    ..info(u32::from(bytes.next() % 4))
                };
                if let Ok(id) = s.on_worker_attached(worker, now, &mut comm) {
                    workers.push(id);
                }
            }
            1 => {
                let count = bytes.next() % 6;
                let values: Vec<u64> = (0..count).map(|_| u64::from(bytes.next()) * 97).collect();
                let spec = JobSpec {
                    pacing: Default::default(),
                    workload: Workload::SumSquares(NumberSpec::List(values)),
                    strategy: Strategy::Sequential,
                    concurrency: u32::from(bytes.next() % 3),
                    shards: Some(u32::from(bytes.next() % 9)),
                    max_retries: Some(u32::from(bytes.next() % 3)),
                    label: String::new(),
                };
                if let Ok(id) = s.submit(spec, now, 0, &mut comm) {
                    jobs.push(id);
                }
            }
            2 | 3 => {
                // A lease made up from the bytes: usually stale or foreign.
                let worker = WorkerId(u64::from(bytes.next() % 8));
                let lease = LeaseKey {
                    job_id: JobId(u64::from(bytes.next() % 6)),
                    shard_id: ShardId(u32::from(bytes.next() % 10)),
                    attempt: Attempt(u32::from(bytes.next() % 4)),
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
                    let results = honest_results(&assignment);
                    s.on_unit_results(worker, assignment.lease, results, now, &mut comm);
                    let timing = ShardTiming::default();
                    s.on_shard_finished(worker, assignment.lease, timing, now, &mut comm);
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
            8 => {
                if !workers.is_empty() {
                    let worker = workers[usize::from(bytes.next()) % workers.len()];
                    let running = u32::from(bytes.next() % 3);
                    let _ = s.on_heartbeat(worker, now);
                    s.on_executions_reported(worker, running, now, &mut comm);
                    if bytes.next() % 8 == 0 {
                        let _ = s.on_worker_draining(worker);
                    }
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
    let mut running = 0;
    for record in s.job_records(now) {
        let items = record.items;
        assert!(items.ok + items.failed <= items.total, "{record:?}");
        assert!(record.shards_done <= record.shards_total, "{record:?}");
        assert!(
            record.shards_done + record.shards_running <= record.shards_total,
            "{record:?}"
        );
        if record.shards_done == record.shards_total {
            assert!(record.state.is_final(), "all shards done but {record:?}");
        }
        if record.state.is_final() {
            assert_eq!(record.shards_running, 0, "{record:?}");
        }
        running += record.shards_running;
    }
    let load: u32 = s.list_workers(now).iter().map(|w| w.running).sum();
    assert_eq!(
        load, running,
        "workers' loads and jobs' running shards disagree"
    );
    assert!(s.pool.free_set_is_consistent(), "free set out of step");
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
