//! Why a job specification was refused. Every variant names the offending input.

use thiserror::Error;

/// A job specification that cannot run. Never retryable: the input itself must change.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// The strategy name is not one of the known strategies.
    #[error("unknown strategy '{0}' (expected one of: {list})", list = crate::Strategy::NAMES.join(", "))]
    UnknownStrategy(String),
    /// The workload name is not one of the known workloads.
    #[error("unknown workload '{0}' (expected exec, fetch or sum-squares)")]
    UnknownWorkload(String),
    /// A sum-squares SPEC that is neither `a..b` nor a comma-separated list.
    #[error(
        "malformed number spec '{spec}': {reason} (expected a range like 5000000..5000020 or a list like 10,20,30)"
    )]
    MalformedNumbers {
        /// The text as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A range with no elements, such as `5..5` or `9..3`.
    #[error("empty range {start}..{end}: the end must be greater than the start")]
    EmptyRange {
        /// Start of the range.
        start: u64,
        /// End of the range (exclusive).
        end: u64,
    },
    /// An empty list of numbers or URLs.
    #[error("no {0} given")]
    NoItems(&'static str),
    /// n so large that the sum of squares below it does not fit in u128.
    #[error("n = {0} is too large: the sum of squares below it overflows u128 (largest allowed n is {max})", max = crate::kernel::MAX_N)]
    Overflow(u64),
    /// Zero shards requested.
    #[error("shards must be at least 1")]
    ZeroShards,
    /// Pacing that does not fit the job (auto with a one-at-a-time strategy, say).
    #[error("{0}")]
    BadPacing(String),
    /// Zero concurrency requested.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// A value above a configured limit.
    #[error("{what} = {value} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted value.
        limit: u64,
    },
    /// A URL that cannot be fetched.
    #[error("bad URL '{url}': {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// An exec job that cannot run as given.
    #[error("bad exec command: {0}")]
    BadExec(String),
}

/// Result of validating user input.
pub type SpecResult<T> = Result<T, SpecError>;
