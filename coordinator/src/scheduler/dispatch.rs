//! Dispatch: leasing pending shards to the least-loaded workers with free slots. Never scans
//! all shards or workers: jobs with pending shards and workers with free slots both wait in
//! ordered queues.

use super::{Comm, Persist, Scheduler};
use concur_core::protocol::{Assignment, WorkerInfo};
use concur_core::report::JobState;
use concur_core::workload::Workload;
use concur_core::{JobId, ShardId};
use std::time::Instant;

impl Scheduler {
    /// Leases pending shards to the least-loaded workers with free slots.
    pub(super) fn dispatch(&mut self, now: Instant, comm: &mut impl Comm) {
        if self.paused.any() {
            return;
        }
        while let Some(room) = self.pool.first_free() {
            let mut worker = room.worker;
            // A prefetch window is filled only with shards short enough for the round trip to
            // matter; longer ones wait for a free slot, where any worker could take them.
            let Some((job_id, shard_id)) = self.next_pending(room.slot_free) else {
                return;
            };
            let Some(job) = self.jobs.get_mut(&job_id) else {
                return;
            };
            // Exec shards go only to workers that allow their program, paced ones only to
            // workers that pace: the least-loaded such worker with room, else the shard waits
            // (the queue is in order, so all wait).
            if WorkerInfo::restricted(&job.spec) {
                let allowed = self
                    .pool
                    .first_free_where(|w| w.info.can_run(&job.spec))
                    .filter(|r| r.slot_free || job.shards_are_short());
                match allowed {
                    Some(room) => worker = room.worker,
                    None => {
                        job.put_back(shard_id);
                        return;
                    }
                }
            }
            let starting = job.state() == JobState::Pending;
            let lease = job.lease(shard_id, worker, now);
            if starting {
                comm.persist(Persist::JobStarted { job_id });
            }
            comm.persist(Persist::ShardLeased { lease });
            let fetch_policy = match job.spec.workload {
                Workload::Fetch(_) => self.config.host_policy.clone(),
                Workload::Exec(_) | Workload::SumSquares(_) => self.no_rules.clone(),
            };
            let assignment = Assignment {
                lease,
                spec: job.spec.clone(),
                plan: job.plan.shard(shard_id.get()),
                fetch_policy,
            };
            self.pool.hold(worker, job_id, shard_id);
            comm.assign(worker, assignment);
            comm.job_changed(job_id);
        }
    }

    /// The next shard that needs a lease, from the oldest job that has one; for a prefetch
    /// window only if that job's shards are short.
    fn next_pending(&mut self, slot_free: bool) -> Option<(JobId, ShardId)> {
        while let Some(&job_id) = self.queue.front() {
            if let Some(job) = self.jobs.get_mut(&job_id) {
                if !slot_free && !job.shards_are_short() {
                    return None;
                }
                if let Some(shard) = job.take_pending() {
                    return Some((job_id, shard));
                }
            }
            self.queue.pop_front();
        }
        None
    }

    /// Puts a job with a shard to retry at the front of the queue: retries go first.
    pub(super) fn requeue_front(&mut self, job_id: JobId) {
        if self.queue.front() != Some(&job_id) {
            self.queue.push_front(job_id);
        }
    }
}
