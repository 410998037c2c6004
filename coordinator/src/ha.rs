//! Active and standby coordinators sharing a PostgreSQL database (`--state-url`).
//!
//! Exactly one is active: the one holding the leader lease in the database, a row with its
//! holder, an epoch and an expiry on the database's clock. Every write the active makes is
//! fenced by its epoch in the same transaction, so a deposed coordinator that wakes up commits
//! nothing. The others are standbys: they serve the same addresses, refuse every RPC and page
//! with "standby; the active coordinator is URL" (workers and clients given several URLs move
//! on), report NOT_SERVING in health checks, and try to take the lease every half second.
//!
//! Taking over: once the lease lapses (the active died, or is cut off and could not renew),
//! a standby takes it with the next epoch, restores the state from the database — unfinished
//! jobs back, their leased shards re-queued as new attempts — and serves as the active one.
//! An active that cannot renew for a whole lease period, or finds the lease taken, stops
//! serving at once and exits: its supervisor restarts it, and it comes back as a standby. A
//! clean shutdown releases the lease, so a standby takes over within half a second.

use crate::server::{Coordinator, CoordinatorConfig};
use crate::store::postgres::{Leadership, Postgres};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tracing::{error, info, warn};

/// How long a lease lasts without renewal: the longest a dead active blocks a takeover.
pub const LEASE_TTL: Duration = Duration::from_secs(4);
/// How often the active renews (four times per lease).
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often a standby tries to take the lease.
const STANDBY_POLL: Duration = Duration::from_millis(500);

/// What the active/standby loop needs.
#[derive(Debug, Clone)]
pub struct HaSettings {
    /// The PostgreSQL URL.
    pub url: String,
    /// How this coordinator is reached (told to clients by standbys); the holder's name.
    pub advertise: String,
}

/// The addresses being served: bound by the standby, bound again (same ports) once active.
struct Addresses {
    grpc: SocketAddr,
    http: Option<SocketAddr>,
}

/// Binds `addr`, waiting a moment if the previous role's server still holds it.
async fn rebind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match crate::listen::bind(&addr.to_string()).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {addr} again")),
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// Connects to the state database (creating or migrating its schema): before anything says
/// it is listening, so a wrong URL or an unreachable server fails at once.
///
/// # Errors
/// The server cannot be reached, refuses the login, or holds a newer schema.
pub async fn connect(url: &str) -> anyhow::Result<Leadership> {
    let url = url.to_string();
    blocking(move || Ok(Postgres::open(&url, None)?.leadership()))
        .await
        .context("cannot use the state database")
}

/// Serves as a standby (or the active) until `shutdown` completes; returns an error when
/// this coordinator lost the lease while active (it must stop: another is active now).
///
/// # Errors
/// The lease was lost while active, or the state could not be restored on takeover.
pub async fn run(
    config: CoordinatorConfig,
    ha: HaSettings,
    leadership: Leadership,
    grpc: TcpListener,
    http: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = Arc::new(Notify::new());
    let stopping = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.notify_waiters();
        stopping.notify_one();
    });
    let addresses = Addresses {
        grpc: grpc.local_addr()?,
        http: http.as_ref().map(TcpListener::local_addr).transpose()?,
    };
    let Some(epoch) = standby(&config, &ha, &leadership, grpc, http, &stop).await? else {
        return Ok(()); // shut down while a standby
    };
    let grpc = rebind(addresses.grpc).await?;
    let http = match addresses.http {
        Some(addr) => Some(rebind(addr).await?),
        None => None,
    };
    active(config, ha, leadership, epoch, grpc, http, stop).await
}

/// Tries to take the lease; serves as a standby while another holds it. The epoch once taken;
/// `None` when shut down first.
async fn standby(
    config: &CoordinatorConfig,
    ha: &HaSettings,
    leadership: &Leadership,
    grpc: TcpListener,
    http: Option<TcpListener>,
    stop: &Notify,
) -> anyhow::Result<Option<u64>> {
    let try_acquire = || {
        let (leadership, holder) = (leadership.clone(), ha.advertise.clone());
        blocking(move || Ok(leadership.acquire(&holder, LEASE_TTL)?))
    };
    if let Ok(Some(epoch)) = try_acquire().await {
        return Ok(Some(epoch));
    }
    let reader = leadership.clone();
    let holder = match blocking(move || Ok(reader.current()?)).await {
        Ok(Some(lease)) => lease.holder,
        _ => "not known yet".to_string(),
    };
    let mut coordinator = Coordinator::standby(config.clone(), holder.clone())?;
    if let Some(http) = http {
        coordinator = coordinator.with_http(http);
    }
    let shared = coordinator.shared().clone();
    let (stop_serving, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(coordinator.serve(grpc, async {
        let _ = stopped.await;
    }));
    info!("standby: another coordinator holds the leader lease");
    let mut last_active = holder;
    let epoch = loop {
        tokio::select! {
            () = tokio::time::sleep(STANDBY_POLL) => {}
            () = stop.notified() => break None,
        }
        match try_acquire().await {
            Ok(Some(epoch)) => break Some(epoch),
            Ok(None) => {}
            Err(e) => warn!(cause = %format!("{e:#}"), "standby cannot reach the state database"),
        }
        let reader = leadership.clone();
        if let Ok(Some(lease)) = blocking(move || Ok(reader.current()?)).await
            && lease.holder != last_active
        {
            info!(active = %lease.holder, epoch = lease.epoch, "standby of the active coordinator");
            shared.set_standby_of(Some(lease.holder.clone()));
            last_active = lease.holder;
        }
    };
    let _ = stop_serving.send(());
    let _ = serving.await;
    Ok(epoch)
}

/// Serves as the active coordinator with `epoch` until shut down (releasing the lease) or
/// deposed (an error: the caller must exit).
async fn active(
    config: CoordinatorConfig,
    ha: HaSettings,
    leadership: Leadership,
    epoch: u64,
    grpc: TcpListener,
    http: Option<TcpListener>,
    stop: Arc<Notify>,
) -> anyhow::Result<()> {
    info!(
        epoch,
        "took the leader lease: restoring the state and serving as the active coordinator"
    );
    let url = ha.url.clone();
    let mut coordinator = blocking(move || {
        let store = Postgres::open(&url, Some(epoch))?;
        Coordinator::open_postgres(config, store)
    })
    .await?;
    if let Some(http) = http {
        coordinator = coordinator.with_http(http);
    }
    let (lost_sender, lost) = oneshot::channel::<String>();
    let renewing = tokio::spawn(renew(
        leadership.clone(),
        ha.advertise.clone(),
        epoch,
        lost_sender,
    ));
    let serving = coordinator.serve(grpc, async move { stop.notified().await });
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => {
            renewing.abort();
            let holder = ha.advertise.clone();
            let _ = blocking(move || Ok(leadership.release(&holder, epoch)?)).await;
            info!(epoch, "released the leader lease");
            served
        }
        reason = lost => {
            // Stop at once: dropping the server closes its listener and every connection, so
            // workers and clients move to the new active coordinator. Nothing is flushed: its
            // writes are fenced anyway, and the new active one restored the state.
            let reason = reason.unwrap_or_else(|_| "renewal stopped".into());
            error!(epoch, %reason, "lost the leader lease: stopped serving");
            anyhow::bail!(
                "lost the leader lease (epoch {epoch}): {reason}; stopped serving so that the new active coordinator runs alone (restart this one to make it a standby)"
            )
        }
    }
}

/// Renews the lease every second; reports on `lost` once it is taken or cannot be renewed for
/// a whole lease period (the standbys may then take it).
async fn renew(leadership: Leadership, holder: String, epoch: u64, lost: oneshot::Sender<String>) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let (l, h) = (leadership.clone(), holder.clone());
        let attempt = tokio::time::timeout(
            LEASE_TTL,
            blocking(move || Ok(l.renew(&h, epoch, LEASE_TTL)?)),
        )
        .await;
        match attempt {
            Ok(Ok(true)) => renewed = Instant::now(),
            Ok(Ok(false)) => {
                let _ = lost.send("another coordinator holds it now".into());
                return;
            }
            Ok(Err(e)) => warn!(cause = %format!("{e:#}"), "cannot renew the leader lease"),
            Err(_) => warn!("renewing the leader lease timed out"),
        }
        if renewed.elapsed() >= LEASE_TTL {
            let _ = lost.send(format!(
                "the state database did not renew it for {LEASE_TTL:?}"
            ));
            return;
        }
    }
}
