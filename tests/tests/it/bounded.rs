//! Workers keep their resources bounded: a cancelled fetch really stops (threads and
//! connections) before the worker runs more, and a worker pointed at something that is not a
//! coordinator says so.

use concur_tests::{bin, cli, start_coordinator, start_sites, start_worker, wait_for_workers};
use std::process::Command;
use std::time::{Duration, Instant};

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

#[test]
fn a_cancelled_blocking_fetch_frees_its_threads_within_a_second_or_two() {
    let (_sites, sites) = start_sites(&[]);
    let (_coordinator, url) = start_coordinator(&[]);
    let worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let idle = threads_of(worker.pid());
    // Sixteen requests that stall for a minute, on sixteen threads.
    let mut args: Vec<String> = [
        "submit",
        "fetch",
        "--strategy",
        "threads",
        "--concurrency",
        "16",
    ]
    .map(String::from)
    .to_vec();
    args.extend((0..16).map(|i| format!("{sites}/stall{i}?latency=60s")));
    let mut all = vec!["--coordinator", &url, "--output", "json"];
    all.extend(args.iter().map(String::as_str));
    let id = cli(&all).json()["job_id"].to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while threads_of(worker.pid()) < idle + 16 {
        assert!(
            Instant::now() < deadline,
            "the shard's threads never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cli(&["--coordinator", &url, "cancel", &id]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let cancelled = Instant::now();
    while threads_of(worker.pid()) > idle + 2 {
        assert!(
            cancelled.elapsed() < Duration::from_secs(3),
            "threads still running after cancel: {} (idle {idle})",
            threads_of(worker.pid())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_pointed_at_a_web_server_says_it_is_not_a_coordinator() {
    let (_sites, sites) = start_sites(&[]);
    let out = Command::new(bin("concur-worker"))
        .args(["--coordinator", &sites, "--max-attach-failures", "1"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not as a concur coordinator"), "{stderr}");
    assert!(
        !stderr.contains("invalid compression flag: 120\n"),
        "{stderr}"
    );
}
