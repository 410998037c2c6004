//! Reporting one shard's results: unit results in batches (up to [`RESULT_BATCH`], or whatever
//! arrived once [`RESULT_FLUSH`] has passed since the last batch), then the shard's end with
//! the last results riding along — one message for a small shard. No timer: a batch leaves
//! when a result arrives or the shard ends.
//!
//! Sends wait when the outbound queue is full, which stalls the shard's threads: a worker
//! holds at most the queue's messages plus one batch per running shard, however slow the
//! network.

use concur_core::Outcome;
use concur_proto::convert::unit_result;
use concur_proto::pb::{self, from_worker_message::Msg};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Results per message at most.
pub(crate) const RESULT_BATCH: usize = 1024;
/// A partial batch leaves with the first result after this long.
pub(crate) const RESULT_FLUSH: Duration = Duration::from_millis(100);

/// The results of one shard on their way to the coordinator.
#[derive(Debug)]
pub(crate) struct Reporter {
    lease: pb::LeaseKey,
    outbound: mpsc::Sender<pb::FromWorkerMessage>,
    batch: Mutex<Batch>,
    /// Send the last results in a message of their own before the end (first-release
    /// coordinators read no results from `ShardFinished`).
    results_apart: bool,
}

#[derive(Debug)]
struct Batch {
    results: Vec<pb::UnitResult>,
    last_sent: Instant,
}

impl Reporter {
    pub(crate) fn new(
        lease: pb::LeaseKey,
        outbound: mpsc::Sender<pb::FromWorkerMessage>,
        results_apart: bool,
    ) -> Self {
        Self {
            lease,
            outbound,
            batch: Mutex::new(Batch {
                results: Vec::new(),
                last_sent: Instant::now(),
            }),
            results_apart,
        }
    }

    /// Adds one unit's outcome; sends the batch when it is full or due. Called from any of the
    /// shard's threads; sending under the lock keeps batches in order.
    pub(crate) fn emit(&self, unit: u32, outcome: &Outcome) {
        crate::metrics::global().unit(outcome.ok, outcome.bytes);
        let mut batch = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        batch.results.push(unit_result(unit, outcome));
        if batch.results.len() >= RESULT_BATCH || batch.last_sent.elapsed() >= RESULT_FLUSH {
            let results = std::mem::take(&mut batch.results);
            batch.last_sent = Instant::now();
            self.send(Msg::Results(pb::UnitResults {
                lease: Some(self.lease),
                results,
            }));
        }
    }

    /// Sends the shard's end with the results not sent yet.
    pub(crate) fn finish(self, finished: pb::ShardFinished) {
        let results =
            std::mem::take(&mut self.batch.lock().unwrap_or_else(|p| p.into_inner()).results);
        if self.results_apart && !results.is_empty() {
            self.send(Msg::Results(pb::UnitResults {
                lease: Some(self.lease),
                results,
            }));
            self.send(Msg::Finished(pb::ShardFinished {
                lease: Some(self.lease),
                ..finished
            }));
            return;
        }
        self.send(Msg::Finished(pb::ShardFinished {
            lease: Some(self.lease),
            results,
            ..finished
        }));
    }

    fn send(&self, msg: Msg) {
        // Waits for room in the queue; works from plain threads and from inside a shard's own
        // event loop alike. A closed queue means the session ended: the lease is gone anyway.
        let _ = futures::executor::block_on(
            self.outbound.send(pb::FromWorkerMessage { msg: Some(msg) }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_shard_is_one_message_and_big_ones_come_in_batches() {
        let (sender, mut receiver) = mpsc::channel(64);
        let lease = pb::LeaseKey::default();
        let reporter = Reporter::new(lease, sender.clone(), false);
        reporter.emit(0, &Outcome::default());
        reporter.finish(pb::ShardFinished::default());
        let Some(pb::FromWorkerMessage {
            msg: Some(Msg::Finished(finished)),
        }) = receiver.try_recv().ok()
        else {
            panic!("one Finished message")
        };
        assert_eq!(finished.results.len(), 1);
        assert!(receiver.try_recv().is_err());

        let reporter = Reporter::new(lease, sender, false);
        for unit in 0..(RESULT_BATCH as u32 + 5) {
            reporter.emit(unit, &Outcome::default());
        }
        reporter.finish(pb::ShardFinished::default());
        let mut total = 0;
        while let Ok(message) = receiver.try_recv() {
            total += match message.msg {
                Some(Msg::Results(batch)) => batch.results.len(),
                Some(Msg::Finished(finished)) => finished.results.len(),
                _ => 0,
            };
        }
        assert_eq!(total, RESULT_BATCH + 5, "every result, once");
    }
}
