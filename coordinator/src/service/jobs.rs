//! The client-facing `JobService`: submit, watch, report, list, cancel, delete.
//!
//! Nothing here does per-item work under the coordinator's lock: specs are validated and
//! planned on a blocking thread, reports are streamed from the store in chunks, and a job is
//! acknowledged only once it is stored.

use super::report::{self, ItemFilter};
use super::shared::unix_ms;
use super::{CoordinatorService, Shared, status};
use crate::store::{NewJobRecord, WriteOp};
use concur_core::report::{JobRecord, JobState};
use concur_core::{JobId, JobSpec};
use concur_proto::convert::job_state_from_i32;
use concur_proto::pb::{self, job_service_server::JobService};
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

/// How long a cancel or delete waits for its change to be stored before saying so.
const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::JobProgress, Status>> + Send>>;

/// Refuses new work while the store cannot write, naming the cause.
fn refuse_if_failing(shared: &Shared) -> Result<(), Status> {
    match shared.refusing() {
        Some(cause) => Err(Status::unavailable(format!(
            "the coordinator cannot store its state ({cause}); it refuses new work until writing works again, and keeps serving reads"
        ))),
        None => Ok(()),
    }
}

/// Runs blocking store work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("coordinator task failed: {e}")))?
}

fn progress(record: &JobRecord) -> pb::JobProgress {
    pb::JobProgress {
        job_id: record.job_id.get(),
        state: pb::JobState::from(record.state).into(),
        items_total: record.items.total,
        items_done: record.items.ok + record.items.failed,
        items_failed: record.items.failed,
        shards_total: record.shards_total,
        shards_done: record.shards_done,
        shards_running: record.shards_running,
        elapsed_s: record.wall_s,
    }
}

fn summary(record: &JobRecord) -> pb::JobSummary {
    pb::JobSummary {
        job_id: record.job_id.get(),
        state: pb::JobState::from(record.state).into(),
        workload: record.workload.clone(),
        strategy: pb::Strategy::from(record.strategy).into(),
        concurrency: record.concurrency,
        progress: Some(progress(record)),
        label: record.label.clone(),
        submitted_at_ms: record.submitted_unix_ms,
    }
}

impl CoordinatorService {
    /// A job's committed record: from memory while it is there, else from the store.
    async fn record(&self, job_id: JobId) -> Result<JobRecord, Status> {
        if let Some(watch) = self.shared.watch(job_id) {
            return Ok(watch.borrow().clone());
        }
        let shared = self.shared.clone();
        blocking(move || shared.reader.job(job_id).map_err(report::store_status))
            .await?
            .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))
    }
}

#[tonic::async_trait]
impl JobService for CoordinatorService {
    #[instrument(skip_all)]
    async fn submit_job(
        &self,
        request: Request<pb::SubmitJobRequest>,
    ) -> Result<Response<pb::SubmitJobResponse>, Status> {
        let wire = request
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("missing job spec"))?;
        refuse_if_failing(&self.shared)?;
        let config = self.shared.config.scheduler.clone();
        // Decoding and validating a million URLs is per-item work: off the runtime, unlocked.
        let spec = blocking(move || {
            let spec =
                JobSpec::try_from(&wire).map_err(|e| Status::invalid_argument(e.to_string()))?;
            config.validate(&spec).map_err(status)?;
            Ok(Arc::new(spec))
        })
        .await?;
        let (admission, _) = self.shared.apply(|s, _, _| s.admit(&spec));
        let admission = admission.map_err(status)?;
        let now = Instant::now();
        let new_job = admission.build(spec.clone(), now, unix_ms());
        let record = new_job.record(now);
        let stored = NewJobRecord {
            record: record.clone(),
            spec,
            shards: admission.shards,
        };
        if let Err(cause) = self.shared.writer.submit(stored).await {
            self.shared.apply(|s, _, _| s.on_admission_dropped());
            return Err(Status::unavailable(format!(
                "the coordinator cannot store the job ({cause}); nothing was accepted, retry when it can write again"
            )));
        }
        self.shared
            .apply(|s, outbox, now| s.on_job_submitted(new_job, now, outbox));
        let job_id = admission.job_id;
        info!(%job_id, items = record.items.total, shards = record.shards_total, "job submitted");
        Ok(Response::new(pb::SubmitJobResponse {
            job_id: job_id.get(),
            shards: record.shards_total,
            items: record.items.total,
        }))
    }

    type WatchJobStream = ProgressStream;

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let job_id = JobId(request.into_inner().job_id);
        let Some(receiver) = self.shared.watch(job_id) else {
            // Not in memory: finished (or unknown); its stored record is final.
            let record = self.record(job_id).await?;
            let once = futures::stream::iter([Ok(progress(&record))]);
            return Ok(Response::new(Box::pin(once)));
        };
        // Yield the current progress at once, then each change, and end after the final state.
        let stream = futures::stream::unfold(
            (receiver, true, false),
            |(mut receiver, first, done)| async move {
                if done || (!first && receiver.changed().await.is_err()) {
                    return None;
                }
                let record = receiver.borrow_and_update().clone();
                let is_final = record.state.is_final();
                Some((Ok(progress(&record)), (receiver, false, is_final)))
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::JobReport>, Status> {
        let record = self.record(JobId(request.into_inner().job_id)).await?;
        Ok(Response::new(pb::JobReport::from(&record)))
    }

    type ListJobShardsStream = ReceiverStream<Result<pb::ShardReportChunk, Status>>;

    async fn list_job_shards(
        &self,
        request: Request<pb::ListJobShardsRequest>,
    ) -> Result<Response<Self::ListJobShardsStream>, Status> {
        let request = request.into_inner();
        let (sender, receiver) = mpsc::channel(4);
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            report::stream_shards(
                shared,
                JobId(request.job_id),
                request.offset,
                request.limit,
                sender,
            );
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    type ListJobItemsStream = ReceiverStream<Result<pb::ItemChunk, Status>>;

    async fn list_job_items(
        &self,
        request: Request<pb::ListJobItemsRequest>,
    ) -> Result<Response<Self::ListJobItemsStream>, Status> {
        let request = request.into_inner();
        let filter = ItemFilter::from(request.filter());
        let (sender, receiver) = mpsc::channel(4);
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            report::stream_items(
                shared,
                JobId(request.job_id),
                filter,
                request.offset,
                request.limit,
                sender,
            );
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let states: Vec<JobState> = request
            .states
            .iter()
            .map(|s| job_state_from_i32(*s))
            .collect();
        let limit = request.limit;
        let shared = self.shared.clone();
        let filter = states.clone();
        let (mut jobs, matched) = blocking(move || {
            shared
                .reader
                .jobs(&filter, limit)
                .map_err(report::store_status)
        })
        .await?;
        self.shared.current_records(&mut jobs);
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.iter().map(summary).collect(),
            matched,
        }))
    }

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::CancelJobResponse>, Status> {
        let job_id = JobId(request.into_inner().job_id);
        if self.shared.read(|s, _| s.has_job(job_id)) {
            // Cancelling changes state: not while it cannot be stored.
            refuse_if_failing(&self.shared)?;
        }
        let (result, seq) = self
            .shared
            .apply(|s, outbox, now| s.on_cancel(job_id, now, outbox));
        let state = match result {
            Ok(state) => {
                // Answer only once the cancellation is stored.
                if !self.shared.stored_within(seq, STORE_WAIT).await {
                    return Err(Status::unavailable(format!(
                        "job {job_id} was cancelled but the coordinator has not stored that yet ({}); ask again later",
                        self.shared
                            .refusing()
                            .unwrap_or_else(|| "the store is slow".into())
                    )));
                }
                state
            }
            // Not in memory: a finished job keeps its state.
            Err(_) => self.record(job_id).await?.state,
        };
        info!(%job_id, %state, "cancel requested");
        Ok(Response::new(pb::CancelJobResponse {
            state: pb::JobState::from(state).into(),
        }))
    }

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn delete_job(
        &self,
        request: Request<pb::DeleteJobRequest>,
    ) -> Result<Response<pb::DeleteJobResponse>, Status> {
        let job_id = JobId(request.into_inner().job_id);
        let record = self.record(job_id).await?;
        if !record.state.is_final() {
            return Err(Status::failed_precondition(format!(
                "job {job_id} is {}: cancel it first (concur-cli cancel {job_id})",
                record.state
            )));
        }
        refuse_if_failing(&self.shared)?;
        let seq = self.shared.write(vec![WriteOp::Delete(job_id)]);
        if !self.shared.stored_within(seq, STORE_WAIT).await {
            return Err(Status::unavailable(format!(
                "job {job_id} is being deleted but the coordinator has not stored that yet; ask again later"
            )));
        }
        info!(%job_id, "job deleted");
        Ok(Response::new(pb::DeleteJobResponse {}))
    }

    async fn list_workers(
        &self,
        _request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let workers = self
            .shared
            .read(|s, now| s.list_workers(now).iter().map(worker_summary).collect());
        Ok(Response::new(pb::ListWorkersResponse { workers }))
    }
}

fn worker_summary(view: &crate::scheduler::WorkerView) -> pb::WorkerSummary {
    pb::WorkerSummary {
        worker_id: view.worker_id.get(),
        host: view.info.host.clone(),
        pid: view.info.pid,
        cores: view.info.cores,
        slots: view.info.slots,
        running: view.running,
        version: view.info.version.clone(),
        last_heartbeat_s: view.last_heartbeat_s,
        state: view.state.to_string(),
        shards_done: view.shards_done,
    }
}
