//! The worker daemon: one `Attach` stream per session, re-established with capped exponential
//! backoff and jitter when it breaks.
//!
//! Policy when the stream breaks: shards running at that moment are cancelled and their results
//! dropped. A lease lives exactly as long as the stream it was granted on: the coordinator
//! re-queues the shards of a broken stream (or of a restarted coordinator) with a new attempt,
//! so results of the old lease would be refused anyway. Nothing is lost, nothing counted twice.
//!
//! Drain (SIGTERM): the worker tells the coordinator it is draining (no new shards), waits until
//! every running shard is finished *and acknowledged* as committed, then detaches. Past
//! `--drain-timeout` it cancels what is left and detaches, which hands those shards back.

use crate::connect::{self, BearerToken};
use crate::session::{Session, SessionEnd};
use crate::settings::WorkerSettings;
use crate::slots::Slots;
use crate::system;
use anyhow::Context;
use rand::Rng;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// First and largest pause between attach attempts.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Attaches and serves shards until `shutdown` completes.
///
/// # Errors
/// The coordinator address or TLS settings are invalid, the coordinator refuses the worker's
/// credentials, or `--max-attach-failures` was reached.
pub async fn run(
    opts: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    system::raise_fd_limit();
    // An active coordinator and its standbys: attach to whichever answers as the active one.
    let urls = opts.coordinators();
    let endpoints = urls
        .iter()
        .map(|url| connect::endpoint_for(&opts, url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut current = 0;
    let token = BearerToken::new(opts.token.as_ref())?;
    if let Some(addr) = &opts.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        let bound = listener.local_addr()?;
        info!(addr = %bound, "serving Prometheus metrics at /metrics");
        // Printed on stdout so scripts (and tests) learn an ephemeral port.
        println!("concur-worker metrics on http://{bound}/metrics");
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listener).await {
                warn!(cause = %e, "the metrics listener failed");
            }
        });
    }
    let (drain_sender, mut drain) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        info!("shutdown requested: draining");
        let _ = drain_sender.send(true);
    });
    // Slots outlive sessions: a shard still stopping from a broken session keeps its slot.
    let slots = Slots::start(opts.slots, opts.max_threads);
    let mut failures = 0u32;
    let mut backoff = BACKOFF_START;
    loop {
        if *drain.borrow() {
            return Ok(());
        }
        let url = &urls[current];
        let session = Session::new(&opts);
        match session
            .run(
                &endpoints[current],
                &token,
                &mut drain,
                opts.drain_timeout,
                &slots,
            )
            .await
        {
            Ok(SessionEnd::Drained) => {
                info!("drained; detached from the coordinator");
                return Ok(());
            }
            Ok(SessionEnd::Closed) => {
                info!(coordinator = %url, "stream to coordinator closed; re-attaching");
                failures = 0;
                backoff = BACKOFF_START;
                // It may have stopped for good (a failover): try the next one first.
                current = (current + 1) % urls.len();
            }
            Err(e) if urls.len() > 1 && is_standby(&e) => {
                info!(coordinator = %url, "a standby; trying the next coordinator");
                current = (current + 1) % urls.len();
                // Cycled through every one and none is active yet: a failover is under way.
                if current == 0 {
                    tokio::select! {
                        () = tokio::time::sleep(STANDBY_RETRY) => {}
                        _ = drain.changed() => return Ok(()),
                    }
                }
                continue;
            }
            Err(e) if connect::not_a_coordinator(&e) => {
                // Retrying cannot help either: something else answers at that address.
                return Err(e.context(format!(
                    "the server at {url} answered, but not as a concur coordinator (is the address or port right? plain HTTP, or another service, answered the gRPC call)"
                )));
            }
            Err(e) if refused_credentials(&e) => {
                // Retrying cannot help: the operator must fix the token or certificate.
                return Err(e.context(format!(
                    "the coordinator at {url} refused this worker: set --token-file / CONCUR_WORKER_TOKEN to its worker token (and --tls-cert/--tls-key if it requires client certificates)"
                )));
            }
            Err(e) => {
                let e = connect::explain_attach_failure(e, &opts).await;
                failures += 1;
                crate::metrics::global().attach_failed();
                warn!(cause = %format!("{e:#}"), coordinator = %url, "attach failed");
                if opts.max_attach_failures != 0 && failures >= opts.max_attach_failures {
                    return Err(e.context(format!("cannot attach to coordinator at {url}")));
                }
                current = (current + 1) % urls.len();
            }
        }
        let jitter = rand::rng().random_range(0.5..1.5);
        tokio::select! {
            () = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
            _ = drain.changed() => return Ok(()),
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Pause after finding only standbys, before asking them all again.
const STANDBY_RETRY: Duration = Duration::from_millis(250);

/// Whether an attach error is a standby coordinator turning us away.
fn is_standby(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<tonic::Status>().is_some_and(|status| {
            status.code() == tonic::Code::Unavailable && status.message().contains("standby")
        })
    })
}

/// Whether an attach error is the coordinator refusing our credentials.
fn refused_credentials(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<tonic::Status>().is_some_and(|status| {
            matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            )
        })
    })
}
