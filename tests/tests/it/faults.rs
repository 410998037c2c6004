//! Losing a worker mid-job: its shards are re-leased and every item still counts once.

use concur_tests::{assert_sums_exact, cli, start_coordinator, start_worker, wait_for_workers};
use std::time::{Duration, Instant};

#[test]
fn a_sigkilled_worker_s_shards_complete_elsewhere_exactly_once() {
    let (_coordinator, url) = start_coordinator(&["--heartbeat-timeout", "2s"]);
    let mut workers = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    // 16 items of about 0.3 s in 8 shards: several seconds of work for two workers.
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "1000000000..1000000016",
        "--shards",
        "8",
        "--strategy",
        "sequential",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = out.json()["job_id"].as_u64().unwrap().to_string();

    // Wait until a shard has finished and the job is still running, then kill a busy worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim_pid = loop {
        let report = cli(&["--coordinator", &url, "--output", "json", "job", &id]).json();
        assert_eq!(
            report["state"], "running",
            "job ended before the kill: {report}"
        );
        let done = report["shards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["done"] == true)
            .count();
        let busy: Vec<u64> =
            cli(&["--coordinator", &url, "--output", "json", "workers"]).json()["workers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| w["running"].as_u64() > Some(0))
                .map(|w| w["pid"].as_u64().unwrap())
                .collect();
        if done >= 1 && !busy.is_empty() {
            break busy[0] as u32;
        }
        assert!(Instant::now() < deadline, "no shard finished in time");
        std::thread::sleep(Duration::from_millis(20));
    };
    let victim = workers
        .iter()
        .position(|w| w.pid() == victim_pid)
        .expect("victim is ours");
    workers[victim].signal(libc::SIGKILL);
    assert!(
        workers[victim]
            .wait_timeout(Duration::from_secs(5))
            .is_some()
    );

    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "job",
        &id,
        "--wait",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["state"], "succeeded");
    assert_eq!(assert_sums_exact(&report), 16);
    let shards = report["shards"].as_array().unwrap();
    assert!(
        shards.iter().any(|s| s["attempt"].as_u64() >= Some(2)),
        "the killed worker's shard was re-leased: {shards:?}"
    );
    assert!(
        shards
            .iter()
            .all(|s| s["pid"].as_u64() != Some(u64::from(victim_pid)) || s["attempt"] == 1),
        "no result came from the dead worker after its lease was lost"
    );
}
