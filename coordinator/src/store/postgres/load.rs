//! Reading back what a restarted coordinator needs from PostgreSQL: the id counters and the
//! unfinished jobs (their specs, URLs and stored shards), as SQLite's `load` does.

use super::conn::PgResult;
use super::rows::{self, SHARD_COLUMNS};
use crate::scheduler::RestoredJob;
use crate::store::Loaded;
use crate::store::sqlite::corrupt;
use concur_core::workload::Workload;
use concur_core::{JobId, UrlList, WorkerId};
use deadpool_postgres::Transaction;
use std::sync::Arc;

async fn meta(tx: &Transaction<'_>, key: &str) -> PgResult<u64> {
    let value: Option<i64> = tx
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .await?
        .map(|row| row.get(0));
    Ok(value.unwrap_or(0).max(0) as u64)
}

/// Counters and unfinished jobs, read in one (repeatable-read) transaction so they agree.
pub(super) async fn load(tx: &Transaction<'_>) -> PgResult<Loaded> {
    let max_id: i64 = tx
        .query_one("SELECT COALESCE(MAX(id), 0) FROM jobs", &[])
        .await?
        .get(0);
    let next_job_id = meta(tx, "next_job_id").await?.max(max_id.max(0) as u64 + 1);
    let worker_ids_through = meta(tx, "worker_ids_through").await?;
    let unfinished = tx
        .query(
            "SELECT id, spec, submitted_unix_ms, requested_shards FROM jobs \
             WHERE state IN ('pending', 'running') ORDER BY id",
            &[],
        )
        .await?;
    let shards_of = tx
        .prepare(&format!(
            "SELECT {SHARD_COLUMNS} FROM shards WHERE job_id = $1 ORDER BY shard_id"
        ))
        .await?;
    let mut jobs = Vec::with_capacity(unfinished.len());
    for row in unfinished {
        let id: i64 = row.get(0);
        let job_id = JobId(id.max(0) as u64);
        let mut spec = rows::spec(job_id, row.get(1))?;
        if let Workload::Fetch(fetch) = &mut spec.workload {
            fetch.urls = urls(tx, job_id).await?;
        }
        let shards_stored = tx
            .query(&shards_of, &[&id])
            .await?
            .iter()
            .map(|shard| rows::stored_shard(job_id, shard))
            .collect::<crate::store::Result<Vec<_>>>()?;
        jobs.push(RestoredJob {
            job_id,
            spec: Arc::new(spec),
            shards: row.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
            submitted_unix_ms: row.get::<_, i64>(2).max(0) as u64,
            shards_stored,
        });
    }
    Ok(Loaded {
        next_job_id: JobId(next_job_id),
        worker_ids_through: WorkerId(worker_ids_through),
        jobs,
    })
}

async fn urls(tx: &Transaction<'_>, job_id: JobId) -> PgResult<UrlList> {
    let chunks = tx
        .query(
            "SELECT text FROM urls WHERE job_id = $1 ORDER BY chunk",
            &[&(job_id.get() as i64)],
        )
        .await?;
    let mut list = UrlList::new();
    for chunk in &chunks {
        let text: &str = chunk.try_get(0).map_err(|e| corrupt(job_id, "urls", e))?;
        list.extend_from_lines(text);
    }
    Ok(list)
}
