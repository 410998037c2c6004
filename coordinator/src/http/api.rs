//! The dashboard's JSON API, its event stream and `/metrics`. Every answer is built from the
//! scheduler's in-memory view (one short lock) or from the store on a blocking thread.

use super::Http;
use crate::service::timeline::{self, Timeline, Window};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use concur_core::JobId;
use concur_core::exposition;
use concur_core::report::{JobRecord, JobState};
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often the event stream sends a snapshot.
const EVENT_INTERVAL: Duration = Duration::from_millis(1000);
/// Jobs listed at most.
pub(super) const JOBS_LISTED: u32 = 50;

/// A failed answer: the status and the reason, as text.
fn failure(status: tonic::Status) -> Response {
    let code = match status.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, format!("{}\n", status.message())).into_response()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, tonic::Status> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| failure(tonic::Status::internal(e.to_string())))?
        .map_err(failure)
}

/// `/metrics`: counters as they stand, gauges sampled now; OpenMetrics for scrapers that ask
/// for it (Prometheus does), the classic text format otherwise.
pub(super) async fn metrics(State(http): State<Http>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    http.shared
        .read(|scheduler, now| http.shared.metrics.sample(scheduler, now));
    let text = http.shared.metrics.render(started.elapsed().as_secs_f64());
    exposition_response(&headers, text)
}

/// `text` (OpenMetrics) in the format the scraper asked for.
fn exposition_response(headers: &HeaderMap, text: String) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = exposition::negotiate(accept, text);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `/healthz`: whether the coordinator accepts new work.
pub(super) async fn health(State(http): State<Http>) -> Response {
    match http.shared.refusing() {
        None => (StatusCode::OK, "serving\n").into_response(),
        Some(cause) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("read-only: {cause}\n"),
        )
            .into_response(),
    }
}

#[derive(Debug, Serialize)]
struct WorkerJson {
    worker_id: u64,
    host: String,
    pid: u32,
    cores: u32,
    slots: u32,
    running: u32,
    state: &'static str,
    shards_done: u64,
    last_heartbeat_s: f64,
    version: String,
}

#[derive(Debug, Serialize)]
pub(super) struct ClusterJson {
    workers: Vec<WorkerJson>,
    hosts: usize,
    slots: u32,
    running: u32,
    /// Why new work is refused, when it is (the store is failing).
    refusing: Option<String>,
}

pub(super) fn cluster_view(http: &Http) -> ClusterJson {
    let workers: Vec<WorkerJson> = http.shared.read(|s, now| {
        s.list_workers(now)
            .into_iter()
            .map(|w| WorkerJson {
                worker_id: w.worker_id.get(),
                host: w.info.host,
                pid: w.info.pid,
                cores: w.info.cores,
                slots: w.info.slots,
                running: w.running,
                state: w.state,
                shards_done: w.shards_done,
                last_heartbeat_s: w.last_heartbeat_s,
                version: w.info.version,
            })
            .collect()
    });
    ClusterJson {
        hosts: workers
            .iter()
            .map(|w| w.host.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        slots: workers.iter().map(|w| w.slots).sum(),
        running: workers.iter().map(|w| w.running).sum(),
        workers,
        refusing: http.shared.refusing(),
    }
}

/// `/api/cluster`: workers, hosts, slots and load.
pub(super) async fn cluster(State(http): State<Http>) -> Json<ClusterJson> {
    Json(cluster_view(&http))
}

/// A job with its progress, rate and ETA.
#[derive(Debug, Serialize)]
pub(super) struct JobJson {
    #[serde(flatten)]
    record: JobRecord,
    /// Finished items (ok + failed) per second of wall time.
    items_per_s: f64,
    /// Seconds left at that rate, while running.
    eta_s: Option<f64>,
    progress: f64,
}

impl From<JobRecord> for JobJson {
    fn from(record: JobRecord) -> Self {
        let finished = (record.items.ok + record.items.failed) as f64;
        let items_per_s = if record.wall_s > 0.0 {
            finished / record.wall_s
        } else {
            0.0
        };
        let eta_s = (!record.state.is_final() && items_per_s > 0.0)
            .then(|| record.items.unfinished() as f64 / items_per_s);
        let progress = if record.items.total == 0 {
            1.0
        } else {
            finished / record.items.total as f64
        };
        Self {
            record,
            items_per_s,
            eta_s,
            progress,
        }
    }
}

/// The most recent jobs, with the in-memory (current) records of unfinished ones.
pub(super) fn jobs_view(http: &Http, limit: u32) -> Result<Vec<JobJson>, tonic::Status> {
    let (mut jobs, _) = http
        .shared
        .reader
        .jobs(&[], limit)
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    http.shared.current_records(&mut jobs);
    jobs.sort_by_key(|j| std::cmp::Reverse(j.job_id));
    Ok(jobs.into_iter().map(JobJson::from).collect())
}

/// `/api/jobs`: the most recent jobs, newest first.
pub(super) async fn jobs(State(http): State<Http>) -> Response {
    match blocking(move || jobs_view(&http, JOBS_LISTED)).await {
        Ok(jobs) => Json(jobs).into_response(),
        Err(response) => response,
    }
}

fn record(http: &Http, job_id: JobId) -> Result<JobRecord, tonic::Status> {
    if let Some(watch) = http.shared.watch(job_id) {
        return Ok(watch.borrow().clone());
    }
    http.shared
        .reader
        .job(job_id)
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?
        .ok_or_else(|| tonic::Status::not_found(format!("no job with id {job_id}")))
}

/// `/api/jobs/{id}`: one job's summary.
pub(super) async fn job(State(http): State<Http>, Path(id): Path<u64>) -> Response {
    match blocking(move || record(&http, JobId(id))).await {
        Ok(record) => Json(JobJson::from(record)).into_response(),
        Err(response) => response,
    }
}

/// The timeline's window, in seconds after submission.
#[derive(Debug, Deserialize)]
pub(super) struct WindowQuery {
    from: Option<f64>,
    to: Option<f64>,
}

/// A timeline with its job's summary.
#[derive(Debug, Serialize)]
pub(super) struct TimelineJson {
    job: JobJson,
    #[serde(flatten)]
    timeline: Timeline,
}

/// A job's whole timeline with its summary.
pub(super) fn timeline_view(
    http: &Http,
    id: u64,
    window: Window,
) -> Result<TimelineJson, tonic::Status> {
    let record = record(http, JobId(id))?;
    let now_s = if record.state == JobState::Pending {
        0.0
    } else {
        record.wall_s
    };
    let timeline = timeline::job_timeline(&http.shared, JobId(id), now_s, window)?;
    Ok(TimelineJson {
        job: record.into(),
        timeline,
    })
}

/// `/api/jobs/{id}/timeline?from=&to=`: shard bars per process and slot.
pub(super) async fn timeline(
    State(http): State<Http>,
    Path(id): Path<u64>,
    Query(window): Query<WindowQuery>,
) -> Response {
    let window = Window {
        from_s: window.from.filter(|f| f.is_finite()),
        to_s: window.to.filter(|t| t.is_finite()),
    };
    match blocking(move || timeline_view(&http, id, window)).await {
        Ok(timeline) => Json(timeline).into_response(),
        Err(response) => response,
    }
}

/// `/api/jobs/{id}/shards/{shard}`: one shard's items on its threads or tasks.
pub(super) async fn shard(
    State(http): State<Http>,
    Path((id, shard)): Path<(u64, u32)>,
) -> Response {
    match blocking(move || timeline::shard_timeline(&http.shared, JobId(id), shard)).await {
        Ok(timeline) => Json(timeline).into_response(),
        Err(response) => response,
    }
}

/// The cluster and the recent jobs, as the event stream sends them.
#[derive(Debug, Serialize)]
pub(super) struct Snapshot {
    pub(super) cluster: ClusterJson,
    pub(super) jobs: Vec<JobJson>,
}

/// `/api/events`: a snapshot of the cluster and jobs every second, as server-sent events.
pub(super) async fn events(
    State(http): State<Http>,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = futures::stream::unfold((http, true), |(http, first)| async move {
        if !first {
            tokio::time::sleep(EVENT_INTERVAL).await;
        }
        let view = http.clone();
        let snapshot = tokio::task::spawn_blocking(move || {
            let jobs = jobs_view(&view, JOBS_LISTED).unwrap_or_default();
            Snapshot {
                cluster: cluster_view(&view),
                jobs,
            }
        })
        .await
        .ok()?;
        let event = Event::default()
            .event("snapshot")
            .json_data(&snapshot)
            .unwrap_or_else(|_| Event::default().comment("unencodable"));
        Some((Ok(event), (http, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
