//! Worker events: attaching (with durably reserved ids), heartbeats, executions reported,
//! draining.

use super::{Comm, Persist, Scheduler, SchedulerError, WORKER_ID_BLOCK, WorkerState};
use concur_core::WorkerId;
use concur_core::protocol::WorkerInfo;
use std::time::Instant;

impl Scheduler {
    /// A worker registered; it is idle and may get shards at once.
    ///
    /// # Errors
    /// [`SchedulerError::NoWorkerIds`] when the durably reserved ids ran out.
    pub fn on_worker_attached(
        &mut self,
        info: WorkerInfo,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Result<WorkerId, SchedulerError> {
        let ids = &mut self.worker_ids;
        if ids.next > ids.stored_through {
            return Err(SchedulerError::NoWorkerIds);
        }
        let id = WorkerId(ids.next);
        ids.next += 1;
        // Ask for the next block well before this one runs out.
        let left = ids.stored_through.saturating_sub(ids.next);
        if left < WORKER_ID_BLOCK / 2 && self.worker_ids_requested == ids.stored_through {
            self.worker_ids_requested = ids.stored_through.saturating_add(WORKER_ID_BLOCK);
            comm.persist(Persist::WorkerIdsReserved {
                through: WorkerId(self.worker_ids_requested),
            });
        }
        self.pool.attach(id, info, now);
        self.dispatch(now, comm);
        Ok(id)
    }

    /// A reservation of worker ids is stored: they may be handed out.
    pub fn on_worker_ids_stored(&mut self, through: WorkerId) {
        let ids = &mut self.worker_ids;
        ids.stored_through = ids.stored_through.max(through.get());
    }

    /// Any message from a worker proves it alive.
    ///
    /// # Errors
    /// [`SchedulerError::UnknownWorker`] for a worker declared lost or never registered.
    pub fn on_heartbeat(&mut self, worker: WorkerId, now: Instant) -> Result<(), SchedulerError> {
        self.pool
            .seen(worker, now)
            .then_some(())
            .ok_or(SchedulerError::UnknownWorker(worker))
    }

    /// A heartbeat said how many shard executions the worker still runs. A stalled worker
    /// whose count no longer exceeds the shards it holds has let go of its hung execution:
    /// it takes shards again.
    pub fn on_executions_reported(
        &mut self,
        worker: WorkerId,
        running: u32,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        let Some(record) = self.pool.get(worker) else {
            return;
        };
        if record.state == WorkerState::Stalled && running <= record.load() {
            self.pool.set_state(worker, WorkerState::Active);
            self.dispatch(now, comm);
        }
    }

    /// A worker is shutting down: it gets no new shards and keeps the ones it runs.
    ///
    /// # Errors
    /// [`SchedulerError::UnknownWorker`] for an unknown worker.
    pub fn on_worker_draining(&mut self, worker: WorkerId) -> Result<(), SchedulerError> {
        if !self.pool.contains(worker) {
            return Err(SchedulerError::UnknownWorker(worker));
        }
        self.pool.set_state(worker, WorkerState::Draining);
        Ok(())
    }
}
