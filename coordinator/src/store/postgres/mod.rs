//! The PostgreSQL store: state in a database that an active and a standby coordinator share,
//! with the same records and semantics as the SQLite store, and writes fenced by a lease epoch.
//!
//! Durability: every write is one transaction, and nothing returns `Ok` before its `COMMIT`
//! has returned (with the server's `synchronous_commit`, by default flushed to its WAL). A
//! deployment that accepts SQLite's `synchronous=NORMAL` trade (a crash of the database's
//! machine may lose the last commits, never tear one) can add
//! `options='-c synchronous_commit=off'` to the URL; `bench` measures both.
//!
//! Fencing: a store opened with an epoch (from [`Leadership::acquire`]) checks, inside each
//! write transaction, that the lease's epoch is still its own, and otherwise rolls back and
//! returns [`StoreError::Fenced`](super::StoreError::Fenced): a deposed coordinator that wakes up commits nothing.
//!
//! Layout:
//! - `conn`: the store's own runtime, the pool, errors that name the server.
//! - `commit`: one write transaction, its statements pipelined (two round trips).
//! - `batch`: a write's shard changes coalesced into three statements.
//! - `schema`: tables and versioned migrations. `write`, `read`, `load`, `rows`: as SQLite's.
//! - `leadership`: the lease (acquire, renew, current, release) and the write fence.

mod batch;
mod commit;
mod conn;
mod leadership;
mod load;
mod read;
mod rows;
mod schema;
mod write;

#[cfg(all(test, feature = "postgres-tests"))]
mod bench;
#[cfg(feature = "postgres-tests")]
pub mod testing;
#[cfg(all(test, feature = "postgres-tests"))]
mod tests;

pub use leadership::{Leadership, Lease};
pub use read::PostgresReader;

use super::{Loaded, NewJobRecord, Result, Retention, StoreWrite, WriteOp};
use conn::Backend;
use std::sync::Arc;
use std::time::Duration;

/// The writing side of the PostgreSQL store. Its methods block: call them from the writer
/// thread or a blocking thread, never from an async context.
#[derive(Debug)]
pub struct Postgres {
    backend: Arc<Backend>,
    /// The lease epoch every write is fenced by; `None` writes unfenced (one coordinator).
    epoch: Option<u64>,
}

impl Postgres {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or `key=value`
    /// pairs), creates the schema in an empty database or migrates an older one, and fences
    /// later writes by `epoch` (`None`: unfenced, for a single coordinator).
    ///
    /// # Errors
    /// The URL does not parse, the server cannot be reached (the error names `host:port`),
    /// refuses the login, or holds a schema written by a newer concur.
    pub fn open(url: &str, epoch: Option<u64>) -> Result<Self> {
        let backend = Arc::new(Backend::new(url)?);
        backend.run(async {
            let mut client = backend.client().await?;
            schema::to_current(&mut client).await
        })?;
        Ok(Self { backend, epoch })
    }

    /// Fences later writes by `epoch` (after [`Leadership::acquire`]); `None` unfences.
    pub fn set_epoch(&mut self, epoch: Option<u64>) {
        self.epoch = epoch;
    }

    /// The epoch writes are fenced by.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The server, as `host:port` (for logs; never the password).
    pub fn server(&self) -> &str {
        self.backend.server()
    }

    /// A reader over the same database, sharing the pool.
    pub fn reader(&self) -> PostgresReader {
        PostgresReader::new(self.backend.clone())
    }

    /// A handle on the lease, sharing the pool; usable while the writer owns the store.
    pub fn leadership(&self) -> Leadership {
        Leadership::new(self.backend.clone())
    }

    /// [`Leadership::acquire`] on this store's database.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<u64>> {
        self.leadership().acquire(holder, ttl)
    }

    /// [`Leadership::renew`] on this store's database.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn renew(&self, holder: &str, epoch: u64, ttl: Duration) -> Result<bool> {
        self.leadership().renew(holder, epoch, ttl)
    }

    /// [`Leadership::current`] on this store's database.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn current(&self) -> Result<Option<Lease>> {
        self.leadership().current()
    }

    /// [`Leadership::release`] on this store's database.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn release(&self, holder: &str, epoch: u64) -> Result<bool> {
        self.leadership().release(holder, epoch)
    }

    /// Reads back what a restart needs: id counters and the unfinished jobs, from one
    /// consistent snapshot.
    ///
    /// # Errors
    /// PostgreSQL failed or a record does not decode (the error names the job).
    pub fn load(&mut self) -> Result<Loaded> {
        self.backend.run(async {
            let mut client = self.backend.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let loaded = load::load(&tx).await?;
            tx.commit().await?;
            Ok(loaded)
        })
    }
}

impl StoreWrite for Postgres {
    fn submit(&mut self, job: &NewJobRecord) -> Result<()> {
        let stmts = write::submit(job)?;
        self.backend.run(async {
            let client = self.backend.client().await?;
            commit::commit(client, self.epoch, &stmts).await
        })
    }

    fn apply(&mut self, ops: &[WriteOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let stmts = batch::statements(ops);
        self.backend.run(async {
            let client = self.backend.client().await?;
            commit::commit(client, self.epoch, &stmts).await
        })
    }

    fn prune(&mut self, retention: &Retention, now_unix_ms: u64, budget: usize) -> Result<bool> {
        self.backend.run(async {
            let mut client = self.backend.client().await?;
            let tx = client.transaction().await?;
            leadership::fence(&tx, self.epoch).await?;
            let more = write::prune(&tx, retention, now_unix_ms, budget).await?;
            tx.commit().await?;
            Ok(more)
        })
    }
}
