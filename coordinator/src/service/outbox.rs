//! The scheduler's effects during one event, collected by the gRPC layer's [`Comm`]: messages
//! for workers (sent at once), acknowledgements and job records (held until the store has
//! what they promise), and the durable changes to write.

use crate::scheduler::{Comm, Persist};
use crate::store::WriteOp;
use concur_core::protocol::{Assignment, ToWorker};
use concur_core::{JobId, LeaseKey, WorkerId};

/// Collects the scheduler's effects during one event.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Sent at once, in order.
    pub(crate) messages: Vec<(WorkerId, ToWorker)>,
    /// Sent once the changes before them are stored.
    pub(crate) accepted: Vec<(WorkerId, LeaseKey)>,
    /// Jobs whose record changed, in first-change order.
    pub(crate) changed: Vec<JobId>,
    /// Durable changes, in order.
    pub(crate) persist: Vec<WriteOp>,
}

impl Comm for Outbox {
    fn assign(&mut self, worker: WorkerId, assignment: Assignment) {
        self.messages
            .push((worker, ToWorker::Assign(vec![assignment])));
    }

    fn cancel(&mut self, worker: WorkerId, lease: LeaseKey, reason: &str) {
        self.messages
            .push((worker, ToWorker::Cancel(lease, reason.to_string())));
    }

    fn job_changed(&mut self, job_id: JobId) {
        if !self.changed.contains(&job_id) {
            self.changed.push(job_id);
        }
    }

    fn accepted(&mut self, worker: WorkerId, lease: LeaseKey) {
        self.accepted.push((worker, lease));
    }

    fn persist(&mut self, event: Persist) {
        self.persist.push(WriteOp::Persist(event));
    }
}
