//! The local site simulator: stands in for the internet so I/O results are reproducible.
//!
//! Every GET waits a configured latency (plus jitter) and answers with a body of a set size.
//! Faults can be injected: a fraction of 500s, connection resets and stalls. Query parameters
//! override the defaults per request: `?latency=20ms&bytes=5000&status=404`.
//!
//! `--capacity K` makes it a server with K workers: at most K requests are served at once (the
//! latency is each one's service time), the rest wait their turn — so there is a best
//! concurrency to find, past which only the queue grows. `--queue-limit Q` sheds load beyond Q
//! waiting requests with an immediate 503. `GET /__stats` answers what it saw, per `Host`:
//! requests, the most in flight at once, the least time between two arrivals.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::debug;

/// Options of `concur-cli sites serve`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SitesServeOpts {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Time before each response.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub(crate) latency: Duration,
    /// Extra random latency, uniform in 0..jitter.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    pub(crate) jitter: Duration,
    /// Body size: bytes, or with a k/m suffix (1k = 1000 bytes, 1ki = 1024).
    #[arg(long, default_value = "100k", value_parser = parse_size)]
    pub(crate) bytes: u64,
    /// Fraction of requests answered with HTTP 500.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub(crate) error_rate: f64,
    /// Fraction of requests whose connection is reset without an answer.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub(crate) reset_rate: f64,
    /// Fraction of requests that stall (answer only after --stall).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub(crate) stall_rate: f64,
    /// How long a stalled request hangs.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) stall: Duration,
    /// Requests served at once at most (each takes --latency); the rest wait in a queue
    /// (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub(crate) capacity: u32,
    /// With --capacity: requests waiting at most; more are answered 503 at once (0 = no limit).
    #[arg(long, default_value_t = 0, requires = "capacity")]
    pub(crate) queue_limit: u32,
}

/// Parses `100k`, `1m`, `512`, `4ki`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, multiplier) = [
        ("ki", 1024u64),
        ("mi", 1024 * 1024),
        ("k", 1000),
        ("m", 1_000_000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| lower.strip_suffix(suffix).map(|d| (d.to_string(), *m)))
    .unwrap_or((lower.clone(), 1));
    let value: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 512, 100k, 1m, 4ki)"))?;
    value
        .checked_mul(multiplier)
        .filter(|v| *v <= 1 << 30)
        .ok_or_else(|| format!("'{text}' is larger than 1 GiB"))
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{text}' is not a fraction between 0 and 1")),
    }
}

#[derive(Debug)]
struct Site {
    opts: SitesServeOpts,
    body: Bytes,
    /// `--capacity`'s service slots.
    capacity: Option<tokio::sync::Semaphore>,
    /// Requests waiting for a service slot.
    waiting: AtomicU32,
    stats: Mutex<Stats>,
}

/// What the simulator saw of one `Host`.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct HostStats {
    requests: u64,
    in_flight: u32,
    peak_in_flight: u32,
    /// The least time between two arrivals, in milliseconds (`null` before the second).
    min_gap_ms: Option<f64>,
    #[serde(skip)]
    last_arrival: Option<std::time::Instant>,
}

/// What `GET /__stats` answers.
#[derive(Debug, Default, serde::Serialize)]
struct Stats {
    requests: u64,
    /// Answered 503 by `--queue-limit`.
    shed: u64,
    peak_in_flight: u32,
    #[serde(skip)]
    in_flight: u32,
    hosts: std::collections::BTreeMap<String, HostStats>,
}

impl Stats {
    fn arrive(&mut self, host: &str) {
        self.requests += 1;
        self.in_flight += 1;
        self.peak_in_flight = self.peak_in_flight.max(self.in_flight);
        let now = std::time::Instant::now();
        let entry = self.hosts.entry(host.to_string()).or_default();
        entry.requests += 1;
        entry.in_flight += 1;
        entry.peak_in_flight = entry.peak_in_flight.max(entry.in_flight);
        if let Some(last) = entry.last_arrival {
            let gap = now.duration_since(last).as_secs_f64() * 1000.0;
            entry.min_gap_ms = Some(entry.min_gap_ms.map_or(gap, |g: f64| g.min(gap)));
        }
        entry.last_arrival = Some(now);
    }

    fn leave(&mut self, host: &str) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(entry) = self.hosts.get_mut(host) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
    }
}

/// Marks a request's end in the stats however it ends (answered, reset, dropped).
struct InFlight<'a> {
    site: &'a Site,
    host: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.site
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .leave(&self.host);
    }
}

/// Serves on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    opts: SitesServeOpts,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    concur_worker::system::raise_fd_limit();
    let body = Bytes::from(vec![b'x'; opts.bytes as usize]);
    let capacity = (opts.capacity > 0).then(|| tokio::sync::Semaphore::new(opts.capacity as usize));
    let site = Arc::new(Site {
        opts,
        body,
        capacity,
        waiting: AtomicU32::new(0),
        stats: Mutex::default(),
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    debug!(cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let site = site.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(site.clone(), request));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, cause = %e, "connection ended");
            }
        });
    }
}

/// Runs `sites serve` in the foreground.
pub(crate) async fn run(opts: SitesServeOpts) -> anyhow::Result<()> {
    let listener = concur_coordinator::listen::bind(&opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let capacity = match (opts.capacity, opts.queue_limit) {
        (0, _) => String::new(),
        (k, 0) => format!(", capacity {k} at once"),
        (k, q) => format!(", capacity {k} at once, 503 beyond {q} waiting"),
    };
    crate::stdout::outln!(
        "sites listening on http://{} (latency {:?} + up to {:?} jitter, body {} bytes, errors {}, resets {}, stalls {}{capacity})",
        listener.local_addr()?,
        opts.latency,
        opts.jitter,
        opts.bytes,
        opts.error_rate,
        opts.reset_rate,
        opts.stall_rate
    );
    serve(listener, opts, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Per-request overrides from the query string.
#[derive(Debug, Default)]
struct Overrides {
    latency: Option<Duration>,
    bytes: Option<u64>,
    status: Option<u16>,
}

fn overrides(query: Option<&str>) -> Overrides {
    let mut result = Overrides::default();
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("latency", v)) => result.latency = humantime::parse_duration(v).ok(),
            Some(("bytes", v)) => result.bytes = parse_size(v).ok(),
            Some(("status", v)) => result.status = v.parse().ok(),
            _ => {}
        }
    }
    result
}

/// Error returned to hyper to abort the connection: the client sees a reset.
#[derive(Debug)]
struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for InjectedReset {}

async fn respond(
    site: Arc<Site>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, InjectedReset> {
    if request.uri().path() == "/__stats" {
        let stats = serde_json::to_vec(&*site.stats.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_default();
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(stats)))
            .expect("static response parts are valid"));
    }
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    site.stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .arrive(&host);
    let _in_flight = InFlight { site: &site, host };
    // With a capacity, a request waits for a service slot (or is shed) before its latency.
    let _served = match &site.capacity {
        None => None,
        Some(slots) => {
            let limit = site.opts.queue_limit;
            let waiting = site.waiting.fetch_add(1, Ordering::SeqCst);
            if limit > 0 && waiting >= limit && slots.available_permits() == 0 {
                site.waiting.fetch_sub(1, Ordering::SeqCst);
                site.stats.lock().unwrap_or_else(|p| p.into_inner()).shed += 1;
                return Ok(Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .header("retry-after", "1")
                    .body(Full::new(Bytes::new()))
                    .expect("static response parts are valid"));
            }
            let permit = slots.acquire().await.ok();
            site.waiting.fetch_sub(1, Ordering::SeqCst);
            permit
        }
    };
    let opts = &site.opts;
    let over = overrides(request.uri().query());
    let (roll, jitter) = {
        let mut rng = rand::rng();
        let jitter = if opts.jitter.is_zero() {
            Duration::ZERO
        } else {
            opts.jitter.mul_f64(rng.random::<f64>())
        };
        (rng.random::<f64>(), jitter)
    };
    tokio::time::sleep(over.latency.unwrap_or(opts.latency) + jitter).await;
    if roll < opts.reset_rate {
        return Err(InjectedReset);
    }
    if roll < opts.reset_rate + opts.stall_rate {
        tokio::time::sleep(opts.stall).await;
    }
    let status = if roll >= opts.reset_rate + opts.stall_rate
        && roll < opts.reset_rate + opts.stall_rate + opts.error_rate
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        over.status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK)
    };
    let body = match over.bytes {
        Some(n) if n as usize <= site.body.len() => site.body.slice(..n as usize),
        Some(n) => Bytes::from(vec![b'x'; n as usize]),
        None => site.body.clone(),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .body(Full::new(body))
        .expect("static response parts are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("100k"), Ok(100_000));
        assert_eq!(parse_size("4ki"), Ok(4096));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1m"), Ok(1_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5000m").is_err());
    }

    #[test]
    fn fractions_must_be_between_zero_and_one() {
        assert!(parse_fraction("0.5").is_ok());
        assert!(parse_fraction("1.5").is_err());
        assert!(parse_fraction("-0.1").is_err());
    }
}
