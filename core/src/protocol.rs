//! The nouns of the coordinator–worker protocol, shared by both sides: what a worker says
//! about itself, what a lease hands it, and what it reports when a shard ends. The wire forms
//! live in `concur-proto`; these are the domain forms both crates use.

use crate::exec::ExecPermission;
use crate::ids::{LeaseKey, WorkerId};
use crate::pacing::Pacing;
use crate::plan::{ShardPlan, Unit, shard_units};
use crate::policy::HostPolicy;
use crate::spec::JobSpec;
use crate::strategy::Strategy;
use crate::workload::Workload;
use std::sync::Arc;

/// The protocol revision this build speaks. Revision 3 added pacing (see [`PACING_REVISION`]).
/// Revision 2 added several assignments or
/// acknowledgements per message (`AssignShards`, `ShardsAccepted`), unit results riding with
/// `ShardFinished`, and the prefetch window; a peer of revision 0 (the first release) gets one
/// of each per message and its results apart.
pub const PROTOCOL_REVISION: u32 = 3;

/// The first revision whose workers honour a job's pacing (revision 3: `--concurrency auto`,
/// per-host caps and delays). Older workers would ignore it — run the auto ceiling as a fixed
/// concurrency, send to hosts without their caps — so paced shards go only to newer ones.
pub const PACING_REVISION: u32 = 3;

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
    /// Leases it wants queued beside its running slots (its prefetch window), so no slot
    /// waits for a round trip to the coordinator.
    pub prefetch: u32,
    /// Its concur version.
    pub version: String,
    /// The protocol revision it speaks.
    pub protocol: u32,
    /// Which programs it runs for exec jobs (none unless started with `--allow-exec`).
    pub exec: ExecPermission,
}

impl WorkerInfo {
    /// True when this worker may run `spec`'s shards: it allows an exec job's program, and it
    /// honours a paced job's pacing.
    pub fn can_run(&self, spec: &JobSpec) -> bool {
        let exec_allowed = match &spec.workload {
            Workload::Exec(exec) => self.exec.allows(&exec.program),
            Workload::Fetch(_) | Workload::SumSquares(_) => true,
        };
        let paces = spec.pacing == Pacing::default() || self.protocol >= PACING_REVISION;
        exec_allowed && paces
    }

    /// True when only some workers may run `spec` (see [`WorkerInfo::can_run`]).
    pub fn restricted(spec: &JobSpec) -> bool {
        matches!(spec.workload, Workload::Exec(_)) || spec.pacing != Pacing::default()
    }
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

    /// Threads or tasks to use (the ceiling, when the job's pacing is auto).
    pub fn concurrency(&self) -> u32 {
        self.spec.concurrency
    }

    /// Auto-tuned concurrency and per-host politeness.
    pub fn pacing(&self) -> Pacing {
        self.spec.pacing
    }

    /// Per-request timeout and body cap of fetch units (zeros for other workloads).
    pub fn fetch_limits(&self) -> (u64, u64) {
        match &self.spec.workload {
            Workload::Fetch(fetch) => (fetch.timeout_ms, fetch.max_body_bytes),
            Workload::Exec(_) | Workload::SumSquares(_) => (0, 0),
        }
    }

    /// The program and argument template of an exec job.
    pub fn exec_command(&self) -> Option<ExecCommand> {
        match &self.spec.workload {
            Workload::Exec(exec) => Some(ExecCommand {
                program: exec.program.clone(),
                args: exec.args.clone(),
                timeout_ms: exec.timeout_ms,
            }),
            Workload::Fetch(_) | Workload::SumSquares(_) => None,
        }
    }
}

/// What every unit of an exec shard runs: the program, its argument template and the
/// per-item timeout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecCommand {
    /// Program name or path.
    pub program: String,
    /// Arguments, `{}` standing for the item.
    pub args: Vec<String>,
    /// Per-item timeout in milliseconds.
    pub timeout_ms: u64,
}

/// An assignment as a worker receives it: its units spelled out (the coordinator's
/// [`Assignment`] builds them only when it encodes the message).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedAssignment {
    /// What the worker must echo in its results.
    pub lease: LeaseKey,
    /// How to run the units, or why the strategy is not known here.
    pub strategy: Result<Strategy, String>,
    /// Threads or tasks to use.
    pub concurrency: u32,
    /// The units, in order.
    pub units: Vec<Unit>,
    /// Per-request timeout of fetch units, in milliseconds.
    pub fetch_timeout_ms: u64,
    /// Body cap of fetch units.
    pub fetch_max_body_bytes: u64,
    /// Host rules fetch units must obey, also on redirects and after name resolution.
    pub fetch_policy: HostPolicy,
    /// The command of exec units.
    pub exec: Option<ExecCommand>,
    /// Auto-tuned concurrency (`concurrency` is then the ceiling) and per-host politeness.
    pub pacing: Pacing,
}

/// A message from the coordinator to a worker, in domain form: it becomes protobuf only in
/// the worker's own stream, outside the coordinator's lock.
#[derive(Debug, Clone, PartialEq)]
pub enum ToWorker {
    /// The answer to its registration.
    Registered {
        /// Its id.
        worker_id: WorkerId,
        /// How often it must send a heartbeat.
        heartbeat_interval_ms: u64,
    },
    /// Shards to run (several in one message for workers of protocol revision 2 or later).
    Assign(Vec<Assignment>),
    /// Stop a lease (or drop its results), with the reason.
    Cancel(LeaseKey, String),
    /// Shards whose results are stored: the worker may forget them.
    Accepted(Vec<LeaseKey>),
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
    /// From the assignment's receipt to the shard's start (its wait in the prefetch queue).
    pub started_after_s: f64,
    /// From the assignment's receipt to the sending of its end; 0 from workers that do not
    /// say (the first releases).
    pub sent_after_s: f64,
    /// The worker slot (0-based) that ran it.
    pub slot: u32,
}
