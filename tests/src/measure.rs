//! Measuring processes for the benchmark binaries: start servers and read their address, read
//! RSS and its peak from `/proc`, size a directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A child killed when dropped.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the benchmark's sibling binaries are: the directory of the running executable (so a
/// release bench runs release binaries).
pub fn sibling_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("bin dir").to_path_buf()
}

/// A `concur-worker` from `bin_dir` attached to `url` with `args`, its output discarded.
pub fn quiet_worker(bin_dir: &Path, url: &str, args: &[&str]) -> Proc {
    let child = Command::new(bin_dir.join("concur-worker"))
        .args(["--coordinator", url])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start concur-worker");
    Proc(child)
}

/// Starts a server and returns it with the URL in its first stdout line.
pub fn server(mut command: Command) -> (Proc, String) {
    let log = std::env::var_os("LIMITS_LOG")
        .and_then(|path| std::fs::File::create(path).ok())
        .map_or_else(Stdio::null, Stdio::from);
    command.stdout(Stdio::piped()).stderr(log);
    let mut child = command.spawn().expect("spawn server");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (Proc(child), url)
}

/// A process's resident set size in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Bytes of the files directly in `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process's RSS every 100 ms; the peak.
pub fn sample_peak(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    })
}

/// Peak RSS (KiB) and wall time of a command run to its end with stdout discarded. The peak is
/// the child's own `VmHWM`, read until it exits (the rusage of a forked child would count this
/// process's memory from before the exec).
pub fn peak_of(mut command: Command) -> (u64, Duration, i32) {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    (peak, start.elapsed(), code)
}

/// Starts `bin_dir`'s site simulator on a loopback port, answering at once with 100-byte
/// bodies; returns it with its URL.
pub fn site_simulator(bin_dir: &Path) -> (Proc, String) {
    let mut command = Command::new(bin_dir.join("concur-cli"));
    command.args([
        "sites",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--latency",
        "0ms",
        "--bytes",
        "100",
    ]);
    server(command)
}

/// A job client for `url` with no message size limits (benchmarks submit huge jobs).
pub async fn job_client(
    url: &str,
) -> concur_proto::pb::job_service_client::JobServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .expect("URL")
        .connect()
        .await
        .expect("connect");
    concur_proto::pb::job_service_client::JobServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

/// User plus system CPU seconds a process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second.max(1.0)
}
