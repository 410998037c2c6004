//! Cross-process tests: one binary, a module per area.

mod cluster;
mod faults;
mod local;
mod sites;
mod validation;
