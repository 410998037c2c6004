//! The one recording [`Comm`] for tests, plus helpers that play an honest worker and read a
//! job's items back out of the recorded commits.

use super::{Comm, Persist};
use concur_core::plan::Unit;
use concur_core::protocol::{Assignment, WorkerInfo};
use concur_core::{JobId, LeaseKey, Outcome, WorkerId, kernel};

/// Records every effect, in order.
#[derive(Debug, Default)]
pub(crate) struct RecordingComm {
    pub(crate) assigned: Vec<(WorkerId, Assignment)>,
    pub(crate) cancelled: Vec<(WorkerId, LeaseKey)>,
    pub(crate) changed: Vec<JobId>,
    pub(crate) accepted: Vec<(WorkerId, LeaseKey)>,
    pub(crate) persisted: Vec<Persist>,
}

impl Comm for RecordingComm {
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

/// A worker's registration with `slots` slots.
pub(crate) fn info(slots: u32) -> WorkerInfo {
    WorkerInfo {
        host: "h".into(),
        pid: 1,
        cores: 2,
        slots,
        prefetch: 0,
        version: "test".into(),
        protocol: concur_core::protocol::PROTOCOL_REVISION,
        exec: Default::default(),
    }
}

/// What an honest worker would report for an assignment.
pub(crate) fn honest_results(assignment: &Assignment) -> Vec<(u32, Outcome)> {
    assignment
        .units()
        .iter()
        .enumerate()
        .map(|(i, unit)| {
            let value = match unit {
                Unit::SumSquares { lo, hi, .. } => kernel::sum_squares_range(*lo, *hi),
                Unit::Fetch { .. } | Unit::Exec { .. } => 0,
            };
            let outcome = Outcome {
                ok: true,
                duration_s: 0.001,
                value,
                ..Outcome::default()
            };
            (i as u32, outcome)
        })
        .collect()
}

#[cfg(test)]
pub(crate) use helpers::complete;

/// Helpers only the unit tests use (the fuzz driver needs the ones above).
#[cfg(test)]
mod helpers {
    use super::{RecordingComm, honest_results};
    use crate::scheduler::{Disposition, Persist, Scheduler};
    use concur_core::protocol::{Assignment, ShardTiming};
    use concur_core::{JobId, Outcome, WorkerId};
    use std::collections::BTreeMap;
    use std::time::Instant;

    impl RecordingComm {
        /// Items of `job` as its recorded commits assemble them (parts of split items summed).
        pub(crate) fn items(&self, job: JobId) -> BTreeMap<u64, Outcome> {
            let mut items: BTreeMap<u64, Outcome> = BTreeMap::new();
            for event in &self.persisted {
                let Persist::ShardCommitted {
                    lease,
                    first_item,
                    outcomes,
                    ..
                } = event
                else {
                    continue;
                };
                if lease.job_id != job {
                    continue;
                }
                for (offset, outcome) in outcomes.iter().enumerate() {
                    let item = first_item + offset as u64;
                    match items.get_mut(&item) {
                        Some(sum) => sum.absorb(outcome, false),
                        None => {
                            items.insert(item, outcome.clone());
                        }
                    }
                }
            }
            items
        }
    }

    /// Sends an assignment's honest results and its finish, as one worker would.
    pub(crate) fn complete(
        s: &mut Scheduler,
        comm: &mut RecordingComm,
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
}
