//! `concur-coordinator`: serves the coordinator on a TCP address until SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use concur_coordinator::{CoordinatorConfig, scheduler::SchedulerConfig};
use std::time::Duration;
use tokio::net::TcpListener;

/// The concur coordinator: splits jobs into shards and leases them to attached workers.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  concur-coordinator --listen 127.0.0.1:7070\n  concur-coordinator --listen 0.0.0.0:7070 --heartbeat-timeout 3s"
)]
struct CoordinatorOpts {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7070", env = "CONCUR_LISTEN")]
    listen: String,
    /// A worker silent for this long is declared lost and its shards re-queued.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat_timeout: Duration,
    /// How often workers send heartbeats.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// Directory of the durable state (SQLite); jobs survive a restart [default: $XDG_STATE_HOME/concur or ~/.local/state/concur].
    #[arg(long, env = "CONCUR_STATE_DIR", conflicts_with = "in_memory")]
    state_dir: Option<std::path::PathBuf>,
    /// Keep state in memory only: jobs are lost when the coordinator stops.
    #[arg(long)]
    in_memory: bool,
    /// Log at debug level (RUST_LOG overrides).
    #[arg(long)]
    debug: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = CoordinatorOpts::parse();
    init_tracing(opts.debug);
    if opts.heartbeat_interval >= opts.heartbeat_timeout {
        anyhow::bail!(
            "--heartbeat-interval ({:?}) must be shorter than --heartbeat-timeout ({:?})",
            opts.heartbeat_interval,
            opts.heartbeat_timeout
        );
    }
    let listener = TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    // Printed on stdout so scripts (and tests) can learn an ephemeral port.
    println!(
        "concur-coordinator listening on http://{}",
        listener.local_addr()?
    );
    let config = CoordinatorConfig {
        scheduler: SchedulerConfig {
            heartbeat_timeout: opts.heartbeat_timeout,
            ..SchedulerConfig::default()
        },
        heartbeat_interval: opts.heartbeat_interval,
        state_dir: (!opts.in_memory).then(|| {
            opts.state_dir
                .unwrap_or_else(concur_coordinator::store::default_state_dir)
        }),
    };
    concur_coordinator::run(listener, config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

fn init_tracing(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
