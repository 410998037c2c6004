//! The client-facing `JobService`: submit, watch, report, list, cancel.

use super::shared::unix_ms;
use super::{CoordinatorService, encode, status};
use concur_core::JobSpec;
use concur_proto::pb::{self, job_service_server::JobService};
use futures::Stream;
use std::pin::Pin;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::JobProgress, Status>> + Send>>;

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
        let spec = JobSpec::try_from(&wire).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let items = spec.workload.item_count();
        let job_id = self
            .shared
            .apply(|s, outbox, now| s.on_job_submitted(spec, now, unix_ms(), outbox))
            .map_err(status)?;
        let shards = self
            .shared
            .read(|s, now| s.job_progress(job_id, now).map_or(0, |p| p.shards_total));
        info!(job_id, items, shards, "job submitted");
        Ok(Response::new(pb::SubmitJobResponse {
            job_id,
            shards,
            items,
        }))
    }

    type WatchJobStream = ProgressStream;

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let job_id = request.into_inner().job_id;
        let receiver = self
            .shared
            .watch(job_id)
            .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))?;
        // Yield the current progress at once, then each change, and end after the final state.
        let stream = futures::stream::unfold(
            (receiver, true, false),
            |(mut receiver, first, done)| async move {
                if done || (!first && receiver.changed().await.is_err()) {
                    return None;
                }
                let progress = *receiver.borrow_and_update();
                let is_final = progress.state.is_final();
                Some((Ok(encode::progress(&progress)), (receiver, false, is_final)))
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::JobReport>, Status> {
        let job_id = request.into_inner().job_id;
        let snapshot = self
            .shared
            .read(|s, now| s.job_snapshot(job_id, now))
            .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))?;
        Ok(Response::new(encode::report(&snapshot)))
    }

    async fn list_jobs(
        &self,
        _request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let jobs = self.shared.read(|s, now| {
            s.list_jobs(now)
                .into_iter()
                .map(|(progress, spec, at)| encode::summary(&progress, spec, at))
                .collect()
        });
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    #[instrument(skip_all, fields(job_id = request.get_ref().job_id))]
    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::CancelJobResponse>, Status> {
        let job_id = request.into_inner().job_id;
        let state = self
            .shared
            .apply(|s, outbox, now| s.on_cancel(job_id, now, outbox))
            .map_err(status)?;
        info!(job_id, %state, "cancel requested");
        Ok(Response::new(pb::CancelJobResponse {
            state: pb::JobState::from(state).into(),
        }))
    }

    async fn list_workers(
        &self,
        _request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let workers = self
            .shared
            .read(|s, now| s.list_workers(now).iter().map(encode::worker).collect());
        Ok(Response::new(pb::ListWorkersResponse { workers }))
    }
}
