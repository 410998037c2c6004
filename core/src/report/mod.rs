//! The job report: raw timings from coordinator and workers, and the figures derived from them.
//! A report is a summary (computed from running totals, never from the items) plus shard rows
//! and item rows that are streamed, so a job of millions of items is reported in constant memory.
//!
//! All arithmetic lives here so the CLI, `compare` and tests agree on what "parallelism" means:
//! - process parallelism = sum(shard run time) / job wall
//! - task parallelism (per shard) = sum(item time in shard) / shard run time
//! - effective parallelism = total item time / job wall
//! - coordination overhead = job wall - longest shard run time
//! - CPU utilisation = CPU time / run time

pub mod anchor;

use crate::Strategy;
use crate::ids::{Attempt, JobId, ShardId, WorkerId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted, no shard leased yet.
    Pending,
    /// At least one shard leased or done.
    Running,
    /// Every item ran and succeeded.
    Succeeded,
    /// Finished, but some items failed or shards ran out of retries.
    Failed,
    /// Cancelled by a user before it finished.
    Cancelled,
}

impl JobState {
    /// True once the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// The state's name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            JobState::Pending,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
        .ok_or_else(|| {
            format!("unknown job state '{text}' (expected pending, running, succeeded, failed or cancelled)")
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One shard's row of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardRow {
    /// Index of the shard in its job.
    pub shard_id: ShardId,
    /// Worker that ran the final attempt (0 if never leased).
    pub worker_id: WorkerId,
    /// That worker's host name.
    pub host: String,
    /// That worker's process id.
    pub pid: u32,
    /// Attempt number of the final lease (0 if never leased).
    pub attempt: Attempt,
    /// Units in the shard.
    pub items: u64,
    /// Worker clock: shard start to end.
    pub run_s: f64,
    /// Worker clock: process CPU time while the shard ran.
    pub cpu_s: f64,
    /// Coordinator clock: submission to lease.
    pub queue_s: f64,
    /// Coordinator clock: lease to result.
    pub round_trip_s: f64,
    /// Coordinator clock: when its execution started, in seconds after the job's submission
    /// (anchored at the lease and the result's arrival; see [`anchor`]).
    #[serde(default)]
    pub start_s: f64,
    /// How far `start_s` may be off either way.
    #[serde(default)]
    pub start_error_s: f64,
    /// The worker slot (0-based) that ran it.
    #[serde(default)]
    pub slot: u32,
    /// Sum of the shard's unit durations.
    pub item_time_s: f64,
    /// In-process concurrency the worker used.
    pub concurrency: u32,
    /// item time / run time: how much the strategy overlapped inside the process.
    pub task_parallelism: f64,
    /// CPU time / run time.
    pub cpu_utilisation: f64,
    /// Whether the shard has finished.
    pub done: bool,
    /// Why the shard gave up, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One item's row of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemRow {
    /// The URL, n, or exec item.
    pub input: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Worker-clock time spent on it (summed over parts for split items).
    pub duration_s: f64,
    /// sum-squares: the exact value in decimal (u128 does not fit a JSON number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// fetch: HTTP status, 0 when there was no response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// fetch: body bytes read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// exec: the child's CPU time (user + system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    /// exec: bytes the child wrote to stderr (`bytes` counts its stdout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_bytes: Option<u64>,
    /// exec: worker clock, when it started, in seconds after its shard started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_s: Option<f64>,
}

/// The job-level facts a summary starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHeader {
    /// The job.
    pub job_id: JobId,
    /// Its state.
    pub state: JobState,
    /// `fetch` or `sum-squares`.
    pub workload: String,
    /// Strategy name.
    pub strategy: String,
    /// Requested in-process concurrency; 0 = auto (tuned by each worker).
    pub concurrency: u32,
    /// Free-form label.
    pub label: String,
    /// Coordinator clock: submission to the last result (or to now, while running).
    pub wall_s: f64,
    /// Unit results refused because their lease had been superseded.
    pub stale_results_discarded: u64,
}

/// How a job's items stand. Unfinished items (not yet run, or never run because the job was
/// cancelled) are neither ok nor failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    /// Items in the job.
    pub total: u64,
    /// Items committed as succeeded.
    pub ok: u64,
    /// Items committed as failed (including those of shards that ran out of retries).
    pub failed: u64,
}

impl ItemCounts {
    /// Items neither ok nor failed yet.
    pub fn unfinished(&self) -> u64 {
        self.total.saturating_sub(self.ok + self.failed)
    }
}

/// Timing summed over a job's committed shards, kept as the shards commit so that a summary
/// never needs the shards themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTotals {
    /// Sum of item durations (worker clocks).
    pub item_time_s: f64,
    /// Sum of shard run times (worker clocks).
    pub shard_time_s: f64,
    /// Sum of shard CPU times.
    pub cpu_s: f64,
    /// The longest shard run time.
    pub longest_run_s: f64,
    /// Distinct worker processes that ran committed shards.
    pub processes: u32,
    /// Distinct hosts among them.
    pub hosts: u32,
}

impl JobTotals {
    /// Adds one committed shard's row (`processes` and `hosts` are counted by the caller, who
    /// knows which workers and hosts it has seen).
    pub fn add_shard(&mut self, row: &ShardRow) {
        self.item_time_s += row.item_time_s;
        self.shard_time_s += row.run_s;
        self.cpu_s += row.cpu_s;
        self.longest_run_s = self.longest_run_s.max(row.run_s);
    }
}

/// A job's summary as printed by `concur-cli job` and `submit --wait` (the JSON output adds
/// `shards` and `items` after these keys, streamed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job.
    pub job_id: JobId,
    /// Its state.
    pub state: JobState,
    /// `fetch` or `sum-squares`.
    pub workload: String,
    /// Strategy name.
    pub strategy: String,
    /// Requested in-process concurrency; 0 = auto (tuned by each worker).
    pub concurrency: u32,
    /// Free-form label.
    pub label: String,
    /// Items in the job.
    pub items_total: u64,
    /// Items that succeeded.
    pub items_ok: u64,
    /// Items that failed (never counts items that have not finished).
    pub items_failed: u64,
    /// Items not finished: still to run, or never run because the job was cancelled.
    pub items_unfinished: u64,
    /// Distinct worker processes that ran shards.
    pub processes: u32,
    /// Distinct hosts that ran shards.
    pub hosts: u32,
    /// Coordinator clock: submission to the last result.
    pub wall_s: f64,
    /// Sum of item durations.
    pub item_time_s: f64,
    /// Sum of shard run times.
    pub shard_time_s: f64,
    /// Sum of shard CPU times.
    pub cpu_s: f64,
    /// shard time / wall.
    pub process_parallelism: f64,
    /// item time / wall.
    pub effective_parallelism: f64,
    /// wall - longest shard.
    pub overhead_s: f64,
    /// CPU time / shard time.
    pub cpu_utilisation: f64,
    /// Unit results refused because their lease had been superseded (late results of workers
    /// declared lost): proof that fencing worked, not a loss.
    pub stale_results_discarded: u64,
}

/// What the coordinator knows of a job without its items or shards: what `GetJob` answers and
/// what the store keeps per job. Small and of fixed size, whatever the job's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    pub job_id: JobId,
    /// Its state.
    pub state: JobState,
    /// `fetch` or `sum-squares`.
    pub workload: String,
    /// The strategy workers run it with.
    pub strategy: Strategy,
    /// Requested in-process concurrency; 0 = auto (tuned by each worker).
    pub concurrency: u32,
    /// Free-form label.
    pub label: String,
    /// Unix milliseconds at submission (coordinator clock).
    pub submitted_unix_ms: u64,
    /// Submission to the end, or to now while it runs (coordinator clock).
    pub wall_s: f64,
    /// How its items stand.
    pub items: ItemCounts,
    /// Shards in its plan.
    pub shards_total: u32,
    /// Shards committed or given up.
    pub shards_done: u32,
    /// Shards leased now.
    pub shards_running: u32,
    /// Timing summed over committed shards.
    pub totals: JobTotals,
    /// Unit results refused because their lease had been superseded.
    pub stale_results_discarded: u64,
}

impl JobRecord {
    /// The printed summary with every derived figure.
    pub fn summary(&self) -> JobSummary {
        let header = JobHeader {
            job_id: self.job_id,
            state: self.state,
            workload: self.workload.clone(),
            strategy: self.strategy.as_str().to_string(),
            concurrency: self.concurrency,
            label: self.label.clone(),
            wall_s: self.wall_s,
            stale_results_discarded: self.stale_results_discarded,
        };
        JobSummary::new(header, self.items, self.totals)
    }
}

/// `numerator / denominator`, or 0 when the denominator is not positive.
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// Speedup of a run over a baseline: baseline wall / run wall.
pub fn speedup(baseline_wall_s: f64, wall_s: f64) -> f64 {
    ratio(baseline_wall_s, wall_s)
}

/// Efficiency: speedup per parallel unit (1.0 = perfect scaling).
pub fn efficiency(speedup: f64, parallel_units: u32) -> f64 {
    ratio(speedup, f64::from(parallel_units))
}

impl ShardRow {
    /// Fills the figures derived from the row's own timings.
    pub fn with_figures(mut self) -> Self {
        self.task_parallelism = ratio(self.item_time_s, self.run_s);
        self.cpu_utilisation = ratio(self.cpu_s, self.run_s);
        self
    }
}

impl JobSummary {
    /// Derives every figure from the header, the item counts and the shard totals.
    pub fn new(header: JobHeader, items: ItemCounts, totals: JobTotals) -> Self {
        let wall_s = header.wall_s;
        Self {
            job_id: header.job_id,
            state: header.state,
            workload: header.workload,
            strategy: header.strategy,
            concurrency: header.concurrency,
            label: header.label,
            items_total: items.total,
            items_ok: items.ok,
            items_failed: items.failed,
            items_unfinished: items.unfinished(),
            processes: totals.processes,
            hosts: totals.hosts,
            wall_s,
            item_time_s: totals.item_time_s,
            shard_time_s: totals.shard_time_s,
            cpu_s: totals.cpu_s,
            process_parallelism: ratio(totals.shard_time_s, wall_s),
            effective_parallelism: ratio(totals.item_time_s, wall_s),
            overhead_s: (wall_s - totals.longest_run_s).max(0.0),
            cpu_utilisation: ratio(totals.cpu_s, totals.shard_time_s),
            stale_results_discarded: header.stale_results_discarded,
        }
    }
}

#[cfg(test)]
mod tests;
