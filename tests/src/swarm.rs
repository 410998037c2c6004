//! Simulated workers for benchmarks: each its own connection, `Attach` stream and heartbeats,
//! answering assignments without running anything, so the coordinator alone is measured.

use concur_proto::pb;
use concur_proto::pb::worker_service_client::WorkerServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// One simulated worker: attaches, heartbeats, and finishes every assignment after `delay`
/// (at once for zero), counting finished shards in `finished`.
pub async fn simulated_worker(
    channel: Channel,
    window: u32,
    delay: Duration,
    finished: Arc<AtomicU64>,
) {
    let mut client = WorkerServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let (outbound, receiver) = mpsc::channel(1024);
    let register = pb::Register {
        host: "swarm".into(),
        pid: std::process::id(),
        cores: 1,
        slots: 1,
        version: "swarm".into(),
        prefetch: window,
        protocol: concur_core::protocol::PROTOCOL_REVISION,
        ..pb::Register::default()
    };
    let message = |msg| pb::FromWorkerMessage { msg: Some(msg) };
    use pb::from_worker_message::Msg as Out;
    use pb::to_worker_message::Msg as In;
    outbound.send(message(Out::Register(register))).await.ok();
    let Ok(response) = client.attach(ReceiverStream::new(receiver)).await else {
        return;
    };
    let mut inbound = response.into_inner();
    let beats = outbound.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            interval.tick().await;
            let beat = pb::Heartbeat { running: 0 };
            if beats.send(message(Out::Heartbeat(beat))).await.is_err() {
                return;
            }
        }
    });
    // A first-release coordinator (protocol 0) reads results only from UnitResults.
    let mut results_ride_with_finish = true;
    while let Ok(Some(message_in)) = inbound.message().await {
        let assignments = match message_in.msg {
            Some(In::Registered(registered)) => {
                results_ride_with_finish = registered.protocol >= 2;
                continue;
            }
            Some(In::Assign(assign)) => vec![assign],
            Some(In::AssignMany(many)) => many.shards,
            _ => continue,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for assign in assignments {
            let results = assign
                .sum_squares
                .iter()
                .enumerate()
                .map(|(unit, u)| pb::UnitResult {
                    unit: unit as u32,
                    ok: true,
                    value_lo: concur_core::kernel::sum_squares_range(u.lo, u.hi) as u64,
                    ..pb::UnitResult::default()
                })
                .collect();
            let results = if results_ride_with_finish {
                results
            } else {
                let batch = pb::UnitResults {
                    lease: assign.lease,
                    results,
                };
                if outbound.send(message(Out::Results(batch))).await.is_err() {
                    return;
                }
                Vec::new()
            };
            let done = pb::ShardFinished {
                lease: assign.lease,
                results,
                ..pb::ShardFinished::default()
            };
            if outbound.send(message(Out::Finished(done))).await.is_err() {
                return;
            }
            finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}
