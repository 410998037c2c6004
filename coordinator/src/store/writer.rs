//! The store's one writer: a thread that applies changes in order, many per transaction (group
//! commit), off the scheduler's lock. It reports each commit by sequence number, so whoever
//! holds an acknowledgement releases it only once what it promises is stored.
//!
//! When a write fails (disk full, I/O error, read-only file system) nothing of the batch is
//! stored: the writer keeps it, reports the store as failing (the coordinator then refuses new
//! work with the cause) and retries with backoff until writing works again, then reports the
//! store healthy and carries on in order. Nothing is dropped and nothing overtakes.

use super::{NewJobRecord, Retention, StoreWrite, WriteOp};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// First and longest pause between retries of a failed write.
const RETRY_START: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Without work for this long, the writer prunes.
const IDLE: Duration = Duration::from_millis(500);
/// Rows of forgotten jobs removed per pruning transaction.
const PRUNE_BUDGET: usize = 20_000;
/// A failing store is logged again at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Told by the writer what it did.
pub trait StoreEvents: Send + Sync + 'static {
    /// Every batch up to and including `seq` is stored.
    fn committed(&self, seq: u64);
    /// One transaction took `seconds` (for the store write latency metric).
    fn wrote(&self, _seconds: f64) {}
    /// `ops` are stored (called on the writer's thread, before [`StoreEvents::committed`]):
    /// what counts them per item does so here, off the scheduler's lock.
    fn stored(&self, _ops: &[WriteOp]) {}
    /// The store started failing (with the cause) or works again (`None`).
    fn health_changed(&self, failing: Option<String>);
}

/// Whether the store can write, shared with every RPC.
#[derive(Debug, Default)]
pub struct Health {
    failing: Mutex<Option<String>>,
}

impl Health {
    /// Why the store cannot write, while it cannot.
    pub fn failing(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a new state; true when it changed.
    fn set(&self, failing: Option<String>) -> bool {
        let mut current = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        let changed = current.is_some() != failing.is_some();
        *current = failing;
        changed
    }
}

enum Request {
    Batch(u64, Vec<WriteOp>),
    Submit(NewJobRecord, oneshot::Sender<Result<(), String>>),
}

/// The handle to the store's writer: a thread for a store on disk, or in place for the
/// in-memory store, whose writes cost less than a hand-over to another thread.
#[derive(Debug)]
pub struct Writer {
    mode: Mode,
    health: Arc<Health>,
}

#[derive(Debug)]
enum Mode {
    Thread {
        sender: Mutex<Option<mpsc::Sender<Request>>>,
        thread: Mutex<Option<JoinHandle<()>>>,
    },
    InPlace {
        store: Mutex<Box<dyn StoreWrite>>,
        retention: Retention,
        last_prune: Mutex<Instant>,
    },
}

impl std::fmt::Debug for dyn StoreWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreWrite")
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Batch(seq, ops) => write!(f, "Batch({seq}, {} ops)", ops.len()),
            Request::Submit(job, _) => write!(f, "Submit({})", job.record.job_id),
        }
    }
}

impl Writer {
    /// Starts the writer thread over `store`.
    pub fn start(
        store: Box<dyn StoreWrite>,
        retention: Retention,
        events: Weak<dyn StoreEvents>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel();
        let health = Arc::new(Health::default());
        let thread_health = health.clone();
        let thread = std::thread::Builder::new()
            .name("concur-store".into())
            .spawn(move || run(store, receiver, retention, &events, &thread_health))
            .expect("start the store writer thread");
        Self {
            mode: Mode::Thread {
                sender: Mutex::new(Some(sender)),
                thread: Mutex::new(Some(thread)),
            },
            health,
        }
    }

    /// A writer that applies changes in place, in the caller's thread: for a store that never
    /// fails and costs less than waking a thread (the in-memory one).
    pub fn in_place(store: Box<dyn StoreWrite>, retention: Retention) -> Self {
        Self {
            mode: Mode::InPlace {
                store: Mutex::new(store),
                retention,
                last_prune: Mutex::new(Instant::now()),
            },
            health: Arc::new(Health::default()),
        }
    }

    /// True for the in-memory store's writer, which writes on the caller's thread.
    pub fn is_in_place(&self) -> bool {
        matches!(self.mode, Mode::InPlace { .. })
    }

    /// Writes batch `seq` (sequence numbers must increase): queued for the thread, or applied
    /// at once. True when it is stored by the time this returns.
    pub fn write(&self, seq: u64, ops: Vec<WriteOp>) -> bool {
        match &self.mode {
            Mode::Thread { sender, .. } => {
                if let Some(sender) = &*sender.lock().unwrap_or_else(|p| p.into_inner()) {
                    let _ = sender.send(Request::Batch(seq, ops));
                }
                false
            }
            Mode::InPlace {
                store,
                retention,
                last_prune,
            } => {
                let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = store.apply(&ops) {
                    error!(cause = %e, "cannot store state in memory");
                }
                let mut last = last_prune.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= IDLE {
                    *last = Instant::now();
                    let _ = store.prune(retention, unix_ms(), PRUNE_BUDGET);
                }
                true
            }
        }
    }

    /// Stores a submitted job in its own transaction.
    ///
    /// # Errors
    /// The write failed (the cause), or the writer has stopped.
    pub async fn submit(&self, job: NewJobRecord) -> Result<(), String> {
        let sender = match &self.mode {
            Mode::Thread { sender, .. } => sender,
            Mode::InPlace { store, .. } => {
                let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
                return store.submit(&job).map_err(|e| e.to_string());
            }
        };
        let (reply, answer) = oneshot::channel();
        {
            let sender = sender.lock().unwrap_or_else(|p| p.into_inner());
            let sender = sender.as_ref().ok_or("the coordinator is shutting down")?;
            sender
                .send(Request::Submit(job, reply))
                .map_err(|_| "the store writer has stopped")?;
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the store writer has stopped".into()))
    }

    /// Whether the store can write.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Stops the thread once it has written everything queued (or given up on a failing store).
    pub fn stop(&self) {
        if let Mode::Thread { sender, thread } = &self.mode {
            sender.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(thread) = thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = thread.join();
            }
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The writer's state between turns.
struct Turn<'a> {
    store: Box<dyn StoreWrite>,
    events: &'a Weak<dyn StoreEvents>,
    health: &'a Health,
    /// Ops not yet stored, in order, and the highest sequence number among them.
    pending: Vec<WriteOp>,
    pending_seq: Option<u64>,
    retry: Duration,
    last_log: Option<Instant>,
}

impl Turn<'_> {
    fn failed(&mut self, cause: String) {
        let first = self.health.set(Some(cause.clone()));
        if first || self.last_log.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            error!(%cause, pending = self.pending.len(), "cannot store state; new work is refused and acknowledgements wait until writing works again");
            self.last_log = Some(Instant::now());
        }
        if first && let Some(events) = self.events.upgrade() {
            events.health_changed(Some(cause));
        }
    }

    fn succeeded(&mut self) {
        self.retry = RETRY_START;
        if self.health.set(None) {
            info!("state is stored again; accepting new work");
            self.last_log = None;
            if let Some(events) = self.events.upgrade() {
                events.health_changed(None);
            }
        }
    }

    fn submit(&mut self, job: &NewJobRecord, reply: oneshot::Sender<Result<(), String>>) {
        let result = self.store.submit(job).map_err(|e| e.to_string());
        match &result {
            Ok(()) => self.succeeded(),
            Err(cause) => self.failed(cause.clone()),
        }
        let _ = reply.send(result);
    }

    /// Writes what is pending; true when it is all stored.
    fn flush(&mut self) -> bool {
        let Some(seq) = self.pending_seq else {
            return true;
        };
        let started = Instant::now();
        let result = self.store.apply(&self.pending);
        if let Some(events) = self.events.upgrade() {
            events.wrote(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(()) => {
                if let Some(events) = self.events.upgrade() {
                    events.stored(&self.pending);
                }
                self.pending.clear();
                self.pending_seq = None;
                self.succeeded();
                if let Some(events) = self.events.upgrade() {
                    events.committed(seq);
                }
                true
            }
            Err(e) => {
                self.failed(e.to_string());
                self.retry = (self.retry * 2).min(RETRY_MAX);
                false
            }
        }
    }
}

fn run(
    store: Box<dyn StoreWrite>,
    receiver: mpsc::Receiver<Request>,
    retention: Retention,
    events: &Weak<dyn StoreEvents>,
    health: &Health,
) {
    let mut turn = Turn {
        store,
        events,
        health,
        pending: Vec::new(),
        pending_seq: None,
        retry: RETRY_START,
        last_log: None,
    };
    let mut prune_more = true;
    loop {
        let wait = if turn.pending_seq.is_some() {
            turn.retry
        } else {
            IDLE
        };
        let first = match receiver.recv_timeout(wait) {
            Ok(request) => Some(request),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let idle = first.is_none();
        for request in first.into_iter().chain(receiver.try_iter()) {
            match request {
                Request::Batch(seq, ops) => {
                    turn.pending.extend(ops);
                    turn.pending_seq = Some(seq);
                }
                Request::Submit(job, reply) => turn.submit(&job, reply),
            }
        }
        let stored = turn.flush();
        if stored && (idle || prune_more) {
            prune_more = match turn.store.prune(&retention, unix_ms(), PRUNE_BUDGET) {
                Ok(more) => more,
                Err(e) => {
                    warn!(cause = %e, "cannot prune finished jobs; will retry");
                    false
                }
            };
        }
    }
    // Shutting down: store what is left, a few tries at most.
    for _ in 0..3 {
        if turn.flush() {
            return;
        }
        std::thread::sleep(turn.retry);
    }
    error!(
        pending = turn.pending.len(),
        "stopping with state that could not be stored; it was never acknowledged"
    );
}
