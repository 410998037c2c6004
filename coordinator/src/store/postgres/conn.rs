//! The PostgreSQL store's connection side: a small runtime of its own, a connection pool, and
//! errors that name the server.
//!
//! The store's traits are synchronous and are called from the writer's std thread and from
//! `spawn_blocking` threads, so the async driver runs on a runtime the store owns: callers
//! `block_on` it (never from inside it), and the connections' I/O tasks run on its two
//! worker threads.

use crate::store::{Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use std::future::Future;
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

/// Connections kept at most: one for the writer, the rest for concurrent reads.
const POOL_SIZE: usize = 8;
/// How long a connection attempt may take before the error names the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free pooled connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a PostgreSQL operation failed, before the server's name is attached.
#[derive(Debug)]
pub(super) enum Fail {
    /// The driver or the server.
    Pg(tokio_postgres::Error),
    /// No connection from the pool.
    Pool(PoolError),
    /// Already a store error (a corrupt record, a fenced write).
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<PoolError> for Fail {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Result of one step against the server.
pub(super) type PgResult<T> = std::result::Result<T, Fail>;

/// The runtime, the pool and the server's printable name, shared by the writer, its readers and
/// its leadership handles.
#[derive(Debug)]
pub(super) struct Backend {
    /// Always `Some` until dropped; taken out in `Drop` to shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    server: String,
}

/// `host:port` for each host in the connection string (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let names: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    if names.is_empty() {
        "(no host given)".into()
    } else {
        names.join(",")
    }
}

/// An error and its causes on one line (the driver's own message leaves out the cause, e.g.
/// "error connecting to server" without "Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

impl Backend {
    /// Parses `url` (a `postgres://` URL or `key=value` pairs), starts the runtime and builds
    /// the pool. Connects lazily: the first statement reports an unreachable server.
    pub(super) fn new(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Postgres {
                    server: "(unparsed connection string)".into(),
                    cause: chain(&e),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("concur-coordinator");
        }
        let server = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("concur-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres {
                server: server.clone(),
                cause: format!("cannot start the store's runtime: {e}"),
            })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A closed connection is replaced; a live one is reused without a round trip.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Postgres {
                server: server.clone(),
                cause: format!("cannot build the connection pool: {e}"),
            })?;
        Ok(Self {
            runtime: Some(runtime),
            pool,
            server,
        })
    }

    /// The server as `host:port`.
    pub(super) fn server(&self) -> &str {
        &self.server
    }

    /// Runs `step` to completion on the store's runtime and names the server in its error.
    ///
    /// Callers are the writer thread and blocking threads, as for SQLite, but also the
    /// coordinator's start-up inside its async `main`: `block_in_place` lets a worker thread of
    /// a multi-thread runtime block here (elsewhere it costs nothing). A current-thread
    /// runtime cannot allow that, and tokio panics: open the store before it, or off it.
    pub(super) fn run<T>(&self, step: impl Future<Output = PgResult<T>>) -> Result<T> {
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        tokio::task::block_in_place(|| runtime.block_on(step)).map_err(|fail| self.error(fail))
    }

    /// A pooled connection (opening one if none is idle).
    pub(super) async fn client(&self) -> PgResult<Object> {
        Ok(self.pool.get().await?)
    }

    /// Attaches the server's name to a failure.
    pub(super) fn error(&self, fail: Fail) -> StoreError {
        let cause = match fail {
            Fail::Store(e) => return e,
            Fail::Pg(e) => match e.as_db_error() {
                Some(db) => format!(
                    "{} {} (SQLSTATE {})",
                    db.severity(),
                    db.message(),
                    db.code().code()
                ),
                None => chain(&e),
            },
            Fail::Pool(PoolError::Backend(e)) => return self.error(Fail::Pg(e)),
            Fail::Pool(PoolError::Timeout(_)) => format!(
                "no connection within {}s (all {POOL_SIZE} busy, or the server does not answer)",
                WAIT_TIMEOUT.as_secs()
            ),
            Fail::Pool(e) => chain(&e),
        };
        StoreError::Postgres {
            server: self.server.clone(),
            cause,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // The last handle may be dropped inside an async context (a reader held by a service),
        // where dropping a runtime blocks and panics: shut it down without waiting.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
