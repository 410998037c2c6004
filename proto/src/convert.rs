//! Conversions at the wire boundary. Decoding untrusted messages never panics: anything that
//! does not map onto the domain becomes a [`SpecError`].

use crate::pb;
use concur_core::report::{ItemRow, JobHeader, JobReport, JobState, ShardRow};
use concur_core::workload::FetchSpec;
use concur_core::{JobSpec, NumberSpec, Outcome, SpecError, Strategy, Workload};

impl From<Strategy> for pb::Strategy {
    fn from(strategy: Strategy) -> Self {
        match strategy {
            Strategy::Sequential => pb::Strategy::Sequential,
            Strategy::Threads => pb::Strategy::Threads,
            Strategy::Async => pb::Strategy::Async,
            Strategy::Rayon => pb::Strategy::Rayon,
            Strategy::AsyncBlocking => pb::Strategy::AsyncBlocking,
            Strategy::AsyncCpu => pb::Strategy::AsyncCpu,
        }
    }
}

impl TryFrom<pb::Strategy> for Strategy {
    type Error = SpecError;

    fn try_from(strategy: pb::Strategy) -> Result<Self, Self::Error> {
        Ok(match strategy {
            pb::Strategy::Sequential => Strategy::Sequential,
            pb::Strategy::Threads => Strategy::Threads,
            pb::Strategy::Async => Strategy::Async,
            pb::Strategy::Rayon => Strategy::Rayon,
            pb::Strategy::AsyncBlocking => Strategy::AsyncBlocking,
            pb::Strategy::AsyncCpu => Strategy::AsyncCpu,
            pb::Strategy::Unspecified => {
                return Err(SpecError::UnknownStrategy("unspecified".into()));
            }
        })
    }
}

/// Decodes a strategy from its raw enum number.
///
/// # Errors
/// An unknown or unspecified strategy.
pub fn strategy_from_i32(raw: i32) -> Result<Strategy, SpecError> {
    pb::Strategy::try_from(raw)
        .map_err(|_| SpecError::UnknownStrategy(format!("#{raw}")))
        .and_then(Strategy::try_from)
}

impl From<JobState> for pb::JobState {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Pending => pb::JobState::Pending,
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
            JobState::Cancelled => pb::JobState::Cancelled,
        }
    }
}

/// Decodes a job state; unknown numbers read as pending.
pub fn job_state_from_i32(raw: i32) -> JobState {
    match pb::JobState::try_from(raw).unwrap_or(pb::JobState::Unspecified) {
        pb::JobState::Running => JobState::Running,
        pb::JobState::Succeeded => JobState::Succeeded,
        pb::JobState::Failed => JobState::Failed,
        pb::JobState::Cancelled => JobState::Cancelled,
        pb::JobState::Pending | pb::JobState::Unspecified => JobState::Pending,
    }
}

impl From<&JobSpec> for pb::JobSpec {
    fn from(spec: &JobSpec) -> Self {
        let workload = match &spec.workload {
            Workload::Fetch(fetch) => pb::job_spec::Workload::Fetch(pb::FetchSpec {
                urls: fetch.urls.clone(),
                timeout_ms: fetch.timeout_ms,
                max_body_bytes: fetch.max_body_bytes,
            }),
            Workload::SumSquares(numbers) => {
                let numbers = match numbers {
                    NumberSpec::Range { start, end } => {
                        pb::sum_squares_spec::Numbers::Range(pb::NumberRange {
                            start: *start,
                            end: *end,
                        })
                    }
                    NumberSpec::List(values) => {
                        pb::sum_squares_spec::Numbers::List(pb::NumberList {
                            values: values.clone(),
                        })
                    }
                };
                pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
                    numbers: Some(numbers),
                })
            }
        };
        pb::JobSpec {
            workload: Some(workload),
            strategy: pb::Strategy::from(spec.strategy).into(),
            concurrency: spec.concurrency,
            shards: spec.shards,
            max_retries: spec.max_retries,
            label: spec.label.clone(),
        }
    }
}

impl TryFrom<&pb::JobSpec> for JobSpec {
    type Error = SpecError;

    /// Decodes without validating limits; call [`JobSpec::validate`] afterwards.
    fn try_from(spec: &pb::JobSpec) -> Result<Self, Self::Error> {
        let workload = match &spec.workload {
            Some(pb::job_spec::Workload::Fetch(fetch)) => Workload::Fetch(FetchSpec {
                urls: fetch.urls.clone(),
                timeout_ms: nonzero_or(
                    fetch.timeout_ms,
                    concur_core::workload::DEFAULT_FETCH_TIMEOUT_MS,
                ),
                max_body_bytes: nonzero_or(
                    fetch.max_body_bytes,
                    concur_core::workload::DEFAULT_MAX_BODY_BYTES,
                ),
            }),
            Some(pb::job_spec::Workload::SumSquares(sum)) => match &sum.numbers {
                Some(pb::sum_squares_spec::Numbers::Range(range)) => {
                    Workload::SumSquares(NumberSpec::Range {
                        start: range.start,
                        end: range.end,
                    })
                }
                Some(pb::sum_squares_spec::Numbers::List(list)) => {
                    Workload::SumSquares(NumberSpec::List(list.values.clone()))
                }
                None => return Err(SpecError::NoItems("numbers")),
            },
            None => return Err(SpecError::UnknownWorkload("none".into())),
        };
        Ok(JobSpec {
            workload,
            strategy: strategy_from_i32(spec.strategy)?,
            concurrency: spec.concurrency,
            shards: spec.shards,
            max_retries: spec.max_retries,
            label: spec.label.clone(),
        })
    }
}

fn nonzero_or(value: u64, default: u64) -> u64 {
    if value == 0 { default } else { value }
}

/// Splits a u128 into (high, low) u64 halves for the wire.
pub fn split_u128(value: u128) -> (u64, u64) {
    ((value >> 64) as u64, value as u64)
}

/// Joins (high, low) u64 halves into a u128.
pub fn join_u128(hi: u64, lo: u64) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
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
    }
}

/// Durations from the wire are untrusted: NaN, infinite or negative become 0.
pub fn sanitize_seconds(seconds: f64) -> f64 {
    if seconds.is_finite() && seconds > 0.0 {
        seconds
    } else {
        0.0
    }
}

/// Builds the domain report (with every derived figure) from a `GetJob` answer.
pub fn job_report(report: &pb::JobReport) -> JobReport {
    let spec = report.spec.clone().unwrap_or_default();
    let is_fetch = matches!(spec.workload, Some(pb::job_spec::Workload::Fetch(_)));
    let state = job_state_from_i32(report.state);
    let header = JobHeader {
        job_id: report.job_id,
        state,
        workload: if is_fetch { "fetch" } else { "sum-squares" }.to_string(),
        strategy: strategy_from_i32(spec.strategy)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        concurrency: spec.concurrency,
        label: report.label.clone(),
        wall_s: report.wall_s,
        stale_results_discarded: report.stale_results_discarded,
    };
    let shards = report
        .shards
        .iter()
        .map(|s| ShardRow {
            shard_id: s.shard_id,
            worker_id: s.worker_id,
            host: s.host.clone(),
            pid: s.pid,
            attempt: s.attempt,
            items: s.items,
            run_s: s.run_s,
            cpu_s: s.cpu_s,
            queue_s: s.queue_s,
            round_trip_s: s.round_trip_s,
            item_time_s: s.item_time_s,
            concurrency: s.concurrency,
            done: s.done,
            error: (!s.error.is_empty()).then(|| s.error.clone()),
            ..ShardRow::default()
        })
        .collect();
    let items = report
        .items
        .iter()
        .map(|item| {
            let error = if !item.reported {
                Some(format!("not completed (job {state})"))
            } else if !item.ok {
                Some(item.error.clone())
            } else {
                None
            };
            ItemRow {
                input: item.input.clone(),
                ok: item.reported && item.ok,
                duration_s: item.duration_s,
                value: (!is_fetch && item.reported && item.ok)
                    .then(|| join_u128(item.value_hi, item.value_lo).to_string()),
                status: is_fetch.then_some(item.status),
                bytes: is_fetch.then_some(item.bytes),
                error,
            }
        })
        .collect();
    JobReport::new(header, shards, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u128_round_trips_through_halves() {
        for value in [
            0u128,
            1,
            u128::from(u64::MAX) + 1,
            u128::MAX,
            41_666_679_166_665_000_000,
        ] {
            let (hi, lo) = split_u128(value);
            assert_eq!(join_u128(hi, lo), value);
        }
    }

    #[test]
    fn job_spec_round_trips() {
        let spec = JobSpec {
            workload: Workload::SumSquares(NumberSpec::Range { start: 3, end: 9 }),
            strategy: Strategy::AsyncCpu,
            concurrency: 5,
            shards: Some(4),
            max_retries: Some(2),
            label: "x".into(),
        };
        let wire = pb::JobSpec::from(&spec);
        assert_eq!(JobSpec::try_from(&wire).unwrap(), spec);
    }

    #[test]
    fn garbage_decodes_to_errors_not_panics() {
        let wire = pb::JobSpec {
            strategy: 99,
            ..pb::JobSpec::default()
        };
        assert!(JobSpec::try_from(&wire).is_err());
        assert_eq!(sanitize_seconds(f64::NAN), 0.0);
        assert_eq!(sanitize_seconds(-1.0), 0.0);
    }
}
