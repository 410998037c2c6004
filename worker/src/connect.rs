//! The worker's connection to its coordinator: TLS when asked for, and the worker token on
//! every request.

use crate::settings::{Secret, WorkerSettings};
use anyhow::Context;
use concur_proto::pb::worker_service_client::WorkerServiceClient;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Assignments can carry many URLs; allow large messages from the coordinator.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Adds `authorization: Bearer <token>` to every request, when a token is set.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl BearerToken {
    /// The header for `token`.
    ///
    /// # Errors
    /// The token cannot be a header value (it was checked to be printable ASCII already).
    pub fn new(token: Option<&Secret>) -> anyhow::Result<Self> {
        let value = token
            .map(|t| format!("Bearer {}", t.expose()).parse())
            .transpose()
            .context("the token cannot be sent as a header")?;
        Ok(Self(value))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A worker-service client.
pub type Client = WorkerServiceClient<InterceptedService<Channel, BearerToken>>;

/// The endpoint for the configured coordinator.
///
/// # Errors
/// An invalid address or TLS material.
pub fn endpoint(settings: &WorkerSettings) -> anyhow::Result<Endpoint> {
    let mut endpoint = Endpoint::from_shared(settings.coordinator.clone())
        .with_context(|| format!("invalid coordinator address '{}'", settings.coordinator))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if let Some(tls) = &settings.tls {
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &tls.ca {
            config = config.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint
            .tls_config(config)
            .context("invalid TLS settings")?;
    }
    Ok(endpoint)
}

/// Connects and wraps the channel with the token.
///
/// # Errors
/// The connection fails.
pub async fn connect(endpoint: &Endpoint, token: &BearerToken) -> anyhow::Result<Client> {
    let channel = endpoint.connect().await.context("connecting")?;
    Ok(
        WorkerServiceClient::with_interceptor(channel, token.clone())
            .max_decoding_message_size(MAX_MESSAGE),
    )
}
