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

/// Median and mean time per shard, in microseconds, applying `group` shards per `apply`.
fn measure(
    store: &mut dyn StoreWrite,
    job: &NewJobRecord,
    batches: &[Vec<WriteOp>],
    group: usize,
) -> (f64, f64) {
    store.submit(job).unwrap();
    let (warm_up, timed) = batches.split_at(WARM_UP);
    for batch in warm_up {
        store.apply(batch).unwrap();
    }
    let mut times: Vec<f64> = Vec::new();
    for shards in timed.chunks(group) {
        let batch: Vec<WriteOp> = shards.iter().flatten().cloned().collect();
        let start = Instant::now();
        store.apply(&batch).unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e6 / shards.len() as f64);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    (times[times.len() / 2], mean)
}

/// A PostgreSQL store on a fresh database, fenced by a lease it holds; `options` are server
/// settings for its connections.
fn postgres(options: &str) -> (Postgres, super::testing::TestDb) {
    let db = database();
    let url = format!("{} options='{options}'", db.url);
    let mut store = Postgres::open(&url, None).unwrap();
    store.set_epoch(store.acquire("bench", Duration::from_secs(600)).unwrap());
    (store, db)
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn apply_of_one_committed_64_item_shard_sqlite_vs_postgres() {
    let (job, batches) = workload();
    println!("time per committed {ITEMS}-item shard, {SHARDS} shards, µs (median / mean):");
    println!("  shards per apply:                    1                    16 (group commit)");
    let mut first = Vec::new();
    for (name, options) in [
        ("sqlite (WAL, synchronous=NORMAL)", None),
        ("postgres, fenced (commit flushed)", Some("")),
        // SQLite's synchronous=NORMAL does not flush at commit either: the closest PostgreSQL
        // setting, chosen per connection in the URL.
        (
            "postgres, fenced, synchronous_commit=off",
            Some("-c synchronous_commit=off"),
        ),
    ] {
        let mut row = format!("  {name:<40}");
        for group in [1, 16] {
            let dir = temp_dir("bench");
            let (median, mean) = match options {
                None => measure(&mut Sqlite::open(&dir).unwrap(), &job, &batches, group),
                Some(options) => measure(&mut postgres(options).0, &job, &batches, group),
            };
            let _ = std::fs::remove_dir_all(dir);
            row.push_str(&format!("{median:8.1} / {mean:8.1}   "));
            if group == 1 {
                first.push(median);
            }
        }
        println!("{row}");
    }
    println!(
        "  postgres / sqlite, one shard per apply (median): {:.1}x flushed, {:.1}x not flushed",
        first[1] / first[0],
        first[2] / first[0]
    );
}
