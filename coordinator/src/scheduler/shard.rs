//! One shard's life inside the scheduler: pending, leased (with the results of its current
//! lease), or done. A phase is one enum, so a shard cannot be leased and done at once.

use concur_core::{Attempt, Outcome, WorkerId};
use std::time::Instant;

/// A shard of a job: its phase plus the counters that outlive a lease.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Attempt of the latest lease; 0 before the first.
    pub(crate) attempt: Attempt,
    /// Leases revoked so far (worker lost or lease timed out): the job's `max_retries` bounds
    /// this count, not the attempt number.
    pub(crate) revocations: u32,
    pub(crate) phase: Phase,
}

/// Where a shard is in its life.
#[derive(Debug, Default)]
pub(crate) enum Phase {
    /// Waiting for a worker.
    #[default]
    Pending,
    /// Leased to a worker; boxed so a million pending shards stay small.
    Leased(Box<Lease>),
    /// Finished for good.
    Done(ShardEnd),
}

/// How a shard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardEnd {
    /// Its worker finished it and its results were committed.
    Committed,
    /// It ran out of retries; its items failed with the reason.
    GaveUp,
    /// Its job was cancelled before it finished.
    Cancelled,
}

/// The current lease of a shard and the results it has sent so far. Results are buffered here
/// and reach the job only when the shard finishes, so a lost lease leaves nothing half-counted.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) worker: WorkerId,
    pub(crate) leased_at: Instant,
    pub(crate) results: UnitBuffer,
}

/// Unit results of one lease, in arrival order, each unit at most once.
#[derive(Debug, Default)]
pub(crate) struct UnitBuffer {
    received: Vec<(u32, Outcome)>,
    /// One bit per unit: set once its result arrived (the first result of a unit wins).
    seen: Vec<u64>,
}

impl UnitBuffer {
    /// Adds results for a shard of `units` units; out-of-range and repeated units are ignored.
    pub(crate) fn add(&mut self, units: u64, results: Vec<(u32, Outcome)>) {
        if self.seen.is_empty() {
            self.seen = vec![0; units.div_ceil(64) as usize];
        }
        for (unit, outcome) in results {
            if u64::from(unit) >= units {
                continue;
            }
            let (word, bit) = (unit as usize / 64, 1u64 << (unit % 64));
            if self.seen[word] & bit == 0 {
                self.seen[word] |= bit;
                self.received.push((unit, outcome));
            }
        }
    }

    /// Results received so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.received.len()
    }

    /// Every unit's outcome in unit order; units never reported fail with `missing`.
    pub(crate) fn into_outcomes(mut self, units: u64, missing: &str) -> Vec<Outcome> {
        self.received.sort_unstable_by_key(|(unit, _)| *unit);
        let mut received = self.received.into_iter().peekable();
        (0..units)
            .map(
                |unit| match received.next_if(|(u, _)| u64::from(*u) == unit) {
                    Some((_, outcome)) => outcome,
                    None => Outcome::failed(missing, 0.0),
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: u128) -> Outcome {
        Outcome {
            ok: true,
            value,
            ..Outcome::default()
        }
    }

    #[test]
    fn the_first_result_of_a_unit_wins_and_gaps_fail() {
        let mut buffer = UnitBuffer::default();
        buffer.add(4, vec![(2, ok(2)), (0, ok(0)), (9, ok(9))]);
        buffer.add(4, vec![(2, ok(99))]);
        assert_eq!(buffer.len(), 2);
        let outcomes = buffer.into_outcomes(4, "missing");
        assert_eq!(outcomes[0].value, 0);
        assert_eq!(outcomes[2].value, 2);
        assert!(!outcomes[1].ok && outcomes[1].error == "missing");
        assert!(!outcomes[3].ok);
    }
}
