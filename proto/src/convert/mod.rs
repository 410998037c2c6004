//! Conversions at the wire boundary, the only place wire and domain types meet. Decoding
//! untrusted messages never panics: anything that does not map onto the domain becomes a
//! [`SpecError`](concur_core::SpecError) or is sanitised.
//!
//! Layout:
//! - `spec`: job specifications, strategies, job states.
//! - `report`: job summaries, shard rows, item rows.
//! - `worker`: leases, assignments, unit results, shard timing, registration.

mod report;
mod spec;
mod worker;

pub use report::{item_outcome, item_row, item_row_of};
pub use spec::{job_state_from_i32, strategy_from_i32};
pub use worker::{assignment_strategy, truncate, unit_result};

/// Splits a u128 into (high, low) u64 halves for the wire.
pub fn split_u128(value: u128) -> (u64, u64) {
    ((value >> 64) as u64, value as u64)
}

/// Joins (high, low) u64 halves into a u128.
pub fn join_u128(hi: u64, lo: u64) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
}

/// Durations from the wire are untrusted: NaN, infinite or negative become 0.
pub fn sanitize_seconds(seconds: f64) -> f64 {
    if seconds.is_finite() && seconds > 0.0 {
        seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u128_round_trips_through_halves() {
        for value in [
            0u128,
            1,
            u128::from(u64::MAX) + 1,
            u128::MAX,
            41_666_679_166_665_000_000,
        ] {
            let (hi, lo) = split_u128(value);
            assert_eq!(join_u128(hi, lo), value);
        }
    }

    #[test]
    fn bad_seconds_become_zero() {
        assert_eq!(sanitize_seconds(f64::NAN), 0.0);
        assert_eq!(sanitize_seconds(-1.0), 0.0);
        assert_eq!(sanitize_seconds(f64::INFINITY), 0.0);
        assert_eq!(sanitize_seconds(0.5), 0.5);
    }
}
