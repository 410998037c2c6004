//! Lost and silent workers, lease deadlines, draining, coordinator stalls.

use super::*;

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
