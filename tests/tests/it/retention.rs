//! Finished jobs do not pile up: retention forgets the oldest, `delete` removes one, and
//! `jobs` filters and limits.

use concur_tests::{cli, start_coordinator, start_worker, wait_for_workers};
use std::time::{Duration, Instant};

fn json(url: &str, args: &[&str]) -> concur_tests::CliOutput {
    let mut all = vec!["--coordinator", url, "--output", "json"];
    all.extend_from_slice(args);
    cli(&all)
}

fn listed(url: &str, args: &[&str]) -> Vec<u64> {
    let mut all = vec!["jobs"];
    all.extend_from_slice(args);
    json(url, &all).json()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_u64().unwrap())
        .collect()
}

#[test]
fn retention_delete_and_listing_filters() {
    let (_coordinator, url) = start_coordinator(&["--retain-jobs", "3"]);
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let ids: Vec<u64> = (0..5)
        .map(|_| {
            let out = json(&url, &["submit", "sum-squares", "0..50", "--wait"]);
            assert_eq!(out.code, 0, "{}", out.stderr);
            out.json()["job_id"].as_u64().unwrap()
        })
        .collect();
    // The writer prunes when idle: the two oldest finished jobs go.
    let deadline = Instant::now() + Duration::from_secs(20);
    while listed(&url, &["--limit", "0"]) != ids[2..] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            listed(&url, &["--limit", "0"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let gone = json(&url, &["job", &ids[0].to_string()]);
    assert_eq!(gone.code, 2);
    assert!(gone.stdout.contains("no job with id"), "{}", gone.stdout);

    let deleted = json(&url, &["delete", &ids[3].to_string()]);
    assert_eq!(deleted.code, 0, "{}", deleted.stdout);
    assert_eq!(listed(&url, &["--limit", "0"]), [ids[2], ids[4]]);

    // A running job cannot be deleted; filters and limits apply.
    let long = json(&url, &["submit", "sum-squares", "3000000000"]);
    let long = long.json()["job_id"].as_u64().unwrap();
    let refused = json(&url, &["delete", &long.to_string()]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stdout.contains("cancel it first"),
        "{}",
        refused.stdout
    );
    assert_eq!(
        listed(&url, &["--state", "succeeded", "--limit", "1"]),
        [ids[4]]
    );
    let running = listed(&url, &["--state", "running,pending"]);
    assert_eq!(running, [long]);
    let matched = json(&url, &["jobs", "--limit", "1"]).json()["matched"].as_u64();
    assert_eq!(matched, Some(3));
    json(&url, &["cancel", &long.to_string()]);
}
