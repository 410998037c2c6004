//! Cross-process tests: one binary, a module per area.

mod bounded;
mod cluster;
mod compare;
mod connect_errors;
mod dashboard;
mod demo;
mod deploy;
mod exec;
mod faults;
mod hostile;
mod local;
mod logs;
mod pacing;
mod reports;
mod restart;
mod retention;
mod scale;
mod security;
mod sites;
mod top;
mod validation;
