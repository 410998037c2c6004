//! Scheduler tests driven through a recording [`Comm`], without sockets or real time.

use super::testing::{RecordingComm as TestComm, complete, info};
use super::*;
use concur_core::protocol::Assignment;
use concur_core::{Attempt, NumberSpec, Strategy as ExecStrategy, kernel};
use proptest::prelude::*;
use std::collections::HashSet;

fn sum_job(spec: &str, shards: u32) -> JobSpec {
    JobSpec {
        workload: Workload::SumSquares(NumberSpec::parse(spec).unwrap()),
        strategy: ExecStrategy::Sequential,
        concurrency: 1,
        shards: Some(shards),
        max_retries: Some(100),
        label: String::new(),
    }
}

fn attach(s: &mut Scheduler, slots: u32, now: Instant, comm: &mut TestComm) -> WorkerId {
    s.on_worker_attached(info(slots), now, comm).unwrap()
}

fn submit(s: &mut Scheduler, spec: JobSpec, now: Instant, comm: &mut TestComm) -> JobId {
    s.submit(spec, now, 0, comm).unwrap()
}

/// The job succeeded and every one of its items was committed once, with the exact sum.
fn assert_exact(s: &Scheduler, comm: &TestComm, job_id: JobId) {
    let record = s.job_record(job_id, Instant::now()).unwrap();
    assert_eq!(record.state, JobState::Succeeded);
    let (spec, _) = s.job_input(job_id).unwrap();
    let Workload::SumSquares(ns) = &spec.workload else {
        panic!("sum-squares only")
    };
    let items = comm.items(job_id);
    assert_eq!(items.len() as u64, ns.len(), "every item committed");
    for (item, outcome) in items {
        let n = ns.get(item);
        assert_eq!(Some(outcome.value), kernel::closed_form(n), "n = {n}");
    }
}

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

#[derive(Debug, Clone)]
enum Op {
    Attach(u32),
    Submit(Vec<u64>, u32),
    Complete(usize),
    Replay(usize),
    Lose(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u32..3).prop_map(Op::Attach),
        (proptest::collection::vec(0u64..3000, 1..6), 1u32..8)
            .prop_map(|(ns, s)| Op::Submit(ns, s)),
        any::<usize>().prop_map(Op::Complete),
        any::<usize>().prop_map(Op::Replay),
        any::<usize>().prop_map(Op::Lose),
    ]
}

proptest! {
    #[test]
    fn every_item_is_reported_exactly_once(ops in proptest::collection::vec(op(), 1..60)) {
        let mut s = Scheduler::new(SchedulerConfig::default());
        let mut comm = TestComm::default();
        let now = Instant::now();
        let mut jobs = Vec::new();
        let mut live_workers: Vec<WorkerId> = Vec::new();
        let mut outstanding: Vec<(WorkerId, Assignment)> = Vec::new();
        let mut finished: Vec<(WorkerId, Assignment)> = Vec::new();
        let mut leases_seen = HashSet::new();
        let mut lost = HashSet::new();
        for op in ops {
            match op {
                Op::Attach(slots) => live_workers.push(attach(&mut s, slots, now, &mut comm)),
                Op::Submit(ns, shards) => {
                    let list = ns.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                    jobs.push(s.submit(sum_job(&list, shards), now, 0, &mut comm).unwrap());
                }
                Op::Complete(i) if !outstanding.is_empty() => {
                    let (w, a) = outstanding.remove(i % outstanding.len());
                    let d = complete(&mut s, &mut comm, w, &a);
                    // Only a lost worker's leases may be refused here.
                    prop_assert_eq!(d == Disposition::Discarded, lost.contains(&w));
                    finished.push((w, a));
                }
                Op::Replay(i) if !finished.is_empty() => {
                    let (w, a) = finished[i % finished.len()].clone();
                    prop_assert_eq!(complete(&mut s, &mut comm, w, &a), Disposition::Discarded);
                }
                Op::Lose(i) if !live_workers.is_empty() => {
                    let w = live_workers.remove(i % live_workers.len());
                    s.on_worker_lost(w, now, &mut comm);
                    lost.insert(w);
                }
                _ => {}
            }
            for (w, a) in comm.assigned.drain(..) {
                // A (shard, attempt) is never leased twice.
                prop_assert!(leases_seen.insert(a.lease), "lease {:?} handed out twice", a.lease);
                outstanding.push((w, a));
            }
        }
        // Drive everything to the end with one reliable worker.
        let w = attach(&mut s, 4, now, &mut comm);
        loop {
            outstanding.append(&mut comm.assigned);
            let Some(pos) = outstanding.iter().position(|(ow, _)| !lost.contains(ow)) else { break };
            let (ow, a) = outstanding.remove(pos);
            prop_assert_eq!(complete(&mut s, &mut comm, ow, &a), Disposition::Accepted);
        }
        let _ = w;
        for job in jobs {
            assert_exact(&s, &comm, job);
        }
    }
}

#[test]
fn workers_lost_in_the_same_tick_do_not_burn_a_shard_s_retries() {
    let config = SchedulerConfig {
        heartbeat_timeout: Duration::from_secs(5),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(config);
    let mut comm = TestComm::default();
    let t0 = Instant::now();
    // Five workers, one busy with the only shard; then the coordinator stalls past the timeout.
    let workers: Vec<_> = (0..5).map(|_| attach(&mut s, 1, t0, &mut comm)).collect();
    let job = s.submit(sum_job("0..5", 1), t0, 0, &mut comm).unwrap();
    let lost = s.on_tick(t0 + Duration::from_secs(10), &mut comm);
    assert_eq!(lost, workers);
    let progress = s.job_record(job, t0).unwrap();
    assert!(
        !progress.state.is_final(),
        "one stall must not fail the job: {progress:?}"
    );
    // The shard waits for a live worker and then completes.
    let w = attach(&mut s, 1, t0 + Duration::from_secs(10), &mut comm);
    let (worker, assignment) = comm.assigned.pop().unwrap();
    assert_eq!(worker, w);
    assert_eq!(assignment.lease.attempt, Attempt(2), "one loss, one retry");
    assert_eq!(
        complete(&mut s, &mut comm, w, &assignment),
        Disposition::Accepted
    );
    assert_exact(&s, &comm, job);
}

#[test]
fn a_lease_past_its_deadline_is_revoked_and_re_run_elsewhere() {
    let config = SchedulerConfig {
        lease_timeout: Some(Duration::from_secs(60)),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(config);
    let mut comm = TestComm::default();
    let t0 = Instant::now();
    let hung = attach(&mut s, 1, t0, &mut comm);
    let job = s.submit(sum_job("0..6", 1), t0, 0, &mut comm).unwrap();
    let (_, first) = comm.assigned.pop().unwrap();
    // It keeps heartbeating but never finishes.
    let later = t0 + Duration::from_secs(61);
    s.on_heartbeat(hung, later).unwrap();
    let other = attach(&mut s, 1, later, &mut comm);
    assert!(
        comm.assigned.is_empty(),
        "nothing to lease before the deadline check"
    );
    s.on_tick(later, &mut comm);
    assert!(
        comm.cancelled.contains(&(hung, first.lease)),
        "the hung worker is told to stop"
    );
    let (worker, second) = comm.assigned.pop().unwrap();
    assert_eq!((worker, second.lease.attempt), (other, Attempt(2)));
    assert_eq!(s.list_workers(later)[0].state, "stalled");
    assert_eq!(
        complete(&mut s, &mut comm, hung, &first),
        Disposition::Discarded
    );
    assert_eq!(
        complete(&mut s, &mut comm, other, &second),
        Disposition::Accepted
    );
    assert_exact(&s, &comm, job);
}

#[test]
fn a_draining_worker_gets_no_new_shard_when_it_finishes_one() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = attach(&mut s, 1, now, &mut comm);
    s.submit(sum_job("0..4", 2), now, 0, &mut comm).unwrap();
    let (_, first) = comm.assigned.pop().unwrap();
    s.on_worker_draining(a).unwrap();
    complete(&mut s, &mut comm, a, &first);
    assert!(
        comm.assigned.is_empty(),
        "the second shard went to a draining worker"
    );
    assert_eq!(s.list_workers(now)[0].state, "draining");
    let b = attach(&mut s, 1, now, &mut comm);
    assert_eq!(comm.assigned.pop().unwrap().0, b);
}

#[test]
fn a_coordinator_stall_does_not_condemn_workers_that_kept_talking() {
    let config = SchedulerConfig {
        heartbeat_timeout: Duration::from_secs(2),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(config);
    let mut comm = TestComm::default();
    let t0 = Instant::now();
    let a = attach(&mut s, 1, t0, &mut comm);
    s.on_tick(t0, &mut comm);
    // The coordinator does not tick (nor read heartbeats) for 5 s, then ticks before it has
    // read the heartbeats queued meanwhile.
    let late = t0 + Duration::from_secs(5);
    assert!(
        s.on_tick(late, &mut comm).is_empty(),
        "lost for the coordinator's stall"
    );
    s.on_heartbeat(a, late).unwrap();
    // Real silence is still caught, on the coordinator's own clock.
    let mut t = late;
    for _ in 0..12 {
        t += Duration::from_millis(250);
        if s.on_tick(t, &mut comm) == vec![a] {
            assert!(t - late > Duration::from_secs(2), "lost too early");
            return;
        }
    }
    panic!("a silent worker was never declared lost");
}

#[test]
fn a_stalled_worker_takes_shards_again_once_its_hung_execution_ends() {
    let config = SchedulerConfig {
        lease_timeout: Some(Duration::from_secs(10)),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(config);
    let mut comm = TestComm::default();
    let t0 = Instant::now();
    let w = attach(&mut s, 1, t0, &mut comm);
    submit(&mut s, sum_job("0..2", 2), t0, &mut comm);
    let (_, hung) = comm.assigned.pop().unwrap();
    let later = t0 + Duration::from_secs(11);
    s.on_heartbeat(w, later).unwrap();
    s.on_tick(later, &mut comm);
    assert_eq!(s.list_workers(later)[0].state, "stalled");
    assert!(comm.assigned.is_empty());
    // Still one execution running (the hung one): stays stalled.
    s.on_executions_reported(w, 1, later, &mut comm);
    assert_eq!(s.list_workers(later)[0].state, "stalled");
    // The hung execution ended: healthy again, and it gets work.
    s.on_executions_reported(w, 0, later, &mut comm);
    assert_ne!(s.list_workers(later)[0].state, "stalled");
    let (worker, next) = comm.assigned.pop().unwrap();
    assert_eq!(worker, w);
    assert_ne!(next.lease, hung.lease);
}

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
