//! Helpers for cross-process tests: start real `concur-coordinator`, `concur-worker` and
//! `concur-cli sites serve` processes on loopback ephemeral ports, run `concur-cli`, and clean
//! up every process (by its own PID) when the handle drops — also when a test fails.

pub mod deploy;
pub mod jobs;
pub mod lab;
pub mod measure;
pub mod swarm;
pub mod web;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Upper bound for any single CLI call in tests.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of a workspace binary, building the binaries once if they are missing.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    // Tests run from target/PROFILE/deps, helper binaries from target/PROFILE.
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("executable directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.exists() {
        BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut args = vec!["build", "--bins"];
            if dir.ends_with("release") {
                args.push("--release");
            }
            let status = Command::new(cargo)
                .args(&args)
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build --bins failed");
        });
    }
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Proc {
    pub(crate) child: Child,
    /// What it printed on stdout first: for servers, the line with their address.
    pub first_line: String,
    /// A directory made for this process, removed with it.
    pub(crate) scratch: Option<PathBuf>,
}

impl Proc {
    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to this process only.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's PID.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits up to `timeout` for the process to exit; its exit code, if it did.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(128 + 9));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh, empty directory under the system temp dir, unique to this call.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("concur-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Spawns `command` and reads its first stdout line (servers print their address there).
pub fn spawn_server(command: Command) -> Proc {
    spawn_server_lines(command, 1)
}

/// Spawns `command` and reads its first `lines` stdout lines (joined into `first_line`).
pub fn spawn_server_lines(mut command: Command, lines: usize) -> Proc {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("spawn server");
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        for _ in 0..lines {
            let _ = reader.read_line(&mut line);
        }
        let _ = sender.send(line);
        // Keep draining so the server never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let first_line = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("server printed its address");
    Proc {
        child,
        first_line,
        scratch: None,
    }
}

/// The `http://host:port` in a server's first line.
fn address_in(line: &str) -> String {
    line.split_whitespace()
        .find(|word| word.starts_with("http://") || word.starts_with("https://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

/// A coordinator on an ephemeral loopback port, with extra arguments. Unless they name a
/// state directory (or `--in-memory`), it gets a scratch one, removed when it stops.
pub fn start_coordinator(extra: &[&str]) -> (Proc, String) {
    start_coordinator_at("127.0.0.1:0", extra)
}

/// A coordinator listening on `listen` (e.g. the address of a stopped one, to restart it).
pub fn start_coordinator_at(listen: &str, extra: &[&str]) -> (Proc, String) {
    let mut command = Command::new(bin("concur-coordinator"));
    command.args(["--listen", listen]).args(extra);
    let own_state = !extra
        .iter()
        .any(|a| *a == "--state-dir" || *a == "--in-memory" || *a == "--state-url");
    let scratch = own_state.then(|| scratch_dir("state"));
    if let Some(dir) = &scratch {
        command.arg("--state-dir").arg(dir);
    }
    let mut proc = spawn_server(command);
    proc.scratch = scratch;
    let url = address_in(&proc.first_line);
    (proc, url)
}

/// An in-memory coordinator serving the dashboard too: (process, gRPC URL, dashboard URL).
pub fn start_coordinator_with_dashboard(extra: &[&str]) -> (Proc, String, String) {
    let mut command = Command::new(bin("concur-coordinator"));
    command
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .args(extra);
    let proc = spawn_server_lines(command, 2);
    let url = address_in(&proc.first_line);
    let dashboard = proc
        .first_line
        .lines()
        .find(|line| line.contains("dashboard on"))
        .map(address_in)
        .unwrap_or_else(|| panic!("no dashboard address in {:?}", proc.first_line));
    (proc, url, dashboard.trim_end_matches('/').to_string())
}

/// A worker attached to `url`.
pub fn start_worker(url: &str, slots: u32) -> Proc {
    start_worker_with(url, slots, &[])
}

/// A worker attached to `url`, with `extra` flags (e.g. `--allow-exec`).
pub fn start_worker_with(url: &str, slots: u32, extra: &[&str]) -> Proc {
    let child = Command::new(bin("concur-worker"))
        .args(["--coordinator", url, "--slots", &slots.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker");
    Proc {
        child,
        first_line: String::new(),
        scratch: None,
    }
}

/// The site simulator on an ephemeral loopback port.
pub fn start_sites(extra: &[&str]) -> (Proc, String) {
    let mut command = Command::new(bin("concur-cli"));
    command
        .args(["sites", "serve", "--listen", "127.0.0.1:0"])
        .args(extra);
    let proc = spawn_server(command);
    let url = address_in(&proc.first_line);
    (proc, url)
}

/// What a `concur-cli` run produced.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit code (128 + signal when killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Standard output parsed as one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Submits `urls` (written to a scratch file) as a fetch job to the coordinator at `url` with
/// `extra` flags, waits, and returns the JSON run's output.
pub fn submit_fetch(url: &str, urls: &[String], extra: &[&str]) -> CliOutput {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("concur-urls-{}-{n}.txt", std::process::id()));
    std::fs::write(&file, urls.join("\n")).unwrap();
    let mut args = vec!["--coordinator", url, "--output", "json", "submit", "fetch"];
    args.extend(["--urls-file", file.to_str().unwrap(), "--wait"]);
    args.extend_from_slice(extra);
    let out = cli(&args);
    let _ = std::fs::remove_file(&file);
    out
}

/// Runs `concur-cli` with `args` (no CONCUR_COORDINATOR from the environment), bounded by
/// [`CLI_TIMEOUT`].
pub fn cli(args: &[&str]) -> CliOutput {
    let mut command = Command::new(bin("concur-cli"));
    command.args(args);
    run_cli(command)
}

/// Runs a prepared `concur-cli` command to completion, bounded by [`CLI_TIMEOUT`].
pub fn run_cli(mut command: Command) -> CliOutput {
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = command
        .env_remove("CONCUR_COORDINATOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn concur-cli");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for concur-cli") {
            break status.code().unwrap_or(128 + 9);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("concur-cli {args:?} did not finish within {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOutput {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Polls until `count` workers are attached to `url`.
pub fn wait_for_workers(url: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli(&["--coordinator", url, "--output", "json", "workers"]);
        if out.code == 0 && out.json()["workers"].as_array().map_or(0, Vec::len) >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} workers did not attach: {}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True while a process with this PID exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// PIDs of the direct children of `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// Checks every sum-squares item of a report against the closed form; returns how many.
pub fn assert_sums_exact(report: &Value) -> usize {
    let items = report["items"].as_array().expect("items array");
    for item in items {
        let n: u64 = item["input"].as_str().unwrap().parse().unwrap();
        let expected = concur_core::kernel::closed_form(n).unwrap().to_string();
        assert_eq!(item["ok"], true, "item {n} failed: {item}");
        assert_eq!(item["value"].as_str(), Some(expected.as_str()), "n = {n}");
    }
    items.len()
}

/// Starts `concur-cli` in the background (for signal tests); output goes nowhere.
pub fn spawn_cli(args: &[&str]) -> Proc {
    let child = Command::new(bin("concur-cli"))
        .args(args)
        .env_remove("CONCUR_COORDINATOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn concur-cli");
    Proc {
        child,
        first_line: String::new(),
        scratch: None,
    }
}
