//! Faults on loopback: a killed or stopped worker, a drained worker, a killed coordinator.
//! Each test checks the job completes with every item exactly once and the right values.

use concur_tests::{
    Proc, assert_sums_exact, cli, scratch_dir, start_coordinator, start_coordinator_at,
    start_worker, wait_for_workers,
};
use serde_json::Value;
use std::time::{Duration, Instant};

fn job(url: &str, id: &str) -> Value {
    cli(&["--coordinator", url, "--output", "json", "job", id]).json()
}

fn workers(url: &str) -> Vec<Value> {
    cli(&["--coordinator", url, "--output", "json", "workers"]).json()["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Submits `spec` split into `shards` and returns the job id.
fn submit(url: &str, spec: &str, shards: &str) -> String {
    let out = cli(&[
        "--coordinator",
        url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        spec,
        "--shards",
        shards,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()["job_id"].as_u64().unwrap().to_string()
}

/// Waits until at least one shard of the job is done while it still runs; returns the PID of a
/// worker that is busy at that moment.
fn busy_worker_mid_job(url: &str, id: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = job(url, id);
        assert_eq!(report["state"], "running", "job ended too early: {report}");
        let done = report["shards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["done"] == true)
            .count();
        let busy: Vec<u32> = workers(url)
            .iter()
            .filter(|w| w["running"].as_u64() > Some(0))
            .map(|w| w["pid"].as_u64().unwrap() as u32)
            .collect();
        if done >= 1 && !busy.is_empty() {
            return busy[0];
        }
        assert!(Instant::now() < deadline, "no shard finished in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_report(url: &str, id: &str) -> Value {
    let out = cli(&[
        "--coordinator",
        url,
        "--output",
        "json",
        "job",
        id,
        "--wait",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["state"], "succeeded");
    report
}

fn find<'a>(procs: &'a mut [Proc], pid: u32) -> &'a mut Proc {
    procs
        .iter_mut()
        .find(|p| p.pid() == pid)
        .expect("the busy worker is one of ours")
}

#[test]
fn a_sigkilled_worker_s_shards_complete_elsewhere_exactly_once() {
    let (_coordinator, url) = start_coordinator(&["--heartbeat-timeout", "2s"]);
    let mut workers_ = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    // 16 items of about 0.3 s in 8 shards: several seconds of work for two workers.
    let id = submit(&url, "1000000000..1000000016", "8");
    let victim = busy_worker_mid_job(&url, &id);
    let worker = find(&mut workers_, victim);
    worker.signal(libc::SIGKILL);
    assert!(worker.wait_timeout(Duration::from_secs(5)).is_some());

    let report = wait_report(&url, &id);
    assert_eq!(assert_sums_exact(&report), 16);
    let shards = report["shards"].as_array().unwrap();
    assert!(
        shards.iter().any(|s| s["attempt"].as_u64() >= Some(2)),
        "the killed worker's shard was re-leased: {shards:?}"
    );
    assert!(
        shards
            .iter()
            .all(|s| s["pid"].as_u64() != Some(u64::from(victim)) || s["attempt"] == 1),
        "no result came from the dead worker after its lease was lost"
    );
}

#[test]
fn a_stopped_worker_is_declared_lost_and_its_late_results_refused() {
    let (_coordinator, url) =
        start_coordinator(&["--heartbeat-timeout", "2s", "--heartbeat-interval", "500ms"]);
    let mut workers_ = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    let id = submit(&url, "1000000000..1000000016", "8");
    let victim = busy_worker_mid_job(&url, &id);
    let worker = find(&mut workers_, victim);
    worker.signal(libc::SIGSTOP);
    // Past the heartbeat timeout the coordinator declares it lost and re-queues its shard.
    let deadline = Instant::now() + Duration::from_secs(20);
    while workers(&url)
        .iter()
        .any(|w| w["pid"].as_u64() == Some(u64::from(victim)))
    {
        assert!(
            Instant::now() < deadline,
            "stopped worker never declared lost"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    worker.signal(libc::SIGCONT);
    let report = wait_report(&url, &id);
    assert_eq!(assert_sums_exact(&report), 16);
    assert!(
        report["shards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["attempt"].as_u64() >= Some(2)),
        "the stopped worker's shard was re-leased"
    );
    // Once resumed, it re-attaches as a new worker on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !workers(&url)
        .iter()
        .any(|w| w["pid"].as_u64() == Some(u64::from(victim)))
    {
        assert!(
            Instant::now() < deadline,
            "resumed worker did not re-attach"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_drains_a_worker_which_finishes_its_shard_and_detaches() {
    let (_coordinator, url) = start_coordinator(&[]);
    let mut workers_ = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    let id = submit(&url, "1000000000..1000000016", "8");
    let victim = busy_worker_mid_job(&url, &id);
    let worker = find(&mut workers_, victim);
    worker.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = workers(&url)
            .iter()
            .find(|w| w["pid"].as_u64() == Some(u64::from(victim)))
            .map(|w| w["state"].as_str().unwrap_or("").to_string());
        match state.as_deref() {
            Some("draining") | None => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "worker never showed as draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = worker
        .wait_timeout(Duration::from_secs(30))
        .expect("drained worker exits");
    assert_eq!(code, 0, "a drained worker exits cleanly");
    let report = wait_report(&url, &id);
    assert_eq!(assert_sums_exact(&report), 16);
    let drained: Vec<&Value> = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["pid"].as_u64() == Some(u64::from(victim)))
        .collect();
    assert!(
        !drained.is_empty(),
        "the drained worker's shard was finished by it, not handed back"
    );
}

#[test]
fn a_killed_coordinator_resumes_its_jobs_after_restart() {
    let state = scratch_dir("restart");
    let state_arg = state.to_str().unwrap();
    let (mut coordinator, url) = start_coordinator(&["--state-dir", state_arg]);
    let listen = url.trim_start_matches("http://").to_string();
    let _workers = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    let quick = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "10,20,30",
        "--wait",
    ]);
    assert_eq!(quick.code, 0, "{}", quick.stderr);
    let quick_id = quick.json()["job_id"].as_u64().unwrap().to_string();
    let id = submit(&url, "1000000000..1000000016", "8");
    busy_worker_mid_job(&url, &id);
    coordinator.signal(libc::SIGKILL);
    coordinator
        .wait_timeout(Duration::from_secs(5))
        .expect("coordinator died");

    let (_restarted, url) = start_coordinator_at(&listen, &["--state-dir", state_arg]);
    // Workers re-attach on their own; the job moves again and completes exactly once.
    let report = wait_report(&url, &id);
    assert_eq!(assert_sums_exact(&report), 16);
    assert!(
        report["shards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["attempt"].as_u64() >= Some(2)),
        "shards leased at the crash were re-leased with a new attempt"
    );
    // A job finished before the crash still has its report.
    let before = cli(&["--coordinator", &url, "--output", "json", "job", &quick_id]);
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(assert_sums_exact(&before.json()), 3);
    let _ = std::fs::remove_dir_all(state);
}
