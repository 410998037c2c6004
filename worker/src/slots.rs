//! The worker's slots: one long-lived thread per slot, each taking the next leased shard from a
//! shared queue and running it to the end. A slot is free again only when its shard's
//! execution has really ended — a cancelled fetch's threads stopped, its connections closed —
//! so cancelling never lets a worker run more shards at once than it has slots.
//!
//! Shards wait in the queue when every slot is busy (the coordinator's assignments can run
//! ahead of the slots); one cancelled while queued is dropped unrun.

use crate::executor::{Pace, SlotResources, Units, run_shard};
use crate::reporter::Reporter;
use concur_core::Strategy;
use concur_core::protocol::ShardTiming;
use concur_proto::pb;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// A leased shard, ready to run.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) lease: pb::LeaseKey,
    /// The units, or why the assignment cannot run (its units then fail with it).
    pub(crate) work: Result<Units, String>,
    pub(crate) strategy: Strategy,
    pub(crate) concurrency: u32,
    /// The job's tuned limit and host gates, shared with its other shards on this worker.
    pub(crate) pace: Pace,
    /// When the assignment arrived (this process's clock): the coordinator places the shard
    /// on its own clock from the time between receipt, start and the end's sending.
    pub(crate) received: Instant,
    /// Set when the lease is cancelled or revoked, or its session ends.
    pub(crate) cancel: Arc<AtomicBool>,
    /// The session's queue towards the coordinator.
    pub(crate) outbound: mpsc::Sender<pb::FromWorkerMessage>,
    /// Send the last results before the shard's end rather than with it (for a coordinator
    /// of the first release).
    pub(crate) results_apart: bool,
}

#[derive(Debug, Default)]
struct Queue {
    tasks: Mutex<VecDeque<Task>>,
    ready: Condvar,
    stopped: AtomicBool,
}

/// The slot threads and their queue.
#[derive(Debug)]
pub(crate) struct Slots {
    queue: Arc<Queue>,
    executions: Arc<AtomicU32>,
}

impl Slots {
    /// Starts `slots` slot threads; shards they run start at most `max_threads` threads each.
    pub(crate) fn start(slots: u32, max_threads: u32) -> Self {
        let queue = Arc::new(Queue::default());
        let executions = Arc::new(AtomicU32::new(0));
        for index in 0..slots.max(1) {
            let queue = queue.clone();
            let executions = executions.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("concur-slot-{index}"))
                .spawn(move || slot(index, &queue, &executions, max_threads));
            if let Err(e) = spawned {
                warn!(cause = %e, "cannot start a slot thread; running with fewer slots");
            }
        }
        Self { queue, executions }
    }

    /// Queues shards for the next free slots.
    pub(crate) fn push(&self, tasks: Vec<Task>) {
        let count = tasks.len();
        let mut queue = self.queue.tasks.lock().unwrap_or_else(|p| p.into_inner());
        queue.extend(tasks);
        crate::metrics::global().queued(queue.len());
        drop(queue);
        if count == 1 {
            self.queue.ready.notify_one();
        } else if count > 1 {
            self.queue.ready.notify_all();
        }
    }

    /// Shard executions in progress, cancelled ones still stopping included.
    pub(crate) fn executions(&self) -> u32 {
        self.executions.load(Ordering::Relaxed)
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        self.queue.stopped.store(true, Ordering::Relaxed);
        self.queue.ready.notify_all();
    }
}

fn next(queue: &Queue) -> Option<Task> {
    let mut tasks = queue.tasks.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if queue.stopped.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(task) = tasks.pop_front() {
            crate::metrics::global().queued(tasks.len());
            return Some(task);
        }
        tasks = queue.ready.wait(tasks).unwrap_or_else(|p| p.into_inner());
    }
}

/// One slot: runs queued shards one after another.
fn slot(index: u32, queue: &Queue, executions: &AtomicU32, max_threads: u32) {
    let mut resources = SlotResources::new(max_threads);
    while let Some(task) = next(queue) {
        if task.cancel.load(Ordering::Relaxed) {
            debug!(
                job_id = task.lease.job_id,
                shard_id = task.lease.shard_id,
                "cancelled before it ran: dropped"
            );
            continue;
        }
        executions.fetch_add(1, Ordering::Relaxed);
        crate::metrics::global().shard_running(1, None);
        let started_after_s = task.received.elapsed().as_secs_f64();
        let reporter = Reporter::new(task.lease, task.outbound.clone(), task.results_apart);
        let run = match &task.work {
            Ok(work) => run_shard(
                work,
                task.strategy,
                task.concurrency,
                &task.pace,
                &mut resources,
                &task.cancel,
                &|unit, outcome| reporter.emit(unit, &outcome),
            ),
            Err(error) => ShardTiming {
                error: error.clone(),
                ..ShardTiming::default()
            },
        };
        executions.fetch_sub(1, Ordering::Relaxed);
        crate::metrics::global().shard_running(-1, Some(run.run_s));
        if task.cancel.load(Ordering::Relaxed) {
            // The coordinator no longer holds this lease; anything more would be discarded.
            continue;
        }
        debug!(
            job_id = task.lease.job_id,
            shard_id = task.lease.shard_id,
            run_s = run.run_s,
            "shard finished"
        );
        reporter.finish(pb::ShardFinished {
            run_s: run.run_s,
            cpu_s: run.cpu_s,
            concurrency: run.concurrency,
            error: run.error,
            started_after_s,
            sent_after_s: task.received.elapsed().as_secs_f64(),
            slot: index,
            ..pb::ShardFinished::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn task(lease: u32, cancelled: bool, outbound: &mpsc::Sender<pb::FromWorkerMessage>) -> Task {
        Task {
            lease: pb::LeaseKey {
                job_id: 1,
                shard_id: lease,
                attempt: 1,
            },
            work: Ok(Units::SumSquares(vec![(0, 10)])),
            strategy: Strategy::Sequential,
            concurrency: 1,
            pace: Pace::default(),
            received: Instant::now(),
            cancel: Arc::new(AtomicBool::new(cancelled)),
            outbound: outbound.clone(),
            results_apart: false,
        }
    }

    #[test]
    fn queued_shards_run_in_order_and_cancelled_ones_are_dropped_unrun() {
        let (sender, mut receiver) = mpsc::channel(16);
        let slots = Slots::start(1, 4);
        slots.push(vec![
            task(0, false, &sender),
            task(1, true, &sender),
            task(2, false, &sender),
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut finished = Vec::new();
        while finished.len() < 2 {
            assert!(Instant::now() < deadline, "shards did not finish");
            match receiver.try_recv() {
                Ok(pb::FromWorkerMessage {
                    msg: Some(pb::from_worker_message::Msg::Finished(done)),
                }) => finished.push(done.lease.unwrap().shard_id),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(finished, [0, 2], "shard 1 was cancelled while queued");
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            receiver.try_recv().is_err(),
            "nothing from the cancelled shard"
        );
        assert_eq!(slots.executions(), 0);
    }
}
