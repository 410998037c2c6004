//! The in-process tier: a coordinator (`Coordinator::open` + `serve`) and workers
//! (`concur_worker::run`) on `127.0.0.1:0` in one tokio runtime, driven through the gRPC API.
//! Fast end-to-end checks that need no binaries; what needs real processes (signals, kill -9,
//! namespaces) stays in the cross-process suite.

mod harness;

mod jobs;
mod reflection;
mod restart;
