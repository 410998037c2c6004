//! Waiting for a job: follow its progress stream (with a progress bar on a terminal), then
//! fetch and print the report. Ctrl-C cancels the job.

use crate::args::OutputFormat;
use crate::client::Client;
use crate::exit::{CliError, Outcome};
use crate::output;
use concur_core::report::JobState;
use concur_proto::convert::{job_report, job_state_from_i32};
use concur_proto::pb;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Waits for `job_id` to finish, prints its report, and maps its state to an exit outcome.
pub(crate) async fn wait_and_report(
    client: &mut Client,
    job_id: u64,
    format: OutputFormat,
) -> Result<Outcome, CliError> {
    let interrupted = tokio::select! {
        result = wait(client, job_id, format) => { result?; false }
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        eprintln!("interrupted: cancelling job {job_id}");
        let _ = client.cancel_job(pb::CancelJobRequest { job_id }).await;
        return Ok(Outcome::Interrupted);
    }
    print_report(client, job_id, format).await
}

/// Fetches the report of `job_id` and prints it.
pub(crate) async fn print_report(
    client: &mut Client,
    job_id: u64,
    format: OutputFormat,
) -> Result<Outcome, CliError> {
    let report = client
        .get_job(pb::GetJobRequest { job_id })
        .await?
        .into_inner();
    let report = job_report(&report);
    output::print_report(format, &report);
    Ok(match report.state {
        JobState::Succeeded | JobState::Pending | JobState::Running => Outcome::Success,
        JobState::Failed | JobState::Cancelled => Outcome::No,
    })
}

async fn wait(client: &mut Client, job_id: u64, format: OutputFormat) -> Result<(), CliError> {
    let mut stream = client
        .watch_job(pb::WatchJobRequest { job_id })
        .await?
        .into_inner();
    let bar = (format == OutputFormat::Human && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} job {msg} [{bar:30}] {pos}/{len} items  {per_sec}  ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(job_id.to_string());
        bar
    });
    while let Some(progress) = stream.message().await? {
        if let Some(bar) = &bar {
            bar.set_length(progress.items_total);
            bar.set_position(progress.items_done);
        }
        if job_state_from_i32(progress.state).is_final() {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(());
        }
    }
    Err(CliError::Input(format!(
        "the coordinator closed the progress stream of job {job_id} before it finished"
    )))
}
