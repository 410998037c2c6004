//! The nouns of the coordinator–worker protocol, shared by both sides: what a worker says
//! about itself, what a lease hands it, and what it reports when a shard ends. The wire forms
//! live in `concur-proto`; these are the domain forms both crates use.

use crate::ids::LeaseKey;
use crate::plan::{ShardPlan, Unit, shard_units};
use crate::policy::HostPolicy;
use crate::spec::JobSpec;
use crate::strategy::Strategy;
use crate::workload::Workload;
use std::sync::Arc;

/// What a worker says about itself when it registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// Cores on that host.
    pub cores: u32,
    /// Shards it runs at once (its slots).
    pub slots: u32,
    /// Its concur version.
    pub version: String,
}

/// A shard handed to a worker under a lease. Cheap to make: it shares the job's spec, and the
/// units (with their URLs) are built only when the assignment is encoded for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// What the worker must echo in its results.
    pub lease: LeaseKey,
    /// The job's spec: workload, strategy, concurrency.
    pub spec: Arc<JobSpec>,
    /// The shard's share of the job.
    pub plan: ShardPlan,
    /// Host rules fetch units must obey, also on redirects and after name resolution.
    pub fetch_policy: Arc<HostPolicy>,
}

impl Assignment {
    /// The shard's units, in order.
    pub fn units(&self) -> Vec<Unit> {
        shard_units(&self.spec.workload, &self.plan)
    }

    /// How to run the units.
    pub fn strategy(&self) -> Strategy {
        self.spec.strategy
    }

    /// Threads or tasks to use.
    pub fn concurrency(&self) -> u32 {
        self.spec.concurrency
    }

    /// Per-request timeout and body cap of fetch units (zeros for other workloads).
    pub fn fetch_limits(&self) -> (u64, u64) {
        match &self.spec.workload {
            Workload::Fetch(fetch) => (fetch.timeout_ms, fetch.max_body_bytes),
            Workload::SumSquares(_) => (0, 0),
        }
    }
}

/// How a shard's execution went, as the worker measured it with its own clock.
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
