//! Dispatch throughput, for `docs/benchmarks.md`:
//!
//! - `stock`: N empty shards (one item, n = 1) on real `concur-worker` processes (default
//!   settings), durable and in memory: µs per shard end to end, coordinator CPU per shard.
//! - `swarm`: W simulated workers in this process, each with its own connection, `Attach`
//!   stream and heartbeats, answering every assignment at once: shards/s, coordinator CPU per
//!   shard, coordinator RSS per attached worker and per shard.
//! - `fetch`: wrk (Debian's package) against the site simulator (latency 0, 100-byte bodies)
//!   with C connections, then a fetch job of N URLs on the stock workers with the async
//!   strategy at concurrency C, alternately for three rounds: requests/s side by side.
//!
//! Run:
//!
//!     cargo build --release --bins
//!     ./target/release/dispatch stock [--shards 100000] [--workers 2] [--bin-dir DIR]
//!     ./target/release/dispatch swarm [--shards 100000] [--workers 1000] [--window 0]
//!     ./target/release/dispatch fetch [--shards 100000] [--workers 2] [--concurrency 256]
//!
//! Add `--in-memory` for a coordinator without durable state (default: a temporary state
//! directory), or `--state-url postgres://…` for PostgreSQL (an empty database). `--bin-dir` takes the coordinator and workers from another build, e.g. an
//! older release for a before/after run.

use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_tests::measure::{
    Proc, cpu_seconds, job_client, mib, quiet_worker, rss_kib, server, sibling_dir, site_simulator,
};
use concur_tests::swarm::simulated_worker;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

struct Options {
    mode: String,
    shards: u64,
    workers: u32,
    window: u32,
    concurrency: u32,
    in_memory: bool,
    state_url: Option<String>,
    bin_dir: PathBuf,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "stock".into());
    if !["stock", "swarm", "fetch"].contains(&mode.as_str()) {
        eprintln!("usage: dispatch stock|swarm|fetch [--shards N] [--workers N] [--window N]");
        eprintln!(
            "       [--concurrency N] [--in-memory] [--bin-dir DIR]  (see the source's header)"
        );
        std::process::exit(2);
    }
    let mut o = Options {
        shards: 100_000,
        workers: if mode == "swarm" { 1000 } else { 2 },
        window: 0,
        concurrency: 256,
        in_memory: false,
        state_url: None,
        bin_dir: sibling_dir(),
        mode,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--shards" => o.shards = value().parse().expect("--shards N"),
            "--workers" => o.workers = value().parse().expect("--workers N"),
            "--window" => o.window = value().parse().expect("--window N"),
            "--concurrency" => o.concurrency = value().parse().expect("--concurrency N"),
            "--in-memory" => o.in_memory = true,
            "--state-url" => o.state_url = Some(value()),
            "--bin-dir" => o.bin_dir = PathBuf::from(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn empty_shards(shards: u64) -> pb::JobSpec {
    pb::JobSpec {
        workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
            numbers: Some(pb::sum_squares_spec::Numbers::List(pb::NumberList {
                values: vec![1; shards as usize],
            })),
        })),
        strategy: pb::Strategy::Sequential as i32,
        concurrency: 1,
        shards: Some(shards as u32),
        ..pb::JobSpec::default()
    }
}

async fn attached(client: &mut JobServiceClient<Channel>) -> usize {
    client
        .list_workers(pb::ListWorkersRequest {})
        .await
        .map_or(0, |r| r.into_inner().workers.len())
}

async fn run_job(client: &mut JobServiceClient<Channel>, shards: u64) -> (u64, Duration) {
    let start = Instant::now();
    let job_id = client
        .submit_job(pb::SubmitJobRequest {
            spec: Some(empty_shards(shards)),
        })
        .await
        .expect("submit")
        .into_inner()
        .job_id;
    let mut stream = client
        .watch_job(pb::WatchJobRequest { job_id })
        .await
        .expect("watch")
        .into_inner();
    let mut state = 0;
    while let Ok(Some(progress)) = stream.message().await {
        state = progress.state;
    }
    assert_eq!(
        state,
        pb::JobState::Succeeded as i32,
        "job {job_id} did not succeed"
    );
    (job_id, start.elapsed())
}

/// wrk's requests/s against `url` with `connections` connections for `seconds`.
fn wrk(url: &str, connections: u32, seconds: u32) -> f64 {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            url,
        ])
        .output()
        .expect("wrk (Debian's package) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output: {text}"))
}

fn fetch_against_wrk(
    o: &Options,
    runtime: &tokio::runtime::Runtime,
    client: &mut JobServiceClient<Channel>,
) {
    let (_sites, sites) = site_simulator(&o.bin_dir);
    let urls: Vec<String> = (0..o.shards).map(|i| format!("{sites}/i/{i}")).collect();
    let spec = pb::JobSpec {
        workload: Some(pb::job_spec::Workload::Fetch(pb::FetchSpec {
            // The repeated field, which every release reads (urls_text came later).
            urls,
            ..pb::FetchSpec::default()
        })),
        strategy: pb::Strategy::Async as i32,
        concurrency: o.concurrency,
        ..pb::JobSpec::default()
    };
    let mut wrk_rates = Vec::new();
    let mut concur_rates = Vec::new();
    for _ in 0..3 {
        wrk_rates.push(wrk(&format!("{sites}/i/0"), o.concurrency, 5));
        let start = Instant::now();
        let job_id = runtime
            .block_on(client.submit_job(pb::SubmitJobRequest {
                spec: Some(spec.clone()),
            }))
            .expect("submit")
            .into_inner()
            .job_id;
        // The last progress event, read the same way from every release (its report changed
        // shape); the rate is over the client's wall clock, submission to the final event.
        let last = runtime.block_on(async {
            let mut stream = client
                .watch_job(pb::WatchJobRequest { job_id })
                .await
                .expect("watch")
                .into_inner();
            let mut last = pb::JobProgress::default();
            while let Ok(Some(progress)) = stream.message().await {
                last = progress;
            }
            last
        });
        let wall_s = start.elapsed().as_secs_f64();
        let ok = last.items_done.saturating_sub(last.items_failed);
        if ok != o.shards {
            // Counted, not hidden: the rate below counts only the fetches that succeeded.
            println!(
                "round {}: {} of {} fetches failed",
                concur_rates.len() + 1,
                o.shards - ok,
                o.shards
            );
        }
        concur_rates.push(ok as f64 / wall_s);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (wrk_median, concur_median) = (median(&mut wrk_rates), median(&mut concur_rates));
    println!(
        "# fetch: {} URLs, async x{} on {} stock workers, against wrk -c{} on the same simulator",
        o.shards, o.concurrency, o.workers, o.concurrency
    );
    println!("wrk requests/s (3 rounds)     {wrk_rates:.0?}, median {wrk_median:.0}");
    println!("concur items/s (3 rounds)     {concur_rates:.0?}, median {concur_median:.0}");
    println!(
        "concur / wrk                  {:.2}x",
        concur_median / wrk_median
    );
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let o = options();
    raise_fd_limit();
    let state = std::env::temp_dir().join(format!("concur-dispatch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let (coordinator, url) = server({
        let mut c = Command::new(o.bin_dir.join("concur-coordinator"));
        c.args(["--listen", "127.0.0.1:0", "--max-shards", "10000000"]);
        if o.in_memory {
            c.arg("--in-memory");
        } else if let Some(url) = &o.state_url {
            c.args(["--state-url", url]);
        } else {
            c.arg("--state-dir").arg(&state);
        }
        c
    });
    let pid = coordinator.0.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let storage = if o.in_memory {
        "in memory"
    } else if o.state_url.is_some() {
        "durable, PostgreSQL"
    } else {
        "durable, SQLite"
    };
    let idle = rss_kib(pid);
    let mut client = runtime.block_on(job_client(&url));
    let _processes: Vec<Proc>;
    let finished = Arc::new(AtomicU64::new(0));
    match o.mode.as_str() {
        "stock" | "fetch" => {
            _processes = (0..o.workers)
                .map(|_| quiet_worker(&o.bin_dir, &url, &[]))
                .collect();
        }
        "swarm" => {
            _processes = Vec::new();
            let endpoint = Endpoint::from_shared(url.clone()).unwrap();
            for _ in 0..o.workers {
                let channel = runtime.block_on(endpoint.connect()).expect("connect");
                runtime.spawn(simulated_worker(
                    channel,
                    o.window,
                    Duration::ZERO,
                    finished.clone(),
                ));
            }
        }
        other => unreachable!("mode {other} checked in options()"),
    }
    let start = Instant::now();
    while runtime.block_on(attached(&mut client)) < o.workers as usize {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "workers did not attach"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let attach_s = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    if o.mode == "fetch" {
        fetch_against_wrk(&o, &runtime, &mut client);
        drop(coordinator);
        let _ = std::fs::remove_dir_all(&state);
        return;
    }
    let with_workers = rss_kib(pid);
    // A warm-up job, then the measured one.
    runtime.block_on(run_job(&mut client, 1000.min(o.shards)));
    let cpu_before = cpu_seconds(pid);
    let (_, wall) = runtime.block_on(run_job(&mut client, o.shards));
    let cpu = cpu_seconds(pid) - cpu_before;
    let peak = rss_kib(pid);
    let per_shard_us = wall.as_secs_f64() * 1e6 / o.shards as f64;
    println!(
        "# dispatch {}: {} empty shards on {} {} workers, {storage}",
        o.mode, o.shards, o.workers, o.mode
    );
    println!("workers attached in           {attach_s:.2} s");
    println!("coordinator RSS idle          {:.1} MiB", mib(idle));
    println!(
        "coordinator RSS per worker    {:.1} KiB",
        with_workers.saturating_sub(idle) as f64 / f64::from(o.workers)
    );
    println!("wall                          {:.3} s", wall.as_secs_f64());
    println!("per shard                     {per_shard_us:.2} µs");
    println!(
        "shards/s                      {:.0}",
        o.shards as f64 / wall.as_secs_f64()
    );
    println!(
        "coordinator CPU per shard     {:.2} µs ({:.2} s)",
        cpu * 1e6 / o.shards as f64,
        cpu
    );
    println!(
        "coordinator RSS after the job {:.1} MiB ({:.0} B per shard over the attached RSS)",
        mib(peak),
        peak.saturating_sub(with_workers) as f64 * 1024.0 / o.shards as f64
    );
    drop(coordinator);
    let _ = std::fs::remove_dir_all(&state);
}
