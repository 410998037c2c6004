//! Reading SQLite from any thread: a small pool of read-only connections, which WAL lets run
//! beside the writer without waiting for it.

use super::rows::{self, JOB_COLUMNS, RESULT_COLUMNS, SHARD_COLUMNS, corrupt};
use crate::scheduler::StoredShard;
use crate::store::{Result, StoreRead, StoredInput};
use concur_core::report::{JobRecord, JobState};
use concur_core::{JobId, Outcome, ShardId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Idle read connections kept at most.
const POOL: usize = 4;

/// Reads the store; clone-free, shared behind an `Arc`.
#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a pooled connection (opening one if none is idle).
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.set_prepared_statement_cache_capacity(32);
                conn
            }
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL {
            idle.push(conn);
        }
        result
    }
}

impl StoreRead for SqliteReader {
    fn job(&self, job_id: JobId) -> Result<Option<JobRecord>> {
        self.with(|conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
            let mut statement = conn.prepare_cached(&sql)?;
            let mut rows = statement.query([job_id.get() as i64])?;
            rows.next()?.map(rows::job_record).transpose()
        })
    }

    fn jobs(&self, states: &[JobState], limit: u32) -> Result<(Vec<JobRecord>, u64)> {
        self.with(|conn| {
            let filter = if states.is_empty() {
                String::new()
            } else {
                let names: Vec<String> =
                    states.iter().map(|s| format!("'{}'", s.as_str())).collect();
                format!("WHERE state IN ({})", names.join(", "))
            };
            let matched: i64 =
                conn.query_row(&format!("SELECT COUNT(*) FROM jobs {filter}"), [], |row| {
                    row.get(0)
                })?;
            let limit = if limit == 0 { -1 } else { i64::from(limit) };
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs {filter} ORDER BY id DESC LIMIT ?1");
            let mut statement = conn.prepare_cached(&sql)?;
            let mut rows = statement.query([limit])?;
            let mut jobs = Vec::new();
            while let Some(row) = rows.next()? {
                jobs.push(rows::job_record(row)?);
            }
            jobs.reverse();
            Ok((jobs, matched as u64))
        })
    }

    fn input(&self, job_id: JobId) -> Result<Option<StoredInput>> {
        self.with(|conn| {
            let row: Option<(String, i64, u32)> = conn
                .prepare_cached(
                    "SELECT spec, items_total, requested_shards FROM jobs WHERE id = ?1",
                )?
                .query_row([job_id.get() as i64], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            row.map(|(spec, items, shards)| {
                Ok(StoredInput {
                    spec: std::sync::Arc::new(rows::spec(job_id, &spec)?),
                    items: items.max(0) as u64,
                    shards,
                })
            })
            .transpose()
        })
    }

    fn url_chunk(&self, job_id: JobId, chunk: u64) -> Result<Option<String>> {
        self.with(|conn| {
            Ok(conn
                .prepare_cached("SELECT text FROM urls WHERE job_id = ?1 AND chunk = ?2")?
                .query_row(params![job_id.get() as i64, chunk as i64], |row| row.get(0))
                .optional()?)
        })
    }

    fn shards(&self, job_id: JobId, from: ShardId, limit: u32) -> Result<Vec<StoredShard>> {
        self.with(|conn| {
            let sql = format!(
                "SELECT {SHARD_COLUMNS} FROM shards WHERE job_id = ?1 AND shard_id >= ?2 \
                 AND shard_id < ?3 ORDER BY shard_id"
            );
            let end = i64::from(from.get()) + i64::from(limit);
            let shards = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![job_id.get() as i64, from.get(), end],
                    rows::stored_shard,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| corrupt(job_id, "shards", e))?;
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
        self.with(|conn| {
            let sql = format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE job_id = ?1 AND shard_id = ?2 \
                 AND unit >= ?3 ORDER BY unit LIMIT ?4"
            );
            let results = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![job_id.get() as i64, shard_id.get(), from, limit as i64],
                    rows::outcome,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| corrupt(job_id, "results", e))?;
            Ok(results)
        })
    }
}
