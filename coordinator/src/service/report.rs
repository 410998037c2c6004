//! Streaming a job's shards and items, in order and in chunks, from the store (what is
//! committed) and the scheduler (where unfinished shards are). Runs on a blocking thread and
//! sends into a bounded channel, so a report of millions of items costs the coordinator a few
//! chunks of memory and never holds its lock for more than one chunk's shard phases.

use super::shared::Shared;
use crate::scheduler::{ShardPhase, ShardView, StoredShard};
use crate::store::{StoreError, StoreRead, URL_CHUNK};
use concur_core::plan::Plan;
use concur_core::report::ShardRow;
use concur_core::workload::Workload;
use concur_core::{Attempt, JobId, JobSpec, Outcome, ShardId};
use concur_proto::convert::item_outcome;
use concur_proto::pb;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Status;

/// Shards looked up per round trip to the store and the scheduler.
const SHARD_CHUNK: u32 = 512;
/// Items or shard rows per message.
const MESSAGE_CHUNK: usize = 1024;
/// Result rows read from the store at a time.
const RESULT_PAGE: usize = 4096;

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
struct Input {
    spec: Arc<JobSpec>,
    plan: Plan,
    /// An in-memory job's spec carries its URLs; a stored one's are read in chunks.
    urls_in_spec: bool,
}

pub(crate) fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Corrupt { .. } => Status::data_loss(e.to_string()),
        other => Status::unavailable(format!("cannot read the coordinator's store: {other}")),
    }
}

/// The job's inputs, or `None` for an unknown job.
fn input(shared: &Shared, job_id: JobId) -> Result<Option<Input>, Status> {
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
enum ShardStatus {
    /// Committed: its units' outcomes are in the store.
    Committed(ShardRow, u64, u64),
    /// Gave up: every unit failed with the row's error.
    GaveUp(ShardRow),
    /// Not finished (or not yet stored): its row says where it is, if anywhere.
    Unfinished(ShardRow),
}

/// Statuses of shards `from..from + count`.
fn statuses(
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
    let views: HashMap<ShardId, ShardView> = shared
        .read(|s, _| s.shard_views(job_id, from, count))
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.shard_id, v))
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
            let mut row = ShardRow {
                shard_id,
                items,
                attempt: stored.map_or(Attempt(0), |s| s.attempt),
                ..ShardRow::default()
            };
            if let Some(view) = views.get(&shard_id) {
                row.attempt = view.attempt;
                if let ShardPhase::Leased { worker, host, pid } = &view.phase {
                    row.worker_id = *worker;
                    row.host.clone_from(host);
                    row.pid = *pid;
                }
            }
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

/// Reads item inputs (URLs a chunk at a time for stored fetch jobs).
struct Inputs<'a> {
    reader: &'a dyn StoreRead,
    job_id: JobId,
    input: &'a Input,
    chunk: Option<(u64, Vec<String>)>,
}

impl Inputs<'_> {
    fn get(&mut self, item: u64) -> Result<String, Status> {
        match &self.input.spec.workload {
            Workload::SumSquares(ns) => Ok(ns.get(item).to_string()),
            Workload::Fetch(fetch) if self.input.urls_in_spec => Ok(fetch
                .urls
                .get(item as usize)
                .unwrap_or_default()
                .to_string()),
            Workload::Fetch(_) => {
                let chunk = item / URL_CHUNK as u64;
                if self.chunk.as_ref().is_none_or(|(c, _)| *c != chunk) {
                    let text = self
                        .reader
                        .url_chunk(self.job_id, chunk)
                        .map_err(store_status)?
                        .unwrap_or_default();
                    self.chunk = Some((chunk, text.split('\n').map(String::from).collect()));
                }
                let offset = (item % URL_CHUNK as u64) as usize;
                Ok(self
                    .chunk
                    .as_ref()
                    .and_then(|(_, urls)| urls.get(offset).cloned())
                    .unwrap_or_default())
            }
        }
    }
}

/// An item assembled from its units (several for an item cut into parts).
struct Pending {
    item: u64,
    outcome: Option<Outcome>,
    finished: bool,
}

/// Streams items from `offset` on, at most `limit` after filtering (0 = all).
pub(crate) fn stream_items(
    shared: Arc<Shared>,
    job_id: JobId,
    filter: ItemFilter,
    offset: u64,
    limit: u64,
    sender: mpsc::Sender<Result<pb::ItemChunk, Status>>,
) {
    let result = (|| -> Result<(), Status> {
        let input = input(&shared, job_id)?
            .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))?;
        let mut out = ItemSink {
            sender: &sender,
            filter,
            offset,
            left: if limit == 0 { u64::MAX } else { limit },
            chunk: Vec::new(),
            inputs: Inputs {
                reader: shared.reader.as_ref(),
                job_id,
                input: &input,
                chunk: None,
            },
            pending: None,
        };
        let plan = &input.plan;
        if offset >= plan.items() {
            return out.flush();
        }
        // Items cut into parts merge across shards: no shard may be skipped then.
        let can_skip = !plan.is_split();
        let mut from = plan.shard_of_item(offset);
        while from < plan.len() && out.wants_more() {
            let count = SHARD_CHUNK.min(plan.len() - from);
            for (index, status) in (from..).zip(statuses(&shared, job_id, plan, from, count)?) {
                let first = plan.shard(index).first_item;
                let units = plan.shard(index).item_count;
                match status {
                    ShardStatus::Committed(_, ok, failed) => {
                        let wanted = match filter {
                            ItemFilter::All => true,
                            ItemFilter::Ok => ok > 0,
                            ItemFilter::Failed => failed > 0,
                            ItemFilter::Unfinished => false,
                        };
                        if !wanted && can_skip {
                            continue;
                        }
                        let mut unit = 0u32;
                        loop {
                            let page = shared
                                .reader
                                .results(job_id, ShardId(index), unit, RESULT_PAGE)
                                .map_err(store_status)?;
                            let Some(last) = page.last().map(|(u, _)| *u) else {
                                break;
                            };
                            for (u, outcome) in page {
                                out.unit(first + u64::from(u), Some(outcome), true)?;
                            }
                            unit = last + 1;
                            if !out.wants_more() {
                                break;
                            }
                        }
                    }
                    ShardStatus::GaveUp(row) => {
                        if can_skip && matches!(filter, ItemFilter::Ok | ItemFilter::Unfinished) {
                            continue;
                        }
                        let error = row.error.unwrap_or_default();
                        for item in first..first + units {
                            out.unit(item, Some(Outcome::failed(error.clone(), 0.0)), true)?;
                        }
                    }
                    ShardStatus::Unfinished(_) => {
                        if can_skip && matches!(filter, ItemFilter::Ok | ItemFilter::Failed) {
                            continue;
                        }
                        for item in first..first + units {
                            out.unit(item, None, false)?;
                        }
                    }
                }
                if !out.wants_more() {
                    break;
                }
            }
            from += count;
        }
        out.finish_pending()?;
        out.flush()
    })();
    if let Err(status) = result {
        let _ = sender.blocking_send(Err(status));
    }
}

/// Filters, chunks and sends items; merges consecutive units of one item.
struct ItemSink<'a> {
    sender: &'a mpsc::Sender<Result<pb::ItemChunk, Status>>,
    filter: ItemFilter,
    offset: u64,
    left: u64,
    chunk: Vec<pb::ItemOutcome>,
    inputs: Inputs<'a>,
    pending: Option<Pending>,
}

impl ItemSink<'_> {
    fn wants_more(&self) -> bool {
        self.left > 0 && !self.sender.is_closed()
    }

    /// One unit of `item`; units of one item arrive consecutively.
    fn unit(&mut self, item: u64, outcome: Option<Outcome>, finished: bool) -> Result<(), Status> {
        match &mut self.pending {
            Some(pending) if pending.item == item => {
                pending.finished &= finished;
                match (&mut pending.outcome, outcome) {
                    (Some(sum), Some(part)) => sum.absorb(&part, false),
                    (slot @ None, Some(part)) => *slot = Some(part),
                    (_, None) => {}
                }
                Ok(())
            }
            _ => {
                self.finish_pending()?;
                self.pending = Some(Pending {
                    item,
                    outcome,
                    finished,
                });
                Ok(())
            }
        }
    }

    fn finish_pending(&mut self) -> Result<(), Status> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let outcome = pending.outcome.filter(|_| pending.finished);
        let keep = pending.item >= self.offset
            && self.left > 0
            && match self.filter {
                ItemFilter::All => true,
                ItemFilter::Ok => outcome.as_ref().is_some_and(|o| o.ok),
                ItemFilter::Failed => outcome.as_ref().is_some_and(|o| !o.ok),
                ItemFilter::Unfinished => outcome.is_none(),
            };
        if !keep {
            return Ok(());
        }
        let input = self.inputs.get(pending.item)?;
        self.chunk
            .push(item_outcome(pending.item, input, outcome.as_ref()));
        self.left -= 1;
        if self.chunk.len() >= MESSAGE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Status> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.chunk);
        // A client that went away just ends the stream.
        let _ = self.sender.blocking_send(Ok(pb::ItemChunk { items }));
        Ok(())
    }
}
