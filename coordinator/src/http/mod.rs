//! The coordinator's HTTP listener (`--http-listen`): the dashboard, its JSON API, live updates
//! by server-sent events, and Prometheus `/metrics`. Same access rules as gRPC: with a client
//! token configured every request must carry it; without one, only loopback is served (the
//! binary refuses to listen beyond it).
//!
//! Layout:
//! - `access`: the token check (header, cookie, or `?token=` which sets the cookie).
//! - `api`: JSON views of the cluster, jobs and timelines; `/metrics`; the event stream.
//! - `pages`: `/` and `/jobs/{id}`, the page with its first render's data embedded.
//! - `assets`: the dashboard's HTML, JS and CSS, embedded in the binary.

mod access;
mod api;
mod assets;
mod pages;

use crate::auth::Token;
use crate::service::Shared;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler sees.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: Option<Token>,
}

/// The dashboard's routes over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    let token = shared.config.client_token.clone();
    let http = Http { shared, token };
    Router::new()
        .route("/", get(pages::overview))
        .route("/jobs/{id}", get(pages::job))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::health))
        .route("/api/cluster", get(api::cluster))
        .route("/api/jobs", get(api::jobs))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/jobs/{id}/timeline", get(api::timeline))
        .route("/api/jobs/{id}/shards/{shard}", get(api::shard))
        .route("/api/events", get(api::events))
        .layer(axum::middleware::from_fn_with_state(
            http.clone(),
            access::check,
        ))
        .with_state(http)
}

/// Serves the dashboard on `listener` until `shutdown` completes.
///
/// # Errors
/// The server fails.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // No graceful drain: event streams never end by themselves, and the page reconnects.
    tokio::select! {
        served = axum::serve(listener, router(shared)) => served,
        () = shutdown => Ok(()),
    }
}
