//! A measurement to quote, not a check: the time one `apply` of one committed 64-item shard
//! takes in SQLite and in PostgreSQL (a local throwaway server), side by side in one run.
//!
//! `cargo test -p concur-coordinator --release --features postgres-tests --lib
//! store::postgres::bench -- --ignored --nocapture`

use super::Postgres;
use super::testing::database;
use crate::scheduler::testing::{RecordingComm, complete, info};
use crate::scheduler::{Persist, Scheduler, SchedulerConfig};
use crate::store::sqlite::Sqlite;
use crate::store::tests::{sum_spec, temp_dir};
use crate::store::{NewJobRecord, StoreWrite, WriteOp};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Items per shard.
const ITEMS: u32 = 64;
/// Shards timed per store, after `WARM_UP` untimed ones.
const SHARDS: u32 = 400;
const WARM_UP: usize = 20;

/// One job of `SHARDS + WARM_UP` shards, and the ops each shard's commit persists.
fn workload() -> (NewJobRecord, Vec<Vec<WriteOp>>) {
    let shards = SHARDS + WARM_UP as u32;
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = RecordingComm::default();
    let now = Instant::now();
    let worker = s.on_worker_attached(info(1), now, &mut comm).unwrap();
    let spec = Arc::new(sum_spec(&format!("0..{}", ITEMS * shards), shards));
    let admission = s.admit(&spec).unwrap();
    let job = admission.build(spec.clone(), now, 1_000);
    let submitted = NewJobRecord {
        record: job.record(now),
        spec,
        shards: admission.shards,
    };
    s.on_job_submitted(job, now, &mut comm);
    comm.persisted.clear();
    let mut batches = Vec::new();
    while let Some((_, assignment)) = comm.assigned.pop() {
        complete(&mut s, &mut comm, worker, &assignment);
        // One committed shard (and the lease of the next, as the writer would group them).
        let batch: Vec<WriteOp> = comm.persisted.drain(..).map(WriteOp::Persist).collect();
        assert!(batch.iter().any(|op| matches!(
            op,
            WriteOp::Persist(Persist::ShardCommitted { outcomes, .. }) if outcomes.len() == ITEMS as usize
        )));
        batches.push(batch);
    }
    assert_eq!(batches.len(), shards as usize);
    (submitted, batches)
}

/// Median and mean time per `apply`, in microseconds.
fn measure(store: &mut dyn StoreWrite, job: &NewJobRecord, batches: &[Vec<WriteOp>]) -> (f64, f64) {
    store.submit(job).unwrap();
    let mut times: Vec<Duration> = Vec::with_capacity(batches.len());
    for batch in batches {
        let start = Instant::now();
        store.apply(batch).unwrap();
        times.push(start.elapsed());
    }
    let mut timed = times.split_off(WARM_UP);
    timed.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = timed.iter().map(|d| micros(*d)).sum::<f64>() / timed.len() as f64;
    (micros(timed[timed.len() / 2]), mean)
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn apply_of_one_committed_64_item_shard_sqlite_vs_postgres() {
    let (job, batches) = workload();
    let dir = temp_dir("bench");
    let mut sqlite = Sqlite::open(&dir).unwrap();
    let (sqlite_median, sqlite_mean) = measure(&mut sqlite, &job, &batches);
    let db = database();
    let mut unfenced = Postgres::open(&db.url, None).unwrap();
    let (pg_median, pg_mean) = measure(&mut unfenced, &job, &batches);
    // Fenced, as an active coordinator writes: one more statement per transaction.
    let fenced_db = database();
    let mut fenced = Postgres::open(&fenced_db.url, None).unwrap();
    let epoch = fenced.acquire("bench", Duration::from_secs(600)).unwrap();
    fenced.set_epoch(epoch);
    let (fenced_median, fenced_mean) = measure(&mut fenced, &job, &batches);
    println!("apply of one committed {ITEMS}-item shard, {SHARDS} shards (µs per apply):");
    println!("  sqlite (WAL, synchronous=NORMAL)   median {sqlite_median:8.1}  mean {sqlite_mean:8.1}");
    println!("  postgres (synchronous_commit=on)   median {pg_median:8.1}  mean {pg_mean:8.1}");
    println!("  postgres, fenced by an epoch       median {fenced_median:8.1}  mean {fenced_mean:8.1}");
    println!(
        "  postgres / sqlite (median): {:.2}x unfenced, {:.2}x fenced",
        pg_median / sqlite_median,
        fenced_median / sqlite_median
    );
    drop(sqlite);
    let _ = std::fs::remove_dir_all(dir);
}
