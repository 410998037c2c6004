//! The local site simulator: stands in for the internet so I/O results are reproducible.
//!
//! Every GET waits a configured latency (plus jitter) and answers with a body of a set size.
//! Faults can be injected: a fraction of 500s, connection resets and stalls. Query parameters
//! override the defaults per request: `?latency=20ms&bytes=5000&status=404`.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
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
}

/// Serves on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    opts: SitesServeOpts,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    concur_worker::system::raise_fd_limit();
    let body = Bytes::from(vec![b'x'; opts.bytes as usize]);
    let site = Arc::new(Site { opts, body });
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
    crate::stdout::outln!(
        "sites listening on http://{} (latency {:?} + up to {:?} jitter, body {} bytes, errors {}, resets {}, stalls {})",
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
