//! A job's results: buffering a lease's unit results, committing a finished shard, giving up
//! a shard out of retries.

use super::Job;
use crate::scheduler::comm::Persist;
use crate::scheduler::shard::{Phase, ShardEnd};
use crate::scheduler::tally::oks;
use concur_core::protocol::{ShardTiming, WorkerInfo};
use concur_core::report::ShardRow;
use concur_core::report::anchor::anchor;
use concur_core::{LeaseKey, Outcome, ShardId, WorkerId};
use std::time::Instant;

impl Job {
    /// Buffers unit results of the current lease; false (and counted as stale) otherwise.
    pub(crate) fn buffer_results(
        &mut self,
        worker: WorkerId,
        lease: LeaseKey,
        results: Vec<(u32, Outcome)>,
    ) -> bool {
        let count = results.len() as u64;
        let units = self.plan_units(lease.shard_id);
        match self.current(worker, lease) {
            Some(current) => {
                current.results.add(units, results);
                true
            }
            None => {
                self.stale_discarded += count;
                false
            }
        }
    }

    fn plan_units(&self, shard: ShardId) -> u64 {
        if shard.get() < self.plan.len() {
            self.plan.shard(shard.get()).item_count
        } else {
            0
        }
    }

    /// Commits the current lease's results; units never reported fail (with the shard's error
    /// if it sent one). `None` if `lease` is not current.
    pub(crate) fn commit(
        &mut self,
        worker: &WorkerInfo,
        worker_id: WorkerId,
        lease: LeaseKey,
        timing: ShardTiming,
        now: Instant,
    ) -> Option<Persist> {
        self.current(worker_id, lease)?;
        let index = lease.shard_id.get() as usize;
        let plan = self.plan.shard(lease.shard_id.get());
        let Phase::Leased(current) = std::mem::replace(
            &mut self.shards[index].phase,
            Phase::Done(ShardEnd::Committed),
        ) else {
            return None;
        };
        let missing = if timing.error.is_empty() {
            "worker reported no result for this item"
        } else {
            timing.error.as_str()
        };
        let outcomes = current.results.into_outcomes(plan.item_count, missing);
        let queue_s = (current
            .leased_at
            .saturating_duration_since(self.submitted_at))
        .as_secs_f64();
        let round_trip_s = now
            .saturating_duration_since(current.leased_at)
            .as_secs_f64();
        let placed = anchor(
            queue_s,
            round_trip_s,
            timing.started_after_s,
            timing.sent_after_s,
            timing.run_s,
        );
        let row = ShardRow {
            shard_id: lease.shard_id,
            worker_id,
            host: worker.host.clone(),
            pid: worker.pid,
            attempt: lease.attempt,
            items: plan.item_count,
            run_s: timing.run_s,
            cpu_s: timing.cpu_s,
            queue_s,
            round_trip_s,
            start_s: placed.start_s,
            start_error_s: placed.error_s,
            slot: timing.slot,
            item_time_s: outcomes.iter().map(|o| o.duration_s).sum(),
            concurrency: timing.concurrency,
            done: true,
            error: (!timing.error.is_empty()).then_some(timing.error),
            ..ShardRow::default()
        };
        self.shards_leased -= 1;
        self.shards_done += 1;
        self.run_estimate_s = Some(match self.run_estimate_s {
            Some(estimate) => 0.8 * estimate + 0.2 * row.run_s,
            None => row.run_s,
        });
        self.tally
            .add_shard(plan.first_item, oks(&outcomes), Some(&row));
        Some(Persist::ShardCommitted {
            lease,
            first_item: plan.first_item,
            row,
            outcomes,
        })
    }

    /// Fails every unit of a pending shard that can no longer run.
    pub(super) fn give_up(&mut self, shard_id: ShardId, error: String) -> Persist {
        let shard = &mut self.shards[shard_id.get() as usize];
        shard.phase = Phase::Done(ShardEnd::GaveUp);
        let plan = self.plan.shard(shard_id.get());
        let row = ShardRow {
            shard_id,
            attempt: shard.attempt,
            items: plan.item_count,
            done: true,
            error: Some(error),
            ..ShardRow::default()
        };
        self.shards_done += 1;
        self.tally.add_shard(
            plan.first_item,
            std::iter::repeat_n(false, plan.item_count as usize),
            None,
        );
        Persist::ShardGaveUp {
            job_id: self.id,
            first_item: plan.first_item,
            row,
        }
    }
}
