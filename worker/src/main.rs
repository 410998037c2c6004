//! `concur-worker`: attaches to a coordinator and runs shards until SIGINT or SIGTERM (which
//! drains it: running shards finish first).

use clap::Parser;
use concur_worker::WorkerOpts;
use std::process::ExitCode;

/// A concur worker daemon: attaches to a coordinator and runs the shards it is given.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  concur-worker --coordinator http://127.0.0.1:7070\n  concur-worker --coordinator 10.0.0.1:7070 --slots 2 --token-file /etc/concur/worker-token\n  concur-worker --coordinator https://coord.example:7070 --tls-ca ca.pem --tls-cert worker.pem --tls-key worker.key\n  concur-worker --config /etc/concur/worker.toml\n  concur-worker --coordinator http://coord-a:7070,http://coord-b:7070   # active + standby\n  concur-worker --coordinator 10.0.0.1:7070 --metrics-listen 127.0.0.1:9101   # Prometheus /metrics\n\nSIGTERM drains: no new shards, running ones finish (up to --drain-timeout), then it exits."
)]
struct Cli {
    #[command(flatten)]
    worker: WorkerOpts,
    /// Log at debug level (RUST_LOG overrides).
    #[arg(long)]
    debug: bool,
    /// Log lines as `text` (colours only on a terminal) or `json` (one object per line).
    #[arg(long, env = "CONCUR_LOG_FORMAT", default_value = "text")]
    log_format: concur_core::logging::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    concur_core::logging::init(if cli.debug { "debug" } else { "info" }, cli.log_format);
    let settings = match cli.worker.resolve() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match concur_worker::run(settings, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
