//! Streaming a job's items: in input order, parts of split items merged, filtered, in
//! chunks.

use super::{
    Input, ItemFilter, MESSAGE_CHUNK, SHARD_CHUNK, ShardStatus, input, statuses, store_status,
};
use crate::service::shared::Shared;
use crate::store::{StoreRead, URL_CHUNK};
use concur_core::workload::Workload;
use concur_core::{JobId, Outcome, ShardId};
use concur_proto::convert::item_outcome;
use concur_proto::pb;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Status;

/// Result rows read from the store at a time.
const RESULT_PAGE: usize = 4096;

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
            Workload::Exec(exec) => Ok(exec.items.get(item)),
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
    /// The shard of its first unit.
    shard: u32,
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
                                out.unit(first + u64::from(u), index, Some(outcome), true)?;
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
                            out.unit(item, index, Some(Outcome::failed(error.clone(), 0.0)), true)?;
                        }
                    }
                    ShardStatus::Unfinished(_) => {
                        if can_skip && matches!(filter, ItemFilter::Ok | ItemFilter::Failed) {
                            continue;
                        }
                        for item in first..first + units {
                            out.unit(item, index, None, false)?;
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
    fn unit(
        &mut self,
        item: u64,
        shard: u32,
        outcome: Option<Outcome>,
        finished: bool,
    ) -> Result<(), Status> {
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
                    shard,
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
        self.chunk.push(item_outcome(
            pending.item,
            pending.shard,
            input,
            outcome.as_ref(),
        ));
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
