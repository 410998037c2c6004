//! Cross-process tests: one binary, a module per area.

mod cluster;
mod compare;
mod demo;
mod deploy;
mod faults;
mod hostile;
mod lab;
mod local;
mod security;
mod sites;
mod validation;
