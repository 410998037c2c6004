//! Waiting for a job: follow its progress stream (with a progress bar on a terminal), then
//! print the report. Ctrl-C cancels the job. A coordinator that goes away mid-wait (a restart)
//! is reconnected to for up to [`RECONNECT_FOR`], and the wait goes on.

use crate::args::{ItemsShown, OutputFormat};
use crate::client::{self, Client};
use crate::exit::{CliError, Exit};
use crate::{progress, report};
use concur_proto::convert::job_state_from_i32;
use concur_proto::pb;
use indicatif::ProgressBar;
use std::time::{Duration, Instant};

/// How long a wait keeps reconnecting to a coordinator that went away.
pub(crate) const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// Waits for `job_id` to finish, prints its report, and maps its state to an exit outcome.
pub(crate) async fn wait_and_report(
    address: &str,
    client: &mut Client,
    job_id: u64,
    format: OutputFormat,
    items: Option<ItemsShown>,
) -> Result<Exit, CliError> {
    let bar = progress::enabled(format).then(|| progress::job_bar(&format!("job {job_id}")));
    let quiet = format == OutputFormat::Json;
    let finished = follow(address, client, job_id, bar.as_ref(), quiet).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !finished {
        return Ok(Exit::Interrupted);
    }
    report::print(client, job_id, format, items).await
}

/// Follows `job_id` until it ends, moving `bar` along; `quiet` keeps reconnection notes off
/// stderr. Returns false when the user pressed Ctrl-C, after asking the coordinator to cancel
/// the job.
pub(crate) async fn follow(
    address: &str,
    client: &mut Client,
    job_id: u64,
    bar: Option<&ProgressBar>,
    quiet: bool,
) -> Result<bool, CliError> {
    let interrupted = tokio::select! {
        result = wait(address, client, job_id, bar, quiet) => { result?; false }
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        eprintln!("interrupted: cancelling job {job_id}");
        let _ = client.cancel_job(pb::CancelJobRequest { job_id }).await;
    }
    Ok(!interrupted)
}

/// Whether an error means the coordinator (or the way to it) went away, not that it refused.
fn went_away(error: &CliError) -> bool {
    matches!(error, CliError::Unreachable(_))
}

async fn wait(
    address: &str,
    client: &mut Client,
    job_id: u64,
    bar: Option<&ProgressBar>,
    quiet: bool,
) -> Result<(), CliError> {
    let mut lost_since: Option<Instant> = None;
    let mut told = false;
    loop {
        match watch_once(client, job_id, bar).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) if went_away(&e) => {}
            Err(e) => return Err(e),
        }
        // The stream ended before the job did: the coordinator stopped. Reconnect.
        let since = *lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() > RECONNECT_FOR {
            return Err(CliError::Unreachable(format!(
                "lost the coordinator at {address} while waiting for job {job_id}, and it has not come back within {RECONNECT_FOR:?}; the job may still finish: concur-cli job {job_id} --wait"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        match client::connect(address).await {
            Ok(fresh) => {
                *client = fresh;
                lost_since = None;
                if told && !quiet {
                    eprintln!("reconnected; still waiting for job {job_id}");
                }
                told = false;
            }
            Err(_) if !told && !quiet => {
                eprintln!(
                    "lost the coordinator at {address} while waiting for job {job_id}; reconnecting (for up to {} s)",
                    RECONNECT_FOR.as_secs()
                );
                told = true;
            }
            Err(_) => {}
        }
    }
}

/// Watches until the job is final (true) or the stream ends early (false).
async fn watch_once(
    client: &mut Client,
    job_id: u64,
    bar: Option<&ProgressBar>,
) -> Result<bool, CliError> {
    let mut stream = client
        .watch_job(pb::WatchJobRequest { job_id })
        .await?
        .into_inner();
    while let Some(progress) = stream.message().await? {
        if let Some(bar) = bar {
            bar.set_length(progress.items_total);
            bar.set_position(progress.items_done);
        }
        if job_state_from_i32(progress.state).is_final() {
            // Read the stream to its end: dropping it early resets it, and a long-lived
            // connection that resets stream after stream is cut off by the server's h2 guard.
            while stream.message().await.ok().flatten().is_some() {}
            return Ok(true);
        }
    }
    Ok(false)
}
