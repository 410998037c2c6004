//! The gRPC adapter: decodes requests, applies them to the scheduler, encodes answers.
//!
//! Layout:
//! - `shared`: the scheduler plus worker channels, job views and effects held until stored.
//! - `outbox`: the scheduler's effects during one event, and worker messages in domain form.
//! - `jobs`: the client-facing `JobService`.
//! - `report`: streaming a job's shards and items.
//! - `attach`: the worker-facing `Attach` stream.

mod attach;
mod jobs;
mod outbox;
mod report;
mod shared;

pub(crate) use report::timeline;
pub use shared::Shared;

use crate::scheduler::SchedulerError;
use std::sync::Arc;
use tonic::Status;

/// Implements both gRPC services over one shared state.
#[derive(Debug, Clone)]
pub struct CoordinatorService {
    shared: Arc<Shared>,
}

impl CoordinatorService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The one place scheduler errors become gRPC status codes.
fn status(err: SchedulerError) -> Status {
    match err {
        SchedulerError::InvalidSpec(e) => Status::invalid_argument(e.to_string()),
        SchedulerError::UnknownJob(_) | SchedulerError::UnknownWorker(_) => {
            Status::not_found(err.to_string())
        }
        SchedulerError::TooManyJobs { .. } => Status::resource_exhausted(err.to_string()),
        SchedulerError::NoWorkerIds => Status::unavailable(err.to_string()),
        SchedulerError::ExecNotAllowed(_) | SchedulerError::PacingUnsupported => {
            Status::failed_precondition(err.to_string())
        }
    }
}
