//! Rebuilding the scheduler from durable state after a restart. Only unfinished jobs come
//! back into memory, so restoring costs nothing per finished job or item.

use super::job::Job;
use super::{Persist, Scheduler, SchedulerConfig, WorkerIds};
use concur_core::plan::Plan;
use concur_core::report::ShardRow;
use concur_core::{Attempt, JobId, JobSpec, ShardId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a restarted coordinator starts from.
#[derive(Debug, Clone)]
pub struct RestoredState {
    /// The next job id: above every id ever handed out.
    pub next_job_id: JobId,
    /// Worker ids reserved for this run (stored before any is handed out).
    pub worker_ids: WorkerIds,
    /// The unfinished jobs.
    pub jobs: Vec<RestoredJob>,
}

/// An unfinished job as stored.
#[derive(Debug, Clone)]
pub struct RestoredJob {
    /// Its id.
    pub job_id: JobId,
    /// Its spec.
    pub spec: Arc<JobSpec>,
    /// The shard count asked of the planner at submission.
    pub shards: u32,
    /// Unix milliseconds at submission.
    pub submitted_unix_ms: u64,
    /// Every shard that was ever leased or finished.
    pub shards_stored: Vec<StoredShard>,
}

/// A shard as stored.
#[derive(Debug, Clone)]
pub struct StoredShard {
    /// Its index.
    pub shard_id: ShardId,
    /// The last attempt leased.
    pub attempt: Attempt,
    /// How it ended, if it did.
    pub end: Option<StoredEnd>,
}

/// A finished shard as stored: enough to count it again without its results.
#[derive(Debug, Clone)]
pub struct StoredEnd {
    /// Its report row.
    pub row: ShardRow,
    /// Units that succeeded.
    pub units_ok: u64,
    /// Units that failed.
    pub units_failed: u64,
    /// It ran out of retries (its items failed without running).
    pub gave_up: bool,
}

impl Scheduler {
    /// A scheduler holding the stored unfinished jobs: finished shards stay finished, every
    /// other shard is pending and will be leased with the next attempt. `now_unix_ms` maps
    /// stored submission times onto this process's monotonic clock. Also returns the records
    /// of jobs that turn out complete (all shards finished before the restart), to store.
    pub fn restore(
        config: SchedulerConfig,
        state: RestoredState,
        now: Instant,
        now_unix_ms: u64,
    ) -> (Self, Vec<Persist>) {
        let mut scheduler = Scheduler::with_worker_ids(config, state.next_job_id, state.worker_ids);
        let mut finished = Vec::new();
        for stored in state.jobs {
            let age = Duration::from_millis(now_unix_ms.saturating_sub(stored.submitted_unix_ms));
            let submitted_at = now.checked_sub(age).unwrap_or(now);
            let plan = Plan::new(&stored.spec.workload, stored.shards);
            let fits = stored.shards_stored.iter().all(|shard| {
                shard.shard_id.get() < plan.len()
                    && shard.end.as_ref().is_none_or(|end| {
                        end.units_ok + end.units_failed
                            == plan.shard(shard.shard_id.get()).item_count
                    })
            });
            if !fits {
                // Stored shards that do not match the plan: a corrupt record or a planner change.
                tracing::error!(
                    job_id = %stored.job_id,
                    "stored shards do not match the job's plan; job skipped"
                );
                continue;
            }
            let mut job = Job::new(
                stored.job_id,
                stored.spec,
                plan,
                submitted_at,
                stored.submitted_unix_ms,
            );
            for shard in stored.shards_stored {
                job.restore_shard(shard);
            }
            if let Some(record) = job.finish_if_complete(now) {
                tracing::info!(job_id = %stored.job_id, "job completed before the restart");
                finished.push(record);
            }
            scheduler.next_job_id = scheduler.next_job_id.max(JobId(stored.job_id.get() + 1));
            scheduler.queue.push_back(stored.job_id);
            scheduler.jobs.insert(stored.job_id, job);
        }
        (scheduler, finished)
    }
}
