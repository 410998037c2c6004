//! Streaming a job's shards and items, in order and in chunks, from the store (what is
//! committed) and the scheduler (where unfinished shards are). Runs on a blocking thread and
//! sends into a bounded channel, so a report of millions of items costs the coordinator a few
//! chunks of memory and never holds its lock for more than one chunk's shard phases.

use super::shared::Shared;
use crate::scheduler::StoredShard;
use crate::store::StoreError;
use concur_core::plan::Plan;
use concur_core::report::ShardRow;
use concur_core::{Attempt, JobId, JobSpec, ShardId};
use concur_proto::pb;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Status;

/// Shards looked up per round trip to the store and the scheduler.
const SHARD_CHUNK: u32 = 512;
/// Items or shard rows per message.
const MESSAGE_CHUNK: usize = 1024;

mod items;
pub(crate) mod timeline;

pub(crate) use items::stream_items;

/// Which items a listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemFilter {
    All,
    Ok,
    Failed,
    Unfinished,
}

impl From<pb::ItemFilter> for ItemFilter {
    fn from(filter: pb::ItemFilter) -> Self {
        match filter {
            pb::ItemFilter::All => ItemFilter::All,
            pb::ItemFilter::Ok => ItemFilter::Ok,
            pb::ItemFilter::Failed => ItemFilter::Failed,
            pb::ItemFilter::Unfinished => ItemFilter::Unfinished,
        }
    }
}

/// A job's inputs and plan, from memory or from the store.
pub(super) struct Input {
    pub(super) spec: Arc<JobSpec>,
    pub(super) plan: Plan,
    /// An in-memory job's spec carries its URLs; a stored one's are read in chunks.
    pub(super) urls_in_spec: bool,
}

pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Corrupt { .. } => Status::data_loss(e.to_string()),
        other => Status::unavailable(format!("cannot read the coordinator's store: {other}")),
    }
}

/// The job's inputs, or `None` for an unknown job.
pub(super) fn input(shared: &Shared, job_id: JobId) -> Result<Option<Input>, Status> {
    if let Some((spec, plan)) = shared.read(|s, _| s.job_input(job_id)) {
        return Ok(Some(Input {
            spec,
            plan,
            urls_in_spec: true,
        }));
    }
    let Some(stored) = shared.reader.input(job_id).map_err(store_status)? else {
        return Ok(None);
    };
    let plan = Plan::with_items(&stored.spec.workload, stored.items, stored.shards);
    Ok(Some(Input {
        spec: stored.spec,
        plan,
        urls_in_spec: false,
    }))
}

/// Where one shard stands for a report.
pub(super) enum ShardStatus {
    /// Committed: its units' outcomes are in the store.
    Committed(ShardRow, u64, u64),
    /// Gave up: every unit failed with the row's error.
    GaveUp(ShardRow),
    /// Not finished (or not yet stored): its row says where it is, if anywhere.
    Unfinished(ShardRow),
}

/// Statuses of shards `from..from + count`.
pub(super) fn statuses(
    shared: &Shared,
    job_id: JobId,
    plan: &Plan,
    from: u32,
    count: u32,
) -> Result<Vec<ShardStatus>, Status> {
    let stored: HashMap<ShardId, StoredShard> = shared
        .reader
        .shards(job_id, ShardId(from), count)
        .map_err(store_status)?
        .into_iter()
        .map(|s| (s.shard_id, s))
        .collect();
    let live: HashMap<ShardId, ShardRow> = shared
        .read(|s, _| s.unfinished_rows(job_id, from, count))
        .unwrap_or_default()
        .into_iter()
        .map(|row| (row.shard_id, row))
        .collect();
    let end = from.saturating_add(count).min(plan.len());
    Ok((from..end)
        .map(|index| {
            let shard_id = ShardId(index);
            let items = plan.shard(index).item_count;
            let stored = stored.get(&shard_id);
            if let Some(end) = stored.and_then(|s| s.end.as_ref()) {
                let row = end.row.clone().with_figures();
                return if end.gave_up {
                    ShardStatus::GaveUp(row)
                } else {
                    ShardStatus::Committed(row, end.units_ok, end.units_failed)
                };
            }
            let row = live.get(&shard_id).cloned().unwrap_or_else(|| ShardRow {
                shard_id,
                items,
                attempt: stored.map_or(Attempt(0), |s| s.attempt),
                ..ShardRow::default()
            });
            ShardStatus::Unfinished(row)
        })
        .collect())
}

/// Streams shard rows `offset..offset + limit` (0 = to the end).
pub(crate) fn stream_shards(
    shared: Arc<Shared>,
    job_id: JobId,
    offset: u32,
    limit: u32,
    sender: mpsc::Sender<Result<pb::ShardReportChunk, Status>>,
) {
    let result = (|| -> Result<(), Status> {
        let input = input(&shared, job_id)?
            .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))?;
        let end = if limit == 0 {
            input.plan.len()
        } else {
            offset.saturating_add(limit).min(input.plan.len())
        };
        let mut from = offset;
        while from < end {
            let count = SHARD_CHUNK.min(end - from);
            let shards = statuses(&shared, job_id, &input.plan, from, count)?
                .into_iter()
                .map(|status| match status {
                    ShardStatus::Committed(row, ..)
                    | ShardStatus::GaveUp(row)
                    | ShardStatus::Unfinished(row) => pb::ShardReport::from(&row),
                })
                .collect();
            if sender
                .blocking_send(Ok(pb::ShardReportChunk { shards }))
                .is_err()
            {
                return Ok(()); // the client went away
            }
            from += count;
        }
        Ok(())
    })();
    if let Err(status) = result {
        let _ = sender.blocking_send(Err(status));
    }
}
