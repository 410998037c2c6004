//! The worker-facing `Attach` stream: register, then a loop of heartbeats and results.
//! Outgoing messages are turned into protobuf here, in the worker's own stream, not under the
//! coordinator's lock.

use super::outbox::Outbox;
use super::shared::{OUTBOX_CAPACITY, Shared};
use super::{CoordinatorService, status};
use crate::scheduler::{Disposition, Scheduler};
use concur_core::protocol::{ShardTiming, WorkerInfo};
use concur_core::{LeaseKey, Outcome, WorkerId};
use concur_proto::pb::{self, from_worker_message::Msg, worker_service_server::WorkerService};
use futures::{FutureExt, Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

/// Messages from one worker applied in one turn at most.
const MAX_BATCH: usize = 256;
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
                let first = match inbound.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break "stream closed".to_string(),
                    Err(status) => break status.message().to_string(),
                };
                // Every message already here is applied in the same turn of the lock.
                let mut batch = vec![first];
                let mut ended = None;
                while batch.len() < MAX_BATCH {
                    match inbound.message().now_or_never() {
                        Some(Ok(Some(message))) => batch.push(message),
                        Some(Ok(None)) => {
                            ended = Some("stream closed".to_string());
                            break;
                        }
                        Some(Err(status)) => {
                            ended = Some(status.message().to_string());
                            break;
                        }
                        None => break,
                    }
                }
                handle(&shared, worker, batch);
                if let Some(reason) = ended {
                    break reason;
                }
            };
            info!(worker_id = %worker, %reason, "worker detached");
            shared.detach_worker(worker);
        });
        let outbound = ReceiverStream::new(receiver).map(|message| Ok(message.into()));
        Ok(Response::new(Box::pin(outbound)))
    }
}

/// Applies a batch of messages from one worker in one turn of the coordinator's lock.
/// Messages that do not fit the worker's leases are discarded by the scheduler; nothing a
/// worker sends can fail the coordinator.
fn handle(shared: &Arc<Shared>, worker: WorkerId, batch: Vec<pb::FromWorkerMessage>) {
    let (known, _) = shared.apply(|s, outbox, now| {
        let mut known = true;
        for message in batch {
            known &= apply(s, outbox, now, worker, message);
        }
        known
    });
    if !known {
        shared.close_lost_stream_soon(worker);
    }
}

/// Applies one message; false when it came from a worker the scheduler does not know (one
/// declared lost, whose old stream is still open).
fn apply(
    s: &mut Scheduler,
    outbox: &mut Outbox,
    now: Instant,
    worker: WorkerId,
    message: pb::FromWorkerMessage,
) -> bool {
    match message.msg {
        Some(Msg::Heartbeat(beat)) => {
            let known = s.on_heartbeat(worker, now).is_ok();
            s.on_executions_reported(worker, beat.running, now, outbox);
            return known;
        }
        Some(Msg::Results(batch)) => {
            let Some(lease) = batch.lease.map(LeaseKey::from) else {
                warn!(worker_id = %worker, "results without a lease: ignored");
                return true;
            };
            let results = batch
                .results
                .iter()
                .map(|r| (r.unit, Outcome::from(r)))
                .collect();
            s.on_unit_results(worker, lease, results, now, outbox);
        }
        Some(Msg::Finished(mut finished)) => {
            let Some(lease) = finished.lease.map(LeaseKey::from) else {
                warn!(worker_id = %worker, "finish without a lease: ignored");
                return true;
            };
            // A small shard's results ride with its end: both in one turn.
            let results: Vec<(u32, Outcome)> = std::mem::take(&mut finished.results)
                .iter()
                .map(|r| (r.unit, Outcome::from(r)))
                .collect();
            let timing = ShardTiming::from(finished);
            if results.is_empty()
                || s.on_unit_results(worker, lease, results, now, outbox) == Disposition::Accepted
            {
                s.on_shard_finished(worker, lease, timing, now, outbox);
            }
        }
        Some(Msg::Drain(_)) => {
            info!(worker_id = %worker, "worker draining");
            let _ = s.on_worker_draining(worker);
        }
        Some(Msg::Register(_)) | None => {
            warn!(
                worker_id = %worker,
                "unexpected message on an attached stream: ignored"
            );
        }
    }
    s.knows_worker(worker)
}
