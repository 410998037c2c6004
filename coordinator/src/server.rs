//! Serving the coordinator: opening its state, then gRPC services, health checking,
//! reflection and the heartbeat ticker.

use crate::auth::{Audience, Token, TokenCheck};
use crate::scheduler::{Comm, Scheduler, SchedulerConfig};
use crate::service::{CoordinatorService, Shared};
use crate::store::memory::MemoryStore;
use crate::store::postgres::Postgres;
use crate::store::sqlite::Sqlite;
use crate::store::{Retention, StoreEvents, StoreRead, StoreWrite, Writer};
use concur_proto::pb::job_service_server::JobServiceServer;
use concur_proto::pb::worker_service_server::WorkerServiceServer;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tracing::info;

/// Largest message accepted from clients and workers; result batches stay far below it.
pub const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// Where the coordinator listens when not told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// How often workers send heartbeats when not told otherwise.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
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
    /// Which finished jobs the store forgets.
    pub retention: Retention,
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
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            state_dir: None,
            retention: Retention::default(),
            client_token: None,
            worker_token: None,
            tls: None,
        }
    }
}

/// A coordinator whose state is open (restored from its store), ready to serve.
#[derive(Debug)]
pub struct Coordinator {
    shared: Arc<Shared>,
    http: Option<TcpListener>,
}

impl Coordinator {
    /// Opens the state: the store in `config.state_dir` (restoring its unfinished jobs), or an
    /// empty in-memory store.
    ///
    /// # Errors
    /// The state directory cannot be used (in use, unwritable, empty or corrupt database).
    pub fn open(config: CoordinatorConfig) -> anyhow::Result<Self> {
        let opened = match &config.state_dir {
            Some(dir) => crate::state::restore(&config, Sqlite::open(dir)?)?,
            None => {
                let store = MemoryStore::new();
                let reader: Arc<dyn StoreRead> = Arc::new(store.reader());
                let scheduler = Scheduler::new(config.scheduler.clone());
                (
                    scheduler,
                    Box::new(store) as Box<dyn StoreWrite>,
                    reader,
                    false,
                )
            }
        };
        Ok(Self::with_state(config, opened))
    }

    /// Opens the state in a PostgreSQL database (restoring its unfinished jobs: their leased
    /// shards become new attempts), as the active coordinator whose writes `store` fences.
    ///
    /// # Errors
    /// The database cannot be read or holds a corrupt record.
    pub fn open_postgres(config: CoordinatorConfig, store: Postgres) -> anyhow::Result<Self> {
        let opened = crate::state::restore(&config, store)?;
        Ok(Self::with_state(config, opened))
    }

    fn with_state(config: CoordinatorConfig, opened: crate::state::Opened) -> Self {
        let (scheduler, store, reader, durable) = opened;
        let retention = config.retention;
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let events: Weak<dyn StoreEvents> = weak.clone();
            let writer = if durable {
                Writer::start(store, retention, events)
            } else {
                Writer::in_place(store, retention)
            };
            Shared::new(config, scheduler, writer, reader)
        });
        // Restored jobs become visible (watchable, listed with live counters) at once.
        shared.apply(|scheduler, outbox, now| {
            for record in scheduler.job_records(now) {
                outbox.job_changed(record.job_id);
            }
        });
        Self { shared, http: None }
    }

    /// A standby: no state of its own (the active coordinator's is in the shared database);
    /// every RPC and page is refused, naming `active`, and health checks say not serving.
    ///
    /// # Errors
    /// As [`Coordinator::open`] for in-memory state (none in practice).
    pub fn standby(config: CoordinatorConfig, active: String) -> anyhow::Result<Self> {
        let config = CoordinatorConfig {
            state_dir: None,
            ..config
        };
        let coordinator = Self::open(config)?;
        coordinator.shared.set_standby_of(Some(active));
        Ok(coordinator)
    }

    /// The state every RPC shares (to update a standby's view of the active coordinator).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Also serves the dashboard, its API and `/metrics` on `listener` (see [`crate::http`]).
    #[must_use]
    pub fn with_http(mut self, listener: TcpListener) -> Self {
        self.http = Some(listener);
        self
    }

    /// Serves on `listener` until `shutdown` completes, then stores what is left to store.
    ///
    /// # Errors
    /// The reflection service cannot be built or the server fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let shared = self.shared;
        let dashboard = self.http.map(|http| {
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::http::serve(shared, http, std::future::pending()).await {
                    tracing::error!(cause = %e, "the dashboard's listener failed");
                }
            })
        });
        let result = serve(shared.clone(), listener, shutdown).await;
        if let Some(dashboard) = dashboard {
            dashboard.abort();
        }
        shared.shutdown();
        shared.writer.stop();
        result
    }
}

/// Opens the coordinator's state and serves it on `listener` until `shutdown` completes.
///
/// # Errors
/// The state cannot be opened, the reflection service cannot be built or the server fails.
pub async fn run(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    Coordinator::open(config)?.serve(listener, shutdown).await
}

async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &shared.config;
    let client_check = TokenCheck::new(
        config.client_token.clone(),
        Audience::Client,
        shared.role.clone(),
    );
    let worker_check = TokenCheck::new(
        config.worker_token.clone(),
        Audience::Worker,
        shared.role.clone(),
    );
    let tls = config.tls.clone();
    let service = CoordinatorService::new(shared.clone());
    let ticker_shared = shared.clone();

    let (health, health_service) = tonic_health::server::health_reporter();
    if shared.standby_of().is_some() {
        // Health checks tell load balancers and probes not to send work here.
        health
            .set_not_serving::<JobServiceServer<CoordinatorService>>()
            .await;
        health
            .set_not_serving::<WorkerServiceServer<CoordinatorService>>()
            .await;
    } else {
        health
            .set_serving::<JobServiceServer<CoordinatorService>>()
            .await;
        health
            .set_serving::<WorkerServiceServer<CoordinatorService>>()
            .await;
    }
    // Both reflection versions: grpcurl speaks v1, while Python's grpc_reflection client, evans
    // and older grpcurl releases speak only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(concur_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

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
    let stop_streams = shared.clone();
    let result = builder
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .trace_fn(|request| tracing::debug_span!("rpc", path = %request.uri().path()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
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
        // Small messages (acknowledgements, progress) must not wait for Nagle's algorithm.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                shutdown.await;
                // Long-lived streams (worker attach, job watch) would hold graceful shutdown open.
                stop_streams.shutdown();
            },
        )
        .await;
    ticker.abort();
    result?;
    Ok(())
}
