//! Routing one event's effects: durable changes to the writer as a numbered batch, messages
//! to workers at once, acknowledgements and job records held until their batch is stored —
//! and releasing them when it is. Messages for one worker go out in the order they were made;
//! consecutive assignments, and the acknowledgements released together, share one message for
//! workers that read them so.

use super::{Effect, LOST_STREAM_GRACE, MAX_UNSTORED_BATCHES, State};
use crate::scheduler::{NewJob, PauseReason, Persist};
use crate::service::outbox::Outbox;
use crate::store::{WriteOp, Writer};
use concur_core::protocol::ToWorker;
use concur_core::report::JobRecord;
use concur_core::{JobId, LeaseKey, WorkerId};
use std::collections::HashMap;
use std::time::Instant;
use tokio::sync::watch;
use tracing::info;

/// Merges a message into a worker's queue: an assignment after an assignment joins it.
fn push(queue: &mut Vec<ToWorker>, message: ToWorker, batches: bool) {
    if batches
        && let (Some(ToWorker::Assign(last)), ToWorker::Assign(more)) = (queue.last_mut(), &message)
    {
        last.extend(more.iter().cloned());
        return;
    }
    queue.push(message);
}

impl State {
    /// Hands an event's durable changes to the writer, sends its messages, and holds its
    /// acknowledgements and records until the changes are stored. Returns the batch number.
    pub(super) fn route(&mut self, mut outbox: Outbox, now: Instant, writer: &Writer) -> u64 {
        loop {
            // Effects that must follow this event's records: forgetting a finished job, and
            // handing out freshly reserved worker ids.
            let mut after_records = Vec::new();
            if !outbox.persist.is_empty() {
                self.last_seq += 1;
                for op in &outbox.persist {
                    match op {
                        WriteOp::Persist(Persist::JobFinished { record }) => {
                            after_records.push(Effect::Evict(record.job_id));
                        }
                        WriteOp::Persist(Persist::WorkerIdsReserved { through }) => {
                            after_records.push(Effect::WorkerIds(*through));
                        }
                        _ => {}
                    }
                }
                let handed = Instant::now();
                let ops = std::mem::take(&mut outbox.persist);
                // The in-memory store writes in place, here (its per-item writes are its
                // storing); a store with a writer thread counts the ops there once stored.
                if writer.is_in_place() {
                    self.metrics.observe(&ops);
                }
                if writer.write(self.last_seq, ops) {
                    self.committed_seq = self.last_seq;
                    self.metrics.batch_committed(handed.elapsed().as_secs_f64());
                } else {
                    self.unstored.push_back((self.last_seq, now));
                }
            }
            let seq = self.last_seq;
            let stuck = self.send(std::mem::take(&mut outbox.messages), now);
            for (worker, lease) in outbox.accepted.drain(..) {
                self.held.push_back((seq, Effect::Accepted(worker, lease)));
            }
            for job_id in outbox.changed.drain(..) {
                // The record as of this event: visible once this batch is stored.
                if let Some(record) = self.scheduler.job_record(job_id, now) {
                    self.held.push_back((seq, Effect::Record(record)));
                }
            }
            self.held
                .extend(after_records.into_iter().map(|effect| (seq, effect)));
            if stuck.is_empty() {
                break;
            }
            for worker in stuck {
                if self.workers.remove(&worker).is_some() {
                    info!(worker_id = %worker, "worker outbox full or closed: lost");
                    self.metrics.worker_lost("stuck");
                    self.scheduler.on_worker_lost(worker, now, &mut outbox);
                }
            }
        }
        if self.committed_seq >= self.last_seq {
            let evicted = self.release();
            drop(evicted);
        } else if self.last_seq - self.committed_seq > MAX_UNSTORED_BATCHES
            && !self.scheduler.is_paused(PauseReason::StoreBehind)
        {
            // The writer lags: lease nothing more until it has caught up.
            let mut outbox = Outbox::default();
            self.scheduler
                .set_paused(PauseReason::StoreBehind, true, now, &mut outbox);
        }
        self.last_seq
    }

    /// Sends messages, each worker's in order, merged where the worker reads them so; returns
    /// the workers whose queue is full or closed.
    fn send(&mut self, messages: Vec<(WorkerId, ToWorker)>, now: Instant) -> Vec<WorkerId> {
        let mut queues: Vec<(WorkerId, Vec<ToWorker>)> = Vec::new();
        for (worker, message) in messages {
            let batches = self.workers.get(&worker).is_some_and(|o| o.batches);
            match queues.iter_mut().find(|(w, _)| *w == worker) {
                Some((_, queue)) => push(queue, message, batches),
                None => queues.push((worker, vec![message])),
            }
        }
        let mut stuck = Vec::new();
        for (worker, queue) in queues {
            if let Some(outlet) = self.workers.get(&worker) {
                if queue
                    .into_iter()
                    .any(|m| outlet.sender.try_send(m).is_err())
                {
                    stuck.push(worker);
                }
            } else if let Some((outlet, close_at)) = self.lost.get_mut(&worker) {
                // A lost worker's late message was refused: tell it, then close its stream
                // soon (not at once: more late messages may be on their way).
                for message in queue {
                    let _ = outlet.sender.try_send(message);
                }
                *close_at = (*close_at).min(now + LOST_STREAM_GRACE);
            }
        }
        stuck
    }

    /// Performs every held effect whose batch is stored; returns evicted jobs to drop.
    pub(super) fn release(&mut self) -> Vec<NewJob> {
        let mut evicted = Vec::new();
        let mut accepted: HashMap<WorkerId, Vec<LeaseKey>> = HashMap::new();
        // Only the latest record of a job matters; it is published once, before the job is
        // forgotten if it is.
        let mut records: HashMap<JobId, JobRecord> = HashMap::new();
        while let Some((seq, _)) = self.held.front() {
            if *seq > self.committed_seq {
                break;
            }
            let Some((_, effect)) = self.held.pop_front() else {
                break;
            };
            match effect {
                Effect::Accepted(worker, lease) => accepted.entry(worker).or_default().push(lease),
                Effect::Record(record) => {
                    records.insert(record.job_id, record);
                }
                Effect::Evict(job_id) => {
                    if let Some(record) = records.remove(&job_id) {
                        self.publish(record);
                    }
                    evicted.extend(self.scheduler.evict(job_id));
                    self.jobs.remove(&job_id);
                }
                Effect::WorkerIds(through) => self.scheduler.on_worker_ids_stored(through),
                Effect::Reply(reply) => {
                    // Whoever waits for this batch may look: publish what it stored first.
                    for (_, record) in records.drain() {
                        self.publish(record);
                    }
                    let _ = reply.send(());
                }
            }
        }
        for (_, record) in records {
            self.publish(record);
        }
        for (worker, leases) in accepted {
            let Some(outlet) = self.workers.get(&worker) else {
                continue;
            };
            if outlet.batches {
                let _ = outlet.sender.try_send(ToWorker::Accepted(leases));
            } else {
                for lease in leases {
                    let _ = outlet.sender.try_send(ToWorker::Accepted(vec![lease]));
                }
            }
        }
        evicted
    }

    /// Makes a job's record the one watchers, `GetJob` and `ListJobs` see.
    fn publish(&mut self, record: JobRecord) {
        match self.jobs.get(&record.job_id) {
            Some(sender) => {
                sender.send_replace(record);
            }
            // Not for a job already forgotten (or while shutting down).
            None if !self.shutting_down && self.scheduler.has_job(record.job_id) => {
                self.jobs.insert(record.job_id, watch::channel(record).0);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_assignments_share_a_message_only_for_workers_that_read_them_so() {
        let assign = || ToWorker::Assign(Vec::new());
        let mut queue = Vec::new();
        push(&mut queue, assign(), true);
        push(&mut queue, assign(), true);
        push(&mut queue, ToWorker::Accepted(Vec::new()), true);
        push(&mut queue, assign(), true);
        assert_eq!(queue.len(), 3);
        let mut old = Vec::new();
        push(&mut old, assign(), false);
        push(&mut old, assign(), false);
        assert_eq!(old.len(), 2);
    }
}
