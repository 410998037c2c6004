//! Job specifications, strategies and job states on the wire.

use crate::pb;
use concur_core::exec::{DEFAULT_EXEC_TIMEOUT_MS, ExecItems, ExecSpec};
use concur_core::pacing::Pacing;
use concur_core::report::JobState;
use concur_core::workload::FetchSpec;
use concur_core::{JobSpec, NumberSpec, SpecError, Strategy, UrlList, Workload};

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
            Workload::Exec(exec) => {
                let (items, range) = match &exec.items {
                    ExecItems::Range { start, end } => (
                        Vec::new(),
                        Some(pb::NumberRange {
                            start: *start,
                            end: *end,
                        }),
                    ),
                    ExecItems::List(items) => (items.clone(), None),
                };
                pb::job_spec::Workload::Exec(pb::ExecSpec {
                    program: exec.program.clone(),
                    args: exec.args.clone(),
                    items,
                    range,
                    timeout_ms: exec.timeout_ms,
                })
            }
            Workload::Fetch(fetch) => pb::job_spec::Workload::Fetch(pb::FetchSpec {
                urls: Vec::new(),
                timeout_ms: fetch.timeout_ms,
                max_body_bytes: fetch.max_body_bytes,
                urls_text: fetch.urls.lines(0..fetch.urls.len()),
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
            auto_concurrency: spec.pacing.auto,
            per_host_connections: spec.pacing.per_host_connections,
            per_host_delay_ms: spec.pacing.per_host_delay_ms,
        }
    }
}

impl TryFrom<&pb::JobSpec> for JobSpec {
    type Error = SpecError;

    /// Decodes without validating limits; call [`JobSpec::validate`] afterwards.
    fn try_from(spec: &pb::JobSpec) -> Result<Self, Self::Error> {
        let workload = match &spec.workload {
            Some(pb::job_spec::Workload::Exec(exec)) => Workload::Exec(ExecSpec {
                program: exec.program.clone(),
                args: exec.args.clone(),
                items: match (&exec.range, exec.items.is_empty()) {
                    (Some(range), true) => ExecItems::Range {
                        start: range.start,
                        end: range.end,
                    },
                    (None, _) => ExecItems::List(exec.items.clone()),
                    (Some(_), false) => {
                        return Err(SpecError::BadExec("both items and a range given".into()));
                    }
                },
                timeout_ms: nonzero_or(exec.timeout_ms, DEFAULT_EXEC_TIMEOUT_MS),
            }),
            Some(pb::job_spec::Workload::Fetch(fetch)) => Workload::Fetch(FetchSpec {
                urls: fetch_urls(fetch)?,
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
            pacing: Pacing {
                auto: spec.auto_concurrency,
                per_host_connections: spec.per_host_connections,
                per_host_delay_ms: spec.per_host_delay_ms,
            },
        })
    }
}

fn nonzero_or(value: u64, default: u64) -> u64 {
    if value == 0 { default } else { value }
}

/// The URLs of a fetch spec, from either form; both at once is refused.
fn fetch_urls(fetch: &pb::FetchSpec) -> Result<UrlList, SpecError> {
    if !fetch.urls.is_empty() && !fetch.urls_text.is_empty() {
        return Err(SpecError::BadUrl {
            url: String::new(),
            reason: "a fetch spec gives urls and urls_text; send one of them".into(),
        });
    }
    if fetch.urls.is_empty() {
        let mut urls = UrlList::new();
        urls.extend_from_lines(&fetch.urls_text);
        Ok(urls)
    } else {
        Ok(fetch.urls.iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_spec_round_trips() {
        let spec = JobSpec {
            pacing: Default::default(),
            workload: Workload::SumSquares(NumberSpec::Range { start: 3, end: 9 }),
            strategy: Strategy::AsyncCpu,
            concurrency: 5,
            shards: Some(4),
            max_retries: Some(2),
            label: "x".into(),
        };
        let wire = pb::JobSpec::from(&spec);
        assert_eq!(JobSpec::try_from(&wire).unwrap(), spec);
        let fetch = JobSpec {
            workload: Workload::Fetch(FetchSpec::new(
                ["http://a/1", "http://b/2"].into_iter().collect(),
            )),
            ..spec
        };
        let wire = pb::JobSpec::from(&fetch);
        assert_eq!(JobSpec::try_from(&wire).unwrap(), fetch);
    }

    #[test]
    fn both_url_forms_at_once_are_refused() {
        let wire = pb::JobSpec {
            workload: Some(pb::job_spec::Workload::Fetch(pb::FetchSpec {
                urls: vec!["http://a/".into()],
                urls_text: "http://b/".into(),
                ..pb::FetchSpec::default()
            })),
            strategy: pb::Strategy::Async as i32,
            ..pb::JobSpec::default()
        };
        assert!(JobSpec::try_from(&wire).is_err());
    }

    #[test]
    fn garbage_decodes_to_errors_not_panics() {
        let wire = pb::JobSpec {
            strategy: 99,
            ..pb::JobSpec::default()
        };
        assert!(JobSpec::try_from(&wire).is_err());
    }
}
