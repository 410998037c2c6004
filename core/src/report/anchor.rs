//! Placing a shard's execution on the coordinator's clock without trusting a worker's clock.
//!
//! The coordinator knows two instants of its own: when it leased the shard (`queue_s` after
//! the job's submission) and when the shard's end arrived (`round_trip_s` later). The worker
//! measures, on its own monotonic clock, how long after receiving the assignment the shard
//! started (`started_after_s`) and the end was sent (`sent_after_s`). Whatever of the round
//! trip the worker's clock does not cover was spent on the wire (and in queues) going out and
//! coming back; assuming both ways took equally long puts the receipt at half of it after the
//! lease. The error is at most that half: the receipt cannot have happened before the lease
//! nor after `round_trip_s − sent_after_s`. Wall clocks of other hosts are never used, so a
//! host whose clock is hours off still lands where it ran.

/// Where a shard's execution started on the coordinator's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchored {
    /// Seconds after the job's submission.
    pub start_s: f64,
    /// The placement is exact to within this many seconds either way.
    pub error_s: f64,
}

/// Anchors a shard leased `queue_s` after submission whose end arrived `round_trip_s` after
/// the lease. A worker that did not say when it sent the end (`sent_after_s` = 0, the first
/// releases) is assumed to have started at once and sent at the end of `run_s`.
pub fn anchor(
    queue_s: f64,
    round_trip_s: f64,
    started_after_s: f64,
    sent_after_s: f64,
    run_s: f64,
) -> Anchored {
    let (started_after_s, sent_after_s) = if sent_after_s > 0.0 {
        (started_after_s.min(sent_after_s), sent_after_s)
    } else {
        (0.0, run_s)
    };
    // A worker's clock may run a hair fast, or it may lie: never more than the round trip.
    let covered = sent_after_s.clamp(0.0, round_trip_s.max(0.0));
    let one_way = (round_trip_s.max(0.0) - covered) / 2.0;
    Anchored {
        start_s: queue_s.max(0.0) + one_way + started_after_s.min(covered),
        error_s: one_way,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uncovered_round_trip_is_split_evenly_and_is_the_error() {
        // Leased at 1.0; end back 0.5 s later; the worker received it, waited 0.1 s in its
        // queue, ran, and sent the end 0.4 s after receipt: 0.1 s on the wire, 0.05 each way.
        let placed = anchor(1.0, 0.5, 0.1, 0.4, 0.3);
        assert!((placed.start_s - 1.15).abs() < 1e-9, "{placed:?}");
        assert!((placed.error_s - 0.05).abs() < 1e-9, "{placed:?}");
    }

    #[test]
    fn a_worker_clock_that_claims_more_than_the_round_trip_is_capped() {
        let placed = anchor(2.0, 0.5, 0.2, 9.0, 0.3);
        assert_eq!(placed.error_s, 0.0);
        assert!((placed.start_s - 2.2).abs() < 1e-9, "{placed:?}");
    }

    #[test]
    fn old_workers_fall_back_to_the_run_time() {
        let placed = anchor(0.0, 1.0, 0.0, 0.0, 0.6);
        assert!((placed.start_s - 0.2).abs() < 1e-9, "{placed:?}");
        assert!((placed.error_s - 0.2).abs() < 1e-9, "{placed:?}");
    }
}
