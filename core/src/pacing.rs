//! How a worker paces a job's units beyond a fixed concurrency: an in-flight limit that tunes
//! itself (`--concurrency auto`) and politeness towards each fetched host.

use crate::{SpecError, SpecResult, Strategy};
use serde::{Deserialize, Serialize};

/// The ceiling of an auto-tuned in-flight limit when the user names none (`auto` alone).
pub const DEFAULT_AUTO_CEILING: u32 = 256;

/// Pacing of a job's units. The default paces nothing: the fixed concurrency alone applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pacing {
    /// Each worker adjusts its in-flight limit from measured latency and throughput; the job's
    /// `concurrency` is then the ceiling of that limit.
    #[serde(default)]
    pub auto: bool,
    /// Fetch: requests in flight to one host, per worker, at most (0 = no cap).
    #[serde(default)]
    pub per_host_connections: u32,
    /// Fetch: milliseconds between the starts of two requests to one host, per worker, at
    /// least (0 = none).
    #[serde(default)]
    pub per_host_delay_ms: u64,
}

impl Pacing {
    /// True when requests to a host are capped or spaced.
    pub fn is_polite(&self) -> bool {
        self.per_host_connections > 0 || self.per_host_delay_ms > 0
    }

    /// Checks the pacing fits the job's strategy and workload.
    ///
    /// # Errors
    /// Auto with a strategy that runs one unit at a time, or host politeness on a job that
    /// fetches nothing.
    pub fn validate(&self, strategy: Strategy, fetches: bool) -> SpecResult<()> {
        if self.auto && !strategy.can_tune() {
            return Err(SpecError::BadPacing(format!(
                "--concurrency auto needs a strategy that runs units at once (threads, rayon or async), not {strategy}"
            )));
        }
        if self.is_polite() && !fetches {
            return Err(SpecError::BadPacing(
                "per-host connection caps and delays apply to fetch jobs only".into(),
            ));
        }
        Ok(())
    }
}

/// How listings show a job's recorded concurrency: `x8`, or `auto` for 0 (a tuned job).
pub fn describe_recorded(concurrency: u32) -> String {
    if concurrency == 0 {
        "auto".into()
    } else {
        format!("x{concurrency}")
    }
}

/// A `--concurrency` value: a fixed number, or `auto` with an optional ceiling (`auto:64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyArg {
    /// Exactly this many threads or tasks.
    Fixed(u32),
    /// Tuned by each worker, at most this many (the default ceiling when `None`).
    Auto(Option<u32>),
}

impl ConcurrencyArg {
    /// True for `auto`.
    pub fn is_auto(self) -> bool {
        matches!(self, ConcurrencyArg::Auto(_))
    }

    /// The fixed value, or an auto ceiling (its default when not given).
    pub fn value(self) -> u32 {
        match self {
            ConcurrencyArg::Fixed(n) => n,
            ConcurrencyArg::Auto(ceiling) => ceiling.unwrap_or(DEFAULT_AUTO_CEILING),
        }
    }
}

impl std::fmt::Display for ConcurrencyArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConcurrencyArg::Fixed(n) => write!(f, "{n}"),
            ConcurrencyArg::Auto(None) => f.write_str("auto"),
            ConcurrencyArg::Auto(Some(ceiling)) => write!(f, "auto:{ceiling}"),
        }
    }
}

impl std::str::FromStr for ConcurrencyArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let positive = |digits: &str| match digits.parse::<u32>() {
            Ok(0) => Err("concurrency must be at least 1".to_string()),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "'{text}' is not a concurrency: give a whole number, auto, or auto:MAX (e.g. auto:64)"
            )),
        };
        match text.strip_prefix("auto") {
            Some("") => Ok(ConcurrencyArg::Auto(None)),
            Some(rest) => match rest.strip_prefix(':') {
                Some(ceiling) => positive(ceiling).map(|c| ConcurrencyArg::Auto(Some(c))),
                None => positive(text).map(ConcurrencyArg::Fixed),
            },
            None => positive(text).map(ConcurrencyArg::Fixed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_values_parse() {
        assert_eq!("8".parse(), Ok(ConcurrencyArg::Fixed(8)));
        assert_eq!("auto".parse(), Ok(ConcurrencyArg::Auto(None)));
        assert_eq!("auto:64".parse(), Ok(ConcurrencyArg::Auto(Some(64))));
        assert_eq!(ConcurrencyArg::Auto(None).value(), DEFAULT_AUTO_CEILING);
        assert_eq!(ConcurrencyArg::Auto(Some(64)).to_string(), "auto:64");
        for bad in ["0", "auto:0", "autox", "auto:", "many", "-1"] {
            assert!(bad.parse::<ConcurrencyArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_needs_a_concurrent_strategy_and_politeness_a_fetch_job() {
        let auto = Pacing {
            auto: true,
            ..Pacing::default()
        };
        assert!(auto.validate(Strategy::Async, true).is_ok());
        assert!(auto.validate(Strategy::Threads, false).is_ok());
        let refused = auto.validate(Strategy::Sequential, true).unwrap_err();
        assert!(refused.to_string().contains("sequential"), "{refused}");
        let polite = Pacing {
            per_host_connections: 2,
            ..Pacing::default()
        };
        assert!(polite.validate(Strategy::Sequential, true).is_ok());
        assert!(polite.validate(Strategy::Threads, false).is_err());
    }
}
