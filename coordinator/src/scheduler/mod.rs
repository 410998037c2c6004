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
//! Layout: `jobs` and `workers` (the events), `dispatch`, `loss` (lost workers, expired
//! leases), `job`, `shard` and `tally` (a job's state), `pool` (the workers), `queries`,
//! `restore`.
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
mod jobs;
mod loss;
mod pool;
mod queries;
mod restore;
mod shard;
pub(crate) mod tally;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod testing;
mod workers;

#[cfg(test)]
mod tests;

pub use comm::{Comm, Persist};
pub use pool::WorkerState;
pub use queries::WorkerView;
pub use restore::{RestoredJob, RestoredState, StoredEnd, StoredShard};

use concur_core::plan::Plan;
use concur_core::policy::HostPolicy;
use concur_core::report::JobRecord;
use concur_core::spec::Limits;
use concur_core::workload::Workload;
use concur_core::{JobId, JobSpec, SpecError, WorkerId};
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
    /// An exec job no attached worker may run; retry once such a worker attached.
    #[error("no attached worker allows exec of {0}: start workers with --allow-exec")]
    ExecNotAllowed(String),
    /// A paced job (auto concurrency, per-host caps) while every attached worker predates
    /// pacing and would ignore it.
    #[error(
        "no attached worker supports --concurrency auto or per-host limits: upgrade the workers (protocol revision 3 or later)"
    )]
    PacingUnsupported,
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

/// Why leasing may be paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// The store cannot write.
    StoreFailing,
    /// The store's writer lags too far behind the scheduler: more leases would only pile up
    /// results in memory.
    StoreBehind,
}

#[derive(Debug, Default, Clone, Copy)]
struct Pause {
    store_failing: bool,
    store_behind: bool,
}

impl Pause {
    fn any(self) -> bool {
        self.store_failing || self.store_behind
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
    /// No new leases while any reason holds (the store cannot record them, or lags behind).
    paused: Pause,
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
            paused: Pause::default(),
            no_rules: Arc::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Stops (or resumes) handing out leases for `reason`; leasing resumes when no reason
    /// is left.
    pub fn set_paused(
        &mut self,
        reason: PauseReason,
        paused: bool,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        match reason {
            PauseReason::StoreFailing => self.paused.store_failing = paused,
            PauseReason::StoreBehind => self.paused.store_behind = paused,
        }
        if !self.paused.any() {
            self.dispatch(now, comm);
        }
    }

    /// Whether leasing is paused for `reason`.
    pub fn is_paused(&self, reason: PauseReason) -> bool {
        match reason {
            PauseReason::StoreFailing => self.paused.store_failing,
            PauseReason::StoreBehind => self.paused.store_behind,
        }
    }
}
