//! Waiting for a job: follow its progress stream (with a progress bar on a terminal), then
//! fetch and print the report. Ctrl-C cancels the job.

use crate::args::OutputFormat;
use crate::client::Client;
use crate::exit::{CliError, Outcome};
use crate::{output, progress};
use concur_core::report::{JobReport, JobState};
use concur_proto::convert::{job_report, job_state_from_i32};
use concur_proto::pb;
use indicatif::ProgressBar;

/// Waits for `job_id` to finish, prints its report, and maps its state to an exit outcome.
pub(crate) async fn wait_and_report(
    client: &mut Client,
    job_id: u64,
    format: OutputFormat,
) -> Result<Outcome, CliError> {
    let bar = progress::enabled(format).then(|| progress::job_bar(&format!("job {job_id}")));
    let finished = follow(client, job_id, bar.as_ref()).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !finished {
        return Ok(Outcome::Interrupted);
    }
    print_report(client, job_id, format).await
}

/// Follows `job_id` until it ends, moving `bar` along. Returns false when the user pressed
/// Ctrl-C, after asking the coordinator to cancel the job.
pub(crate) async fn follow(
    client: &mut Client,
    job_id: u64,
    bar: Option<&ProgressBar>,
) -> Result<bool, CliError> {
    let interrupted = tokio::select! {
        result = wait(client, job_id, bar) => { result?; false }
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        eprintln!("interrupted: cancelling job {job_id}");
        let _ = client.cancel_job(pb::CancelJobRequest { job_id }).await;
    }
    Ok(!interrupted)
}

/// The report of `job_id`, with every derived figure.
pub(crate) async fn fetch_report(client: &mut Client, job_id: u64) -> Result<JobReport, CliError> {
    let report = client
        .get_job(pb::GetJobRequest { job_id })
        .await?
        .into_inner();
    Ok(job_report(&report))
}

/// Fetches the report of `job_id` and prints it.
pub(crate) async fn print_report(
    client: &mut Client,
    job_id: u64,
    format: OutputFormat,
) -> Result<Outcome, CliError> {
    let report = fetch_report(client, job_id).await?;
    output::print_report(format, &report);
    Ok(match report.state {
        JobState::Succeeded | JobState::Pending | JobState::Running => Outcome::Success,
        JobState::Failed | JobState::Cancelled => Outcome::No,
    })
}

async fn wait(client: &mut Client, job_id: u64, bar: Option<&ProgressBar>) -> Result<(), CliError> {
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
            return Ok(());
        }
    }
    Err(CliError::Input(format!(
        "the coordinator closed the progress stream of job {job_id} before it finished"
    )))
}
