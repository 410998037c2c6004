//! `concur-coordinator`: serves the coordinator on a TCP address until SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use concur_coordinator::settings::CoordinatorOpts;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = CoordinatorOpts::parse();
    concur_coordinator::memory::tune_allocator();
    concur_core::logging::init(if opts.debug { "debug" } else { "info" }, opts.log_format);
    let settings = opts.resolve()?;
    let config = &settings.config;
    let addresses: Vec<_> = tokio::net::lookup_host(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}: not an address", settings.listen))?
        .collect();
    let loopback_only = !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback());
    let authenticated = config.client_token.is_some() && config.worker_token.is_some();
    if !loopback_only && !authenticated && !settings.insecure {
        anyhow::bail!(
            "refusing to listen on {} without tokens: set --token-file and --worker-token-file (or CONCUR_TOKEN and CONCUR_WORKER_TOKEN), or pass --insecure on a network you trust",
            settings.listen
        );
    }
    if let Some(http) = &settings.http_listen {
        let addresses: Vec<_> = tokio::net::lookup_host(http)
            .await
            .with_context(|| format!("cannot serve the dashboard on {http}: not an address"))?
            .collect();
        let loopback = !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback());
        if !loopback && config.client_token.is_none() && !settings.insecure {
            anyhow::bail!(
                "refusing to serve the dashboard on {http} without a token: set --token-file (the browser then opens http://{http}/?token=TOKEN once), or pass --insecure on a network you trust"
            );
        }
    }
    // State first: a bad state directory fails before anything says it is listening.
    let mut coordinator = concur_coordinator::Coordinator::open(settings.config.clone())?;
    let mut dashboard = None;
    if let Some(http) = &settings.http_listen {
        let listener = concur_coordinator::listen::bind(http)
            .await
            .with_context(|| format!("cannot serve the dashboard on {http}"))?;
        dashboard = Some(listener.local_addr()?);
        coordinator = coordinator.with_http(listener);
    }
    let listener = concur_coordinator::listen::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Printed on stdout so scripts (and tests) can learn an ephemeral port.
    println!(
        "concur-coordinator listening on {scheme}://{}",
        listener.local_addr()?
    );
    if let Some(addr) = dashboard {
        println!("concur-coordinator dashboard on http://{addr}/ (metrics at /metrics)");
    }
    coordinator.serve(listener, shutdown_signal()).await
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
