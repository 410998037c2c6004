//! Connecting to a coordinator, with errors that say what to check.

use crate::exit::CliError;
use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_worker::connect::{self as transport, BearerToken, Peer};
use std::sync::OnceLock;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// A connected job client.
pub(crate) type Client = JobServiceClient<InterceptedService<Channel, BearerToken>>;

/// How this process authenticates to coordinators: set once from the global options.
#[derive(Debug, Default)]
struct Credentials {
    token: Option<BearerToken>,
    tls_ca: Option<Vec<u8>>,
}

static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();

/// Records the client token and TLS CA every later connection uses.
///
/// # Errors
/// The token is empty or unprintable, or the CA file is unreadable.
pub(crate) fn configure(
    token: Option<String>,
    tls_ca: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let token = concur_core::token::load_token(token, None, "--token / CONCUR_TOKEN")
        .map_err(CliError::Input)?
        .map(|t| BearerToken::new(Some(&t)))
        .transpose()
        .map_err(|e| CliError::Input(format!("{e:#}")))?;
    let tls_ca = tls_ca
        .map(|path| {
            std::fs::read(path).map_err(|e| {
                CliError::Input(format!("cannot read TLS CA file {}: {e}", path.display()))
            })
        })
        .transpose()?;
    let _ = CREDENTIALS.set(Credentials { token, tls_ca });
    Ok(())
}

/// Largest answer accepted: reports stream in chunks far below it.
const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// Adds `http://` when the address has no scheme.
pub(crate) fn normalize(address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// The workers attached to the coordinator `client` talks to.
///
/// # Errors
/// The coordinator refused or went away.
pub(crate) async fn list_workers(client: &mut Client) -> Result<Vec<pb::WorkerSummary>, CliError> {
    Ok(client
        .list_workers(pb::ListWorkersRequest {})
        .await?
        .into_inner()
        .workers)
}

/// Connects to the coordinator at `address`; of several comma-separated ones (an active and
/// its standbys), to the first that answers as the active one.
///
/// # Errors
/// A malformed address, or nothing answering there ([`CliError::Input`], exit 2); of several,
/// none active (each one's answer named).
pub(crate) async fn connect(address: &str) -> Result<Client, CliError> {
    let urls: Vec<&str> = address
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect();
    if urls.len() <= 1 {
        return connect_one(address.trim().trim_end_matches(',')).await;
    }
    let mut answers = Vec::new();
    for url in &urls {
        let mut client = match connect_one(url).await {
            Ok(client) => client,
            Err(e) => {
                answers.push(e.to_string());
                continue;
            }
        };
        // The cheapest call that a standby refuses and the active one answers.
        let probe = pb::ListJobsRequest {
            states: vec![pb::JobState::Running.into()],
            limit: 1,
        };
        match client.list_jobs(probe).await {
            Err(status)
                if status.code() == tonic::Code::Unavailable
                    && status.message().contains("standby") =>
            {
                answers.push(format!("{}: {}", normalize(url), status.message()));
            }
            // Active (or refusing us for a reason the caller reports, e.g. the token).
            _ => return Ok(client),
        }
    }
    Err(CliError::Unreachable(format!(
        "no active coordinator among {}: {}",
        urls.join(", "),
        answers.join("; ")
    )))
}

async fn connect_one(address: &str) -> Result<Client, CliError> {
    let url = normalize(address);
    let credentials = CREDENTIALS.get_or_init(Credentials::default);
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| CliError::Input(format!("invalid coordinator address '{address}': {e}")))?
        .connect_timeout(Duration::from_secs(5));
    // TLS exactly for https:// URLs, so a CA exported for a remote cluster does not break
    // local mode's plain loopback coordinator.
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &credentials.tls_ca {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| CliError::Input(format!("invalid TLS settings: {e}")))?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
        CliError::Unreachable(match transport::explain(&e, &url, Peer::Client) {
            // A sentence naming the address needs no prefix repeating it.
            Some(sentence) if sentence.contains(transport::authority(&url)) => {
                format!("cannot reach the coordinator: {sentence}")
            }
            Some(sentence) => format!("cannot reach the coordinator at {url}: {sentence}"),
            None => format!(
                "cannot reach the coordinator at {url}: {} (is concur-coordinator running there? set --coordinator or CONCUR_COORDINATOR, or leave both unset for local mode)",
                transport::render_causes(&e)
            ),
        })
    })?;
    let token = credentials
        .token
        .clone()
        .unwrap_or_else(|| BearerToken::new(None).expect("no token is always valid"));
    Ok(JobServiceClient::with_interceptor(channel, token)
        .max_decoding_message_size(MAX_REPORT_BYTES))
}

/// A better message for a connection that broke without saying why: a plain `http://` client
/// at a TLS coordinator connects, then the server hangs up on its first request ("transport
/// error", "operation was canceled"). Only then is the server probed, once, to name that case.
pub(crate) async fn diagnose(address: Option<&str>, error: CliError) -> CliError {
    let (Some(address), CliError::Unreachable(_)) = (address, &error) else {
        return error;
    };
    let url = normalize(address);
    if !url.starts_with("http://") {
        return error;
    }
    let at = transport::authority(&url);
    if transport::speaks_tls(at).await {
        return CliError::Unreachable(format!(
            "the coordinator at {url} speaks TLS; use an https:// URL (https://{at}, with --tls-ca for its CA)"
        ));
    }
    error
}
