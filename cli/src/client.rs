//! Connecting to a coordinator, with errors that say what to check.

use crate::exit::CliError;
use concur_proto::pb::job_service_client::JobServiceClient;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// A connected job client.
pub(crate) type Client = JobServiceClient<Channel>;

/// Reports can hold millions of items.
const MAX_REPORT_BYTES: usize = 1024 * 1024 * 1024;

/// Adds `http://` when the address has no scheme.
pub(crate) fn normalize(address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// Connects to the coordinator at `address`.
///
/// # Errors
/// A malformed address, or nothing answering there ([`CliError::Input`], exit 2).
pub(crate) async fn connect(address: &str) -> Result<Client, CliError> {
    let url = normalize(address);
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| CliError::Input(format!("invalid coordinator address '{address}': {e}")))?
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| {
        CliError::Input(format!(
            "cannot reach the coordinator at {url}: {} (is concur-coordinator running there? set --coordinator or CONCUR_COORDINATOR, or leave both unset for local mode)",
            source_chain(&e)
        ))
    })?;
    Ok(JobServiceClient::new(channel).max_decoding_message_size(MAX_REPORT_BYTES))
}

/// The error with its causes.
pub(crate) fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Transport errors often repeat their cause's text; say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
