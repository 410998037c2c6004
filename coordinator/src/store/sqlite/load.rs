//! Reading back what a restarted coordinator needs: the id counters and the unfinished jobs
//! (their specs, URLs and stored shards). Finished jobs stay on disk untouched, so restoring
//! costs nothing per finished job or item.

use super::rows::{self, SHARD_COLUMNS, corrupt};
use crate::scheduler::RestoredJob;
use crate::store::{Loaded, Result};
use concur_core::workload::Workload;
use concur_core::{JobId, UrlList, WorkerId};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;

fn meta(conn: &Connection, key: &str) -> Result<u64> {
    let value: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    Ok(value.unwrap_or(0).max(0) as u64)
}

/// Counters and unfinished jobs.
pub(crate) fn load(conn: &Connection) -> Result<Loaded> {
    let max_id: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM jobs", [], |r| r.get(0))?;
    let next_job_id = meta(conn, "next_job_id")?.max(max_id.max(0) as u64 + 1);
    let worker_ids_through = meta(conn, "worker_ids_through")?;
    let unfinished: Vec<(i64, String, i64, u32)> = conn
        .prepare(
            "SELECT id, spec, submitted_unix_ms, requested_shards FROM jobs \
             WHERE state IN ('pending', 'running') ORDER BY id",
        )?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut jobs = Vec::with_capacity(unfinished.len());
    for (id, spec, submitted_unix_ms, shards) in unfinished {
        let job_id = JobId(id as u64);
        let mut spec = rows::spec(job_id, &spec)?;
        if let Workload::Fetch(fetch) = &mut spec.workload {
            fetch.urls = urls(conn, job_id)?;
        }
        let shards_stored = conn
            .prepare_cached(&format!(
                "SELECT {SHARD_COLUMNS} FROM shards WHERE job_id = ?1 ORDER BY shard_id"
            ))?
            .query_map([id], rows::stored_shard)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| corrupt(job_id, "shards", e))?;
        jobs.push(RestoredJob {
            job_id,
            spec: Arc::new(spec),
            shards,
            submitted_unix_ms: submitted_unix_ms.max(0) as u64,
            shards_stored,
        });
    }
    Ok(Loaded {
        next_job_id: JobId(next_job_id),
        worker_ids_through: WorkerId(worker_ids_through),
        jobs,
    })
}

fn urls(conn: &Connection, job_id: JobId) -> Result<UrlList> {
    let mut statement =
        conn.prepare_cached("SELECT text FROM urls WHERE job_id = ?1 ORDER BY chunk")?;
    let mut rows = statement.query(params![job_id.get() as i64])?;
    let mut list = UrlList::new();
    while let Some(row) = rows.next()? {
        list.extend_from_lines(
            row.get_ref(0)?
                .as_str()
                .map_err(|e| corrupt(job_id, "urls", e))?,
        );
    }
    Ok(list)
}
