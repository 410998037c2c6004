//! Scheduler tests driven through a recording [`Comm`], without sockets or real time.
//!
//! Layout: `basics` (dispatch, leases, cancel, bad specs), `exec` (the --allow-exec gate), `faults` (lost and silent
//! workers, lease deadlines, draining, stalls), `state` (counters, ids, admission, eviction),
//! `properties` (exactly once under random events).

mod basics;
mod exec;
mod faults;
mod properties;
mod state;

pub(super) use super::testing::{RecordingComm as TestComm, complete, info};
use super::*;
use concur_core::protocol::Assignment;
use concur_core::report::JobState;
use concur_core::{Attempt, LeaseKey, NumberSpec, Strategy as ExecStrategy, kernel};
use proptest::prelude::*;
use std::collections::HashSet;

pub(super) fn sum_job(spec: &str, shards: u32) -> JobSpec {
    JobSpec {
        pacing: Default::default(),
        workload: Workload::SumSquares(NumberSpec::parse(spec).unwrap()),
        strategy: ExecStrategy::Sequential,
        concurrency: 1,
        shards: Some(shards),
        max_retries: Some(100),
        label: String::new(),
    }
}

pub(super) fn attach(s: &mut Scheduler, slots: u32, now: Instant, comm: &mut TestComm) -> WorkerId {
    s.on_worker_attached(info(slots), now, comm).unwrap()
}

pub(super) fn submit(s: &mut Scheduler, spec: JobSpec, now: Instant, comm: &mut TestComm) -> JobId {
    s.submit(spec, now, 0, comm).unwrap()
}

/// The job succeeded and every one of its items was committed once, with the exact sum.
pub(super) fn assert_exact(s: &Scheduler, comm: &TestComm, job_id: JobId) {
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
