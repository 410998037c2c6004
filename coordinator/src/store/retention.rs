//! Retention: which finished jobs the store forgets, so that disk (and, in memory, RAM) stays
//! bounded over a long life. Unfinished jobs are never pruned.

use std::time::Duration;

/// Finished jobs kept at most, when not configured.
pub const DEFAULT_RETAIN_JOBS: u64 = 10_000;
/// Finished jobs kept at most this long after submission, when not configured.
pub const DEFAULT_RETAIN_FOR: Duration = Duration::from_secs(14 * 24 * 3600);

/// How many finished jobs to keep, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The most recent finished jobs kept; older ones are forgotten. 0 = no count limit.
    pub max_jobs: u64,
    /// Finished jobs submitted longer ago than this are forgotten. `None` = no age limit.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_jobs: DEFAULT_RETAIN_JOBS,
            max_age: Some(DEFAULT_RETAIN_FOR),
        }
    }
}

impl Retention {
    /// Finished jobs submitted before this Unix millisecond are forgotten (0 = none by age).
    pub fn cutoff_unix_ms(&self, now_unix_ms: u64) -> u64 {
        self.max_age.map_or(0, |age| {
            now_unix_ms.saturating_sub(age.as_millis().min(u128::from(u64::MAX)) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_follows_the_age_limit() {
        let keep_a_day = Retention {
            max_jobs: 0,
            max_age: Some(Duration::from_secs(86_400)),
        };
        assert_eq!(
            keep_a_day.cutoff_unix_ms(100_000_000),
            100_000_000 - 86_400_000
        );
        assert_eq!(keep_a_day.cutoff_unix_ms(5), 0);
        let forever = Retention {
            max_jobs: 0,
            max_age: None,
        };
        assert_eq!(forever.cutoff_unix_ms(u64::MAX), 0);
    }
}
