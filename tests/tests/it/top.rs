//! `concur-cli top` off a terminal: one snapshot of a real coordinator's workers and jobs.

use concur_tests::{cli, start_coordinator, start_worker, wait_for_workers};

#[test]
fn top_prints_one_snapshot_of_workers_and_jobs() {
    let (_coordinator, url) = start_coordinator(&[]);
    let worker = start_worker(&url, 2);
    wait_for_workers(&url, 1);
    let out = cli(&[
        "--coordinator",
        &url,
        "submit",
        "sum-squares",
        "1000..1010",
        "--label",
        "seen-by-top",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Captured stdout is not a terminal: a snapshot and exit 0, with or without --once.
    for args in [vec!["top", "--once"], vec!["top"]] {
        let mut full = vec!["--coordinator", url.as_str()];
        full.extend(args.iter().copied());
        let out = cli(&full);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(
            out.stdout.contains(&format!(":{} ", worker.pid())),
            "the worker's host:pid is listed: {}",
            out.stdout
        );
        assert!(out.stdout.contains("seen-by-top"), "{}", out.stdout);
        assert!(
            out.stdout.contains("sum-squares sequential x1"),
            "{}",
            out.stdout
        );
    }

    let out = cli(&["--coordinator", &url, "--output", "json", "top", "--once"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let view = out.json();
    let workers = view["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{view}");
    assert_eq!(workers[0]["slots"], 2);
    assert!(
        workers[0]["process"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", worker.pid()))
    );
    let jobs = view["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{view}");
    assert_eq!(jobs[0]["label"], "seen-by-top");
    assert_eq!(jobs[0]["items_total"], 10);
}

#[test]
fn top_needs_a_coordinator_and_a_sane_interval() {
    let out = cli(&["top", "--once"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("needs a running coordinator"),
        "{}",
        out.stderr
    );
    let out = cli(&[
        "--coordinator",
        "http://127.0.0.1:1",
        "top",
        "--interval",
        "1ms",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("at least 100ms"), "{}", out.stderr);
}
