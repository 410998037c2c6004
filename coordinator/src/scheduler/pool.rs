//! The worker pool: attached workers, what each holds, and the set of workers with room for
//! another lease. Every change to a worker's load or state goes through here, which keeps one
//! invariant: a worker is in the free set, keyed by its load, exactly when it is active and
//! holds fewer leases than its slots plus its prefetch window.

use concur_core::protocol::WorkerInfo;
use concur_core::{JobId, ShardId, WorkerId};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Whether a worker takes new shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Takes shards while it has free slots.
    Active,
    /// Shutting down: finishes what it holds, takes nothing new.
    Draining,
    /// Held a lease past the lease timeout (a hung executor): takes nothing new until a
    /// heartbeat shows its executions ended.
    Stalled,
}

impl WorkerState {
    /// The state's name as listed, given whether the worker holds shards.
    pub fn name(self, busy: bool) -> &'static str {
        match (self, busy) {
            (WorkerState::Draining, _) => "draining",
            (WorkerState::Stalled, _) => "stalled",
            (WorkerState::Active, false) => "idle",
            (WorkerState::Active, true) => "busy",
        }
    }
}

/// An attached worker.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) info: WorkerInfo,
    pub(crate) state: WorkerState,
    /// Shards leased to it now; its load.
    held: HashSet<(JobId, ShardId)>,
    /// Last message of any kind; silence past the heartbeat timeout means lost.
    pub(crate) last_seen: Instant,
    pub(crate) shards_done: u64,
}

impl Worker {
    pub(crate) fn load(&self) -> u32 {
        self.held.len() as u32
    }

    /// Leases it may hold: its slots plus its prefetch window.
    fn capacity(&self) -> u32 {
        self.info.slots + self.info.prefetch
    }

    fn accepts_work(&self) -> bool {
        self.state == WorkerState::Active && self.load() < self.capacity()
    }

    /// Its key in the free set: workers with a free slot first, then those with room only in
    /// their prefetch window; least loaded first within each.
    fn free_key(&self, id: WorkerId) -> FreeKey {
        (self.load() >= self.info.slots, self.load(), id)
    }

    /// The shards it holds, in a stable order.
    pub(crate) fn held(&self) -> Vec<(JobId, ShardId)> {
        let mut held: Vec<_> = self.held.iter().copied().collect();
        held.sort_unstable();
        held
    }
}

/// (no free slot, load, id): the free set's order.
type FreeKey = (bool, u32, WorkerId);

/// Where the next lease may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Room {
    pub(crate) worker: WorkerId,
    /// A slot is free: the shard runs at once. Otherwise it waits in the prefetch window.
    pub(crate) slot_free: bool,
}

/// Attached workers and those with room for another lease.
#[derive(Debug, Default)]
pub(crate) struct WorkerPool {
    workers: HashMap<WorkerId, Worker>,
    free: BTreeSet<FreeKey>,
}

impl WorkerPool {
    /// Changes one worker through `change`, keeping the free set in step.
    fn update<R>(&mut self, id: WorkerId, change: impl FnOnce(&mut Worker) -> R) -> Option<R> {
        let worker = self.workers.get_mut(&id)?;
        self.free.remove(&worker.free_key(id));
        let result = change(worker);
        if worker.accepts_work() {
            self.free.insert(worker.free_key(id));
        }
        Some(result)
    }

    pub(crate) fn attach(&mut self, id: WorkerId, info: WorkerInfo, now: Instant) {
        let info = WorkerInfo {
            slots: info.slots.max(1),
            ..info
        };
        self.workers.insert(
            id,
            Worker {
                info,
                state: WorkerState::Active,
                held: HashSet::new(),
                last_seen: now,
                shards_done: 0,
            },
        );
        self.update(id, |_| ());
    }

    /// Removes a worker; what it held is the caller's to re-queue.
    pub(crate) fn remove(&mut self, id: WorkerId) -> Option<Worker> {
        let worker = self.workers.remove(&id)?;
        self.free.remove(&worker.free_key(id));
        Some(worker)
    }

    pub(crate) fn get(&self, id: WorkerId) -> Option<&Worker> {
        self.workers.get(&id)
    }

    pub(crate) fn contains(&self, id: WorkerId) -> bool {
        self.workers.contains_key(&id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (WorkerId, &Worker)> {
        self.workers.iter().map(|(id, w)| (*id, w))
    }

    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    /// The least-loaded worker with a free slot, else the least-loaded one with room in its
    /// prefetch window.
    pub(crate) fn first_free(&self) -> Option<Room> {
        self.free.first().map(|(full, _, worker)| Room {
            worker: *worker,
            slot_free: !full,
        })
    }

    /// The least-loaded worker with room for which `fits` holds; scans the free set, so only
    /// for jobs that not every worker may run.
    pub(crate) fn first_free_where(&self, fits: impl Fn(&Worker) -> bool) -> Option<Room> {
        self.free
            .iter()
            .find(|(_, _, id)| self.workers.get(id).is_some_and(&fits))
            .map(|(full, _, worker)| Room {
                worker: *worker,
                slot_free: !full,
            })
    }

    /// Records that `id` now holds a shard.
    pub(crate) fn hold(&mut self, id: WorkerId, job: JobId, shard: ShardId) {
        self.update(id, |w| w.held.insert((job, shard)));
    }

    /// Frees the slot of a shard `id` held; `done` counts it as finished by the worker.
    pub(crate) fn release(&mut self, id: WorkerId, job: JobId, shard: ShardId, done: bool) {
        self.update(id, |w| {
            if w.held.remove(&(job, shard)) && done {
                w.shards_done += 1;
            }
        });
    }

    /// Any message proves the worker alive; false for an unknown worker.
    pub(crate) fn seen(&mut self, id: WorkerId, now: Instant) -> bool {
        match self.workers.get_mut(&id) {
            Some(worker) => {
                worker.last_seen = worker.last_seen.max(now);
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_state(&mut self, id: WorkerId, state: WorkerState) {
        self.update(id, |w| {
            // Draining is final: a draining worker never becomes active again.
            if w.state != WorkerState::Draining {
                w.state = state;
            }
        });
    }

    /// Shifts every worker's last sign of life forward by `credit`: time the coordinator spent
    /// unable to listen is not the workers' silence.
    pub(crate) fn forgive(&mut self, credit: Duration, now: Instant) {
        for worker in self.workers.values_mut() {
            worker.last_seen = (worker.last_seen + credit).min(now);
        }
    }

    /// Workers silent for longer than `timeout`, by id.
    pub(crate) fn silent(&self, timeout: Duration, now: Instant) -> Vec<WorkerId> {
        let mut silent: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        silent.sort_unstable();
        silent
    }

    /// Slots over all attached workers.
    pub(crate) fn total_slots(&self) -> u32 {
        self.workers.values().map(|w| w.info.slots).sum()
    }

    /// Load summed over all workers (for invariant checks).
    #[cfg(test)]
    pub(crate) fn total_load(&self) -> u32 {
        self.workers.values().map(Worker::load).sum()
    }

    /// Whether the free set agrees with every worker's state and load.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn free_set_is_consistent(&self) -> bool {
        let expected: BTreeSet<FreeKey> = self
            .workers
            .iter()
            .filter(|(_, w)| w.accepts_work())
            .map(|(id, w)| w.free_key(*id))
            .collect();
        expected == self.free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(slots: u32) -> WorkerInfo {
        WorkerInfo {
            slots,
            ..WorkerInfo::default()
        }
    }

    #[test]
    fn free_slots_come_before_prefetch_room() {
        let now = Instant::now();
        let mut pool = WorkerPool::default();
        let windowed = WorkerInfo {
            slots: 1,
            prefetch: 2,
            ..WorkerInfo::default()
        };
        pool.attach(WorkerId(1), windowed.clone(), now);
        pool.attach(WorkerId(2), info(4), now);
        pool.hold(WorkerId(1), JobId(1), ShardId(0));
        for shard in 1..4 {
            pool.hold(WorkerId(2), JobId(1), ShardId(shard));
        }
        // Worker 2 (load 3 of 4 slots) has a free slot; worker 1 (load 1) only its window.
        let room = pool.first_free().unwrap();
        assert_eq!((room.worker, room.slot_free), (WorkerId(2), true));
        pool.hold(WorkerId(2), JobId(1), ShardId(4));
        let room = pool.first_free().unwrap();
        assert_eq!((room.worker, room.slot_free), (WorkerId(1), false));
        pool.hold(WorkerId(1), JobId(1), ShardId(5));
        pool.hold(WorkerId(1), JobId(1), ShardId(6));
        assert_eq!(pool.first_free(), None, "window full");
        assert!(pool.free_set_is_consistent());
    }

    #[test]
    fn the_free_set_follows_load_and_state() {
        let now = Instant::now();
        let mut pool = WorkerPool::default();
        pool.attach(WorkerId(1), info(2), now);
        pool.attach(WorkerId(2), info(1), now);
        let free = |pool: &WorkerPool| pool.first_free().map(|room| room.worker);
        pool.hold(WorkerId(1), JobId(1), ShardId(0));
        assert_eq!(free(&pool), Some(WorkerId(2)));
        pool.hold(WorkerId(2), JobId(1), ShardId(1));
        assert_eq!(free(&pool), Some(WorkerId(1)));
        pool.set_state(WorkerId(1), WorkerState::Stalled);
        assert_eq!(pool.first_free(), None);
        pool.set_state(WorkerId(1), WorkerState::Active);
        pool.release(WorkerId(2), JobId(1), ShardId(1), true);
        pool.set_state(WorkerId(2), WorkerState::Draining);
        pool.set_state(WorkerId(2), WorkerState::Active);
        assert_eq!(pool.get(WorkerId(2)).unwrap().state, WorkerState::Draining);
        assert_eq!(free(&pool), Some(WorkerId(1)));
        assert!(pool.free_set_is_consistent());
        assert_eq!(pool.get(WorkerId(2)).unwrap().shards_done, 1);
    }
}
