//! `cluster status`: per host, whether the worker runs (and its PID), whether the coordinator
//! lists it as attached, and the last lines of its log.

use super::ClusterTargetOpts;
use super::attach::{self, Expected};
use super::hosts::Host;
use super::remote::{self, Answer, Vars};
use super::ssh::{Input, for_each_host};
use crate::args::{GlobalOpts, OutputFormat};
use crate::exit::{CliError, Exit};
use crate::stdout::outln;
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

pub(super) const EXAMPLES: &str = "Examples:
  concur-cli cluster status node1 node2
  concur-cli cluster status -c http://10.0.0.1:7070 --hosts-file hosts.txt --log-lines 20
  concur-cli cluster status --json node1 node2 | jq '.hosts[] | {host, running, attached}'

`attached` is checked when a coordinator is given (-c or CONCUR_COORDINATOR): the worker is
listed there with the host name and PID it was started with. Exit: 0 every worker runs (and is
attached, when checked), 1 some does not or a host failed, 2 usage error.";

/// `concur-cli cluster status`.
#[derive(Debug, Args)]
pub(crate) struct ClusterStatusOpts {
    #[command(flatten)]
    pub(crate) target: ClusterTargetOpts,
    /// Coordinator to ask whether the workers are attached (optional).
    #[arg(short = 'c', long, env = "CONCUR_COORDINATOR", value_name = "URL")]
    pub(crate) coordinator: Option<String>,
    /// Last lines of each worker's log to show.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(crate) log_lines: u32,
    /// One JSON object (same as --output json).
    #[arg(long)]
    pub(crate) json: bool,
}

/// One host's status; the JSON keys are stable.
#[derive(Debug, Default, Serialize)]
struct HostStatus {
    host: String,
    running: bool,
    pid: Option<u32>,
    /// The host name the worker reports to the coordinator.
    worker_host: Option<String>,
    /// null: not checked (no coordinator given, or it could not be asked).
    attached: Option<bool>,
    log_file: Option<String>,
    log: Vec<String>,
    /// Why the host could not be asked.
    error: Option<String>,
}

/// Runs `cluster status`.
///
/// # Errors
/// Usage errors (exit 2).
pub(crate) async fn run(global: &GlobalOpts, opts: ClusterStatusOpts) -> Result<Exit, CliError> {
    let hosts = opts.target.hosts()?;
    let format = if opts.json {
        OutputFormat::Json
    } else {
        global.output
    };
    let ssh = opts.target.ssh();
    let run_dir = opts.target.run_dir.clone();
    let log_lines = opts.log_lines;
    let mut statuses = for_each_host(&hosts, opts.target.parallel.into(), |host: Host| {
        let script = Vars::default()
            .set("run_dir", &run_dir)
            .set("name", host.name())
            .set("log_lines", log_lines.to_string())
            .script(remote::STATUS);
        let ssh = &ssh;
        async move {
            let mut status = HostStatus {
                host: host.target.clone(),
                ..HostStatus::default()
            };
            match ssh.run(&host, "sh -s", Input::Script(script)).await {
                Err(e) => status.error = Some(e.to_string()),
                Ok(session) if !session.ok() => status.error = Some(session.failure()),
                Ok(session) => {
                    let answer = Answer::parse(&session.stdout);
                    status.running = answer.get("state") == Some("running");
                    status.pid = answer.pid();
                    status.worker_host = answer.get("node").map(str::to_string);
                    status.log_file = answer.get("log").map(str::to_string);
                    status.log = answer.all("line").to_vec();
                }
            }
            status
        }
    })
    .await;

    let coordinator = opts
        .coordinator
        .clone()
        .or_else(|| global.coordinator.clone());
    let mut coordinator_error = None;
    if let Some(address) = &coordinator {
        let running: Vec<usize> = (0..statuses.len())
            .filter(|&i| statuses[i].running)
            .collect();
        let expected: Vec<Expected> = running
            .iter()
            .map(|&i| Expected {
                worker_host: statuses[i].worker_host.clone().unwrap_or_default(),
                pid: statuses[i].pid.unwrap_or_default(),
            })
            .collect();
        match attach::attached_now(address, &expected).await {
            Ok(seen) => {
                for status in statuses.iter_mut() {
                    status.attached = Some(false);
                }
                for (&i, attached) in running.iter().zip(seen) {
                    statuses[i].attached = Some(attached);
                }
            }
            Err(e) => coordinator_error = Some(e.to_string()),
        }
    }

    let healthy = statuses
        .iter()
        .all(|s| s.error.is_none() && s.running && s.attached != Some(false));
    match format {
        OutputFormat::Json => crate::output::print_json(&serde_json::json!({
            "hosts": statuses,
            "coordinator": coordinator,
            "coordinator_error": coordinator_error,
        })),
        OutputFormat::Human => print_human(&statuses, coordinator_error.as_deref()),
    }
    Ok(if healthy { Exit::Success } else { Exit::No })
}

fn print_human(statuses: &[HostStatus], coordinator_error: Option<&str>) {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_header(["host", "worker", "pid", "attached", "log"]);
    for s in statuses {
        let worker = match (&s.error, s.running) {
            (Some(_), _) => "unreachable",
            (None, true) => "running",
            (None, false) => "not running",
        };
        let attached = match s.attached {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        table.add_row([
            s.host.clone(),
            worker.to_string(),
            s.pid.map_or("-".into(), |p| p.to_string()),
            attached.to_string(),
            s.log_file.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    outln!("{table}");
    if let Some(e) = coordinator_error {
        outln!("attached: not checked, the coordinator could not be asked: {e}");
    }
    for s in statuses {
        if let Some(e) = &s.error {
            outln!("{}: {e}", s.host);
        }
        for line in s.log.iter().filter(|l| !l.trim().is_empty()) {
            outln!("{}: | {line}", s.host);
        }
    }
}
