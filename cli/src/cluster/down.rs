//! `cluster down`: SIGTERM every host's recorded worker first, then wait for each, so the
//! drains run side by side; `--force` SIGKILLs one that outlives `--stop-timeout`.

use super::hosts::Host;
use super::remote::{self, Answer, Vars};
use super::ssh::{Input, Ssh, for_each_host};
use super::{ClusterTargetOpts, DEFAULT_STOP_TIMEOUT_S, HostReport, finish, parse_seconds, say};
use crate::args::{GlobalOpts, OutputFormat};
use crate::exit::{CliError, Exit};
use clap::Args;

pub(super) const EXAMPLES: &str = "Examples:
  concur-cli cluster down node1 node2
  concur-cli cluster down --hosts-file hosts.txt --stop-timeout 90 --force

Each worker gets SIGTERM (exactly the recorded PID, after checking it is still the worker that
was started; never a match by name): it takes no new shards, finishes the ones it runs, then
exits. Exit: 0 every worker stopped (or was not running), 1 some host failed, 2 usage error.";

/// `concur-cli cluster down`.
#[derive(Debug, Args)]
pub(crate) struct ClusterDownOpts {
    #[command(flatten)]
    pub(crate) target: ClusterTargetOpts,
    /// How long to wait for a drain (keep it above the worker's --drain-timeout, 30 s by
    /// default).
    #[arg(long, default_value_t = DEFAULT_STOP_TIMEOUT_S, value_parser = parse_seconds, value_name = "SECONDS")]
    pub(crate) stop_timeout: u64,
    /// SIGKILL a worker still running after --stop-timeout.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Runs `cluster down`.
///
/// # Errors
/// Usage errors (exit 2).
pub(crate) async fn run(global: &GlobalOpts, opts: ClusterDownOpts) -> Result<Exit, CliError> {
    let hosts = opts.target.hosts()?;
    let reports = stop(
        &opts.target.ssh(),
        &hosts,
        &opts.target.run_dir,
        opts.target.parallel.into(),
        opts.stop_timeout,
        opts.force,
        global.output,
    )
    .await;
    Ok(finish(global.output, "down", &reports))
}

/// Signals every host's worker, then waits for each; prints `HOST: ...` lines as they come.
pub(super) async fn stop(
    ssh: &Ssh,
    hosts: &[Host],
    run_dir: &str,
    parallel: usize,
    stop_timeout: u64,
    force: bool,
    format: OutputFormat,
) -> Vec<HostReport> {
    let script = |host: &Host, body: &str| {
        Vars::default()
            .set("run_dir", run_dir)
            .set("name", host.name())
            .set("stop_timeout", stop_timeout.to_string())
            .set("force", if force { "yes" } else { "no" })
            .script(body)
    };
    let signalled = for_each_host(hosts, parallel, |host| {
        let script = script(&host, remote::SIGNAL);
        async move { session(ssh, &host, script, format).await }
    })
    .await;
    let waited = for_each_host(hosts, parallel, |host| {
        let draining = signalled
            .iter()
            .any(|r| r.host == host.target && r.ok && r.state.as_deref() == Some("draining"));
        let script = script(&host, remote::WAIT);
        async move {
            if draining {
                Some(session(ssh, &host, script, format).await)
            } else {
                None
            }
        }
    })
    .await;
    signalled
        .into_iter()
        .zip(waited)
        .map(|(signalled, waited)| {
            let pid = signalled.pid;
            let mut report = waited.unwrap_or(signalled);
            report.pid = report.pid.or(pid);
            report
        })
        .collect()
}

/// Runs one script on `host` and turns its answer into a report.
async fn session(ssh: &Ssh, host: &Host, script: String, format: OutputFormat) -> HostReport {
    let mut report = HostReport::new(host);
    let session = match ssh.run(host, "sh -s", Input::Script(script)).await {
        Ok(session) => session,
        Err(e) => return report.failed(e.to_string()),
    };
    let answer = Answer::parse(&session.stdout);
    say(format, &host.target, &answer.text);
    report.state = answer.get("state").map(str::to_string);
    report.pid = answer.pid();
    if !session.ok() {
        let why = session.failure();
        say(format, &host.target, &[&why]);
        return report.failed(why);
    }
    report.ok = true;
    report
}
