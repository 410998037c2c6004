//! Losing workers: broken streams, silence past the heartbeat timeout, retry limits.

use super::job::Job;
use super::worker::WorkerRecord;
use super::{Comm, LeaseKey, Persist, Scheduler};
use concur_core::{JobId, Outcome, ShardId, WorkerId};
use std::time::{Duration, Instant};

impl Scheduler {
    /// A worker's stream broke or it went silent: its shards go back to the queue (or fail, past
    /// their retry limit). Unknown workers are ignored, so losing one twice is harmless.
    pub fn on_worker_lost(&mut self, worker: WorkerId, now: Instant, comm: &mut impl Comm) {
        self.on_workers_lost(&[worker], now, comm);
    }

    /// Several workers lost at once (e.g. all found silent in one tick): every one of them leaves
    /// the free set *before* their shards are re-queued, so a shard is never re-leased to a
    /// worker that is about to be declared lost too (which would burn its retries at once).
    pub fn on_workers_lost(&mut self, workers: &[WorkerId], now: Instant, comm: &mut impl Comm) {
        let mut records = Vec::new();
        for worker in workers {
            if let Some(record) = self.workers.remove(worker) {
                self.free.remove(&(record.running.len() as u32, *worker));
                records.push((*worker, record));
            }
        }
        for (worker, record) in records {
            self.requeue_leases(worker, record, now, comm);
        }
        self.dispatch(now, comm);
    }

    /// Puts a lost worker's leased shards back in the queue (or gives them up past the limit).
    fn requeue_leases(
        &mut self,
        worker: WorkerId,
        record: WorkerRecord,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        // Re-queue in a stable order so retries are deterministic.
        let mut lost: Vec<_> = record.running.into_iter().collect();
        lost.sort_unstable();
        for (job_id, shard_id) in lost.into_iter().rev() {
            // If it is only silent, not dead, it must not go on with (or report) this lease.
            self.revoke_lease(worker, job_id, shard_id, "worker declared lost", now, comm);
        }
    }

    /// Ends `worker`'s current lease of a shard: the worker is told to drop it, and the shard is
    /// re-queued at the front as a retry, or given up past the job's retry limit. Does nothing
    /// if `worker` no longer holds the lease.
    fn revoke_lease(
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
        let shard = &mut job.shards[shard_id as usize];
        if shard.lease.is_none_or(|lease| lease.worker != worker) {
            return;
        }
        let key = LeaseKey {
            job_id,
            shard_id,
            attempt: shard.attempt,
        };
        comm.cancel(worker, key, &format!("lease lost: {reason}"));
        shard.lease = None;
        shard.buffer = Vec::new();
        shard.retries += 1;
        job.shards_running -= 1;
        if shard.retries > job.max_retries {
            let error = format!(
                "lease lost {} times ({reason}); retry limit {} reached",
                shard.retries, job.max_retries
            );
            Self::give_up_shard(job, shard_id as usize, &error, now, comm);
        } else {
            self.pending.push_front((job_id, shard_id));
        }
        comm.job_changed(job_id);
    }

    /// Declares lost every worker silent for longer than the heartbeat timeout.
    pub fn on_tick(&mut self, now: Instant, comm: &mut impl Comm) -> Vec<WorkerId> {
        let timeout = self.config.heartbeat_timeout;
        let mut silent: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        silent.sort_unstable();
        self.on_workers_lost(&silent, now, comm);
        if let Some(deadline) = self.config.lease_timeout {
            self.revoke_expired_leases(deadline, now, comm);
        }
        silent
    }

    /// Revokes leases older than `deadline`: the worker is told to stop, the shard is
    /// re-queued (counting as a retry). Scans only running shards, at most the slots in use.
    fn revoke_expired_leases(&mut self, deadline: Duration, now: Instant, comm: &mut impl Comm) {
        let mut expired = Vec::new();
        for (worker, record) in &self.workers {
            for &(job_id, shard_id) in &record.running {
                let expired_lease = self
                    .jobs
                    .get(&job_id)
                    .and_then(|job| job.shards[shard_id as usize].lease)
                    .is_some_and(|l| now.saturating_duration_since(l.leased_at) > deadline);
                if expired_lease {
                    expired.push((*worker, job_id, shard_id));
                }
            }
        }
        expired.sort_unstable();
        for (worker, job_id, shard_id) in expired {
            // Presumed hung: it keeps its connection but gets no new shards.
            if let Some(record) = self.workers.get_mut(&worker) {
                record.stalled = true;
            }
            let reason = format!("lease timed out after {deadline:?}");
            self.revoke_lease(worker, job_id, shard_id, &reason, now, comm);
            self.release_slot(worker, job_id, shard_id, false);
        }
        self.dispatch(now, comm);
    }

    /// Fails every unit of a shard that can no longer run, and finishes the job if it was last.
    pub(super) fn give_up_shard(
        job: &mut Job,
        shard_id: usize,
        error: &str,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        let units = job.plans[shard_id].item_count as usize;
        let row = &mut job.shards[shard_id].row;
        row.done = true;
        row.error = Some(error.to_string());
        let outcomes = vec![Outcome::failed(error, 0.0); units];
        comm.persist(Persist::ShardCommitted {
            job_id: job.id,
            shard_id: shard_id as ShardId,
            row: row.clone(),
            outcomes: outcomes.clone(),
        });
        job.commit_shard(shard_id, outcomes);
        Self::persist_if_finished(job, now, comm);
    }
}
