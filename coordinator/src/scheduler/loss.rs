//! Losing workers and leases: broken streams, silence past the heartbeat timeout, leases past
//! their deadline, retry limits. Silence is measured on the coordinator's own clock *while it
//! was listening*: a coordinator that stalled does not condemn the workers it did not hear.

use super::{Comm, Scheduler, WorkerState};
use concur_core::{JobId, ShardId, WorkerId};
use std::time::{Duration, Instant};

/// Ticks further apart than this mean the coordinator itself stalled (the ticker runs every
/// 250 ms); the excess is credited to every worker's silence.
pub(super) const STALL_GAP: Duration = Duration::from_secs(1);

impl Scheduler {
    /// A worker's stream broke or it went silent: its shards go back to the queue (or fail, past
    /// their retry limit). Unknown workers are ignored, so losing one twice is harmless.
    pub fn on_worker_lost(&mut self, worker: WorkerId, now: Instant, comm: &mut impl Comm) {
        self.on_workers_lost(&[worker], now, comm);
    }

    /// Several workers lost at once (e.g. all found silent in one tick): every one of them leaves
    /// the pool *before* their shards are re-queued, so a shard is never re-leased to a worker
    /// that is about to be declared lost too (which would burn its retries at once).
    pub fn on_workers_lost(&mut self, workers: &[WorkerId], now: Instant, comm: &mut impl Comm) {
        let removed: Vec<_> = workers
            .iter()
            .filter_map(|id| Some((*id, self.pool.remove(*id)?)))
            .collect();
        for (worker, record) in removed {
            // Re-queue in a stable order so retries are deterministic.
            for (job_id, shard_id) in record.held().into_iter().rev() {
                // If it is only silent, not dead, it must not go on with (or report) this lease.
                self.revoke(worker, job_id, shard_id, "worker declared lost", now, comm);
            }
        }
        self.dispatch(now, comm);
    }

    /// Ends `worker`'s lease of a shard: the worker is told to drop it, and the shard is
    /// re-queued at the front as a retry, or given up past the job's retry limit. Does nothing
    /// if `worker` no longer holds the lease.
    fn revoke(
        &mut self,
        worker: WorkerId,
        job_id: JobId,
        shard_id: ShardId,
        reason: &str,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        let Some(revoked) = job.revoke(shard_id, worker, reason) else {
            return;
        };
        comm.cancel(worker, revoked.lease, &format!("lease lost: {reason}"));
        match revoked.gave_up {
            Some(gave_up) => {
                comm.persist(gave_up);
                if let Some(finished) = job.finish_if_complete(now) {
                    comm.persist(finished);
                }
            }
            None => self.requeue_front(job_id),
        }
        comm.job_changed(job_id);
    }

    /// Declares lost every worker silent for longer than the heartbeat timeout, and revokes
    /// leases past their deadline. Returns the workers declared lost.
    pub fn on_tick(&mut self, now: Instant, comm: &mut impl Comm) -> Vec<WorkerId> {
        if let Some(last) = self.last_tick.replace(now) {
            let gap = now.saturating_duration_since(last);
            if gap > STALL_GAP {
                // Messages that arrived meanwhile may not have been read yet: the silence
                // during the stall is the coordinator's, not the workers'.
                self.pool.forgive(gap - STALL_GAP, now);
            }
        }
        let silent = self.pool.silent(self.config.heartbeat_timeout, now);
        self.on_workers_lost(&silent, now, comm);
        if let Some(deadline) = self.config.lease_timeout {
            self.revoke_expired_leases(deadline, now, comm);
        }
        silent
    }

    /// Revokes leases older than `deadline`: the worker is told to stop and marked stalled
    /// (no new shards until a heartbeat shows the execution ended), the shard is re-queued as a
    /// retry. Scans only held shards, at most the slots in use.
    fn revoke_expired_leases(&mut self, deadline: Duration, now: Instant, comm: &mut impl Comm) {
        let mut expired = Vec::new();
        for (worker, record) in self.pool.iter() {
            for (job_id, shard_id) in record.held() {
                let leased_at = self
                    .jobs
                    .get(&job_id)
                    .and_then(|job| job.shard(shard_id))
                    .and_then(|shard| match &shard.phase {
                        super::shard::Phase::Leased(lease) => Some(lease.leased_at),
                        _ => None,
                    });
                if leased_at.is_some_and(|at| now.saturating_duration_since(at) > deadline) {
                    expired.push((worker, job_id, shard_id));
                }
            }
        }
        expired.sort_unstable();
        for (worker, job_id, shard_id) in expired {
            self.pool.set_state(worker, WorkerState::Stalled);
            let reason = format!("lease timed out after {deadline:?}");
            self.revoke(worker, job_id, shard_id, &reason, now, comm);
            self.pool.release(worker, job_id, shard_id, false);
        }
        self.dispatch(now, comm);
    }
}
