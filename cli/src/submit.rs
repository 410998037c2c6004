//! `concur-cli submit`: build a job spec from arguments, submit it to a coordinator (or a local
//! cluster), optionally wait, and print the report.

use crate::args::{
    ExecInput, FetchInput, GlobalOpts, OutputFormat, RunOpts, SumSquaresInput, WorkloadArgs,
};
use crate::client::{self, Client};
use crate::exit::{CliError, Exit};
use crate::local::LocalCluster;
use crate::{output, watch};
use concur_core::exec::{ExecItems, ExecSpec};
use concur_core::pacing::Pacing;
use concur_core::spec::Limits;
use concur_core::workload::{FetchSpec, validate_url};
use concur_core::{JobSpec, NumberSpec, UrlList, Workload};
use concur_proto::pb;
use std::path::Path;

/// Runs `submit`.
pub(crate) async fn run(global: &GlobalOpts, workload: WorkloadArgs) -> Result<Exit, CliError> {
    let (spec, run) = build_spec(workload)?;
    match &global.coordinator {
        Some(address) => {
            if run.trace.is_some() && !run.wait {
                return Err(CliError::Input(
                    "--trace needs --wait (or use `concur-cli job ID --trace FILE` later)".into(),
                ));
            }
            let mut client = client::connect(address).await?;
            let accepted = submit(&mut client, &spec).await?;
            if !run.wait {
                output::print_submitted(global.output, &accepted);
                return Ok(Exit::Success);
            }
            let exit = watch::wait_and_report(
                address,
                &mut client,
                accepted.job_id,
                global.output,
                run.items,
            )
            .await?;
            if let Some(path) = &run.trace {
                crate::trace::write_and_tell(&mut client, accepted.job_id, path).await?;
            }
            Ok(exit)
        }
        None => {
            let workers = run
                .local_workers
                .unwrap_or_else(concur_worker::system::cores);
            if workers == 0 {
                return Err(CliError::Input("--local-workers must be at least 1".into()));
            }
            let mut cluster = LocalCluster::start(workers, global.debug).await?;
            if global.output == OutputFormat::Human {
                eprintln!(
                    "local cluster: coordinator {} and {} worker processes, ready in {:.2} s",
                    cluster.url, cluster.workers, cluster.startup_s
                );
            }
            let mut client = client::connect(&cluster.url).await?;
            let accepted = submit(&mut client, &spec).await?;
            let result = watch::wait_and_report(
                &cluster.url,
                &mut client,
                accepted.job_id,
                global.output,
                run.items,
            )
            .await;
            let result = match (&run.trace, result) {
                (Some(path), Ok(exit)) => {
                    crate::trace::write_and_tell(&mut client, accepted.job_id, path)
                        .await
                        .map(|()| exit)
                }
                (_, result) => result,
            };
            cluster.shutdown();
            result
        }
    }
}

/// Submits `spec` and returns what the coordinator accepted.
pub(crate) async fn submit(
    client: &mut Client,
    spec: &JobSpec,
) -> Result<pb::SubmitJobResponse, CliError> {
    let request = pb::SubmitJobRequest {
        spec: Some(pb::JobSpec::from(spec)),
    };
    Ok(client.submit_job(request).await?.into_inner())
}

/// Parses and validates the workload arguments; every problem is an input error (exit 2).
pub(crate) fn build_spec(workload: WorkloadArgs) -> Result<(JobSpec, RunOpts), CliError> {
    let (workload, mut pacing, run) = match workload {
        WorkloadArgs::SumSquares { input, run } => {
            (sum_squares_workload(&input)?, Pacing::default(), run)
        }
        WorkloadArgs::Fetch { input, run } => (fetch_workload(&input)?, politeness(&input), run),
        WorkloadArgs::Exec { input, run } => (exec_workload(&input)?, Pacing::default(), run),
    };
    let concurrency = match run.concurrency {
        Some(chosen) => {
            pacing.auto = chosen.is_auto();
            chosen.value()
        }
        None => run
            .strategy
            .default_concurrency(concur_worker::system::cores()),
    };
    let spec = JobSpec {
        pacing,
        workload,
        strategy: run.strategy,
        concurrency,
        shards: run.shards,
        max_retries: run.max_retries,
        label: run.label.clone(),
    };
    spec.validate(&Limits::default()).map_err(input_error)?;
    Ok((spec, run))
}

/// The per-host politeness `input` asks for.
pub(crate) fn politeness(input: &FetchInput) -> Pacing {
    Pacing {
        per_host_connections: input.per_host_connections.unwrap_or(0),
        // A delay under a millisecond still spaces requests: round it up, not down to none.
        per_host_delay_ms: input.per_host_delay.map_or(0, |d| {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            if d > std::time::Duration::from_millis(ms) {
                ms.saturating_add(1)
            } else {
                ms
            }
        }),
        ..Pacing::default()
    }
}

fn input_error(e: concur_core::SpecError) -> CliError {
    CliError::Input(e.to_string())
}

/// The sum-squares workload of `input`.
pub(crate) fn sum_squares_workload(input: &SumSquaresInput) -> Result<Workload, CliError> {
    Ok(Workload::SumSquares(
        NumberSpec::parse(&input.spec).map_err(input_error)?,
    ))
}

/// The fetch workload of `input`, every URL validated.
pub(crate) fn fetch_workload(input: &FetchInput) -> Result<Workload, CliError> {
    let urls = match &input.urls_file {
        Some(path) => read_urls(path)?,
        None => input.urls.iter().collect(),
    };
    let limits = Limits::default();
    for url in urls.iter() {
        validate_url(url, limits.max_url_len).map_err(input_error)?;
    }
    let mut fetch = FetchSpec::new(urls);
    fetch.timeout_ms = input.timeout.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
    Ok(Workload::Fetch(fetch))
}

/// The exec workload of `input`. Local clusters started after this allow exec.
pub(crate) fn exec_workload(input: &ExecInput) -> Result<Workload, CliError> {
    let items = match (&input.range, &input.items_file) {
        (Some(range), _) => match NumberSpec::parse(range).map_err(input_error)? {
            NumberSpec::Range { start, end } => ExecItems::Range { start, end },
            NumberSpec::List(_) => {
                return Err(CliError::Input(format!("--range {range}: expected A..B")));
            }
        },
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::Input(format!("cannot read items file '{}': {e}", path.display()))
            })?;
            ExecItems::List(
                text.lines()
                    .filter(|line| !line.is_empty())
                    .map(str::to_string)
                    .collect(),
            )
        }
        (None, None) => ExecItems::List(input.item.clone()),
    };
    let (program, args) = input
        .command
        .split_first()
        .ok_or_else(|| CliError::Input("no program given after --".into()))?;
    let exec = ExecSpec {
        program: program.clone(),
        args: args.to_vec(),
        items,
        timeout_ms: input.timeout.as_millis().clamp(1, u128::from(u64::MAX)) as u64,
    };
    exec.validate().map_err(input_error)?;
    crate::local::allow_exec();
    Ok(Workload::Exec(exec))
}

/// One URL per line; blank lines and `#` comments are skipped.
fn read_urls(path: &Path) -> Result<UrlList, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read URL file '{}': {e}", path.display())))?;
    let urls: UrlList = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    if urls.is_empty() {
        return Err(CliError::Input(format!(
            "URL file '{}' has no URLs",
            path.display()
        )));
    }
    Ok(urls)
}
