//! A job specification and its validation against the coordinator's limits.

use crate::pacing::Pacing;
use crate::{SpecError, SpecResult, Strategy, Workload};
use serde::{Deserialize, Serialize};

/// Retries of a shard whose worker was lost, when the job gives none.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Bounds on what one job may ask for; hostile or mistaken input stops here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Items (URLs or n values) per job.
    pub max_items: u64,
    /// Shards per job.
    pub max_shards: u32,
    /// Threads or tasks per worker.
    pub max_concurrency: u32,
    /// Bytes per URL.
    pub max_url_len: usize,
    /// Retries per shard.
    pub max_retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_items: 10_000_000,
            max_shards: 1_000_000,
            max_concurrency: 100_000,
            max_url_len: 8 * 1024,
            max_retries: 100,
        }
    }
}

/// What the user asked for: a workload run with a strategy, split into shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// What to compute.
    pub workload: Workload,
    /// How each worker runs its shard.
    pub strategy: Strategy,
    /// Threads, tasks or pool size inside a worker; with `pacing.auto`, the ceiling of the
    /// limit each worker tunes.
    pub concurrency: u32,
    /// Shard count; `None` lets the coordinator pick one per worker slot.
    pub shards: Option<u32>,
    /// Re-leases allowed per shard after worker loss; `None` = [`DEFAULT_MAX_RETRIES`].
    pub max_retries: Option<u32>,
    /// Free-form label for listings.
    pub label: String,
    /// Auto-tuned concurrency and per-host politeness (none in specs stored before them).
    #[serde(default)]
    pub pacing: Pacing,
}

impl JobSpec {
    /// The concurrency job records and reports show: 0 stands for auto (the ceiling stays in
    /// the spec), so a listing tells a tuned job from a fixed one without a new column.
    pub fn recorded_concurrency(&self) -> u32 {
        if self.pacing.auto {
            0
        } else {
            self.concurrency
        }
    }

    /// Checks every field against `limits`.
    ///
    /// # Errors
    /// The first problem found, naming the offending input.
    pub fn validate(&self, limits: &Limits) -> SpecResult<()> {
        self.workload.validate(limits.max_url_len)?;
        let items = self.workload.item_count();
        if items > limits.max_items {
            return Err(SpecError::TooLarge {
                what: "items",
                value: items,
                limit: limits.max_items,
            });
        }
        if self.concurrency == 0 {
            return Err(SpecError::ZeroConcurrency);
        }
        if self.concurrency > limits.max_concurrency {
            return Err(SpecError::TooLarge {
                what: "concurrency",
                value: self.concurrency.into(),
                limit: limits.max_concurrency.into(),
            });
        }
        self.pacing
            .validate(self.strategy, matches!(self.workload, Workload::Fetch(_)))?;
        match self.shards {
            Some(0) => return Err(SpecError::ZeroShards),
            Some(shards) if shards > limits.max_shards => {
                return Err(SpecError::TooLarge {
                    what: "shards",
                    value: shards.into(),
                    limit: limits.max_shards.into(),
                });
            }
            _ => {}
        }
        if let Some(retries) = self.max_retries.filter(|r| *r > limits.max_retries) {
            return Err(SpecError::TooLarge {
                what: "max_retries",
                value: retries.into(),
                limit: limits.max_retries.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NumberSpec;

    fn spec() -> JobSpec {
        JobSpec {
            workload: Workload::SumSquares(NumberSpec::parse("1..10").unwrap()),
            strategy: Strategy::Threads,
            concurrency: 4,
            shards: Some(2),
            max_retries: None,
            label: String::new(),
            pacing: Pacing::default(),
        }
    }

    #[test]
    fn a_sane_spec_passes() {
        assert_eq!(spec().validate(&Limits::default()), Ok(()));
    }

    #[test]
    fn zero_and_oversized_values_are_refused() {
        let limits = Limits::default();
        let zero_shards = JobSpec {
            shards: Some(0),
            ..spec()
        };
        assert_eq!(zero_shards.validate(&limits), Err(SpecError::ZeroShards));
        let zero_concurrency = JobSpec {
            concurrency: 0,
            ..spec()
        };
        assert_eq!(
            zero_concurrency.validate(&limits),
            Err(SpecError::ZeroConcurrency)
        );
        let tight = Limits {
            max_items: 5,
            ..limits
        };
        assert!(matches!(
            spec().validate(&tight),
            Err(SpecError::TooLarge { what: "items", .. })
        ));
    }
}
