//! The system suite: tests that need root (network-namespace labs, a tmpfs to fill) or tools
//! from Debian's packages (sshd, shellcheck, systemd-analyze, python3-venv, chromium,
//! promtool). `.ci/run` installs the tools and runs it; `cargo test --workspace` leaves it
//! out and says so (see `system_suite.rs`).
//!
//!     cargo test -p concur-tests --features system --test system   # as root

mod browser;
mod full_disk;
mod ha;
mod lab;
mod ssh;
mod tools;
mod walkthrough;
