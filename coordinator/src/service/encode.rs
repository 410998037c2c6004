//! Domain to wire conversions for the coordinator's own types.

use crate::scheduler::{Assignment, JobProgress, JobSnapshot, LeaseKey, WorkerView};
use concur_core::JobSpec;
use concur_core::plan::Unit;
use concur_proto::convert::split_u128;
use concur_proto::pb;

pub(crate) fn lease(lease: LeaseKey) -> pb::LeaseKey {
    pb::LeaseKey {
        job_id: lease.job_id,
        shard_id: lease.shard_id,
        attempt: lease.attempt,
    }
}

pub(crate) fn assignment(assignment: &Assignment) -> pb::AssignShard {
    let mut message = pb::AssignShard {
        lease: Some(lease(assignment.lease)),
        strategy: pb::Strategy::from(assignment.strategy).into(),
        concurrency: assignment.concurrency,
        fetch_timeout_ms: assignment.fetch_timeout_ms,
        fetch_max_body_bytes: assignment.fetch_max_body_bytes,
        deny_private: assignment.fetch_policy.deny_private,
        allow_hosts: assignment.fetch_policy.allow.clone(),
        deny_hosts: assignment.fetch_policy.deny.clone(),
        ..pb::AssignShard::default()
    };
    for unit in &assignment.units {
        match unit {
            Unit::Fetch { item, url } => message.fetch.push(pb::FetchUnit {
                item: *item,
                url: url.clone(),
            }),
            Unit::SumSquares { item, lo, hi } => message.sum_squares.push(pb::SumSquaresUnit {
                item: *item,
                lo: *lo,
                hi: *hi,
            }),
        }
    }
    message
}

pub(crate) fn progress(progress: &JobProgress) -> pb::JobProgress {
    pb::JobProgress {
        job_id: progress.job_id,
        state: pb::JobState::from(progress.state).into(),
        items_total: progress.items_total,
        items_done: progress.items_done,
        items_failed: progress.items_failed,
        shards_total: progress.shards_total,
        shards_done: progress.shards_done,
        shards_running: progress.shards_running,
        elapsed_s: progress.elapsed_s,
    }
}

pub(crate) fn report(snapshot: &JobSnapshot) -> pb::JobReport {
    let shards = snapshot
        .shards
        .iter()
        .map(|row| pb::ShardReport {
            shard_id: row.shard_id,
            worker_id: row.worker_id,
            host: row.host.clone(),
            pid: row.pid,
            attempt: row.attempt,
            items: row.items,
            run_s: row.run_s,
            cpu_s: row.cpu_s,
            queue_s: row.queue_s,
            round_trip_s: row.round_trip_s,
            concurrency: row.concurrency,
            done: row.done,
            error: row.error.clone().unwrap_or_default(),
            item_time_s: row.item_time_s,
        })
        .collect();
    let items = snapshot
        .items
        .iter()
        .map(|(input, outcome)| match outcome {
            Some(outcome) => {
                let (value_hi, value_lo) = split_u128(outcome.value);
                pb::ItemOutcome {
                    input: input.clone(),
                    ok: outcome.ok,
                    duration_s: outcome.duration_s,
                    value_hi,
                    value_lo,
                    status: outcome.status,
                    bytes: outcome.bytes,
                    error: outcome.error.clone(),
                    reported: true,
                }
            }
            None => pb::ItemOutcome {
                input: input.clone(),
                ..pb::ItemOutcome::default()
            },
        })
        .collect();
    pb::JobReport {
        job_id: snapshot.progress.job_id,
        state: pb::JobState::from(snapshot.progress.state).into(),
        spec: Some(pb::JobSpec::from(&snapshot.spec)),
        wall_s: snapshot.progress.elapsed_s,
        shards,
        items,
        label: snapshot.spec.label.clone(),
        submitted_at_ms: snapshot.submitted_unix_ms,
        stale_results_discarded: snapshot.stale_discarded,
    }
}

pub(crate) fn summary(
    progress: &JobProgress,
    spec: &JobSpec,
    submitted_at_ms: u64,
) -> pb::JobSummary {
    pb::JobSummary {
        job_id: progress.job_id,
        state: pb::JobState::from(progress.state).into(),
        workload: spec.workload.name().to_string(),
        strategy: pb::Strategy::from(spec.strategy).into(),
        concurrency: spec.concurrency,
        progress: Some(self::progress(progress)),
        label: spec.label.clone(),
        submitted_at_ms,
    }
}

pub(crate) fn worker(view: &WorkerView) -> pb::WorkerSummary {
    pb::WorkerSummary {
        worker_id: view.worker_id,
        host: view.info.host.clone(),
        pid: view.info.pid,
        cores: view.info.cores,
        slots: view.info.slots,
        running: view.running,
        version: view.info.version.clone(),
        last_heartbeat_s: view.last_heartbeat_s,
        state: view.state.to_string(),
        shards_done: view.shards_done,
    }
}
