//! Scheduler tests driven through a recording [`Comm`], without sockets or real time.

use super::*;
use concur_core::plan::Unit;
use concur_core::{NumberSpec, Strategy as ExecStrategy, kernel};
use proptest::prelude::*;
use std::collections::HashSet;

#[derive(Default)]
struct TestComm {
    assigned: Vec<(WorkerId, Assignment)>,
    cancelled: Vec<(WorkerId, LeaseKey)>,
    changed: Vec<JobId>,
    accepted: Vec<(WorkerId, LeaseKey)>,
    persisted: Vec<Persist>,
}

impl Comm for TestComm {
    fn assign(&mut self, worker: WorkerId, assignment: Assignment) {
        self.assigned.push((worker, assignment));
    }
    fn cancel(&mut self, worker: WorkerId, lease: LeaseKey, _reason: &str) {
        self.cancelled.push((worker, lease));
    }
    fn job_changed(&mut self, job_id: JobId) {
        self.changed.push(job_id);
    }
    fn accepted(&mut self, worker: WorkerId, lease: LeaseKey) {
        self.accepted.push((worker, lease));
    }
    fn persist(&mut self, event: Persist) {
        self.persisted.push(event);
    }
}

fn info(slots: u32) -> WorkerInfo {
    WorkerInfo {
        host: "h".into(),
        pid: 1,
        cores: 2,
        slots,
        version: "test".into(),
    }
}

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

/// What an honest worker would report for an assignment.
fn honest_results(assignment: &Assignment) -> Vec<(u32, Outcome)> {
    assignment
        .units
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let Unit::SumSquares { lo, hi, .. } = unit else {
                panic!("sum-squares only")
            };
            let outcome = Outcome {
                ok: true,
                duration_s: 0.001,
                value: kernel::sum_squares_range(*lo, *hi),
                ..Outcome::default()
            };
            (i as u32, outcome)
        })
        .collect()
}

fn complete(
    s: &mut Scheduler,
    comm: &mut TestComm,
    worker: WorkerId,
    assignment: &Assignment,
) -> Disposition {
    let now = Instant::now();
    let first = s.on_unit_results(
        worker,
        assignment.lease,
        honest_results(assignment),
        now,
        comm,
    );
    let timing = ShardTiming {
        run_s: 0.01,
        concurrency: 1,
        ..ShardTiming::default()
    };
    let second = s.on_shard_finished(worker, assignment.lease, timing, now, comm);
    assert_eq!(first, second, "results and finish disagree");
    second
}

fn assert_exact(s: &Scheduler, job_id: JobId) {
    let snapshot = s.job_snapshot(job_id, Instant::now()).unwrap();
    assert_eq!(snapshot.progress.state, JobState::Succeeded);
    for (input, outcome) in &snapshot.items {
        let n: u64 = input.parse().unwrap();
        let outcome = outcome.as_ref().expect("every item reported");
        assert_eq!(Some(outcome.value), kernel::closed_form(n), "n = {n}");
    }
}

#[test]
fn shards_spread_over_idle_workers() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = s.on_worker_attached(info(1), now, &mut comm);
    let b = s.on_worker_attached(info(1), now, &mut comm);
    let job = s
        .on_job_submitted(sum_job("0..40", 4), now, 0, &mut comm)
        .unwrap();
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
    assert_exact(&s, job);
}

#[test]
fn a_lost_worker_s_shards_are_re_leased_with_a_new_attempt() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = s.on_worker_attached(info(1), now, &mut comm);
    let job = s
        .on_job_submitted(sum_job("0..10", 1), now, 0, &mut comm)
        .unwrap();
    let (_, first) = comm.assigned.pop().unwrap();
    assert_eq!(first.lease.attempt, 1);
    s.on_worker_lost(a, now, &mut comm);
    let b = s.on_worker_attached(info(1), now, &mut comm);
    let (worker, second) = comm.assigned.pop().unwrap();
    assert_eq!((worker, second.lease.attempt), (b, 2));
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
    assert_exact(&s, job);
}

#[test]
fn a_stale_attempt_from_the_same_worker_is_discarded() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = s.on_worker_attached(info(1), now, &mut comm);
    s.on_job_submitted(sum_job("0..4", 1), now, 0, &mut comm)
        .unwrap();
    let (_, assignment) = comm.assigned.pop().unwrap();
    let stale = LeaseKey {
        attempt: assignment.lease.attempt + 7,
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
    let a = s.on_worker_attached(info(1), t0, &mut comm);
    let b = s.on_worker_attached(info(1), t0, &mut comm);
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
    let job = s.on_job_submitted(spec, now, 0, &mut comm).unwrap();
    for _ in 0..2 {
        let w = s.on_worker_attached(info(1), now, &mut comm);
        s.on_worker_lost(w, now, &mut comm);
    }
    let snapshot = s.job_snapshot(job, now).unwrap();
    assert_eq!(snapshot.progress.state, JobState::Failed);
    assert_eq!(snapshot.progress.items_failed, 3);
    assert!(
        snapshot.shards[0]
            .error
            .as_deref()
            .unwrap()
            .contains("retry limit")
    );
}

#[test]
fn cancel_stops_running_shards_and_frees_the_worker() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = s.on_worker_attached(info(1), now, &mut comm);
    let first = s
        .on_job_submitted(sum_job("0..4", 2), now, 0, &mut comm)
        .unwrap();
    let second = s
        .on_job_submitted(sum_job("0..4", 1), now, 0, &mut comm)
        .unwrap();
    let (_, running) = comm.assigned.pop().unwrap();
    assert_eq!(s.on_cancel(first, now, &mut comm), Ok(JobState::Cancelled));
    assert_eq!(comm.cancelled, vec![(a, running.lease)]);
    // The freed slot goes to the other job, not to the cancelled job's second shard.
    let (_, next) = comm.assigned.pop().unwrap();
    assert_eq!(next.lease.job_id, second);
    assert_eq!(
        s.on_cancel(99, now, &mut comm),
        Err(SchedulerError::UnknownJob(99))
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
        .on_job_submitted(spec, Instant::now(), 0, &mut TestComm::default())
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
                Op::Attach(slots) => live_workers.push(s.on_worker_attached(info(slots), now, &mut comm)),
                Op::Submit(ns, shards) => {
                    let list = ns.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                    jobs.push(s.on_job_submitted(sum_job(&list, shards), now, 0, &mut comm).unwrap());
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
        let w = s.on_worker_attached(info(4), now, &mut comm);
        loop {
            outstanding.append(&mut comm.assigned);
            let Some(pos) = outstanding.iter().position(|(ow, _)| !lost.contains(ow)) else { break };
            let (ow, a) = outstanding.remove(pos);
            prop_assert_eq!(complete(&mut s, &mut comm, ow, &a), Disposition::Accepted);
        }
        let _ = w;
        for job in jobs {
            assert_exact(&s, job);
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
    let workers: Vec<_> = (0..5)
        .map(|_| s.on_worker_attached(info(1), t0, &mut comm))
        .collect();
    let job = s
        .on_job_submitted(sum_job("0..5", 1), t0, 0, &mut comm)
        .unwrap();
    let lost = s.on_tick(t0 + Duration::from_secs(10), &mut comm);
    assert_eq!(lost, workers);
    let progress = s.job_progress(job, t0).unwrap();
    assert!(
        !progress.state.is_final(),
        "one stall must not fail the job: {progress:?}"
    );
    // The shard waits for a live worker and then completes.
    let w = s.on_worker_attached(info(1), t0 + Duration::from_secs(10), &mut comm);
    let (worker, assignment) = comm.assigned.pop().unwrap();
    assert_eq!(worker, w);
    assert_eq!(assignment.lease.attempt, 2, "one loss, one retry");
    assert_eq!(
        complete(&mut s, &mut comm, w, &assignment),
        Disposition::Accepted
    );
    assert_exact(&s, job);
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
    let hung = s.on_worker_attached(info(1), t0, &mut comm);
    let job = s
        .on_job_submitted(sum_job("0..6", 1), t0, 0, &mut comm)
        .unwrap();
    let (_, first) = comm.assigned.pop().unwrap();
    // It keeps heartbeating but never finishes.
    let later = t0 + Duration::from_secs(61);
    s.on_heartbeat(hung, later).unwrap();
    let other = s.on_worker_attached(info(1), later, &mut comm);
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
    assert_eq!((worker, second.lease.attempt), (other, 2));
    assert_eq!(s.list_workers(later)[0].state, "stalled");
    assert_eq!(
        complete(&mut s, &mut comm, hung, &first),
        Disposition::Discarded
    );
    assert_eq!(
        complete(&mut s, &mut comm, other, &second),
        Disposition::Accepted
    );
    assert_exact(&s, job);
}

#[test]
fn a_draining_worker_gets_no_new_shard_when_it_finishes_one() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    let a = s.on_worker_attached(info(1), now, &mut comm);
    s.on_job_submitted(sum_job("0..4", 2), now, 0, &mut comm)
        .unwrap();
    let (_, first) = comm.assigned.pop().unwrap();
    s.on_worker_draining(a).unwrap();
    complete(&mut s, &mut comm, a, &first);
    assert!(
        comm.assigned.is_empty(),
        "the second shard went to a draining worker"
    );
    assert_eq!(s.list_workers(now)[0].state, "draining");
    let b = s.on_worker_attached(info(1), now, &mut comm);
    assert_eq!(comm.assigned.pop().unwrap().0, b);
}
