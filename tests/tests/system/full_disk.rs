//! A real full disk: the coordinator's state directory on a small tmpfs that the test fills.
//! Nothing acknowledged may be lost — not across a kill -9 either — new work is refused with
//! the cause while the disk is full, reads go on, and the coordinator resumes by itself once
//! there is room again. Needs root (mount).

use concur_tests::{CliOutput, cli, scratch_dir, start_coordinator_at, start_worker};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted for the test, unmounted when dropped (also when the test fails).
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = scratch_dir("full-disk");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot mount a tmpfs (root is needed)");
        Self { dir }
    }

    /// Fills what is left with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let small = vec![0u8; 512];
        while file.write_all(&small).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn json(url: &str, args: &[&str]) -> CliOutput {
    let mut all = vec!["--coordinator", url, "--output", "json"];
    all.extend_from_slice(args);
    cli(&all)
}

/// Submits a small job; its id if the coordinator acknowledged it.
fn submit(url: &str) -> Result<u64, String> {
    let out = json(url, &["submit", "sum-squares", "0..300", "--shards", "3"]);
    match out.code {
        0 => Ok(out.json()["job_id"].as_u64().expect("job_id")),
        _ => Err(format!("{}{}", out.stdout, out.stderr)),
    }
}

fn state_of(url: &str, job: u64) -> Option<String> {
    let out = json(url, &["job", &job.to_string(), "--items", "none"]);
    (out.code <= 1).then(|| out.json()["state"].as_str().unwrap_or_default().to_string())
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn state_dir(disk: &Path) -> String {
    disk.join("state").display().to_string()
}

#[test]
fn nothing_acknowledged_is_lost_on_a_full_disk_not_even_across_a_kill() {
    let disk = SmallDisk::mount(8);
    let state = state_dir(&disk.dir);
    let (mut coordinator, url) = start_coordinator_at("127.0.0.1:0", &["--state-dir", &state]);
    let listen = url.trim_start_matches("http://").to_string();
    let _worker = start_worker(&url, 1);
    let mut acknowledged: Vec<u64> = (0..3)
        .map(|_| submit(&url).expect("room on the disk"))
        .collect();
    // A job running when the disk fills: it must not be reported finished before it is stored.
    let out = json(
        &url,
        &[
            "submit",
            "sum-squares",
            "2000000000..2000000004",
            "--shards",
            "4",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let running = out.json()["job_id"].as_u64().unwrap();
    acknowledged.push(running);

    let filler = disk.fill();
    let mut refused = 0;
    for _ in 0..40 {
        match submit(&url) {
            Ok(id) => acknowledged.push(id),
            Err(message) => {
                assert!(
                    message.contains("cannot store"),
                    "a refusal names the cause: {message}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "a full disk never refused anything");
    // Reads go on while writes are refused, and the running job is not finished as far as
    // anyone is told.
    let out = json(&url, &["jobs"]);
    assert_eq!(
        out.code, 0,
        "listing while the disk is full: {}",
        out.stderr
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(state_of(&url, running).as_deref(), Some("succeeded"));

    // Room again: the coordinator resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        "submissions are accepted again",
        Duration::from_secs(30),
        || submit(&url).map(|id| acknowledged.push(id)).is_ok(),
    );
    wait_until("the running job finished", Duration::from_secs(60), || {
        state_of(&url, running).as_deref() == Some("succeeded")
    });

    // Full again, then killed without warning in the middle of it.
    let filler = disk.fill();
    for _ in 0..10 {
        if let Ok(id) = submit(&url) {
            acknowledged.push(id);
        }
    }
    coordinator.signal(libc::SIGKILL);
    coordinator.wait_timeout(Duration::from_secs(10));
    std::fs::remove_file(&filler).unwrap();

    let (_coordinator, url) = start_coordinator_at(&listen, &["--state-dir", &state]);
    for id in &acknowledged {
        let state = state_of(&url, *id);
        assert!(state.is_some(), "acknowledged job {id} was lost");
    }
    let next = submit(&url).expect("room after the restart");
    let highest = acknowledged.iter().max().copied().unwrap_or(0);
    assert!(
        next > highest,
        "job id {next} reused (acknowledged up to {highest})"
    );
    let report: Value = json(&url, &["job", &running.to_string()]).json();
    assert_eq!(report["items"].as_array().map(Vec::len), Some(4));
}
