//! Exec throughput against GNU parallel, side by side in one run: the same N commands
//! (`PROGRAM ITEM`, items 0..N) at the same total concurrency.
//!
//! concur: a coordinator (in memory) and W `concur-worker --allow-exec` processes with S slots
//! each; one job `submit exec --range 0..N --strategy STRATEGY --concurrency C -- PROGRAM`,
//! timed from submission to its report by `concur-cli --wait`. GNU parallel: `parallel -j
//! W*S*C PROGRAM` reading the same N items on stdin (Debian's `parallel`). Rounds alternate
//! the two so neither gets a warmer machine; the ratio uses each side's best round.
//!
//! Run:
//!
//!     cargo build --release --bins
//!     ./target/release/exec [--items 10000] [--workers 2] [--slots 1] [--concurrency 4]
//!                           [--strategy threads] [--rounds 3] [--program true]

use clap::Parser;
use concur_tests::measure::{Proc, quiet_worker, server, sibling_dir};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Options {
    /// Commands (items 0..N).
    #[arg(long, default_value_t = 10_000)]
    items: u64,
    /// concur worker processes.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Slots per worker.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Children at once per slot.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// concur's in-process strategy.
    #[arg(long, default_value = "threads")]
    strategy: String,
    /// Rounds of both (the best of each is compared).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The program run per item.
    #[arg(long, default_value = "true")]
    program: String,
    /// Where the concur binaries are (default: next to this one).
    #[arg(long, default_value_os_t = sibling_dir())]
    bin_dir: PathBuf,
}

/// One concur job of the N items; its wall time from submission to the finished report.
fn concur_round(o: &Options, url: &str) -> Duration {
    let start = Instant::now();
    let out = Command::new(o.bin_dir.join("concur-cli"))
        .args(["--coordinator", url, "--output", "json", "submit", "exec"])
        .args(["--range", &format!("0..{}", o.items)])
        .args(["--strategy", &o.strategy])
        .args(["--concurrency", &o.concurrency.to_string()])
        .args(["--items", "none", "--wait", "--", &o.program])
        .stderr(Stdio::inherit())
        .output()
        .expect("run concur-cli");
    let elapsed = start.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        report["items_ok"], o.items,
        "not every item ran ok: {report}"
    );
    elapsed
}

/// GNU parallel running the same commands at the same total concurrency.
fn parallel_round(o: &Options, jobs: u32) -> Duration {
    let start = Instant::now();
    let mut child = Command::new("parallel")
        .args(["-j", &jobs.to_string(), &o.program])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run GNU parallel (apt-get install parallel)");
    let items: String = (0..o.items).map(|i| format!("{i}\n")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(items.as_bytes())
        .expect("feed parallel");
    let status = child.wait().expect("wait for parallel");
    assert!(status.success(), "parallel failed: {status}");
    start.elapsed()
}

fn main() {
    let o = Options::parse();
    let (_coordinator, url) = server({
        let mut c = Command::new(o.bin_dir.join("concur-coordinator"));
        c.args(["--listen", "127.0.0.1:0", "--in-memory"]);
        c
    });
    let slots = o.slots.to_string();
    let _workers: Vec<Proc> = (0..o.workers)
        .map(|_| quiet_worker(&o.bin_dir, &url, &["--slots", &slots, "--allow-exec"]))
        .collect();
    // The first job also waits out the workers' attachment: it is an untimed warm-up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Command::new(o.bin_dir.join("concur-cli"))
        .args([
            "--coordinator",
            &url,
            "--output",
            "json",
            "submit",
            "exec",
            "--wait",
        ])
        .args(["1", "--", &o.program])
        .output()
        .map_or(true, |out| !out.status.success())
    {
        assert!(Instant::now() < deadline, "workers did not attach");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let jobs = o.workers * o.slots * o.concurrency;
    println!(
        "{} x `{} ITEM`: concur {} workers x {} slots x {} {} vs GNU parallel -j {jobs}",
        o.items, o.program, o.workers, o.slots, o.strategy, o.concurrency
    );
    let (mut best_concur, mut best_parallel) = (f64::MAX, f64::MAX);
    for round in 1..=o.rounds {
        let concur = concur_round(&o, &url).as_secs_f64();
        let parallel = parallel_round(&o, jobs).as_secs_f64();
        best_concur = best_concur.min(concur);
        best_parallel = best_parallel.min(parallel);
        println!(
            "round {round}: concur {concur:.3} s ({:.0} items/s), parallel {parallel:.3} s ({:.0} items/s)",
            o.items as f64 / concur,
            o.items as f64 / parallel
        );
    }
    println!(
        "best: concur {best_concur:.3} s, parallel {best_parallel:.3} s; concur is {:.2}x as fast",
        best_parallel / best_concur
    );
}
