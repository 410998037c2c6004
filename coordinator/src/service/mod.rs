//! The gRPC adapter: decodes requests, applies them to the scheduler, encodes answers.
//!
//! Layout:
//! - `shared`: the scheduler plus worker channels and job watchers, behind one lock.
//! - `jobs`: the client-facing `JobService`.
//! - `attach`: the worker-facing `Attach` stream.
//! - `encode`: domain to wire conversions for coordinator-only types.

mod attach;
mod encode;
mod jobs;
mod shared;

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
    }
}
