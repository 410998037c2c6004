//! The exec unit: the job's program run for one item, in a process group of its own.
//!
//! Each child gets a new process group (`process_group(0)`), so a timeout or a cancel kills
//! everything it started (`kill(-pgid, SIGKILL)`), grandchildren included; what it leaves
//! behind in its group when it exits is killed too, so no item outlives its outcome and no
//! stray process holds its pipes open. The child is reaped with `wait4`, which reports that
//! child's own CPU time. Its exit is watched through a pidfd, which both the blocking path
//! (`poll`) and the event loop (`AsyncFd`) can wait on beside the pipes.

use concur_core::Outcome;
use concur_core::exec::{EXEC_CAPTURE_BYTES, item_args, pack_value};
use concur_core::protocol::ExecCommand;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How often a blocking unit looks at its cancel flag while the child runs.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// After a kill, how long the pipes may stay open (held by a process that left the group).
const AFTER_KILL_GRACE: Duration = Duration::from_secs(1);

/// Output of one stream: the first [`EXEC_CAPTURE_BYTES`] kept, all of it counted.
#[derive(Debug, Default)]
struct Capture {
    kept: Vec<u8>,
    total: u64,
}

impl Capture {
    fn add(&mut self, bytes: &[u8]) {
        let room = EXEC_CAPTURE_BYTES.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.total += bytes.len() as u64;
    }
}

/// How an item's timeout error starts (the limiter reads it as overload).
pub(crate) const KILLED_AFTER_TIMEOUT: &str = "killed after timeout";

/// Why the unit killed its child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    Timeout,
    Cancelled,
}

/// A spawned child and its pidfd. Dropping it before the child is reaped kills the child's
/// group and reaps it: a unit abandoned mid-flight (a cancelled event loop drops its futures)
/// leaves nothing running.
struct Running {
    child: Child,
    pidfd: Option<OwnedFd>,
    reaped: bool,
}

impl Running {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn kill_group(&self) {
        // SAFETY: kill has no memory effects; the group id is the child's pid (process_group(0)),
        // which stays allocated while any member lives or the leader is unreaped.
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
    }

    /// Reaps the child (`nohang`: only if it has exited), returning its wait status and CPU
    /// seconds. Kills what it left in its group.
    fn reap(&mut self, nohang: bool) -> Option<(i32, f64)> {
        let mut status = 0;
        // SAFETY: rusage is plain data, zeroed is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if nohang { libc::WNOHANG } else { 0 };
        loop {
            // SAFETY: valid pointers to locals; the pid is our own unreaped child.
            let got = unsafe { libc::wait4(self.pid(), &mut status, flags, &mut usage) };
            if got == -1
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            }
            if got != self.pid() {
                return None;
            }
            break;
        }
        self.kill_group();
        self.reaped = true;
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some((status, seconds(usage.ru_utime) + seconds(usage.ru_stime)))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            self.reap(false);
        }
    }
}

/// Starts the program for `item` with piped output, no stdin, in a new process group.
fn spawn(command: &ExecCommand, item: &str) -> std::io::Result<Running> {
    let child = Command::new(&command.program)
        .args(item_args(&command.args, item))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a descriptor we now own.
    let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) });
    let running = Running {
        child,
        pidfd,
        reaped: false,
    };
    if running.pidfd.is_none() {
        return Err(std::io::Error::other(
            "pidfd_open failed (Linux 5.3 or later needed)",
        ));
    }
    Ok(running)
}

/// The outcome of a reaped child.
fn finish(
    command: &ExecCommand,
    (status, cpu_s): (i32, f64),
    stdout: &Capture,
    stderr: &Capture,
    killed: Option<Killed>,
    start: Instant,
) -> Outcome {
    let (code, mut error) = if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        (
            code as u32,
            (code != 0).then(|| format!("exit status {code}")),
        )
    } else {
        let signal = libc::WTERMSIG(status);
        (
            128 + signal as u32,
            Some(format!("killed by signal {signal}")),
        )
    };
    match killed {
        Some(Killed::Timeout) => {
            let limit = humantime::format_duration(Duration::from_millis(command.timeout_ms));
            error = Some(format!("{KILLED_AFTER_TIMEOUT} {limit}"));
        }
        Some(Killed::Cancelled) => error = Some("cancelled".to_string()),
        None => {}
    }
    let ok = error.is_none();
    let mut error = error.unwrap_or_default();
    let excerpt = String::from_utf8_lossy(&stderr.kept);
    if !ok && !excerpt.trim().is_empty() {
        error = format!("{error}: {}", excerpt.trim());
    }
    Outcome {
        ok,
        duration_s: start.elapsed().as_secs_f64(),
        status: code,
        bytes: stdout.total,
        value: pack_value(cpu_s, stderr.total),
        error,
        ..Outcome::default()
    }
}

fn cannot_start(command: &ExecCommand, err: &std::io::Error, start: Instant) -> Outcome {
    Outcome::failed(
        format!("cannot run {}: {err}", command.program),
        start.elapsed().as_secs_f64(),
    )
}

/// Runs the program for `item` on the calling thread: one `poll` over both pipes and the
/// pidfd, woken at least every [`CANCEL_POLL`] to look at `cancel` and the deadline.
pub(super) fn run_blocking(command: &ExecCommand, item: &str, cancel: &AtomicBool) -> Outcome {
    let start = Instant::now();
    let mut running = match spawn(command, item) {
        Ok(running) => running,
        Err(e) => return cannot_start(command, &e, start),
    };
    let deadline = start + Duration::from_millis(command.timeout_ms.max(1));
    let mut pipes = [
        running
            .child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn PipeRead>),
        running
            .child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn PipeRead>),
    ];
    let mut captures = [Capture::default(), Capture::default()];
    let (mut ended, mut killed, mut killed_at) = (None, None, None);
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let now = Instant::now();
        let pipes_open = pipes.iter().any(Option::is_some);
        // Done once reaped and the pipes closed, or when a process that left the group keeps
        // them open past the deadline (or the grace after a kill).
        if ended.is_some()
            && (!pipes_open || now >= deadline || killed_at.is_some_and(|t| now >= t))
        {
            break;
        }
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        for pipe in pipes.iter().flatten() {
            fds.push(pollfd(pipe.raw()));
        }
        if ended.is_none()
            && let Some(pidfd) = &running.pidfd
        {
            fds.push(pollfd(pidfd.as_raw_fd()));
        }
        // Past the deadline only a dying child or an escaped pipe holder is left: no spinning.
        let wait = match deadline.saturating_duration_since(now) {
            Duration::ZERO => Duration::from_millis(10),
            left => left.min(CANCEL_POLL),
        };
        // SAFETY: fds is a valid array of pollfd of the given length.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32,
            )
        };
        for (slot, capture) in pipes.iter_mut().zip(captures.iter_mut()) {
            let Some(pipe) = slot else { continue };
            let ready = fds.iter().any(|f| f.fd == pipe.raw() && f.revents != 0);
            if ready {
                match pipe.read_some(&mut buffer) {
                    Ok(0) => *slot = None,
                    Ok(n) => capture.add(&buffer[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => *slot = None,
                }
            }
        }
        if ended.is_none() {
            ended = running.reap(true);
        }
        if ended.is_none() && killed.is_none() {
            killed = if cancel.load(Ordering::Relaxed) {
                Some(Killed::Cancelled)
            } else {
                (Instant::now() >= deadline).then_some(Killed::Timeout)
            };
            if killed.is_some() {
                running.kill_group();
                killed_at = Some(Instant::now() + AFTER_KILL_GRACE);
            }
        }
    }
    let ended = ended.unwrap_or((0, 0.0));
    finish(command, ended, &captures[0], &captures[1], killed, start)
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// A child's stdout or stderr, read in the blocking path.
trait PipeRead {
    fn raw(&self) -> i32;
    fn read_some(&mut self, buffer: &mut [u8]) -> std::io::Result<usize>;
}

impl<T: Read + AsRawFd> PipeRead for T {
    fn raw(&self) -> i32 {
        self.as_raw_fd()
    }
    fn read_some(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.read(buffer)
    }
}

/// Reads a pipe to its end on the event loop.
async fn drain(pipe: Option<impl tokio::io::AsyncRead + Unpin>, capture: &mut Capture) {
    let Some(mut pipe) = pipe else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            return;
        }
        capture.add(&buffer[..n]);
    }
}

/// Runs the program for `item` supervised by the event loop: the pipes are tokio pipes, the
/// exit a readable pidfd, so N children need no thread each.
pub(super) async fn run_async(command: &ExecCommand, item: &str, cancel: &AtomicBool) -> Outcome {
    let start = Instant::now();
    let mut running = match spawn(command, item) {
        Ok(running) => running,
        Err(e) => return cannot_start(command, &e, start),
    };
    let piped = (|| -> std::io::Result<_> {
        let stdout = running
            .child
            .stdout
            .take()
            .map(tokio::process::ChildStdout::from_std);
        let stderr = running
            .child
            .stderr
            .take()
            .map(tokio::process::ChildStderr::from_std);
        let pidfd = running.pidfd.take().map(|fd| {
            // SAFETY: an owned, valid descriptor, moved into the AsyncFd, which closes it.
            unsafe { tokio::io::unix::AsyncFd::register(fd) }
        });
        Ok((stdout.transpose()?, stderr.transpose()?, pidfd.transpose()?))
    })();
    let (stdout, stderr, Some(pidfd)) = (match piped {
        Ok(piped) => piped,
        Err(e) => return cannot_start(command, &e, start),
    }) else {
        return cannot_start(command, &std::io::Error::other("no pidfd"), start);
    };
    let deadline =
        tokio::time::Instant::from_std(start + Duration::from_millis(command.timeout_ms.max(1)));
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let pid = running.pid();
    let killed = {
        let exited = async {
            let _ = pidfd.readable().await;
            // The child is gone: what it left in its group goes too (and closes the pipes).
            // SAFETY: see Running::kill_group; the child is exited but not yet reaped.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        };
        let all = async {
            tokio::join!(drain(stdout, &mut out), drain(stderr, &mut err), exited);
        };
        tokio::pin!(all);
        let killed = tokio::select! {
            () = &mut all => None,
            () = tokio::time::sleep_until(deadline) => Some(Killed::Timeout),
            () = super::pool::cancelled(cancel) => Some(Killed::Cancelled),
        };
        if killed.is_some() {
            running.kill_group();
            let _ = tokio::time::timeout(AFTER_KILL_GRACE, &mut all).await;
        }
        killed
    };
    // The child exited (or was killed and dies at once): wait for the pidfd, then reap.
    let _ = tokio::time::timeout(AFTER_KILL_GRACE, pidfd.readable()).await;
    let ended = running.reap(true).or_else(|| running.reap(false));
    finish(
        command,
        ended.unwrap_or((0, 0.0)),
        &out,
        &err,
        killed,
        start,
    )
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
