//! The worker's connection to its coordinator: TLS when asked for, the worker token on every
//! request, and failed connections told in a sentence that names the problem (shared with
//! `concur-cli`).

use crate::settings::WorkerSettings;
use anyhow::Context;
use concur_core::token::Secret;
use concur_proto::pb::worker_service_client::WorkerServiceClient;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

mod diagnose;

pub use diagnose::{Peer, authority, explain, explain_attach_failure, render_causes, speaks_tls};

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

/// The endpoint for the configured coordinator (the first, when several are given).
///
/// # Errors
/// An invalid address or TLS material.
pub fn endpoint(settings: &WorkerSettings) -> anyhow::Result<Endpoint> {
    endpoint_for(settings, &settings.coordinators()[0])
}

/// The endpoint for coordinator `url`, with the settings' TLS material.
///
/// # Errors
/// An invalid address or TLS material.
pub fn endpoint_for(settings: &WorkerSettings, url: &str) -> anyhow::Result<Endpoint> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("invalid coordinator address '{url}'"))?
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
    let url = endpoint.uri().to_string().trim_end_matches('/').to_string();
    let channel = endpoint.connect().await.map_err(|e| {
        // The caller names the coordinator's URL already.
        let text = explain(&e, &url, Peer::Worker).unwrap_or_else(|| render_causes(&e));
        anyhow::anyhow!("connecting: {text}")
    })?;
    Ok(
        WorkerServiceClient::with_interceptor(channel, token.clone())
            .max_decoding_message_size(MAX_MESSAGE),
    )
}

/// Whether an attach error says the server is not a gRPC concur coordinator at all: it answered
/// HTTP, but not gRPC (a plain web server gives "invalid compression flag" when its body is
/// read as a gRPC frame, or no grpc-status), or it does not know the service.
pub fn not_a_coordinator(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<tonic::Status>().is_some_and(|status| {
            let message = status.message();
            status.code() == tonic::Code::Unimplemented
                || message.contains("invalid compression flag")
                || message.contains("grpc-status header missing")
                || message.contains("invalid content-type")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_http_answer_is_told_apart_from_a_refusal() {
        let web = anyhow::Error::new(tonic::Status::internal(
            "protocol error: received message with invalid compression flag: 120 (valid flags are 0 and 1) while receiving response with status: 200 OK",
        ));
        assert!(not_a_coordinator(&web));
        let refused = anyhow::Error::new(tonic::Status::unauthenticated("bad token"));
        assert!(!not_a_coordinator(&refused));
    }
}
