//! Coordinator restarts and state directories: bad directories fail before anything says it
//! is listening, a directory is never shared, ids are never reused, and a waiting client
//! follows its job across a restart.

use concur_tests::{
    Proc, bin, cli, scratch_dir, spawn_cli, start_coordinator_at, start_worker, wait_for_workers,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `concur-coordinator` to its end; (exit code, stdout, stderr).
fn coordinator_fails(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("concur-coordinator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_state_directory_fails_before_listening_and_names_the_problem() {
    let dir = scratch_dir("bad-state");
    let file = dir.join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let (code, stdout, stderr) = coordinator_fails(&["--state-dir", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(!stdout.contains("listening"), "said it listens: {stdout}");
    assert!(stderr.contains("not-a-directory"), "{stderr}");
    // An empty database file is refused, not silently started afresh.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("state.sqlite3"), "").unwrap();
    let (code, stdout, stderr) = coordinator_fails(&["--state-dir", empty.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(!stdout.contains("listening"));
    assert!(stderr.contains("empty"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_coordinator_cannot_share_a_directory_even_when_files_are_deleted() {
    let dir = scratch_dir("shared-state");
    let state = dir.to_str().unwrap();
    let (_first, _) = start_coordinator_at("127.0.0.1:0", &["--state-dir", state]);
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".lock") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let (code, stdout, stderr) = coordinator_fails(&["--state-dir", state]);
    assert_ne!(code, 0);
    assert!(!stdout.contains("listening"));
    assert!(stderr.contains("in use by another coordinator"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

fn worker_ids(url: &str) -> Vec<u64> {
    let out = cli(&["--coordinator", url, "--output", "json", "workers"]);
    out.json()["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_u64().unwrap())
        .collect()
}

fn kill(mut process: Proc) {
    process.signal(libc::SIGKILL);
    process.wait_timeout(Duration::from_secs(10));
}

#[test]
fn a_waiting_client_follows_its_job_across_a_restart_and_ids_are_never_reused() {
    let dir = scratch_dir("restart-wait");
    let state = dir.to_str().unwrap();
    let (coordinator, url) = start_coordinator_at("127.0.0.1:0", &["--state-dir", state]);
    let listen = url.trim_start_matches("http://").to_string();
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let before = worker_ids(&url);
    // About 2 s of work in 4 shards.
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "1500000000..1500000008",
        "--shards",
        "4",
    ]);
    let id = out.json()["job_id"].as_u64().unwrap();
    let mut waiter = spawn_cli(&["--coordinator", &url, "job", &id.to_string(), "--wait"]);
    std::thread::sleep(Duration::from_millis(500));
    kill(coordinator);
    std::thread::sleep(Duration::from_secs(1));
    let (_coordinator, url) = start_coordinator_at(&listen, &["--state-dir", state]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let code = loop {
        if let Some(code) = waiter.wait_timeout(Duration::from_millis(200)) {
            break code;
        }
        assert!(Instant::now() < deadline, "job --wait never ended");
    };
    assert_eq!(code, 0, "job --wait follows the job across the restart");
    wait_for_workers(&url, 1);
    let after = worker_ids(&url);
    assert!(
        after.iter().all(|a| before.iter().all(|b| a > b)),
        "worker ids reused after a restart: before {before:?}, after {after:?}"
    );
    let next = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "5",
    ]);
    assert!(next.json()["job_id"].as_u64().unwrap() > id);
    let _ = std::fs::remove_dir_all(dir);
}
