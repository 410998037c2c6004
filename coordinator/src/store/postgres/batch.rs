//! Coalescing a write's shard changes: however many shards a group commit carries, their
//! leases, rows and outcomes go in as three statements (arrays unnested), not two per shard —
//! per-statement work on both sides of the connection is what made PostgreSQL slow per shard.
//! Other changes keep their own statements, in order, before these.

use super::commit::{Stmt, stmt};
use super::rows::value_bytes;
use super::schema::{SHARD_COMMITTED, SHARD_GAVE_UP, SHARD_LEASED};
use crate::scheduler::Persist;
use crate::store::WriteOp;
use concur_core::report::ShardRow;
use concur_core::{JobId, Outcome, ShardId};
use std::collections::HashMap;

fn big(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

/// One shard's final row, as stored.
struct FullRow<'a> {
    job_id: JobId,
    row: &'a ShardRow,
    state: i16,
    units_ok: u64,
    units_failed: u64,
}

/// The statements of `ops`: each non-shard change its own, then the coalesced shard changes.
pub(super) fn statements(ops: &[WriteOp]) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    // The last lease of a shard wins (a shard may be re-leased within one group commit).
    let mut leased: HashMap<(JobId, ShardId), u32> = HashMap::new();
    let mut rows: Vec<FullRow<'_>> = Vec::new();
    let mut results: Vec<(JobId, ShardId, &[Outcome])> = Vec::new();
    for op in ops {
        match op {
            WriteOp::Persist(Persist::ShardLeased { lease }) => {
                leased.insert((lease.job_id, lease.shard_id), lease.attempt.get());
            }
            WriteOp::Persist(Persist::ShardCommitted {
                lease,
                row,
                outcomes,
                ..
            }) => {
                let ok = outcomes.iter().filter(|o| o.ok).count() as u64;
                rows.push(FullRow {
                    job_id: lease.job_id,
                    row,
                    state: SHARD_COMMITTED,
                    units_ok: ok,
                    units_failed: outcomes.len() as u64 - ok,
                });
                results.push((lease.job_id, lease.shard_id, outcomes));
            }
            WriteOp::Persist(Persist::ShardGaveUp { job_id, row, .. }) => rows.push(FullRow {
                job_id: *job_id,
                row,
                state: SHARD_GAVE_UP,
                units_ok: 0,
                units_failed: row.items,
            }),
            other => super::write::apply(other, &mut stmts),
        }
    }
    // A shard whose end is in this write needs no lease row of its own.
    for row in &rows {
        leased.remove(&(row.job_id, row.row.shard_id));
    }
    if !leased.is_empty() {
        stmts.push(leases(&leased));
    }
    if !rows.is_empty() {
        stmts.push(full_rows(&rows));
    }
    if !results.is_empty() {
        stmts.push(outcomes(&results));
    }
    stmts
}

fn leases(leased: &HashMap<(JobId, ShardId), u32>) -> Stmt {
    let (mut jobs, mut shards, mut attempts) = (Vec::new(), Vec::new(), Vec::new());
    for ((job_id, shard_id), attempt) in leased {
        jobs.push(big(job_id.get()));
        shards.push(i64::from(shard_id.get()));
        attempts.push(i64::from(*attempt));
    }
    stmt!(
        "INSERT INTO shards (job_id, shard_id, attempt, state) \
         SELECT j, s, a, $4 FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS t(j, s, a) \
         ON CONFLICT (job_id, shard_id) DO UPDATE SET attempt = excluded.attempt",
        jobs,
        shards,
        attempts,
        SHARD_LEASED,
    )
}

fn full_rows(rows: &[FullRow<'_>]) -> Stmt {
    let col = |f: &dyn Fn(&FullRow<'_>) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let real = |f: &dyn Fn(&ShardRow) -> f64| rows.iter().map(|r| f(r.row)).collect::<Vec<f64>>();
    stmt!(
        "INSERT INTO shards (job_id, shard_id, attempt, state, worker_id, host, pid, items, \
         run_s, cpu_s, queue_s, round_trip_s, item_time_s, concurrency, error, units_ok, \
         units_failed, start_s, start_error_s, slot) \
         SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::SMALLINT[], \
         $5::BIGINT[], $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::FLOAT8[], $10::FLOAT8[], \
         $11::FLOAT8[], $12::FLOAT8[], $13::FLOAT8[], $14::BIGINT[], $15::TEXT[], \
         $16::BIGINT[], $17::BIGINT[], $18::FLOAT8[], $19::FLOAT8[], $20::BIGINT[]) \
         ON CONFLICT (job_id, shard_id) DO UPDATE SET attempt = excluded.attempt, \
         state = excluded.state, worker_id = excluded.worker_id, host = excluded.host, \
         pid = excluded.pid, items = excluded.items, run_s = excluded.run_s, \
         cpu_s = excluded.cpu_s, queue_s = excluded.queue_s, \
         round_trip_s = excluded.round_trip_s, item_time_s = excluded.item_time_s, \
         concurrency = excluded.concurrency, error = excluded.error, \
         units_ok = excluded.units_ok, units_failed = excluded.units_failed, \
         start_s = excluded.start_s, start_error_s = excluded.start_error_s, \
         slot = excluded.slot",
        col(&|r| big(r.job_id.get())),
        col(&|r| i64::from(r.row.shard_id.get())),
        col(&|r| i64::from(r.row.attempt.get())),
        rows.iter().map(|r| r.state).collect::<Vec<i16>>(),
        col(&|r| big(r.row.worker_id.get())),
        rows.iter()
            .map(|r| r.row.host.clone())
            .collect::<Vec<String>>(),
        col(&|r| i64::from(r.row.pid)),
        col(&|r| big(r.row.items)),
        real(&|r| r.run_s),
        real(&|r| r.cpu_s),
        real(&|r| r.queue_s),
        real(&|r| r.round_trip_s),
        real(&|r| r.item_time_s),
        col(&|r| i64::from(r.row.concurrency)),
        rows.iter()
            .map(|r| r.row.error.clone())
            .collect::<Vec<Option<String>>>(),
        col(&|r| big(r.units_ok)),
        col(&|r| big(r.units_failed)),
        real(&|r| r.start_s),
        real(&|r| r.start_error_s),
        col(&|r| i64::from(r.row.slot)),
    )
}

fn outcomes(shards: &[(JobId, ShardId, &[Outcome])]) -> Stmt {
    let total: usize = shards.iter().map(|(_, _, o)| o.len()).sum();
    let (mut jobs, mut shard_ids, mut units) = (
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
    );
    let mut each: Vec<&Outcome> = Vec::with_capacity(total);
    for (job_id, shard_id, outcomes) in shards {
        for (unit, outcome) in outcomes.iter().enumerate() {
            jobs.push(big(job_id.get()));
            shard_ids.push(i64::from(shard_id.get()));
            units.push(unit as i64);
            each.push(outcome);
        }
    }
    stmt!(
        "INSERT INTO results (job_id, shard_id, unit, ok, duration_s, value, status, bytes, \
         error, start_s, lane) \
         SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BOOLEAN[], \
         $5::FLOAT8[], $6::BYTEA[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[], $10::FLOAT8[], \
         $11::BIGINT[]) \
         ON CONFLICT (job_id, shard_id, unit) DO UPDATE SET ok = excluded.ok, \
         duration_s = excluded.duration_s, value = excluded.value, \
         status = excluded.status, bytes = excluded.bytes, error = excluded.error, \
         start_s = excluded.start_s, lane = excluded.lane",
        jobs,
        shard_ids,
        units,
        each.iter().map(|o| o.ok).collect::<Vec<bool>>(),
        each.iter().map(|o| o.duration_s).collect::<Vec<f64>>(),
        each.iter()
            .map(|o| value_bytes(o.value))
            .collect::<Vec<Option<Vec<u8>>>>(),
        each.iter()
            .map(|o| i64::from(o.status))
            .collect::<Vec<i64>>(),
        each.iter().map(|o| big(o.bytes)).collect::<Vec<i64>>(),
        each.iter()
            .map(|o| (!o.error.is_empty()).then(|| o.error.clone()))
            .collect::<Vec<Option<String>>>(),
        each.iter().map(|o| o.start_s).collect::<Vec<f64>>(),
        each.iter().map(|o| i64::from(o.lane)).collect::<Vec<i64>>(),
    )
}
