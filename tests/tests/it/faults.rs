//! Faults on loopback: a killed or stopped worker, a drained worker, a killed coordinator.
//! Each test checks the job completes with every item exactly once and the right values.
//! The same faults across namespace hosts are in `lab.rs`.

use concur_tests::jobs::{Coordinator, any_re_leased, find};
use concur_tests::{
    assert_sums_exact, cli, scratch_dir, start_coordinator, start_coordinator_at, start_worker,
};
use std::time::{Duration, Instant};

/// 16 items of about 0.3 s in 8 shards: a few seconds of work for two workers.
const LONG_JOB: &str = "1000000000..1000000016";

#[test]
fn a_sigkilled_worker_s_shards_complete_elsewhere_exactly_once() {
    let (_coordinator, url) = start_coordinator(&["--heartbeat-timeout", "2s"]);
    let c = Coordinator::new(&url, &cli);
    let mut workers = [start_worker(&url, 1), start_worker(&url, 1)];
    c.wait_for_workers(2);
    let id = c.submit(LONG_JOB, "8");
    let victim = c.busy_worker_mid_job(&id);
    let worker = find(&mut workers, victim);
    worker.signal(libc::SIGKILL);
    assert!(worker.wait_timeout(Duration::from_secs(5)).is_some());

    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 16);
    assert!(
        any_re_leased(&report),
        "the killed worker's shard was re-leased"
    );
    let shards = report["shards"].as_array().unwrap();
    assert!(
        shards
            .iter()
            .all(|s| s["pid"].as_u64() != Some(u64::from(victim)) || s["attempt"] == 1),
        "no result came from the dead worker after its lease was lost"
    );
}

#[test]
fn a_stopped_worker_is_declared_lost_and_comes_back_on_its_own() {
    let (_coordinator, url) =
        start_coordinator(&["--heartbeat-timeout", "2s", "--heartbeat-interval", "500ms"]);
    let c = Coordinator::new(&url, &cli);
    let mut workers = [start_worker(&url, 1), start_worker(&url, 1)];
    c.wait_for_workers(2);
    let id = c.submit(LONG_JOB, "8");
    let victim = c.busy_worker_mid_job(&id);
    let worker = find(&mut workers, victim);
    worker.signal(libc::SIGSTOP);
    // Past the heartbeat timeout the coordinator declares it lost and re-queues its shard.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.has_worker(victim) {
        assert!(
            Instant::now() < deadline,
            "stopped worker never declared lost"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    worker.signal(libc::SIGCONT);
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 16);
    assert!(
        any_re_leased(&report),
        "the stopped worker's shard was re-leased"
    );
    // Once resumed, it re-attaches as a new worker on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.has_worker(victim) {
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
    let c = Coordinator::new(&url, &cli);
    let mut workers = [start_worker(&url, 1), start_worker(&url, 1)];
    c.wait_for_workers(2);
    let id = c.submit(LONG_JOB, "8");
    let victim = c.busy_worker_mid_job(&id);
    let worker = find(&mut workers, victim);
    worker.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = c
            .workers()
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
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 16);
    assert!(
        report["shards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["pid"].as_u64() == Some(u64::from(victim)) && s["attempt"] == 1),
        "the drained worker finished its own shard instead of handing it back"
    );
}

#[test]
fn a_killed_coordinator_resumes_its_jobs_after_restart() {
    let state = scratch_dir("restart");
    let state_arg = state.to_str().unwrap();
    let (mut coordinator, url) = start_coordinator(&["--state-dir", state_arg]);
    let listen = url.trim_start_matches("http://").to_string();
    let c = Coordinator::new(&url, &cli);
    let _workers = [start_worker(&url, 1), start_worker(&url, 1)];
    c.wait_for_workers(2);
    let quick = c.json(&["submit", "sum-squares", "10,20,30", "--wait"]);
    assert_eq!(quick.code, 0, "{}", quick.stderr);
    let quick_id = quick.json()["job_id"].as_u64().unwrap().to_string();
    let id = c.submit(LONG_JOB, "8");
    c.busy_worker_mid_job(&id);
    coordinator.signal(libc::SIGKILL);
    coordinator
        .wait_timeout(Duration::from_secs(5))
        .expect("coordinator died");

    let (_restarted, url) = start_coordinator_at(&listen, &["--state-dir", state_arg]);
    let c = Coordinator::new(&url, &cli);
    // Workers re-attach on their own; the job moves again and completes exactly once.
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 16);
    assert!(
        any_re_leased(&report),
        "shards leased at the crash ran again with a new attempt"
    );
    // A job finished before the crash still has its report.
    let before = c.json(&["job", &quick_id]);
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert_eq!(assert_sums_exact(&before.json()), 3);
    let _ = std::fs::remove_dir_all(state);
}
