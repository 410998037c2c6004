//! Local mode: an in-process coordinator on an ephemeral loopback port plus forked worker
//! processes, all torn down when the cluster is dropped — also on error or Ctrl-C.
//!
//! Workers are this same binary re-executed with the hidden `__worker` subcommand, so local mode
//! works when only `concur-cli` is installed. Each child asks the kernel to kill it when its
//! parent dies (`PR_SET_PDEATHSIG`), so not even a SIGKILL of the CLI leaves workers behind.

use crate::client::{self, Client};
use crate::exit::CliError;
use anyhow::Context;
use concur_coordinator::CoordinatorConfig;
use concur_proto::pb;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Workers that have not attached within this time make local mode give up.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where local clusters serve the dashboard (`--http-listen`), once checked.
static DASHBOARD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether local workers run exec jobs (see [`allow_exec`]).
static ALLOW_EXEC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Local clusters started from now on fork their workers with `--allow-exec`: in local mode
/// the user runs their own command on their own machine, as themselves.
pub(crate) fn allow_exec() {
    ALLOW_EXEC.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Local clusters started from now on serve the dashboard on `addr`, a loopback address (the
/// local coordinator has no token).
///
/// # Errors
/// `addr` is not an address, or not a loopback one.
pub(crate) async fn serve_dashboard_on(addr: &str) -> Result<(), CliError> {
    let resolved: Vec<_> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| CliError::Input(format!("--http-listen {addr}: not an address ({e})")))?
        .collect();
    if resolved.is_empty() || !resolved.iter().all(|a| a.ip().is_loopback()) {
        return Err(CliError::Input(format!(
            "--http-listen {addr}: local mode serves the dashboard on loopback only (e.g. 127.0.0.1:8080); for other hosts run concur-coordinator --http-listen with --token-file"
        )));
    }
    let _ = DASHBOARD.set(addr.to_string());
    Ok(())
}

/// Binds the dashboard: at `addr`, or, when another local cluster of this run serves there
/// (`compare` and `demo` keep one cluster per process count), at the next free port after it.
/// Each cluster prints its own URL.
async fn bind_dashboard(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let base = tokio::net::lookup_host(addr)
        .await?
        .next()
        .with_context(|| format!("--http-listen {addr}: not an address"))?;
    let tries = if base.port() == 0 { 1 } else { 32 };
    let mut last = None;
    for offset in 0..tries {
        let mut candidate = base;
        candidate.set_port(base.port().saturating_add(offset));
        match concur_coordinator::listen::bind(&candidate.to_string()).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot serve the dashboard on {candidate}"));
            }
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no port"), anyhow::Error::from)).with_context(|| {
        format!("cannot serve the dashboard on {addr} or the {tries} ports after it")
    })
}

/// A running local cluster.
#[derive(Debug)]
pub(crate) struct LocalCluster {
    /// `http://127.0.0.1:PORT` of the in-process coordinator.
    pub(crate) url: String,
    /// Seconds from start until every worker had attached.
    pub(crate) startup_s: f64,
    pub(crate) workers: u32,
    children: Vec<Child>,
    stop: Option<oneshot::Sender<()>>,
}

impl LocalCluster {
    /// Starts a coordinator and `workers` worker processes, and waits until all have attached.
    ///
    /// Must be called from the thread that stays alive for the cluster's lifetime (the main
    /// thread): the children's death signal is tied to the thread that forked them.
    pub(crate) async fn start(workers: u32, debug: bool) -> anyhow::Result<Self> {
        let start = Instant::now();
        let listener = concur_coordinator::listen::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port for the local coordinator")?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut coordinator = concur_coordinator::Coordinator::open(CoordinatorConfig::default())?;
        if let Some(addr) = DASHBOARD.get() {
            let http = bind_dashboard(addr).await?;
            eprintln!(
                "dashboard of the local cluster with {workers} worker processes: http://{}/ (live while it runs)",
                http.local_addr()?
            );
            coordinator = coordinator.with_http(http);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = coordinator.serve(listener, shutdown).await {
                tracing::error!(cause = %e, "local coordinator failed");
            }
        });
        let mut cluster = Self {
            url,
            startup_s: 0.0,
            workers,
            children: Vec::new(),
            stop: Some(stop),
        };
        let exe = std::env::current_exe().context("cannot find the concur-cli executable")?;
        for _ in 0..workers {
            let child = spawn_worker(&exe, &cluster.url, debug)
                .with_context(|| format!("cannot start a local worker from {}", exe.display()))?;
            cluster.children.push(child);
        }
        let mut client = client::connect(&cluster.url).await?;
        cluster.wait_for_workers(&mut client).await?;
        cluster.startup_s = start.elapsed().as_secs_f64();
        Ok(cluster)
    }

    async fn wait_for_workers(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            let attached = client
                .list_workers(pb::ListWorkersRequest {})
                .await?
                .into_inner()
                .workers
                .len() as u32;
            if attached >= self.workers {
                return Ok(());
            }
            for child in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("a local worker exited before attaching ({status})");
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "only {attached} of {} local workers attached within {ATTACH_TIMEOUT:?}",
                    self.workers
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Kills the workers (by their own PIDs) and stops the coordinator.
    pub(crate) fn shutdown(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn_worker(exe: &std::path::Path, url: &str, debug: bool) -> std::io::Result<Child> {
    let mut command = Command::new(exe);
    command
        .args([
            "__worker",
            "--coordinator",
            url,
            "--max-attach-failures",
            "10",
        ])
        .args(
            ALLOW_EXEC
                .load(std::sync::atomic::Ordering::Relaxed)
                .then_some("--allow-exec"),
        )
        .env("RUST_LOG", if debug { "debug" } else { "warn" })
        // The local coordinator needs no credentials; none from the user's environment leak in.
        .env_remove("CONCUR_COORDINATOR")
        .env_remove("CONCUR_WORKER_TOKEN")
        .env_remove("CONCUR_WORKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let parent = std::process::id();
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn()
}
