//! A job inside the scheduler: its shards' phases, its counters and every transition that
//! changes them. Counters change only here, so "leased shards", "done shards" and the item
//! tally cannot drift apart.

mod commit;

use super::comm::Persist;
use super::shard::{Lease, Phase, Shard, ShardEnd, UnitBuffer};
use super::tally::Tally;
use concur_core::plan::Plan;
use concur_core::report::{JobRecord, JobState};
use concur_core::{JobId, JobSpec, LeaseKey, ShardId, WorkerId};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A submitted job.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: JobId,
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) plan: Plan,
    shards: Vec<Shard>,
    state: JobState,
    pub(crate) submitted_at: Instant,
    submitted_unix_ms: u64,
    finished_at: Option<Instant>,
    /// Revoked shards to re-lease first, then fresh shards from `next_fresh` on.
    retries: VecDeque<ShardId>,
    next_fresh: u32,
    shards_done: u32,
    shards_leased: u32,
    tally: Tally,
    max_retries: u32,
    stale_discarded: u64,
    /// Average run time of its committed shards (exponentially weighted), once one committed.
    run_estimate_s: Option<f64>,
}

/// Shards that run shorter than this (on average) may wait in workers' prefetch windows: for
/// them the round trip to the coordinator is worth hiding. Longer ones are leased only to free
/// slots, so none waits behind another on a worker while a second one idles.
pub(crate) const SHORT_SHARD_S: f64 = 0.05;

/// What revoking a lease did.
#[derive(Debug)]
pub(crate) struct Revoked {
    /// The lease the worker must drop.
    pub(crate) lease: LeaseKey,
    /// Set when the shard ran out of retries and gave up (its record to store).
    pub(crate) gave_up: Option<Persist>,
}

impl Job {
    /// A job with every shard pending.
    pub(crate) fn new(
        id: JobId,
        spec: Arc<JobSpec>,
        plan: Plan,
        now: Instant,
        submitted_unix_ms: u64,
    ) -> Self {
        let shards = std::iter::repeat_with(Shard::default)
            .take(plan.len() as usize)
            .collect();
        let max_retries = spec
            .max_retries
            .unwrap_or(concur_core::spec::DEFAULT_MAX_RETRIES);
        Self {
            id,
            tally: Tally::new(&plan),
            spec,
            plan,
            shards,
            state: JobState::Pending,
            submitted_at: now,
            submitted_unix_ms,
            finished_at: None,
            retries: VecDeque::new(),
            next_fresh: 0,
            shards_done: 0,
            shards_leased: 0,
            max_retries,
            stale_discarded: 0,
            run_estimate_s: None,
        }
    }

    /// Whether its shards have proved short (see [`SHORT_SHARD_S`]).
    pub(crate) fn shards_are_short(&self) -> bool {
        self.run_estimate_s.is_some_and(|s| s < SHORT_SHARD_S)
    }

    pub(crate) fn state(&self) -> JobState {
        self.state
    }

    pub(crate) fn shard_count(&self) -> u32 {
        self.shards.len() as u32
    }

    pub(crate) fn shard(&self, shard: ShardId) -> Option<&Shard> {
        self.shards.get(shard.get() as usize)
    }

    /// Seconds from submission to the end (or to `now` while running).
    pub(crate) fn elapsed_s(&self, now: Instant) -> f64 {
        self.finished_at
            .unwrap_or(now)
            .saturating_duration_since(self.submitted_at)
            .as_secs_f64()
    }

    /// The next shard to lease: retries first, then fresh shards in order.
    pub(crate) fn take_pending(&mut self) -> Option<ShardId> {
        if self.state.is_final() {
            return None;
        }
        while let Some(shard) = self.retries.pop_front() {
            if matches!(self.shards[shard.get() as usize].phase, Phase::Pending) {
                return Some(shard);
            }
        }
        while (self.next_fresh as usize) < self.shards.len() {
            let shard = ShardId(self.next_fresh);
            self.next_fresh += 1;
            if matches!(self.shards[shard.get() as usize].phase, Phase::Pending) {
                return Some(shard);
            }
        }
        None
    }

    /// Returns a shard taken by [`Job::take_pending`] but not leased: it is taken first next.
    pub(crate) fn put_back(&mut self, shard: ShardId) {
        self.retries.push_front(shard);
    }

    /// Leases a pending shard to `worker` with the next attempt.
    pub(crate) fn lease(&mut self, shard_id: ShardId, worker: WorkerId, now: Instant) -> LeaseKey {
        let shard = &mut self.shards[shard_id.get() as usize];
        debug_assert!(matches!(shard.phase, Phase::Pending));
        shard.attempt = shard.attempt.next();
        shard.phase = Phase::Leased(Box::new(Lease {
            worker,
            leased_at: now,
            results: UnitBuffer::default(),
        }));
        self.shards_leased += 1;
        if self.state == JobState::Pending {
            self.state = JobState::Running;
        }
        LeaseKey {
            job_id: self.id,
            shard_id,
            attempt: shard.attempt,
        }
    }

    /// The lease if it is `lease.shard_id`'s current one, held by `worker`.
    fn current(&mut self, worker: WorkerId, lease: LeaseKey) -> Option<&mut Lease> {
        let shard = self.shards.get_mut(lease.shard_id.get() as usize)?;
        match &mut shard.phase {
            Phase::Leased(current)
                if current.worker == worker && shard.attempt == lease.attempt =>
            {
                Some(current)
            }
            _ => None,
        }
    }

    /// Ends `worker`'s lease of `shard_id`: the shard goes back to the front of the queue as a
    /// retry, or gives up past the job's retry limit. `None` if `worker` does not hold it.
    pub(crate) fn revoke(
        &mut self,
        shard_id: ShardId,
        worker: WorkerId,
        reason: &str,
    ) -> Option<Revoked> {
        let index = shard_id.get() as usize;
        let shard = self.shards.get_mut(index)?;
        if !matches!(&shard.phase, Phase::Leased(lease) if lease.worker == worker) {
            return None;
        }
        shard.phase = Phase::Pending;
        shard.revocations += 1;
        self.shards_leased -= 1;
        let lease = LeaseKey {
            job_id: self.id,
            shard_id,
            attempt: shard.attempt,
        };
        if shard.revocations <= self.max_retries {
            self.retries.push_back(shard_id);
            return Some(Revoked {
                lease,
                gave_up: None,
            });
        }
        let error = format!(
            "lease lost {} times ({reason}); retry limit {} reached",
            shard.revocations, self.max_retries
        );
        Some(Revoked {
            lease,
            gave_up: Some(self.give_up(shard_id, error)),
        })
    }

    /// Cancels the job: leased shards end (their holders are returned, to be told), pending
    /// ones never run. `None` if the job had already finished.
    pub(crate) fn cancel(&mut self, now: Instant) -> Option<Vec<(WorkerId, LeaseKey)>> {
        if self.state.is_final() {
            return None;
        }
        let mut leases = Vec::new();
        for (index, shard) in self.shards.iter_mut().enumerate() {
            if let Phase::Leased(lease) = &shard.phase {
                leases.push((
                    lease.worker,
                    LeaseKey {
                        job_id: self.id,
                        shard_id: ShardId(index as u32),
                        attempt: shard.attempt,
                    },
                ));
                shard.phase = Phase::Done(ShardEnd::Cancelled);
            }
        }
        self.shards_leased = 0;
        self.retries.clear();
        self.state = JobState::Cancelled;
        self.finished_at = Some(now);
        Some(leases)
    }

    /// Moves to its final state once every shard is done; the record to store if it did.
    pub(crate) fn finish_if_complete(&mut self, now: Instant) -> Option<Persist> {
        if self.state.is_final() || self.shards_done as usize != self.shards.len() {
            return None;
        }
        self.state = if self.tally.items.failed == 0 {
            JobState::Succeeded
        } else {
            JobState::Failed
        };
        self.finished_at = Some(now);
        Some(Persist::JobFinished {
            record: self.record(now),
        })
    }

    /// The record of a cancelled job, to store.
    pub(crate) fn cancelled_record(&self, now: Instant) -> Persist {
        Persist::JobFinished {
            record: self.record(now),
        }
    }

    /// The job's summary as of `now`.
    pub(crate) fn record(&self, now: Instant) -> JobRecord {
        JobRecord {
            job_id: self.id,
            state: self.state,
            workload: self.spec.workload.name().to_string(),
            strategy: self.spec.strategy,
            concurrency: self.spec.recorded_concurrency(),
            label: self.spec.label.clone(),
            submitted_unix_ms: self.submitted_unix_ms,
            wall_s: self.elapsed_s(now),
            items: self.tally.items,
            shards_total: self.shards.len() as u32,
            shards_done: self.shards_done,
            shards_running: self.shards_leased,
            totals: self.tally.totals,
            stale_results_discarded: self.stale_discarded,
        }
    }

    /// Restores a shard as stored: its last attempt and, if it finished, its end. Only for a
    /// job being rebuilt, before any lease.
    pub(crate) fn restore_shard(&mut self, stored: super::restore::StoredShard) {
        let Some(shard) = self.shards.get_mut(stored.shard_id.get() as usize) else {
            return;
        };
        shard.attempt = shard.attempt.max(stored.attempt);
        let Some(end) = stored.end else {
            return;
        };
        let plan = self.plan.shard(stored.shard_id.get());
        shard.phase = Phase::Done(if end.gave_up {
            ShardEnd::GaveUp
        } else {
            ShardEnd::Committed
        });
        self.shards_done += 1;
        let units = std::iter::repeat_n(true, end.units_ok as usize)
            .chain(std::iter::repeat_n(false, end.units_failed as usize));
        let row = (!end.gave_up).then_some(&end.row);
        self.tally.add_shard(plan.first_item, units, row);
        if self.state == JobState::Pending {
            self.state = JobState::Running;
        }
    }
}
