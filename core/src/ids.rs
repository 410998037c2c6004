//! Identifiers of jobs, workers, shards and attempts, and the lease key that names one lease.
//!
//! Newtypes, so that a shard id cannot be passed where a job id is expected; they serialise as
//! bare numbers, which is what the wire and the JSON output carry.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl $name {
            /// The number as it travels on the wire.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// Identifies a job; assigned by the coordinator in submission order and never reused, not
    /// even across restarts.
    JobId(u64)
);
id_type!(
    /// Identifies an attached worker session; never reused, not even across coordinator
    /// restarts (ids are reserved durably in blocks).
    WorkerId(u64)
);
id_type!(
    /// Index of a shard within its job.
    ShardId(u32)
);
id_type!(
    /// The attempt a lease stands for: a shard's first lease is attempt 1, every re-lease
    /// (after a lost worker or a revoked lease) the next number.
    Attempt(u32)
);

impl Attempt {
    /// The attempt after this one.
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// Names one lease: a shard of a job at one attempt. Every result a worker sends echoes it, and
/// the coordinator accepts only the shard's current lease from its holder (fencing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseKey {
    /// The job.
    pub job_id: JobId,
    /// The shard within the job.
    pub shard_id: ShardId,
    /// The attempt this lease stands for.
    pub attempt: Attempt,
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} shard {} attempt {}",
            self.job_id, self.shard_id, self.attempt
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialise_as_bare_numbers() {
        assert_eq!(serde_json::to_string(&JobId(7)).unwrap(), "7");
        let lease = LeaseKey {
            job_id: JobId(1),
            shard_id: ShardId(2),
            attempt: Attempt(3),
        };
        assert_eq!(
            serde_json::to_string(&lease).unwrap(),
            r#"{"job_id":1,"shard_id":2,"attempt":3}"#
        );
        assert_eq!(lease.to_string(), "job 1 shard 2 attempt 3");
        assert_eq!(Attempt(1).next(), Attempt(2));
    }
}
