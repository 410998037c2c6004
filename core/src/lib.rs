//! The domain of concur, free of gRPC and sockets.
//!
//! Layout:
//! - [`ids`]: job, worker, shard and attempt ids, and the lease key.
//! - [`protocol`]: what workers register with, what a lease hands them, what they report.
//! - [`strategy`]: the in-process strategies a worker can run a shard with.
//! - [`workload`]: the two workloads (`fetch`, `sum-squares`) and their input parsing.
//! - [`spec`]: a validated job specification.
//! - [`urls`]: a compact list of URLs.
//! - [`kernel`]: the sum-of-squares CPU kernel and its closed form.
//! - [`policy`]: which hosts fetch jobs may target.
//! - [`plan`]: splitting a job's items into shards (and a huge n into sub-ranges).
//! - [`outcome`]: results of units and items.
//! - [`pacing`]: `--concurrency auto` and per-host politeness.
//! - [`token`]: what makes a usable shared-secret token.
//! - [`report`]: the job report and its parallelism arithmetic.
//! - [`logging`]: log output (text without escape codes off a terminal, or JSON lines).
//! - [`fit`]: Amdahl and USL fits of measured speedups, medians and spreads.
//! - [`error`]: why a job specification was refused.
//! - [`config`]: reading config files, the same way in every binary.

pub mod config;
pub mod error;
pub mod exec;
pub mod exposition;
pub mod fit;
pub mod ids;
pub mod kernel;
pub mod logging;
pub mod outcome;
pub mod pacing;
pub mod plan;
pub mod policy;
pub mod protocol;
pub mod report;
pub mod spec;
pub mod strategy;
pub mod token;
pub mod urls;
pub mod workload;

pub use error::{SpecError, SpecResult};
pub use ids::{Attempt, JobId, LeaseKey, ShardId, WorkerId};
pub use outcome::{ItemOutcome, Outcome, UnitOutcome};
pub use spec::JobSpec;
pub use strategy::Strategy;
pub use urls::UrlList;
pub use workload::{NumberSpec, Workload};
