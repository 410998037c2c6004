//! Checks of `deploy/`: shell scripts (bash -n, shellcheck, usage errors), the YAML of compose
//! and Kubernetes (parsed, cross-referenced), the Containerfile's structure, the systemd units
//! (`systemd-analyze verify` and offline security score, hardening keys), the example configs
//! against the binaries' flags, the README covering every file — and the ssh launcher for real:
//! workers started over ssh on network-namespace hosts running sshd, a job, a drain.

use concur_tests::deploy::{
    Launcher, Ran, Scratch, SshHosts, deploy_dir, require_tool, run, spawn_quiet,
};
use concur_tests::lab::Lab;
use concur_tests::{CliOutput, assert_sums_exact, bin, process_alive, run_cli};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use yaml_rust2::{Yaml, YamlLoader};

/// The worker's default drain timeout in seconds; every stop grace period must exceed it.
const DRAIN_TIMEOUT_S: u64 = 30;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list deploy dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// The long flags a binary's --help lists.
fn long_flags(binary: &str) -> BTreeSet<String> {
    let out = run({
        let mut c = Command::new(bin(binary));
        c.arg("--help");
        c
    });
    out.stdout
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect()
}

/// The seconds in "30s" or "45".
fn seconds(text: &str) -> u64 {
    text.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("not whole seconds: {text:?}"))
}

mod configs;
mod container;
mod docs;
mod scripts;
mod ssh;
mod systemd;
mod yaml;
