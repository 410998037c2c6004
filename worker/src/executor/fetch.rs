//! GET a URL and read the whole body, with a blocking or an async client.
//!
//! A failed request is a failed unit with its error, never a failed shard. Non-2xx statuses
//! fail the unit but keep the status and bytes read.

use super::HttpConfig;
use concur_core::Outcome;
use concur_core::policy::{HostPolicy, is_private};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// How a fetch's timeout error starts, on every path (the limiter reads it as overload).
pub(crate) const TIMED_OUT: &str = "request timed out";

/// The error text of a request that failed with `e` under `timeout`: a timeout says so the
/// same way on every path, without the URL.
fn request_error(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("{TIMED_OUT} after {}", humantime::format_duration(timeout))
    } else {
        describe(e)
    }
}

/// Redirects followed at most, as reqwest's default.
pub(crate) const MAX_REDIRECTS: usize = 10;

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
                return Err(private_only_error(&host).into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a name was refused under `deny_private`.
pub(crate) fn private_only_error(host: &str) -> String {
    format!("{host} resolves only to private or loopback addresses, which this coordinator denies")
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

/// An async client shared by all tasks of a shard.
///
/// # Errors
/// The TLS backend cannot be initialised.
pub(crate) fn async_client(http: &HttpConfig) -> Result<Fetcher, String> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(http.timeout)
        .connect_timeout(http.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        // Redirects are followed by `Fetcher::fetch` itself, which checks every hop against
        // the host rules; reqwest's own following parses each URL twice more per request.
        .redirect(reqwest::redirect::Policy::none())
        // Proxies would be taken from the environment and matched on every request; a
        // worker fetches what its job says, directly.
        .no_proxy()
        .tcp_nodelay(true);
    if http.policy.deny_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))?;
    Ok(Fetcher {
        client,
        policy: http.policy.clone(),
        timeout: http.timeout,
    })
}

/// An async HTTP client and the host rules every redirect hop must obey.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    policy: Arc<HostPolicy>,
    timeout: Duration,
}

impl Fetcher {
    /// The per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True when names resolving to private addresses must be refused.
    pub(crate) fn denies_private(&self) -> bool {
        self.policy.deny_private
    }

    /// GETs `url` (following at most [`MAX_REDIRECTS`] redirects, each checked against the
    /// host rules) and reads the whole body, failing past `max_body_bytes`.
    pub(crate) async fn fetch(&self, url: &str, max_body_bytes: u64) -> Outcome {
        self.fetch_from(url, 0, max_body_bytes, Instant::now())
            .await
    }

    /// [`Fetcher::fetch`] for a request that started at `start` and has followed `hops`
    /// redirects already.
    pub(crate) async fn fetch_from(
        &self,
        url: &str,
        mut hops: usize,
        max_body_bytes: u64,
        start: Instant,
    ) -> Outcome {
        let failed = |error: String| Outcome::failed(error, start.elapsed().as_secs_f64());
        let mut target = match reqwest::Url::parse(url) {
            Ok(target) => target,
            Err(e) => return failed(format!("bad URL: {e}")),
        };
        let response = loop {
            let response = match self.client.get(target.clone()).send().await {
                Ok(response) => response,
                Err(e) => return failed(request_error(&e, self.timeout)),
            };
            let location = response
                .status()
                .is_redirection()
                .then(|| response.headers().get(reqwest::header::LOCATION))
                .flatten()
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let Some(location) = location else {
                break response;
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                return failed("too many redirects".into());
            }
            target = match self.redirect_target(target.as_str(), &location) {
                Ok(next) => match reqwest::Url::parse(&next) {
                    Ok(next) => next,
                    Err(e) => return failed(format!("bad redirect to {location}: {e}")),
                },
                Err(error) => return failed(error),
            };
        };
        read_body(start, response, max_body_bytes, self.timeout).await
    }

    /// Where a redirect from `from` to `location` leads, if the host rules allow it.
    ///
    /// # Errors
    /// The location is not a URL, or the rules refuse its host.
    pub(crate) fn redirect_target(&self, from: &str, location: &str) -> Result<String, String> {
        let next = reqwest::Url::parse(from)
            .and_then(|from| from.join(location))
            .map_err(|e| format!("bad redirect to {location}: {e}"))?;
        self.policy
            .check(next.as_str())
            .map_err(|refused| format!("redirect refused: {refused}"))?;
        Ok(next.into())
    }
}

/// Reads a response's body to its end, failing past `max_body_bytes`.
async fn read_body(
    start: Instant,
    mut response: reqwest::Response,
    max_body_bytes: u64,
    timeout: Duration,
) -> Outcome {
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
            Err(e) if e.is_timeout() => break Some(request_error(&e, timeout)),
            Err(e) => break Some(format!("reading body: {}", describe(&e))),
        }
    };
    finish(start, status.as_u16(), bytes, read_error)
}

/// The outcome of a response with `status` whose body gave `bytes` (and `read_error`, if
/// reading it failed): non-2xx statuses fail the unit.
pub(crate) fn finish(
    start: Instant,
    status: u16,
    bytes: u64,
    read_error: Option<String>,
) -> Outcome {
    let error =
        read_error.or_else(|| (!(200..300).contains(&status)).then(|| format!("HTTP {status}")));
    Outcome {
        ok: error.is_none(),
        duration_s: start.elapsed().as_secs_f64(),
        status: u32::from(status),
        bytes,
        error: error.unwrap_or_default(),
        ..Outcome::default()
    }
}

/// The error with its causes, which reqwest keeps in the source chain.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The I/O runtime behind a shard's blocking clients: their requests run here while the
/// calling threads wait, so a cancelled shard can abort them (closing their connections)
/// instead of waiting out a request timeout. Dropped when the shard ends.
#[derive(Debug)]
pub(crate) struct IoRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl IoRuntime {
    /// A runtime with `threads` I/O threads; must be made (and dropped) outside async code.
    pub(crate) fn new(threads: usize) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("concur-io")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build I/O runtime: {e}"))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// A blocking client with its own connection pool (one per thread: a "session per
    /// thread").
    pub(crate) fn client(&self, http: &HttpConfig) -> Result<BlockingClient, String> {
        let runtime = self.runtime.as_ref().ok_or("I/O runtime stopped")?;
        let _guard = runtime.enter();
        Ok(BlockingClient {
            client: async_client(http)?,
            handle: runtime.handle().clone(),
        })
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Requests still in flight were aborted; do not wait for their sockets to close.
            runtime.shutdown_timeout(Duration::from_millis(100));
        }
    }
}

/// How often a waiting thread checks its shard's cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// A blocking HTTP client: the calling thread waits for each request, as with any blocking
/// client, but a cancelled shard abandons the request within [`CANCEL_POLL`].
#[derive(Debug, Clone)]
pub(crate) struct BlockingClient {
    client: Fetcher,
    handle: tokio::runtime::Handle,
}

impl BlockingClient {
    /// Fetches `url`, blocking the calling thread until done or `cancel` is set.
    pub(crate) fn fetch(&self, url: &str, max_body_bytes: u64, cancel: &AtomicBool) -> Outcome {
        let start = Instant::now();
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let client = self.client.clone();
        let url = url.to_string();
        let task = self.handle.spawn(async move {
            let _ = sender.send(client.fetch(&url, max_body_bytes).await);
        });
        loop {
            match receiver.recv_timeout(CANCEL_POLL) {
                Ok(outcome) => return outcome,
                Err(RecvTimeoutError::Timeout) if cancel.load(Ordering::Relaxed) => {
                    // Dropping the request's future closes its connection.
                    task.abort();
                    return Outcome::failed("cancelled", start.elapsed().as_secs_f64());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Outcome::failed("fetch task ended without a result", 0.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocking_fetch(http: &HttpConfig, url: &str) -> Outcome {
        let io = IoRuntime::new(1).unwrap();
        let client = io.client(http).unwrap();
        client.fetch(url, 1024, &AtomicBool::new(false))
    }

    /// Both clients a worker fetches with.
    fn both_paths(http: &HttpConfig, url: &str) -> [(&'static str, Outcome); 2] {
        [
            ("blocking", blocking_fetch(http, url)),
            (
                "lane",
                super::super::lane::tests::on_one_lane(http, &[url.to_string()], 1024).remove(0),
            ),
        ]
    }

    #[test]
    fn a_cancelled_blocking_fetch_stops_within_a_moment_and_closes_its_connection() {
        // A server that accepts and then never answers.
        let (port, closed) = super::super::stalling_server();
        let http = HttpConfig {
            timeout: Duration::from_secs(30),
            policy: Arc::new(HostPolicy::default()),
        };
        let io = IoRuntime::new(1).unwrap();
        let client = io.client(&http).unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let outcome = client.fetch(&format!("http://127.0.0.1:{port}/stall"), 1024, &cancel);
        assert_eq!(outcome.error, "cancelled");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        drop(client);
        drop(io);
        let read = closed
            .recv_timeout(Duration::from_secs(2))
            .expect("connection closed");
        assert_eq!(read, 0);
    }

    /// Serves one redirect to `location`, then plain answers, on a loopback port.
    fn redirecting_server(location: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(8) {
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
        for (path, outcome) in both_paths(&http, &url) {
            assert!(!outcome.ok, "{path}");
            assert!(
                outcome.error.contains("redirect refused"),
                "{path}: {}",
                outcome.error
            );
            assert!(
                outcome.error.contains("denied"),
                "{path}: {}",
                outcome.error
            );
        }
    }

    #[test]
    fn names_resolving_to_loopback_are_refused_when_denying_private() {
        // A real listener: without the policy the fetch reaches it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(8) {
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
        for (path, outcome) in both_paths(&open, &url) {
            assert!(outcome.ok, "{path}: {outcome:?}");
        }
        let denied = HttpConfig {
            policy: Arc::new(HostPolicy {
                deny_private: true,
                ..HostPolicy::default()
            }),
            ..open.clone()
        };
        for (path, outcome) in both_paths(&denied, &url) {
            assert!(!outcome.ok, "{path}");
            assert!(
                outcome.error.contains("private or loopback"),
                "{path}: {}",
                outcome.error
            );
        }
    }
}
