//! Serving the coordinator: gRPC services, health checking, reflection and the heartbeat ticker.

use crate::auth::{Audience, Token, TokenCheck};
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
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
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
    /// Token clients must present on `JobService`; `None` = no check.
    pub client_token: Option<Token>,
    /// Token workers must present on `WorkerService`; `None` = no check.
    pub worker_token: Option<Token>,
    /// Serve over TLS.
    pub tls: Option<TlsPem>,
}

/// PEM material for TLS.
#[derive(Clone)]
pub struct TlsPem {
    /// Certificate chain.
    pub cert: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
    /// CA that worker client certificates must chain to (mutual TLS for workers).
    pub client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("client_ca", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl CoordinatorConfig {
    /// Workers must present a client certificate (mutual TLS).
    pub fn requires_worker_certificate(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some())
    }
}

impl Default for CoordinatorConfig {
    /// In memory, 1 s heartbeats, 5 s heartbeat timeout.
    fn default() -> Self {
        Self {
            scheduler: SchedulerConfig::default(),
            heartbeat_interval: Duration::from_secs(1),
            state_dir: None,
            client_token: None,
            worker_token: None,
            tls: None,
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
    let client_check = TokenCheck::new(config.client_token.clone(), Audience::Client);
    let worker_check = TokenCheck::new(config.worker_token.clone(), Audience::Worker);
    let tls = config.tls.clone();
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
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        let mut tls_config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert, &tls.key));
        if let Some(ca) = &tls.client_ca {
            // Optional at the TLS layer so clients (concur-cli) need no certificate; the worker
            // service itself insists on one.
            tls_config = tls_config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(true);
        }
        builder = builder.tls_config(tls_config)?;
    }
    let result = builder
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .trace_fn(|request| tracing::debug_span!("rpc", path = %request.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(InterceptedService::new(
            JobServiceServer::new(service.clone())
                .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
                .max_encoding_message_size(usize::MAX),
            client_check,
        ))
        .add_service(InterceptedService::new(
            WorkerServiceServer::new(service).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE),
            worker_check,
        ))
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
