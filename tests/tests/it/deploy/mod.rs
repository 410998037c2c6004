//! Checks of `deploy/`: `concur-cli cluster` through a stand-in for ssh, shell scripts (bash -n, shellcheck, usage errors), the YAML of compose
//! and Kubernetes (parsed, cross-referenced), the Containerfile's structure, the systemd units
//! (hardening keys), the example configs against the binaries' flags, the README covering every
//! file. What needs shellcheck, systemd-analyze, sshd or root is in the system suite
//! (`tests/system`).

use concur_tests::bin;
use concur_tests::deploy::{
    Launcher, Ran, Scratch, deploy_dir, fake_ssh, files_with, long_flags, read, run, seconds,
    spawn_quiet,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use yaml_rust2::{Yaml, YamlLoader};

/// The worker's default drain timeout in seconds; every stop grace period must exceed it.
const DRAIN_TIMEOUT_S: u64 = 30;

mod cluster;
mod configs;
mod container;
mod docs;
mod ha;
mod scripts;
mod systemd;
mod yaml;
