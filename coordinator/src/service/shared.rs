//! State shared by every RPC: the scheduler, the worker outboxes and job watchers, under one
//! lock so that messages leave in the order the scheduler decided them.

use super::encode;
use crate::scheduler::{Assignment, Comm, JobProgress, LeaseKey, Persist, Scheduler, WorkerInfo};
use crate::server::CoordinatorConfig;
use crate::store::{Store, StoreError};
use concur_core::{JobId, WorkerId};
use concur_proto::pb::{self, to_worker_message::Msg};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tonic::Status;
use tracing::{info, warn};

/// Messages queued per worker before it counts as stuck; assignments are bounded by its slots,
/// so only a worker that stopped reading can fill it.
pub(crate) const OUTBOX_CAPACITY: usize = 4096;

pub(crate) type WorkerSender = mpsc::Sender<Result<pb::ToWorkerMessage, Status>>;

/// How long the stream of a worker declared lost stays open for it to learn so.
const LOST_STREAM_TTL: Duration = Duration::from_secs(60);
/// Once a lost worker speaks again, its stream stays open this much longer, so that late
/// results queued behind its first heartbeat still arrive (and are refused) before it closes.
const LOST_STREAM_GRACE: Duration = Duration::from_secs(1);

/// The coordinator's state.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    pub(crate) config: CoordinatorConfig,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) scheduler: Scheduler,
    workers: HashMap<WorkerId, WorkerSender>,
    /// Streams of workers declared lost by silence (and when to close them). Kept open a while: if such a
    /// worker was only cut off or stopped, its late messages arrive here, are refused, and it is
    /// told to drop its leases before the stream is closed and it re-attaches.
    lost: HashMap<WorkerId, (WorkerSender, Instant)>,
    watchers: HashMap<JobId, watch::Sender<JobProgress>>,
    /// Durable state; `None` keeps everything in memory (local mode).
    store: Option<Store>,
    /// Events whose transaction failed, retried (in order) before the next ones.
    unstored: Vec<Persist>,
    /// Set once shutdown began: streams closing then are not worker losses.
    shutting_down: bool,
}

/// Collects the scheduler's effects during one event.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    messages: Vec<(WorkerId, Msg)>,
    changed: Vec<JobId>,
    persist: Vec<Persist>,
}

impl Comm for Outbox {
    fn assign(&mut self, worker: WorkerId, assignment: Assignment) {
        self.messages
            .push((worker, Msg::Assign(encode::assignment(&assignment))));
    }

    fn cancel(&mut self, worker: WorkerId, lease: LeaseKey, reason: &str) {
        let cancel = pb::CancelShard {
            lease: Some(encode::lease(lease)),
            reason: reason.to_string(),
        };
        self.messages.push((worker, Msg::Cancel(cancel)));
    }

    fn job_changed(&mut self, job_id: JobId) {
        if self.changed.last() != Some(&job_id) {
            self.changed.push(job_id);
        }
    }

    fn accepted(&mut self, worker: WorkerId, lease: LeaseKey) {
        let accepted = pb::ShardAccepted {
            lease: Some(encode::lease(lease)),
        };
        self.messages.push((worker, Msg::Accepted(accepted)));
    }

    fn persist(&mut self, event: Persist) {
        self.persist.push(event);
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    /// State with `config`: restored from `config.state_dir` when it is set, else empty.
    ///
    /// # Errors
    /// The state directory cannot be opened or holds corrupt records.
    pub fn new(config: CoordinatorConfig) -> Result<Self, StoreError> {
        let (scheduler, store) = match &config.state_dir {
            Some(dir) => {
                let store = Store::open(dir)?;
                let jobs = store.load()?;
                info!(jobs = jobs.len(), dir = %dir.display(), "state restored");
                let scheduler =
                    Scheduler::restore(config.scheduler.clone(), jobs, Instant::now(), unix_ms());
                (scheduler, Some(store))
            }
            None => (Scheduler::new(config.scheduler.clone()), None),
        };
        Ok(Self {
            state: Mutex::new(State {
                scheduler,
                workers: HashMap::new(),
                lost: HashMap::new(),
                watchers: HashMap::new(),
                store,
                unstored: Vec::new(),
                shutting_down: false,
            }),
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would leave the state unknown; carry on with it rather
        // than take the whole coordinator down (the scheduler's own operations do not panic).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one event to the scheduler and delivers its effects before unlocking.
    pub(crate) fn apply<R>(
        &self,
        event: impl FnOnce(&mut Scheduler, &mut Outbox, Instant) -> R,
    ) -> R {
        let mut state = self.lock();
        let now = Instant::now();
        let mut outbox = Outbox::default();
        let result = event(&mut state.scheduler, &mut outbox, now);
        state.deliver(outbox, now);
        result
    }

    /// Read-only access to the scheduler.
    pub(crate) fn read<R>(&self, query: impl FnOnce(&Scheduler, Instant) -> R) -> R {
        let state = self.lock();
        query(&state.scheduler, Instant::now())
    }

    /// Registers a worker and its outbox; `Registered` is its first message.
    pub(crate) fn attach_worker(&self, info: WorkerInfo, sender: WorkerSender) -> WorkerId {
        let mut state = self.lock();
        let now = Instant::now();
        let mut outbox = Outbox::default();
        let id = state.scheduler.on_worker_attached(info, now, &mut outbox);
        let registered = pb::Registered {
            worker_id: id,
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
        };
        let _ = sender.try_send(Ok(pb::ToWorkerMessage {
            msg: Some(Msg::Registered(registered)),
        }));
        state.workers.insert(id, sender);
        state.deliver(outbox, now);
        id
    }

    /// The worker's stream ended: re-queue its shards.
    pub(crate) fn detach_worker(&self, worker: WorkerId) {
        if self.lock().shutting_down {
            // Every stream closes at shutdown; re-leasing shards to workers that are about to
            // detach too would only burn their retries. A restart re-queues them instead.
            return;
        }
        self.apply(|scheduler, outbox, now| scheduler.on_worker_lost(worker, now, outbox));
        let mut state = self.lock();
        state.workers.remove(&worker);
        state.lost.remove(&worker);
    }

    /// A worker declared lost spoke again: close its old stream shortly, so it re-attaches
    /// afresh once its late messages have been refused.
    pub(crate) fn close_lost_stream_soon(&self, worker: WorkerId) {
        if let Some((_, close_at)) = self.lock().lost.get_mut(&worker) {
            let soon = Instant::now() + LOST_STREAM_GRACE;
            if soon < *close_at {
                info!(
                    worker_id = worker,
                    "lost worker is back: closing its old stream"
                );
                *close_at = soon;
            }
        }
    }

    /// A receiver of a job's progress, or `None` for an unknown job.
    pub(crate) fn watch(&self, job_id: JobId) -> Option<watch::Receiver<JobProgress>> {
        let mut state = self.lock();
        let progress = state.scheduler.job_progress(job_id, Instant::now())?;
        Some(
            state
                .watchers
                .entry(job_id)
                .or_insert_with(|| watch::channel(progress).0)
                .subscribe(),
        )
    }

    /// Declares silent workers lost (keeping their streams open a while) and closes the
    /// streams of workers lost long ago.
    pub(crate) fn tick(&self) {
        let lost = self.apply(|scheduler, outbox, now| scheduler.on_tick(now, outbox));
        let mut state = self.lock();
        let now = Instant::now();
        for worker in lost {
            warn!(
                worker_id = worker,
                "worker silent past the heartbeat timeout: lost"
            );
            if let Some(sender) = state.workers.remove(&worker) {
                state.lost.insert(worker, (sender, now + LOST_STREAM_TTL));
            }
        }
        state.lost.retain(|_, (_, close_at)| *close_at > now);
    }

    /// Ends every worker stream and watch, so graceful shutdown can complete.
    pub fn shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        state.workers.clear();
        state.lost.clear();
        state.watchers.clear();
    }
}

impl State {
    /// Stores the batch's durable changes, then sends its messages in order; a worker whose
    /// outbox is full or closed is lost. If storing fails, no `ShardAccepted` goes out.
    fn deliver(&mut self, mut outbox: Outbox, now: Instant) {
        loop {
            if let Some(store) = &mut self.store {
                // Events that failed to store before go first: the database must never see a
                // later event (a job finished) without the earlier ones (its shards committed).
                let mut batch = std::mem::take(&mut self.unstored);
                batch.append(&mut outbox.persist);
                if let Err(e) = store.apply(&batch) {
                    tracing::error!(cause = %e, events = batch.len(), "cannot store state; will retry, results stay unacknowledged");
                    outbox
                        .messages
                        .retain(|(_, msg)| !matches!(msg, Msg::Accepted(_)));
                    self.unstored = batch;
                }
            }
            outbox.persist.clear();
            let mut stuck = Vec::new();
            let mut told = Vec::new();
            for (worker, msg) in outbox.messages.drain(..) {
                let message = pb::ToWorkerMessage { msg: Some(msg) };
                if let Some(sender) = self.workers.get(&worker) {
                    if sender.try_send(Ok(message)).is_err() {
                        stuck.push(worker);
                    }
                } else if let Some((sender, _)) = self.lost.get(&worker) {
                    // A lost worker's late message was refused: tell it, then close its stream
                    // soon (not at once: more late messages may be on their way).
                    let _ = sender.try_send(Ok(message));
                    told.push(worker);
                }
            }
            for worker in told {
                if let Some((_, close_at)) = self.lost.get_mut(&worker) {
                    info!(worker_id = worker, "told a lost worker to drop its leases");
                    *close_at = (*close_at).min(now + LOST_STREAM_GRACE);
                }
            }
            for job_id in outbox.changed.drain(..) {
                if let (Some(watcher), Some(progress)) = (
                    self.watchers.get(&job_id),
                    self.scheduler.job_progress(job_id, now),
                ) {
                    watcher.send_replace(progress);
                }
            }
            if stuck.is_empty() {
                return;
            }
            for worker in stuck {
                if self.workers.remove(&worker).is_some() {
                    info!(worker_id = worker, "worker outbox full or closed: lost");
                    self.scheduler.on_worker_lost(worker, now, &mut outbox);
                }
            }
        }
    }
}
