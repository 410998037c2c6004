//! Decoding PostgreSQL rows into domain records; every error names the job it belongs to.
//! Unsigned values are stored as BIGINT and clamped back into range, as SQLite's rows are.

use super::schema::{SHARD_COMMITTED, SHARD_GAVE_UP};
use crate::scheduler::{StoredEnd, StoredShard};
use crate::store::Result;
use crate::store::sqlite::corrupt;
use concur_core::report::{ItemCounts, JobRecord, JobState, JobTotals, ShardRow};
use concur_core::{Attempt, JobId, JobSpec, Outcome, ShardId, Strategy, WorkerId};
use tokio_postgres::Row;

/// The columns [`job_record`] reads, in order.
pub(crate) const JOB_COLUMNS: &str = "id, state, workload, strategy, concurrency, label, \
    submitted_unix_ms, wall_s, items_total, items_ok, items_failed, shards_total, shards_done, \
    item_time_s, shard_time_s, cpu_s, longest_run_s, processes, hosts, stale_discarded";

/// The columns [`stored_shard`] reads, in order.
pub(crate) const SHARD_COLUMNS: &str = "shard_id, attempt, state, worker_id, host, pid, items, \
    run_s, cpu_s, queue_s, round_trip_s, item_time_s, concurrency, error, units_ok, units_failed, \
    start_s, start_error_s, slot";

/// The columns [`outcome`] reads, in order.
pub(crate) const RESULT_COLUMNS: &str =
    "unit, ok, duration_s, value, status, bytes, error, start_s, lane";

/// A column of `row`, or a corrupt-record error naming the job and the table.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    job_id: JobId,
    what: &str,
) -> Result<T> {
    row.try_get(index)
        .map_err(|e| corrupt(job_id, what, format!("column {index}: {e}")))
}

fn u64_of(row: &Row, index: usize, job_id: JobId, what: &str) -> Result<u64> {
    Ok(get::<i64>(row, index, job_id, what)?.max(0) as u64)
}

fn u32_of(row: &Row, index: usize, job_id: JobId, what: &str) -> Result<u32> {
    Ok(get::<i64>(row, index, job_id, what)?.clamp(0, i64::from(u32::MAX)) as u32)
}

/// A `jobs` row read with [`JOB_COLUMNS`].
pub(crate) fn job_record(row: &Row) -> Result<JobRecord> {
    let job_id = JobId(get::<i64>(row, 0, JobId(0), "jobs")?.max(0) as u64);
    let w = "jobs";
    let state: JobState = get::<String>(row, 1, job_id, w)?
        .parse()
        .map_err(|e: String| corrupt(job_id, "state", e))?;
    let strategy: Strategy = get::<String>(row, 3, job_id, w)?
        .parse()
        .map_err(|e: concur_core::SpecError| corrupt(job_id, "strategy", e))?;
    Ok(JobRecord {
        job_id,
        state,
        workload: get(row, 2, job_id, w)?,
        strategy,
        concurrency: u32_of(row, 4, job_id, w)?,
        label: get(row, 5, job_id, w)?,
        submitted_unix_ms: u64_of(row, 6, job_id, w)?,
        wall_s: get(row, 7, job_id, w)?,
        items: ItemCounts {
            total: u64_of(row, 8, job_id, w)?,
            ok: u64_of(row, 9, job_id, w)?,
            failed: u64_of(row, 10, job_id, w)?,
        },
        shards_total: u32_of(row, 11, job_id, w)?,
        shards_done: u32_of(row, 12, job_id, w)?,
        shards_running: 0,
        totals: JobTotals {
            item_time_s: get(row, 13, job_id, w)?,
            shard_time_s: get(row, 14, job_id, w)?,
            cpu_s: get(row, 15, job_id, w)?,
            longest_run_s: get(row, 16, job_id, w)?,
            processes: u32_of(row, 17, job_id, w)?,
            hosts: u32_of(row, 18, job_id, w)?,
        },
        stale_results_discarded: u64_of(row, 19, job_id, w)?,
    })
}

/// A `shards` row read with [`SHARD_COLUMNS`].
pub(crate) fn stored_shard(job_id: JobId, row: &Row) -> Result<StoredShard> {
    let w = "shards";
    let shard_id = ShardId(u32_of(row, 0, job_id, w)?);
    let attempt = Attempt(u32_of(row, 1, job_id, w)?);
    let state: i16 = get(row, 2, job_id, w)?;
    let end = if state == SHARD_COMMITTED || state == SHARD_GAVE_UP {
        Some(StoredEnd {
            row: ShardRow {
                shard_id,
                worker_id: WorkerId(u64_of(row, 3, job_id, w)?),
                host: get(row, 4, job_id, w)?,
                pid: u32_of(row, 5, job_id, w)?,
                attempt,
                items: u64_of(row, 6, job_id, w)?,
                run_s: get(row, 7, job_id, w)?,
                cpu_s: get(row, 8, job_id, w)?,
                queue_s: get(row, 9, job_id, w)?,
                round_trip_s: get(row, 10, job_id, w)?,
                item_time_s: get(row, 11, job_id, w)?,
                concurrency: u32_of(row, 12, job_id, w)?,
                done: true,
                error: get(row, 13, job_id, w)?,
                start_s: get(row, 16, job_id, w)?,
                start_error_s: get(row, 17, job_id, w)?,
                slot: u32_of(row, 18, job_id, w)?,
                ..ShardRow::default()
            },
            units_ok: u64_of(row, 14, job_id, w)?,
            units_failed: u64_of(row, 15, job_id, w)?,
            gave_up: state == SHARD_GAVE_UP,
        })
    } else {
        None
    };
    Ok(StoredShard {
        shard_id,
        attempt,
        end,
    })
}

/// A u128 value as stored: 16 big-endian bytes, or NULL for zero.
pub(crate) fn value_bytes(value: u128) -> Option<Vec<u8>> {
    (value != 0).then(|| value.to_be_bytes().to_vec())
}

/// A `results` row read with [`RESULT_COLUMNS`].
pub(crate) fn outcome(job_id: JobId, row: &Row) -> Result<(u32, Outcome)> {
    let w = "results";
    let value = match get::<Option<&[u8]>>(row, 3, job_id, w)? {
        Some(bytes) => {
            let mut buffer = [0u8; 16];
            let n = bytes.len().min(16);
            buffer[16 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
            u128::from_be_bytes(buffer)
        }
        None => 0,
    };
    Ok((
        u32_of(row, 0, job_id, w)?,
        Outcome {
            ok: get(row, 1, job_id, w)?,
            duration_s: get(row, 2, job_id, w)?,
            value,
            status: u32_of(row, 4, job_id, w)?,
            bytes: u64_of(row, 5, job_id, w)?,
            error: get::<Option<String>>(row, 6, job_id, w)?.unwrap_or_default(),
            start_s: get(row, 7, job_id, w)?,
            lane: u32_of(row, 8, job_id, w)?,
        },
    ))
}

/// A stored spec (JSON, fetch URLs kept apart).
pub(crate) fn spec(job_id: JobId, text: &str) -> Result<JobSpec> {
    serde_json::from_str(text).map_err(|e| corrupt(job_id, "spec", e))
}
