//! The sum-of-squares CPU kernel: exact u128 sums that really iterate.
//!
//! rustc folds the obvious `(0..n).map(|i| i as u128 * i as u128).sum()` into the closed form at
//! `-O` (0 ns for any n), which would make every CPU measurement meaningless. Instead the kernel
//! keeps eight u64 lanes of partial sums, flushed into a u128 total before any lane can overflow;
//! that loop vectorizes and its time grows linearly with the range length.

use std::hint::black_box;

/// Number of independent u64 accumulators; eight lets the loop vectorize on common targets.
const LANES: usize = 8;

/// Below this bound every square fits in a u64, so the lane-wise fast path applies.
const SMALL_LIMIT: u64 = 1 << 32;

/// The largest n whose sum of squares `0² + … + (n-1)²` fits in a u128.
pub const MAX_N: u64 = max_n();

/// Exact `sum(i*i for i in lo..hi)`, computed by iterating over every i.
///
/// The caller must keep the result within u128: any `hi <= MAX_N` does.
pub fn sum_squares_range(lo: u64, hi: u64) -> u128 {
    // Opaque bounds keep the optimiser from evaluating a call with constant arguments.
    let (lo, hi) = (black_box(lo), black_box(hi));
    if lo >= hi {
        return 0;
    }
    let mut total = 0u128;
    if lo < SMALL_LIMIT {
        total += sum_small(lo, hi.min(SMALL_LIMIT));
    }
    if hi > SMALL_LIMIT {
        total += sum_large(lo.max(SMALL_LIMIT), hi);
    }
    total
}

/// Exact `sum(i*i for i in 0..n)`: the sum-squares workload's item.
pub fn sum_squares(n: u64) -> u128 {
    sum_squares_range(0, n)
}

/// Lane-wise u64 accumulation for `hi <= 2^32`, where each square fits in a u64.
fn sum_small(lo: u64, hi: u64) -> u128 {
    let max_square = (hi - 1) * (hi - 1);
    // Each lane takes at most `per_lane` squares per block, so no lane can overflow.
    let per_lane = (u64::MAX / max_square.max(1)).max(1);
    let block = per_lane.saturating_mul(LANES as u64);
    // XOR with an opaque zero leaves every i unchanged, but hides the induction variable from
    // LLVM's scalar evolution, which would otherwise replace the lane loop by a closed form
    // (seen: time growing with n^3 / block size instead of n). The loop still vectorizes.
    let mask = black_box(0u64);
    let mut total = 0u128;
    let mut start = lo;
    while start < hi {
        let end = hi.min(start.saturating_add(block));
        let mut lanes = [0u64; LANES];
        let mut i = start;
        while i + LANES as u64 <= end {
            for (offset, lane) in lanes.iter_mut().enumerate() {
                let x = (i + offset as u64) ^ mask;
                *lane += x * x;
            }
            i += LANES as u64;
        }
        while i < end {
            total += u128::from(i) * u128::from(i);
            i += 1;
        }
        total += lanes.iter().map(|&lane| u128::from(lane)).sum::<u128>();
        start = end;
    }
    total
}

/// Squares beyond 2^32 need u128 products; `black_box` on each i keeps the loop a loop.
fn sum_large(lo: u64, hi: u64) -> u128 {
    let mut total = 0u128;
    let mut i = lo;
    while i < hi {
        let x = u128::from(black_box(i));
        total += x * x;
        i += 1;
    }
    total
}

/// `n(n-1)(2n-1)/6` without intermediate overflow, or `None` when the result exceeds u128.
/// Used to validate input and to check the kernel, never to compute results.
pub const fn closed_form(n: u64) -> Option<u128> {
    if n == 0 {
        return Some(0);
    }
    let (mut a, mut b, mut c) = (n as u128 - 1, n as u128, 2 * n as u128 - 1);
    // One of n-1, n is even; one of n-1, n, 2n-1 is a multiple of 3.
    if a % 2 == 0 {
        a /= 2;
    } else {
        b /= 2;
    }
    match n % 3 {
        0 => b /= 3,
        1 => a /= 3,
        _ => c /= 3,
    }
    match a.checked_mul(b) {
        Some(ab) => ab.checked_mul(c),
        None => None,
    }
}

/// Binary search for [`MAX_N`] at compile time.
const fn max_n() -> u64 {
    let (mut lo, mut hi) = (1u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if closed_form(mid).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(lo: u64, hi: u64) -> u128 {
        (lo..hi).map(|i| u128::from(i) * u128::from(i)).sum()
    }

    #[test]
    fn small_values_match_the_naive_sum() {
        for n in 0..200 {
            assert_eq!(sum_squares(n), naive(0, n), "n = {n}");
            assert_eq!(closed_form(n), Some(naive(0, n)), "n = {n}");
        }
    }

    #[test]
    fn reference_scenario_values_match_the_closed_form() {
        for n in 5_000_000..5_000_003 {
            assert_eq!(Some(sum_squares(n)), closed_form(n));
        }
    }

    #[test]
    fn ranges_crossing_the_u64_square_limit_are_exact() {
        let (lo, hi) = (SMALL_LIMIT - 1000, SMALL_LIMIT + 1000);
        assert_eq!(sum_squares_range(lo, hi), naive(lo, hi));
        assert_eq!(
            sum_squares_range(lo, hi),
            closed_form(hi).unwrap() - closed_form(lo).unwrap()
        );
    }

    #[test]
    fn max_n_is_the_overflow_boundary() {
        assert!(closed_form(MAX_N).is_some());
        assert!(closed_form(MAX_N + 1).is_none());
        assert!(closed_form(u64::MAX).is_none());
    }

    proptest! {
        #[test]
        fn any_range_matches_the_closed_form(lo in 0u64..20_000_000, len in 0u64..50_000) {
            let hi = lo + len;
            let expected = closed_form(hi).unwrap() - closed_form(lo).unwrap();
            prop_assert_eq!(sum_squares_range(lo, hi), expected);
        }

        #[test]
        fn splitting_a_range_preserves_the_sum(n in 1u64..2_000_000, cut in 0u64..2_000_000) {
            let cut = cut % n;
            prop_assert_eq!(sum_squares_range(0, cut) + sum_squares_range(cut, n), sum_squares(n));
        }
    }
}
