//! Writing to SQLite: submissions, scheduler events, deletions and pruning, all through cached
//! prepared statements inside the caller's transaction.

use super::rows::{corrupt, value_blob};
use super::schema::{SHARD_COMMITTED, SHARD_GAVE_UP, SHARD_LEASED};
use crate::scheduler::Persist;
use crate::store::{NewJobRecord, Result, Retention, URL_CHUNK, WriteOp};
use concur_core::report::JobRecord;
use concur_core::workload::FetchSpec;
use concur_core::{JobId, JobSpec, UrlList, Workload};
use rusqlite::{Connection, params};

/// The spec as stored: a fetch spec's URLs are kept apart, in chunks (PostgreSQL too).
pub(crate) fn spec_without_urls(spec: &JobSpec) -> JobSpec {
    let workload = match &spec.workload {
        Workload::Fetch(fetch) => Workload::Fetch(FetchSpec {
            urls: UrlList::new(),
            timeout_ms: fetch.timeout_ms,
            max_body_bytes: fetch.max_body_bytes,
        }),
        other => other.clone(),
    };
    JobSpec {
        workload,
        strategy: spec.strategy,
        concurrency: spec.concurrency,
        shards: spec.shards,
        max_retries: spec.max_retries,
        label: spec.label.clone(),
        pacing: spec.pacing,
    }
}

/// Stores a submitted job: its row, its spec and its URLs in chunks, and the job-id high-water
/// mark (so an id is never reused, even once the job is pruned).
pub(crate) fn submit(tx: &Connection, job: &NewJobRecord) -> Result<()> {
    let record = &job.record;
    let id = record.job_id;
    let spec =
        serde_json::to_string(&spec_without_urls(&job.spec)).map_err(|e| corrupt(id, "spec", e))?;
    tx.prepare_cached(
        "INSERT INTO jobs (id, state, workload, strategy, concurrency, label, submitted_unix_ms, \
         items_total, shards_total, requested_shards, spec) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id.get() as i64,
        record.state.as_str(),
        record.workload,
        record.strategy.as_str(),
        record.concurrency,
        record.label,
        record.submitted_unix_ms as i64,
        record.items.total as i64,
        record.shards_total,
        job.shards,
        spec,
    ])?;
    if let Workload::Fetch(fetch) = &job.spec.workload {
        let mut insert =
            tx.prepare_cached("INSERT INTO urls (job_id, chunk, text) VALUES (?1, ?2, ?3)")?;
        for (chunk, start) in (0..fetch.urls.len()).step_by(URL_CHUNK).enumerate() {
            let end = (start + URL_CHUNK).min(fetch.urls.len());
            insert.execute(params![
                id.get() as i64,
                chunk as i64,
                fetch.urls.lines(start..end)
            ])?;
        }
    }
    set_meta_max(tx, "next_job_id", id.get() + 1)?;
    Ok(())
}

fn set_meta_max(tx: &Connection, key: &str, value: u64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute(params![key, value as i64])?;
    Ok(())
}

/// Applies one change.
pub(crate) fn apply(tx: &Connection, op: &WriteOp) -> Result<()> {
    match op {
        WriteOp::Persist(event) => persist(tx, event),
        WriteOp::Delete(job_id) => {
            let id = job_id.get() as i64;
            tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                .execute([id])?;
            tx.prepare_cached("INSERT OR IGNORE INTO doomed (job_id) VALUES (?1)")?
                .execute([id])?;
            Ok(())
        }
    }
}

fn persist(tx: &Connection, event: &Persist) -> Result<()> {
    match event {
        Persist::JobStarted { job_id } => {
            tx.prepare_cached(
                "UPDATE jobs SET state = 'running' WHERE id = ?1 AND state = 'pending'",
            )?
            .execute([job_id.get() as i64])?;
        }
        Persist::ShardLeased { lease } => {
            tx.prepare_cached(
                "INSERT INTO shards (job_id, shard_id, attempt, state) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (job_id, shard_id) DO UPDATE SET attempt = excluded.attempt",
            )?
            .execute(params![
                lease.job_id.get() as i64,
                lease.shard_id.get(),
                lease.attempt.get(),
                SHARD_LEASED
            ])?;
        }
        Persist::ShardCommitted {
            lease,
            outcomes,
            row,
            ..
        } => {
            let ok = outcomes.iter().filter(|o| o.ok).count() as u64;
            let failed = outcomes.len() as u64 - ok;
            shard_row(tx, lease.job_id, row, SHARD_COMMITTED, ok, failed)?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO results (job_id, shard_id, unit, ok, duration_s, value, \
                 status, bytes, error, start_s, lane) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
                 ?9, ?10, ?11)",
            )?;
            for (unit, o) in outcomes.iter().enumerate() {
                insert.execute(params![
                    lease.job_id.get() as i64,
                    lease.shard_id.get(),
                    unit as i64,
                    o.ok,
                    o.duration_s,
                    value_blob(o.value).as_ref().map(|v| &v[..]),
                    o.status,
                    o.bytes.min(i64::MAX as u64) as i64,
                    (!o.error.is_empty()).then_some(o.error.as_str()),
                    o.start_s,
                    o.lane,
                ])?;
            }
        }
        Persist::ShardGaveUp { job_id, row, .. } => {
            shard_row(tx, *job_id, row, SHARD_GAVE_UP, 0, row.items)?;
        }
        Persist::JobFinished { record } => finish(tx, record)?,
        Persist::StaleResults { job_id, count } => {
            tx.prepare_cached(
                "UPDATE jobs SET stale_discarded = stale_discarded + ?2 WHERE id = ?1",
            )?
            .execute(params![
                job_id.get() as i64,
                (*count).min(i64::MAX as u64) as i64
            ])?;
        }
        Persist::WorkerIdsReserved { through } => {
            set_meta_max(tx, "worker_ids_through", through.get())?;
        }
    }
    Ok(())
}

fn shard_row(
    tx: &Connection,
    job_id: JobId,
    row: &concur_core::report::ShardRow,
    state: i64,
    units_ok: u64,
    units_failed: u64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO shards (job_id, shard_id, attempt, state, worker_id, host, pid, \
         items, run_s, cpu_s, queue_s, round_trip_s, item_time_s, concurrency, error, units_ok, \
         units_failed, start_s, start_error_s, slot) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
         ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?
    .execute(params![
        job_id.get() as i64,
        row.shard_id.get(),
        row.attempt.get(),
        state,
        row.worker_id.get() as i64,
        row.host,
        row.pid,
        row.items as i64,
        row.run_s,
        row.cpu_s,
        row.queue_s,
        row.round_trip_s,
        row.item_time_s,
        row.concurrency,
        row.error,
        units_ok as i64,
        units_failed as i64,
        row.start_s,
        row.start_error_s,
        row.slot,
    ])?;
    Ok(())
}

fn finish(tx: &Connection, record: &JobRecord) -> Result<()> {
    tx.prepare_cached(
        "UPDATE jobs SET state = ?2, wall_s = ?3, items_ok = ?4, items_failed = ?5, \
         shards_done = ?6, item_time_s = ?7, shard_time_s = ?8, cpu_s = ?9, longest_run_s = ?10, \
         processes = ?11, hosts = ?12, stale_discarded = ?13 WHERE id = ?1",
    )?
    .execute(params![
        record.job_id.get() as i64,
        record.state.as_str(),
        record.wall_s,
        record.items.ok as i64,
        record.items.failed as i64,
        record.shards_done,
        record.totals.item_time_s,
        record.totals.shard_time_s,
        record.totals.cpu_s,
        record.totals.longest_run_s,
        record.totals.processes,
        record.totals.hosts,
        record.stale_results_discarded as i64,
    ])?;
    Ok(())
}

/// Finished states, as stored.
const FINAL: &str = "('succeeded', 'failed', 'cancelled')";

/// Forgets finished jobs past `retention`, then removes up to `budget` rows of one forgotten
/// job's data. True while more is left.
pub(crate) fn prune(
    tx: &Connection,
    retention: &Retention,
    now_unix_ms: u64,
    budget: usize,
) -> Result<bool> {
    let cutoff = retention.cutoff_unix_ms(now_unix_ms) as i64;
    // Finished jobs at or below the id of the (max_jobs + 1)-th newest are beyond the count.
    let beyond_count: i64 = if retention.max_jobs == 0 {
        0
    } else {
        tx.prepare_cached(&format!(
            "SELECT id FROM jobs WHERE state IN {FINAL} ORDER BY id DESC LIMIT 1 OFFSET ?1"
        ))?
        .query_map([retention.max_jobs as i64], |row| row.get(0))?
        .next()
        .transpose()?
        .unwrap_or(0)
    };
    let ids: Vec<i64> = tx
        .prepare_cached(&format!(
            "SELECT id FROM jobs WHERE state IN {FINAL} AND (id <= ?2 OR submitted_unix_ms < ?1) \
             LIMIT 1000"
        ))?
        .query_map(params![cutoff, beyond_count], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        apply(tx, &WriteOp::Delete(JobId(*id as u64)))?;
    }
    let Some(doomed) = tx
        .prepare_cached("SELECT job_id FROM doomed LIMIT 1")?
        .query_map([], |row| row.get::<_, i64>(0))?
        .next()
        .transpose()?
    else {
        return Ok(!ids.is_empty());
    };
    let mut removed = 0;
    for table in ["results", "shards", "urls"] {
        let key = if table == "urls" { "chunk" } else { "shard_id" };
        let sql = format!(
            "DELETE FROM {table} WHERE job_id = ?1 AND {key} IN \
             (SELECT {key} FROM {table} WHERE job_id = ?1 LIMIT ?2)"
        );
        // results are keyed by (shard, unit): delete whole shards' worth, bounded by budget.
        let sql = if table == "results" {
            "DELETE FROM results WHERE (job_id, shard_id, unit) IN \
             (SELECT job_id, shard_id, unit FROM results WHERE job_id = ?1 LIMIT ?2)"
                .to_string()
        } else {
            sql
        };
        removed += tx
            .prepare_cached(&sql)?
            .execute(params![doomed, (budget - removed.min(budget)) as i64])?;
        if removed >= budget {
            return Ok(true);
        }
    }
    tx.prepare_cached("DELETE FROM doomed WHERE job_id = ?1")?
        .execute([doomed])?;
    Ok(true)
}
