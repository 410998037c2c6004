//! A job's timeline for the dashboard: one lane group per worker process, one lane per slot,
//! each shard a bar on the coordinator's clock (see `concur_core::report::anchor`); and one
//! shard's items on its threads or tasks. Past a few thousand bars, bars that share a lane and a
//! time bucket merge into one, so a million-item job costs the browser what a screen can show.

use super::{SHARD_CHUNK, ShardStatus, Shared, input, statuses, store_status};
use concur_core::report::ShardRow;
use concur_core::{JobId, ShardId};
use serde::Serialize;
use std::collections::BTreeMap;
use tonic::Status;

/// Bars sent at most before merging by time bucket.
pub(crate) const MAX_BARS: usize = 4000;
/// Time buckets across the window per lane when merging: enough for the lanes together to
/// stay near [`MAX_BARS`], at least a few, at most what a screen's width resolves.
fn buckets_per_lane(lanes: usize) -> f64 {
    (MAX_BARS / lanes.max(1)).clamp(4, 400) as f64
}

/// What part of the timeline to send.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    /// Seconds after submission; `None` = from the start / to the end.
    pub(crate) from_s: Option<f64>,
    pub(crate) to_s: Option<f64>,
}

/// A bar: one shard or item, or (`count` > 1) several merged in a time bucket.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bar {
    /// The shard (or item's unit index); the first one's when merged.
    pub(crate) id: u64,
    pub(crate) count: u64,
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
    /// How far the start may be off either way (clock anchoring).
    pub(crate) error_s: f64,
    /// `ok`, `failed` (some items failed), `gave_up`, `running`.
    pub(crate) state: &'static str,
    /// The highest attempt among the bar's shards: > 1 is a re-run.
    pub(crate) attempt: u32,
    pub(crate) items: u64,
    /// Items (or units) in flight on average while the shard ran.
    pub(crate) parallelism: f64,
    /// Shards: the concurrency the worker ran it with — for an auto job, its tuned limit
    /// averaged over the shard's run (so the bars show the limit over time). 0 for items.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) concurrency: u32,
    /// Fetch: HTTP status and bytes (items only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One lane: a slot of a worker process, or a thread or task of a shard.
#[derive(Debug, Serialize)]
pub(crate) struct Lane {
    pub(crate) lane: u32,
    pub(crate) bars: Vec<Bar>,
}

/// A worker process and its lanes.
#[derive(Debug, Serialize)]
pub(crate) struct Process {
    pub(crate) worker_id: u64,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) lanes: Vec<Lane>,
}

/// A job's timeline, or one shard's.
#[derive(Debug, Serialize)]
pub(crate) struct Timeline {
    pub(crate) job_id: u64,
    /// Seconds after submission covered.
    pub(crate) from_s: f64,
    pub(crate) to_s: f64,
    /// Set when bars were merged per lane and time bucket (zoom in for single bars).
    pub(crate) bucket_s: Option<f64>,
    pub(crate) bars: usize,
    pub(crate) processes: Vec<Process>,
}

fn bar_state(status: &ShardStatus) -> &'static str {
    match status {
        ShardStatus::Committed(_, _, 0) => "ok",
        ShardStatus::Committed(..) => "failed",
        ShardStatus::GaveUp(_) => "gave_up",
        ShardStatus::Unfinished(_) => "running",
    }
}

fn severity(state: &str) -> u8 {
    match state {
        "ok" => 0,
        "running" => 1,
        "failed" => 2,
        _ => 3,
    }
}

/// The shard timeline of a job, `now_s` seconds after its submission for running shards.
pub(crate) fn job_timeline(
    shared: &Shared,
    job_id: JobId,
    now_s: f64,
    window: Window,
) -> Result<Timeline, Status> {
    let input = input(shared, job_id)?
        .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))?;
    let plan = &input.plan;
    // (worker, host, pid) → lane → bars
    let mut groups: BTreeMap<(u64, String, u32), BTreeMap<u32, Vec<Bar>>> = BTreeMap::new();
    let mut from = 0;
    while from < plan.len() {
        let count = SHARD_CHUNK.min(plan.len() - from);
        for status in statuses(shared, job_id, plan, from, count)? {
            let state = bar_state(&status);
            let row: &ShardRow = match &status {
                ShardStatus::Committed(row, ..)
                | ShardStatus::GaveUp(row)
                | ShardStatus::Unfinished(row) => row,
            };
            if row.worker_id.get() == 0 {
                continue; // never ran (pending, or gave up without a worker)
            }
            let end_s = if state == "running" {
                now_s
            } else {
                row.start_s + row.run_s
            };
            if window.to_s.is_some_and(|to| row.start_s > to)
                || window.from_s.is_some_and(|from| end_s < from)
            {
                continue;
            }
            groups
                .entry((row.worker_id.get(), row.host.clone(), row.pid))
                .or_default()
                .entry(if state == "running" {
                    u32::MAX
                } else {
                    row.slot
                })
                .or_default()
                .push(Bar {
                    id: u64::from(row.shard_id.get()),
                    count: 1,
                    start_s: row.start_s,
                    end_s,
                    error_s: row.start_error_s,
                    state,
                    attempt: row.attempt.get(),
                    items: row.items,
                    parallelism: row.task_parallelism,
                    concurrency: row.concurrency,
                    status: None,
                    bytes: None,
                    error: row.error.clone(),
                });
        }
        from += count;
    }
    let mut processes: Vec<Process> = groups
        .into_iter()
        .map(|((worker_id, host, pid), lanes)| Process {
            worker_id,
            host,
            pid,
            lanes: place_running(lanes),
        })
        .collect();
    Ok(finish(job_id.get(), &mut processes, window, now_s).with(processes))
}

/// Running shards have no slot yet: each goes on the first lane free at its start.
fn place_running(mut lanes: BTreeMap<u32, Vec<Bar>>) -> Vec<Lane> {
    let running = lanes.remove(&u32::MAX).unwrap_or_default();
    for bar in running {
        let free = lanes
            .iter()
            .find(|(_, bars)| bars.iter().all(|b| b.end_s <= bar.start_s))
            .map(|(lane, _)| *lane);
        let lane = free.unwrap_or_else(|| lanes.keys().next_back().map_or(0, |l| l + 1));
        lanes.entry(lane).or_default().push(bar);
    }
    lanes
        .into_iter()
        .map(|(lane, mut bars)| {
            bars.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            Lane { lane, bars }
        })
        .collect()
}

/// The window's bounds, with bars merged per lane and bucket when there are too many.
struct Finished {
    job_id: u64,
    from_s: f64,
    to_s: f64,
    bucket_s: Option<f64>,
    bars: usize,
}

impl Finished {
    fn with(self, processes: Vec<Process>) -> Timeline {
        Timeline {
            job_id: self.job_id,
            from_s: self.from_s,
            to_s: self.to_s,
            bucket_s: self.bucket_s,
            bars: self.bars,
            processes,
        }
    }
}

fn finish(job_id: u64, processes: &mut [Process], window: Window, now_s: f64) -> Finished {
    let all = || {
        processes
            .iter()
            .flat_map(|p| &p.lanes)
            .flat_map(|l| &l.bars)
    };
    let from_s = window
        .from_s
        .unwrap_or_else(|| all().map(|b| b.start_s).fold(f64::INFINITY, f64::min))
        .min(now_s)
        .max(0.0);
    let to_s = window
        .to_s
        .unwrap_or_else(|| all().map(|b| b.end_s).fold(0.0, f64::max))
        .max(from_s);
    let total = all().count();
    let lanes = processes.iter().map(|p| p.lanes.len()).sum();
    let bucket_s =
        (total > MAX_BARS).then(|| ((to_s - from_s) / buckets_per_lane(lanes)).max(1e-6));
    if let Some(bucket_s) = bucket_s {
        for lane in processes.iter_mut().flat_map(|p| p.lanes.iter_mut()) {
            lane.bars = merge(std::mem::take(&mut lane.bars), from_s, bucket_s);
        }
    }
    let bars = processes
        .iter()
        .flat_map(|p| &p.lanes)
        .map(|l| l.bars.len())
        .sum();
    Finished {
        job_id,
        from_s,
        to_s,
        bucket_s,
        bars,
    }
}

/// Merges bars (sorted by start) whose starts fall in one bucket into one bar.
fn merge(bars: Vec<Bar>, from_s: f64, bucket_s: f64) -> Vec<Bar> {
    let mut merged: Vec<(i64, Bar)> = Vec::new();
    for bar in bars {
        let bucket = ((bar.start_s - from_s) / bucket_s).floor() as i64;
        match merged.last_mut() {
            Some((last_bucket, last)) if *last_bucket == bucket => {
                last.count += bar.count;
                last.items += bar.items;
                last.end_s = last.end_s.max(bar.end_s);
                last.attempt = last.attempt.max(bar.attempt);
                last.parallelism = last.parallelism.max(bar.parallelism);
                last.concurrency = last.concurrency.max(bar.concurrency);
                if severity(bar.state) > severity(last.state) {
                    last.state = bar.state;
                }
                last.error = last.error.take().or(bar.error);
            }
            _ => merged.push((bucket, bar)),
        }
    }
    merged.into_iter().map(|(_, bar)| bar).collect()
}

/// One shard's items on its threads or tasks, placed after the shard's own start.
pub(crate) fn shard_timeline(
    shared: &Shared,
    job_id: JobId,
    shard_id: u32,
) -> Result<Timeline, Status> {
    let input = input(shared, job_id)?
        .ok_or_else(|| Status::not_found(format!("no job with id {job_id}")))?;
    if shard_id >= input.plan.len() {
        return Err(Status::not_found(format!(
            "job {job_id} has no shard {shard_id}"
        )));
    }
    let status = statuses(shared, job_id, &input.plan, shard_id, 1)?
        .pop()
        .ok_or_else(|| Status::not_found(format!("job {job_id} has no shard {shard_id}")))?;
    let ShardStatus::Committed(row, ..) = status else {
        return Err(Status::failed_precondition(format!(
            "shard {shard_id} of job {job_id} has no item results yet"
        )));
    };
    let first_item = input.plan.shard(shard_id).first_item;
    let mut lanes: BTreeMap<u32, Vec<Bar>> = BTreeMap::new();
    let mut unit = 0;
    loop {
        let page = shared
            .reader
            .results(job_id, ShardId(shard_id), unit, 4096)
            .map_err(store_status)?;
        let Some(last) = page.last().map(|(u, _)| *u) else {
            break;
        };
        for (u, outcome) in page {
            let start_s = row.start_s + outcome.start_s;
            lanes.entry(outcome.lane).or_default().push(Bar {
                id: first_item + u64::from(u),
                count: 1,
                start_s,
                end_s: start_s + outcome.duration_s,
                error_s: row.start_error_s,
                state: if outcome.ok { "ok" } else { "failed" },
                attempt: row.attempt.get(),
                items: 1,
                parallelism: 1.0,
                concurrency: 0,
                status: (outcome.status != 0).then_some(outcome.status),
                bytes: (outcome.bytes != 0).then_some(outcome.bytes),
                error: (!outcome.error.is_empty()).then_some(outcome.error),
            });
        }
        unit = last + 1;
    }
    let mut processes = vec![Process {
        worker_id: row.worker_id.get(),
        host: row.host.clone(),
        pid: row.pid,
        lanes: lanes
            .into_iter()
            .map(|(lane, mut bars)| {
                bars.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
                Lane { lane, bars }
            })
            .collect(),
    }];
    let window = Window {
        from_s: Some(row.start_s),
        to_s: Some(row.start_s + row.run_s),
    };
    Ok(finish(
        job_id.get(),
        &mut processes,
        window,
        row.start_s + row.run_s,
    )
    .with(processes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(start_s: f64, end_s: f64, state: &'static str) -> Bar {
        Bar {
            id: 0,
            count: 1,
            start_s,
            end_s,
            error_s: 0.0,
            state,
            attempt: 1,
            items: 10,
            parallelism: 1.0,
            concurrency: 0,
            status: None,
            bytes: None,
            error: None,
        }
    }

    #[test]
    fn bars_in_one_bucket_merge_keeping_the_worst_state() {
        let merged = merge(
            vec![
                bar(0.0, 0.1, "ok"),
                bar(0.2, 0.3, "failed"),
                bar(1.5, 1.6, "ok"),
            ],
            0.0,
            1.0,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].count, 2);
        assert_eq!(merged[0].items, 20);
        assert_eq!(merged[0].state, "failed");
        assert_eq!(merged[0].end_s, 0.3);
        assert_eq!(merged[1].count, 1);
    }

    #[test]
    fn a_running_shard_takes_the_first_lane_free_at_its_start() {
        let mut lanes = BTreeMap::new();
        lanes.insert(0, vec![bar(0.0, 5.0, "ok")]);
        lanes.insert(1, vec![bar(0.0, 1.0, "ok")]);
        lanes.insert(u32::MAX, vec![bar(2.0, 3.0, "running")]);
        let placed = place_running(lanes);
        assert_eq!(placed.len(), 2);
        assert_eq!(placed[1].bars.len(), 2);
    }
}
