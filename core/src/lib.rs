//! The domain of concur, free of gRPC and sockets.
//!
//! Layout:
//! - [`strategy`]: the in-process strategies a worker can run a shard with.
//! - [`workload`]: the two workloads (`fetch`, `sum-squares`) and their input parsing.
//! - [`spec`]: a validated job specification.
//! - [`kernel`]: the sum-of-squares CPU kernel and its closed form.
//! - [`policy`]: which hosts fetch jobs may target.
//! - [`plan`]: splitting a job's items into shards (and a huge n into sub-ranges).
//! - [`outcome`]: results of units and items.
//! - [`token`]: what makes a usable shared-secret token.
//! - [`report`]: the job report and its parallelism arithmetic.
//! - [`fit`]: Amdahl and USL fits of measured speedups, medians and spreads.
//! - [`error`]: why a job specification was refused.

pub mod error;
pub mod fit;
pub mod kernel;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod report;
pub mod spec;
pub mod strategy;
pub mod token;
pub mod workload;

pub use error::{SpecError, SpecResult};
pub use outcome::{ItemOutcome, Outcome, UnitOutcome};
pub use spec::JobSpec;
pub use strategy::Strategy;
pub use workload::{NumberSpec, Workload};

/// Identifies a job; assigned by the coordinator in submission order.
pub type JobId = u64;
/// Identifies an attached worker; never reused within one coordinator's lifetime.
pub type WorkerId = u64;
/// Index of a shard within its job.
pub type ShardId = u32;
/// Lease attempt of a shard; the first lease is attempt 1.
pub type Attempt = u32;
