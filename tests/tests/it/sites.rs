//! The site simulator: many concurrent keep-alive connections, and injected faults that show up
//! as failed items with their errors.

use concur_tests::{
    cli, start_coordinator, start_sites, start_worker, submit_fetch, wait_for_workers,
};

#[test]
fn a_thousand_requests_are_in_flight_at_once() {
    let (_sites, sites) = start_sites(&["--latency", "300ms", "--bytes", "1k"]);
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let urls: Vec<String> = (0..2000).map(|i| format!("{sites}/many/{i}")).collect();
    let out = submit_fetch(
        &url,
        &urls,
        &["--strategy", "async", "--concurrency", "1000"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["items_ok"], 2000);
    assert!(
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["bytes"] == 1000)
    );
    // Sequentially this is 600 s of waiting; overlapping 1000 connections makes it a few seconds.
    let parallelism = report["effective_parallelism"].as_f64().unwrap();
    assert!(
        parallelism > 100.0,
        "only {parallelism:.1} requests overlapped"
    );
}

#[test]
fn injected_faults_become_failed_items_with_their_errors() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let cases: [(&[&str], &str); 3] = [
        (&["--error-rate", "1"], "HTTP 500"),
        (&["--reset-rate", "1"], ""),
        (&["--stall-rate", "1", "--stall", "30s"], "timed out"),
    ];
    // Both clients a worker fetches with: per-thread blocking ones and the async lanes.
    for ((flags, expected_error), strategy) in cases
        .into_iter()
        .flat_map(|case| ["threads", "async"].map(|strategy| (case, strategy)))
    {
        let mut args = vec!["--latency", "1ms", "--bytes", "10"];
        args.extend_from_slice(flags);
        let (_sites, sites) = start_sites(&args);
        let a = format!("{sites}/a");
        let b = format!("{sites}/b");
        let out = cli(&[
            "--coordinator",
            &url,
            "--output",
            "json",
            "submit",
            "fetch",
            &a,
            &b,
            "--strategy",
            strategy,
            "--timeout",
            "1s",
            "--wait",
        ]);
        assert_eq!(out.code, 1, "{flags:?} {strategy}: {}", out.stderr);
        let report = out.json();
        assert_eq!(report["state"], "failed");
        for item in report["items"].as_array().unwrap() {
            assert_eq!(item["ok"], false, "{flags:?} {strategy}: {item}");
            let error = item["error"].as_str().unwrap();
            assert!(
                !error.is_empty() && error.contains(expected_error),
                "{flags:?} {strategy}: {error}"
            );
        }
    }
}
