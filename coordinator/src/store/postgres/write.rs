//! Writing to PostgreSQL: submissions, scheduler events, deletions and pruning inside the
//! caller's transaction, with the same statements as SQLite's (`INSERT OR REPLACE` becomes
//! `ON CONFLICT … DO UPDATE`). Submissions and changes are built as statements that `commit`
//! sends in one pipeline; shard changes are coalesced by `batch`. Pruning reads as it goes, so
//! it runs statement by statement.

use super::commit::{Stmt, stmt};
use super::conn::PgResult;
use crate::scheduler::Persist;
use crate::store::sqlite::{corrupt, spec_without_urls};
use crate::store::{NewJobRecord, Result, Retention, URL_CHUNK, WriteOp};
use concur_core::report::JobRecord;
use concur_core::{JobId, Workload};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

fn id(job_id: JobId) -> i64 {
    job_id.get() as i64
}

fn big(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

/// Stores a submitted job: its row, its spec and its URLs in chunks, and the job-id high-water
/// mark (so an id is never reused, even once the job is pruned).
pub(super) fn submit(job: &NewJobRecord) -> Result<Vec<Stmt>> {
    let record = &job.record;
    let job_id = record.job_id;
    let spec = serde_json::to_string(&spec_without_urls(&job.spec))
        .map_err(|e| corrupt(job_id, "spec", e))?;
    let mut stmts = vec![stmt!(
        "INSERT INTO jobs (id, state, workload, strategy, concurrency, label, \
         submitted_unix_ms, items_total, shards_total, requested_shards, spec) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        id(job_id),
        record.state.as_str(),
        record.workload.clone(),
        record.strategy.as_str(),
        i64::from(record.concurrency),
        record.label.clone(),
        big(record.submitted_unix_ms),
        big(record.items.total),
        i64::from(record.shards_total),
        i64::from(job.shards),
        spec,
    )];
    if let Workload::Fetch(fetch) = &job.spec.workload {
        for (chunk, start) in (0..fetch.urls.len()).step_by(URL_CHUNK).enumerate() {
            let end = (start + URL_CHUNK).min(fetch.urls.len());
            stmts.push(stmt!(
                "INSERT INTO urls (job_id, chunk, text) VALUES ($1, $2, $3)",
                id(job_id),
                chunk as i64,
                fetch.urls.lines(start..end),
            ));
        }
    }
    stmts.push(meta_max("next_job_id", job_id.get() + 1));
    Ok(stmts)
}

fn meta_max(key: &'static str, value: u64) -> Stmt {
    stmt!(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)",
        key,
        big(value),
    )
}

/// The statements of one change, appended to `stmts`.
pub(super) fn apply(op: &WriteOp, stmts: &mut Vec<Stmt>) {
    match op {
        WriteOp::Persist(event) => persist(event, stmts),
        WriteOp::Delete(job_id) => delete(id(*job_id), stmts),
    }
}

fn delete(job_id: i64, stmts: &mut Vec<Stmt>) {
    stmts.push(stmt!("DELETE FROM jobs WHERE id = $1", job_id));
    stmts.push(stmt!(
        "INSERT INTO doomed (job_id) VALUES ($1) ON CONFLICT DO NOTHING",
        job_id
    ));
}

fn persist(event: &Persist, stmts: &mut Vec<Stmt>) {
    match event {
        Persist::JobStarted { job_id } => stmts.push(stmt!(
            "UPDATE jobs SET state = 'running' WHERE id = $1 AND state = 'pending'",
            id(*job_id)
        )),
        // Coalesced over the whole write by `batch`.
        Persist::ShardLeased { .. }
        | Persist::ShardCommitted { .. }
        | Persist::ShardGaveUp { .. } => {}
        Persist::JobFinished { record } => stmts.push(finish(record)),
        Persist::StaleResults { job_id, count } => stmts.push(stmt!(
            "UPDATE jobs SET stale_discarded = stale_discarded + $2 WHERE id = $1",
            id(*job_id),
            big(*count),
        )),
        Persist::WorkerIdsReserved { through } => {
            stmts.push(meta_max("worker_ids_through", through.get()));
        }
    }
}

fn finish(record: &JobRecord) -> Stmt {
    stmt!(
        "UPDATE jobs SET state = $2, wall_s = $3, items_ok = $4, items_failed = $5, \
         shards_done = $6, item_time_s = $7, shard_time_s = $8, cpu_s = $9, \
         longest_run_s = $10, processes = $11, hosts = $12, stale_discarded = $13 \
         WHERE id = $1",
        id(record.job_id),
        record.state.as_str(),
        record.wall_s,
        big(record.items.ok),
        big(record.items.failed),
        i64::from(record.shards_done),
        record.totals.item_time_s,
        record.totals.shard_time_s,
        record.totals.cpu_s,
        record.totals.longest_run_s,
        i64::from(record.totals.processes),
        i64::from(record.totals.hosts),
        big(record.stale_results_discarded),
    )
}

/// Finished states, as stored.
const FINAL: &str = "('succeeded', 'failed', 'cancelled')";

/// Forgets finished jobs past `retention`, then removes up to `budget` rows of one forgotten
/// job's data. True while more is left.
pub(super) async fn prune(
    tx: &Transaction<'_>,
    retention: &Retention,
    now_unix_ms: u64,
    budget: usize,
) -> PgResult<bool> {
    let cutoff = big(retention.cutoff_unix_ms(now_unix_ms));
    // Finished jobs at or below the id of the (max_jobs + 1)-th newest are beyond the count.
    let beyond_count: i64 = if retention.max_jobs == 0 {
        0
    } else {
        let nth = tx
            .prepare_cached(&format!(
                "SELECT id FROM jobs WHERE state IN {FINAL} ORDER BY id DESC LIMIT 1 OFFSET $1"
            ))
            .await?;
        tx.query_opt(&nth, &[&big(retention.max_jobs)])
            .await?
            .map_or(0, |row| row.get(0))
    };
    let expired = tx
        .prepare_cached(&format!(
            "SELECT id FROM jobs WHERE state IN {FINAL} AND (id <= $2 OR submitted_unix_ms < $1) \
             LIMIT 1000"
        ))
        .await?;
    let ids: Vec<i64> = tx
        .query(&expired, &[&cutoff, &beyond_count])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut forget = Vec::new();
    for job_id in &ids {
        delete(*job_id, &mut forget);
    }
    for stmt in &forget {
        let statement = tx.prepare_cached(stmt.sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> =
            stmt.params.iter().map(|p| p.as_ref() as _).collect();
        tx.execute(&statement, &params).await?;
    }
    let next = tx
        .prepare_cached("SELECT job_id FROM doomed LIMIT 1")
        .await?;
    let Some(doomed) = tx
        .query_opt(&next, &[])
        .await?
        .map(|row| row.get::<_, i64>(0))
    else {
        return Ok(!ids.is_empty());
    };
    let mut removed = 0;
    for sql in [
        "DELETE FROM results WHERE (job_id, shard_id, unit) IN \
         (SELECT job_id, shard_id, unit FROM results WHERE job_id = $1 LIMIT $2)",
        "DELETE FROM shards WHERE job_id = $1 AND shard_id IN \
         (SELECT shard_id FROM shards WHERE job_id = $1 LIMIT $2)",
        "DELETE FROM urls WHERE job_id = $1 AND chunk IN \
         (SELECT chunk FROM urls WHERE job_id = $1 LIMIT $2)",
    ] {
        let remove = tx.prepare_cached(sql).await?;
        let left = (budget - removed.min(budget)) as i64;
        removed += tx.execute(&remove, &[&doomed, &left]).await? as usize;
        if removed >= budget {
            return Ok(true);
        }
    }
    let done = tx
        .prepare_cached("DELETE FROM doomed WHERE job_id = $1")
        .await?;
    tx.execute(&done, &[&doomed]).await?;
    Ok(true)
}
