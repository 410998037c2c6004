//! The exec workload across real processes: statuses, `{}`, timeouts that kill the whole
//! process group, the `--allow-exec` gate at submit and on the worker, and N children at once.

use concur_tests::{
    Proc, cli, process_alive, scratch_dir, start_coordinator, start_worker_with, wait_for_workers,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A one-slot worker with `extra` flags (e.g. `--allow-exec`).
fn worker(url: &str, extra: &[&str]) -> Proc {
    start_worker_with(url, 1, extra)
}

/// `submit exec` against `url`, waiting, as JSON.
fn submit(url: &str, options: &[&str], command: &[&str]) -> concur_tests::CliOutput {
    let mut args = vec!["--coordinator", url, "--output", "json", "submit", "exec"];
    args.extend_from_slice(options);
    args.push("--wait");
    args.push("--");
    args.extend_from_slice(command);
    cli(&args)
}

fn items(report: &Value) -> &Vec<Value> {
    report["items"].as_array().expect("items")
}

#[test]
fn statuses_substitution_and_stderr_are_recorded() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = worker(&url, &["--allow-exec"]);
    wait_for_workers(&url, 1);
    let out = submit(
        &url,
        &["0", "1", "3"],
        &["sh", "-c", "echo err >&2; exit {}"],
    );
    assert_eq!(
        out.code, 1,
        "failed items make the run answer no: {}",
        out.stderr
    );
    let report = out.json();
    assert_eq!(report["workload"], "exec");
    let rows = items(&report);
    let statuses: Vec<_> = rows.iter().map(|r| r["status"].as_u64()).collect();
    assert_eq!(statuses, [Some(0), Some(1), Some(3)]);
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[2]["ok"], false);
    assert_eq!(rows[2]["error"], "exit status 3: err");
    assert_eq!(rows[2]["stderr_bytes"], 4);
    assert!(rows[0]["cpu_s"].as_f64().is_some());

    let out = submit(&url, &["true", "false"], &["sh", "-c", "{}"]);
    let rows = out.json()["items"].clone();
    assert_eq!(rows[0]["ok"], true);
    assert_eq!(rows[1]["status"], 1);
    assert_eq!(rows[1]["error"], "exit status 1");
    // The program is fixed per job: workers allow programs by name.
    let out = submit(&url, &["true"], &["{}"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stdout.contains("cannot stand for the program"),
        "{}",
        out.stdout
    );

    // `{}` replaced inside an argument; stdout counted: "item-hello\n".
    let out = submit(&url, &["hello", "hi"], &["echo", "item-{}"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = out.json()["items"].clone();
    assert_eq!(rows[0]["bytes"], "item-hello\n".len());
    assert_eq!(rows[1]["bytes"], "item-hi\n".len());
    // Without `{}` the item is the last argument, never split by a shell.
    let out = submit(&url, &["a b  c"], &["echo"]);
    assert_eq!(out.json()["items"][0]["bytes"], "a b  c\n".len());
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = worker(&url, &["--allow-exec"]);
    wait_for_workers(&url, 1);
    let dir = scratch_dir("exec-timeout");
    let pids = dir.join("pids");
    // The child starts a grandchild, records both PIDs, then waits.
    let script = format!("sleep 30 & echo $$ $! > {}; wait", pids.display());
    let start = Instant::now();
    let out = submit(&url, &["--timeout", "500ms", "x"], &["sh", "-c", &script]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let row = out.json()["items"][0].clone();
    assert_eq!(row["ok"], false);
    assert_eq!(row["error"], "killed after timeout 500ms");
    let text = std::fs::read_to_string(&pids).expect("pid file");
    let pids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| process_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        assert!(!process_alive(pid), "process {pid} outlived its item");
    }
}

#[test]
fn exec_is_refused_unless_a_worker_allows_the_program() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _plain = worker(&url, &[]);
    wait_for_workers(&url, 1);
    let out = submit(&url, &["1"], &["true"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    let error = out.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("no attached worker allows exec of true: start workers with --allow-exec"),
        "{error}"
    );

    let _listed = worker(&url, &["--allow-exec", "true,/bin/echo"]);
    wait_for_workers(&url, 2);
    let out = submit(&url, &["1"], &["sh", "-c", "exit 0"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stdout.contains("no attached worker allows exec of sh"),
        "{}",
        out.stdout
    );
    // An allowed program runs, and only on the worker that allows it, whatever the load.
    let out = submit(&url, &["--shards", "4", "1", "2", "3", "4"], &["true"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["items_ok"], 4);
    let workers: std::collections::HashSet<_> = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["worker_id"].as_u64())
        .collect();
    assert_eq!(workers.len(), 1, "exec shards went to {workers:?}");
}

#[test]
fn threads_and_async_run_n_children_at_once() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = worker(&url, &["--allow-exec"]);
    wait_for_workers(&url, 1);
    for strategy in ["threads", "async"] {
        let out = submit(
            &url,
            &[
                "--strategy",
                strategy,
                "--concurrency",
                "4",
                "--shards",
                "1",
                "1",
                "2",
                "3",
                "4",
            ],
            &["sleep", "0.{}"],
        );
        assert_eq!(out.code, 0, "{strategy}: {}", out.stderr);
        let rows = out.json()["items"].clone();
        let rows = rows.as_array().unwrap();
        // Every item starts before the first one ends: 4 children overlap.
        let starts: Vec<f64> = rows
            .iter()
            .map(|r| r["start_s"].as_f64().unwrap())
            .collect();
        let first_end = rows
            .iter()
            .map(|r| r["start_s"].as_f64().unwrap() + r["duration_s"].as_f64().unwrap())
            .fold(f64::MAX, f64::min);
        assert!(
            starts.iter().all(|s| *s < first_end),
            "{strategy}: starts {starts:?}, first end {first_end}"
        );
    }
}

#[test]
fn cancelling_the_job_kills_running_children() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = worker(&url, &["--allow-exec"]);
    wait_for_workers(&url, 1);
    let dir = scratch_dir("exec-cancel");
    for strategy in ["threads", "async"] {
        let pids = dir.join(format!("{strategy}.pid"));
        let script = format!("echo $$ > {}; exec sleep 30", pids.display());
        let out = cli(&[
            "--coordinator",
            &url,
            "--output",
            "json",
            "submit",
            "exec",
            "--strategy",
            strategy,
            "x",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let job = out.json()["job_id"].as_u64().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pids)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "{strategy}: the child never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(process_alive(pid));
        assert_eq!(cli(&["--coordinator", &url, "cancel", &job]).code, 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !process_alive(pid),
            "{strategy}: child {pid} outlived the cancel"
        );
    }
}

#[test]
fn compare_takes_the_exec_workload_in_local_mode() {
    let out = cli(&[
        "--output",
        "json",
        "compare",
        "--processes",
        "1",
        "--strategies",
        "threads",
        "--concurrency",
        "1,2",
        "--repeat",
        "1",
        "--no-warm-up",
        "exec",
        "--range",
        "0..8",
        "--",
        "sleep",
        "0.0{}",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert!(report.to_string().contains("exec"), "{report}");
}
