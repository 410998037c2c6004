//! Active and standby coordinators on a real PostgreSQL server that the test starts itself
//! (Debian's `postgresql`, a throwaway cluster on a free port, removed afterwards): kill -9 of
//! the active mid-job, an active frozen past its lease that wakes up deposed, and a restart of
//! everything — each time every item exactly once and nothing acknowledged lost.

use concur_coordinator::store::postgres::testing::{TestDb, database};
use concur_tests::{Proc, cli, scratch_dir, start_coordinator, start_sites, start_worker};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The URLs of `count` pages on the site simulator, in a file.
fn url_file(sites: &str, count: usize) -> String {
    let dir = scratch_dir("ha-urls");
    let path = dir.join("urls.txt");
    let urls: Vec<String> = (0..count).map(|i| format!("{sites}/page/{i}")).collect();
    std::fs::write(&path, urls.join("\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// Waits until the coordinator at `url` answers as the active one; how long that took.
fn until_active(url: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let out = cli(&["--coordinator", url, "jobs"]);
        if out.code == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{url} did not become active within {within:?}: {}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A coordinator on the shared database.
fn coordinator(db: &TestDb) -> (Proc, String) {
    start_coordinator(&["--state-url", &db.url])
}

/// Every item of job 1 exactly once and ok, from whichever coordinator is active.
fn assert_every_item_once(urls: &str, items: usize) -> Value {
    let report = cli(&[
        "--coordinator",
        urls,
        "--output",
        "json",
        "job",
        "1",
        "--wait",
        "--items",
        "all",
    ]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let report = report.json();
    assert_eq!(report["state"], "succeeded", "{report}");
    let listed = report["items"].as_array().expect("items");
    assert_eq!(listed.len(), items);
    let inputs: BTreeSet<&str> = listed
        .iter()
        .map(|i| i["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs.len(), items, "every item once");
    assert!(listed.iter().all(|i| i["ok"] == true), "every item ok");
    report
}

#[test]
fn killing_the_active_mid_job_hands_over_to_the_standby_and_every_item_runs_once() {
    let db = database();
    let (_sites, sites) = start_sites(&["--latency", "40ms", "--bytes", "100"]);
    let (first, first_url) = coordinator(&db);
    until_active(&first_url, Duration::from_secs(10));
    let (second, second_url) = coordinator(&db);
    let standby = cli(&["--coordinator", &second_url, "workers"]);
    assert_eq!(standby.code, 2);
    assert!(
        standby
            .stderr
            .contains(&format!("standby; the active coordinator is {first_url}")),
        "{}",
        standby.stderr
    );
    let both = format!("{first_url},{second_url}");
    let _workers: Vec<Proc> = (0..2).map(|_| start_worker(&both, 2)).collect();
    let list = url_file(&sites, 800);
    let submitted = cli(&[
        "--coordinator",
        &both,
        "submit",
        "fetch",
        "--urls-file",
        &list,
        "--strategy",
        "async",
        "--concurrency",
        "2",
        "--shards",
        "80",
    ]);
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    std::thread::sleep(Duration::from_millis(1500));
    first.signal(libc::SIGKILL);
    let takeover = until_active(&second_url, Duration::from_secs(10));
    eprintln!("standby accepting work {takeover:?} after kill -9 of the active");
    let report = assert_every_item_once(&both, 800);
    let reruns = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["attempt"].as_u64().unwrap_or(0) > 1)
        .count();
    assert!(reruns > 0, "in-flight shards ran again as new attempts");

    // Restart everything: the job and its results are still there.
    drop(second);
    drop(first);
    let (_third, third_url) = coordinator(&db);
    until_active(&third_url, Duration::from_secs(10));
    assert_every_item_once(&third_url, 800);
}

#[test]
fn an_active_frozen_past_its_lease_wakes_up_deposed_commits_nothing_and_stops() {
    let db = database();
    let (_sites, sites) = start_sites(&["--latency", "40ms", "--bytes", "100"]);
    let (mut first, first_url) = coordinator(&db);
    until_active(&first_url, Duration::from_secs(10));
    let (_second, second_url) = coordinator(&db);
    let both = format!("{first_url},{second_url}");
    let _workers: Vec<Proc> = (0..2).map(|_| start_worker(&both, 2)).collect();
    let list = url_file(&sites, 600);
    let submitted = cli(&[
        "--coordinator",
        &both,
        "submit",
        "fetch",
        "--urls-file",
        &list,
        "--strategy",
        "async",
        "--concurrency",
        "2",
        "--shards",
        "60",
    ]);
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    std::thread::sleep(Duration::from_millis(1000));
    // Frozen (a long GC pause, a stopped VM): its lease lapses and the standby takes over.
    first.signal(libc::SIGSTOP);
    until_active(&second_url, Duration::from_secs(15));
    first.signal(libc::SIGCONT);
    // Awake, it finds the lease taken and stops: it never acts as a second active.
    let code = first.wait_timeout(Duration::from_secs(10));
    assert!(
        matches!(code, Some(c) if c != 0),
        "the deposed coordinator exited with an error: {code:?}"
    );
    assert_every_item_once(&both, 600);
}
