//! Routing one event's effects: durable changes to the writer as a numbered batch, messages
//! to workers at once, acknowledgements and job records held until their batch is stored —
//! and releasing them when it is.

use super::{Effect, LOST_STREAM_GRACE, State};
use crate::scheduler::{NewJob, Persist};
use crate::service::outbox::Outbox;
use crate::store::{WriteOp, Writer};
use concur_core::protocol::ToWorker;
use std::time::Instant;
use tokio::sync::watch;
use tracing::info;

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
                writer.write(self.last_seq, std::mem::take(&mut outbox.persist));
            }
            let seq = self.last_seq;
            let mut stuck = Vec::new();
            let mut told = Vec::new();
            for (worker, message) in outbox.messages.drain(..) {
                if let Some(sender) = self.workers.get(&worker) {
                    if sender.try_send(message).is_err() {
                        stuck.push(worker);
                    }
                } else if let Some((sender, _)) = self.lost.get(&worker) {
                    // A lost worker's late message was refused: tell it, then close its stream
                    // soon (not at once: more late messages may be on their way).
                    let _ = sender.try_send(message);
                    told.push(worker);
                }
            }
            for worker in told {
                if let Some((_, close_at)) = self.lost.get_mut(&worker) {
                    *close_at = (*close_at).min(now + LOST_STREAM_GRACE);
                }
            }
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
                    self.scheduler.on_worker_lost(worker, now, &mut outbox);
                }
            }
        }
        if self.committed_seq >= self.last_seq {
            let evicted = self.release();
            drop(evicted);
        }
        self.last_seq
    }

    /// Performs every held effect whose batch is stored; returns evicted jobs to drop.
    pub(super) fn release(&mut self) -> Vec<NewJob> {
        let mut evicted = Vec::new();
        while let Some((seq, _)) = self.held.front() {
            if *seq > self.committed_seq {
                break;
            }
            let Some((_, effect)) = self.held.pop_front() else {
                break;
            };
            match effect {
                Effect::Accepted(worker, lease) => {
                    if let Some(sender) = self.workers.get(&worker) {
                        let _ = sender.try_send(ToWorker::Accepted(lease));
                    }
                }
                Effect::Record(record) => match self.jobs.get(&record.job_id) {
                    Some(sender) => {
                        sender.send_replace(record);
                    }
                    // Not for a job already forgotten (or while shutting down).
                    None if !self.shutting_down && self.scheduler.has_job(record.job_id) => {
                        self.jobs.insert(record.job_id, watch::channel(record).0);
                    }
                    None => {}
                },
                Effect::Evict(job_id) => {
                    evicted.extend(self.scheduler.evict(job_id));
                    self.jobs.remove(&job_id);
                }
                Effect::WorkerIds(through) => self.scheduler.on_worker_ids_stored(through),
                Effect::Reply(reply) => {
                    let _ = reply.send(());
                }
            }
        }
        evicted
    }
}
