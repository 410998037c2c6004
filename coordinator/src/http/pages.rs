//! The dashboard's pages: `/` (cluster and jobs) and `/jobs/{id}` (a job's timeline), each the
//! one HTML page with the data of its first render embedded, so it draws at once; the page's
//! script keeps it live from there.

use super::Http;
use super::api::{JOBS_LISTED, Snapshot, cluster_view, jobs_view, timeline_view};
use super::assets::INDEX;
use crate::service::timeline::Window;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The page with `initial` embedded as JSON (`<` escaped so no text can close the script).
fn page(initial: &Value) -> Response {
    let data = initial.to_string().replace('<', "\\u003c");
    let html = INDEX.replace(
        "<!--INITIAL-->",
        &format!("<script id=\"initial\" type=\"application/json\">{data}</script>"),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn snapshot(http: &Http) -> Value {
    let snapshot = Snapshot {
        cluster: cluster_view(http),
        jobs: jobs_view(http, JOBS_LISTED).unwrap_or_default(),
    };
    serde_json::to_value(snapshot).unwrap_or(Value::Null)
}

/// `/`: the cluster and the recent jobs.
pub(super) async fn overview(State(http): State<Http>) -> Response {
    let initial = tokio::task::spawn_blocking(move || json!({ "snapshot": snapshot(&http) }))
        .await
        .unwrap_or(Value::Null);
    page(&initial)
}

/// `/jobs/{id}`: one job's timeline.
pub(super) async fn job(State(http): State<Http>, Path(id): Path<u64>) -> Response {
    let initial =
        tokio::task::spawn_blocking(move || match timeline_view(&http, id, Window::default()) {
            Ok(timeline) => json!({ "snapshot": snapshot(&http), "timeline": timeline }),
            Err(status) => json!({ "error": status.message() }),
        })
        .await
        .unwrap_or(Value::Null);
    page(&initial)
}
