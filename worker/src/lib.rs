//! The concur worker: attaches to a coordinator, runs the shards it is given with the requested
//! strategy, and streams their results back.
//!
//! Layout:
//! - [`executor`]: strategy x workload, independent of gRPC.
//! - [`daemon`]: the attach loop: register, heartbeat, run shards, reconnect with backoff.
//! - [`system`]: host facts (name, cores) and process limits.

pub mod daemon;
pub mod executor;
pub mod system;

pub use daemon::{WorkerOpts, run};
