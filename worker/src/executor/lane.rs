//! The plain-HTTP fast path of the async strategies: each task ("lane") owns its keep-alive
//! connections, as each of wrk's connections does, so a request needs no shared pool checkout,
//! no client clone and no URL re-parsing. The profile of the shared reqwest client showed those
//! as most of a worker's user time per 100-byte response.
//!
//! Only `http://` URLs with a plain authority take this path. `https://`, user-info and URLs
//! that `http::Uri` will not take as written go through the shared [`Fetcher`], as do
//! redirects that lead to them; every hop still obeys the host rules.

use super::fetch::{Fetcher, MAX_REDIRECTS, describe, finish, private_only_error};
use concur_core::Outcome;
use concur_core::policy::is_private;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, Uri, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connections one lane keeps open, to different hosts; the least recently used is closed
/// beyond this. A lane runs one request at a time, so one per host is enough.
const CONNECTIONS_PER_LANE: usize = 4;

/// Connect attempts give up after this, or the request timeout if shorter (as reqwest's).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A lane's open connections, most recently used last.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    connections: Vec<Connection>,
}

#[derive(Debug)]
struct Connection {
    authority: String,
    send: SendRequest<Empty<Bytes>>,
}

/// A URL this path can send as is.
struct PlainTarget {
    uri: Uri,
}

impl PlainTarget {
    /// `Some` for `http://host[:port]/…` without user-info; everything else is left to reqwest.
    fn parse(url: &str) -> Option<Self> {
        let uri: Uri = url.parse().ok()?;
        let plain = uri.scheme_str() == Some("http")
            && uri
                .authority()
                .is_some_and(|a| !a.as_str().contains('@') && !a.host().is_empty());
        plain.then_some(Self { uri })
    }

    fn authority(&self) -> &str {
        self.uri.authority().map_or("", |a| a.as_str())
    }

    fn host(&self) -> &str {
        // `Uri` keeps IPv6 literals in brackets; the resolver wants them bare.
        let host = self.uri.host().unwrap_or("");
        host.trim_start_matches('[').trim_end_matches(']')
    }

    fn path(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

impl Lane {
    /// GETs `url` and reads the whole body, like [`Fetcher::fetch`] (same redirect rules, body
    /// cap and errors), within the request timeout.
    pub(crate) async fn fetch(&mut self, fetcher: &Fetcher, url: &str, max_body: u64) -> Outcome {
        let start = Instant::now();
        let timeout = fetcher.timeout();
        match tokio::time::timeout(timeout, self.follow(fetcher, url, max_body, start)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // The connection may be mid-response; it cannot be reused.
                self.connections.clear();
                Outcome::failed(
                    format!(
                        "{} after {}",
                        super::fetch::TIMED_OUT,
                        humantime::format_duration(timeout)
                    ),
                    start.elapsed().as_secs_f64(),
                )
            }
        }
    }

    async fn follow(
        &mut self,
        fetcher: &Fetcher,
        url: &str,
        max_body: u64,
        start: Instant,
    ) -> Outcome {
        let failed = |error: String| Outcome::failed(error, start.elapsed().as_secs_f64());
        let mut next: Option<String> = None;
        for hops in 0..=MAX_REDIRECTS {
            let current = next.as_deref().unwrap_or(url);
            let Some(target) = PlainTarget::parse(current) else {
                return fetcher.fetch_from(current, hops, max_body, start).await;
            };
            let response = match self.send(fetcher, &target).await {
                Ok(response) => response,
                Err(error) => return failed(error),
            };
            let status = response.status();
            let location = status
                .is_redirection()
                .then(|| response.headers().get(header::LOCATION))
                .flatten()
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let Some(location) = location else {
                let (bytes, read_error) = read_body(response, max_body).await;
                if read_error.is_some() {
                    self.forget(target.authority());
                }
                return finish(start, status.as_u16(), bytes, read_error);
            };
            // Read the redirect's own body so that its connection can carry the next request.
            if read_body(response, max_body).await.1.is_some() {
                self.forget(target.authority());
            }
            match fetcher.redirect_target(current, &location) {
                Ok(target) => next = Some(target),
                Err(error) => return failed(error),
            }
        }
        failed("too many redirects".into())
    }

    /// Sends a GET for `target` on this lane's connection to its host, opening one if needed.
    /// A request that fails on a reused connection before any answer (the server closed it
    /// while idle, and the close or reset crossed our request) is sent once more on a new
    /// one, as HTTP clients do for idempotent requests.
    async fn send(
        &mut self,
        fetcher: &Fetcher,
        target: &PlainTarget,
    ) -> Result<Response<Incoming>, String> {
        let authority = target.authority();
        let reused = self.ready(authority).await;
        if !reused {
            self.open(fetcher, target).await?;
        }
        let request = || {
            Request::get(target.path())
                .header(header::HOST, authority)
                .header(header::ACCEPT, "*/*")
                .body(Empty::new())
                .map_err(|e| format!("bad request for {}: {e}", target.uri))
        };
        let last = self.connections.len() - 1;
        match self.connections[last].send.send_request(request()?).await {
            Ok(response) => Ok(response),
            Err(_) if reused => {
                self.connections.pop();
                self.open(fetcher, target).await?;
                let last = self.connections.len() - 1;
                self.connections[last]
                    .send
                    .send_request(request()?)
                    .await
                    .map_err(|e| self.failure(&target.uri, &e))
            }
            Err(error) => Err(self.failure(&target.uri, &error)),
        }
    }

    /// Drops the connection a request failed on and names the failure.
    fn failure(&mut self, uri: &Uri, error: &hyper::Error) -> String {
        self.connections.pop();
        format!("error sending request for url ({uri}): {}", describe(error))
    }

    /// True when a reusable connection to `authority` is now the most recent one.
    async fn ready(&mut self, authority: &str) -> bool {
        let Some(index) = self
            .connections
            .iter()
            .position(|c| c.authority == authority)
        else {
            return false;
        };
        let mut connection = self.connections.remove(index);
        // Waits for the previous response to be fully processed; fails if the server closed it.
        if connection.send.ready().await.is_err() {
            return false;
        }
        self.connections.push(connection);
        true
    }

    /// Opens a connection to `target`'s host and makes it the most recent one.
    async fn open(&mut self, fetcher: &Fetcher, target: &PlainTarget) -> Result<(), String> {
        let addresses = resolve(fetcher, target).await?;
        let connect_timeout = fetcher.timeout().min(CONNECT_TIMEOUT);
        let mut last_error = String::from("no address");
        let mut stream = None;
        for address in addresses {
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address))
                .await
            {
                Ok(Ok(connected)) => {
                    stream = Some(connected);
                    break;
                }
                Ok(Err(e)) => last_error = format!("tcp connect error: {e}"),
                Err(_) => last_error = "tcp connect timed out".into(),
            }
        }
        let Some(stream) = stream else {
            return Err(format!(
                "error sending request for url ({}): {last_error}",
                target.uri
            ));
        };
        // Requests are small and answered at once; Nagle would hold each for an ACK.
        let _ = stream.set_nodelay(true);
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {}: {}", target.authority(), describe(&e)))?;
        // Drives the socket; ends when the lane drops `send` or the server closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        if self.connections.len() >= CONNECTIONS_PER_LANE {
            self.connections.remove(0);
        }
        self.connections.push(Connection {
            authority: target.authority().to_string(),
            send,
        });
        Ok(())
    }

    fn forget(&mut self, authority: &str) {
        self.connections.retain(|c| c.authority != authority);
    }
}

/// The addresses of `target`'s host; with `deny_private`, names resolving to private addresses
/// are refused as the shared client's resolver does (IP literals were checked at submission).
async fn resolve(fetcher: &Fetcher, target: &PlainTarget) -> Result<Vec<SocketAddr>, String> {
    let host = target.host();
    let port = target.uri.port_u16().unwrap_or(80);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolved = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("dns error for {host}: {e}"))?;
    if !fetcher.denies_private() {
        return Ok(resolved.collect());
    }
    let public: Vec<SocketAddr> = resolved.filter(|a| !is_private(a.ip())).collect();
    if public.is_empty() {
        return Err(private_only_error(host));
    }
    Ok(public)
}

/// Reads a body to its end: the bytes read and, if it failed or passed `max_body`, why.
async fn read_body(response: Response<Incoming>, max_body: u64) -> (u64, Option<String>) {
    let mut body = response.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    bytes += data.len() as u64;
                    if bytes > max_body {
                        return (bytes, Some(format!("body larger than {max_body} bytes")));
                    }
                }
            }
            Err(e) => return (bytes, Some(format!("reading body: {}", describe(&e)))),
        }
    }
    (bytes, None)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::executor::HttpConfig;
    use crate::executor::fetch::async_client;
    use concur_core::policy::HostPolicy;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the test server answers for a path: the raw response and whether to close after.
    type Handler = fn(&str) -> (String, bool);

    /// A keep-alive HTTP/1.1 server on loopback; returns its address and a count of the
    /// connections it accepted.
    fn server(handler: Handler) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || serve(stream, handler));
            }
        });
        (address, accepted)
    }

    fn serve(mut stream: std::net::TcpStream, handler: Handler) {
        let mut pending = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            while !pending.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending.extend_from_slice(&buffer[..n]),
                }
            }
            let end = pending.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8_lossy(&pending[..end]).to_string();
            pending.drain(..end);
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let (answer, close) = handler(&path);
            if stream.write_all(answer.as_bytes()).is_err() || close {
                return;
            }
        }
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn http(timeout: Duration) -> HttpConfig {
        HttpConfig {
            timeout,
            policy: Arc::new(HostPolicy::default()),
        }
    }

    /// Fetches `urls` in order on one lane, returning their outcomes.
    pub(in crate::executor) fn on_one_lane(
        http: &HttpConfig,
        urls: &[String],
        max_body: u64,
    ) -> Vec<Outcome> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let fetcher = async_client(http).unwrap();
            let mut lane = Lane::default();
            let mut outcomes = Vec::new();
            for url in urls {
                outcomes.push(lane.fetch(&fetcher, url, max_body).await);
            }
            outcomes
        })
    }

    #[test]
    fn a_lane_sends_its_requests_on_one_kept_alive_connection() {
        let (address, accepted) = server(|_| (ok("hello"), false));
        let urls: Vec<String> = (0..20).map(|i| format!("{address}/i/{i}")).collect();
        let outcomes = on_one_lane(&http(Duration::from_secs(5)), &urls, 1024);
        for outcome in &outcomes {
            assert!(outcome.ok, "{outcome:?}");
            assert_eq!((outcome.status, outcome.bytes), (200, 5));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_connection_the_server_closed_is_replaced_without_failing_a_request() {
        // Every answer closes its connection after being sent, without saying so.
        let (address, accepted) = server(|_| (ok("x"), true));
        let urls: Vec<String> = (0..10).map(|i| format!("{address}/i/{i}")).collect();
        let outcomes = on_one_lane(&http(Duration::from_secs(5)), &urls, 1024);
        for outcome in &outcomes {
            assert!(outcome.ok, "{outcome:?}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn redirects_are_followed_and_statuses_bodies_and_stalls_fail_as_with_reqwest() {
        let (address, _) = server(|path| match path {
            "/moved" => (
                "HTTP/1.1 302 Found\r\nlocation: /final\r\ncontent-length: 3\r\n\r\nbye".into(),
                false,
            ),
            "/final" => (ok("arrived"), false),
            "/loop" => (
                "HTTP/1.1 302 Found\r\nlocation: /loop\r\ncontent-length: 0\r\n\r\n".into(),
                false,
            ),
            "/big" => (ok(&"b".repeat(2000)), false),
            "/stall" => {
                std::thread::sleep(Duration::from_secs(3));
                (ok("late"), true)
            }
            _ => (
                "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope".into(),
                false,
            ),
        });
        let urls: Vec<String> = ["/moved", "/loop", "/big", "/missing", "/stall"]
            .iter()
            .map(|path| format!("{address}{path}"))
            .collect();
        let outcomes = on_one_lane(&http(Duration::from_millis(500)), &urls, 1024);
        assert!(outcomes[0].ok, "{:?}", outcomes[0]);
        assert_eq!(outcomes[0].bytes, 7);
        assert_eq!(outcomes[1].error, "too many redirects");
        assert_eq!(outcomes[2].error, "body larger than 1024 bytes");
        assert_eq!(
            (outcomes[3].status, outcomes[3].error.as_str()),
            (404, "HTTP 404")
        );
        assert!(outcomes[4].error.contains("timed out"), "{:?}", outcomes[4]);
    }

    #[test]
    fn a_refused_connection_names_the_url_and_the_cause() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let outcomes = on_one_lane(
            &http(Duration::from_secs(5)),
            std::slice::from_ref(&url),
            1024,
        );
        let error = &outcomes[0].error;
        assert!(error.contains(&url) && error.contains("refused"), "{error}");
    }

    #[test]
    fn https_and_odd_urls_are_left_to_the_shared_client() {
        assert!(PlainTarget::parse("http://127.0.0.1:80/a?b=c").is_some());
        assert!(PlainTarget::parse("https://example.com/").is_none());
        assert!(PlainTarget::parse("http://user:pw@example.com/").is_none());
        assert!(PlainTarget::parse("http://exa mple.com/").is_none());
        let ipv6 = PlainTarget::parse("http://[::1]:8080/x").unwrap();
        assert_eq!((ipv6.host(), ipv6.path()), ("::1", "/x"));
    }
}
