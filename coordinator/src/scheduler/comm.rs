//! The scheduler's only way out: messages to workers and job-change notices.
//!
//! The gRPC layer implements [`Comm`] by queueing messages for the worker streams; tests
//! implement it by recording them.

use concur_core::plan::Unit;
use concur_core::policy::HostPolicy;
use concur_core::report::{JobState, ShardRow};
use concur_core::{Attempt, JobId, JobSpec, Outcome, ShardId, Strategy, WorkerId};

/// Identifies one lease: a shard of a job at one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseKey {
    /// The job.
    pub job_id: JobId,
    /// The shard within the job.
    pub shard_id: ShardId,
    /// The attempt this lease stands for.
    pub attempt: Attempt,
}

/// A shard handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// What the worker must echo in its results.
    pub lease: LeaseKey,
    /// How to run the units.
    pub strategy: Strategy,
    /// Threads or tasks to use.
    pub concurrency: u32,
    /// Per-request timeout for fetch units.
    pub fetch_timeout_ms: u64,
    /// Body cap for fetch units.
    pub fetch_max_body_bytes: u64,
    /// Host rules fetch units must obey, also on redirects and after name resolution.
    pub fetch_policy: HostPolicy,
    /// The work itself.
    pub units: Vec<Unit>,
}

/// A change that must survive a coordinator restart.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    /// A job was accepted and planned into `shards` shards.
    JobSubmitted {
        /// The job.
        job_id: JobId,
        /// Its spec.
        spec: JobSpec,
        /// Shard count asked of the planner at submission (the plan is recomputed from it).
        shards: u32,
        /// Unix milliseconds at submission.
        submitted_unix_ms: u64,
    },
    /// A shard was leased with a new attempt number.
    ShardLeased {
        /// The lease.
        lease: LeaseKey,
    },
    /// A shard finished (or gave up): its report row and unit outcomes, in unit order.
    ShardCommitted {
        /// The job.
        job_id: JobId,
        /// The shard.
        shard_id: ShardId,
        /// Its report row.
        row: ShardRow,
        /// Its units' outcomes.
        outcomes: Vec<Outcome>,
    },
    /// A job reached a final state.
    JobFinished {
        /// The job.
        job_id: JobId,
        /// Its final state.
        state: JobState,
        /// Its wall time.
        wall_s: f64,
    },
}

/// Outgoing effects of scheduler events.
pub trait Comm {
    /// Send a shard to a worker.
    fn assign(&mut self, worker: WorkerId, assignment: Assignment);
    /// Tell a worker to stop (or drop the results of) a lease.
    fn cancel(&mut self, worker: WorkerId, lease: LeaseKey, reason: &str);
    /// A job's progress or state changed.
    fn job_changed(&mut self, job_id: JobId);
    /// Tell a worker its shard's results are committed (sent only after `persist` succeeded).
    fn accepted(&mut self, worker: WorkerId, lease: LeaseKey);
    /// Record a durable change; the caller must store it before delivering any message.
    fn persist(&mut self, event: Persist);
}
