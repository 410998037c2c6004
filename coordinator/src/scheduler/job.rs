//! A job's state inside the scheduler: its shards, their leases and its items' outcomes.

use concur_core::plan::ShardPlan;
use concur_core::report::{JobState, ShardRow};
use concur_core::{Attempt, JobId, JobSpec, Outcome, WorkerId};
use std::time::Instant;

/// The current lease of a shard.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease {
    pub(crate) worker: WorkerId,
    pub(crate) attempt: Attempt,
    pub(crate) leased_at: Instant,
}

/// One shard's life: pending, leased, or done.
#[derive(Debug, Default)]
pub(crate) struct ShardState {
    /// Attempt of the latest lease; 0 before the first.
    pub(crate) attempt: Attempt,
    pub(crate) lease: Option<Lease>,
    /// Leases lost with their worker so far.
    pub(crate) retries: u32,
    pub(crate) done: bool,
    /// Results of the current lease, by unit position; committed only when the shard finishes,
    /// so a lost lease leaves nothing half-counted.
    pub(crate) buffer: Vec<Option<Outcome>>,
    /// Report row, filled when the shard finishes (or gives up).
    pub(crate) row: ShardRow,
}

/// An item's outcome assembled from its units; split items have several parts.
#[derive(Debug, Default)]
pub(crate) struct ItemSlot {
    pub(crate) outcome: Outcome,
    pub(crate) parts: u32,
}

/// A submitted job.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: JobId,
    pub(crate) spec: JobSpec,
    pub(crate) state: JobState,
    pub(crate) submitted_at: Instant,
    pub(crate) submitted_unix_ms: u64,
    pub(crate) finished_at: Option<Instant>,
    pub(crate) plans: Vec<ShardPlan>,
    pub(crate) shards: Vec<ShardState>,
    pub(crate) items: Vec<ItemSlot>,
    /// Parts each item is split into (1 unless a huge n was cut into sub-ranges).
    pub(crate) parts_per_item: Vec<u32>,
    pub(crate) shards_done: u32,
    pub(crate) shards_running: u32,
    pub(crate) items_done: u64,
    pub(crate) items_failed: u64,
    pub(crate) max_retries: u32,
    /// Unit results refused because their lease was superseded.
    pub(crate) stale_discarded: u64,
}

/// A job's progress, as streamed to watchers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobProgress {
    /// The job.
    pub job_id: JobId,
    /// Its state.
    pub state: JobState,
    /// Items in the job.
    pub items_total: u64,
    /// Items with every part reported.
    pub items_done: u64,
    /// Of those, items that failed.
    pub items_failed: u64,
    /// Shards in the job.
    pub shards_total: u32,
    /// Shards finished.
    pub shards_done: u32,
    /// Shards leased now.
    pub shards_running: u32,
    /// Seconds since submission (until the end, once final).
    pub elapsed_s: f64,
}

/// Everything a report needs, read out of the scheduler.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    /// Progress figures and state.
    pub progress: JobProgress,
    /// The spec as submitted.
    pub spec: JobSpec,
    /// Unix milliseconds at submission.
    pub submitted_unix_ms: u64,
    /// One row per shard.
    pub shards: Vec<ShardRow>,
    /// Per item: its input and, once reported, its outcome.
    pub items: Vec<(String, Option<Outcome>)>,
    /// Unit results refused because their lease was superseded.
    pub stale_discarded: u64,
}

impl Job {
    pub(crate) fn new(
        id: JobId,
        spec: JobSpec,
        plans: Vec<ShardPlan>,
        now: Instant,
        unix_ms: u64,
    ) -> Self {
        let item_count = spec.workload.item_count() as usize;
        let mut parts_per_item = vec![0u32; item_count];
        for plan in &plans {
            for item in plan.first_item..plan.first_item + plan.item_count {
                parts_per_item[item as usize] += 1;
            }
        }
        let shards = plans
            .iter()
            .enumerate()
            .map(|(i, plan)| ShardState {
                row: ShardRow {
                    shard_id: i as u32,
                    items: plan.item_count,
                    ..ShardRow::default()
                },
                ..ShardState::default()
            })
            .collect();
        let max_retries = spec
            .max_retries
            .unwrap_or(concur_core::spec::DEFAULT_MAX_RETRIES);
        Self {
            id,
            spec,
            state: JobState::Pending,
            submitted_at: now,
            submitted_unix_ms: unix_ms,
            finished_at: None,
            plans,
            shards,
            items: std::iter::repeat_with(ItemSlot::default)
                .take(item_count)
                .collect(),
            parts_per_item,
            shards_done: 0,
            shards_running: 0,
            items_done: 0,
            items_failed: 0,
            max_retries,
            stale_discarded: 0,
        }
    }

    /// Seconds from submission to the end (or to `now` while running).
    pub(crate) fn elapsed_s(&self, now: Instant) -> f64 {
        self.finished_at
            .unwrap_or(now)
            .saturating_duration_since(self.submitted_at)
            .as_secs_f64()
    }

    /// Adds a finished shard's unit outcomes to its items, exactly once per shard.
    pub(crate) fn commit_shard(&mut self, shard_id: usize, outcomes: Vec<Outcome>) {
        let plan = self.plans[shard_id];
        for (offset, outcome) in outcomes.into_iter().enumerate() {
            let item = (plan.first_item + offset as u64) as usize;
            let slot = &mut self.items[item];
            slot.outcome.absorb(&outcome, slot.parts == 0);
            slot.parts += 1;
            if slot.parts == self.parts_per_item[item] {
                self.items_done += 1;
                if !slot.outcome.ok {
                    self.items_failed += 1;
                }
            }
        }
        let shard = &mut self.shards[shard_id];
        shard.done = true;
        shard.lease = None;
        shard.buffer = Vec::new();
        self.shards_done += 1;
    }

    /// Moves to a final state once every shard is done.
    pub(crate) fn finish_if_complete(&mut self, now: Instant) -> bool {
        if self.state.is_final() || self.shards_done as usize != self.shards.len() {
            return false;
        }
        self.state = if self.items_failed == 0 {
            JobState::Succeeded
        } else {
            JobState::Failed
        };
        self.finished_at = Some(now);
        true
    }

    pub(crate) fn progress(&self, now: Instant) -> JobProgress {
        JobProgress {
            job_id: self.id,
            state: self.state,
            items_total: self.items.len() as u64,
            items_done: self.items_done,
            items_failed: self.items_failed,
            shards_total: self.shards.len() as u32,
            shards_done: self.shards_done,
            shards_running: self.shards_running,
            elapsed_s: self.elapsed_s(now),
        }
    }

    pub(crate) fn snapshot(&self, now: Instant) -> JobSnapshot {
        let items = self
            .items
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let complete = slot.parts == self.parts_per_item[i] && slot.parts > 0;
                (
                    self.spec.workload.item_input(i as u64),
                    complete.then(|| slot.outcome.clone()),
                )
            })
            .collect();
        JobSnapshot {
            progress: self.progress(now),
            spec: self.spec.clone(),
            submitted_unix_ms: self.submitted_unix_ms,
            shards: self.shards.iter().map(|s| s.row.clone()).collect(),
            items,
            stale_discarded: self.stale_discarded,
        }
    }
}
