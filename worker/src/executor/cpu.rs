//! The CPU side of executors: a cancellable sum-of-squares unit and process CPU time.

use concur_core::{Outcome, kernel};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// i values summed between two checks of the cancel flag: about 5 ms of kernel time.
const CANCEL_CHECK_EVERY: u64 = 1 << 24;

/// Sums i*i over `lo..hi`, checking `cancel` between chunks so a cancelled shard stops promptly.
pub(crate) fn sum_squares_unit(lo: u64, hi: u64, cancel: &AtomicBool) -> Outcome {
    let start = Instant::now();
    let mut total = 0u128;
    let mut chunk_lo = lo;
    while chunk_lo < hi {
        if cancel.load(Ordering::Relaxed) {
            return Outcome::failed("cancelled", start.elapsed().as_secs_f64());
        }
        let chunk_hi = hi.min(chunk_lo.saturating_add(CANCEL_CHECK_EVERY));
        total += kernel::sum_squares_range(chunk_lo, chunk_hi);
        chunk_lo = chunk_hi;
    }
    Outcome {
        ok: true,
        duration_s: start.elapsed().as_secs_f64(),
        value: total,
        ..Outcome::default()
    }
}

/// User plus system CPU time of this process so far, in seconds.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_exact_and_cancellable() {
        let go = AtomicBool::new(false);
        let outcome = sum_squares_unit(0, 100_000, &go);
        assert_eq!(Some(outcome.value), kernel::closed_form(100_000));
        let stop = AtomicBool::new(true);
        assert!(!sum_squares_unit(0, 100_000, &stop).ok);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu_seconds();
        let go = AtomicBool::new(false);
        std::hint::black_box(sum_squares_unit(0, 50_000_000, &go));
        assert!(process_cpu_seconds() > before);
    }
}
