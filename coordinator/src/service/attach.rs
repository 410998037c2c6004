//! The worker-facing `Attach` stream: register, then a loop of heartbeats and results.
//! Outgoing messages are turned into protobuf here, in the worker's own stream, not under the
//! coordinator's lock.

use super::shared::{OUTBOX_CAPACITY, Shared};
use super::{CoordinatorService, status};
use concur_core::protocol::{ShardTiming, WorkerInfo};
use concur_core::{LeaseKey, Outcome, WorkerId};
use concur_proto::pb::{self, from_worker_message::Msg, worker_service_server::WorkerService};
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

/// A worker that has not registered within this time is turned away.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

type ToWorkerStream = Pin<Box<dyn Stream<Item = Result<pb::ToWorkerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for CoordinatorService {
    type AttachStream = ToWorkerStream;

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
        let info = WorkerInfo::from(register);
        let (sender, receiver) = mpsc::channel(OUTBOX_CAPACITY);
        let worker = self
            .shared
            .attach_worker(info.clone(), sender)
            .map_err(status)?;
        info!(worker_id = %worker, host = %info.host, pid = info.pid, slots = info.slots, ?peer, "worker attached");
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(message)) => handle(&shared, worker, message),
                    Ok(None) => break "stream closed".to_string(),
                    Err(status) => break status.message().to_string(),
                }
            };
            info!(worker_id = %worker, %reason, "worker detached");
            shared.detach_worker(worker);
        });
        let outbound = ReceiverStream::new(receiver).map(|message| Ok(message.into()));
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// Applies one message from a worker. Messages that do not fit the worker's leases are discarded
/// by the scheduler; nothing a worker sends can fail the coordinator.
fn handle(shared: &Arc<Shared>, worker: WorkerId, message: pb::FromWorkerMessage) {
    match message.msg {
        Some(Msg::Heartbeat(beat)) => {
            let (known, _) = shared.apply(|s, outbox, now| {
                let known = s.on_heartbeat(worker, now).is_ok();
                s.on_executions_reported(worker, beat.running, now, outbox);
                known
            });
            if !known {
                shared.close_lost_stream_soon(worker);
            }
        }
        Some(Msg::Results(batch)) => {
            let Some(lease) = batch.lease.map(LeaseKey::from) else {
                return warn!(worker_id = %worker, "results without a lease: ignored");
            };
            let results = batch
                .results
                .iter()
                .map(|r| (r.unit, Outcome::from(r)))
                .collect();
            shared.apply(|s, outbox, now| s.on_unit_results(worker, lease, results, now, outbox));
        }
        Some(Msg::Finished(mut finished)) => {
            let Some(lease) = finished.lease.map(LeaseKey::from) else {
                return warn!(worker_id = %worker, "finish without a lease: ignored");
            };
            // A small shard's results ride with its end: both in one turn.
            let results: Vec<(u32, Outcome)> = std::mem::take(&mut finished.results)
                .iter()
                .map(|r| (r.unit, Outcome::from(r)))
                .collect();
            let timing = ShardTiming::from(finished);
            shared.apply(|s, outbox, now| {
                if !results.is_empty()
                    && s.on_unit_results(worker, lease, results, now, outbox)
                        == crate::scheduler::Disposition::Discarded
                {
                    return;
                }
                s.on_shard_finished(worker, lease, timing, now, outbox);
            });
        }
        Some(Msg::Drain(_)) => {
            info!(worker_id = %worker, "worker draining");
            let _ = shared.apply(|s, _, _| s.on_worker_draining(worker));
        }
        Some(Msg::Register(_)) | None => {
            warn!(
                worker_id = %worker,
                "unexpected message on an attached stream: ignored"
            );
        }
    }
}
