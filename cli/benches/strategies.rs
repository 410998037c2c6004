//! Strategy benchmarks, run with `cargo bench -p concur-cli --bench strategies [cpu|io|overhead]`.
//!
//! Drives the release `concur-cli` binary exactly as a user would (local mode, JSON output) and
//! prints Markdown tables for docs/benchmarks.md:
//! - a CPU job of at least 2 s sequential under every strategy: speedup on this machine;
//! - 1,000 fetches at 50 ms latency against the site simulator: wall time against the latency
//!   floor ceil(requests / units) x latency;
//! - coordination overhead: 10,000 empty shards (n = 0) across 2 local workers, per shard.
//!
//! Numbers are ratios measured side by side in one run, not assertions.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const CLI: &str = env!("CARGO_BIN_EXE_concur-cli");
/// 20 values of n around 5e8: ~2.7 s sequential at ~0.27 ns per i.
const CPU_SPEC: &str = "500000000..500000020";
const CPU_REPEAT: usize = 3;
const FETCHES: usize = 1000;
const LATENCY: Duration = Duration::from_millis(50);
const EMPTY_SHARDS: usize = 10_000;

/// Runs `concur-cli --output json ARGS` and returns its report.
fn run(args: &[&str]) -> Value {
    let out = Command::new(CLI)
        .arg("--output")
        .arg("json")
        .args(args)
        .env_remove("CONCUR_COORDINATOR")
        .output()
        .expect("run concur-cli");
    assert!(
        out.status.success(),
        "concur-cli {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn wall(report: &Value) -> f64 {
    assert_eq!(
        report["items_failed"], 0,
        "failed items: {}",
        report["items_failed"]
    );
    report["wall_s"].as_f64().expect("wall_s")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// (label, processes, strategy, concurrency)
type Config = (&'static str, u32, &'static str, u32);

fn submit(workload: &[&str], processes: u32, strategy: &str, concurrency: u32) -> Value {
    let processes = processes.to_string();
    let concurrency = concurrency.to_string();
    let mut args = vec!["submit"];
    args.extend_from_slice(workload);
    args.extend_from_slice(&[
        "--strategy",
        strategy,
        "--concurrency",
        &concurrency,
        "--local-workers",
        &processes,
        "--shards",
        &processes,
    ]);
    run(&args)
}

fn cpu() {
    let configs: [Config; 8] = [
        ("sequential", 1, "sequential", 1),
        ("threads", 1, "threads", 2),
        ("rayon", 1, "rayon", 2),
        ("async (CPU moved to a pool)", 1, "async", 2),
        ("2 worker processes", 2, "sequential", 1),
        ("threads, oversubscribed", 1, "threads", 8),
        ("async-cpu (teaching)", 1, "async-cpu", 2),
        ("async-blocking (teaching)", 1, "async-blocking", 2),
    ];
    println!("\n### CPU job: sum-squares {CPU_SPEC}, median of {CPU_REPEAT} runs\n");
    println!(
        "| configuration | processes x concurrency | wall (median) | speedup | CPU utilisation |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut baseline = 0.0;
    for (label, processes, strategy, concurrency) in configs {
        let reports: Vec<Value> = (0..CPU_REPEAT)
            .map(|_| submit(&["sum-squares", CPU_SPEC], processes, strategy, concurrency))
            .collect();
        let time = median(reports.iter().map(wall).collect());
        let cpu = median(
            reports
                .iter()
                .map(|r| r["cpu_utilisation"].as_f64().unwrap_or(0.0))
                .collect(),
        );
        if baseline == 0.0 {
            baseline = time;
        }
        println!(
            "| {label} | {processes} x {strategy} {concurrency} | {time:.3} s | {:.2}x | {:.0}% |",
            baseline / time,
            cpu * 100.0
        );
    }
}

fn io() {
    let mut sites = Command::new(CLI)
        .args([
            "sites",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--latency",
            "50ms",
            "--bytes",
            "10k",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the site simulator");
    let mut line = String::new();
    BufReader::new(sites.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    let file = std::env::temp_dir().join(format!("concur-bench-urls-{}", std::process::id()));
    let urls: String = (0..FETCHES)
        .map(|i| format!("{url}/site-{}/page/{i}\n", i % 2))
        .collect();
    std::fs::write(&file, urls).expect("write the URL file");
    let file_arg = file.to_string_lossy().to_string();
    let configs: [Config; 9] = [
        ("sequential", 1, "sequential", 1),
        ("2 worker processes", 2, "sequential", 1),
        ("threads", 1, "threads", 10),
        ("threads", 1, "threads", 100),
        ("rayon", 1, "rayon", 10),
        ("async", 1, "async", 100),
        ("async", 1, "async", 1000),
        ("async-cpu (no CPU work: as async)", 1, "async-cpu", 100),
        ("async-blocking (teaching)", 1, "async-blocking", 100),
    ];
    println!(
        "\n### I/O job: {FETCHES} fetches at {} ms latency, 10 kB bodies\n",
        LATENCY.as_millis()
    );
    println!("| configuration | processes x concurrency | wall | latency floor | wall / floor |");
    println!("|---|---:|---:|---:|---:|");
    for (label, processes, strategy, concurrency) in configs {
        let report = submit(
            &["fetch", "--urls-file", &file_arg],
            processes,
            strategy,
            concurrency,
        );
        let time = wall(&report);
        let units = (processes * concurrency) as usize;
        let floor = FETCHES.div_ceil(units) as f64 * LATENCY.as_secs_f64();
        println!(
            "| {label} | {processes} x {strategy} {concurrency} | {time:.3} s | {floor:.3} s | {:.2} |",
            time / floor
        );
    }
    let _ = std::fs::remove_file(&file);
    let _ = sites.kill();
    let _ = sites.wait();
}

fn overhead() {
    let zeros = vec!["0"; EMPTY_SHARDS].join(",");
    let shards = EMPTY_SHARDS.to_string();
    println!(
        "\n### Coordination overhead: {EMPTY_SHARDS} empty shards (n = 0) on 2 local workers\n"
    );
    println!("| run | wall | per shard |");
    println!("|---:|---:|---:|");
    let mut walls = Vec::new();
    for i in 1..=3 {
        let report = run(&[
            "submit",
            "sum-squares",
            &zeros,
            "--shards",
            &shards,
            "--local-workers",
            "2",
        ]);
        assert_eq!(
            report["shards"].as_array().map(Vec::len),
            Some(EMPTY_SHARDS)
        );
        let time = wall(&report);
        walls.push(time);
        println!(
            "| {i} | {time:.3} s | {:.1} µs |",
            time / EMPTY_SHARDS as f64 * 1e6
        );
    }
    let time = median(walls);
    println!(
        "| median | {time:.3} s | {:.1} µs |",
        time / EMPTY_SHARDS as f64 * 1e6
    );
}

/// The 1-minute load average: other work on the machine (a build) skews CPU timings, so each
/// section prints it before and after to show whether the machine was quiet.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    // `cargo bench` passes `--bench`; any other word picks the parts to run.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    println!(
        "concur strategy benchmarks on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let sections: [(&str, fn()); 3] = [("cpu", cpu), ("io", io), ("overhead", overhead)];
    for (name, section) in sections {
        if wanted(name) {
            let before = load();
            section();
            println!("\n(load average {before} before, {} after)", load());
        }
    }
}
