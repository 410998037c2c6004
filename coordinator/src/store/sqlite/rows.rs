//! Decoding SQLite rows into domain records; every error names the job it belongs to.

use super::schema::{SHARD_COMMITTED, SHARD_GAVE_UP};
use crate::scheduler::{StoredEnd, StoredShard};
use crate::store::{Result, StoreError};
use concur_core::report::{ItemCounts, JobRecord, JobState, JobTotals, ShardRow};
use concur_core::{Attempt, JobId, JobSpec, Outcome, ShardId, Strategy, WorkerId};
use rusqlite::Row;

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

pub(crate) fn corrupt(job_id: JobId, what: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: format!("job {job_id}, {what}"),
        reason: reason.to_string(),
    }
}

fn u64_of(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.max(0) as u64)
}

/// A `jobs` row read with [`JOB_COLUMNS`].
pub(crate) fn job_record(row: &Row<'_>) -> Result<JobRecord> {
    let job_id = JobId(u64_of(row, 0)?);
    let state: JobState = row
        .get::<_, String>(1)?
        .parse()
        .map_err(|e: String| corrupt(job_id, "state", e))?;
    let strategy: Strategy = row
        .get::<_, String>(3)?
        .parse()
        .map_err(|e: concur_core::SpecError| corrupt(job_id, "strategy", e))?;
    Ok(JobRecord {
        job_id,
        state,
        workload: row.get(2)?,
        strategy,
        concurrency: row.get(4)?,
        label: row.get(5)?,
        submitted_unix_ms: u64_of(row, 6)?,
        wall_s: row.get(7)?,
        items: ItemCounts {
            total: u64_of(row, 8)?,
            ok: u64_of(row, 9)?,
            failed: u64_of(row, 10)?,
        },
        shards_total: row.get(11)?,
        shards_done: row.get(12)?,
        shards_running: 0,
        totals: JobTotals {
            item_time_s: row.get(13)?,
            shard_time_s: row.get(14)?,
            cpu_s: row.get(15)?,
            longest_run_s: row.get(16)?,
            processes: row.get(17)?,
            hosts: row.get(18)?,
        },
        stale_results_discarded: u64_of(row, 19)?,
    })
}

/// A `shards` row read with [`SHARD_COLUMNS`].
pub(crate) fn stored_shard(row: &Row<'_>) -> rusqlite::Result<StoredShard> {
    let shard_id = ShardId(row.get(0)?);
    let attempt = Attempt(row.get(1)?);
    let state: i64 = row.get(2)?;
    let end = (state == SHARD_COMMITTED || state == SHARD_GAVE_UP)
        .then(|| -> rusqlite::Result<StoredEnd> {
            Ok(StoredEnd {
                row: ShardRow {
                    shard_id,
                    worker_id: WorkerId(u64_of(row, 3)?),
                    host: row.get(4)?,
                    pid: row.get(5)?,
                    attempt,
                    items: u64_of(row, 6)?,
                    run_s: row.get(7)?,
                    cpu_s: row.get(8)?,
                    queue_s: row.get(9)?,
                    round_trip_s: row.get(10)?,
                    item_time_s: row.get(11)?,
                    concurrency: row.get(12)?,
                    done: true,
                    error: row.get(13)?,
                    start_s: row.get(16)?,
                    start_error_s: row.get(17)?,
                    slot: row.get(18)?,
                    ..ShardRow::default()
                },
                units_ok: u64_of(row, 14)?,
                units_failed: u64_of(row, 15)?,
                gave_up: state == SHARD_GAVE_UP,
            })
        })
        .transpose()?;
    Ok(StoredShard {
        shard_id,
        attempt,
        end,
    })
}

/// A u128 value as stored: 16 big-endian bytes, or NULL for zero.
pub(crate) fn value_blob(value: u128) -> Option<[u8; 16]> {
    (value != 0).then(|| value.to_be_bytes())
}

/// A `results` row read with [`RESULT_COLUMNS`].
pub(crate) fn outcome(row: &Row<'_>) -> rusqlite::Result<(u32, Outcome)> {
    let value = match row.get::<_, Option<Vec<u8>>>(3)? {
        Some(bytes) => {
            let mut buffer = [0u8; 16];
            let n = bytes.len().min(16);
            buffer[16 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
            u128::from_be_bytes(buffer)
        }
        None => 0,
    };
    Ok((
        row.get(0)?,
        Outcome {
            ok: row.get(1)?,
            duration_s: row.get(2)?,
            value,
            status: row.get(4)?,
            bytes: u64_of(row, 5)?,
            error: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
            start_s: row.get(7)?,
            lane: row.get(8)?,
        },
    ))
}

/// A stored spec (JSON, fetch URLs kept apart).
pub(crate) fn spec(job_id: JobId, text: &str) -> Result<JobSpec> {
    serde_json::from_str(text).map_err(|e| corrupt(job_id, "spec", e))
}
