//! `cluster up`: ship the worker binary where needed, start one detached worker per host with
//! its token sent over ssh's standard input, wait until all attached; Ctrl-C tears down what
//! this run started.

use super::attach::{self, Expected, Waited};
use super::binary::{self, Copied, LocalBinary};
use super::hosts::Host;
use super::remote::{self, Answer, Vars};
use super::ssh::{Input, Ssh, for_each_host, sh_quote};
use super::{ClusterTargetOpts, HostReport, finish, say};
use crate::args::{GlobalOpts, OutputFormat};
use crate::exit::{CliError, Exit};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub(super) const EXAMPLES: &str = "Examples:
  concur-cli cluster up -c http://10.0.0.1:7070 --token-file deploy/secrets/worker-token node1 node2
  concur-cli cluster up -c http://10.0.0.1:7070 --hosts-file hosts.txt --slots 4 \\
      --worker-arg=--tls-ca=/etc/concur/ca.crt -F ~/.ssh/lab_config
  concur-cli cluster up -c http://10.0.0.1:7070 --bin /usr/local/bin/concur-worker --no-wait node1

The worker binary is copied to RUN_DIR/concur-worker on each host where it is missing or its
sha256 differs (`concur-worker` beside this executable, or --copy-bin FILE); --bin PATH uses a
binary already there. The token is sent over ssh's standard input and written to
RUN_DIR/HOST/token (mode 0600): it is on no command line, here or there. Ctrl-C while starting
or waiting drains the workers this run started. Exit: 0 every host started and attached, 1 some
did not (named), 2 usage error, 130 interrupted. More: docs/cluster.md";

/// Which host name a worker reports to the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HostNameFrom {
    /// The ssh HOST (without user@), as given here.
    Ssh,
    /// The machine's own name (`uname -n` there).
    Host,
}

/// `concur-cli cluster up`.
#[derive(Debug, Args)]
pub(crate) struct ClusterUpOpts {
    #[command(flatten)]
    pub(crate) target: ClusterTargetOpts,
    /// Coordinator the workers dial (several, comma-separated: an active and its standbys);
    /// also where `up` checks that they attached.
    #[arg(short = 'c', long, env = "CONCUR_COORDINATOR", value_name = "URL")]
    pub(crate) coordinator: Option<String>,
    /// Local file with the worker token (CONCUR_WORKER_TOKEN may hold the token itself).
    #[arg(long, value_name = "FILE", conflicts_with = "remote_token_file")]
    pub(crate) token_file: Option<PathBuf>,
    /// A worker token file already on the hosts.
    #[arg(long, value_name = "PATH")]
    pub(crate) remote_token_file: Option<String>,
    /// Shards each worker runs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) slots: u32,
    /// One more argument for concur-worker, repeatable (e.g. --worker-arg=--tls-ca=/ca.crt).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub(crate) worker_arg: Vec<String>,
    /// concur-worker already on the hosts (a path, or a name on their PATH): nothing is copied.
    #[arg(
        long,
        env = "CONCUR_WORKER_BIN",
        value_name = "PATH",
        conflicts_with = "copy_bin"
    )]
    pub(crate) bin: Option<String>,
    /// Local worker binary to copy [default: concur-worker beside concur-cli].
    #[arg(long, value_name = "FILE")]
    pub(crate) copy_bin: Option<PathBuf>,
    /// Host name each worker reports: the ssh HOST, or the machine's own.
    #[arg(long, value_enum, default_value_t = HostNameFrom::Ssh)]
    pub(crate) host_name_from: HostNameFrom,
    /// How long to wait for every worker to attach.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) wait_timeout: Duration,
    /// Start the workers, do not wait for them to attach.
    #[arg(long)]
    pub(crate) no_wait: bool,
}

/// Everything a host's start needs, shared by the concurrent starts.
#[derive(Debug)]
struct Plan {
    ssh: Ssh,
    run_dir: String,
    coordinator: String,
    token: Option<String>,
    remote_token_file: Option<String>,
    slots: u32,
    extra: String,
    bin: Option<String>,
    binary: Option<LocalBinary>,
    host_name_from: HostNameFrom,
    format: OutputFormat,
    /// Hosts whose start script was sent: what Ctrl-C tears down.
    sent: Mutex<Vec<Host>>,
}

/// The worker token: from `--token-file` (line endings trimmed) or `CONCUR_WORKER_TOKEN`.
fn token(opts: &ClusterUpOpts) -> Result<Option<String>, CliError> {
    let token = match &opts.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    CliError::Input(format!("cannot read token file {}: {e}", path.display()))
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
        None => std::env::var("CONCUR_WORKER_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    match token {
        Some(t) if t.is_empty() || t.contains(['\n', '\r']) => Err(CliError::Input(
            "the worker token must be one non-empty line".into(),
        )),
        Some(_) if opts.remote_token_file.is_some() => Err(CliError::Input(
            "give either a token (--token-file, CONCUR_WORKER_TOKEN) or --remote-token-file, not both".into(),
        )),
        token => Ok(token),
    }
}

/// Runs `cluster up`.
///
/// # Errors
/// Usage errors (exit 2).
pub(crate) async fn run(global: &GlobalOpts, opts: ClusterUpOpts) -> Result<Exit, CliError> {
    let hosts = opts.target.hosts()?;
    let coordinator = opts
        .coordinator
        .clone()
        .or_else(|| global.coordinator.clone())
        .ok_or_else(|| {
            CliError::Input("up: give --coordinator URL (or set CONCUR_COORDINATOR)".into())
        })?;
    let token = token(&opts)?;
    let binary = match opts.bin {
        Some(_) => None,
        None => Some(binary::local_binary(opts.copy_bin.as_deref())?),
    };
    let plan = Arc::new(Plan {
        ssh: opts.target.ssh(),
        run_dir: opts.target.run_dir.clone(),
        coordinator: coordinator.clone(),
        token,
        remote_token_file: opts.remote_token_file.clone(),
        slots: opts.slots,
        extra: opts
            .worker_arg
            .iter()
            .map(|a| sh_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        bin: opts.bin.clone(),
        binary,
        host_name_from: opts.host_name_from,
        format: global.output,
        sent: Mutex::new(Vec::new()),
    });
    let interrupt = listen_for_ctrl_c();

    let mut reports = for_each_host(&hosts, opts.target.parallel.into(), |host| {
        let plan = Arc::clone(&plan);
        let mut interrupt = interrupt.clone();
        async move { start(&plan, &host, &mut interrupt).await }
    })
    .await;
    if *interrupt.borrow() {
        return Ok(tear_down(&plan, &opts.target).await);
    }

    if !opts.no_wait {
        let waiting: Vec<usize> = (0..reports.len())
            .filter(|&i| reports[i].ok && reports[i].pid.is_some())
            .collect();
        let expected: Vec<Expected> = waiting
            .iter()
            .map(|&i| Expected {
                worker_host: reports[i].worker_host.clone().unwrap_or_default(),
                pid: reports[i].pid.unwrap_or_default(),
            })
            .collect();
        let labels: Vec<String> = waiting.iter().map(|&i| reports[i].host.clone()).collect();
        if !expected.is_empty() {
            let mut interrupt = interrupt.clone();
            match attach::wait(
                &coordinator,
                &expected,
                &labels,
                opts.wait_timeout,
                &mut interrupt,
            )
            .await
            {
                Waited::Interrupted => return Ok(tear_down(&plan, &opts.target).await),
                Waited::Done(seen, problem) => {
                    for (&i, attached) in waiting.iter().zip(seen) {
                        let report = &mut reports[i];
                        report.attached = Some(attached);
                        if !attached {
                            let why = match &problem {
                                Some(p) => format!("not attached: {p}"),
                                None => format!(
                                    "not attached within {} (see the worker's log: concur-cli cluster status --log-lines 20 {})",
                                    humantime::format_duration(opts.wait_timeout),
                                    report.host
                                ),
                            };
                            *report = std::mem::take(report).failed(why.clone());
                            say(global.output, &report.host, &[why]);
                        }
                    }
                    let count = reports.iter().filter(|r| r.attached == Some(true)).count();
                    if global.output == OutputFormat::Human && count == expected.len() {
                        eprintln!("attached: all {count} workers");
                    }
                }
            }
        }
    }
    Ok(finish(global.output, "up", &reports))
}

/// A watch that turns true on the first Ctrl-C (SIGINT).
fn listen_for_ctrl_c() -> watch::Receiver<bool> {
    let (fire, fired) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = fire.send(true);
        }
    });
    fired
}

/// Ships the binary if needed, then runs the start script on `host`.
async fn start(plan: &Plan, host: &Host, interrupt: &mut watch::Receiver<bool>) -> HostReport {
    const SKIPPED: &str = "interrupted before starting";
    let mut report = HostReport::new(host);
    if *interrupt.borrow() {
        return report.failed(SKIPPED.into());
    }
    if let Some(binary) = &plan.binary {
        // A copy may be cut short by Ctrl-C: nothing runs yet, the next `up` copies again.
        let copied = tokio::select! {
            copied = binary::ensure(&plan.ssh, host, &plan.run_dir, binary) => copied,
            _ = interrupt.wait_for(|fired| *fired) => return report.failed(SKIPPED.into()),
        };
        match copied {
            Ok(copied) => {
                let (word, line) = match copied {
                    Copied::Copied => ("copied", "binary copied"),
                    Copied::UpToDate => ("up-to-date", "binary up to date"),
                };
                report.binary = Some(word);
                say(
                    plan.format,
                    &host.target,
                    &[format!("{line} (sha256 {})", &binary.sha256[..12])],
                );
            }
            Err(e) => {
                say(plan.format, &host.target, &[&e]);
                return report.failed(e);
            }
        }
    }
    if *interrupt.borrow() {
        return report.failed(SKIPPED.into());
    }
    let report_name = match plan.host_name_from {
        HostNameFrom::Ssh => host.name(),
        HostNameFrom::Host => "",
    };
    let script = Vars::default()
        .set("run_dir", &plan.run_dir)
        .set("name", host.name())
        .set("coordinator", &plan.coordinator)
        .set("slots", plan.slots.to_string())
        .set("report_name", report_name)
        .set("token", plan.token.as_deref().unwrap_or(""))
        .set(
            "remote_token_file",
            plan.remote_token_file.as_deref().unwrap_or(""),
        )
        .set("bin", plan.bin.as_deref().unwrap_or(""))
        .set("extra", &plan.extra)
        .script(remote::START);
    plan.sent.lock().expect("sent hosts").push(host.clone());
    // Not raced with Ctrl-C: the script takes about a second, and once it ran we know the PID.
    let session = match plan.ssh.run(host, "sh -s", Input::Script(script)).await {
        Ok(session) => session,
        Err(e) => return report.failed(e.to_string()),
    };
    let answer = Answer::parse(&session.stdout);
    if answer.get("state") == Some("already-running") {
        // Not ours: Ctrl-C leaves it alone.
        plan.sent.lock().expect("sent hosts").retain(|h| h != host);
    }
    say(plan.format, &host.target, &answer.text);
    report.state = answer.get("state").map(str::to_string);
    report.pid = answer.pid();
    report.worker_host = answer.get("node").map(str::to_string);
    if !session.ok() {
        let why = session.failure();
        say(plan.format, &host.target, &[&why]);
        return report.failed(why);
    }
    report.ok = true;
    report
}

/// After Ctrl-C: drains the workers this run sent a start to, then exit 130.
async fn tear_down(plan: &Plan, target: &ClusterTargetOpts) -> Exit {
    let hosts = plan.sent.lock().expect("sent hosts").clone();
    eprintln!(
        "interrupted: draining the {} worker(s) this run started",
        hosts.len()
    );
    let stop = super::down::stop(
        &plan.ssh,
        &hosts,
        &plan.run_dir,
        target.parallel.into(),
        super::DEFAULT_STOP_TIMEOUT_S,
        false,
        plan.format,
    );
    // A second Ctrl-C stops waiting for the drains (the workers have their SIGTERM already).
    tokio::select! {
        _ = stop => {}
        _ = tokio::signal::ctrl_c() => eprintln!(
            "interrupted again: not waiting for the drains (concur-cli cluster down waits for them)"
        ),
    }
    Exit::Interrupted
}
