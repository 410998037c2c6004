//! The worker's command line and config file, resolved into [`WorkerSettings`].
//!
//! Precedence: command-line flag, then environment variable, then the TOML config file, then
//! the built-in default. The config file's keys are the long flag names with `_` for `-`.

use anyhow::Context;
use concur_core::config;
use concur_core::exec::ExecPermission;
use concur_core::token::{Secret, load_token};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a drain lets running shards finish, when not configured.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Shards a worker runs at once, when not configured.
pub const DEFAULT_SLOTS: u32 = 1;
/// Leases a worker keeps queued beside its running slots, when not configured.
pub const DEFAULT_PREFETCH: u32 = 16;

/// How a worker is started; shared by `concur-worker` and local mode's hidden subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerOpts {
    /// TOML config file (keys: the long flag names with _ for -).
    #[arg(long, env = "CONCUR_WORKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Coordinator to attach to, e.g. http://10.0.0.1:7070 or https://… with TLS (http:// is
    /// assumed if left out); several, comma-separated, for an active and its standbys: the
    /// worker attaches to whichever is active.
    #[arg(long, env = "CONCUR_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Shards this worker runs at once [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub slots: Option<u32>,
    /// Host name reported to the coordinator [default: this machine's].
    #[arg(long)]
    pub host_name: Option<String>,
    /// Give up after this many failed attach attempts in a row (0 = retry forever) [default: 0].
    #[arg(long)]
    pub max_attach_failures: Option<u32>,
    /// On SIGTERM, how long to let running shards finish before handing them back [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// Worker token the coordinator expects (prefer --token-file: arguments are visible to other users).
    #[arg(long, env = "CONCUR_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the worker token.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// CA (PEM) to trust for the coordinator's TLS certificate.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// This worker's client certificate (PEM), for coordinators that require mutual TLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// This worker's client key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Threads one shard may start at most, whatever concurrency its job asks for (threads and
    /// rayon strategies, and the blocking pool of async ones) [default: 512].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_threads: Option<u32>,
    /// Leases to keep queued beside the running slots, so that no slot waits for a round
    /// trip to the coordinator; 0 for long, uneven shards that another worker could run sooner
    /// [default: 16].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub prefetch: Option<u32>,
    /// Serve Prometheus /metrics on this address (e.g. 127.0.0.1:9101; plain HTTP, counts and
    /// timings only).
    #[arg(long, env = "CONCUR_WORKER_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Run exec jobs: commands the job names, as this worker's user. Alone, any program; with
    /// a comma-separated list, only those program names or paths (as jobs spell them).
    /// Without it, exec shards fail [default: refused].
    #[arg(long, num_args = 0..=1, default_missing_value = "*", value_name = "PROGRAM,...")]
    pub allow_exec: Option<String>,
}

/// The config file's `allow_exec`: `true`, or a list of programs.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AllowExecKey {
    All(bool),
    Programs(Vec<String>),
}

/// `*` or a comma-separated list of programs.
fn exec_permission(flag: &str) -> ExecPermission {
    let programs: Vec<String> = flag
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if programs.is_empty() || programs.iter().any(|p| p == "*") {
        ExecPermission::Any
    } else {
        ExecPermission::Only(programs)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    coordinator: Option<String>,
    slots: Option<u32>,
    host_name: Option<String>,
    max_attach_failures: Option<u32>,
    #[serde(default, deserialize_with = "config::duration")]
    drain_timeout: Option<Duration>,
    token_file: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_threads: Option<u32>,
    prefetch: Option<u32>,
    metrics_listen: Option<String>,
    allow_exec: Option<AllowExecKey>,
}

/// PEM material for TLS towards the coordinator.
#[derive(Clone)]
pub struct ClientTls {
    /// CA to trust; `None` uses none beyond what the certificate chain carries.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key, for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// A worker's resolved settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Coordinator URL, with scheme.
    pub coordinator: String,
    /// Shards run at once.
    pub slots: u32,
    /// Host name reported.
    pub host_name: Option<String>,
    /// Failed attach attempts in a row before giving up (0 = never).
    pub max_attach_failures: u32,
    /// Bound on a drain.
    pub drain_timeout: Duration,
    /// Worker token.
    pub token: Option<Secret>,
    /// TLS material, when the coordinator URL is https or files were given.
    pub tls: Option<ClientTls>,
    /// Threads one shard may start at most.
    pub max_threads: u32,
    /// Leases kept queued beside the running slots.
    pub prefetch: u32,
    /// Where Prometheus /metrics is served, if anywhere.
    pub metrics_listen: Option<String>,
    /// Which programs exec jobs may run here.
    pub exec: ExecPermission,
}

impl WorkerSettings {
    /// The coordinators to try, in order (one, or an active and its standbys).
    pub fn coordinators(&self) -> Vec<String> {
        self.coordinator.split(',').map(str::to_string).collect()
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

impl WorkerOpts {
    /// Merges flags, environment and config file.
    ///
    /// # Errors
    /// No coordinator given, or an unreadable or invalid config, token or TLS file.
    pub fn resolve(self) -> anyhow::Result<WorkerSettings> {
        let file: FileSettings =
            config::load(self.config.as_deref()).map_err(anyhow::Error::msg)?;
        let coordinator = self.coordinator.or(file.coordinator).context(
            "no coordinator given: pass --coordinator URL (or set CONCUR_COORDINATOR, or `coordinator` in the config file)",
        )?;
        let coordinator = coordinator
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                if url.contains("://") {
                    url.to_string()
                } else {
                    format!("http://{url}")
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        anyhow::ensure!(!coordinator.is_empty(), "--coordinator is empty");
        let drain_timeout = self
            .drain_timeout
            .or(file.drain_timeout)
            .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
        let slots = self.slots.or(file.slots).unwrap_or(DEFAULT_SLOTS);
        anyhow::ensure!(
            (1..=1024).contains(&slots),
            "slots must be 1..=1024, got {slots}"
        );
        let token_file = self.token_file.or(file.token_file);
        let token = load_token(
            self.token,
            token_file.as_deref(),
            "--token / CONCUR_WORKER_TOKEN",
        )
        .map_err(anyhow::Error::msg)?;
        let ca = self.tls_ca.or(file.tls_ca);
        let identity = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => {
                Some((read(&cert, "TLS certificate")?, read(&key, "TLS key")?))
            }
            (None, None) => None,
            _ => anyhow::bail!("mutual TLS needs both tls_cert and tls_key"),
        };
        let tls = (coordinator.starts_with("https://") || ca.is_some() || identity.is_some())
            .then(|| -> anyhow::Result<ClientTls> {
                Ok(ClientTls {
                    ca: ca.map(|path| read(&path, "TLS CA")).transpose()?,
                    identity,
                })
            })
            .transpose()?;
        Ok(WorkerSettings {
            coordinator,
            slots,
            host_name: self.host_name.or(file.host_name),
            max_attach_failures: self
                .max_attach_failures
                .or(file.max_attach_failures)
                .unwrap_or(0),
            drain_timeout,
            token,
            tls,
            max_threads: self
                .max_threads
                .or(file.max_threads)
                .unwrap_or(crate::executor::DEFAULT_MAX_THREADS),
            prefetch: self.prefetch.or(file.prefetch).unwrap_or(DEFAULT_PREFETCH),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            exec: match (self.allow_exec, file.allow_exec) {
                (Some(flag), _) => exec_permission(&flag),
                (None, Some(AllowExecKey::All(true))) => ExecPermission::Any,
                (None, Some(AllowExecKey::Programs(list))) if list.is_empty() => {
                    ExecPermission::Denied
                }
                (None, Some(AllowExecKey::Programs(list))) => exec_permission(&list.join(",")),
                (None, Some(AllowExecKey::All(false)) | None) => ExecPermission::Denied,
            },
        })
    }
}
