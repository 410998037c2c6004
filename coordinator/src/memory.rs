//! Giving freed memory back to the operating system. A big job's URLs and transient buffers
//! are freed when it finishes, but glibc's allocator keeps much of it: after a large block is
//! freed it raises its mmap threshold, so later large blocks come from heaps it rarely
//! shrinks. A long-lived coordinator would then only grow. So the threshold is fixed at its
//! default (large blocks always come from, and go back to, the kernel), and after a big job
//! leaves memory the heaps are trimmed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Jobs with at least this many items trim the heaps when they leave memory.
pub(crate) const TRIM_AFTER_ITEMS: u64 = 100_000;
/// Trims at most this often.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Fixes the allocator's behaviour for a long-lived process; call once at start-up.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        // 128 KiB, glibc's default; setting it stops the dynamic raising.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns free heap memory to the kernel, at most once per [`TRIM_EVERY`].
pub(crate) fn trim() {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|at| at.elapsed() < TRIM_EVERY) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
