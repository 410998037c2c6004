//! The SQLite store: one database file in the state directory, written by the writer thread
//! and read by a small pool of read-only connections.
//!
//! The directory and the database file are both locked (`flock`) for the coordinator's
//! lifetime, so a second coordinator cannot open them — deleting a file does not undo that.
//! A new database is created under a temporary name and renamed into place, so an existing
//! but empty database file is never ours: it is refused instead of silently started afresh.

mod load;
mod migrate;
mod read;
mod rows;
mod schema;
mod write;

pub use read::SqliteReader;
// Shared with the PostgreSQL store, which stores the same records.
pub(crate) use rows::corrupt;
pub(crate) use write::spec_without_urls;

use super::{Loaded, NewJobRecord, Result, Retention, StoreError, StoreWrite, WriteOp};
use crate::scheduler::Persist;
use concur_core::{JobId, ShardId};
use rusqlite::Connection;
use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The database's file name inside the state directory.
pub const DATABASE: &str = "state.sqlite3";

/// The default state directory: `$XDG_STATE_HOME/concur`, else `~/.local/state/concur`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("concur");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/concur")
}

/// The writing side of the SQLite store.
#[derive(Debug)]
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    /// Held for the store's lifetime; the kernel drops the locks if the process dies.
    _locks: (File, File),
}

fn lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl Sqlite {
    /// Opens (creating if needed) the database in `dir`, locking the directory and the file,
    /// and migrating an older schema.
    ///
    /// # Errors
    /// The directory cannot be created, another coordinator holds it, the database file is
    /// empty or corrupt, or SQLite fails.
    pub fn open(dir: &Path) -> Result<Self> {
        let io = |source| StoreError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let dir_lock = File::open(dir).map_err(io)?;
        if !lock(&dir_lock) {
            return Err(StoreError::Locked(dir.to_path_buf()));
        }
        let path = dir.join(DATABASE);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => return Err(StoreError::Empty(path)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_database(&path)?,
            Err(e) => return Err(io(e)),
        }
        let file_lock = File::open(&path).map_err(io)?;
        if !lock(&file_lock) {
            return Err(StoreError::Locked(dir.to_path_buf()));
        }
        let conn = Connection::open(&path)?;
        schema::configure_writer(&conn)?;
        migrate::to_current(&conn)?;
        Ok(Self {
            conn,
            path,
            _locks: (dir_lock, file_lock),
        })
    }

    /// A reader over the same database.
    pub fn reader(&self) -> SqliteReader {
        SqliteReader::new(self.path.clone())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads back what a restart needs: id counters and the unfinished jobs.
    ///
    /// # Errors
    /// SQLite failed or a record does not decode (the error names the job).
    pub fn load(&mut self) -> Result<Loaded> {
        load::load(&self.conn)
    }
}

/// Creates the database under a temporary name and renames it into place, so a crash while
/// creating leaves no half-made file under the real name.
fn create_database(path: &Path) -> Result<()> {
    let temporary = path.with_extension("sqlite3.new");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", temporary.display()));
    }
    let conn = Connection::open(&temporary)?;
    schema::create(&conn)?;
    // Back to a rollback journal so the file is complete on its own when renamed.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    drop(conn);
    std::fs::rename(&temporary, path).map_err(|source| StoreError::Dir {
        dir: path.parent().unwrap_or(path).to_path_buf(),
        source,
    })
}

impl StoreWrite for Sqlite {
    fn submit(&mut self, job: &NewJobRecord) -> Result<()> {
        let tx = self.conn.transaction()?;
        write::submit(&tx, job)?;
        tx.commit()?;
        Ok(())
    }

    fn apply(&mut self, ops: &[WriteOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        // A lease committed in the same transaction needs no row of its own: the commit
        // writes the shard's row with its attempt anyway (short shards: half the statements).
        let committed: HashSet<(JobId, ShardId)> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Persist(Persist::ShardCommitted { lease, .. }) => {
                    Some((lease.job_id, lease.shard_id))
                }
                _ => None,
            })
            .collect();
        let tx = self.conn.transaction()?;
        for op in ops {
            if let WriteOp::Persist(Persist::ShardLeased { lease }) = op
                && committed.contains(&(lease.job_id, lease.shard_id))
            {
                continue;
            }
            write::apply(&tx, op)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn prune(&mut self, retention: &Retention, now_unix_ms: u64, budget: usize) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let more = write::prune(&tx, retention, now_unix_ms, budget)?;
        tx.commit()?;
        let free_pages: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |row| row.get(0))?;
        if !more && free_pages > 0 {
            // Give freed pages back to the file system a little at a time.
            self.conn
                .execute_batch("PRAGMA incremental_vacuum(2000);")?;
        }
        Ok(more)
    }
}
