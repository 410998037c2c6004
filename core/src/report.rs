//! The job report: raw timings from coordinator and workers, and the figures derived from them.
//!
//! All arithmetic lives here so the CLI, `compare` and tests agree on what "parallelism" means:
//! - process parallelism = sum(shard run time) / job wall
//! - task parallelism (per shard) = sum(item time in shard) / shard run time
//! - effective parallelism = total item time / job wall
//! - coordination overhead = job wall - longest shard run time
//! - CPU utilisation = CPU time / run time

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
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

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One shard's row of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardRow {
    /// Index of the shard in its job.
    pub shard_id: u32,
    /// Worker that ran the final attempt (0 if never leased).
    pub worker_id: u64,
    /// That worker's host name.
    pub host: String,
    /// That worker's process id.
    pub pid: u32,
    /// Attempt number of the final lease.
    pub attempt: u32,
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
    /// The URL, or n.
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
}

/// The job-level facts the report starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHeader {
    /// The job.
    pub job_id: u64,
    /// Its state.
    pub state: JobState,
    /// `fetch` or `sum-squares`.
    pub workload: String,
    /// Strategy name.
    pub strategy: String,
    /// Requested in-process concurrency.
    pub concurrency: u32,
    /// Free-form label.
    pub label: String,
    /// Coordinator clock: submission to the last result (or to now, while running).
    pub wall_s: f64,
    /// Unit results refused because their lease had been superseded.
    pub stale_results_discarded: u64,
}

/// The full report of one job, as printed by `concur-cli job` and `submit --wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job.
    pub job_id: u64,
    /// Its state.
    pub state: JobState,
    /// `fetch` or `sum-squares`.
    pub workload: String,
    /// Strategy name.
    pub strategy: String,
    /// Requested in-process concurrency.
    pub concurrency: u32,
    /// Free-form label.
    pub label: String,
    /// Items in the job.
    pub items_total: u64,
    /// Items that succeeded.
    pub items_ok: u64,
    /// Items that failed or never ran.
    pub items_failed: u64,
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
    /// Per-shard rows.
    pub shards: Vec<ShardRow>,
    /// Per-item rows, in input order.
    pub items: Vec<ItemRow>,
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

impl JobReport {
    /// Derives every figure from the header and the raw shard and item rows.
    pub fn new(header: JobHeader, mut shards: Vec<ShardRow>, items: Vec<ItemRow>) -> Self {
        for shard in &mut shards {
            shard.task_parallelism = ratio(shard.item_time_s, shard.run_s);
            shard.cpu_utilisation = ratio(shard.cpu_s, shard.run_s);
        }
        let wall_s = header.wall_s;
        let item_time_s: f64 = items.iter().map(|i| i.duration_s).sum();
        let shard_time_s: f64 = shards.iter().map(|s| s.run_s).sum();
        let cpu_s: f64 = shards.iter().map(|s| s.cpu_s).sum();
        let longest = shards.iter().map(|s| s.run_s).fold(0.0, f64::max);
        let ran: Vec<&ShardRow> = shards.iter().filter(|s| s.worker_id != 0).collect();
        let processes = ran
            .iter()
            .map(|s| s.worker_id)
            .collect::<HashSet<_>>()
            .len();
        let hosts = ran.iter().map(|s| &s.host).collect::<HashSet<_>>().len();
        let items_ok = items.iter().filter(|i| i.ok).count() as u64;
        Self {
            job_id: header.job_id,
            state: header.state,
            workload: header.workload,
            strategy: header.strategy,
            concurrency: header.concurrency,
            label: header.label,
            items_total: items.len() as u64,
            items_ok,
            items_failed: items.len() as u64 - items_ok,
            processes: processes as u32,
            hosts: hosts as u32,
            wall_s,
            item_time_s,
            shard_time_s,
            cpu_s,
            process_parallelism: ratio(shard_time_s, wall_s),
            effective_parallelism: ratio(item_time_s, wall_s),
            overhead_s: (wall_s - longest).max(0.0),
            cpu_utilisation: ratio(cpu_s, shard_time_s),
            stale_results_discarded: header.stale_results_discarded,
            shards,
            items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(worker_id: u64, host: &str, run_s: f64, cpu_s: f64, item_time_s: f64) -> ShardRow {
        ShardRow {
            worker_id,
            host: host.into(),
            run_s,
            cpu_s,
            item_time_s,
            done: true,
            ..ShardRow::default()
        }
    }

    fn item(duration_s: f64, ok: bool) -> ItemRow {
        ItemRow {
            input: "x".into(),
            ok,
            duration_s,
            ..ItemRow::default()
        }
    }

    #[test]
    fn figures_follow_the_design_formulas() {
        let header = JobHeader {
            job_id: 7,
            state: JobState::Succeeded,
            workload: "fetch".into(),
            strategy: "threads".into(),
            concurrency: 4,
            label: String::new(),
            wall_s: 2.0,
            stale_results_discarded: 0,
        };
        // Two processes on one host, each busy 1.5 s, overlapping 4 items of 1 s each.
        let shards = vec![shard(1, "a", 1.5, 0.3, 4.0), shard(2, "a", 1.5, 0.3, 4.0)];
        let items = (0..8).map(|i| item(1.0, i != 3)).collect();
        let report = JobReport::new(header, shards, items);
        assert_eq!(report.item_time_s, 8.0);
        assert_eq!(report.process_parallelism, 1.5);
        assert_eq!(report.effective_parallelism, 4.0);
        assert_eq!(report.overhead_s, 0.5);
        assert!((report.cpu_utilisation - 0.2).abs() < 1e-12);
        assert!((report.shards[0].task_parallelism - 4.0 / 1.5).abs() < 1e-12);
        assert_eq!((report.processes, report.hosts), (2, 1));
        assert_eq!((report.items_ok, report.items_failed), (7, 1));
    }

    #[test]
    fn speedup_and_efficiency() {
        assert_eq!(speedup(10.0, 2.5), 4.0);
        assert_eq!(efficiency(4.0, 8), 0.5);
        assert_eq!(speedup(10.0, 0.0), 0.0);
    }
}
