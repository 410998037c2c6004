//! The PostgreSQL store's own cases against a real server (the shared suite in `store::tests`
//! runs over it too): restart and id reuse, schema versions, errors that name the server, and
//! the lease with its write fence.

use super::testing::database;
use super::*;
use crate::scheduler::{Persist, Scheduler, SchedulerConfig};
use crate::store::tests::{run_job_on, sum_spec};
use crate::store::{StoreError, StoreRead, WriteOp};
use concur_core::report::JobState;
use concur_core::{JobId, WorkerId};
use std::time::Instant;

const LONG: Duration = Duration::from_secs(600);

/// A submission that nothing has stored yet.
fn new_job(s: &mut Scheduler, numbers: &str) -> NewJobRecord {
    let spec = Arc::new(sum_spec(numbers, 2));
    let admission = s.admit(&spec).unwrap();
    let now = Instant::now();
    let job = admission.build(spec.clone(), now, 5_000);
    NewJobRecord {
        record: job.record(now),
        spec,
        shards: admission.shards,
    }
}

#[test]
fn a_restart_restores_unfinished_jobs_and_never_reuses_ids() {
    let db = database();
    let mut store = Postgres::open(&db.url, None).unwrap();
    let mut s = Scheduler::new(SchedulerConfig::default());
    let (job, record) = run_job_on(&mut s, &mut store, sum_spec("0..30", 3), 2, 1, false);
    assert_eq!(record.shards_done, 1);
    store
        .apply(&[WriteOp::Persist(Persist::WorkerIdsReserved {
            through: WorkerId(2048),
        })])
        .unwrap();
    // A deleted (and pruned) job's id stays used.
    let (deleted, _) = run_job_on(&mut s, &mut store, sum_spec("0..3", 1), 1, 1, false);
    store.apply(&[WriteOp::Delete(deleted)]).unwrap();
    while store.prune(&Retention::default(), 10_000, 3).unwrap() {}
    drop(store);
    let mut store = Postgres::open(&db.url, None).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.next_job_id, JobId(deleted.get() + 1));
    assert_eq!(loaded.worker_ids_through, WorkerId(2048));
    assert_eq!(loaded.jobs.len(), 1);
    let restored = &loaded.jobs[0];
    assert_eq!((restored.job_id, restored.shards), (job, 3));
    let done = restored.shards_stored.iter().filter(|s| s.end.is_some());
    assert_eq!(done.count(), 1, "the committed shard stays committed");
    let leased = restored.shards_stored.iter().filter(|s| s.end.is_none());
    assert_eq!(
        leased.count(),
        2,
        "leased shards are known with their attempts"
    );
    // A lower reservation never lowers the high-water mark.
    store
        .apply(&[WriteOp::Persist(Persist::WorkerIdsReserved {
            through: WorkerId(7),
        })])
        .unwrap();
    assert_eq!(store.load().unwrap().worker_ids_through, WorkerId(2048));
}

#[test]
fn a_schema_from_a_newer_concur_is_refused() {
    let db = database();
    let store = Postgres::open(&db.url, None).unwrap();
    drop(store);
    // Opening again finds the current version and changes nothing.
    let store = Postgres::open(&db.url, None).unwrap();
    let backend = store.backend.clone();
    backend
        .run(async {
            let client = backend.client().await?;
            client
                .execute(
                    "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
                    &[],
                )
                .await?;
            Ok(())
        })
        .unwrap();
    let err = Postgres::open(&db.url, None).unwrap_err().to_string();
    assert!(
        err.contains("version 99") && err.contains("newer concur"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    // A port nobody listens on: bound, read, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://concur:secret@127.0.0.1:{port}/concur");
    let err = Postgres::open(&url, None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Postgres { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("secret"), "never the password: {text}");
}

#[test]
fn the_lease_is_taken_once_renewed_by_its_holder_and_retaken_after_expiry() {
    let db = database();
    let store = Postgres::open(&db.url, None).unwrap();
    assert_eq!(store.current().unwrap(), None, "nobody has held it");
    let first = store.acquire("a", LONG).unwrap().expect("free");
    assert_eq!(store.acquire("b", LONG).unwrap(), None, "held by a");
    assert_eq!(
        store.acquire("a", LONG).unwrap(),
        None,
        "a renews, not re-acquires"
    );
    assert!(store.renew("a", first, LONG).unwrap());
    let lease = store.current().unwrap().unwrap();
    assert_eq!(
        (lease.holder.as_str(), lease.epoch, lease.live),
        ("a", first, true)
    );
    // Let it lapse (a zero TTL expires at once by the database's clock), then b takes it.
    assert!(store.renew("a", first, Duration::ZERO).unwrap());
    assert!(!store.current().unwrap().unwrap().live);
    let second = store.acquire("b", LONG).unwrap().expect("lapsed");
    assert_eq!(second, first + 1, "every acquisition bumps the epoch");
    assert!(!store.renew("a", first, LONG).unwrap(), "a was deposed");
    assert!(!store.release("a", first).unwrap());
    assert!(store.release("b", second).unwrap());
    assert_eq!(store.current().unwrap(), None);
    let third = store.acquire("a", LONG).unwrap().expect("released");
    assert_eq!(
        third,
        second + 1,
        "a released epoch is never handed out again"
    );
}

#[test]
fn a_deposed_coordinator_commits_nothing() {
    let db = database();
    let mut old = Postgres::open(&db.url, None).unwrap();
    let epoch = old.acquire("old", Duration::ZERO).unwrap().unwrap();
    old.set_epoch(Some(epoch));
    let mut s = Scheduler::new(SchedulerConfig::default());
    let kept = new_job(&mut s, "0..4");
    old.submit(&kept).unwrap();
    // The lease lapsed; a standby takes over with the next epoch.
    let mut new = Postgres::open(&db.url, None).unwrap();
    let taken = new.acquire("new", LONG).unwrap().expect("lapsed");
    assert_eq!(taken, epoch + 1);
    new.set_epoch(Some(taken));
    let reader = old.reader();
    let before = reader.jobs(&[], 0).unwrap();
    // Every write of the deposed store is refused and leaves nothing behind.
    let lost = new_job(&mut s, "0..8");
    let fenced = |e: StoreError| matches!(e, StoreError::Fenced { epoch: e1, current } if e1 == epoch && current == taken);
    assert!(fenced(old.submit(&lost).unwrap_err()));
    let ops = [
        WriteOp::Persist(Persist::WorkerIdsReserved {
            through: WorkerId(4096),
        }),
        WriteOp::Delete(kept.record.job_id),
    ];
    assert!(fenced(old.apply(&ops).unwrap_err()));
    let forget_all = Retention {
        max_jobs: 0,
        max_age: Some(Duration::ZERO),
    };
    assert!(fenced(
        old.prune(&forget_all, u64::MAX / 2, 100).unwrap_err()
    ));
    assert!(reader.job(lost.record.job_id).unwrap().is_none());
    assert!(reader.job(kept.record.job_id).unwrap().is_some());
    assert_eq!(reader.jobs(&[], 0).unwrap().1, before.1);
    let loaded = new.load().unwrap();
    assert_eq!(loaded.worker_ids_through, WorkerId(0));
    assert_eq!(loaded.next_job_id, JobId(kept.record.job_id.get() + 1));
    // The message says what happened.
    let text = old.submit(&lost).unwrap_err().to_string();
    assert!(text.contains(&format!("epoch {epoch}")) && text.contains(&taken.to_string()));
    // The new holder writes.
    new.submit(&lost).unwrap();
    let stored = reader.job(lost.record.job_id).unwrap().unwrap();
    assert_eq!(stored.state, JobState::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_from_async_start_up_code_and_blocking_threads() {
    // The coordinator opens its store inside its async `main`, then reads on blocking threads.
    let db = database();
    let mut store = Postgres::open(&db.url, None).unwrap();
    assert!(store.load().unwrap().jobs.is_empty());
    let reader = Arc::new(store.reader());
    let shared = reader.clone();
    let (jobs, _) = tokio::task::spawn_blocking(move || shared.jobs(&[], 0).unwrap())
        .await
        .unwrap();
    assert!(jobs.is_empty());
    // Dropping the store's runtime inside an async context must not panic.
    drop(store);
    drop(reader);
}
