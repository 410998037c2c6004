//! Pacing: `--concurrency auto` tunes each worker's in-flight limit against a server with a
//! capacity, and per-host politeness caps and spaces the requests one host sees — checked by
//! the site simulator's own count of what arrived.

use concur_tests::{
    Proc, cli, start_coordinator, start_sites, start_worker, submit_fetch, wait_for_workers,
};
use serde_json::Value;

/// A coordinator with one worker of `slots` slots, attached; keep the handles alive.
fn one_worker(slots: u32) -> (Proc, Proc, String) {
    let (coordinator, url) = start_coordinator(&[]);
    let worker = start_worker(&url, slots);
    wait_for_workers(&url, 1);
    (coordinator, worker, url)
}

/// The simulator's `/__stats`, asked with a plain HTTP/1.0 request.
fn stats(sites: &str) -> Value {
    use std::io::{Read, Write};
    let address = sites.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET /__stats HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn auto_concurrency_climbs_to_a_servers_capacity_and_reports_the_limit() {
    let (_sites, sites) = start_sites(&["--latency", "20ms", "--bytes", "100", "--capacity", "8"]);
    let (_coordinator, _worker, url) = one_worker(1);
    let urls: Vec<String> = (0..600).map(|i| format!("{sites}/auto/{i}")).collect();
    let out = submit_fetch(
        &url,
        &urls,
        &[
            "--strategy",
            "async",
            "--concurrency",
            "auto:64",
            "--shards",
            "6",
            "--items",
            "none",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["items_ok"], 600, "{report}");
    assert_eq!(report["concurrency"], 0, "auto is recorded as 0");
    // Each shard reports the limit it ran under: beyond the start (4) towards the capacity,
    // never past the ceiling.
    let limits: Vec<u64> = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["concurrency"].as_u64().unwrap())
        .collect();
    assert!(limits.iter().all(|l| (1..=64).contains(l)), "{limits:?}");
    assert!(limits.iter().any(|l| *l >= 6), "never grew: {limits:?}");
    let seen = stats(&sites);
    let peak = seen["peak_in_flight"].as_u64().unwrap();
    assert!((6..=64).contains(&peak), "peak in flight {peak}: {seen}");
    // The human listing and report name it, the report with the limit over time.
    let listed = cli(&["--coordinator", &url, "jobs"]);
    assert!(listed.stdout.contains("async auto"), "{}", listed.stdout);
    let job = report["job_id"].to_string();
    let shown = cli(&["--coordinator", &url, "job", &job, "--items", "none"]);
    assert!(
        shown.stdout.contains("strategy async auto"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("tuned limit over time (shard start: its mean limit; 6 shards)"),
        "{}",
        shown.stdout
    );
}

#[test]
fn a_per_host_cap_holds_for_each_host_and_a_delay_spaces_its_requests() {
    let (_sites, sites) = start_sites(&["--latency", "30ms", "--bytes", "100"]);
    let (_coordinator, _worker, url) = one_worker(2);
    // One server under two names: two hosts to the worker (and to the simulator's Host count).
    let port = sites.rsplit(':').next().unwrap();
    let urls: Vec<String> = (0..80)
        .map(|i| {
            let host = if i % 2 == 0 { "127.0.0.1" } else { "localhost" };
            format!("http://{host}:{port}/polite/{i}")
        })
        .collect();
    for strategy in ["async", "threads"] {
        let out = submit_fetch(
            &url,
            &urls,
            &[
                "--strategy",
                strategy,
                "--concurrency",
                "16",
                "--shards",
                "2",
                "--per-host-connections",
                "3",
                "--items",
                "none",
            ],
        );
        assert_eq!(out.code, 0, "{strategy}: {}", out.stderr);
    }
    let seen = stats(&sites);
    for host in ["127.0.0.1", "localhost"] {
        let peak = seen["hosts"][format!("{host}:{port}")]["peak_in_flight"]
            .as_u64()
            .unwrap_or_else(|| panic!("{host}: {seen}"));
        // Two slots ran the job's two shards at once, sharing the worker's gates.
        assert!((2..=3).contains(&peak), "{host}: peak {peak}: {seen}");
    }
    let (_spaced, spaced) = start_sites(&["--latency", "1ms", "--bytes", "10"]);
    let urls: Vec<String> = (0..8).map(|i| format!("{spaced}/spaced/{i}")).collect();
    let out = submit_fetch(
        &url,
        &urls,
        &[
            "--strategy",
            "async",
            "--concurrency",
            "8",
            "--per-host-delay",
            "40ms",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Eight starts 40 ms apart take 280 ms at least, however fast the server answers (eight
    // tasks without the delay would all start at once and be done in a few milliseconds).
    let wall = out.json()["wall_s"].as_f64().unwrap();
    assert!(wall >= 0.28, "eight spaced requests done in {wall} s");
    let seen = stats(&spaced);
    let host = spaced.trim_start_matches("http://");
    let gap = seen["hosts"][host]["min_gap_ms"].as_f64().unwrap();
    // Arrivals at the server may shift by scheduling delays on a loaded machine.
    assert!(gap >= 20.0, "closest arrivals {gap} ms apart: {seen}");
}

#[test]
fn pacing_that_does_not_fit_the_job_is_refused_with_its_reason() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["submit", "sum-squares", "1..10", "--concurrency", "auto"],
            "--concurrency auto needs a strategy that runs units at once",
        ),
        (
            &["submit", "sum-squares", "1..10", "--concurrency", "autox"],
            "is not a concurrency",
        ),
        (
            &[
                "submit",
                "sum-squares",
                "1..10",
                "--strategy",
                "threads",
                "--concurrency",
                "auto:0",
            ],
            "at least 1",
        ),
        (
            &[
                "compare",
                "sum-squares",
                "1..10",
                "--strategies",
                "async-cpu",
                "--concurrency",
                "auto",
            ],
            "needs threads, rayon or async",
        ),
    ];
    for (args, expected) in cases {
        let out = cli(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_server_that_sheds_load_costs_a_tuned_job_no_items() {
    // Four served at once, one waiting; the rest are answered 503 at once.
    let (_sites, sites) = start_sites(&[
        "--latency",
        "20ms",
        "--bytes",
        "100",
        "--capacity",
        "4",
        "--queue-limit",
        "1",
    ]);
    let (_coordinator, _worker, url) = one_worker(1);
    let urls: Vec<String> = (0..300).map(|i| format!("{sites}/shed/{i}")).collect();
    let tuned = submit_fetch(
        &url,
        &urls,
        &[
            "--strategy",
            "async",
            "--concurrency",
            "auto",
            "--items",
            "none",
        ],
    );
    assert_eq!(tuned.code, 0, "{}", tuned.stderr);
    assert_eq!(tuned.json()["items_ok"], 300);
    let shed = stats(&sites)["shed"].as_u64().unwrap();
    assert!(shed > 0, "the limiter never probed past the capacity");
    // A fixed concurrency far above it keeps the 503s as failed items.
    let fixed = submit_fetch(
        &url,
        &urls,
        &[
            "--strategy",
            "async",
            "--concurrency",
            "32",
            "--items",
            "none",
        ],
    );
    assert_ne!(fixed.code, 0);
    assert!(fixed.json()["items_failed"].as_u64().unwrap() > 0);
}

#[test]
fn exec_items_run_under_a_tuned_limit_too() {
    // `sleep` takes as long however many run (long enough that process start-up is noise):
    // the limit climbs from 4 towards its ceiling.
    let out = cli(&[
        "--output",
        "json",
        "submit",
        "exec",
        "--range",
        "0..40",
        "--strategy",
        "threads",
        "--concurrency",
        "auto:16",
        "--local-workers",
        "1",
        "--items",
        "none",
        "--",
        "sh",
        "-c",
        "sleep 0.2",
        "sh",
        "{}",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["items_ok"], 40);
    assert_eq!(report["concurrency"], 0);
    let limit = report["shards"][0]["concurrency"].as_u64().unwrap();
    assert!((5..=16).contains(&limit), "mean limit {limit}");
}
