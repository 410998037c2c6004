//! Local mode: in-process coordinator plus forked workers, and nothing left behind.

use concur_tests::{assert_sums_exact, children_of, cli, process_alive, spawn_cli};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn local_mode_runs_the_job_on_forked_workers_and_reaps_them() {
    let out = cli(&[
        "--output",
        "json",
        "submit",
        "sum-squares",
        "5000000..5000020",
        "--strategy",
        "threads",
        "--concurrency",
        "2",
        "--local-workers",
        "2",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(assert_sums_exact(&report), 20);
    let pids: HashSet<u64> = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "two worker processes ran shards");
    for pid in pids {
        assert!(
            !process_alive(pid as u32),
            "worker {pid} survived local mode"
        );
    }
}

#[test]
fn ctrl_c_in_local_mode_leaves_no_process_behind() {
    let mut cli = spawn_cli(&[
        "submit",
        "sum-squares",
        "3000000000..3000000100",
        "--local-workers",
        "2",
    ]);
    let workers = wait_for_children(cli.pid(), 2);
    std::thread::sleep(Duration::from_millis(300));
    cli.signal(libc::SIGINT);
    let code = cli
        .wait_timeout(Duration::from_secs(10))
        .expect("CLI exits after Ctrl-C");
    assert_eq!(code, 130, "interrupted exit code");
    assert_all_exit(&workers);
}

#[test]
fn sigkill_of_the_cli_takes_its_local_workers_down() {
    let mut cli = spawn_cli(&[
        "submit",
        "sum-squares",
        "3000000000..3000000100",
        "--local-workers",
        "2",
    ]);
    let workers = wait_for_children(cli.pid(), 2);
    cli.signal(libc::SIGKILL);
    cli.wait_timeout(Duration::from_secs(5)).expect("CLI died");
    assert_all_exit(&workers);
}

/// The first `count` children of `pid`, once it has forked them.
fn wait_for_children(pid: u32, count: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let children = children_of(pid);
        if children.len() >= count {
            return children;
        }
        assert!(Instant::now() < deadline, "local workers never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every one of `pids` is gone within a few seconds.
fn assert_all_exit(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|pid| process_alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "workers {pids:?} outlived the CLI"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
