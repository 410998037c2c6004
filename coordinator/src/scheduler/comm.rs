//! The scheduler's only way out: messages to workers, job-change notices and the durable
//! changes to store.
//!
//! The gRPC layer implements [`Comm`] by queueing messages for the worker streams and handing
//! [`Persist`] events to the store's writer; tests implement it by recording.

use concur_core::protocol::Assignment;
use concur_core::report::{JobRecord, ShardRow};
use concur_core::{JobId, LeaseKey, Outcome, WorkerId};

/// A change that must survive a coordinator restart. Submissions are not here: a job is
/// stored before the scheduler ever sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Persist {
    /// A job's first shard was leased: it is running.
    JobStarted {
        /// The job.
        job_id: JobId,
    },
    /// A shard was leased with a new attempt number.
    ShardLeased {
        /// The lease.
        lease: LeaseKey,
    },
    /// A shard finished: its report row and its units' outcomes, in unit order (unit `u` is
    /// item `first_item + u`).
    ShardCommitted {
        /// The lease that finished it.
        lease: LeaseKey,
        /// The shard's first item.
        first_item: u64,
        /// Its report row.
        row: ShardRow,
        /// Its units' outcomes.
        outcomes: Vec<Outcome>,
    },
    /// A shard ran out of retries: every one of its items failed with the row's error.
    ShardGaveUp {
        /// The job.
        job_id: JobId,
        /// The shard's first item.
        first_item: u64,
        /// Its report row, with the error.
        row: ShardRow,
    },
    /// Unit results of a finished (or forgotten) job were refused as stale: counted in its
    /// stored summary, as evidence of fencing.
    StaleResults {
        /// The job.
        job_id: JobId,
        /// Results refused.
        count: u64,
    },
    /// A job reached a final state; its final summary.
    JobFinished {
        /// The summary.
        record: JobRecord,
    },
    /// Worker ids up to and including `through` may be handed out: never again after a
    /// restart.
    WorkerIdsReserved {
        /// The last id reserved.
        through: WorkerId,
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
    /// Tell a worker its shard's results are committed. The caller delivers it only once the
    /// `persist` events before it are stored.
    fn accepted(&mut self, worker: WorkerId, lease: LeaseKey);
    /// Record a durable change.
    fn persist(&mut self, event: Persist);
}
