//! Job reports on the wire: the summary record, shard rows and item rows, both ways.

use super::spec::{job_state_from_i32, strategy_from_i32};
use super::{join_u128, sanitize_seconds, split_u128};
use crate::pb;
use concur_core::report::{ItemCounts, ItemRow, JobRecord, JobTotals, ShardRow};
use concur_core::{Attempt, JobId, Outcome, ShardId, Strategy, WorkerId};

impl From<&JobRecord> for pb::JobReport {
    fn from(job: &JobRecord) -> Self {
        pb::JobReport {
            job_id: job.job_id.get(),
            state: pb::JobState::from(job.state).into(),
            wall_s: job.wall_s,
            label: job.label.clone(),
            submitted_at_ms: job.submitted_unix_ms,
            stale_results_discarded: job.stale_results_discarded,
            workload: job.workload.clone(),
            strategy: pb::Strategy::from(job.strategy).into(),
            concurrency: job.concurrency,
            items_total: job.items.total,
            items_ok: job.items.ok,
            items_failed: job.items.failed,
            shards_total: job.shards_total,
            shards_done: job.shards_done,
            shards_running: job.shards_running,
            item_time_s: job.totals.item_time_s,
            shard_time_s: job.totals.shard_time_s,
            cpu_s: job.totals.cpu_s,
            longest_run_s: job.totals.longest_run_s,
            processes: job.totals.processes,
            hosts: job.totals.hosts,
        }
    }
}

impl From<&pb::JobReport> for JobRecord {
    /// Decodes a summary; an unknown strategy reads as sequential (the CLI only prints it).
    fn from(report: &pb::JobReport) -> Self {
        JobRecord {
            job_id: JobId(report.job_id),
            state: job_state_from_i32(report.state),
            workload: report.workload.clone(),
            strategy: strategy_from_i32(report.strategy).unwrap_or(Strategy::Sequential),
            concurrency: report.concurrency,
            label: report.label.clone(),
            submitted_unix_ms: report.submitted_at_ms,
            wall_s: sanitize_seconds(report.wall_s),
            items: ItemCounts {
                total: report.items_total,
                ok: report.items_ok,
                failed: report.items_failed,
            },
            shards_total: report.shards_total,
            shards_done: report.shards_done,
            shards_running: report.shards_running,
            totals: JobTotals {
                item_time_s: sanitize_seconds(report.item_time_s),
                shard_time_s: sanitize_seconds(report.shard_time_s),
                cpu_s: sanitize_seconds(report.cpu_s),
                longest_run_s: sanitize_seconds(report.longest_run_s),
                processes: report.processes,
                hosts: report.hosts,
            },
            stale_results_discarded: report.stale_results_discarded,
        }
    }
}

impl From<&ShardRow> for pb::ShardReport {
    fn from(row: &ShardRow) -> Self {
        pb::ShardReport {
            shard_id: row.shard_id.get(),
            worker_id: row.worker_id.get(),
            host: row.host.clone(),
            pid: row.pid,
            attempt: row.attempt.get(),
            items: row.items,
            run_s: row.run_s,
            cpu_s: row.cpu_s,
            queue_s: row.queue_s,
            round_trip_s: row.round_trip_s,
            concurrency: row.concurrency,
            done: row.done,
            error: row.error.clone().unwrap_or_default(),
            item_time_s: row.item_time_s,
            start_s: row.start_s,
            start_error_s: row.start_error_s,
            slot: row.slot,
        }
    }
}

impl From<&pb::ShardReport> for ShardRow {
    /// Decodes a row and fills its derived figures.
    fn from(s: &pb::ShardReport) -> Self {
        ShardRow {
            shard_id: ShardId(s.shard_id),
            worker_id: WorkerId(s.worker_id),
            host: s.host.clone(),
            pid: s.pid,
            attempt: Attempt(s.attempt),
            items: s.items,
            run_s: sanitize_seconds(s.run_s),
            cpu_s: sanitize_seconds(s.cpu_s),
            queue_s: sanitize_seconds(s.queue_s),
            round_trip_s: sanitize_seconds(s.round_trip_s),
            item_time_s: sanitize_seconds(s.item_time_s),
            concurrency: s.concurrency,
            done: s.done,
            error: (!s.error.is_empty()).then(|| s.error.clone()),
            start_s: sanitize_seconds(s.start_s),
            start_error_s: sanitize_seconds(s.start_error_s),
            slot: s.slot,
            ..ShardRow::default()
        }
        .with_figures()
    }
}

/// The wire form of item `index` with its `input` and, once finished, its outcome.
pub fn item_outcome(
    index: u64,
    shard_id: u32,
    input: String,
    outcome: Option<&Outcome>,
) -> pb::ItemOutcome {
    match outcome {
        Some(outcome) => {
            let (value_hi, value_lo) = split_u128(outcome.value);
            pb::ItemOutcome {
                input,
                ok: outcome.ok,
                duration_s: outcome.duration_s,
                value_hi,
                value_lo,
                status: outcome.status,
                bytes: outcome.bytes,
                error: outcome.error.clone(),
                reported: true,
                index,
                shard_id,
                start_s: outcome.start_s,
                lane: outcome.lane,
            }
        }
        None => pb::ItemOutcome {
            input,
            index,
            shard_id,
            ..pb::ItemOutcome::default()
        },
    }
}

/// The printed row of an item; `is_fetch` picks the fields a fetch or a sum-squares item has.
/// An unfinished item is neither ok nor failed: its row says so in `error`.
pub fn item_row(item: &pb::ItemOutcome, is_fetch: bool) -> ItemRow {
    let error = if !item.reported {
        Some("not finished".to_string())
    } else if !item.ok {
        Some(item.error.clone())
    } else {
        None
    };
    ItemRow {
        input: item.input.clone(),
        ok: item.reported && item.ok,
        duration_s: sanitize_seconds(item.duration_s),
        value: (!is_fetch && item.reported && item.ok)
            .then(|| join_u128(item.value_hi, item.value_lo).to_string()),
        status: is_fetch.then_some(item.status),
        bytes: is_fetch.then_some(item.bytes),
        error,
        ..ItemRow::default()
    }
}

/// The printed row of an item of a job of `workload` (its name): exec items add to fetch's
/// fields (exit status, stdout bytes) the child's CPU time, its stderr bytes, and when it
/// started in its shard.
pub fn item_row_of(item: &pb::ItemOutcome, workload: &str) -> ItemRow {
    if workload != "exec" {
        return item_row(item, workload == "fetch");
    }
    let (cpu_s, stderr_bytes) =
        concur_core::exec::unpack_value(join_u128(item.value_hi, item.value_lo));
    ItemRow {
        cpu_s: item.reported.then_some(cpu_s),
        stderr_bytes: item.reported.then_some(stderr_bytes),
        start_s: item.reported.then_some(sanitize_seconds(item.start_s)),
        ..item_row(item, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::report::JobState;

    #[test]
    fn a_record_round_trips() {
        let record = JobRecord {
            job_id: JobId(3),
            state: JobState::Running,
            workload: "fetch".into(),
            strategy: Strategy::Async,
            concurrency: 64,
            label: "l".into(),
            submitted_unix_ms: 5,
            wall_s: 1.5,
            items: ItemCounts {
                total: 10,
                ok: 4,
                failed: 1,
            },
            shards_total: 4,
            shards_done: 2,
            shards_running: 1,
            totals: JobTotals {
                item_time_s: 2.0,
                shard_time_s: 1.0,
                cpu_s: 0.5,
                longest_run_s: 0.6,
                processes: 2,
                hosts: 1,
            },
            stale_results_discarded: 7,
        };
        assert_eq!(JobRecord::from(&pb::JobReport::from(&record)), record);
    }

    #[test]
    fn unfinished_items_are_neither_ok_nor_failed_values() {
        let row = item_row(&item_outcome(2, 0, "5".into(), None), false);
        assert!(!row.ok);
        assert_eq!(row.error.as_deref(), Some("not finished"));
        let done = Outcome {
            ok: true,
            value: u128::MAX,
            ..Outcome::default()
        };
        let row = item_row(&item_outcome(2, 0, "5".into(), Some(&done)), false);
        assert_eq!(row.value, Some(u128::MAX.to_string()));
    }
}
