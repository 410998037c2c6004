//! `job`, `jobs`, `workers`, `cancel`: commands against a running coordinator.

use crate::args::{GlobalOpts, JobCancelOpts, JobShowOpts};
use crate::client::{self, Client};
use crate::exit::{CliError, Outcome};
use crate::{output, watch};
use concur_proto::convert::job_state_from_i32;
use concur_proto::pb;

async fn connect(global: &GlobalOpts) -> Result<Client, CliError> {
    let address = global.coordinator.as_deref().ok_or_else(|| {
        CliError::Input(
            "this command needs a running coordinator: pass --coordinator URL or set CONCUR_COORDINATOR"
                .into(),
        )
    })?;
    client::connect(address).await
}

/// `concur-cli job JOB_ID [--wait]`.
pub(crate) async fn job(global: &GlobalOpts, opts: JobShowOpts) -> Result<Outcome, CliError> {
    let mut client = connect(global).await?;
    if opts.wait {
        watch::wait_and_report(&mut client, opts.job_id, global.output).await
    } else {
        watch::print_report(&mut client, opts.job_id, global.output).await
    }
}

/// `concur-cli jobs`.
pub(crate) async fn jobs(global: &GlobalOpts) -> Result<Outcome, CliError> {
    let mut client = connect(global).await?;
    let jobs = client
        .list_jobs(pb::ListJobsRequest {})
        .await?
        .into_inner()
        .jobs;
    output::print_jobs(global.output, &jobs);
    Ok(Outcome::Success)
}

/// `concur-cli workers`.
pub(crate) async fn workers(global: &GlobalOpts) -> Result<Outcome, CliError> {
    let mut client = connect(global).await?;
    let workers = client
        .list_workers(pb::ListWorkersRequest {})
        .await?
        .into_inner()
        .workers;
    output::print_workers(global.output, &workers);
    Ok(Outcome::Success)
}

/// `concur-cli cancel JOB_ID`.
pub(crate) async fn cancel(global: &GlobalOpts, opts: JobCancelOpts) -> Result<Outcome, CliError> {
    let mut client = connect(global).await?;
    let state = client
        .cancel_job(pb::CancelJobRequest {
            job_id: opts.job_id,
        })
        .await?
        .into_inner()
        .state;
    let state = job_state_from_i32(state);
    match global.output {
        crate::args::OutputFormat::Json => println!(
            "{}",
            serde_json::json!({ "job_id": opts.job_id, "state": state.as_str() })
        ),
        crate::args::OutputFormat::Human => println!("job {} is {state}", opts.job_id),
    }
    Ok(Outcome::Success)
}
