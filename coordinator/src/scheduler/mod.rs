//! The scheduler: a pure state machine over jobs, shards, leases and workers.
//!
//! Every change is an `on_<event>` call that takes the current time and a [`Comm`] for its
//! effects; nothing here touches sockets or clocks, so it is tested without either.
//!
//! Invariants (checked by the unit and property tests):
//! - a shard is leased to at most one worker at a time, and each lease has a fresh attempt;
//! - results are accepted only from the current lease's (worker, attempt); anything else is
//!   discarded and the sender told to drop it;
//! - a shard's results reach its items only when the shard finishes, so every item is
//!   counted exactly once however many leases were lost on the way.
//!
//! Dispatch never scans all shards or workers: pending shards wait in a queue and workers with a
//! free slot in a set ordered by load.

mod comm;
mod dispatch;
pub mod fuzzing;
mod job;
mod loss;
mod queries;
mod restore;
mod worker;

#[cfg(test)]
mod tests;

pub use comm::{Assignment, Comm, LeaseKey, Persist};
pub use job::{JobProgress, JobSnapshot};
pub use restore::{RestoredJob, RestoredShard};
pub use worker::{WorkerInfo, WorkerView};

use concur_core::plan::plan_shards;
use concur_core::policy::HostPolicy;
use concur_core::report::JobState;
use concur_core::spec::Limits;
use concur_core::workload::Workload;
use concur_core::{JobId, JobSpec, Outcome, ShardId, SpecError, WorkerId};
use job::Job;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};
use worker::WorkerRecord;

/// Tunables of the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Bounds on submitted jobs.
    pub limits: Limits,
    /// A worker silent for this long is declared lost.
    pub heartbeat_timeout: Duration,
    /// Jobs not yet finished at once; more are refused until some finish.
    pub max_active_jobs: u32,
    /// Hosts fetch jobs may target.
    pub host_policy: HostPolicy,
    /// A lease older than this is revoked and its shard re-queued, even from a worker that
    /// still heartbeats (a hung executor); `None` = no deadline.
    pub lease_timeout: Option<Duration>,
}

/// Unfinished jobs accepted at once when not configured.
pub const DEFAULT_MAX_ACTIVE_JOBS: u32 = 1000;

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            heartbeat_timeout: Duration::from_secs(5),
            max_active_jobs: DEFAULT_MAX_ACTIVE_JOBS,
            host_policy: HostPolicy::default(),
            lease_timeout: None,
        }
    }
}

/// Why an event was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchedulerError {
    /// The job spec is invalid; the client must change it.
    #[error(transparent)]
    InvalidSpec(#[from] SpecError),
    /// No such job.
    #[error("no job with id {0}")]
    UnknownJob(JobId),
    /// No such worker (it was declared lost, or never registered).
    #[error("no worker with id {0}")]
    UnknownWorker(WorkerId),
    /// Too many unfinished jobs; retry when some have finished.
    #[error(
        "{active} jobs are unfinished, the coordinator's limit is {limit}: wait for some to finish or cancel them"
    )]
    TooManyJobs {
        /// Unfinished jobs now.
        active: u32,
        /// The limit.
        limit: u32,
    },
}

/// What became of a message from a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Applied to the current lease.
    Accepted,
    /// From a superseded lease, or malformed: discarded, and the worker told to drop it.
    Discarded,
}

/// A shard's timing as the worker measured it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardTiming {
    /// Start to end of the shard's execution.
    pub run_s: f64,
    /// Process CPU time consumed meanwhile.
    pub cpu_s: f64,
    /// Concurrency actually used.
    pub concurrency: u32,
    /// Set when the shard could not run; its units without results fail with it.
    pub error: String,
}

/// The scheduler's whole state.
#[derive(Debug, Default)]
pub struct Scheduler {
    config: SchedulerConfig,
    jobs: BTreeMap<JobId, Job>,
    workers: HashMap<WorkerId, WorkerRecord>,
    /// Workers with a free slot, least loaded first: `(running, id)`.
    free: BTreeSet<(u32, WorkerId)>,
    /// Shards waiting for a worker. Entries of cancelled jobs are skipped when popped.
    pending: VecDeque<(JobId, ShardId)>,
    next_job_id: JobId,
    next_worker_id: WorkerId,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            config,
            next_job_id: 1,
            next_worker_id: 1,
            ..Self::default()
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    // ------------------------------------------------------------------ workers

    /// A worker registered; it is idle and may get shards at once.
    pub fn on_worker_attached(
        &mut self,
        info: WorkerInfo,
        now: Instant,
        comm: &mut impl Comm,
    ) -> WorkerId {
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let info = WorkerInfo {
            slots: info.slots.max(1),
            ..info
        };
        self.workers.insert(
            id,
            WorkerRecord {
                info,
                running: Default::default(),
                last_seen: now,
                shards_done: 0,
                draining: false,
                stalled: false,
            },
        );
        self.free.insert((0, id));
        self.dispatch(now, comm);
        id
    }

    /// Any message from a worker proves it alive.
    pub fn on_heartbeat(&mut self, worker: WorkerId, now: Instant) -> Result<(), SchedulerError> {
        let record = self
            .workers
            .get_mut(&worker)
            .ok_or(SchedulerError::UnknownWorker(worker))?;
        record.last_seen = now;
        Ok(())
    }

    /// A worker is shutting down: it gets no new shards and keeps the ones it runs.
    pub fn on_worker_draining(&mut self, worker: WorkerId) -> Result<(), SchedulerError> {
        let record = self
            .workers
            .get_mut(&worker)
            .ok_or(SchedulerError::UnknownWorker(worker))?;
        self.free.remove(&(record.running.len() as u32, worker));
        record.draining = true;
        Ok(())
    }

    // ------------------------------------------------------------------ jobs

    /// Validates, plans and queues a job. Without a shard count, the job gets one shard per
    /// attached worker slot (at least one).
    pub fn on_job_submitted(
        &mut self,
        spec: JobSpec,
        now: Instant,
        unix_ms: u64,
        comm: &mut impl Comm,
    ) -> Result<JobId, SchedulerError> {
        spec.validate(&self.config.limits)?;
        if let Workload::Fetch(fetch) = &spec.workload {
            for url in &fetch.urls {
                self.config.host_policy.check(url)?;
            }
        }
        let active = self.jobs.values().filter(|j| !j.state.is_final()).count() as u32;
        if active >= self.config.max_active_jobs {
            return Err(SchedulerError::TooManyJobs {
                active,
                limit: self.config.max_active_jobs,
            });
        }
        let shards = spec.shards.unwrap_or_else(|| self.total_slots().max(1));
        let plans = plan_shards(&spec.workload, shards);
        let id = self.next_job_id;
        self.next_job_id += 1;
        comm.persist(Persist::JobSubmitted {
            job_id: id,
            spec: spec.clone(),
            // The count asked of the planner, which gives the same plans again on restore.
            shards,
            submitted_unix_ms: unix_ms,
        });
        let job = Job::new(id, spec, plans, now, unix_ms);
        self.pending
            .extend((0..job.shards.len() as ShardId).map(|shard| (id, shard)));
        self.jobs.insert(id, job);
        comm.job_changed(id);
        self.dispatch(now, comm);
        Ok(id)
    }

    /// Cancels a job: pending shards are dropped, running ones cancelled on their workers.
    /// Cancelling a finished job changes nothing and returns its final state.
    pub fn on_cancel(
        &mut self,
        job_id: JobId,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Result<JobState, SchedulerError> {
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or(SchedulerError::UnknownJob(job_id))?;
        if job.state.is_final() {
            return Ok(job.state);
        }
        job.state = JobState::Cancelled;
        job.finished_at = Some(now);
        let mut leases = Vec::new();
        for (shard_id, shard) in job.shards.iter_mut().enumerate() {
            if let Some(lease) = shard.lease.take() {
                shard.buffer = Vec::new();
                leases.push((lease.worker, shard_id as ShardId, lease.attempt));
            }
        }
        job.shards_running = 0;
        comm.persist(Persist::JobFinished {
            job_id,
            state: JobState::Cancelled,
            wall_s: job.elapsed_s(now),
        });
        for (worker, shard_id, attempt) in leases {
            let key = LeaseKey {
                job_id,
                shard_id,
                attempt,
            };
            comm.cancel(worker, key, "job cancelled");
            self.release_slot(worker, job_id, shard_id, false);
        }
        comm.job_changed(job_id);
        self.dispatch(now, comm);
        Ok(JobState::Cancelled)
    }

    /// A batch of unit results for a lease. Accepted only from the lease's current holder.
    pub fn on_unit_results(
        &mut self,
        worker: WorkerId,
        lease: LeaseKey,
        results: Vec<(u32, Outcome)>,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Disposition {
        let _ = self.on_heartbeat(worker, now);
        let Some((job, shard_id)) =
            Self::current_lease(&mut self.jobs, &self.workers, worker, lease)
        else {
            if let Some(job) = self.jobs.get_mut(&lease.job_id) {
                job.stale_discarded += results.len() as u64;
            }
            comm.cancel(worker, lease, "stale lease: results discarded");
            return Disposition::Discarded;
        };
        let units = job.plans[shard_id].item_count as usize;
        let shard = &mut job.shards[shard_id];
        if shard.buffer.len() != units {
            shard.buffer = vec![None; units];
        }
        for (unit, outcome) in results {
            // Out-of-range units are ignored; a repeated unit keeps its first result.
            if let Some(slot @ None) = shard.buffer.get_mut(unit as usize) {
                *slot = Some(outcome);
            }
        }
        comm.job_changed(lease.job_id);
        Disposition::Accepted
    }

    /// A lease's shard finished: its results are committed and the worker's slot freed.
    /// Units the worker never reported fail (with the shard's error, if it sent one).
    pub fn on_shard_finished(
        &mut self,
        worker: WorkerId,
        lease: LeaseKey,
        timing: ShardTiming,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Disposition {
        let _ = self.on_heartbeat(worker, now);
        let Some((job, shard_id)) =
            Self::current_lease(&mut self.jobs, &self.workers, worker, lease)
        else {
            comm.cancel(worker, lease, "stale lease: results discarded");
            return Disposition::Discarded;
        };
        let units = job.plans[shard_id].item_count as usize;
        let shard = &mut job.shards[shard_id];
        let mut buffer = std::mem::take(&mut shard.buffer);
        buffer.resize(units, None);
        let missing = if timing.error.is_empty() {
            "worker reported no result for this item"
        } else {
            timing.error.as_str()
        };
        let outcomes: Vec<Outcome> = buffer
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::failed(missing, 0.0)))
            .collect();
        let leased_at = shard.lease.map_or(now, |l| l.leased_at);
        let record = &self.workers[&worker];
        let row = &mut shard.row;
        row.worker_id = worker;
        row.host.clone_from(&record.info.host);
        row.pid = record.info.pid;
        row.attempt = lease.attempt;
        row.run_s = timing.run_s;
        row.cpu_s = timing.cpu_s;
        row.concurrency = timing.concurrency;
        row.item_time_s = outcomes.iter().map(|o| o.duration_s).sum();
        row.queue_s = leased_at
            .saturating_duration_since(job.submitted_at)
            .as_secs_f64();
        row.round_trip_s = now.saturating_duration_since(leased_at).as_secs_f64();
        row.done = true;
        row.error = (!timing.error.is_empty()).then_some(timing.error);
        job.shards_running -= 1;
        comm.persist(Persist::ShardCommitted {
            job_id: lease.job_id,
            shard_id: lease.shard_id,
            row: row.clone(),
            outcomes: outcomes.clone(),
        });
        job.commit_shard(shard_id, outcomes);
        Self::persist_if_finished(job, now, comm);
        comm.accepted(worker, lease);
        self.release_slot(worker, lease.job_id, lease.shard_id, true);
        comm.job_changed(lease.job_id);
        self.dispatch(now, comm);
        Disposition::Accepted
    }

    // ------------------------------------------------------------------ internals

    /// The job and shard index if `lease` is the shard's current lease, held by `worker`.
    fn current_lease<'a>(
        jobs: &'a mut BTreeMap<JobId, Job>,
        workers: &HashMap<WorkerId, WorkerRecord>,
        worker: WorkerId,
        lease: LeaseKey,
    ) -> Option<(&'a mut Job, usize)> {
        if !workers.contains_key(&worker) {
            return None;
        }
        let job = jobs.get_mut(&lease.job_id)?;
        let shard_id = lease.shard_id as usize;
        let current = job.shards.get(shard_id)?.lease?;
        (current.worker == worker && current.attempt == lease.attempt).then_some((job, shard_id))
    }

    /// Moves the job to its final state once every shard is done, and records it.
    pub(super) fn persist_if_finished(job: &mut Job, now: Instant, comm: &mut impl Comm) {
        if job.finish_if_complete(now) {
            comm.persist(Persist::JobFinished {
                job_id: job.id,
                state: job.state,
                wall_s: job.elapsed_s(now),
            });
        }
    }
}
