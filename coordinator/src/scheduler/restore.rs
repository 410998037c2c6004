//! Rebuilding the scheduler from durable state after a restart.

use super::job::Job;
use super::{Scheduler, SchedulerConfig};
use concur_core::plan::plan_shards;
use concur_core::report::{JobState, ShardRow};
use concur_core::{Attempt, JobId, JobSpec, Outcome, ShardId};
use std::time::{Duration, Instant};

/// A job as stored.
#[derive(Debug, Clone)]
pub struct RestoredJob {
    /// Its id.
    pub job_id: JobId,
    /// Its spec.
    pub spec: JobSpec,
    /// The shard count asked of the planner at submission.
    pub shards: u32,
    /// Unix milliseconds at submission.
    pub submitted_unix_ms: u64,
    /// Final state and wall time, if it had finished.
    pub finished: Option<(JobState, f64)>,
    /// Every shard that was ever leased or committed.
    pub shard_states: Vec<RestoredShard>,
}

/// A shard as stored.
#[derive(Debug, Clone)]
pub struct RestoredShard {
    /// Its index.
    pub shard_id: ShardId,
    /// The last attempt leased.
    pub attempt: Attempt,
    /// Its row and outcomes, if it was committed.
    pub committed: Option<(ShardRow, Vec<Outcome>)>,
}

impl Scheduler {
    /// A scheduler holding `jobs` as they were stored: committed shards stay committed, every
    /// other shard of an unfinished job is pending and will be leased with the next attempt.
    /// `now_unix_ms` maps stored submission times onto this process's monotonic clock.
    pub fn restore(
        config: SchedulerConfig,
        jobs: Vec<RestoredJob>,
        now: Instant,
        now_unix_ms: u64,
    ) -> Self {
        let mut scheduler = Scheduler::new(config);
        for stored in jobs {
            let age = Duration::from_millis(now_unix_ms.saturating_sub(stored.submitted_unix_ms));
            let submitted_at = now.checked_sub(age).unwrap_or(now);
            // Ids are never reused, even for a job that cannot be restored.
            scheduler.next_job_id = scheduler.next_job_id.max(stored.job_id + 1);
            let plans = plan_shards(&stored.spec.workload, stored.shards);
            let fits = stored.shard_states.iter().all(|shard| {
                plans.get(shard.shard_id as usize).is_some_and(|plan| {
                    shard
                        .committed
                        .as_ref()
                        .is_none_or(|(_, outcomes)| outcomes.len() as u64 == plan.item_count)
                })
            });
            if !fits {
                // Stored shards that do not match the plan: a corrupt record or a planner change.
                tracing::error!(
                    job_id = stored.job_id,
                    "stored shards do not match the job's plan; job skipped"
                );
                continue;
            }
            let mut job = Job::new(
                stored.job_id,
                stored.spec,
                plans,
                submitted_at,
                stored.submitted_unix_ms,
            );
            for shard in stored.shard_states {
                let index = shard.shard_id as usize;
                job.shards[index].attempt = shard.attempt;
                if let Some((row, outcomes)) = shard.committed {
                    job.shards[index].row = row;
                    job.commit_shard(index, outcomes);
                }
            }
            match stored.finished {
                Some((state, wall_s)) => {
                    job.state = state;
                    job.finished_at = Some(submitted_at + Duration::from_secs_f64(wall_s.max(0.0)));
                }
                None => {
                    job.state = if job.shards_done > 0 || job.shards.iter().any(|s| s.attempt > 0) {
                        JobState::Running
                    } else {
                        JobState::Pending
                    };
                    scheduler.pending.extend(
                        job.shards
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| !s.done)
                            .map(|(i, _)| (stored.job_id, i as ShardId)),
                    );
                    // A job whose shards were all committed but not marked finished.
                    if job.finish_if_complete(now) {
                        tracing::info!(job_id = stored.job_id, "job completed before the restart");
                    }
                }
            }
            scheduler.jobs.insert(stored.job_id, job);
        }
        scheduler
    }
}
