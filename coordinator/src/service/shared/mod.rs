//! State shared by every RPC: the scheduler, the worker outboxes, the committed view of each
//! job, and the effects waiting for their commit — under one lock held only for O(event) work.
//!
//! How a promise is kept: each scheduler event's durable changes go to the store's writer as
//! one numbered batch; the acknowledgements and job records the event produced wait in
//! `held`, tagged with that number, and are released when the writer reports the batch
//! stored. Messages that promise nothing (assignments, cancels) leave at once.

mod route;

use super::outbox::Outbox;
use crate::auth::Role;
use crate::metrics::Metrics;
use crate::scheduler::{PauseReason, Scheduler, SchedulerError};
use crate::server::CoordinatorConfig;
use crate::store::{StoreEvents, StoreRead, WriteOp, Writer};
use concur_core::protocol::ToWorker;
use concur_core::protocol::WorkerInfo;
use concur_core::report::JobRecord;
use concur_core::{JobId, LeaseKey, WorkerId};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

/// Messages queued per worker before it counts as stuck; assignments are bounded by its slots,
/// so only a worker that stopped reading can fill it.
pub(crate) const OUTBOX_CAPACITY: usize = 4096;

pub(crate) type WorkerSender = mpsc::Sender<ToWorker>;

/// A worker's outbound queue, and whether it reads several assignments or acknowledgements
/// per message (protocol revision 2 or later).
#[derive(Debug)]
pub(crate) struct Outlet {
    pub(crate) sender: WorkerSender,
    pub(crate) batches: bool,
}

/// Batches handed to the writer but not yet stored, beyond which leasing pauses until the
/// writer catches up (to half of it): results of a faster scheduler would only pile up in
/// memory.
const MAX_UNSTORED_BATCHES: u64 = 4096;

/// How long the stream of a worker declared lost stays open for it to learn so.
const LOST_STREAM_TTL: Duration = Duration::from_secs(60);
/// Once a lost worker speaks again, its stream stays open this much longer, so that late
/// results queued behind its first heartbeat still arrive (and are refused) before it closes.
const LOST_STREAM_GRACE: Duration = Duration::from_secs(1);

/// An effect waiting for the commit of the batch before it.
#[derive(Debug)]
enum Effect {
    /// Tell a worker its shard is stored.
    Accepted(WorkerId, LeaseKey),
    /// Publish a job's record (to watchers, `GetJob` and `ListJobs`).
    Record(JobRecord),
    /// The job's final state is stored: forget it in memory.
    Evict(JobId),
    /// Worker ids up to this one are reserved durably.
    WorkerIds(WorkerId),
    /// Wake an RPC waiting for its change to be stored.
    Reply(oneshot::Sender<()>),
}

/// The coordinator's state.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    pub(crate) config: CoordinatorConfig,
    pub(crate) writer: Writer,
    pub(crate) reader: Arc<dyn StoreRead>,
    /// Counters updated as events are routed; gauges sampled when scraped.
    pub metrics: Arc<Metrics>,
    /// Set while this coordinator is a standby: every RPC and page is refused, naming the
    /// active coordinator.
    pub(crate) role: Role,
}

impl std::fmt::Debug for dyn StoreRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreRead")
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) scheduler: Scheduler,
    workers: HashMap<WorkerId, Outlet>,
    /// Streams of workers declared lost by silence (and when to close them). Kept open a while:
    /// if such a worker was only cut off or stopped, its late messages arrive here, are
    /// refused, and it is told to drop its leases before the stream is closed.
    lost: HashMap<WorkerId, (Outlet, Instant)>,
    /// The committed view of each job in memory; watchers subscribe to it.
    jobs: HashMap<JobId, watch::Sender<JobRecord>>,
    held: VecDeque<(u64, Effect)>,
    /// The last batch number handed to the writer, and the last one it stored.
    last_seq: u64,
    committed_seq: u64,
    /// Set once shutdown began: streams closing then are not worker losses.
    shutting_down: bool,
    /// When each batch not yet stored was handed to the writer (for the commit latency).
    unstored: VecDeque<(u64, Instant)>,
    metrics: Arc<Metrics>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    /// State around a restored scheduler and its store.
    pub(crate) fn new(
        config: CoordinatorConfig,
        scheduler: Scheduler,
        writer: Writer,
        reader: Arc<dyn StoreRead>,
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        Self {
            state: Mutex::new(State {
                scheduler,
                workers: HashMap::new(),
                lost: HashMap::new(),
                jobs: HashMap::new(),
                held: VecDeque::new(),
                last_seq: 0,
                committed_seq: 0,
                shutting_down: false,
                unstored: VecDeque::new(),
                metrics: metrics.clone(),
            }),
            config,
            writer,
            reader,
            metrics,
            role: Role::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would leave the state unknown; carry on with it rather
        // than take the whole coordinator down (the scheduler's own operations do not panic).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The active coordinator, while this one is a standby.
    pub fn standby_of(&self) -> Option<String> {
        self.role.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks this coordinator a standby of `active` (`None`: active).
    pub fn set_standby_of(&self, active: Option<String>) {
        *self.role.write().unwrap_or_else(|p| p.into_inner()) = active;
    }

    /// Why new work is refused right now, if it is.
    pub(crate) fn refusing(&self) -> Option<String> {
        self.writer.health().failing()
    }

    /// Applies one event to the scheduler and routes its effects before unlocking; returns the
    /// event's result and the batch its changes went into.
    pub(crate) fn apply<R>(
        &self,
        event: impl FnOnce(&mut Scheduler, &mut Outbox, Instant) -> R,
    ) -> (R, u64) {
        let mut state = self.lock();
        let now = Instant::now();
        let mut outbox = Outbox::default();
        let result = event(&mut state.scheduler, &mut outbox, now);
        let seq = state.route(outbox, now, &self.writer);
        (result, seq)
    }

    /// Read-only access to the scheduler.
    pub(crate) fn read<R>(&self, query: impl FnOnce(&Scheduler, Instant) -> R) -> R {
        let state = self.lock();
        query(&state.scheduler, Instant::now())
    }

    /// Waits until batch `seq` is stored (at once if it is).
    pub(crate) async fn stored(&self, seq: u64) {
        let waiter = {
            let mut state = self.lock();
            if seq <= state.committed_seq {
                return;
            }
            let (reply, waiter) = oneshot::channel();
            state.held.push_back((seq, Effect::Reply(reply)));
            waiter
        };
        let _ = waiter.await;
    }

    /// Waits up to `timeout` for batch `seq` to be stored; false if it was not.
    pub(crate) async fn stored_within(&self, seq: u64, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.stored(seq))
            .await
            .is_ok()
    }

    /// Queues store changes that come from no scheduler event (e.g. a deletion); the batch.
    pub(crate) fn write(&self, ops: Vec<WriteOp>) -> u64 {
        let mut state = self.lock();
        state.last_seq += 1;
        let seq = state.last_seq;
        self.writer.write(seq, ops);
        seq
    }

    /// Registers a worker and its outbox; `Registered` is its first message.
    pub(crate) fn attach_worker(
        &self,
        info: WorkerInfo,
        sender: WorkerSender,
    ) -> Result<WorkerId, SchedulerError> {
        let heartbeat_interval_ms = self.config.heartbeat_interval.as_millis() as u64;
        let batches = info.protocol >= 2;
        let mut state = self.lock();
        let now = Instant::now();
        let mut outbox = Outbox::default();
        let worker_id = state.scheduler.on_worker_attached(info, now, &mut outbox)?;
        let _ = sender.try_send(ToWorker::Registered {
            worker_id,
            heartbeat_interval_ms,
        });
        state.workers.insert(worker_id, Outlet { sender, batches });
        state.route(outbox, now, &self.writer);
        Ok(worker_id)
    }

    /// The worker's stream ended: re-queue its shards.
    pub(crate) fn detach_worker(&self, worker: WorkerId) {
        let mut state = self.lock();
        state.workers.remove(&worker);
        state.lost.remove(&worker);
        if state.shutting_down {
            // Every stream closes at shutdown; re-leasing shards to workers that are about to
            // detach too would only burn their retries. A restart re-queues them instead.
            return;
        }
        let now = Instant::now();
        let mut outbox = Outbox::default();
        if state.scheduler.has_worker(worker) {
            self.metrics.worker_lost("disconnected");
        }
        state.scheduler.on_worker_lost(worker, now, &mut outbox);
        state.route(outbox, now, &self.writer);
    }

    /// A worker declared lost spoke again: close its old stream shortly, so it re-attaches
    /// afresh once its late messages have been refused.
    pub(crate) fn close_lost_stream_soon(&self, worker: WorkerId) {
        if let Some((_, close_at)) = self.lock().lost.get_mut(&worker) {
            let soon = Instant::now() + LOST_STREAM_GRACE;
            if soon < *close_at {
                info!(worker_id = %worker, "lost worker is back: closing its old stream");
                *close_at = soon;
            }
        }
    }

    /// A receiver of an in-memory job's record and its changes. A job just submitted (stored,
    /// but its first record not yet published) gets its view made now.
    pub(crate) fn watch(&self, job_id: JobId) -> Option<watch::Receiver<JobRecord>> {
        let mut state = self.lock();
        if !state.jobs.contains_key(&job_id) && !state.shutting_down {
            let mut record = state.scheduler.job_record(job_id, Instant::now())?;
            if record.state.is_final() {
                // Not stored as finished yet: the final record follows once it is.
                record.state = concur_core::report::JobState::Running;
            }
            state.jobs.insert(job_id, watch::channel(record).0);
        }
        state.jobs.get(&job_id).map(watch::Sender::subscribe)
    }

    /// The committed records of the jobs in memory.
    /// Replaces stored records of jobs still in memory with their current ones: the store's
    /// rows of unfinished jobs lag behind.
    pub(crate) fn current_records(&self, jobs: &mut [JobRecord]) {
        let live: HashMap<JobId, JobRecord> = self
            .records_in_memory()
            .into_iter()
            .map(|r| (r.job_id, r))
            .collect();
        for job in jobs {
            if let Some(record) = live.get(&job.job_id) {
                *job = record.clone();
            }
        }
    }

    pub(crate) fn records_in_memory(&self) -> Vec<JobRecord> {
        let state = self.lock();
        state.jobs.values().map(|s| s.borrow().clone()).collect()
    }

    /// Declares silent workers lost (keeping their streams open a while) and closes the
    /// streams of workers lost long ago.
    pub(crate) fn tick(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        let mut outbox = Outbox::default();
        let lost = state.scheduler.on_tick(now, &mut outbox);
        for _ in &lost {
            self.metrics.worker_lost("silent");
        }
        for worker in lost {
            warn!(worker_id = %worker, "worker silent past the heartbeat timeout: lost");
            if let Some(sender) = state.workers.remove(&worker) {
                state.lost.insert(worker, (sender, now + LOST_STREAM_TTL));
            }
        }
        state.route(outbox, now, &self.writer);
        state.lost.retain(|_, (_, close_at)| *close_at > now);
    }

    /// Ends every worker stream and watch, so graceful shutdown can complete.
    pub fn shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        state.workers.clear();
        state.lost.clear();
        state.jobs.clear();
    }
}

impl StoreEvents for Shared {
    fn wrote(&self, seconds: f64) {
        self.metrics.store_wrote(seconds);
    }

    fn stored(&self, ops: &[WriteOp]) {
        // Counted here, on the writer's thread: a committed shard's items are walked once
        // they are stored, never under the scheduler's lock.
        self.metrics.observe(ops);
    }

    fn committed(&self, seq: u64) {
        let evicted = {
            let mut state = self.lock();
            state.committed_seq = state.committed_seq.max(seq);
            while let Some(&(batch, handed)) = state.unstored.front()
                && batch <= seq
            {
                self.metrics.batch_committed(handed.elapsed().as_secs_f64());
                state.unstored.pop_front();
            }
            let evicted = state.release();
            let behind = state.last_seq - state.committed_seq;
            if behind < MAX_UNSTORED_BATCHES / 2
                && state.scheduler.is_paused(PauseReason::StoreBehind)
            {
                let now = Instant::now();
                let mut outbox = Outbox::default();
                state
                    .scheduler
                    .set_paused(PauseReason::StoreBehind, false, now, &mut outbox);
                state.route(outbox, now, &self.writer);
            }
            evicted
        };
        // Jobs of a million shards take a moment to free: not under the lock.
        let big = evicted
            .iter()
            .any(|job| job.items() >= crate::memory::TRIM_AFTER_ITEMS);
        drop(evicted);
        if big {
            crate::memory::trim();
        }
    }

    fn health_changed(&self, failing: Option<String>) {
        let mut state = self.lock();
        let now = Instant::now();
        let mut outbox = Outbox::default();
        state.scheduler.set_paused(
            PauseReason::StoreFailing,
            failing.is_some(),
            now,
            &mut outbox,
        );
        state.route(outbox, now, &self.writer);
    }
}
