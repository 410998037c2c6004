//! Opening durable state: a store that can be read back (SQLite in a directory, or a
//! PostgreSQL database), restored into a scheduler before anything is served — unfinished jobs
//! back, their leased shards re-queued as new attempts, a fresh block of worker ids reserved.

use crate::scheduler::{Persist, RestoredState, Scheduler, WORKER_ID_BLOCK, WorkerIds};
use crate::server::CoordinatorConfig;
use crate::store::postgres::Postgres;
use crate::store::sqlite::Sqlite;
use crate::store::{self, Loaded, StoreRead, StoreWrite, WriteOp};
use concur_core::{JobId, WorkerId};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tracing::info;

/// A restored scheduler, its store's two sides, and whether writes go through the writer
/// thread (durable stores) or in place (memory).
pub(crate) type Opened = (Scheduler, Box<dyn StoreWrite>, Arc<dyn StoreRead>, bool);

/// A store a coordinator can restart from.
pub(crate) trait Durable: StoreWrite + Sized {
    /// What a restart needs: id counters and the unfinished jobs.
    fn load(&mut self) -> store::Result<Loaded>;
    /// A reader beside the writer.
    fn shared_reader(&self) -> Arc<dyn StoreRead>;
    /// Where the state is, for the log.
    fn location(&self) -> String;
}

impl Durable for Sqlite {
    fn load(&mut self) -> store::Result<Loaded> {
        Sqlite::load(self)
    }
    fn shared_reader(&self) -> Arc<dyn StoreRead> {
        Arc::new(self.reader())
    }
    fn location(&self) -> String {
        self.path().display().to_string()
    }
}

impl Durable for Postgres {
    fn load(&mut self) -> store::Result<Loaded> {
        Postgres::load(self)
    }
    fn shared_reader(&self) -> Arc<dyn StoreRead> {
        Arc::new(self.reader())
    }
    fn location(&self) -> String {
        format!("postgres://{}", self.server())
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Restores the unfinished jobs from `store` and reserves worker ids for this run, all before
/// anything is served.
pub(crate) fn restore<S: Durable>(
    config: &CoordinatorConfig,
    mut store: S,
) -> anyhow::Result<Opened> {
    let loaded = store.load()?;
    let through = loaded
        .worker_ids_through
        .get()
        .saturating_add(WORKER_ID_BLOCK);
    store.apply(&[WriteOp::Persist(Persist::WorkerIdsReserved {
        through: WorkerId(through),
    })])?;
    let restored = loaded.jobs.len();
    let state = RestoredState {
        next_job_id: loaded.next_job_id.max(JobId(1)),
        worker_ids: WorkerIds {
            next: loaded.worker_ids_through.get() + 1,
            stored_through: through,
        },
        jobs: loaded.jobs,
    };
    let (scheduler, finished) =
        Scheduler::restore(config.scheduler.clone(), state, Instant::now(), unix_ms());
    let finished: Vec<WriteOp> = finished.into_iter().map(WriteOp::Persist).collect();
    store.apply(&finished)?;
    info!(unfinished_jobs = restored, database = %store.location(), "state restored");
    let reader = store.shared_reader();
    Ok((scheduler, Box::new(store), reader, true))
}
