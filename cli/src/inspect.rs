//! `job`, `jobs`, `workers`, `cancel`, `delete`: commands against a running coordinator.

use crate::args::{
    GlobalOpts, JobCancelOpts, JobDeleteOpts, JobListOpts, JobShowOpts, OutputFormat,
};
use crate::client::{self, Client};
use crate::exit::{CliError, Exit};
use crate::stdout::outln;
use crate::{output, report, watch};
use concur_proto::convert::job_state_from_i32;
use concur_proto::pb;

/// The coordinator's address, which these commands need.
fn address(global: &GlobalOpts) -> Result<&str, CliError> {
    global.coordinator.as_deref().ok_or_else(|| {
        CliError::Input(
            "this command needs a running coordinator: pass --coordinator URL or set CONCUR_COORDINATOR"
                .into(),
        )
    })
}

async fn connect(global: &GlobalOpts) -> Result<Client, CliError> {
    client::connect(address(global)?).await
}

/// `concur-cli job JOB_ID [--wait] [--items WHICH]`.
pub(crate) async fn job(global: &GlobalOpts, opts: JobShowOpts) -> Result<Exit, CliError> {
    let address = address(global)?;
    let mut client = client::connect(address).await?;
    let exit = if opts.wait {
        watch::wait_and_report(address, &mut client, opts.job_id, global.output, opts.items).await?
    } else {
        report::print(&mut client, opts.job_id, global.output, opts.items).await?
    };
    if let Some(path) = &opts.trace {
        crate::trace::write_and_tell(&mut client, opts.job_id, path).await?;
    }
    Ok(exit)
}

/// `concur-cli jobs [--state S,…] [--limit N]`.
pub(crate) async fn jobs(global: &GlobalOpts, opts: JobListOpts) -> Result<Exit, CliError> {
    let mut client = connect(global).await?;
    let request = pb::ListJobsRequest {
        states: opts
            .state
            .iter()
            .map(|s| pb::JobState::from(*s).into())
            .collect(),
        limit: opts.limit,
    };
    let answer = client.list_jobs(request).await?.into_inner();
    output::print_jobs(global.output, &answer.jobs, answer.matched);
    Ok(Exit::Success)
}

/// `concur-cli workers`.
pub(crate) async fn workers(global: &GlobalOpts) -> Result<Exit, CliError> {
    let mut client = connect(global).await?;
    let workers = crate::client::list_workers(&mut client).await?;
    output::print_workers(global.output, &workers);
    Ok(Exit::Success)
}

/// `concur-cli cancel JOB_ID`.
pub(crate) async fn cancel(global: &GlobalOpts, opts: JobCancelOpts) -> Result<Exit, CliError> {
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
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({ "job_id": opts.job_id, "state": state.as_str() })
        ),
        OutputFormat::Human => outln!("job {} is {state}", opts.job_id),
    }
    Ok(Exit::Success)
}

/// `concur-cli delete JOB_ID`.
pub(crate) async fn delete(global: &GlobalOpts, opts: JobDeleteOpts) -> Result<Exit, CliError> {
    let mut client = connect(global).await?;
    client
        .delete_job(pb::DeleteJobRequest {
            job_id: opts.job_id,
        })
        .await?;
    match global.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({ "job_id": opts.job_id, "deleted": true })
        ),
        OutputFormat::Human => outln!("job {} deleted", opts.job_id),
    }
    Ok(Exit::Success)
}
