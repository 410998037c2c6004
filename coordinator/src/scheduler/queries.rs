//! Read-only views of the scheduler: job summaries, shard phases, workers. Each is O(what it
//! returns), never O(items).

use super::Scheduler;
use super::shard::{Phase, ShardEnd};
use concur_core::plan::Plan;
use concur_core::protocol::WorkerInfo;
use concur_core::report::{JobRecord, ShardRow};
use concur_core::{JobId, JobSpec, ShardId, WorkerId};
use std::sync::Arc;
use std::time::Instant;

/// A worker as listed by `concur-cli workers`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// Its id.
    pub worker_id: WorkerId,
    /// What it registered with.
    pub info: WorkerInfo,
    /// Shards it holds now.
    pub running: u32,
    /// Seconds since its last message.
    pub last_heartbeat_s: f64,
    /// `idle`, `busy`, `draining` or `stalled`.
    pub state: &'static str,
    /// Shards it finished.
    pub shards_done: u64,
}

impl Scheduler {
    /// The summary of an in-memory job.
    pub fn job_record(&self, job_id: JobId, now: Instant) -> Option<JobRecord> {
        self.jobs.get(&job_id).map(|job| job.record(now))
    }

    /// Whether a job is in memory (unfinished, or finished and not yet forgotten).
    pub fn has_job(&self, job_id: JobId) -> bool {
        self.jobs.contains_key(&job_id)
    }

    /// Whether a worker is in the pool (attached and not declared lost).
    pub fn has_worker(&self, worker: WorkerId) -> bool {
        self.pool.contains(worker)
    }

    /// Summaries of every job in memory (the unfinished ones and those finishing), by id.
    pub fn job_records(&self, now: Instant) -> Vec<JobRecord> {
        self.jobs.values().map(|job| job.record(now)).collect()
    }

    /// An in-memory job's spec and plan (shared, not copied).
    pub fn job_input(&self, job_id: JobId) -> Option<(Arc<JobSpec>, Plan)> {
        self.jobs
            .get(&job_id)
            .map(|job| (job.spec.clone(), job.plan.clone()))
    }

    /// Report rows of shards `from..from + limit` of an in-memory job as it stands in memory:
    /// where each is leased (worker, host, pid) and with which attempt. Rows of finished
    /// shards come from the store; here every row says `done: false`.
    pub fn unfinished_rows(&self, job_id: JobId, from: u32, limit: u32) -> Option<Vec<ShardRow>> {
        let job = self.jobs.get(&job_id)?;
        let end = from.saturating_add(limit).min(job.shard_count());
        Some(
            (from..end)
                .filter_map(|index| {
                    let shard_id = ShardId(index);
                    let shard = job.shard(shard_id)?;
                    let mut row = ShardRow {
                        shard_id,
                        attempt: shard.attempt,
                        items: job.plan.shard(index).item_count,
                        ..ShardRow::default()
                    };
                    match &shard.phase {
                        Phase::Leased(lease) => {
                            if let Some(worker) = self.pool.get(lease.worker) {
                                row.worker_id = lease.worker;
                                row.host.clone_from(&worker.info.host);
                                row.pid = worker.info.pid;
                            }
                            // A running shard's bar starts at its lease.
                            row.queue_s = lease
                                .leased_at
                                .saturating_duration_since(job.submitted_at)
                                .as_secs_f64();
                            row.start_s = row.queue_s;
                        }
                        Phase::Done(ShardEnd::Cancelled) => {
                            row.error = Some("not run: its job was cancelled".into());
                        }
                        Phase::Pending | Phase::Done(_) => {}
                    }
                    Some(row)
                })
                .collect(),
        )
    }

    /// Every attached worker, by id.
    pub fn list_workers(&self, now: Instant) -> Vec<WorkerView> {
        let mut views: Vec<WorkerView> = self
            .pool
            .iter()
            .map(|(id, w)| WorkerView {
                worker_id: id,
                info: w.info.clone(),
                running: w.load(),
                last_heartbeat_s: now.saturating_duration_since(w.last_seen).as_secs_f64(),
                state: w.state.name(w.load() > 0),
                shards_done: w.shards_done,
            })
            .collect();
        views.sort_by_key(|v| v.worker_id);
        views
    }

    /// Whether a worker is attached (not declared lost).
    pub fn knows_worker(&self, worker: WorkerId) -> bool {
        self.pool.contains(worker)
    }

    /// Attached workers.
    pub fn worker_count(&self) -> usize {
        self.pool.len()
    }

    /// Slots over all attached workers.
    pub fn total_slots(&self) -> u32 {
        self.pool.total_slots()
    }

    /// The next job id to hand out (for restores and tests).
    pub fn next_job_id(&self) -> JobId {
        self.next_job_id
    }
}
