//! One suite for both stores (what a restart, a report and retention need), plus SQLite's own
//! cases: locking, empty and corrupt files, migration from the first schema.

use super::memory::MemoryStore;
use super::sqlite::Sqlite;
use super::*;
use crate::scheduler::testing::{RecordingComm, complete, info};
use crate::scheduler::{Scheduler, SchedulerConfig};
use concur_core::report::ItemCounts;
use concur_core::workload::FetchSpec;
use concur_core::{NumberSpec, Strategy, UrlList, Workload, kernel};
use std::time::{Duration, Instant};

pub(super) fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("concur-store-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub(super) fn sum_spec(numbers: &str, shards: u32) -> JobSpec {
    JobSpec {
        pacing: Default::default(),
        workload: Workload::SumSquares(NumberSpec::parse(numbers).unwrap()),
        strategy: Strategy::Sequential,
        concurrency: 1,
        shards: Some(shards),
        max_retries: None,
        label: "stored".into(),
    }
}

/// Runs a job through a scheduler, writing what it persists (and its submission) to `store`.
/// Finishes `finish` of its shards; returns the job id.
pub(super) fn run_job(
    store: &mut dyn StoreWrite,
    spec: JobSpec,
    slots: u32,
    finish: usize,
    cancel: bool,
) -> (JobId, JobRecord) {
    run_job_on(
        &mut Scheduler::new(SchedulerConfig::default()),
        store,
        spec,
        slots,
        finish,
        cancel,
    )
}

pub(super) fn run_job_on(
    s: &mut Scheduler,
    store: &mut dyn StoreWrite,
    spec: JobSpec,
    slots: u32,
    finish: usize,
    cancel: bool,
) -> (JobId, JobRecord) {
    let mut comm = RecordingComm::default();
    let now = Instant::now();
    let worker = s.on_worker_attached(info(slots), now, &mut comm).unwrap();
    let spec = Arc::new(spec);
    let admission = s.admit(&spec).unwrap();
    let job = admission.build(spec.clone(), now, 1_000);
    store
        .submit(&NewJobRecord {
            record: job.record(now),
            spec,
            shards: admission.shards,
        })
        .unwrap();
    s.on_job_submitted(job, now, &mut comm);
    for _ in 0..finish {
        let Some((_, assignment)) = comm.assigned.pop() else {
            break;
        };
        complete(s, &mut comm, worker, &assignment);
    }
    if cancel {
        s.on_cancel(admission.job_id, now, &mut comm).unwrap();
    }
    let ops: Vec<WriteOp> = comm.persisted.drain(..).map(WriteOp::Persist).collect();
    store.apply(&ops).unwrap();
    let record = s.job_record(admission.job_id, now).unwrap();
    (admission.job_id, record)
}

/// A store under test: its name, writer, reader and scratch directory.
type UnderTest = (
    &'static str,
    Box<dyn StoreWrite>,
    Box<dyn StoreRead>,
    Scratch,
);

/// A scratch directory, and what must outlive the store (a test PostgreSQL server).
pub(super) struct Scratch(PathBuf, #[allow(dead_code)] Option<Box<dyn std::any::Any>>);

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

fn stores() -> Vec<UnderTest> {
    let dir = temp_dir("suite");
    let sqlite = Sqlite::open(&dir).unwrap();
    let sqlite_reader = sqlite.reader();
    let memory = MemoryStore::new();
    let memory_reader = memory.reader();
    #[allow(unused_mut)] // PostgreSQL joins only with the `postgres-tests` feature.
    let mut stores: Vec<UnderTest> = vec![
        (
            "sqlite",
            Box::new(sqlite),
            Box::new(sqlite_reader),
            Scratch(dir.clone(), None),
        ),
        (
            "memory",
            Box::new(memory),
            Box::new(memory_reader),
            Scratch(dir.clone(), None),
        ),
    ];
    #[cfg(feature = "postgres-tests")]
    {
        let (pg, pg_reader, server) = super::postgres::testing::suite_store();
        stores.push(("postgres", pg, pg_reader, Scratch(dir, Some(server))));
    }
    stores
}

#[test]
fn a_finished_job_reads_back_with_its_items_in_order() {
    for (name, mut store, reader, dir) in stores() {
        let (job, record) = run_job(store.as_mut(), sum_spec("100..130", 3), 3, 3, false);
        assert_eq!(record.state, JobState::Succeeded, "{name}");
        let stored = reader.job(job).unwrap().unwrap();
        assert_eq!(stored.state, JobState::Succeeded, "{name}");
        assert_eq!(stored.items, record.items, "{name}");
        assert_eq!(stored.totals.processes, 1, "{name}");
        let input = reader.input(job).unwrap().unwrap();
        assert_eq!((input.items, input.shards), (30, 3), "{name}");
        let shards = reader.shards(job, ShardId(0), 10).unwrap();
        assert_eq!(shards.len(), 3, "{name}");
        let mut n = 100;
        for shard in shards {
            let end = shard.end.expect("committed");
            assert_eq!((end.units_ok, end.units_failed), (10, 0), "{name}");
            for (_, outcome) in reader.results(job, shard.shard_id, 0, 100).unwrap() {
                assert_eq!(
                    Some(outcome.value),
                    kernel::closed_form(n),
                    "{name} n = {n}"
                );
                n += 1;
            }
        }
        assert_eq!(n, 130, "{name}: every item read back");
        let page = reader.results(job, ShardId(1), 4, 3).unwrap();
        assert_eq!(page.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [4, 5, 6]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn fetch_urls_are_stored_in_chunks() {
    for (name, mut store, reader, dir) in stores() {
        let urls: UrlList = (0..URL_CHUNK + 5)
            .map(|i| format!("http://h/{i}"))
            .collect();
        let spec = JobSpec {
            workload: Workload::Fetch(FetchSpec::new(urls)),
            ..sum_spec("1", 1)
        };
        let (job, _) = run_job(store.as_mut(), spec, 1, 0, false);
        let first = reader.url_chunk(job, 0).unwrap().unwrap();
        assert_eq!(first.lines().count(), URL_CHUNK, "{name}");
        assert_eq!(first.lines().nth(3), Some("http://h/3"), "{name}");
        let second = reader.url_chunk(job, 1).unwrap().unwrap();
        assert_eq!(
            second.lines().last(),
            Some(format!("http://h/{}", URL_CHUNK + 4).as_str())
        );
        assert_eq!(reader.url_chunk(job, 2).unwrap(), None, "{name}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn listings_filter_by_state_and_keep_the_most_recent() {
    for (name, mut store, reader, dir) in stores() {
        let mut s = Scheduler::new(SchedulerConfig::default());
        let (done, _) = run_job_on(&mut s, store.as_mut(), sum_spec("0..4", 1), 1, 1, false);
        let (cancelled, _) = run_job_on(&mut s, store.as_mut(), sum_spec("0..4", 2), 1, 0, true);
        let (running, _) = run_job_on(&mut s, store.as_mut(), sum_spec("0..4", 2), 1, 0, false);
        let ids = |jobs: &[JobRecord]| jobs.iter().map(|j| j.job_id).collect::<Vec<_>>();
        let (all, matched) = reader.jobs(&[], 0).unwrap();
        assert_eq!(
            ids(&all),
            [done, cancelled, running],
            "{name}: oldest first"
        );
        assert_eq!(matched, 3, "{name}");
        let (last, matched) = reader.jobs(&[], 2).unwrap();
        assert_eq!(
            (ids(&last), matched),
            (vec![cancelled, running], 3),
            "{name}"
        );
        let (finished, _) = reader
            .jobs(&[JobState::Succeeded, JobState::Cancelled], 0)
            .unwrap();
        assert_eq!(ids(&finished), [done, cancelled], "{name}");
        let (active, _) = reader.jobs(&[JobState::Running], 0).unwrap();
        assert_eq!(
            ids(&active),
            [running],
            "{name}: started jobs are stored as running"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn deleted_and_expired_jobs_leave_the_store() {
    for (name, mut store, reader, dir) in stores() {
        let (job, _) = run_job(store.as_mut(), sum_spec("0..50", 5), 5, 5, false);
        store.apply(&[WriteOp::Delete(job)]).unwrap();
        assert!(
            reader.job(job).unwrap().is_none(),
            "{name}: gone from listings"
        );
        while store.prune(&Retention::default(), 10_000, 7).unwrap() {}
        assert!(
            reader.results(job, ShardId(0), 0, 100).unwrap().is_empty(),
            "{name}"
        );
        assert!(
            reader.shards(job, ShardId(0), 10).unwrap().is_empty(),
            "{name}"
        );
        // Expiry by age: submitted at unix ms 1000, a one-second retention at 10 s.
        let (job, _) = run_job(store.as_mut(), sum_spec("0..5", 1), 1, 1, false);
        let keep_a_second = Retention {
            max_jobs: 0,
            max_age: Some(Duration::from_secs(1)),
        };
        while store.prune(&keep_a_second, 1_500, 100).unwrap() {}
        assert!(reader.job(job).unwrap().is_some(), "{name}: still young");
        while store.prune(&keep_a_second, 10_000, 100).unwrap() {}
        assert!(reader.job(job).unwrap().is_none(), "{name}: expired");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_restart_restores_unfinished_jobs_and_never_reuses_ids() {
    let dir = temp_dir("restart");
    let mut store = Sqlite::open(&dir).unwrap();
    let (job, record) = run_job(&mut store, sum_spec("0..30", 3), 2, 1, false);
    assert_eq!(record.shards_done, 1);
    store
        .apply(&[WriteOp::Persist(
            crate::scheduler::Persist::WorkerIdsReserved {
                through: WorkerId(2048),
            },
        )])
        .unwrap();
    drop(store);
    let mut store = Sqlite::open(&dir).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.next_job_id, JobId(job.get() + 1));
    assert_eq!(loaded.worker_ids_through, WorkerId(2048));
    assert_eq!(loaded.jobs.len(), 1);
    let restored = &loaded.jobs[0];
    assert_eq!(restored.shards, 3);
    let done: Vec<_> = restored
        .shards_stored
        .iter()
        .filter(|s| s.end.is_some())
        .collect();
    assert_eq!(done.len(), 1, "the committed shard stays committed");
    let leased = restored
        .shards_stored
        .iter()
        .filter(|s| s.end.is_none())
        .count();
    // Two slots: the second shard and, once the first finished, the third were leased.
    assert_eq!(leased, 2, "leased shards are known with their attempts");
    // Deleting a job does not lower the next id.
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_coordinator_cannot_open_the_directory_even_without_its_lock_file() {
    let dir = temp_dir("lock");
    let first = Sqlite::open(&dir).unwrap();
    assert!(matches!(Sqlite::open(&dir), Err(StoreError::Locked(_))));
    // The first release locked a separate file; deleting files must not let a second in.
    let _ = std::fs::remove_file(dir.join("coordinator.lock"));
    assert!(matches!(Sqlite::open(&dir), Err(StoreError::Locked(_))));
    drop(first);
    assert!(Sqlite::open(&dir).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_empty_database_file_is_refused_not_started_afresh() {
    let dir = temp_dir("empty");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(sqlite::DATABASE), b"").unwrap();
    let err = Sqlite::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Empty(_)), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_corrupt_record_s_error_names_its_job() {
    let dir = temp_dir("corrupt");
    let mut store = Sqlite::open(&dir).unwrap();
    let (job, _) = run_job(&mut store, sum_spec("0..4", 2), 1, 0, false);
    let path = store.path().to_path_buf();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE jobs SET spec = '{not json' WHERE id = ?1",
        [job.get() as i64],
    )
    .unwrap();
    drop(conn);
    let mut store = Sqlite::open(&dir).unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains(&format!("job {job}")), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_first_release_database_is_migrated_with_every_report() {
    let dir = temp_dir("migrate");
    std::fs::create_dir_all(&dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join(sqlite::DATABASE)).unwrap();
    // The first release's schema and a finished and an unfinished job, as it wrote them.
    conn.execute_batch(
        r#"
        CREATE TABLE jobs (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, shards INTEGER NOT NULL,
            submitted_unix_ms INTEGER NOT NULL, state TEXT NOT NULL, wall_s REAL);
        CREATE TABLE shards (job_id INTEGER NOT NULL, shard_id INTEGER NOT NULL,
            attempt INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0, row TEXT, outcomes TEXT,
            PRIMARY KEY (job_id, shard_id));
        INSERT INTO jobs VALUES (3, '{"workload":{"SumSquares":{"List":[5,6]}},"strategy":"threads","concurrency":2,"shards":1,"max_retries":null,"label":"old"}', 1, 1000, 'succeeded', 0.5);
        INSERT INTO shards VALUES (3, 0, 1, 1,
            '{"shard_id":0,"worker_id":4,"host":"h","pid":9,"attempt":1,"items":2,"run_s":0.2,"cpu_s":0.1,"queue_s":0.0,"round_trip_s":0.3,"item_time_s":0.2,"concurrency":2,"task_parallelism":0.0,"cpu_utilisation":0.0,"done":true}',
            '[{"ok":true,"duration_s":0.1,"value":30,"status":0,"bytes":0,"error":""},{"ok":true,"duration_s":0.1,"value":55,"status":0,"bytes":0,"error":""}]');
        INSERT INTO jobs VALUES (4, '{"workload":{"Fetch":{"urls":["http://a/1","http://a/2"],"timeout_ms":1000,"max_body_bytes":10}},"strategy":"async","concurrency":8,"shards":null,"max_retries":null,"label":""}', 2, 2000, 'running', NULL);
        INSERT INTO shards VALUES (4, 1, 2, 0, NULL, NULL);
        "#,
    )
    .unwrap();
    drop(conn);
    let mut store = Sqlite::open(&dir).unwrap();
    let reader = store.reader();
    let old = reader.job(JobId(3)).unwrap().unwrap();
    assert_eq!(old.state, JobState::Succeeded);
    assert_eq!(
        old.items,
        ItemCounts {
            total: 2,
            ok: 2,
            failed: 0
        }
    );
    assert_eq!(old.wall_s, 0.5);
    let values: Vec<u128> = reader
        .results(JobId(3), ShardId(0), 0, 10)
        .unwrap()
        .into_iter()
        .map(|(_, o)| o.value)
        .collect();
    assert_eq!(values, [30, 55]);
    let loaded = store.load().unwrap();
    assert_eq!(loaded.next_job_id, JobId(5));
    assert_eq!(loaded.jobs.len(), 1, "the unfinished job comes back");
    let Workload::Fetch(fetch) = &loaded.jobs[0].spec.workload else {
        panic!("a fetch job")
    };
    assert_eq!(fetch.urls.get(1), Some("http://a/2"));
    assert_eq!(
        loaded.jobs[0].shards_stored[0].attempt,
        concur_core::Attempt(2)
    );
    drop(store);
    // Opening again finds the current schema: nothing is migrated twice.
    assert!(Sqlite::open(&dir).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
