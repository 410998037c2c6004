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
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // State first: a bad state directory fails before anything says it is listening. With
    // PostgreSQL, the state is restored once this coordinator becomes the active one.
    let (mut coordinator, leadership) = match &settings.state_url {
        Some(url) => (None, Some(concur_coordinator::ha::connect(url).await?)),
        None => (
            Some(concur_coordinator::Coordinator::open(
                settings.config.clone(),
            )?),
            None,
        ),
    };
    let mut dashboard = None;
    if let Some(http) = &settings.http_listen {
        let listener = concur_coordinator::listen::bind(http)
            .await
            .with_context(|| format!("cannot serve the dashboard on {http}"))?;
        dashboard = Some(listener);
    }
    let listener = concur_coordinator::listen::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let bound = listener.local_addr()?;
    // Printed on stdout so scripts (and tests) can learn an ephemeral port.
    println!("concur-coordinator listening on {scheme}://{bound}");
    if let Some(http) = &dashboard {
        println!(
            "concur-coordinator dashboard on http://{}/ (metrics at /metrics)",
            http.local_addr()?
        );
    }
    if let (Some(url), Some(leadership)) = (settings.state_url.clone(), leadership) {
        let advertise = settings.advertise_url.clone().unwrap_or_else(|| {
            let host = if bound.ip().is_unspecified() {
                host_name()
            } else {
                bound.ip().to_string()
            };
            format!("{scheme}://{host}:{}", bound.port())
        });
        let ha = concur_coordinator::ha::HaSettings { url, advertise };
        let result = concur_coordinator::ha::run(
            settings.config,
            ha,
            leadership,
            listener,
            dashboard,
            shutdown_signal(),
        )
        .await;
        if let Err(e) = result {
            // Exit now: a deposed coordinator must not wait on writes or connections that can
            // no longer succeed (a cut-off host's would hang).
            eprintln!("Error: {e:#}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let mut coordinator = coordinator.take().expect("opened above");
    if let Some(http) = dashboard {
        coordinator = coordinator.with_http(http);
    }
    coordinator.serve(listener, shutdown_signal()).await
}

/// This host's name, for the URL standbys tell clients when listening on every address.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
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
