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
    /// Run the job's program with this item.
    Exec {
        /// Item index within the job.
        item: u64,
        /// The item, as substituted into the arguments.
        arg: String,
    },
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
            Unit::Exec { item, .. } | Unit::Fetch { item, .. } | Unit::SumSquares { item, .. } => {
                *item
            }
        }
    }
}

/// Units per shard at most when the job leaves the shard count to the coordinator: big jobs
/// get more shards than there are slots, so a lost worker re-runs little, progress moves in
/// small steps and the coordinator buffers few results per lease.
pub const DEFAULT_MAX_UNITS_PER_SHARD: u64 = 10_000;

/// The shard count for a job that gives none: one per worker slot, more when that would put
/// more than [`DEFAULT_MAX_UNITS_PER_SHARD`] items in a shard, at most `max_shards`.
pub fn default_shard_count(workload: &Workload, slots: u32, max_shards: u32) -> u32 {
    let by_size = workload.item_count().div_ceil(DEFAULT_MAX_UNITS_PER_SHARD);
    u64::from(slots.max(1))
        .max(by_size)
        .min(u64::from(max_shards.max(1))) as u32
}

/// How a job's items are cut into shards, computed in O(1) per shard: a job of a million
/// shards does not store a million plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    items: u64,
    layout: Layout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// `shards` nearly equal runs of consecutive items.
    Contiguous { shards: u32 },
    /// Fewer sum-squares items than shards: item k is cut into `parts[k]` sub-ranges of i,
    /// held by shards `first[k]..first[k] + parts[k]`.
    Split {
        first: Vec<u32>,
        parts: Vec<u32>,
        ns: Vec<u64>,
    },
}

impl Plan {
    /// Splits `workload` into at most `shards` shards (at least one).
    ///
    /// With fewer items than shards, sum-squares items are cut into sub-ranges of i so every
    /// shard has work; fetch jobs get one shard per URL.
    pub fn new(workload: &Workload, shards: u32) -> Self {
        let items = workload.item_count();
        let shards = u64::from(shards.max(1));
        let layout = match workload {
            Workload::SumSquares(ns) if shards > items && items > 0 => {
                let (base, extra) = (shards / items, shards % items);
                let mut first = Vec::with_capacity(items as usize);
                let mut parts = Vec::with_capacity(items as usize);
                let mut values = Vec::with_capacity(items as usize);
                let mut next = 0u32;
                for item in 0..items {
                    let n = ns.get(item);
                    let count = (base + u64::from(item < extra)).min(n.max(1)) as u32;
                    first.push(next);
                    parts.push(count);
                    values.push(n);
                    next += count;
                }
                Layout::Split {
                    first,
                    parts,
                    ns: values,
                }
            }
            _ => Layout::Contiguous {
                shards: shards.min(items.max(1)) as u32,
            },
        };
        Self { items, layout }
    }

    /// The plan of a job of `items` items of `workload`'s kind when the workload itself is not
    /// at hand with its items (a stored fetch job's URLs are read apart): the same plan
    /// [`Plan::new`] made for it.
    pub fn with_items(workload: &Workload, items: u64, shards: u32) -> Self {
        match workload {
            Workload::SumSquares(_) => Plan::new(workload, shards),
            Workload::Exec(_) | Workload::Fetch(_) => Self {
                items,
                layout: Layout::Contiguous {
                    shards: u64::from(shards.max(1)).min(items.max(1)) as u32,
                },
            },
        }
    }

    /// The first shard holding (part of) `item`; `item` must be below [`Plan::items`].
    pub fn shard_of_item(&self, item: u64) -> u32 {
        match &self.layout {
            Layout::Contiguous { shards } => {
                let count = u64::from(*shards);
                let (base, extra) = (self.items / count, self.items % count);
                // The first `extra` shards hold base + 1 items, the rest base.
                let big = extra * (base + 1);
                if item < big {
                    (item / (base + 1)) as u32
                } else {
                    (extra + (item - big) / base.max(1)) as u32
                }
            }
            Layout::Split { first, .. } => first.get(item as usize).copied().unwrap_or(0),
        }
    }

    /// Number of shards.
    pub fn len(&self) -> u32 {
        match &self.layout {
            Layout::Contiguous { shards } => *shards,
            Layout::Split { first, parts, .. } => {
                first.last().copied().unwrap_or(0) + parts.last().copied().unwrap_or(0)
            }
        }
    }

    /// True for a plan without shards (never: every plan has at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items in the job.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Whether items are cut into parts across shards.
    pub fn is_split(&self) -> bool {
        matches!(self.layout, Layout::Split { .. })
    }

    /// How many shards share `item` (1 unless the plan is split).
    pub fn parts_of(&self, item: u64) -> u32 {
        match &self.layout {
            Layout::Contiguous { .. } => 1,
            Layout::Split { parts, .. } => parts.get(item as usize).copied().unwrap_or(1),
        }
    }

    /// Shard `index`'s share of the job; `index` must be below [`Plan::len`].
    pub fn shard(&self, index: u32) -> ShardPlan {
        match &self.layout {
            Layout::Contiguous { shards } => {
                let count = u64::from(*shards);
                let (base, extra) = (self.items / count, self.items % count);
                let i = u64::from(index);
                ShardPlan {
                    first_item: i * base + i.min(extra),
                    item_count: base + u64::from(i < extra),
                    part: None,
                }
            }
            Layout::Split { first, parts, ns } => {
                let item = first.partition_point(|&start| start <= index) - 1;
                let part = u64::from(index - first[item]);
                let (n, count) = (ns[item], u64::from(parts[item]));
                let (base, extra) = (n / count, n % count);
                let lo = part * base + part.min(extra);
                let hi = lo + base + u64::from(part < extra);
                ShardPlan {
                    first_item: item as u64,
                    item_count: 1,
                    part: Some((lo, hi)),
                }
            }
        }
    }

    /// Every shard's share, in order.
    pub fn shards(&self) -> impl Iterator<Item = ShardPlan> + '_ {
        (0..self.len()).map(|i| self.shard(i))
    }
}

/// The shards of `workload` cut into at most `shards` pieces, listed (see [`Plan`]).
pub fn plan_shards(workload: &Workload, shards: u32) -> Vec<ShardPlan> {
    Plan::new(workload, shards).shards().collect()
}

/// The units of one shard, in order.
pub fn shard_units(workload: &Workload, plan: &ShardPlan) -> Vec<Unit> {
    let items = plan.first_item..plan.first_item + plan.item_count;
    match workload {
        Workload::Exec(spec) => items
            .map(|item| Unit::Exec {
                item,
                arg: spec.items.get(item),
            })
            .collect(),
        Workload::Fetch(spec) => items
            .map(|item| Unit::Fetch {
                item,
                url: spec.urls.get(item as usize).unwrap_or_default().to_string(),
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
                Unit::Exec { .. } | Unit::Fetch { .. } => unreachable!(),
            })
            .sum();
        assert_eq!(Some(total), kernel::closed_form(1_000_000));
    }

    #[test]
    fn fetch_jobs_never_get_more_shards_than_urls() {
        let workload = Workload::Fetch(FetchSpec::new(vec!["http://a/".to_string(); 3].into()));
        assert_eq!(plan_shards(&workload, 10).len(), 3);
    }

    #[test]
    fn default_shards_follow_slots_and_cap_shard_size() {
        assert_eq!(default_shard_count(&sum_squares("0..100"), 4, 1000), 4);
        assert_eq!(
            default_shard_count(&sum_squares("0..1000000"), 2, 1000),
            100
        );
        assert_eq!(default_shard_count(&sum_squares("0..1000000"), 2, 10), 10);
        assert_eq!(default_shard_count(&sum_squares("0..5"), 0, 10), 1);
    }

    #[test]
    fn a_stored_fetch_job_gets_the_same_plan_back() {
        let urls: Vec<String> = (0..37).map(|i| format!("http://a/{i}")).collect();
        let workload = Workload::Fetch(FetchSpec::new(urls.into()));
        let stored = Workload::Fetch(FetchSpec::new(crate::UrlList::new()));
        for shards in [1, 5, 37, 100] {
            assert_eq!(
                Plan::with_items(&stored, 37, shards),
                Plan::new(&workload, shards)
            );
        }
    }

    proptest! {
        #[test]
        fn every_item_is_found_in_its_shard(items in 1u64..3000, shards in 1u32..400) {
            let workload = sum_squares(&format!("7..{}", 7 + items));
            let plan = Plan::new(&workload, shards);
            for item in 0..items {
                let shard = plan.shard(plan.shard_of_item(item));
                prop_assert!(shard.first_item <= item && item < shard.first_item + shard.item_count);
                if plan.shard_of_item(item) > 0 {
                    let before = plan.shard(plan.shard_of_item(item) - 1);
                    prop_assert!(before.first_item + before.item_count <= item || before.first_item == item);
                }
            }
        }

        #[test]
        fn contiguous_shards_tile_the_items(items in 1u64..5000, shards in 1u32..300) {
            // More shards than items would split sum-squares items instead.
            prop_assume!(u64::from(shards) <= items);
            let workload = sum_squares(&format!("0..{items}"));
            let plan = Plan::new(&workload, shards);
            let mut next = 0;
            for shard in plan.shards() {
                prop_assert_eq!(shard.first_item, next);
                prop_assert!(shard.item_count >= 1);
                next += shard.item_count;
            }
            prop_assert_eq!(next, items);
        }

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
