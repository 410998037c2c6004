//! A job's running tally: how its items stand and the timing of its committed shards. Kept up
//! to date as shards commit, so a job's summary never needs its items or shards.

use concur_core::plan::Plan;
use concur_core::report::{ItemCounts, JobTotals, ShardRow};
use concur_core::{Outcome, WorkerId};
use std::collections::HashSet;

/// Item counts and shard totals of one job.
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) items: ItemCounts,
    pub(crate) totals: JobTotals,
    workers: HashSet<WorkerId>,
    hosts: HashSet<String>,
    /// For plans that cut items into parts: per item, parts still to commit and whether any
    /// committed part failed. An item counts once, when its last part commits.
    parts: Option<Parts>,
}

#[derive(Debug)]
struct Parts {
    left: Vec<u32>,
    failed: Vec<bool>,
}

impl Tally {
    /// An empty tally for a job of `plan`.
    pub(crate) fn new(plan: &Plan) -> Self {
        let parts = plan.is_split().then(|| {
            let items = plan.items() as usize;
            Parts {
                left: (0..plan.items()).map(|item| plan.parts_of(item)).collect(),
                failed: vec![false; items],
            }
        });
        Self {
            items: ItemCounts {
                total: plan.items(),
                ok: 0,
                failed: 0,
            },
            totals: JobTotals::default(),
            workers: HashSet::new(),
            hosts: HashSet::new(),
            parts,
        }
    }

    /// Counts a finished shard whose units starting at item `first_item` were `ok` or not.
    /// `row` is `None` for a shard that never ran (it gave up).
    pub(crate) fn add_shard(
        &mut self,
        first_item: u64,
        units_ok: impl Iterator<Item = bool>,
        row: Option<&ShardRow>,
    ) {
        for (offset, ok) in units_ok.enumerate() {
            self.add_unit(first_item + offset as u64, ok);
        }
        if let Some(row) = row {
            self.totals.add_shard(row);
            if row.worker_id != WorkerId(0) {
                self.workers.insert(row.worker_id);
                if !self.hosts.contains(&row.host) {
                    self.hosts.insert(row.host.clone());
                }
            }
            self.totals.processes = self.workers.len() as u32;
            self.totals.hosts = self.hosts.len() as u32;
        }
    }

    fn add_unit(&mut self, item: u64, ok: bool) {
        let ok = match &mut self.parts {
            None => ok,
            Some(parts) => {
                let index = item as usize;
                let (Some(left), Some(failed)) =
                    (parts.left.get_mut(index), parts.failed.get_mut(index))
                else {
                    return;
                };
                *failed |= !ok;
                *left = left.saturating_sub(1);
                if *left > 0 {
                    return;
                }
                !*failed
            }
        };
        if ok {
            self.items.ok += 1;
        } else {
            self.items.failed += 1;
        }
    }
}

/// Whether each outcome is ok, for [`Tally::add_shard`].
pub(crate) fn oks(outcomes: &[Outcome]) -> impl Iterator<Item = bool> + '_ {
    outcomes.iter().map(|o| o.ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::{NumberSpec, Workload};

    #[test]
    fn a_split_item_counts_once_when_its_last_part_commits() {
        let workload = Workload::SumSquares(NumberSpec::parse("1000").unwrap());
        let plan = Plan::new(&workload, 3);
        let mut tally = Tally::new(&plan);
        tally.add_shard(0, [true].into_iter(), None);
        tally.add_shard(0, [false].into_iter(), None);
        assert_eq!((tally.items.ok, tally.items.failed), (0, 0));
        tally.add_shard(0, [true].into_iter(), None);
        assert_eq!((tally.items.ok, tally.items.failed), (0, 1));
    }

    #[test]
    fn processes_and_hosts_are_distinct_counts() {
        let workload = Workload::SumSquares(NumberSpec::parse("0..4").unwrap());
        let mut tally = Tally::new(&Plan::new(&workload, 4));
        let row = |worker, host: &str| ShardRow {
            worker_id: WorkerId(worker),
            host: host.into(),
            run_s: 1.0,
            ..ShardRow::default()
        };
        for (i, (w, h)) in [(1, "a"), (2, "a"), (1, "a"), (3, "b")].iter().enumerate() {
            tally.add_shard(i as u64, [true].into_iter(), Some(&row(*w, h)));
        }
        assert_eq!((tally.totals.processes, tally.totals.hosts), (3, 2));
        assert_eq!(tally.items.ok, 4);
        assert_eq!(tally.totals.shard_time_s, 4.0);
    }
}
