//! Dispatch: leasing pending shards to the least-loaded workers with free slots, and freeing
//! slots again. Never scans all shards or workers: both sides wait in ordered queues.

use super::job::Lease;
use super::{Assignment, Comm, LeaseKey, Persist, Scheduler};
use concur_core::plan::shard_units;
use concur_core::policy::HostPolicy;
use concur_core::report::JobState;
use concur_core::workload::Workload;
use concur_core::{JobId, ShardId, WorkerId};
use std::time::Instant;

impl Scheduler {
    /// Frees one slot of `worker` after its shard ended.
    pub(super) fn release_slot(
        &mut self,
        worker: WorkerId,
        job_id: JobId,
        shard_id: ShardId,
        done: bool,
    ) {
        let Some(record) = self.workers.get_mut(&worker) else {
            return;
        };
        let load = record.running.len() as u32;
        if !record.running.remove(&(job_id, shard_id)) {
            return;
        }
        if done {
            record.shards_done += 1;
        }
        self.free.remove(&(load, worker));
        // A draining worker finishes what it has but takes nothing new.
        if record.has_free_slot() {
            self.free.insert((load - 1, worker));
        }
    }

    /// Leases pending shards to the least-loaded workers with free slots.
    pub(super) fn dispatch(&mut self, now: Instant, comm: &mut impl Comm) {
        while let Some(&(load, worker)) = self.free.first() {
            let Some((job_id, shard_id)) = self.pop_pending() else {
                return;
            };
            let job = self
                .jobs
                .get_mut(&job_id)
                .expect("pending shard of a known job");
            let shard = &mut job.shards[shard_id as usize];
            shard.attempt += 1;
            shard.lease = Some(Lease {
                worker,
                attempt: shard.attempt,
                leased_at: now,
            });
            let lease = LeaseKey {
                job_id,
                shard_id,
                attempt: shard.attempt,
            };
            comm.persist(Persist::ShardLeased { lease });
            job.shards_running += 1;
            if job.state == JobState::Pending {
                job.state = JobState::Running;
            }
            let (fetch_timeout_ms, fetch_max_body_bytes) = match &job.spec.workload {
                Workload::Fetch(fetch) => (fetch.timeout_ms, fetch.max_body_bytes),
                Workload::SumSquares(_) => (0, 0),
            };
            let assignment = Assignment {
                lease,
                strategy: job.spec.strategy,
                concurrency: job.spec.concurrency,
                fetch_timeout_ms,
                fetch_max_body_bytes,
                fetch_policy: if matches!(job.spec.workload, Workload::Fetch(_)) {
                    self.config.host_policy.clone()
                } else {
                    HostPolicy::default()
                },
                units: shard_units(&job.spec.workload, &job.plans[shard_id as usize]),
            };
            let record = self.workers.get_mut(&worker).expect("free worker is known");
            // The row shows where the shard runs now; it is completed when the shard finishes.
            let row = &mut job.shards[shard_id as usize].row;
            row.worker_id = worker;
            row.host.clone_from(&record.info.host);
            row.pid = record.info.pid;
            row.attempt = lease.attempt;
            record.running.insert((job_id, shard_id));
            self.free.remove(&(load, worker));
            if record.has_free_slot() {
                self.free.insert((load + 1, worker));
            }
            comm.assign(worker, assignment);
            comm.job_changed(job_id);
        }
    }

    /// Next shard that still needs a lease.
    fn pop_pending(&mut self) -> Option<(JobId, ShardId)> {
        while let Some((job_id, shard_id)) = self.pending.pop_front() {
            let Some(job) = self.jobs.get(&job_id) else {
                continue;
            };
            let shard = &job.shards[shard_id as usize];
            if !job.state.is_final() && !shard.done && shard.lease.is_none() {
                return Some((job_id, shard_id));
            }
        }
        None
    }
}
