//! Schema migrations: a database written by an older concur is brought to the current schema
//! when opened, in one transaction, so an upgrade keeps every job and report.
//!
//! Version 1 (the first release) kept each job's whole spec and each shard's outcomes as JSON;
//! version 2 keeps URLs in chunks, one row per item outcome and a summary per job; version 3
//! adds where each shard and unit ran on the job's timeline.

use super::rows::corrupt;
use super::schema::{self, VERSION};
use super::write;
use crate::scheduler::Persist;
use crate::scheduler::tally::{Tally, oks};
use crate::store::{NewJobRecord, Result, StoreError, WriteOp};
use concur_core::plan::Plan;
use concur_core::report::{ItemCounts, JobRecord, JobState, JobTotals, ShardRow};
use concur_core::{Attempt, JobId, JobSpec, LeaseKey, Outcome, ShardId};
use rusqlite::Connection;
use std::sync::Arc;

/// Brings the database to [`VERSION`].
pub(crate) fn to_current(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match version {
        VERSION => Ok(()),
        2 => from_v2(conn),
        0 if has_table(conn, "jobs")? => from_v1(conn),
        0 => Ok(schema::create(conn)?),
        newer => Err(StoreError::Corrupt {
            what: "schema".into(),
            reason: format!(
                "version {newer} was written by a newer concur (this one reads up to {VERSION})"
            ),
        }),
    }
}

fn from_v2(conn: &Connection) -> Result<()> {
    tracing::info!("migrating the state database from schema version 2 to {VERSION}");
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {} PRAGMA user_version = {VERSION}; COMMIT;",
        schema::V2_TO_V3
    ))
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK;");
    })?;
    Ok(())
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )? > 0)
}

/// A version-1 job row.
struct V1Job {
    id: i64,
    spec: String,
    shards: u32,
    submitted_unix_ms: i64,
    state: String,
    wall_s: Option<f64>,
}

fn from_v1(conn: &Connection) -> Result<()> {
    tracing::info!("migrating the state database from schema version 1 to {VERSION}");
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE jobs RENAME TO v1_jobs;
         ALTER TABLE shards RENAME TO v1_shards;",
    )?;
    let result = (|| -> Result<()> {
        conn.execute_batch(schema::SCHEMA)?;
        let jobs: Vec<V1Job> = conn
            .prepare("SELECT id, spec, shards, submitted_unix_ms, state, wall_s FROM v1_jobs ORDER BY id")?
            .query_map([], |row| {
                Ok(V1Job {
                    id: row.get(0)?,
                    spec: row.get(1)?,
                    shards: row.get(2)?,
                    submitted_unix_ms: row.get(3)?,
                    state: row.get(4)?,
                    wall_s: row.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        for job in jobs {
            migrate_job(conn, job)?;
        }
        conn.execute_batch("DROP TABLE v1_shards; DROP TABLE v1_jobs;")?;
        conn.pragma_update(None, "user_version", VERSION)?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(conn.execute_batch("COMMIT;")?),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK;");
            Err(e)
        }
    }
}

fn migrate_job(tx: &Connection, job: V1Job) -> Result<()> {
    let job_id = JobId(job.id as u64);
    let spec: JobSpec = serde_json::from_str(&job.spec).map_err(|e| corrupt(job_id, "spec", e))?;
    let state: JobState = job
        .state
        .parse()
        .map_err(|e: String| corrupt(job_id, "state", e))?;
    let plan = Plan::new(&spec.workload, job.shards);
    let mut record = JobRecord {
        job_id,
        state: JobState::Pending,
        workload: spec.workload.name().to_string(),
        strategy: spec.strategy,
        concurrency: spec.concurrency,
        label: spec.label.clone(),
        submitted_unix_ms: job.submitted_unix_ms.max(0) as u64,
        wall_s: 0.0,
        items: ItemCounts {
            total: plan.items(),
            ..ItemCounts::default()
        },
        shards_total: plan.len(),
        shards_done: 0,
        shards_running: 0,
        totals: JobTotals::default(),
        stale_results_discarded: 0,
    };
    write::submit(
        tx,
        &NewJobRecord {
            record: record.clone(),
            spec: Arc::new(spec),
            shards: job.shards,
        },
    )?;
    let mut tally = Tally::new(&plan);
    let mut statement = tx.prepare(
        "SELECT shard_id, attempt, done, row, outcomes FROM v1_shards WHERE job_id = ?1",
    )?;
    let shards = statement.query_map([job.id], |row| {
        Ok((
            row.get::<_, u32>(0)?,
            row.get::<_, u32>(1)?,
            row.get::<_, bool>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
        ))
    })?;
    for shard in shards {
        let (shard_id, attempt, done, row, outcomes) = shard?;
        let lease = LeaseKey {
            job_id,
            shard_id: ShardId(shard_id),
            attempt: Attempt(attempt),
        };
        let event = match (done, row, outcomes) {
            (true, Some(row), Some(outcomes)) if shard_id < plan.len() => {
                let row: ShardRow =
                    serde_json::from_str(&row).map_err(|e| corrupt(job_id, "shard row", e))?;
                let outcomes: Vec<Outcome> = serde_json::from_str(&outcomes)
                    .map_err(|e| corrupt(job_id, "shard outcomes", e))?;
                let first_item = plan.shard(shard_id).first_item;
                tally.add_shard(first_item, oks(&outcomes), Some(&row));
                record.shards_done += 1;
                Persist::ShardCommitted {
                    lease,
                    first_item,
                    row,
                    outcomes,
                }
            }
            _ => Persist::ShardLeased { lease },
        };
        write::apply(tx, &WriteOp::Persist(event))?;
    }
    if state.is_final() {
        record.state = state;
        record.wall_s = job.wall_s.unwrap_or(0.0);
        record.items = tally.items;
        record.totals = tally.totals;
        write::apply(tx, &WriteOp::Persist(Persist::JobFinished { record }))?;
    } else if state == JobState::Running {
        tx.execute("UPDATE jobs SET state = 'running' WHERE id = ?1", [job.id])?;
    }
    Ok(())
}
