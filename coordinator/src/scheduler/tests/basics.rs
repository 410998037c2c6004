//! Dispatch, leases and attempts, cancellation, refused specs.

use super::*;

#[test]
fn shards_spread_over_idle_workers() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = attach(&mut s, 1, now, &mut comm);
    let b = attach(&mut s, 1, now, &mut comm);
    let job = s.submit(sum_job("0..40", 4), now, 0, &mut comm).unwrap();
    let workers: HashSet<_> = comm.assigned.iter().map(|(w, _)| *w).collect();
    assert_eq!(workers, HashSet::from([a, b]), "both idle workers work");
    assert_eq!(comm.assigned.len(), 2, "one shard per slot");
    // Finishing shards hands out the rest.
    while let Some((worker, assignment)) = comm.assigned.pop() {
        assert_eq!(
            complete(&mut s, &mut comm, worker, &assignment),
            Disposition::Accepted
        );
    }
    assert_exact(&s, &comm, job);
}

#[test]
fn a_lost_worker_s_shards_are_re_leased_with_a_new_attempt() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = attach(&mut s, 1, now, &mut comm);
    let job = s.submit(sum_job("0..10", 1), now, 0, &mut comm).unwrap();
    let (_, first) = comm.assigned.pop().unwrap();
    assert_eq!(first.lease.attempt, Attempt(1));
    s.on_worker_lost(a, now, &mut comm);
    let b = attach(&mut s, 1, now, &mut comm);
    let (worker, second) = comm.assigned.pop().unwrap();
    assert_eq!((worker, second.lease.attempt), (b, Attempt(2)));
    // The old holder's late results are refused and it is told to drop them.
    assert_eq!(
        complete(&mut s, &mut comm, a, &first),
        Disposition::Discarded
    );
    assert!(comm.cancelled.contains(&(a, first.lease)));
    assert_eq!(
        complete(&mut s, &mut comm, b, &second),
        Disposition::Accepted
    );
    assert_exact(&s, &comm, job);
}

#[test]
fn a_stale_attempt_from_the_same_worker_is_discarded() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = attach(&mut s, 1, now, &mut comm);
    s.submit(sum_job("0..4", 1), now, 0, &mut comm).unwrap();
    let (_, assignment) = comm.assigned.pop().unwrap();
    let stale = LeaseKey {
        attempt: Attempt(assignment.lease.attempt.get() + 7),
        ..assignment.lease
    };
    let d = s.on_unit_results(a, stale, vec![], now, &mut comm);
    assert_eq!(d, Disposition::Discarded);
}

#[test]
fn silent_workers_are_declared_lost_on_tick() {
    let config = SchedulerConfig {
        heartbeat_timeout: Duration::from_secs(3),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(config);
    let mut comm = TestComm::default();
    let t0 = Instant::now();
    let a = attach(&mut s, 1, t0, &mut comm);
    let b = attach(&mut s, 1, t0, &mut comm);
    s.on_heartbeat(b, t0 + Duration::from_secs(2)).unwrap();
    let lost = s.on_tick(t0 + Duration::from_secs(4), &mut comm);
    assert_eq!(lost, vec![a]);
    assert_eq!(s.list_workers(t0).len(), 1);
}

#[test]
fn retries_are_bounded() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let spec = JobSpec {
        max_retries: Some(1),
        ..sum_job("0..3", 1)
    };
    let job = s.submit(spec, now, 0, &mut comm).unwrap();
    for _ in 0..2 {
        let w = attach(&mut s, 1, now, &mut comm);
        s.on_worker_lost(w, now, &mut comm);
    }
    let record = s.job_record(job, now).unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(record.items.failed, 3);
    let gave_up = comm
        .persisted
        .iter()
        .find_map(|event| match event {
            Persist::ShardGaveUp { row, .. } => row.error.clone(),
            _ => None,
        })
        .expect("the shard gave up");
    assert!(gave_up.contains("retry limit"), "{gave_up}");
}

#[test]
fn cancel_stops_running_shards_and_frees_the_worker() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = attach(&mut s, 1, now, &mut comm);
    let first = s.submit(sum_job("0..4", 2), now, 0, &mut comm).unwrap();
    let second = s.submit(sum_job("0..4", 1), now, 0, &mut comm).unwrap();
    let (_, running) = comm.assigned.pop().unwrap();
    assert_eq!(s.on_cancel(first, now, &mut comm), Ok(JobState::Cancelled));
    assert_eq!(comm.cancelled, vec![(a, running.lease)]);
    // The freed slot goes to the other job, not to the cancelled job's second shard.
    let (_, next) = comm.assigned.pop().unwrap();
    assert_eq!(next.lease.job_id, second);
    assert_eq!(
        s.on_cancel(JobId(99), now, &mut comm),
        Err(SchedulerError::UnknownJob(JobId(99)))
    );
}

#[test]
fn invalid_specs_are_refused() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let spec = JobSpec {
        shards: Some(0),
        ..sum_job("0..3", 1)
    };
    let err = s
        .submit(spec, Instant::now(), 0, &mut TestComm::default())
        .unwrap_err();
    assert_eq!(err, SchedulerError::InvalidSpec(SpecError::ZeroShards));
}

fn windowed(slots: u32, prefetch: u32) -> concur_core::protocol::WorkerInfo {
    concur_core::protocol::WorkerInfo {
        prefetch,
        ..info(slots)
    }
}

#[test]
fn short_shards_fill_prefetch_windows_and_long_ones_wait_for_free_slots() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let w = s
        .on_worker_attached(windowed(1, 3), now, &mut comm)
        .unwrap();
    let job = submit(&mut s, sum_job("0..20", 20), now, &mut comm);
    // Nothing is known about the job's shards yet: one lease, for the free slot.
    assert_eq!(comm.assigned.len(), 1);
    let (_, first) = comm.assigned.pop().unwrap();
    // It ran fast (10 ms): the window fills with shards waiting behind the running one.
    complete(&mut s, &mut comm, w, &first);
    assert_eq!(
        comm.assigned.len(),
        4,
        "one for the slot, three in the window"
    );
    // A job whose shards run long gets no window: its shards wait for a free slot.
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let w = s
        .on_worker_attached(windowed(1, 3), now, &mut comm)
        .unwrap();
    submit(&mut s, sum_job("0..20", 20), now, &mut comm);
    let (_, first) = comm.assigned.pop().unwrap();
    s.on_unit_results(w, first.lease, honest(&first), now, &mut comm);
    let slow = concur_core::protocol::ShardTiming {
        run_s: 2.0,
        ..Default::default()
    };
    s.on_shard_finished(w, first.lease, slow, now, &mut comm);
    assert_eq!(comm.assigned.len(), 1, "only the free slot");
    let record = s.job_record(job, now);
    assert!(record.is_some());
}

fn honest(assignment: &Assignment) -> Vec<(u32, concur_core::Outcome)> {
    super::super::testing::honest_results(assignment)
}

#[test]
fn a_lost_worker_s_prefetched_leases_are_retried_elsewhere() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = s
        .on_worker_attached(windowed(1, 4), now, &mut comm)
        .unwrap();
    let job = submit(&mut s, sum_job("0..12", 12), now, &mut comm);
    let (_, first) = comm.assigned.pop().unwrap();
    complete(&mut s, &mut comm, a, &first);
    let held: Vec<_> = comm.assigned.drain(..).collect();
    assert_eq!(held.len(), 5);
    s.on_worker_lost(a, now, &mut comm);
    let b = s
        .on_worker_attached(windowed(1, 0), now, &mut comm)
        .unwrap();
    // The new worker gets them one at a time (its window is 0), each as a second attempt.
    let mut attempts = Vec::new();
    while let Some((worker, assignment)) = comm.assigned.pop() {
        assert_eq!(worker, b);
        attempts.push(assignment.lease.attempt);
        complete(&mut s, &mut comm, b, &assignment);
    }
    assert!(attempts.iter().filter(|a| **a == Attempt(2)).count() >= 5);
    assert_exact(&s, &comm, job);
}
