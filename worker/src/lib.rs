//! The concur worker: attaches to a coordinator, runs the shards it is given with the requested
//! strategy, and streams their results back.
//!
//! Layout:
//! - [`executor`]: strategy x workload, independent of gRPC.
//! - [`settings`]: command line, environment and TOML config file.
//! - [`connect`]: the channel to the coordinator, with TLS and the worker token.
//! - [`daemon`]: the attach loop: one session after another, reconnecting with backoff.
//! - `session`: one attach stream: register, take leases, heartbeat, drain.
//! - `slots`: one thread per slot running queued shards; `reporter`: their results, batched.
//! - [`metrics`]: Prometheus metrics on `--metrics-listen`.
//! - [`system`]: host facts (name, cores) and process limits.

pub mod connect;
pub mod daemon;
pub mod executor;
pub mod metrics;
mod reporter;
mod session;
pub mod settings;
mod slots;
pub mod system;

pub use daemon::run;
pub use settings::{WorkerOpts, WorkerSettings};
