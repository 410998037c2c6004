//! The dashboard's pages: `/` (cluster and jobs) and `/jobs/{id}` (a job's timeline), each the
//! one HTML page with the data of its first render embedded, so it draws at once; the page's
//! script keeps it live from there.

use super::Http;
use super::api::{JOBS_LISTED, Snapshot, cluster_view, jobs_view, timeline_view};
use super::assets::INDEX;
use crate::service::timeline::{self, Window};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use concur_core::JobId;
use serde::Deserialize;
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

/// Which shard's items to open with the page.
#[derive(Debug, Deserialize)]
pub(super) struct JobQuery {
    shard: Option<u32>,
}

/// `/jobs/{id}[?shard=S]`: one job's timeline, and one shard's items if asked. An unknown
/// job's page says so, with status 404.
pub(super) async fn job(
    State(http): State<Http>,
    Path(id): Path<u64>,
    Query(query): Query<JobQuery>,
) -> Response {
    let initial =
        tokio::task::spawn_blocking(move || match timeline_view(&http, id, Window::default()) {
            Ok(timeline) => {
                let shard = query
                    .shard
                    .and_then(|s| timeline::shard_timeline(&http.shared, JobId(id), s).ok());
                json!({ "snapshot": snapshot(&http), "timeline": timeline, "shard": shard })
            }
            Err(status) => json!({ "error": status.message() }),
        })
        .await
        .unwrap_or(Value::Null);
    let mut response = page(&initial);
    if initial.get("error").is_some() {
        *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    }
    response
}
