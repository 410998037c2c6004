//! Benchmark of the sum-of-squares kernel: ns per iteration, and proof that its time grows
//! linearly with n (doubling n doubles the time), i.e. the compiler did not fold the loop.
//!
//! Run: `cargo bench -p concur-core --bench kernel`

use concur_core::kernel::{closed_form, sum_squares};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Best of several runs, so a busy machine inflates the figure as little as possible.
fn best_time(n: u64, runs: usize) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let value = black_box(sum_squares(black_box(n)));
            let elapsed = start.elapsed();
            assert_eq!(Some(value), closed_form(n), "kernel wrong for n = {n}");
            elapsed
        })
        .min()
        .expect("at least one run")
}

fn main() {
    println!(
        "{:>14} {:>12} {:>10} {:>16}",
        "n", "time", "ns/iter", "vs previous n"
    );
    let mut previous: Option<Duration> = None;
    for n in [
        12_500_000u64,
        25_000_000,
        50_000_000,
        100_000_000,
        200_000_000,
        400_000_000,
    ] {
        let time = best_time(n, 5);
        let ratio = previous.map_or(String::from("-"), |p| {
            format!("{:.2}x", time.as_secs_f64() / p.as_secs_f64())
        });
        println!(
            "{n:>14} {:>10.2}ms {:>10.3} {ratio:>16}",
            time.as_secs_f64() * 1e3,
            time.as_secs_f64() * 1e9 / n as f64
        );
        previous = Some(time);
    }
    println!("(each row doubles n; a linear kernel shows ~2.00x)");
}
