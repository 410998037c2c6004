//! Jobs only some workers may run: exec jobs (refused at submit without an allowing worker,
//! leased only to workers that allow their program) and paced jobs (only to workers that pace).

use super::*;
use concur_core::exec::{ExecItems, ExecPermission, ExecSpec};
use concur_core::protocol::WorkerInfo;

fn exec_job(program: &str, shards: u32) -> JobSpec {
    JobSpec {
        workload: Workload::Exec(ExecSpec {
            program: program.into(),
            args: Vec::new(),
            items: ExecItems::Range { start: 0, end: 8 },
            timeout_ms: 1000,
        }),
        shards: Some(shards),
        ..sum_job("0..8", shards)
    }
}

fn allowing(s: &mut Scheduler, programs: &[&str], now: Instant, comm: &mut TestComm) -> WorkerId {
    let exec = ExecPermission::Only(programs.iter().map(|p| p.to_string()).collect());
    s.on_worker_attached(WorkerInfo { exec, ..info(1) }, now, comm)
        .unwrap()
}

#[test]
fn exec_is_refused_at_submit_unless_an_attached_worker_allows_the_program() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    attach(&mut s, 4, now, &mut comm);
    assert_eq!(
        s.submit(exec_job("true", 2), now, 0, &mut comm),
        Err(SchedulerError::ExecNotAllowed("true".into()))
    );
    allowing(&mut s, &["true"], now, &mut comm);
    assert_eq!(
        s.submit(exec_job("sh", 2), now, 0, &mut comm),
        Err(SchedulerError::ExecNotAllowed("sh".into()))
    );
    assert!(comm.assigned.is_empty());
}

#[test]
fn exec_shards_go_only_to_workers_that_allow_the_program() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    // The idle, roomy worker comes first but may not run it.
    let plain = attach(&mut s, 4, now, &mut comm);
    let other = allowing(&mut s, &["sh"], now, &mut comm);
    let good = allowing(&mut s, &["true"], now, &mut comm);
    s.submit(exec_job("true", 4), now, 0, &mut comm).unwrap();
    // A sum-squares job behind it waits its turn (the queue is in order) and then runs.
    s.submit(sum_job("0..4", 1), now, 0, &mut comm).unwrap();
    let mut seen = 0;
    while let Some((worker, assignment)) = comm.assigned.pop() {
        if matches!(assignment.spec.workload, Workload::Exec(_)) {
            assert_eq!(worker, good, "exec shard leased to {worker:?}");
            seen += 1;
        } else {
            assert!([plain, other, good].contains(&worker));
        }
        assert_eq!(
            complete(&mut s, &mut comm, worker, &assignment),
            Disposition::Accepted
        );
    }
    assert_eq!(seen, 4);
}

fn paced_job(shards: u32) -> JobSpec {
    JobSpec {
        strategy: concur_core::Strategy::Async,
        pacing: concur_core::pacing::Pacing {
            auto: true,
            ..Default::default()
        },
        ..sum_job("0..8", shards)
    }
}

#[test]
fn paced_shards_go_only_to_workers_that_pace_and_are_refused_when_none_does() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let mut comm = TestComm::default();
    let now = Instant::now();
    // A worker of revision 2 would run the ceiling as a fixed concurrency: refused.
    let old = s
        .on_worker_attached(
            WorkerInfo {
                protocol: 2,
                ..info(4)
            },
            now,
            &mut comm,
        )
        .unwrap();
    assert_eq!(
        s.submit(paced_job(2), now, 0, &mut comm),
        Err(SchedulerError::PacingUnsupported)
    );
    let new = attach(&mut s, 1, now, &mut comm);
    s.submit(paced_job(3), now, 0, &mut comm).unwrap();
    let mut seen = 0;
    while let Some((worker, assignment)) = comm.assigned.pop() {
        assert_eq!(worker, new, "paced shard leased to {worker:?}, not {old:?}");
        complete(&mut s, &mut comm, worker, &assignment);
        seen += 1;
    }
    assert_eq!(seen, 3);
}
