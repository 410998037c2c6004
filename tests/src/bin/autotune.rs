//! `--concurrency auto` against the best fixed concurrency, side by side in one `compare` run.
//!
//! Starts the site simulator with a capacity (at most K requests served at once, each taking
//! the latency; the rest queue), writes N URLs to it, and runs `concur-cli compare fetch`
//! locally over fixed concurrency levels plus `auto` (rounds interleave every cell). The
//! floor: auto's median wall within 15% of the best fixed cell's, found in one run instead of
//! a matrix. Prints each cell and the ratio; exits 1 when the floor is missed.
//!
//! Run:
//!
//!     cargo build --release --bins
//!     ./target/release/autotune [--items 2000] [--capacity 16] [--latency 20ms] [--jitter 0ms]
//!                               [--processes 1] [--strategy async] [--levels 2,4,8,16,32,64]
//!                               [--repeat 3]

use clap::Parser;
use concur_tests::measure::{server, sibling_dir};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Debug, Parser)]
struct Options {
    /// URLs in the job.
    #[arg(long, default_value_t = 2000)]
    items: u32,
    /// Requests the simulator serves at once.
    #[arg(long, default_value_t = 16)]
    capacity: u32,
    /// Service time of each request.
    #[arg(long, default_value = "20ms")]
    latency: String,
    /// Extra random service time, uniform in 0..jitter.
    #[arg(long, default_value = "0ms")]
    jitter: String,
    /// Worker processes (local, forked by compare).
    #[arg(long, default_value_t = 1)]
    processes: u32,
    /// In-process strategy.
    #[arg(long, default_value = "async")]
    strategy: String,
    /// Fixed concurrency levels to compare auto with.
    #[arg(long, default_value = "2,4,8,16,32,64")]
    levels: String,
    /// Runs per cell (medians are compared).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Where concur-cli is (default: next to this binary).
    #[arg(long, default_value_os_t = sibling_dir())]
    bin_dir: PathBuf,
}

fn main() {
    let o = Options::parse();
    let cli = o.bin_dir.join("concur-cli");
    let (_sites, url) = server({
        let mut c = Command::new(&cli);
        c.args(["sites", "serve", "--listen", "127.0.0.1:0", "--bytes", "1k"])
            .args(["--latency", &o.latency, "--jitter", &o.jitter])
            .args(["--capacity", &o.capacity.to_string()]);
        c
    });
    let dir = std::env::temp_dir().join(format!("concur-autotune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let urls = dir.join("urls.txt");
    let mut file = std::fs::File::create(&urls).expect("urls file");
    for i in 0..o.items {
        writeln!(file, "{url}/item{i}").expect("write urls");
    }
    drop(file);
    println!(
        "site: capacity {} at once, latency {} + up to {} jitter each; job: {} URLs on {} process(es) x {}, {} runs per cell",
        o.capacity, o.latency, o.jitter, o.items, o.processes, o.strategy, o.repeat
    );
    let out = Command::new(&cli)
        .args(["--output", "json", "compare", "fetch", "--urls-file"])
        .arg(&urls)
        .args(["--processes", &o.processes.to_string()])
        .args(["--strategies", &o.strategy])
        .args(["--concurrency", &format!("{},auto", o.levels)])
        .args(["--repeat", &o.repeat.to_string(), "--no-warm-up"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run concur-cli compare");
    let _ = std::fs::remove_dir_all(&dir);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "compare gave no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let cells: Vec<&Value> = report["series"]
        .as_array()
        .expect("series")
        .iter()
        .flat_map(|s| s["cells"].as_array().expect("cells"))
        .collect();
    println!(
        "{:<28} {:>10} {:>22} {:>7}",
        "cell", "wall (med)", "runs", "failed"
    );
    for c in &cells {
        let label = match c["tuned_concurrency"].as_f64() {
            Some(tuned) => format!(
                "{} x {} auto→{tuned:.1}",
                c["processes"],
                c["strategy"].as_str().unwrap_or("")
            ),
            None => format!(
                "{} x {} {}",
                c["processes"],
                c["strategy"].as_str().unwrap_or(""),
                c["concurrency"]
            ),
        };
        let runs: Vec<String> = c["wall_s"]
            .as_array()
            .expect("walls")
            .iter()
            .map(|w| format!("{:.3}", w.as_f64().unwrap_or(0.0)))
            .collect();
        println!(
            "{label:<28} {:>8.3} s {:>22} {:>7}",
            c["wall_s_median"].as_f64().unwrap_or(0.0),
            runs.join(" "),
            c["items_failed"]
        );
    }
    let clean = |c: &&&Value| c["items_failed"].as_u64() == Some(0);
    let wall = |c: &Value| c["wall_s_median"].as_f64().unwrap_or(f64::MAX);
    let best_fixed = cells
        .iter()
        .filter(|c| c["auto"] == false)
        .filter(clean)
        .min_by(|a, b| wall(a).total_cmp(&wall(b)))
        .expect("a fixed cell without failures");
    let auto = cells
        .iter()
        .find(|c| c["auto"] == true)
        .expect("the auto cell");
    let ratio = wall(auto) / wall(best_fixed);
    println!(
        "auto {:.3} s (settled at {:.1}, {} failed) vs best fixed {:.3} s (concurrency {}): {:.3}x — floor 1.15x: {}",
        wall(auto),
        auto["tuned_concurrency"].as_f64().unwrap_or(0.0),
        auto["items_failed"],
        wall(best_fixed),
        best_fixed["concurrency"],
        ratio,
        if ratio <= 1.15 && auto["items_failed"] == 0 {
            "met"
        } else {
            "MISSED"
        }
    );
    if ratio > 1.15 || auto["items_failed"] != 0 {
        std::process::exit(1);
    }
}
