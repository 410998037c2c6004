//! Durable state: what the coordinator writes (jobs as submitted, leases, committed shards with
//! their items' outcomes, final summaries) and reads back (reports, listings, restores).
//!
//! Three implementations behind one interface: [`sqlite`] for durable state in a directory (the
//! default), [`postgres`] for state in a PostgreSQL database (shared by an active and a standby
//! coordinator, fenced by a lease epoch) and [`memory`] for `--in-memory` and local mode. One ordered [`writer`] thread
//! applies every change in group commits, off the scheduler's lock; acknowledgements wait for
//! the commit that stores what they promise.
//!
//! Layout:
//! - `sqlite` (`schema`, `write`, `read`, `migrate`): the SQLite store.
//! - `postgres` (`conn`, `schema`, `write`, `read`, `load`, `leadership`): the PostgreSQL store.
//! - `memory`: the in-memory store.
//! - `writer`: the writer thread, group commit, health and retries.
//! - `retention`: which finished jobs to forget.

pub mod memory;
pub mod postgres;
pub mod retention;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v2;

use crate::scheduler::{Persist, StoredShard};
use concur_core::report::{JobRecord, JobState};
use concur_core::{JobId, JobSpec, Outcome, ShardId, WorkerId};
use std::path::PathBuf;
use std::sync::Arc;

pub use retention::Retention;
pub use writer::{Health, StoreEvents, Writer};

/// URLs per stored chunk: reports read a job's inputs a chunk at a time.
pub const URL_CHUNK: usize = 4096;

/// Why the store cannot be used or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory or its lock cannot be created.
    #[error("cannot use state directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another coordinator holds the directory.
    #[error("state directory {0} is in use by another coordinator")]
    Locked(PathBuf),
    /// The database file exists but is empty: it was truncated, or is not ours.
    #[error(
        "state database {0} exists but is empty (0 bytes): it may have been truncated. Move it away to start with no jobs, or restore it from a backup"
    )]
    Empty(PathBuf),
    /// SQLite failed (disk full, I/O error, read-only file system, …). Retried by the writer.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// PostgreSQL failed: the server is unreachable, refused the login, or a statement failed.
    /// The message names the server (`host:port`, never the password). Retried by the writer.
    #[error("PostgreSQL server {server}: {cause}")]
    Postgres {
        /// Where the store connects, as `host:port` (several, comma-separated).
        server: String,
        /// What went wrong, with its causes.
        cause: String,
    },
    /// A write was refused because this store's lease epoch is no longer the current one:
    /// another coordinator took over. Nothing of the write is stored; retrying cannot succeed.
    #[error(
        "fenced: this coordinator writes under lease epoch {epoch} but the current epoch is {current} (another coordinator took over); nothing was written"
    )]
    Fenced {
        /// The epoch this store was opened with.
        epoch: u64,
        /// The epoch in the database.
        current: u64,
    },
    /// A stored record does not decode.
    #[error("state database holds a corrupt record ({what}): {reason}")]
    Corrupt {
        /// Which record: names the job where there is one.
        what: String,
        /// Why it does not decode.
        reason: String,
    },
}

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A job as submitted: stored before the scheduler sees it or the client hears of it.
#[derive(Debug, Clone)]
pub struct NewJobRecord {
    /// Its summary at submission (pending, nothing counted).
    pub record: JobRecord,
    /// Its spec, shared with the scheduler.
    pub spec: Arc<JobSpec>,
    /// The shard count asked of the planner (the plan is recomputed from it).
    pub shards: u32,
}

/// One change to the store.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// A scheduler event.
    Persist(Persist),
    /// A job is forgotten: it leaves listings at once, its results are removed in the
    /// background.
    Delete(JobId),
}

/// What a restarted coordinator starts from.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Above every job id ever handed out.
    pub next_job_id: JobId,
    /// The last worker id ever reserved.
    pub worker_ids_through: WorkerId,
    /// Unfinished jobs.
    pub jobs: Vec<crate::scheduler::RestoredJob>,
}

/// A stored job's inputs. Read a fetch job's URLs with [`StoreRead::url_chunk`], a chunk at a
/// time: the spec's own list may be empty.
#[derive(Debug, Clone)]
pub struct StoredInput {
    /// The spec.
    pub spec: Arc<JobSpec>,
    /// Items in the job.
    pub items: u64,
    /// The shard count asked of the planner.
    pub shards: u32,
}

/// Writing: one implementation per backend, owned by the writer thread.
pub trait StoreWrite: Send + 'static {
    /// Stores a submitted job in its own transaction.
    ///
    /// # Errors
    /// The write failed; nothing of it is stored.
    fn submit(&mut self, job: &NewJobRecord) -> Result<()>;
    /// Applies `ops` in one transaction.
    ///
    /// # Errors
    /// The write failed; nothing of the batch is stored.
    fn apply(&mut self, ops: &[WriteOp]) -> Result<()>;
    /// Forgets finished jobs past `retention` and removes up to `budget` rows of forgotten
    /// jobs' data. Returns true while more is left to remove.
    ///
    /// # Errors
    /// The write failed.
    fn prune(&mut self, retention: &Retention, now_unix_ms: u64, budget: usize) -> Result<bool>;
}

/// Reading: shared by every RPC, never blocked by the writer for long.
pub trait StoreRead: Send + Sync + 'static {
    /// A job's summary.
    ///
    /// # Errors
    /// The read failed or the record is corrupt.
    fn job(&self, job_id: JobId) -> Result<Option<JobRecord>>;
    /// The most recent `limit` jobs (0 = all) in `states` (empty = all), oldest first, and how
    /// many matched before the limit.
    ///
    /// # Errors
    /// The read failed or a record is corrupt.
    fn jobs(&self, states: &[JobState], limit: u32) -> Result<(Vec<JobRecord>, u64)>;
    /// A job's spec (without URLs), item count and requested shard count.
    ///
    /// # Errors
    /// The read failed or the record is corrupt.
    fn input(&self, job_id: JobId) -> Result<Option<StoredInput>>;
    /// URLs `chunk * URL_CHUNK ..` of a fetch job, newline-separated.
    ///
    /// # Errors
    /// The read failed.
    fn url_chunk(&self, job_id: JobId, chunk: u64) -> Result<Option<String>>;
    /// Stored shards with ids in `from..from + limit`, in order (never-leased shards are
    /// absent).
    ///
    /// # Errors
    /// The read failed or a record is corrupt.
    fn shards(&self, job_id: JobId, from: ShardId, limit: u32) -> Result<Vec<StoredShard>>;
    /// Committed unit outcomes of a shard from unit `from` on, at most `limit`.
    ///
    /// # Errors
    /// The read failed or a record is corrupt.
    fn results(
        &self,
        job_id: JobId,
        shard_id: ShardId,
        from: u32,
        limit: usize,
    ) -> Result<Vec<(u32, Outcome)>>;
}
