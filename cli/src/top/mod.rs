//! `concur-cli top`: a live view of the coordinator's workers and jobs, polled every interval
//! through ListWorkers and ListJobs; one plain snapshot when stdout is not a terminal.
//!
//! Layout: `model` turns polls into rows (with rates and ETAs), `plain` prints a snapshot,
//! `tui` draws the live view.

mod model;
mod plain;
mod tui;

use crate::args::GlobalOpts;
use crate::client::{self, Client};
use crate::exit::{CliError, Exit};
use concur_proto::pb;
use model::Poll;
use std::io::IsTerminal;
use std::time::Duration;

/// Options of `concur-cli top`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  concur-cli --coordinator http://127.0.0.1:7070 top                # live; q, Esc or Ctrl-C quits
  concur-cli top --interval 500ms --jobs 50                         # with CONCUR_COORDINATOR set
  concur-cli top --once                                             # one plain snapshot
  concur-cli --output json top --once                               # the snapshot as JSON

Workers: id, host:pid, slots, running shards, state, shards done, last heartbeat. Jobs (newest
first): state, progress, items done/failed, rate (items/s between the last two polls; since
submission on the first; items count as shards commit, so it moves in steps) and ETA. When stdout is not a terminal, top prints one snapshot and
exits, as with --once.")]
pub(crate) struct TopOpts {
    /// Time between polls.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub(crate) interval: Duration,
    /// Print one plain snapshot and exit (the default when stdout is not a terminal).
    #[arg(long)]
    pub(crate) once: bool,
    /// Most recent jobs to show.
    #[arg(long = "jobs", default_value_t = 20, value_parser = crate::compare::parse_positive)]
    pub(crate) jobs: u32,
}

/// At least 100 ms: faster polling only loads the coordinator.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if interval < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(interval)
}

/// One poll: the workers and the `limit` most recent jobs.
///
/// # Errors
/// The coordinator refused or went away.
pub(crate) async fn poll(client: &mut Client, limit: u32) -> Result<Poll, CliError> {
    let workers = crate::client::list_workers(client).await?;
    let answer = client
        .list_jobs(pb::ListJobsRequest {
            states: Vec::new(),
            limit,
        })
        .await?
        .into_inner();
    Ok(Poll {
        workers,
        jobs: answer.jobs,
        matched: answer.matched,
    })
}

/// Runs `top`.
pub(crate) async fn run(global: &GlobalOpts, opts: TopOpts) -> Result<Exit, CliError> {
    let address = global.coordinator.as_deref().ok_or_else(|| {
        CliError::Input(
            "top needs a running coordinator: pass --coordinator URL or set CONCUR_COORDINATOR"
                .into(),
        )
    })?;
    let url = client::normalize(address);
    let mut client = client::connect(address).await?;
    if opts.once || !std::io::stdout().is_terminal() {
        let now = poll(&mut client, opts.jobs).await?;
        plain::print(global.output, &model::view(&url, None, &now));
        return Ok(Exit::Success);
    }
    tui::run(&mut client, &url, opts.interval, opts.jobs).await?;
    Ok(Exit::Success)
}
