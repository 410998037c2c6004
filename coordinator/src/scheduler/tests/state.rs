//! Counters, worker ids, admission limits, eviction.

use super::*;

#[test]
fn unfinished_items_are_never_counted_as_failed() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let job = submit(&mut s, sum_job("0..10", 2), now, &mut comm);
    let record = s.job_record(job, now).unwrap();
    assert_eq!(record.state, JobState::Pending);
    assert_eq!((record.items.ok, record.items.failed), (0, 0));
    assert_eq!(record.items.unfinished(), 10);
    s.on_cancel(job, now, &mut comm).unwrap();
    let record = s.job_record(job, now).unwrap();
    assert_eq!((record.items.failed, record.items.unfinished()), (0, 10));
}

#[test]
fn worker_ids_come_only_from_stored_reservations() {
    let (mut s, _) = Scheduler::restore(
        SchedulerConfig::default(),
        RestoredState {
            next_job_id: JobId(1),
            worker_ids: WorkerIds {
                next: 1025,
                stored_through: 1025 + WORKER_ID_BLOCK / 2,
            },
            jobs: Vec::new(),
        },
        Instant::now(),
        0,
    );
    let mut comm = TestComm::default();
    let now = Instant::now();
    let first = attach(&mut s, 1, now, &mut comm);
    assert_eq!(
        first,
        WorkerId(1025),
        "ids continue after the stored reservation"
    );
    // Running low: the next block is asked for, but not used before it is stored.
    let through = comm
        .persisted
        .iter()
        .find_map(|e| match e {
            Persist::WorkerIdsReserved { through } => Some(*through),
            _ => None,
        })
        .expect("a reservation is requested");
    while s.on_worker_attached(info(1), now, &mut comm).is_ok() {}
    assert_eq!(
        s.on_worker_attached(info(1), now, &mut comm),
        Err(SchedulerError::NoWorkerIds)
    );
    s.on_worker_ids_stored(through);
    assert!(s.on_worker_attached(info(1), now, &mut comm).is_ok());
}

#[test]
fn a_huge_job_costs_shards_not_items() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    attach(&mut s, 2, now, &mut comm);
    let spec = JobSpec {
        shards: None,
        ..sum_job("0..10000000", 1)
    };
    let job = submit(&mut s, spec, now, &mut comm);
    let record = s.job_record(job, now).unwrap();
    assert_eq!(record.items.total, 10_000_000);
    assert_eq!(
        record.shards_total, 1000,
        "at most 10,000 items per default shard"
    );
    assert_eq!(comm.assigned.len(), 2);
}

#[test]
fn the_active_job_limit_counts_admissions_in_flight() {
    let config = SchedulerConfig {
        max_active_jobs: 1,
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(config);
    let admission = s.admit(&sum_job("0..3", 1)).unwrap();
    assert!(matches!(
        s.admit(&sum_job("0..3", 1)),
        Err(SchedulerError::TooManyJobs { .. })
    ));
    s.on_admission_dropped();
    let again = s.admit(&sum_job("0..3", 1)).unwrap();
    assert_ne!(
        again.job_id, admission.job_id,
        "a dropped id is never reused"
    );
}

#[test]
fn finished_jobs_can_be_evicted_and_unfinished_ones_cannot() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let w = attach(&mut s, 1, now, &mut comm);
    let job = submit(&mut s, sum_job("0..3", 1), now, &mut comm);
    assert!(s.evict(job).is_none());
    let (_, assignment) = comm.assigned.pop().unwrap();
    complete(&mut s, &mut comm, w, &assignment);
    assert!(s.evict(job).is_some());
    assert!(s.job_record(job, now).is_none());
    // Late messages about an evicted job are refused, not a crash.
    assert_eq!(
        complete(&mut s, &mut comm, w, &assignment),
        Disposition::Discarded
    );
}

#[test]
fn counters_and_loads_stay_consistent() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = attach(&mut s, 2, now, &mut comm);
    attach(&mut s, 1, now, &mut comm);
    let job = submit(&mut s, sum_job("0..20", 6), now, &mut comm);
    assert_eq!(s.pool.total_load(), 3);
    s.on_worker_lost(a, now, &mut comm);
    assert!(s.pool.free_set_is_consistent());
    let record = s.job_record(job, now).unwrap();
    assert_eq!(record.shards_running, s.pool.total_load());
}
