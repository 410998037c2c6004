//! The scheduler: a pure state machine over jobs, shards, leases and workers.
//!
//! Every change is an `on_<event>` call that takes the current time and a [`Comm`] for its
//! effects; nothing here touches sockets, clocks or disks, so it is tested without them.
//!
//! Invariants (checked by the unit and property tests and the fuzz driver):
//! - a shard is leased to at most one worker at a time, and each lease has a fresh attempt;
//! - results are accepted only from the current lease's (worker, attempt); anything else is
//!   discarded and the sender told to drop it;
//! - a shard's results reach its job only when the shard finishes, so every item is counted
//!   exactly once however many leases were lost on the way;
//! - a worker's load equals the shards it holds ([`pool`] owns that), and a job's counters
//!   change only through its transitions ([`job`] owns those).
//!
//! Nothing here is per item: a job keeps its shards' phases and a running tally, never its
//! items' outcomes, which go to the store as shards commit. Dispatch never scans all shards or
//! workers: jobs with pending shards wait in a queue, workers with a free slot in a set
//! ordered by load.

mod comm;
mod dispatch;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod job;
mod loss;
mod pool;
mod queries;
mod restore;
mod shard;
pub(crate) mod tally;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod testing;

#[cfg(test)]
mod tests;

pub use comm::{Comm, Persist};
pub use pool::WorkerState;
pub use queries::{ShardPhase, ShardView, WorkerView};
pub use restore::{RestoredJob, RestoredState, StoredEnd, StoredShard};

use concur_core::plan::{Plan, default_shard_count};
use concur_core::policy::HostPolicy;
use concur_core::protocol::{ShardTiming, WorkerInfo};
use concur_core::report::{JobRecord, JobState};
use concur_core::spec::Limits;
use concur_core::workload::Workload;
use concur_core::{JobId, JobSpec, LeaseKey, Outcome, SpecError, WorkerId};
use job::Job;
use pool::WorkerPool;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A worker silent this long is declared lost, when not configured.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Unfinished jobs accepted at once, when not configured.
pub const DEFAULT_MAX_ACTIVE_JOBS: u32 = 1000;
/// Worker ids are reserved durably this many at a time.
pub const WORKER_ID_BLOCK: u64 = 1024;

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
    pub host_policy: Arc<HostPolicy>,
    /// A lease older than this is revoked and its shard re-queued, even from a worker that
    /// still heartbeats (a hung executor); `None` = no deadline.
    pub lease_timeout: Option<Duration>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            max_active_jobs: DEFAULT_MAX_ACTIVE_JOBS,
            host_policy: Arc::default(),
            lease_timeout: None,
        }
    }
}

impl SchedulerConfig {
    /// Checks a spec against the limits and host rules. Per-item work: call it outside any
    /// lock.
    ///
    /// # Errors
    /// The first problem found, naming the offending input.
    pub fn validate(&self, spec: &JobSpec) -> Result<(), SchedulerError> {
        spec.validate(&self.limits)?;
        if let Workload::Fetch(fetch) = &spec.workload {
            for url in fetch.urls.iter() {
                self.host_policy.check(url)?;
            }
        }
        Ok(())
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
    /// Every durably reserved worker id is in use; retry once the next block is stored.
    #[error("no worker id can be handed out until the coordinator stores its next block of ids")]
    NoWorkerIds,
}

/// What became of a message from a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Applied to the current lease.
    Accepted,
    /// From a superseded lease, or malformed: discarded, and the worker told to drop it.
    Discarded,
}

/// A job admitted (its id allocated) but not yet stored and inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Its id, never to be reused.
    pub job_id: JobId,
    /// The shard count asked of the planner.
    pub shards: u32,
}

/// A job ready to insert: built outside the scheduler (it allocates per shard).
#[derive(Debug)]
pub struct NewJob(Job);

impl Admission {
    /// Plans the job and builds its state; pure, so it runs outside any lock.
    pub fn build(self, spec: Arc<JobSpec>, now: Instant, submitted_unix_ms: u64) -> NewJob {
        let plan = Plan::new(&spec.workload, self.shards);
        NewJob(Job::new(self.job_id, spec, plan, now, submitted_unix_ms))
    }
}

impl NewJob {
    /// Items in the job.
    pub fn items(&self) -> u64 {
        self.0.plan.items()
    }

    /// The job's summary at submission.
    pub fn record(&self, now: Instant) -> JobRecord {
        self.0.record(now)
    }
}

/// Worker ids: the next one to hand out and the last one durably reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerIds {
    /// The next id to hand out.
    pub next: u64,
    /// The last id stored as reserved.
    pub stored_through: u64,
}

/// The scheduler's whole state.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    jobs: BTreeMap<JobId, Job>,
    /// Jobs that may have pending shards, oldest first; a job with a retry moves to the front.
    /// Entries without pending shards are dropped when reached.
    queue: VecDeque<JobId>,
    pool: WorkerPool,
    next_job_id: JobId,
    /// Admitted jobs not yet inserted; they count against `max_active_jobs`.
    admitting: u32,
    worker_ids: WorkerIds,
    /// The last reservation asked for (it may not be stored yet).
    worker_ids_requested: u64,
    /// When `on_tick` last ran: a longer gap means the coordinator itself stalled.
    last_tick: Option<Instant>,
    /// No new leases while set (the store cannot record them).
    paused: bool,
    /// Fetch jobs' host rules, shared by their assignments; other jobs get `no_rules`.
    no_rules: Arc<HostPolicy>,
}

impl Scheduler {
    /// An empty scheduler whose worker ids need no durable reservation (in-memory state).
    pub fn new(config: SchedulerConfig) -> Self {
        Self::with_worker_ids(
            config,
            JobId(1),
            WorkerIds {
                next: 1,
                stored_through: u64::MAX,
            },
        )
    }

    fn with_worker_ids(config: SchedulerConfig, next_job_id: JobId, ids: WorkerIds) -> Self {
        Self {
            config,
            jobs: BTreeMap::new(),
            queue: VecDeque::new(),
            pool: WorkerPool::default(),
            next_job_id,
            admitting: 0,
            worker_ids: ids,
            worker_ids_requested: ids.stored_through,
            last_tick: None,
            paused: false,
            no_rules: Arc::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Stops (or resumes) handing out leases, e.g. while the store cannot record them.
    pub fn set_paused(&mut self, paused: bool, now: Instant, comm: &mut impl Comm) {
        self.paused = paused;
        if !paused {
            self.dispatch(now, comm);
        }
    }

    // ------------------------------------------------------------------ workers

    /// A worker registered; it is idle and may get shards at once.
    ///
    /// # Errors
    /// [`SchedulerError::NoWorkerIds`] when the durably reserved ids ran out.
    pub fn on_worker_attached(
        &mut self,
        info: WorkerInfo,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Result<WorkerId, SchedulerError> {
        let ids = &mut self.worker_ids;
        if ids.next > ids.stored_through {
            return Err(SchedulerError::NoWorkerIds);
        }
        let id = WorkerId(ids.next);
        ids.next += 1;
        // Ask for the next block well before this one runs out.
        let left = ids.stored_through.saturating_sub(ids.next);
        if left < WORKER_ID_BLOCK / 2 && self.worker_ids_requested == ids.stored_through {
            self.worker_ids_requested = ids.stored_through.saturating_add(WORKER_ID_BLOCK);
            comm.persist(Persist::WorkerIdsReserved {
                through: WorkerId(self.worker_ids_requested),
            });
        }
        self.pool.attach(id, info, now);
        self.dispatch(now, comm);
        Ok(id)
    }

    /// A reservation of worker ids is stored: they may be handed out.
    pub fn on_worker_ids_stored(&mut self, through: WorkerId) {
        let ids = &mut self.worker_ids;
        ids.stored_through = ids.stored_through.max(through.get());
    }

    /// Any message from a worker proves it alive.
    ///
    /// # Errors
    /// [`SchedulerError::UnknownWorker`] for a worker declared lost or never registered.
    pub fn on_heartbeat(&mut self, worker: WorkerId, now: Instant) -> Result<(), SchedulerError> {
        self.pool
            .seen(worker, now)
            .then_some(())
            .ok_or(SchedulerError::UnknownWorker(worker))
    }

    /// A heartbeat said how many shard executions the worker still runs. A stalled worker
    /// whose count no longer exceeds the shards it holds has let go of its hung execution:
    /// it takes shards again.
    pub fn on_executions_reported(
        &mut self,
        worker: WorkerId,
        running: u32,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        let Some(record) = self.pool.get(worker) else {
            return;
        };
        if record.state == WorkerState::Stalled && running <= record.load() {
            self.pool.set_state(worker, WorkerState::Active);
            self.dispatch(now, comm);
        }
    }

    /// A worker is shutting down: it gets no new shards and keeps the ones it runs.
    ///
    /// # Errors
    /// [`SchedulerError::UnknownWorker`] for an unknown worker.
    pub fn on_worker_draining(&mut self, worker: WorkerId) -> Result<(), SchedulerError> {
        if !self.pool.contains(worker) {
            return Err(SchedulerError::UnknownWorker(worker));
        }
        self.pool.set_state(worker, WorkerState::Draining);
        Ok(())
    }

    // ------------------------------------------------------------------ jobs

    /// Admits a job: checks the limit on unfinished jobs, allocates its id and picks its shard
    /// count (one per attached slot when the spec gives none, more for big jobs). The spec must
    /// have passed [`SchedulerConfig::validate`].
    ///
    /// # Errors
    /// [`SchedulerError::TooManyJobs`].
    pub fn admit(&mut self, spec: &JobSpec) -> Result<Admission, SchedulerError> {
        let active = self.active_jobs() + self.admitting;
        if active >= self.config.max_active_jobs {
            return Err(SchedulerError::TooManyJobs {
                active,
                limit: self.config.max_active_jobs,
            });
        }
        let shards = spec.shards.unwrap_or_else(|| {
            default_shard_count(
                &spec.workload,
                self.pool.total_slots(),
                self.config.limits.max_shards,
            )
        });
        let job_id = self.next_job_id;
        self.next_job_id = JobId(job_id.get() + 1);
        self.admitting += 1;
        Ok(Admission { job_id, shards })
    }

    /// An admitted job could not be stored: it will never be inserted (its id stays unused).
    pub fn on_admission_dropped(&mut self) {
        self.admitting = self.admitting.saturating_sub(1);
    }

    /// Inserts an admitted job, stored by now, and leases its shards to free workers.
    pub fn on_job_submitted(&mut self, job: NewJob, now: Instant, comm: &mut impl Comm) {
        let NewJob(job) = job;
        let id = job.id;
        self.admitting = self.admitting.saturating_sub(1);
        self.next_job_id = self.next_job_id.max(JobId(id.get() + 1));
        self.jobs.insert(id, job);
        self.queue.push_back(id);
        comm.job_changed(id);
        self.dispatch(now, comm);
    }

    /// Validates, admits and inserts a job in one step (for tests and tools; the service
    /// stores a job between admitting and inserting it).
    ///
    /// # Errors
    /// An invalid spec or too many unfinished jobs.
    pub fn submit(
        &mut self,
        spec: JobSpec,
        now: Instant,
        unix_ms: u64,
        comm: &mut impl Comm,
    ) -> Result<JobId, SchedulerError> {
        self.config.validate(&spec)?;
        let admission = self.admit(&spec)?;
        self.on_job_submitted(admission.build(Arc::new(spec), now, unix_ms), now, comm);
        Ok(admission.job_id)
    }

    /// Cancels a job: pending shards are dropped, running ones cancelled on their workers.
    /// Cancelling a finished job changes nothing and returns its final state.
    ///
    /// # Errors
    /// [`SchedulerError::UnknownJob`].
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
        let Some(leases) = job.cancel(now) else {
            return Ok(job.state());
        };
        comm.persist(job.cancelled_record(now));
        for (worker, lease) in leases {
            comm.cancel(worker, lease, "job cancelled");
            self.pool.release(worker, job_id, lease.shard_id, false);
        }
        comm.job_changed(job_id);
        self.dispatch(now, comm);
        Ok(JobState::Cancelled)
    }

    /// A batch of unit results for a lease. Buffered only from the lease's current holder.
    pub fn on_unit_results(
        &mut self,
        worker: WorkerId,
        lease: LeaseKey,
        results: Vec<(u32, Outcome)>,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Disposition {
        self.pool.seen(worker, now);
        let count = results.len() as u64;
        let (current, stored_summary) = match self.jobs.get_mut(&lease.job_id) {
            Some(job) => (
                job.buffer_results(worker, lease, results),
                job.state().is_final(),
            ),
            None => (false, true),
        };
        if current {
            return Disposition::Accepted;
        }
        if stored_summary && count > 0 {
            // The job's summary is (or is about to be) stored: count the refusal there too.
            comm.persist(Persist::StaleResults {
                job_id: lease.job_id,
                count,
            });
        }
        comm.cancel(worker, lease, "stale lease: results discarded");
        Disposition::Discarded
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
        self.pool.seen(worker, now);
        let committed = match (self.pool.get(worker), self.jobs.get_mut(&lease.job_id)) {
            (Some(record), Some(job)) => job
                .commit(&record.info, worker, lease, timing, now)
                .map(|event| (event, job.finish_if_complete(now))),
            _ => None,
        };
        let Some((event, finished)) = committed else {
            comm.cancel(worker, lease, "stale lease: results discarded");
            return Disposition::Discarded;
        };
        comm.persist(event);
        if let Some(finished) = finished {
            comm.persist(finished);
        }
        comm.accepted(worker, lease);
        self.pool
            .release(worker, lease.job_id, lease.shard_id, true);
        comm.job_changed(lease.job_id);
        self.dispatch(now, comm);
        Disposition::Accepted
    }

    /// Forgets a finished job once its final state is stored (its report is served from the
    /// store from then on). Returns it so the caller can drop it outside any lock.
    pub fn evict(&mut self, job_id: JobId) -> Option<NewJob> {
        if self.jobs.get(&job_id)?.state().is_final() {
            self.jobs.remove(&job_id).map(NewJob)
        } else {
            None
        }
    }

    fn active_jobs(&self) -> u32 {
        self.jobs.values().filter(|j| !j.state().is_final()).count() as u32
    }
}
