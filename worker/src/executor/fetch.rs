//! GET a URL and read the whole body, with a blocking or an async client.
//!
//! A failed request is a failed unit with its error, never a failed shard. Non-2xx statuses
//! fail the unit but keep the status and bytes read.

use concur_core::Outcome;
use std::io::Read;
use std::sync::Once;
use std::time::{Duration, Instant};

/// Connections kept per host by each client; generous so async strategies reuse them.
const POOL_IDLE_PER_HOST: usize = 1024;

fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another component may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A blocking client for one thread.
///
/// # Errors
/// The TLS backend cannot be initialised.
pub(crate) fn blocking_client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    install_crypto_provider();
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// An async client shared by all tasks of a shard.
///
/// # Errors
/// The TLS backend cannot be initialised.
pub(crate) fn async_client(timeout: Duration) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// Fetches with a blocking client.
pub(crate) fn fetch_blocking(
    client: &reqwest::blocking::Client,
    url: &str,
    max_body_bytes: u64,
) -> Outcome {
    let start = Instant::now();
    let mut response = match client.get(url).send() {
        Ok(response) => response,
        Err(e) => return Outcome::failed(describe(&e), start.elapsed().as_secs_f64()),
    };
    let status = response.status();
    let mut buffer = [0u8; 64 * 1024];
    let mut bytes = 0u64;
    let read_error = loop {
        match response.read(&mut buffer) {
            Ok(0) => break None,
            Ok(n) => {
                bytes += n as u64;
                if bytes > max_body_bytes {
                    break Some(format!("body larger than {max_body_bytes} bytes"));
                }
            }
            Err(e) => break Some(format!("reading body: {e}")),
        }
    };
    finish(start, status, bytes, read_error)
}

/// Fetches with the async client.
pub(crate) async fn fetch_async(
    client: &reqwest::Client,
    url: &str,
    max_body_bytes: u64,
) -> Outcome {
    let start = Instant::now();
    let mut response = match client.get(url).send().await {
        Ok(response) => response,
        Err(e) => return Outcome::failed(describe(&e), start.elapsed().as_secs_f64()),
    };
    let status = response.status();
    let mut bytes = 0u64;
    let read_error = loop {
        match response.chunk().await {
            Ok(None) => break None,
            Ok(Some(chunk)) => {
                bytes += chunk.len() as u64;
                if bytes > max_body_bytes {
                    break Some(format!("body larger than {max_body_bytes} bytes"));
                }
            }
            Err(e) => break Some(format!("reading body: {}", describe(&e))),
        }
    };
    finish(start, status, bytes, read_error)
}

fn finish(
    start: Instant,
    status: reqwest::StatusCode,
    bytes: u64,
    read_error: Option<String>,
) -> Outcome {
    let error =
        read_error.or_else(|| (!status.is_success()).then(|| format!("HTTP {}", status.as_u16())));
    Outcome {
        ok: error.is_none(),
        duration_s: start.elapsed().as_secs_f64(),
        status: u32::from(status.as_u16()),
        bytes,
        error: error.unwrap_or_default(),
        ..Outcome::default()
    }
}

/// The error with its causes, which reqwest keeps in the source chain.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A blocking fetch usable *inside* an async task, for the `async-blocking` teaching variant.
///
/// reqwest's blocking client refuses to run inside a runtime, so this one hands the request to
/// a private runtime and parks the calling thread until the answer arrives: a real blocking
/// call, stalling whatever event loop it is made from.
#[derive(Debug)]
pub(crate) struct BlockingFetcher {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl BlockingFetcher {
    /// Must be created (and dropped) outside any async runtime.
    pub(crate) fn new(timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build runtime: {e}"))?;
        let client = {
            let _guard = runtime.enter();
            async_client(timeout)?
        };
        Ok(Self { runtime, client })
    }

    /// Blocks the calling thread until the fetch completes.
    pub(crate) fn fetch(&self, url: &str, max_body_bytes: u64) -> Outcome {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let client = self.client.clone();
        let url = url.to_string();
        self.runtime.spawn(async move {
            let _ = sender.send(fetch_async(&client, &url, max_body_bytes).await);
        });
        receiver
            .recv()
            .unwrap_or_else(|_| Outcome::failed("fetch task ended without a result", 0.0))
    }
}
