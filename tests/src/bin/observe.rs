//! The dashboard's floors, for `docs/benchmarks.md`: with W simulated workers attached and a
//! job of N items running (durable state), every page and API answer's latency (median and
//! worst of R rounds), the size of what the browser is sent, and what a `/metrics` scrape
//! costs the coordinator (its CPU per scrape, beyond what it spends meanwhile anyway).
//!
//! Run:
//!
//!     cargo build --release --bins
//!     ./target/release/observe [--workers 500] [--items 1000000] [--shards 20000]
//!         [--delay-ms 500] [--rounds 20] [--every-ms 1000] [--scrapes 1000]
//!
//! Rounds are spread over the job (one every `--every-ms`), so answers are timed from its
//! start, when few shards are placed, to its end, when all of them are.

use concur_proto::pb;
use concur_tests::measure::{Proc, cpu_seconds, job_client};
use concur_tests::swarm::simulated_worker;
use concur_tests::web::{events, get, get_with};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;

struct Options {
    workers: u32,
    items: u64,
    shards: u32,
    delay: Duration,
    rounds: usize,
    every: Duration,
    scrapes: usize,
}

fn options() -> Options {
    let mut o = Options {
        workers: 500,
        items: 1_000_000,
        shards: 20_000,
        delay: Duration::from_millis(500),
        rounds: 20,
        every: Duration::from_millis(1000),
        scrapes: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--workers" => o.workers = value().parse().expect("--workers N"),
            "--items" => o.items = value().parse().expect("--items N"),
            "--shards" => o.shards = value().parse().expect("--shards N"),
            "--delay-ms" => o.delay = Duration::from_millis(value().parse().expect("ms")),
            "--rounds" => o.rounds = value().parse().expect("--rounds N"),
            "--every-ms" => o.every = Duration::from_millis(value().parse().expect("ms")),
            "--scrapes" => o.scrapes = value().parse().expect("--scrapes N"),
            other => {
                eprintln!("unknown argument {other}; see the source's header");
                std::process::exit(2);
            }
        }
    }
    o
}

/// The coordinator, with its gRPC and dashboard URLs (the first two stdout lines).
fn coordinator(state: &std::path::Path) -> (Proc, String, String) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe.with_file_name("concur-coordinator"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(["--max-items", "100000000", "--max-shards", "10000000"])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the coordinator");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = |what: &str| {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a line");
        line.split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no {what} address in {line:?}"))
            .trim_end_matches('/')
            .to_string()
    };
    let grpc = url("gRPC");
    let web = url("dashboard");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (Proc(child), grpc, web)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = options();
    let state = std::env::temp_dir().join(format!("concur-observe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let (coordinator, url, web) = coordinator(&state);
    let pid = coordinator.0.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let finished = Arc::new(AtomicU64::new(0));
    let endpoint = Endpoint::from_shared(url.clone()).expect("URL");
    for _ in 0..o.workers {
        let channel = runtime.block_on(endpoint.connect()).expect("connect");
        runtime.spawn(simulated_worker(channel, 0, o.delay, finished.clone()));
    }
    let mut client = runtime.block_on(job_client(&url));
    let start = Instant::now();
    while runtime
        .block_on(client.list_workers(pb::ListWorkersRequest {}))
        .map_or(0, |r| r.into_inner().workers.len())
        < o.workers as usize
    {
        assert!(start.elapsed() < Duration::from_secs(120), "workers attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    let spec = pb::JobSpec {
        workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
            numbers: Some(pb::sum_squares_spec::Numbers::List(pb::NumberList {
                values: vec![1; o.items as usize],
            })),
        })),
        strategy: pb::Strategy::Sequential as i32,
        concurrency: 1,
        shards: Some(o.shards),
        ..pb::JobSpec::default()
    };
    let job_id = runtime
        .block_on(client.submit_job(pb::SubmitJobRequest { spec: Some(spec) }))
        .expect("submit")
        .into_inner()
        .job_id;
    // Let it get going, so the timeline has thousands of shards to place.
    std::thread::sleep(Duration::from_secs(3));
    let paths = [
        "/".to_string(),
        format!("/jobs/{job_id}"),
        "/api/cluster".into(),
        "/api/jobs".into(),
        format!("/api/jobs/{job_id}"),
        format!("/api/jobs/{job_id}/timeline"),
        "/metrics".into(),
    ];
    let mut timings: Vec<Vec<f64>> = vec![Vec::new(); paths.len() + 1];
    let mut sizes = vec![0usize; paths.len() + 1];
    let mut most_bars = (0, 0, Value::Null);
    for _ in 0..o.rounds {
        let round = Instant::now();
        for (i, path) in paths.iter().enumerate() {
            let t = Instant::now();
            let answer = get(&web, path);
            timings[i].push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            sizes[i] = sizes[i].max(answer.body.len());
            if path.ends_with("/timeline") {
                let timeline = answer.json();
                let done = timeline["job"]["shards_done"].as_u64().unwrap_or(0);
                if done >= most_bars.0 {
                    most_bars = (
                        done,
                        timeline["bars"].as_u64().unwrap_or(0),
                        timeline["bucket_s"].clone(),
                    );
                }
            }
        }
        let t = Instant::now();
        let snapshot = events(&web, "/api/events", 1);
        timings[paths.len()].push(t.elapsed().as_secs_f64() * 1e3);
        sizes[paths.len()] = snapshot[0].to_string().len();
        std::thread::sleep(o.every.saturating_sub(round.elapsed()));
    }
    let job = get(&web, &format!("/api/jobs/{job_id}")).json();
    println!(
        "# observe: {} simulated workers, a job of {} items in {} shards ({} ms per shard), durable",
        o.workers,
        o.items,
        o.shards,
        o.delay.as_millis()
    );
    println!(
        "job after the rounds: {} of {} shards done, state {}",
        job["shards_done"], job["shards_total"], job["state"]
    );
    println!(
        "timeline with the most shards placed ({} done): {} bars sent (merged per {} s bucket)",
        most_bars.0, most_bars.1, most_bars.2
    );
    println!(
        "{:<34} {:>9} {:>9} {:>10}",
        "answer", "p50 ms", "max ms", "max bytes"
    );
    for (i, name) in paths
        .iter()
        .map(String::as_str)
        .chain(["/api/events (first snapshot)"])
        .enumerate()
    {
        let mut t = timings[i].clone();
        t.sort_by(f64::total_cmp);
        println!(
            "{name:<34} {:>9.1} {:>9.1} {:>10}",
            percentile(&t, 0.5),
            t[t.len() - 1],
            sizes[i]
        );
    }
    // Scrape cost: coordinator CPU over back-to-back scrapes, less its CPU over an equally
    // long window without them (heartbeats of the attached workers, the job's tail).
    let wait_done = Instant::now();
    while get(&web, &format!("/api/jobs/{job_id}")).json()["state"] != "succeeded" {
        assert!(
            wait_done.elapsed() < Duration::from_secs(600),
            "job finishes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let window = Instant::now();
    let cpu_start = cpu_seconds(pid);
    for _ in 0..o.scrapes {
        let answer = get_with(
            &web,
            "/metrics",
            &[("Accept", "application/openmetrics-text")],
        );
        assert_eq!(answer.status, 200);
    }
    let scraping = window.elapsed();
    let cpu_scraping = cpu_seconds(pid) - cpu_start;
    let cpu_idle_start = cpu_seconds(pid);
    std::thread::sleep(scraping);
    let cpu_idle = cpu_seconds(pid) - cpu_idle_start;
    let gather_s: f64 = get(&web, "/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix("concur_last_scrape_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    println!(
        "scrape: {:.3} ms coordinator CPU each ({} scrapes in {:.2} s; CPU {:.3} s, {:.3} s without scrapes), gathering {:.3} ms",
        (cpu_scraping - cpu_idle).max(0.0) * 1e3 / o.scrapes as f64,
        o.scrapes,
        scraping.as_secs_f64(),
        cpu_scraping,
        cpu_idle,
        gather_s * 1e3
    );
    drop(coordinator);
    let _ = std::fs::remove_dir_all(&state);
}
