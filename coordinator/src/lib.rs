//! The concur coordinator: splits jobs into shards, leases them to attached workers, and
//! aggregates their results and timing.
//!
//! Layout:
//! - [`scheduler`]: the pure state machine (jobs, shards, leases, workers), tested without sockets.
//! - [`service`]: the gRPC adapter: shared state, client RPCs, the worker `Attach` stream.
//! - [`auth`]: client and worker tokens, checked in constant time on every RPC.
//! - [`listen`]: listening sockets with an accept queue deep enough for bursts.
//! - [`memory`]: giving freed memory back to the operating system.
//! - [`settings`]: command line, environment and TOML config file.
//! - [`store`]: durable state (SQLite, or in memory) behind one writer thread.
//! - [`server`]: `Coordinator::open` then `serve`, or `run(listener, config, shutdown)`, used
//!   by the binary, local mode and tests.

pub mod auth;
pub mod ha;
pub mod http;
pub mod listen;
pub mod memory;
pub mod metrics;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod settings;
mod state;
pub mod store;

pub use server::{Coordinator, CoordinatorConfig, run};
