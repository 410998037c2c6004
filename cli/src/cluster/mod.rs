//! `concur-cli cluster up|down|status`: workers on other machines over the system's ssh client.
//!
//! Layout:
//! - `hosts`: the hosts from the command line and a hosts file.
//! - `ssh`: the ssh command line, quoting, sessions fed on standard input, bounded fan-out.
//! - `remote`: the POSIX sh scripts run on the hosts and their `@key=value` answers.
//! - `binary`: shipping `concur-worker` when the host's copy is missing or differs (sha256).
//! - `attach`: asking the coordinator which of the started workers attached.
//! - `up`, `down`, `status`: the three commands.
//!
//! Nothing is installed on the hosts beyond files under the run directory: a POSIX sh, setsid
//! (util-linux) and, to skip copies of an unchanged binary, sha256sum are all it needs.

mod attach;
mod binary;
mod down;
mod hosts;
mod remote;
mod ssh;
mod status;
mod up;

use crate::args::{GlobalOpts, OutputFormat};
use crate::exit::{CliError, Exit};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::PathBuf;

pub(crate) use down::ClusterDownOpts;
pub(crate) use status::ClusterStatusOpts;
pub(crate) use up::ClusterUpOpts;

/// The run directory on each host when none is given: where `deploy/ssh-workers.sh` kept its
/// files, so workers started by the script are found by `cluster down` and `status`.
pub(crate) const DEFAULT_RUN_DIR: &str = ".concur/ssh-workers";

/// How long `down` waits for a drain by default: above the worker's default 30 s
/// `--drain-timeout`, so a drain is never cut short.
pub(crate) const DEFAULT_STOP_TIMEOUT_S: u64 = 45;

/// The `cluster` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Copy concur-worker where it is missing or different, start one detached worker per host,
    /// wait until every one attached.
    #[command(after_help = up::EXAMPLES)]
    Up(ClusterUpOpts),
    /// Drain the workers (SIGTERM to the recorded PID) and wait until they exit.
    #[command(after_help = down::EXAMPLES)]
    Down(ClusterDownOpts),
    /// Per host: does the worker run (pid), is it attached, the log's last lines.
    #[command(after_help = status::EXAMPLES)]
    Status(ClusterStatusOpts),
}

/// Which hosts, and how to reach them: shared by the three commands.
#[derive(Debug, Args)]
pub(crate) struct ClusterTargetOpts {
    /// Hosts as ssh takes them: [user@]name, an address, or an alias of your ssh config.
    #[arg(value_name = "HOST")]
    pub(crate) hosts: Vec<String>,
    /// File with more hosts, one per line (blank lines and # comments ignored).
    #[arg(long, value_name = "FILE")]
    pub(crate) hosts_file: Option<PathBuf>,
    /// Directory on the hosts (relative to the login directory unless absolute) holding the
    /// binary, and per host HOST/worker.pid, worker.log and token.
    #[arg(long, env = "CONCUR_RUN_DIR", default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub(crate) run_dir: String,
    /// ssh configuration file (ssh -F).
    #[arg(short = 'F', long, value_name = "FILE")]
    pub(crate) ssh_config: Option<PathBuf>,
    /// ssh option (ssh -o OPTION), repeatable; BatchMode=yes is always set.
    #[arg(short = 'o', long = "ssh-option", value_name = "OPTION")]
    pub(crate) ssh_options: Vec<String>,
    /// ssh's ConnectTimeout, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub(crate) connect_timeout: u32,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) parallel: u16,
}

impl ClusterTargetOpts {
    /// The checked hosts.
    ///
    /// # Errors
    /// See [`hosts::collect`].
    fn hosts(&self) -> Result<Vec<hosts::Host>, CliError> {
        hosts::collect(&self.hosts, self.hosts_file.as_deref())
    }

    fn ssh(&self) -> ssh::Ssh {
        ssh::Ssh::new(
            self.ssh_config.as_deref(),
            &self.ssh_options,
            self.connect_timeout,
        )
    }
}

/// What happened on one host, for people (one `HOST: ...` line each) and for `--output json`
/// (every key always present, `null` when it does not apply).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct HostReport {
    /// The host as given.
    pub(crate) host: String,
    /// Whether the host did what was asked.
    pub(crate) ok: bool,
    /// The worker's state there: started, already-running, running, not-running, stopped, ...
    pub(crate) state: Option<String>,
    /// The worker's PID on that host.
    pub(crate) pid: Option<u32>,
    /// The host name the worker reports to the coordinator.
    pub(crate) worker_host: Option<String>,
    /// `copied` or `up-to-date` (`up` shipping its binary), else null.
    pub(crate) binary: Option<&'static str>,
    /// Attached to the coordinator; null when not checked or the coordinator was not reached.
    pub(crate) attached: Option<bool>,
    /// Why the host failed.
    pub(crate) error: Option<String>,
}

impl HostReport {
    fn new(host: &hosts::Host) -> Self {
        Self {
            host: host.target.clone(),
            ..Self::default()
        }
    }

    fn failed(mut self, error: String) -> Self {
        self.ok = false;
        self.error = Some(error);
        self
    }
}

/// Prints `HOST: line` for each line (human output only: JSON comes once at the end).
fn say<S: AsRef<str>>(format: OutputFormat, host: &str, lines: &[S]) {
    if format == OutputFormat::Human {
        for line in lines {
            crate::stdout::outln!("{host}: {}", line.as_ref());
        }
    }
}

/// Prints the hosts that failed, in one closing line, and picks the exit code.
fn finish(format: OutputFormat, what: &str, reports: &[HostReport]) -> Exit {
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.host.as_str())
        .collect();
    if format == OutputFormat::Json {
        crate::output::print_json(&serde_json::json!({ "hosts": reports }));
    } else if !failed.is_empty() {
        eprintln!(
            "{what} failed on {} of {} hosts: {}",
            failed.len(),
            reports.len(),
            failed.join(", ")
        );
    }
    if failed.is_empty() {
        Exit::Success
    } else {
        Exit::No
    }
}

/// Runs a `cluster` subcommand.
///
/// # Errors
/// Usage errors (exit 2); a host that fails is exit 1, not an error.
pub(crate) async fn run(global: &GlobalOpts, command: ClusterCommand) -> Result<Exit, CliError> {
    match command {
        ClusterCommand::Up(opts) => up::run(global, opts).await,
        ClusterCommand::Down(opts) => down::run(global, opts).await,
        ClusterCommand::Status(opts) => status::run(global, opts).await,
    }
}

/// Whole seconds from `45`, `45s` or `2m`: the remote wait loop counts seconds.
fn parse_seconds(text: &str) -> Result<u64, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|e| format!("not a duration ({e}); e.g. 45 or 45s or 2m"))
}
