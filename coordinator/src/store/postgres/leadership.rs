//! Leadership: one lease row (`holder`, `epoch`, `expires_at`) that active and standby
//! coordinators contend for, and the fence every write transaction checks against it.
//!
//! Time is the database's (`now()`), never a coordinator's: two machines with skewed clocks
//! still agree on whether a lease has expired. Every acquisition bumps the epoch, and epochs
//! are never reused (a release keeps the epoch), so a write carrying an old epoch is refused.
//!
//! Why `FOR SHARE`: a write transaction locks the lease row in share mode while it checks its
//! epoch, and keeps the lock until it commits. Taking the lease is an `UPDATE` of that row, so
//! it waits for writes in flight under the old epoch to finish, and no write under the old
//! epoch can commit after the new epoch is committed.

use super::conn::{Backend, PgResult};
use crate::store::{Result, StoreError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Who holds the lease, as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder's name, as given to [`Leadership::acquire`].
    pub holder: String,
    /// The lease's epoch: the fencing token its holder's writes carry.
    pub epoch: u64,
    /// When the lease lapses unless renewed (the database's clock).
    pub expires_at: SystemTime,
    /// Whether it has not lapsed yet, by the database's clock.
    pub live: bool,
}

/// Takes, renews and gives up the lease; a cheap clone of the store's connection pool, usable
/// from any thread that may block (not from an async context).
#[derive(Debug, Clone)]
pub struct Leadership {
    backend: Arc<Backend>,
}

/// A TTL as seconds for `make_interval` (sub-millisecond precision is meaningless here).
fn seconds(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl Leadership {
    pub(super) fn new(backend: Arc<Backend>) -> Self {
        Self { backend }
    }

    /// Takes the lease for `holder` for `ttl` if nobody holds it or it has lapsed, bumping the
    /// epoch; returns the new epoch, or `None` while someone (`holder` included) holds a live
    /// lease — a holder keeps its lease with [`Leadership::renew`].
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<u64>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let row = client
                .query_opt(
                    "UPDATE leadership SET holder = $1, epoch = epoch + 1, \
                     expires_at = now() + make_interval(secs => $2) \
                     WHERE id = 1 AND (holder = '' OR expires_at <= now()) RETURNING epoch",
                    &[&holder, &seconds(ttl)],
                )
                .await?;
            Ok(row.map(|row| row.get::<_, i64>(0) as u64))
        })
    }

    /// Extends `holder`'s lease at `epoch` to `ttl` from now. False once the epoch has moved
    /// on (another coordinator took the lease): the caller must stop writing. A lease that
    /// lapsed but that nobody took yet is renewed, since its epoch still fences everyone else.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn renew(&self, holder: &str, epoch: u64, ttl: Duration) -> Result<bool> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let updated = client
                .execute(
                    "UPDATE leadership SET expires_at = now() + make_interval(secs => $3) \
                     WHERE id = 1 AND holder = $1 AND epoch = $2",
                    &[&holder, &(epoch as i64), &seconds(ttl)],
                )
                .await?;
            Ok(updated == 1)
        })
    }

    /// The lease as it stands, or `None` if nobody has held it or it was released.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn current(&self) -> Result<Option<Lease>> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let row = client
                .query_one(
                    "SELECT holder, epoch, expires_at, expires_at > now() FROM leadership \
                     WHERE id = 1",
                    &[],
                )
                .await?;
            let holder: String = row.get(0);
            Ok((!holder.is_empty()).then(|| Lease {
                holder,
                epoch: row.get::<_, i64>(1) as u64,
                expires_at: row.get(2),
                live: row.get(3),
            }))
        })
    }

    /// Gives up `holder`'s lease at `epoch` so a standby can take it at once. The epoch stays,
    /// so it is never handed out again. False if the lease was no longer ours.
    ///
    /// # Errors
    /// PostgreSQL failed.
    pub fn release(&self, holder: &str, epoch: u64) -> Result<bool> {
        self.backend.run(async {
            let client = self.backend.client().await?;
            let updated = client
                .execute(
                    "UPDATE leadership SET holder = '', expires_at = to_timestamp(0) \
                     WHERE id = 1 AND holder = $1 AND epoch = $2",
                    &[&holder, &(epoch as i64)],
                )
                .await?;
            Ok(updated == 1)
        })
    }
}

/// Checks, inside a statement-by-statement write transaction (pruning; `commit` pipelines its
/// own fence), that `epoch` is still the lease's epoch, and keeps the
/// row share-locked until the transaction ends (see the module doc). `None` = unfenced.
pub(super) async fn fence(
    tx: &deadpool_postgres::Transaction<'_>,
    epoch: Option<u64>,
) -> PgResult<()> {
    let Some(epoch) = epoch else {
        return Ok(());
    };
    let check = tx
        .prepare_cached("SELECT epoch FROM leadership WHERE id = 1 FOR SHARE")
        .await?;
    let current = tx
        .query_opt(&check, &[])
        .await?
        .map_or(0, |row| row.get::<_, i64>(0) as u64);
    if current == epoch {
        Ok(())
    } else {
        Err(StoreError::Fenced { epoch, current }.into())
    }
}
