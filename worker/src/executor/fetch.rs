//! GET a URL and read the whole body, with a blocking or an async client.
//!
//! A failed request is a failed unit with its error, never a failed shard. Non-2xx statuses
//! fail the unit but keep the status and bytes read.

use super::HttpConfig;
use concur_core::Outcome;
use concur_core::policy::{HostPolicy, is_private};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// Redirects followed at most, as reqwest's default.
const MAX_REDIRECTS: usize = 10;

/// A resolver that drops loopback, private and link-local addresses, so a public-looking name
/// cannot lead a worker into its own network.
#[derive(Debug)]
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| !is_private(address.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(format!(
                    "{host} resolves only to private or loopback addresses, which this coordinator denies"
                )
                .into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Every redirect hop obeys the same host rules as the submitted URL (IP literals skip DNS, so
/// `deny_private` must be checked here too).
fn redirect_policy(policy: Arc<HostPolicy>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        match policy.check(attempt.url().as_str()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(format!("redirect refused: {refused}")),
        }
    })
}

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
pub(crate) fn blocking_client(http: &HttpConfig) -> Result<reqwest::blocking::Client, String> {
    install_crypto_provider();
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(http.timeout)
        .connect_timeout(http.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .redirect(redirect_policy(http.policy.clone()));
    if http.policy.deny_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// An async client shared by all tasks of a shard.
///
/// # Errors
/// The TLS backend cannot be initialised.
pub(crate) fn async_client(http: &HttpConfig) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(http.timeout)
        .connect_timeout(http.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .redirect(redirect_policy(http.policy.clone()));
    if http.policy.deny_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
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
    pub(crate) fn new(http: &HttpConfig) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build runtime: {e}"))?;
        let client = {
            let _guard = runtime.enter();
            async_client(http)?
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one redirect to `location`, then plain answers, on a loopback port.
    fn redirecting_server(location: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(4) {
                let mut stream = stream;
                let mut buffer = [0u8; 1024];
                let _ = std::io::Read::read(&mut stream, &mut buffer);
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
            }
        });
        port
    }

    #[test]
    fn redirects_obey_the_host_rules() {
        let port = redirecting_server("http://169.254.169.254/latest/meta-data");
        let url = format!("http://127.0.0.1:{port}/");
        let policy = HostPolicy {
            allow: Vec::new(),
            deny: vec!["169.254.169.254".into()],
            deny_private: false,
        };
        let http = HttpConfig {
            timeout: Duration::from_secs(5),
            policy: Arc::new(policy),
        };
        let outcome = fetch_blocking(&blocking_client(&http).unwrap(), &url, 1024);
        assert!(!outcome.ok);
        assert!(
            outcome.error.contains("redirect refused"),
            "{}",
            outcome.error
        );
        assert!(outcome.error.contains("denied"), "{}", outcome.error);
    }

    #[test]
    fn names_resolving_to_loopback_are_refused_when_denying_private() {
        // A real listener: without the policy the fetch reaches it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(4) {
                let mut stream = stream;
                let mut buffer = [0u8; 1024];
                let _ = std::io::Read::read(&mut stream, &mut buffer);
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        let url = format!("http://localhost:{port}/");
        let open = HttpConfig {
            timeout: Duration::from_secs(5),
            policy: Arc::new(HostPolicy::default()),
        };
        let outcome = fetch_blocking(&blocking_client(&open).unwrap(), &url, 1024);
        assert!(outcome.ok, "{outcome:?}");
        let denied = HttpConfig {
            policy: Arc::new(HostPolicy {
                deny_private: true,
                ..HostPolicy::default()
            }),
            ..open.clone()
        };
        let outcome = fetch_blocking(&blocking_client(&denied).unwrap(), &url, 1024);
        assert!(!outcome.ok);
        assert!(
            outcome.error.contains("private or loopback"),
            "{}",
            outcome.error
        );
    }
}
