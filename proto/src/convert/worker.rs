//! The worker stream's messages: leases, assignments, unit results, shard timing, registration.

use super::spec::strategy_from_i32;
use super::{join_u128, sanitize_seconds, split_u128};
use crate::pb;
use concur_core::exec::ExecPermission;
use concur_core::pacing::Pacing;
use concur_core::plan::Unit;
use concur_core::policy::HostPolicy;
use concur_core::protocol::{
    Assignment, ExecCommand, PROTOCOL_REVISION, ReceivedAssignment, ShardTiming, ToWorker,
    WorkerInfo,
};
use concur_core::{Attempt, JobId, LeaseKey, Outcome, ShardId, SpecError, Strategy};

impl From<LeaseKey> for pb::LeaseKey {
    fn from(lease: LeaseKey) -> Self {
        pb::LeaseKey {
            job_id: lease.job_id.get(),
            shard_id: lease.shard_id.get(),
            attempt: lease.attempt.get(),
        }
    }
}

impl From<pb::LeaseKey> for LeaseKey {
    fn from(lease: pb::LeaseKey) -> Self {
        LeaseKey {
            job_id: JobId(lease.job_id),
            shard_id: ShardId(lease.shard_id),
            attempt: Attempt(lease.attempt),
        }
    }
}

impl From<&Assignment> for pb::AssignShard {
    /// Builds the units (copying their URLs) here, at encoding time, not when the lease is made.
    fn from(assignment: &Assignment) -> Self {
        let (fetch_timeout_ms, fetch_max_body_bytes) = assignment.fetch_limits();
        let policy = &assignment.fetch_policy;
        let mut message = pb::AssignShard {
            lease: Some(assignment.lease.into()),
            strategy: pb::Strategy::from(assignment.strategy()).into(),
            concurrency: assignment.concurrency(),
            fetch_timeout_ms,
            fetch_max_body_bytes,
            deny_private: policy.deny_private,
            allow_hosts: policy.allow.clone(),
            deny_hosts: policy.deny.clone(),
            exec_command: assignment.exec_command().map(|c| pb::ExecCommand {
                program: c.program,
                args: c.args,
                timeout_ms: c.timeout_ms,
            }),
            auto_concurrency: assignment.pacing().auto,
            per_host_connections: assignment.pacing().per_host_connections,
            per_host_delay_ms: assignment.pacing().per_host_delay_ms,
            ..pb::AssignShard::default()
        };
        for unit in assignment.units() {
            match unit {
                Unit::Exec { item, arg } => message.exec.push(pb::ExecUnit { item, arg }),
                Unit::Fetch { item, url } => message.fetch.push(pb::FetchUnit { item, url }),
                Unit::SumSquares { item, lo, hi } => {
                    message
                        .sum_squares
                        .push(pb::SumSquaresUnit { item, lo, hi });
                }
            }
        }
        message
    }
}

impl From<pb::AssignShard> for ReceivedAssignment {
    /// A missing lease reads as the zero lease, which no coordinator grants (its results are
    /// refused); an unknown strategy is kept as an error for the shard to fail with.
    fn from(assign: pb::AssignShard) -> Self {
        let strategy = assignment_strategy(&assign).map_err(|e| e.to_string());
        let units = if !assign.exec.is_empty() {
            assign
                .exec
                .into_iter()
                .map(|u| Unit::Exec {
                    item: u.item,
                    arg: u.arg,
                })
                .collect()
        } else if assign.fetch.is_empty() {
            assign
                .sum_squares
                .into_iter()
                .map(|u| Unit::SumSquares {
                    item: u.item,
                    lo: u.lo,
                    hi: u.hi,
                })
                .collect()
        } else {
            assign
                .fetch
                .into_iter()
                .map(|u| Unit::Fetch {
                    item: u.item,
                    url: u.url,
                })
                .collect()
        };
        ReceivedAssignment {
            lease: assign.lease.map(LeaseKey::from).unwrap_or(LeaseKey {
                job_id: JobId(0),
                shard_id: ShardId(0),
                attempt: Attempt(0),
            }),
            strategy,
            concurrency: assign.concurrency,
            units,
            fetch_timeout_ms: assign.fetch_timeout_ms,
            fetch_max_body_bytes: assign.fetch_max_body_bytes,
            fetch_policy: HostPolicy {
                allow: assign.allow_hosts,
                deny: assign.deny_hosts,
                deny_private: assign.deny_private,
            },
            exec: assign.exec_command.map(|c| ExecCommand {
                program: c.program,
                args: c.args,
                timeout_ms: c.timeout_ms,
            }),
            pacing: Pacing {
                auto: assign.auto_concurrency,
                per_host_connections: assign.per_host_connections,
                per_host_delay_ms: assign.per_host_delay_ms,
            },
        }
    }
}

impl From<ToWorker> for pb::ToWorkerMessage {
    fn from(message: ToWorker) -> Self {
        use pb::to_worker_message::Msg;
        let msg = match message {
            ToWorker::Registered {
                worker_id,
                heartbeat_interval_ms,
            } => Msg::Registered(pb::Registered {
                worker_id: worker_id.get(),
                heartbeat_interval_ms,
                protocol: PROTOCOL_REVISION,
            }),
            ToWorker::Assign(assignments) if assignments.len() == 1 => {
                Msg::Assign(pb::AssignShard::from(&assignments[0]))
            }
            ToWorker::Assign(assignments) => Msg::AssignMany(pb::AssignShards {
                shards: assignments.iter().map(pb::AssignShard::from).collect(),
            }),
            ToWorker::Cancel(lease, reason) => Msg::Cancel(pb::CancelShard {
                lease: Some(lease.into()),
                reason,
            }),
            ToWorker::Accepted(leases) if leases.len() == 1 => Msg::Accepted(pb::ShardAccepted {
                lease: Some(leases[0].into()),
            }),
            ToWorker::Accepted(leases) => Msg::AcceptedMany(pb::ShardsAccepted {
                leases: leases.into_iter().map(pb::LeaseKey::from).collect(),
            }),
        };
        pb::ToWorkerMessage { msg: Some(msg) }
    }
}

/// Decodes the strategy of an assignment.
///
/// # Errors
/// An unknown or unspecified strategy.
pub fn assignment_strategy(assign: &pb::AssignShard) -> Result<Strategy, SpecError> {
    strategy_from_i32(assign.strategy)
}

impl From<&pb::UnitResult> for Outcome {
    fn from(result: &pb::UnitResult) -> Self {
        Outcome {
            ok: result.ok,
            duration_s: sanitize_seconds(result.duration_s),
            value: join_u128(result.value_hi, result.value_lo),
            status: result.status,
            bytes: result.bytes,
            error: result.error.clone(),
            start_s: sanitize_seconds(result.start_s),
            lane: result.lane,
        }
    }
}

/// Encodes the outcome of the unit at position `unit` in its shard.
pub fn unit_result(unit: u32, outcome: &Outcome) -> pb::UnitResult {
    let (value_hi, value_lo) = split_u128(outcome.value);
    pb::UnitResult {
        unit,
        ok: outcome.ok,
        duration_s: outcome.duration_s,
        value_hi,
        value_lo,
        status: outcome.status,
        bytes: outcome.bytes,
        error: outcome.error.clone(),
        start_s: outcome.start_s,
        lane: outcome.lane,
    }
}

impl From<pb::ShardFinished> for ShardTiming {
    /// Worker input is untrusted: bad durations become 0, the error is cut to 4 KiB.
    fn from(finished: pb::ShardFinished) -> Self {
        ShardTiming {
            run_s: sanitize_seconds(finished.run_s),
            cpu_s: sanitize_seconds(finished.cpu_s),
            concurrency: finished.concurrency,
            error: truncate(finished.error, 4096),
            started_after_s: sanitize_seconds(finished.started_after_s),
            sent_after_s: sanitize_seconds(finished.sent_after_s),
            slot: finished.slot.min(1024),
        }
    }
}

impl From<pb::Register> for WorkerInfo {
    /// Worker input is untrusted: names are cut, slots kept within 1..=1024, the prefetch
    /// window within 0..=1024.
    fn from(register: pb::Register) -> Self {
        WorkerInfo {
            host: truncate(register.host, 255),
            pid: register.pid,
            cores: register.cores,
            slots: register.slots.clamp(1, 1024),
            prefetch: register.prefetch.min(1024),
            protocol: register.protocol,
            version: truncate(register.version, 64),
            exec: ExecPermission::from_wire(
                register.allow_exec,
                &register
                    .exec_programs
                    .into_iter()
                    .take(1024)
                    .map(|p| truncate(p, 4096))
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

/// Cuts untrusted text to at most `max` bytes on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::plan::Plan;
    use concur_core::policy::HostPolicy;
    use concur_core::{JobSpec, NumberSpec, Workload};
    use std::sync::Arc;

    #[test]
    fn an_assignment_carries_its_units_and_rules() {
        let spec = JobSpec {
            pacing: Default::default(),
            workload: Workload::SumSquares(NumberSpec::parse("10..14").unwrap()),
            strategy: Strategy::Rayon,
            concurrency: 3,
            shards: Some(2),
            max_retries: None,
            label: String::new(),
        };
        let plan = Plan::new(&spec.workload, 2).shard(1);
        let assignment = Assignment {
            lease: LeaseKey {
                job_id: JobId(1),
                shard_id: ShardId(1),
                attempt: Attempt(2),
            },
            spec: Arc::new(spec),
            plan,
            fetch_policy: Arc::new(HostPolicy {
                deny_private: true,
                ..HostPolicy::default()
            }),
        };
        let wire = pb::AssignShard::from(&assignment);
        assert_eq!(LeaseKey::from(wire.lease.unwrap()), assignment.lease);
        assert_eq!(wire.sum_squares.len(), 2);
        assert_eq!(wire.sum_squares[0].hi, 12);
        assert!(wire.deny_private);
        assert_eq!(assignment_strategy(&wire), Ok(Strategy::Rayon));
        // What the worker reads back is what the coordinator planned.
        let received = ReceivedAssignment::from(wire);
        assert_eq!(received.lease, assignment.lease);
        assert_eq!(received.units, assignment.units());
        assert_eq!(received.strategy, Ok(Strategy::Rayon));
        assert!(received.fetch_policy.deny_private);
    }

    #[test]
    fn untrusted_worker_input_is_bounded() {
        let info = WorkerInfo::from(pb::Register {
            host: "é".repeat(300),
            slots: 0,
            ..pb::Register::default()
        });
        assert!(info.host.len() <= 255);
        assert_eq!(info.slots, 1);
        let timing = ShardTiming::from(pb::ShardFinished {
            run_s: f64::NAN,
            cpu_s: -1.0,
            ..pb::ShardFinished::default()
        });
        assert_eq!((timing.run_s, timing.cpu_s), (0.0, 0.0));
    }
}
