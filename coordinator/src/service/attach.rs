//! The worker-facing `Attach` stream: register, then a loop of heartbeats and results.

use super::CoordinatorService;
use super::shared::OUTBOX_CAPACITY;
use crate::scheduler::{LeaseKey, ShardTiming, WorkerInfo};
use concur_core::{Outcome, WorkerId};
use concur_proto::convert::sanitize_seconds;
use concur_proto::pb::{self, from_worker_message::Msg, worker_service_server::WorkerService};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

/// A worker that has not registered within this time is turned away.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

#[tonic::async_trait]
impl WorkerService for CoordinatorService {
    type AttachStream = ReceiverStream<Result<pb::ToWorkerMessage, Status>>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::FromWorkerMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let peer = request.remote_addr();
        if self.shared.config.requires_worker_certificate()
            && request.peer_certs().is_none_or(|certs| certs.is_empty())
        {
            return Err(Status::unauthenticated(
                "this coordinator requires workers to present a client certificate signed by its CA (concur-worker --tls-cert and --tls-key)",
            ));
        }
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(REGISTER_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Register message within 10 s"))??;
        let Some(pb::FromWorkerMessage {
            msg: Some(Msg::Register(register)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message on Attach must be Register",
            ));
        };
        let info = WorkerInfo {
            host: truncate(register.host, 255),
            pid: register.pid,
            cores: register.cores,
            slots: register.slots.clamp(1, 1024),
            version: truncate(register.version, 64),
        };
        let (sender, receiver) = mpsc::channel(OUTBOX_CAPACITY);
        let worker = self.shared.attach_worker(info.clone(), sender);
        info!(worker_id = worker, host = %info.host, pid = info.pid, slots = info.slots, ?peer, "worker attached");
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(message)) => handle(&shared, worker, message),
                    Ok(None) => break "stream closed".to_string(),
                    Err(status) => break status.message().to_string(),
                }
            };
            info!(worker_id = worker, %reason, "worker detached");
            shared.detach_worker(worker);
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// Applies one message from a worker. Messages that do not fit the worker's leases are discarded
/// by the scheduler; nothing a worker sends can fail the coordinator.
fn handle(shared: &Arc<super::Shared>, worker: WorkerId, message: pb::FromWorkerMessage) {
    match message.msg {
        Some(Msg::Heartbeat(_)) => {
            if shared
                .apply(|s, _, now| s.on_heartbeat(worker, now))
                .is_err()
            {
                shared.close_lost_stream_soon(worker);
            }
        }
        Some(Msg::Results(batch)) => {
            let Some(lease) = batch.lease.map(lease_key) else {
                return warn!(worker_id = worker, "results without a lease: ignored");
            };
            let results = batch
                .results
                .iter()
                .map(|r| (r.unit, Outcome::from(r)))
                .collect();
            shared.apply(|s, outbox, now| s.on_unit_results(worker, lease, results, now, outbox));
        }
        Some(Msg::Finished(finished)) => {
            let Some(lease) = finished.lease.map(lease_key) else {
                return warn!(worker_id = worker, "finish without a lease: ignored");
            };
            let timing = ShardTiming {
                run_s: sanitize_seconds(finished.run_s),
                cpu_s: sanitize_seconds(finished.cpu_s),
                concurrency: finished.concurrency,
                error: truncate(finished.error, 4096),
            };
            shared.apply(|s, outbox, now| s.on_shard_finished(worker, lease, timing, now, outbox));
        }
        Some(Msg::Drain(_)) => {
            info!(worker_id = worker, "worker draining");
            let _ = shared.apply(|s, _, _| s.on_worker_draining(worker));
        }
        Some(Msg::Register(_)) | None => {
            warn!(
                worker_id = worker,
                "unexpected message on an attached stream: ignored"
            );
        }
    }
}

fn lease_key(lease: pb::LeaseKey) -> LeaseKey {
    LeaseKey {
        job_id: lease.job_id,
        shard_id: lease.shard_id,
        attempt: lease.attempt,
    }
}

/// Cuts untrusted text to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
