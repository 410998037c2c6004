//! Shard planning: contiguous runs of items, or sub-ranges of one huge n.

use crate::Workload;
use serde::{Deserialize, Serialize};

/// One shard's share of a job, stored compactly: the units are derived on dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Index of the first item.
    pub first_item: u64,
    /// Number of consecutive items.
    pub item_count: u64,
    /// For a split sum-squares item: the sub-range `lo..hi` of i this shard sums.
    pub part: Option<(u64, u64)>,
}

/// One unit of work inside a shard: an item, or a part of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// GET this URL.
    Fetch {
        /// Item index within the job.
        item: u64,
        /// The URL.
        url: String,
    },
    /// Sum i*i over `lo..hi`.
    SumSquares {
        /// Item index within the job.
        item: u64,
        /// First i.
        lo: u64,
        /// One past the last i.
        hi: u64,
    },
}

impl Unit {
    /// The job item this unit contributes to.
    pub fn item(&self) -> u64 {
        match self {
            Unit::Fetch { item, .. } | Unit::SumSquares { item, .. } => *item,
        }
    }
}

/// Splits `workload` into at most `shards` shards (at least one).
///
/// With fewer items than shards, sum-squares items are cut into sub-ranges of i so every shard
/// has work; fetch jobs get one shard per URL.
pub fn plan_shards(workload: &Workload, shards: u32) -> Vec<ShardPlan> {
    let items = workload.item_count();
    let shards = u64::from(shards.max(1));
    match workload {
        Workload::SumSquares(ns) if shards > items && items > 0 => {
            let (base, extra) = (shards / items, shards % items);
            let mut plans = Vec::with_capacity(shards as usize);
            for item in 0..items {
                let n = ns.get(item);
                let parts = (base + u64::from(item < extra)).min(n.max(1));
                plans.extend(split_range(n, parts).map(|part| ShardPlan {
                    first_item: item,
                    item_count: 1,
                    part: Some(part),
                }));
            }
            plans
        }
        _ => contiguous(items, shards.min(items.max(1))),
    }
}

/// `count` nearly equal runs covering `0..items`.
fn contiguous(items: u64, count: u64) -> Vec<ShardPlan> {
    let (base, extra) = (items / count, items % count);
    let mut first_item = 0;
    (0..count)
        .map(|i| {
            let item_count = base + u64::from(i < extra);
            let plan = ShardPlan {
                first_item,
                item_count,
                part: None,
            };
            first_item += item_count;
            plan
        })
        .collect()
}

/// `parts` nearly equal sub-ranges covering `0..n`.
fn split_range(n: u64, parts: u64) -> impl Iterator<Item = (u64, u64)> {
    let (base, extra) = (n / parts, n % parts);
    let mut lo = 0;
    (0..parts).map(move |i| {
        let hi = lo + base + u64::from(i < extra);
        let range = (lo, hi);
        lo = hi;
        range
    })
}

/// The units of one shard, in order.
pub fn shard_units(workload: &Workload, plan: &ShardPlan) -> Vec<Unit> {
    let items = plan.first_item..plan.first_item + plan.item_count;
    match workload {
        Workload::Fetch(spec) => items
            .map(|item| Unit::Fetch {
                item,
                url: spec.urls[item as usize].clone(),
            })
            .collect(),
        Workload::SumSquares(ns) => items
            .map(|item| {
                let (lo, hi) = plan.part.unwrap_or((0, ns.get(item)));
                Unit::SumSquares { item, lo, hi }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::FetchSpec;
    use crate::{NumberSpec, kernel};
    use proptest::prelude::*;

    fn sum_squares(spec: &str) -> Workload {
        Workload::SumSquares(NumberSpec::parse(spec).unwrap())
    }

    #[test]
    fn contiguous_shards_cover_every_item_once() {
        let plans = plan_shards(&sum_squares("0..10"), 4);
        let counts: Vec<u64> = plans.iter().map(|p| p.item_count).collect();
        assert_eq!(counts, vec![3, 3, 2, 2]);
        assert_eq!(plans[3].first_item, 8);
    }

    #[test]
    fn a_single_huge_n_is_split_into_sub_ranges() {
        let workload = sum_squares("1000000");
        let plans = plan_shards(&workload, 4);
        assert_eq!(plans.len(), 4);
        let total: u128 = plans
            .iter()
            .flat_map(|p| shard_units(&workload, p))
            .map(|unit| match unit {
                Unit::SumSquares { lo, hi, .. } => kernel::sum_squares_range(lo, hi),
                Unit::Fetch { .. } => unreachable!(),
            })
            .sum();
        assert_eq!(Some(total), kernel::closed_form(1_000_000));
    }

    #[test]
    fn fetch_jobs_never_get_more_shards_than_urls() {
        let workload = Workload::Fetch(FetchSpec::new(vec!["http://a/".into(); 3]));
        assert_eq!(plan_shards(&workload, 10).len(), 3);
    }

    proptest! {
        #[test]
        fn every_item_and_every_i_is_covered_exactly_once(
            values in proptest::collection::vec(0u64..500, 1..20),
            shards in 1u32..64,
        ) {
            let list = values.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            let workload = sum_squares(&list);
            let plans = plan_shards(&workload, shards);
            prop_assert!(!plans.is_empty() && plans.len() <= shards as usize);
            // Count how often each i of each item is summed.
            let mut covered: Vec<u64> = vec![0; values.len()];
            for unit in plans.iter().flat_map(|p| shard_units(&workload, p)) {
                if let Unit::SumSquares { item, lo, hi } = unit {
                    covered[item as usize] += hi - lo;
                }
            }
            prop_assert_eq!(covered, values);
        }
    }
}
