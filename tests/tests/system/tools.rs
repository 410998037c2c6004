//! Checks that need tools from Debian's packages: shellcheck on the scripts, and
//! `systemd-analyze` verifying the units and scoring their hardening; the Python client of
//! docs/python.md (python3-venv, grpcio from PyPI).

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

/// Runs `command`, failing the test with its output unless it exits 0.
fn run_ok(what: &str, command: Command) -> String {
    let ran = run(command);
    assert_eq!(ran.code, 0, "{what}: {}", ran.text());
    ran.stdout
}

#[test]
fn python_client_runs_a_job_and_discovers_services_by_reflection() {
    // docs/python.md, step by step: stubs generated from the proto with grpcio-tools (from
    // PyPI), the documented scripts against a real coordinator and worker.
    let python = require_tool("python3", "python3");
    let scratch = Scratch::new("python-client");
    let venv = scratch.join("venv");
    run_ok("python3 -m venv (Debian: python3-venv)", {
        let mut c = Command::new(&python);
        c.args(["-m", "venv"]).arg(&venv);
        c
    });
    let venv_python = venv.join("bin/python");
    run_ok("pip install", {
        let mut c = Command::new(&venv_python);
        c.args([
            "-m",
            "pip",
            "install",
            "-q",
            "grpcio",
            "grpcio-tools",
            "grpcio-reflection",
        ]);
        c
    });
    let repo = deploy_dir().parent().expect("repository").to_path_buf();
    run_ok("grpc_tools.protoc", {
        let mut c = Command::new(&venv_python);
        c.args(["-m", "grpc_tools.protoc", "-I"])
            .arg(repo.join("proto"))
            .arg(format!("--python_out={}", scratch.display()))
            .arg(format!("--grpc_python_out={}", scratch.display()))
            .arg(repo.join("proto/concur.proto"));
        c
    });
    let (_coordinator, url) = concur_tests::start_coordinator(&["--in-memory"]);
    let _worker = concur_tests::start_worker(&url, 1);
    concur_tests::wait_for_workers(&url, 1);
    let target = url.trim_start_matches("http://");
    let script = |name: &str| {
        let mut c = Command::new(&venv_python);
        c.arg(repo.join("docs/python").join(name))
            .arg(target)
            .env("PYTHONPATH", &*scratch);
        run_ok(name, c)
    };
    let services = script("discover.py");
    for service in ["concur.v1.JobService", "concur.v1.WorkerService"] {
        assert!(services.lines().any(|l| l == service), "{services}");
    }
    let job = script("client.py");
    assert!(job.contains("JOB_STATE_SUCCEEDED ok 5"), "{job}");
    // sum of i*i for i in 0..1000 = 999 * 1000 * 1999 / 6
    assert!(job.lines().any(|l| l == "1000 True 332833500"), "{job}");
    assert!(
        job.lines().any(|l| l.starts_with("progress 5 of 5")),
        "{job}"
    );
}
