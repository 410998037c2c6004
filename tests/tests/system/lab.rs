//! Chaos across hosts: the coordinator on one network-namespace host, workers on three
//! others (`deploy/lab.sh`'s mechanism). Each test asserts the job completes with every item
//! exactly once and the right values. Needs root, as CI has.

use concur_tests::assert_sums_exact;
use concur_tests::jobs::{Coordinator, any_re_leased, find};
use concur_tests::lab::Lab;
use concur_tests::scratch_dir;
use std::time::{Duration, Instant};

/// 24 items of about 0.3 s in 6 shards of 4: each shard runs about 1.2 s.
const LONG_JOB: &str = "1000000000..1000000024";
const SHARDS: &str = "6";
const FAST_HEARTBEATS: [&str; 4] = ["--heartbeat-timeout", "2s", "--heartbeat-interval", "500ms"];

/// Host index of the worker with `pid` (workers are on hosts 1..=3, in order).
fn host_of(workers: &[concur_tests::Proc], pid: u32) -> u32 {
    workers
        .iter()
        .position(|w| w.pid() == pid)
        .expect("one of ours") as u32
        + 1
}

#[test]
fn sigkill_one_of_three_workers_on_separate_hosts() {
    let lab = Lab::new("ck1", "10.77.1", 4);
    let _coordinator = lab.start_coordinator(&FAST_HEARTBEATS);
    let run = |a: &[&str]| lab.cli(a);
    let c = Coordinator::new(&lab.url(), &run);
    let mut workers: Vec<_> = (1..=3).map(|h| lab.start_worker(h)).collect();
    c.wait_for_workers(3);
    let id = c.submit(LONG_JOB, SHARDS);
    let victim = c.busy_worker_mid_job(&id);
    find(&mut workers, victim).signal(libc::SIGKILL);
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 24);
    assert!(any_re_leased(&report));
    assert!(
        report["hosts"].as_u64() >= Some(2),
        "work spread over hosts: {}",
        report["hosts"]
    );
}

#[test]
fn a_host_cut_off_past_the_heartbeat_timeout_is_fenced_when_it_returns() {
    let lab = Lab::new("ck2", "10.77.2", 4);
    let _coordinator = lab.start_coordinator(&FAST_HEARTBEATS);
    let run = |a: &[&str]| lab.cli(a);
    let c = Coordinator::new(&lab.url(), &run);
    let workers: Vec<_> = (1..=3).map(|h| lab.start_worker(h)).collect();
    c.wait_for_workers(3);
    let id = c.submit(LONG_JOB, SHARDS);
    let victim = c.busy_worker_mid_job(&id);
    let host = host_of(&workers, victim);
    lab.cut(host);
    // The coordinator declares it lost after the heartbeat timeout...
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.has_worker(victim) {
        assert!(
            Instant::now() < deadline,
            "cut-off worker never declared lost"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // ...while the worker, unaware, finishes its shard and sends results into the void.
    std::thread::sleep(Duration::from_secs(2));
    lab.restore(host);
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 24, "every item exactly once");
    assert!(any_re_leased(&report), "its shard was re-run elsewhere");
    // Its late results reach the coordinator once the cable is back, and are refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = c.job(&id);
        if report["stale_results_discarded"].as_u64() > Some(0) {
            assert_eq!(
                assert_sums_exact(&report),
                24,
                "refused results changed nothing"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "late results never arrived or were not counted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the worker re-attaches on its own.
    let deadline = Instant::now() + Duration::from_secs(40);
    while !c.has_worker(victim) {
        assert!(
            Instant::now() < deadline,
            "cut-off worker did not re-attach"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_sigkilled_coordinator_restarts_on_its_state_and_workers_re_attach() {
    let lab = Lab::new("ck3", "10.77.3", 4);
    let state = scratch_dir("lab-restart");
    let state_arg = state.to_str().unwrap();
    let mut coordinator = lab.start_coordinator(&["--state-dir", state_arg]);
    let run = |a: &[&str]| lab.cli(a);
    let c = Coordinator::new(&lab.url(), &run);
    let _workers: Vec<_> = (1..=3).map(|h| lab.start_worker(h)).collect();
    c.wait_for_workers(3);
    let id = c.submit(LONG_JOB, SHARDS);
    c.busy_worker_mid_job(&id);
    coordinator.signal(libc::SIGKILL);
    coordinator
        .wait_timeout(Duration::from_secs(5))
        .expect("coordinator died");
    let _restarted = lab.start_coordinator(&["--state-dir", state_arg]);
    c.wait_for_workers(3);
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 24);
    assert!(any_re_leased(&report));
    let _ = std::fs::remove_dir_all(state);
}

#[test]
fn sigstop_then_sigcont_a_worker_on_its_host() {
    let lab = Lab::new("ck4", "10.77.4", 4);
    let _coordinator = lab.start_coordinator(&FAST_HEARTBEATS);
    let run = |a: &[&str]| lab.cli(a);
    let c = Coordinator::new(&lab.url(), &run);
    let mut workers: Vec<_> = (1..=3).map(|h| lab.start_worker(h)).collect();
    c.wait_for_workers(3);
    let id = c.submit(LONG_JOB, SHARDS);
    let victim = c.busy_worker_mid_job(&id);
    let worker = find(&mut workers, victim);
    worker.signal(libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.has_worker(victim) {
        assert!(
            Instant::now() < deadline,
            "stopped worker never declared lost"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.signal(libc::SIGCONT);
    let report = c.wait_succeeded(&id);
    assert_eq!(assert_sums_exact(&report), 24);
    assert!(any_re_leased(&report));
}
