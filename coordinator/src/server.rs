//! Serving the coordinator: gRPC services, health checking, reflection and the heartbeat ticker.

use crate::scheduler::SchedulerConfig;
use crate::service::{CoordinatorService, Shared};
use concur_proto::pb::job_service_server::JobServiceServer;
use concur_proto::pb::worker_service_server::WorkerServiceServer;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tracing::info;

/// Largest message accepted from clients and workers; result batches stay far below it.
pub const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// How often the ticker checks for silent workers.
const TICK: Duration = Duration::from_millis(250);

/// Coordinator settings.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Scheduler limits and timeouts.
    pub scheduler: SchedulerConfig,
    /// How often workers are asked to send a heartbeat.
    pub heartbeat_interval: Duration,
    /// Where durable state lives; `None` keeps it in memory only.
    pub state_dir: Option<PathBuf>,
}

impl Default for CoordinatorConfig {
    /// In memory, 1 s heartbeats, 5 s heartbeat timeout.
    fn default() -> Self {
        Self {
            scheduler: SchedulerConfig::default(),
            heartbeat_interval: Duration::from_secs(1),
            state_dir: None,
        }
    }
}

/// Serves the coordinator on `listener` until `shutdown` completes.
///
/// # Errors
/// The reflection service cannot be built or the server fails.
pub async fn run(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(config)?);
    let service = CoordinatorService::new(shared.clone());
    let ticker_shared = shared.clone();

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<JobServiceServer<CoordinatorService>>()
        .await;
    health
        .set_serving::<WorkerServiceServer<CoordinatorService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(concur_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let ticker = tokio::spawn({
        let shared = ticker_shared;
        async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                shared.tick();
            }
        }
    });

    info!(addr = %listener.local_addr()?, "coordinator serving");
    let result = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .trace_fn(|request| tracing::debug_span!("rpc", path = %request.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            JobServiceServer::new(service.clone())
                .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            WorkerServiceServer::new(service).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.await;
            // Long-lived streams (worker attach, job watch) would hold graceful shutdown open.
            shared.shutdown();
        })
        .await;
    ticker.abort();
    result?;
    Ok(())
}
