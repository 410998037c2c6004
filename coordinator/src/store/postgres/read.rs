//! Reading PostgreSQL from any blocking thread through the shared pool; reads see what is
//! committed and never wait for the writer.

use super::conn::Backend;
use super::rows::{self, JOB_COLUMNS, RESULT_COLUMNS, SHARD_COLUMNS};
use crate::scheduler::StoredShard;
use crate::store::{Result, StoreRead, StoredInput};
use concur_core::report::{JobRecord, JobState};
use concur_core::{JobId, Outcome, ShardId};
use std::sync::Arc;

/// Reads the store; shared behind an `Arc`. Call from blocking threads, not async contexts.
#[derive(Debug)]
pub struct PostgresReader {
    backend: Arc<Backend>,
}

impl PostgresReader {
    pub(super) fn new(backend: Arc<Backend>) -> Self {
        Self { backend }
    }
}

fn id(job_id: JobId) -> i64 {
    job_id.get() as i64
}

impl StoreRead for PostgresReader {
    fn job(&self, job_id: JobId) -> Result<Option<JobRecord>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
            let statement = client.prepare_cached(&sql).await?;
            let row = client.query_opt(&statement, &[&id(job_id)]).await?;
            Ok(row.as_ref().map(rows::job_record).transpose()?)
        })
    }

    fn jobs(&self, states: &[JobState], limit: u32) -> Result<(Vec<JobRecord>, u64)> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
            // An empty filter matches every state.
            let filter = "(cardinality($1::TEXT[]) = 0 OR state = ANY($1))";
            let count = client
                .prepare_cached(&format!("SELECT COUNT(*) FROM jobs WHERE {filter}"))
                .await?;
            let matched: i64 = client.query_one(&count, &[&names]).await?.get(0);
            // LIMIT NULL is no limit.
            let limit = (limit > 0).then_some(i64::from(limit));
            let list = client
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY id DESC LIMIT $2"
                ))
                .await?;
            let mut jobs = client
                .query(&list, &[&names, &limit])
                .await?
                .iter()
                .map(rows::job_record)
                .collect::<Result<Vec<_>>>()?;
            jobs.reverse();
            Ok((jobs, matched.max(0) as u64))
        })
    }

    fn input(&self, job_id: JobId) -> Result<Option<StoredInput>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT spec, items_total, requested_shards FROM jobs WHERE id = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&statement, &[&id(job_id)]).await? else {
                return Ok(None);
            };
            let spec: &str = row.get(0);
            Ok(Some(StoredInput {
                spec: Arc::new(rows::spec(job_id, spec)?),
                items: row.get::<_, i64>(1).max(0) as u64,
                shards: row.get::<_, i64>(2).clamp(0, i64::from(u32::MAX)) as u32,
            }))
        })
    }

    fn url_chunk(&self, job_id: JobId, chunk: u64) -> Result<Option<String>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let statement = client
                .prepare_cached("SELECT text FROM urls WHERE job_id = $1 AND chunk = $2")
                .await?;
            let row = client
                .query_opt(&statement, &[&id(job_id), &(chunk as i64)])
                .await?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn shards(&self, job_id: JobId, from: ShardId, limit: u32) -> Result<Vec<StoredShard>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let sql = format!(
                "SELECT {SHARD_COLUMNS} FROM shards WHERE job_id = $1 AND shard_id >= $2 \
                 AND shard_id < $3 ORDER BY shard_id"
            );
            let statement = client.prepare_cached(&sql).await?;
            let start = i64::from(from.get());
            let end = start + i64::from(limit);
            let shards = client
                .query(&statement, &[&id(job_id), &start, &end])
                .await?
                .iter()
                .map(|row| rows::stored_shard(job_id, row))
                .collect::<Result<Vec<_>>>()?;
            Ok(shards)
        })
    }

    fn results(
        &self,
        job_id: JobId,
        shard_id: ShardId,
        from: u32,
        limit: usize,
    ) -> Result<Vec<(u32, Outcome)>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let sql = format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE job_id = $1 AND shard_id = $2 \
                 AND unit >= $3 ORDER BY unit LIMIT $4"
            );
            let statement = client.prepare_cached(&sql).await?;
            let limit = limit.min(i64::MAX as usize) as i64;
            let results = client
                .query(
                    &statement,
                    &[
                        &id(job_id),
                        &i64::from(shard_id.get()),
                        &i64::from(from),
                        &limit,
                    ],
                )
                .await?
                .iter()
                .map(|row| rows::outcome(job_id, row))
                .collect::<Result<Vec<_>>>()?;
            Ok(results)
        })
    }
}
