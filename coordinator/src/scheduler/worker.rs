//! What the scheduler knows about one attached worker.

use concur_core::{JobId, ShardId};
use std::collections::HashSet;
use std::time::Instant;

/// What a worker says about itself when it registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// Cores on that host.
    pub cores: u32,
    /// Shards it runs at once.
    pub slots: u32,
    /// Its concur version.
    pub version: String,
}

/// An attached worker.
#[derive(Debug)]
pub(crate) struct WorkerRecord {
    pub(crate) info: WorkerInfo,
    /// Shards leased to it now.
    pub(crate) running: HashSet<(JobId, ShardId)>,
    /// Last message of any kind; silence past the heartbeat timeout means lost.
    pub(crate) last_seen: Instant,
    pub(crate) shards_done: u64,
    /// Shutting down: finishes its shards but gets no new ones.
    pub(crate) draining: bool,
    /// Held a lease past the lease timeout: presumed hung, gets no new shards.
    pub(crate) stalled: bool,
}

impl WorkerRecord {
    pub(crate) fn has_free_slot(&self) -> bool {
        !self.draining && !self.stalled && (self.running.len() as u32) < self.info.slots
    }

    pub(crate) fn state(&self) -> &'static str {
        match (self.draining, self.stalled, self.running.is_empty()) {
            (true, _, _) => "draining",
            (false, true, _) => "stalled",
            (false, false, true) => "idle",
            (false, false, false) => "busy",
        }
    }
}

/// A worker as listed by `concur-cli workers`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// Its id.
    pub worker_id: u64,
    /// What it registered with.
    pub info: WorkerInfo,
    /// Shards it runs now.
    pub running: u32,
    /// Seconds since its last message.
    pub last_heartbeat_s: f64,
    /// `idle`, `busy`, `draining` or `stalled`.
    pub state: &'static str,
    /// Shards it finished.
    pub shards_done: u64,
}
