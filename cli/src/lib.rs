//! `concur-cli`: submit jobs to a coordinator (or a local cluster it starts), inspect them, and
//! serve the local site simulator.
//!
//! Layout:
//! - `args`: the command line.
//! - `submit`, `watch`, `inspect`: the job commands; `top`: the live view of a cluster;
//!   `report`: printing a report as it streams in; `trace`: a job as a Chrome trace file.
//! - `compare`, `demo`: measure what processes, threads and tasks buy (via `runner`).
//! - `progress`: progress bars on a terminal; `trust`: flags on figures not to read plainly.
//! - `local`: local mode's in-process coordinator and forked workers.
//! - `sites`: the site simulator.
//! - `cluster`: workers on other machines over ssh (`cluster up|down|status`).
//! - `client`, `output`, `stdout`, `exit`: connecting, printing, exit codes.

mod args;
mod client;
mod cluster;
mod compare;
mod demo;
mod exit;
mod inspect;
mod local;
mod output;
mod progress;
mod report;
mod runner;
mod sites;
mod stdout;
mod submit;
mod top;
mod trace;
mod trust;
mod watch;

use args::{Cli, Command, SitesCommand};
use clap::{CommandFactory, Parser};
use exit::{CliError, Exit};
use std::process::ExitCode;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let format = cli.global.output;
    let coordinator = cli.global.coordinator.clone();
    // block_on polls on this (main) thread: local workers' death signal is tied to it.
    let outcome = runtime.block_on(async {
        match dispatch(cli).await {
            Err(e) => Err(client::diagnose(coordinator.as_deref(), e).await),
            ok => ok,
        }
    });
    match outcome {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            let message = match &e {
                CliError::Input(m) | CliError::Unreachable(m) => m.clone(),
                CliError::Other(e) => format!("{e:#}"),
            };
            output::print_error(format, &message);
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<Exit, CliError> {
    let global = cli.global;
    client::configure(global.token.clone(), global.tls_ca.as_deref())?;
    if let Some(addr) = &global.http_listen {
        local::serve_dashboard_on(addr).await?;
    }
    match cli.command {
        Command::Submit(opts) => submit::run(&global, opts.workload).await,
        Command::Job(opts) => inspect::job(&global, opts).await,
        Command::Compare(opts) => compare::run(&global, opts).await,
        Command::Demo(opts) => demo::run(&global, opts).await,
        Command::Jobs(opts) => inspect::jobs(&global, opts).await,
        Command::Workers => inspect::workers(&global).await,
        Command::Top(opts) => top::run(&global, opts).await,
        Command::Cancel(opts) => inspect::cancel(&global, opts).await,
        Command::Delete(opts) => inspect::delete(&global, opts).await,
        Command::Cluster { command } => cluster::run(&global, command).await,
        Command::Sites {
            command: SitesCommand::Serve(opts),
        } => {
            sites::run(opts).await?;
            Ok(Exit::Success)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "concur-cli",
                &mut std::io::stdout(),
            );
            Ok(Exit::Success)
        }
        Command::Worker(opts) => {
            let settings = opts.resolve()?;
            concur_worker::run(settings, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(Exit::Success)
        }
    }
}

fn init_tracing(cli: &Cli) {
    // The CLI's own logs stay quiet unless asked for: its output is the report.
    let default = if cli.global.debug { "debug" } else { "warn" };
    concur_core::logging::init(default, concur_core::logging::LogFormat::Text);
}
