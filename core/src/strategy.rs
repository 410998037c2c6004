//! In-process strategies: how one worker process runs the items of one shard.

use crate::SpecError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a worker runs the items of a shard. Process-level parallelism is the number of worker
/// processes; these choose the parallelism inside one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One item after another on one thread.
    Sequential,
    /// A pool of N OS threads, one blocking HTTP client per thread.
    Threads,
    /// Tokio tasks, at most N in flight, one shared async client; CPU work moved off the loop.
    Async,
    /// A rayon work-stealing pool of N threads.
    Rayon,
    /// Teaching variant: blocking calls made inside async tasks, which serialises them.
    AsyncBlocking,
    /// Teaching variant: CPU work run directly on the (single-threaded) async runtime.
    AsyncCpu,
}

impl Strategy {
    /// True when a shard's units run at once, so an in-flight limit can be tuned
    /// (`--concurrency auto`): threads, rayon and async, not the one-at-a-time ones.
    pub fn can_tune(self) -> bool {
        matches!(self, Strategy::Threads | Strategy::Rayon | Strategy::Async)
    }

    /// Every strategy, in the order the CLI lists them.
    pub const ALL: [Strategy; 6] = [
        Strategy::Sequential,
        Strategy::Threads,
        Strategy::Async,
        Strategy::Rayon,
        Strategy::AsyncBlocking,
        Strategy::AsyncCpu,
    ];

    /// Every strategy's name, in the order of [`Strategy::ALL`].
    pub const NAMES: [&'static str; 6] = [
        "sequential",
        "threads",
        "async",
        "rayon",
        "async-blocking",
        "async-cpu",
    ];

    /// The name users type.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|s| *s == self).unwrap_or(0)]
    }

    /// Concurrency used when the user gives none. `cores` is the machine's core count.
    pub fn default_concurrency(self, cores: u32) -> u32 {
        match self {
            Strategy::Sequential => 1,
            Strategy::Threads => 8,
            Strategy::Rayon => cores.max(1),
            Strategy::Async | Strategy::AsyncBlocking | Strategy::AsyncCpu => 64,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|name| name.eq_ignore_ascii_case(s))
            .map(|i| Self::ALL[i])
            .ok_or_else(|| SpecError::UnknownStrategy(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(s.as_str().parse::<Strategy>().unwrap(), s);
        }
    }

    #[test]
    fn unknown_name_is_refused_with_the_list() {
        let err = "fibers".parse::<Strategy>().unwrap_err();
        assert!(err.to_string().contains("fibers"));
        assert!(err.to_string().contains("async-blocking"));
    }
}
