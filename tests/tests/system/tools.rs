//! Checks that need tools from Debian's packages: shellcheck on the scripts, and
//! `systemd-analyze` verifying the units and scoring their hardening.

use concur_tests::bin;
use concur_tests::deploy::{Scratch, deploy_dir, files_with, read, require_tool, run};
use std::path::PathBuf;
use std::process::Command;

const UNITS: [&str; 2] = ["concur-coordinator.service", "concur-worker@.service"];

#[test]
fn shell_scripts_parse_and_pass_shellcheck() {
    let scripts = files_with(&deploy_dir(), ".sh");
    assert!(scripts.len() >= 3, "lab.sh, ssh-workers.sh, gen-secrets.sh");
    let shellcheck = require_tool("shellcheck", "shellcheck");
    for script in &scripts {
        let text = read(script);
        assert!(
            text.starts_with("#!/usr/bin/env bash\n"),
            "{}",
            script.display()
        );
        assert!(
            text.contains("\nset -euo pipefail\n"),
            "{} runs in strict mode",
            script.display()
        );
        let ran = run({
            let mut c = Command::new("bash");
            c.arg("-n").arg(script);
            c
        });
        assert_eq!(ran.code, 0, "bash -n {}: {}", script.display(), ran.text());
        let ran = run({
            let mut c = Command::new(&shellcheck);
            c.arg(script);
            c
        });
        assert_eq!(
            ran.code,
            0,
            "shellcheck {}:\n{}",
            script.display(),
            ran.text()
        );
    }
}

/// Copies of the units whose ExecStart names the binaries built here (verify checks they exist).
fn units_for_verify() -> (Scratch, Vec<PathBuf>) {
    let scratch = Scratch::new("units");
    let bin_dir = bin("concur-worker").parent().unwrap().to_path_buf();
    let mut paths = Vec::new();
    for unit in UNITS {
        let text = read(&deploy_dir().join("systemd").join(unit))
            .replace("/usr/local/bin/", &format!("{}/", bin_dir.display()));
        // A template is verified through an instance.
        let name = unit.replace("@.", "@1.");
        std::fs::write(scratch.join(unit), &text).unwrap();
        std::fs::write(scratch.join(&name), &text).unwrap();
        paths.push(scratch.join(name));
    }
    (scratch, paths)
}

#[test]
fn systemd_analyze_verifies_the_units_and_scores_them_ok() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let (_scratch, units) = units_for_verify();
    let ran = run({
        let mut c = Command::new(&analyze);
        c.arg("verify").args(&units);
        c
    });
    assert_eq!(ran.code, 0, "systemd-analyze verify: {}", ran.text());
    assert!(
        ran.stdout.trim().is_empty() && ran.stderr.trim().is_empty(),
        "no warnings expected: {}",
        ran.text()
    );
    for unit in &units {
        let ran = run({
            let mut c = Command::new(&analyze);
            c.args(["security", "--offline=yes", "--no-pager"])
                .arg(unit);
            c
        });
        let score: f64 = ran
            .stdout
            .lines()
            .find_map(|l| l.split_once("Overall exposure level for "))
            .and_then(|(_, rest)| rest.split_once(": "))
            .and_then(|(_, v)| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no exposure score: {}", ran.text()));
        // systemd calls < 2.0 "OK" (the scale runs to 10 "UNSAFE"; a bare unit scores 9.6).
        assert!(score < 2.0, "{}: exposure {score}", unit.display());
    }
}
