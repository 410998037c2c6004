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

// ---------------------------------------------------------------------------------------------
// Shell scripts

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

fn launcher_alone(args: &[&str]) -> Ran {
    let mut c = Command::new("bash");
    c.arg(deploy_dir().join("ssh-workers.sh"))
        .args(args)
        .env_remove("CONCUR_COORDINATOR")
        .env_remove("CONCUR_WORKER_TOKEN");
    run(c)
}

#[test]
fn ssh_launcher_rejects_bad_usage_with_exit_code_2() {
    let cases: [(&[&str], &str); 7] = [
        (&[], "Usage"),
        (&["frob", "h1"], "unknown command 'frob'"),
        (&["start"], "name at least one host"),
        (&["start", "h1"], "give --coordinator"),
        (
            &["-c", "http://x:1", "--slots", "0", "start", "h1"],
            "--slots",
        ),
        (&["stop", "-oops", "h1"], "unknown option -oops"),
        (
            &[
                "-c",
                "http://x:1",
                "--token-file",
                "/nonexistent",
                "start",
                "h1",
            ],
            "cannot read token file",
        ),
    ];
    for (args, message) in cases {
        let ran = launcher_alone(args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.text());
        assert!(
            ran.stderr.contains(message) || ran.stderr.contains(&message.to_lowercase()),
            "{args:?} should say {message:?}: {}",
            ran.text()
        );
    }
    let help = launcher_alone(&["--help"]);
    for command in ["start", "stop", "status", "--coordinator", "--token-file"] {
        assert!(help.stderr.contains(command), "help names {command}");
    }
}

#[test]
fn gen_secrets_writes_two_fresh_tokens_and_keeps_them() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("gen-secrets");
    let dir = scratch.join("secrets");
    let generate = |force: bool| {
        let mut c = Command::new("bash");
        c.arg(deploy_dir().join("gen-secrets.sh"));
        if force {
            c.arg("--force");
        }
        run({
            c.arg(&dir);
            c
        })
    };
    let ran = generate(false);
    assert_eq!(ran.code, 0, "{}", ran.text());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "only its owner may enter the directory");
    let client = read(&dir.join("client-token"));
    let worker = read(&dir.join("worker-token"));
    for token in [&client, &worker] {
        assert_eq!(token.len(), 64, "{token:?}");
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token:?}");
    }
    assert_ne!(client, worker);
    assert_eq!(generate(false).code, 0);
    assert_eq!(
        read(&dir.join("client-token")),
        client,
        "kept without --force"
    );
    assert_eq!(generate(true).code, 0);
    assert_ne!(
        read(&dir.join("client-token")),
        client,
        "replaced with --force"
    );
    assert_eq!(generate(false).code, 0);
}

// ---------------------------------------------------------------------------------------------
// YAML: compose and Kubernetes

fn yaml_docs(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn s(y: &Yaml) -> &str {
    y.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {y:?}"))
}

/// The seconds in "30s" or "45".
fn seconds(text: &str) -> u64 {
    text.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("not whole seconds: {text:?}"))
}

/// The value of `--name=VALUE` among `args`.
fn flag<'a>(args: &'a [Yaml], name: &str) -> Option<&'a str> {
    args.iter()
        .filter_map(Yaml::as_str)
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
}

#[test]
fn compose_file_has_a_coordinator_and_a_scalable_worker() {
    let docs = yaml_docs(&deploy_dir().join("compose.yaml"));
    assert_eq!(docs.len(), 1);
    let compose = &docs[0];
    let services = &compose["services"];
    let coordinator = &services["coordinator"];
    let worker = &services["worker"];
    assert!(!coordinator.is_badvalue() && !worker.is_badvalue());
    for service in [coordinator, worker] {
        // Merged from the x-image anchor: both build the same image from the Containerfile.
        let build = if service["build"].is_badvalue() {
            &compose["x-image"]["build"]
        } else {
            &service["build"]
        };
        let dockerfile = deploy_dir().join("..").join(s(&build["dockerfile"]));
        assert!(dockerfile.is_file(), "{}", dockerfile.display());
    }
    let c_args = coordinator["command"]
        .as_vec()
        .expect("coordinator command");
    assert_eq!(s(&c_args[0]), "concur-coordinator");
    let w_args = worker["command"].as_vec().expect("worker command");
    assert_eq!(s(&w_args[0]), "concur-worker");
    // Tokens come from compose secrets, declared at the top level with files.
    for (args, flag_name, secret) in [
        (c_args, "--token-file", "client_token"),
        (c_args, "--worker-token-file", "worker_token"),
        (w_args, "--token-file", "worker_token"),
    ] {
        assert_eq!(
            flag(args, flag_name),
            Some(format!("/run/secrets/{secret}").as_str())
        );
        assert!(
            !compose["secrets"][secret]["file"].is_badvalue(),
            "secret {secret}"
        );
    }
    assert_eq!(
        flag(w_args, "--coordinator"),
        Some("http://coordinator:7070")
    );
    // Scalable: no fixed name or published port on workers; drains fit the grace period.
    assert!(worker["container_name"].is_badvalue() && worker["ports"].is_badvalue());
    let drain = seconds(flag(w_args, "--drain-timeout").expect("--drain-timeout"));
    assert!(seconds(s(&worker["stop_grace_period"])) > drain);
    assert_eq!(s(&worker["stop_signal"]), "SIGTERM");
    assert!(!worker["deploy"]["replicas"].is_badvalue());
    // The coordinator's state is a named volume; its port is published on loopback only.
    let volumes = coordinator["volumes"].as_vec().expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|v| s(v).ends_with(":/var/lib/concur") && !s(v).starts_with('/'))
    );
    for port in coordinator["ports"].as_vec().expect("ports") {
        assert!(s(port).starts_with("127.0.0.1:"), "{port:?}");
    }
}

/// Every Kubernetes document in deploy/k8s, with the file it came from.
fn k8s_docs() -> Vec<(PathBuf, Yaml)> {
    let files = files_with(&deploy_dir().join("k8s"), ".yaml");
    assert!(files.len() >= 4, "{files:?}");
    files
        .into_iter()
        .flat_map(|f| yaml_docs(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn find<'a>(docs: &'a [(PathBuf, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn kubernetes_manifests_are_complete_and_consistent() {
    let docs = k8s_docs();
    for (file, doc) in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].as_str().is_some(), "{}: {key}", file.display());
        }
        assert!(
            doc["metadata"]["name"].as_str().is_some(),
            "{}",
            file.display()
        );
        if doc["kind"].as_str() != Some("Namespace") {
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some("concur"),
                "{}",
                file.display()
            );
        }
    }
    find(&docs, "Namespace", "concur");
    // The Secret ships empty tokens: applied unedited, the coordinator refuses to start.
    let secret = find(&docs, "Secret", "concur-tokens");
    for key in ["client-token", "worker-token"] {
        assert_eq!(secret["stringData"][key].as_str(), Some(""), "{key}");
    }
    let pvc = find(&docs, "PersistentVolumeClaim", "concur-coordinator-state");
    assert!(
        pvc["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .is_some()
    );

    let coordinator = find(&docs, "Deployment", "concur-coordinator");
    assert_eq!(coordinator["spec"]["replicas"].as_i64(), Some(1));
    assert_eq!(
        coordinator["spec"]["strategy"]["type"].as_str(),
        Some("Recreate")
    );
    let pod = &coordinator["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let args = container["args"].as_vec().expect("coordinator args");
    assert_eq!(s(&args[0]), "concur-coordinator");
    let state_dir = flag(args, "--state-dir").expect("--state-dir");
    let mount = |name: &str| {
        container["volumeMounts"]
            .as_vec()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .map(|m| s(&m["mountPath"]).to_string())
    };
    assert_eq!(mount("state").as_deref(), Some(state_dir));
    let volume = |name: &str| -> Yaml {
        pod["spec"]["volumes"]
            .as_vec()
            .expect("volumes")
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .cloned()
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    assert_eq!(
        volume("state")["persistentVolumeClaim"]["claimName"].as_str(),
        Some("concur-coordinator-state")
    );
    assert_eq!(
        volume("tokens")["secret"]["secretName"].as_str(),
        Some("concur-tokens")
    );
    let tokens = mount("tokens").expect("tokens mount");
    assert_eq!(
        flag(args, "--token-file"),
        Some(format!("{tokens}/client-token").as_str())
    );
    assert_eq!(
        flag(args, "--worker-token-file"),
        Some(format!("{tokens}/worker-token").as_str())
    );
    // gRPC health probes on the port it listens on, which the Service targets.
    let port = container["ports"][0]["containerPort"]
        .as_i64()
        .expect("port");
    assert_eq!(
        flag(args, "--listen"),
        Some(format!("0.0.0.0:{port}").as_str())
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["grpc"]["port"].as_i64(),
            Some(port),
            "{probe}"
        );
    }
    let service = find(&docs, "Service", "concur-coordinator");
    let labels = &pod["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_hash().expect("selector") {
        assert_eq!(
            &labels[s(key)],
            value,
            "Service selects the coordinator pod"
        );
    }
    assert_eq!(service["spec"]["ports"][0]["port"].as_i64(), Some(port));

    let worker = find(&docs, "Deployment", "concur-worker");
    assert!(
        worker["spec"]["replicas"].as_i64() >= Some(1),
        "replicas is the knob"
    );
    let wpod = &worker["spec"]["template"]["spec"];
    let wargs = wpod["containers"][0]["args"].as_vec().expect("worker args");
    assert_eq!(s(&wargs[0]), "concur-worker");
    assert_eq!(
        flag(wargs, "--coordinator"),
        Some(format!("http://concur-coordinator:{port}").as_str())
    );
    let drain = seconds(flag(wargs, "--drain-timeout").expect("--drain-timeout"));
    let grace = wpod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace period") as u64;
    assert!(
        grace > drain,
        "grace {grace}s must exceed the drain {drain}s"
    );
    assert!(flag(wargs, "--token-file").is_some_and(|f| f.ends_with("/worker-token")));
    // Both pods: non-root, no privilege escalation, no capabilities (restricted profile).
    for spec in [&pod["spec"], wpod] {
        assert_eq!(
            spec["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true)
        );
        let c = &spec["containers"][0]["securityContext"];
        assert_eq!(c["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(c["capabilities"]["drop"][0].as_str(), Some("ALL"));
    }
}

// ---------------------------------------------------------------------------------------------
// Containerfile

#[test]
fn containerfile_builds_from_source_into_a_non_root_runtime() {
    let text = read(&deploy_dir().join("Containerfile"));
    // Instructions, with continuation lines joined and comments dropped.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(&str, &str)> = joined
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().split_once(' ').unwrap_or((l.trim(), "")))
        .collect();
    const KNOWN: [&str; 12] = [
        "FROM",
        "RUN",
        "COPY",
        "WORKDIR",
        "USER",
        "ENV",
        "EXPOSE",
        "VOLUME",
        "CMD",
        "STOPSIGNAL",
        "ARG",
        "LABEL",
    ];
    for (op, _) in &instructions {
        assert!(KNOWN.contains(op), "unknown instruction {op}");
    }
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(op, _)| *op == "FROM")
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(froms[0].contains("rust:") && froms[0].ends_with(" AS build"));
    let build_run = instructions
        .iter()
        .find(|(op, a)| *op == "RUN" && a.contains("cargo build"))
        .expect("cargo build")
        .1;
    assert!(build_run.contains("--release") && build_run.contains("--locked"));
    for name in ["concur-coordinator", "concur-worker", "concur-cli"] {
        assert!(
            build_run.contains(&format!("target/release/{name}")),
            "{name}"
        );
    }
    let runtime = &instructions[instructions
        .iter()
        .rposition(|(op, _)| *op == "FROM")
        .unwrap()..];
    assert!(
        runtime
            .iter()
            .any(|(op, a)| *op == "COPY" && a.starts_with("--from=build"))
    );
    let user = runtime
        .iter()
        .rev()
        .find(|(op, _)| *op == "USER")
        .expect("USER");
    assert!(!user.1.starts_with('0') && !user.1.starts_with("root"));
    assert!(runtime.iter().any(|(op, _)| *op == "CMD"));
    // The build context excludes the (huge) target directory.
    let ignore = read(&deploy_dir().join("Containerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    // Rust version of the build image: the workspace's rust-version.
    let manifest = read(&deploy_dir().join("../Cargo.toml"));
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"');
    assert!(
        froms[0].contains(&format!("rust:{rust_version}")),
        "{} vs {rust_version}",
        froms[0]
    );
}

// ---------------------------------------------------------------------------------------------
// systemd

/// A unit file's `[Section]` → `Key=Value` pairs, in order (keys may repeat).
fn unit_entries(path: &Path) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (n, line) in read(path).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not Key=Value: {line}", path.display(), n + 1));
        assert!(
            !section.is_empty(),
            "{}: entry before a section",
            path.display()
        );
        entries.push((section.clone(), key.to_string(), value.to_string()));
    }
    entries
}

fn unit_value(entries: &[(String, String, String)], section: &str, key: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.clone())
        .collect()
}

const UNITS: [&str; 2] = ["concur-coordinator.service", "concur-worker@.service"];

#[test]
fn systemd_units_are_hardened_and_drain_in_time() {
    let dir = deploy_dir().join("systemd");
    for unit in UNITS {
        let entries = unit_entries(&dir.join(unit));
        let sections: BTreeSet<&str> = entries.iter().map(|(s, _, _)| s.as_str()).collect();
        assert_eq!(
            sections,
            BTreeSet::from(["Unit", "Service", "Install"]),
            "{unit}"
        );
        let required = [
            ("DynamicUser", "yes"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("CapabilityBoundingSet", ""),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("SystemCallFilter", "@system-service"),
            ("MemoryDenyWriteExecute", "yes"),
            ("LockPersonality", "yes"),
            ("RestrictNamespaces", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectControlGroups", "yes"),
            ("Restart", "on-failure"),
            ("KillSignal", "SIGTERM"),
        ];
        for (key, value) in required {
            assert!(
                unit_value(&entries, "Service", key).contains(&value.to_string()),
                "{unit}: {key}={value}"
            );
        }
        let exec = unit_value(&entries, "Service", "ExecStart");
        assert_eq!(exec.len(), 1, "{unit}");
        assert!(
            exec[0].contains("--config /etc/concur/"),
            "{unit}: {}",
            exec[0]
        );
        // Tokens reach the dynamic user as credentials, never as world-readable files.
        assert!(exec[0].contains("%d/worker-token"), "{unit}");
        assert!(
            unit_value(&entries, "Service", "LoadCredential")
                .iter()
                .any(|c| c.starts_with("worker-token:")),
            "{unit}"
        );
    }
    let coordinator = unit_entries(&dir.join(UNITS[0]));
    assert_eq!(
        unit_value(&coordinator, "Service", "StateDirectory"),
        ["concur"]
    );
    let config = read(&dir.join("coordinator.toml"));
    assert!(config.contains("\nstate_dir = \"/var/lib/concur\"\n"));
    // The worker's stop timeout outlasts its drain timeout (from worker.toml).
    let worker = unit_entries(&dir.join(UNITS[1]));
    let stop = seconds(&unit_value(&worker, "Service", "TimeoutStopSec")[0]);
    let worker_toml = read(&dir.join("worker.toml"));
    let drain = worker_toml
        .lines()
        .find_map(|l| l.strip_prefix("drain_timeout = "))
        .map(|v| seconds(v.trim_matches('"')))
        .expect("drain_timeout in worker.toml");
    assert_eq!(drain, DRAIN_TIMEOUT_S);
    assert!(stop > drain, "TimeoutStopSec {stop}s vs drain {drain}s");
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

#[test]
fn example_configs_use_the_binaries_flags() {
    let dir = deploy_dir().join("systemd");
    for (file, binary) in [
        ("coordinator.toml", "concur-coordinator"),
        ("worker.toml", "concur-worker"),
    ] {
        let flags = long_flags(binary);
        let mut keys = 0;
        for line in read(&dir.join(file)).lines() {
            // Active lines only: commented ones document optional flags.
            let Some((key, _)) = line.split_once(" = ") else {
                continue;
            };
            if line.starts_with('#') {
                continue;
            }
            let flag = format!("--{}", key.trim().replace('_', "-"));
            assert!(
                flags.contains(&flag),
                "{file}: {flag} not in {binary} --help"
            );
            keys += 1;
        }
        assert!(keys >= 3, "{file}");
    }
}

// ---------------------------------------------------------------------------------------------
// Documentation

#[test]
fn deploy_readme_documents_every_method_and_file() {
    let readme = read(&deploy_dir().join("README.md"));
    for needle in [
        "systemd/concur-coordinator.service",
        "systemd/concur-worker@.service",
        "systemd-analyze verify",
        "Containerfile",
        "compose.yaml",
        "--scale worker=",
        "k8s/coordinator.yaml",
        "k8s/worker.yaml",
        "k8s/secret.yaml",
        "--replicas=",
        "ssh-workers.sh start",
        "ssh-workers.sh stop",
        "gen-secrets.sh",
        "lab.sh",
        "TLS",
        "not built here",
    ] {
        assert!(
            readme.contains(needle),
            "deploy/README.md mentions {needle:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The ssh launcher on namespace hosts

/// How the lab coordinator is protected: tokens when all three binaries take them, otherwise
/// `--insecure` (needed by a coordinator that refuses non-loopback addresses without tokens).
struct Auth {
    client_token: Option<String>,
    coordinator_args: Vec<String>,
    launcher_args: Vec<String>,
}

impl Auth {
    fn detect(dir: &Path) -> Self {
        let coordinator = long_flags("concur-coordinator");
        let tokens = coordinator.contains("--worker-token-file")
            && long_flags("concur-worker").contains("--token-file")
            && long_flags("concur-cli").contains("--token");
        if !tokens {
            eprintln!("deploy: binaries without token flags yet; the lab runs without tokens");
            return Self {
                client_token: None,
                coordinator_args: coordinator
                    .contains("--insecure")
                    .then(|| "--insecure".to_string())
                    .into_iter()
                    .collect(),
                launcher_args: Vec::new(),
            };
        }
        let client = "client-token-for-the-deploy-test-1".to_string();
        let (client_file, worker_file) = (dir.join("client-token"), dir.join("worker-token"));
        std::fs::write(&client_file, format!("{client}\n")).unwrap();
        std::fs::write(&worker_file, "worker-token-for-the-deploy-test-2\n").unwrap();
        let path = |p: &Path| p.display().to_string();
        Self {
            client_token: Some(client),
            coordinator_args: vec![
                "--token-file".into(),
                path(&client_file),
                "--worker-token-file".into(),
                path(&worker_file),
            ],
            launcher_args: vec!["--token-file".into(), path(&worker_file)],
        }
    }
}

/// `concur-cli --coordinator URL --output json ARGS` on host 0, with the client token if any.
fn lab_cli(lab: &Lab, auth: &Auth, args: &[&str]) -> CliOutput {
    let mut command = lab.command(0, "concur-cli");
    command
        .args(["--coordinator", &lab.url(), "--output", "json"])
        .args(args);
    match &auth.client_token {
        Some(token) => command.env("CONCUR_TOKEN", token),
        None => command.env_remove("CONCUR_TOKEN"),
    };
    run_cli(command)
}

fn workers(lab: &Lab, auth: &Auth) -> Vec<Value> {
    let out = lab_cli(lab, auth, &["workers"]);
    assert_eq!(out.code, 0, "workers: {}", out.stderr);
    out.json()["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn hosts_of(workers: &[Value]) -> BTreeSet<String> {
    workers
        .iter()
        .map(|w| w["host"].as_str().expect("host").to_string())
        .collect()
}

#[test]
fn ssh_launcher_starts_and_drains_workers_on_namespace_hosts() {
    // Fail with the package to install before building anything.
    require_tool("sshd", "openssh-server");
    require_tool("ssh", "openssh-client");
    // Declared first, dropped last: the lab outlives everything running in it.
    let lab = Lab::new("dp1", "10.77.30", 3);
    let scratch = Scratch::new("deploy-auth");
    let auth = Auth::detect(&scratch);
    let extra: Vec<&str> = auth.coordinator_args.iter().map(String::as_str).collect();
    let _coordinator = lab.start_coordinator(&extra);
    let ssh_hosts = SshHosts::start(&lab, &[1, 2]);
    let worker_bin = bin("concur-worker");
    let launcher =
        Launcher::new(&lab, 0, &ssh_hosts).env("CONCUR_WORKER_BIN", &worker_bin.to_string_lossy());
    let hosts = [lab.addr(1), lab.addr(2)];
    let expected: BTreeSet<String> = hosts.iter().cloned().collect();
    let url = lab.url();
    let mut start: Vec<&str> = vec!["--coordinator", &url];
    start.extend(auth.launcher_args.iter().map(String::as_str));
    start.push("start");
    start.extend(hosts.iter().map(String::as_str));

    let ran = launcher.run(&start);
    assert_eq!(ran.code, 0, "ssh-workers.sh start: {}", ran.text());
    let mut pids = Vec::new();
    for host in &hosts {
        assert!(
            ran.stdout.contains(&format!("{host}: started (pid ")),
            "{}",
            ran.text()
        );
        let pid = launcher.recorded_pid(host).expect("pid file");
        assert!(process_alive(pid), "worker on {host} runs");
        pids.push(pid);
    }
    if auth.client_token.is_some() {
        let token = std::fs::metadata(launcher.host_dir(&hosts[0]).join("token")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(token.permissions().mode() & 0o777, 0o600, "token file mode");
    }

    // Both attach, each reporting the host it was started on, with the recorded PID.
    let deadline = Instant::now() + Duration::from_secs(30);
    let attached = loop {
        let attached = workers(&lab, &auth);
        if hosts_of(&attached) == expected {
            break attached;
        }
        assert!(
            Instant::now() < deadline,
            "workers did not attach: {attached:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(attached.len(), 2);
    let attached_pids: BTreeSet<u64> = attached.iter().filter_map(|w| w["pid"].as_u64()).collect();
    assert_eq!(
        attached_pids,
        pids.iter().map(|p| u64::from(*p)).collect::<BTreeSet<_>>()
    );

    // A job runs on them.
    let out = lab_cli(
        &lab,
        &auth,
        &[
            "submit",
            "sum-squares",
            "1000000..1000008",
            "--shards",
            "2",
            "--wait",
        ],
    );
    assert_eq!(out.code, 0, "submit: {}", out.stderr);
    let report = out.json();
    assert_eq!(report["state"], "succeeded", "{report}");
    assert_eq!(assert_sums_exact(&report), 8);
    for shard in report["shards"].as_array().expect("shards") {
        assert!(
            expected.contains(shard["host"].as_str().unwrap()),
            "{shard}"
        );
    }

    // status says running; a second start leaves the running workers alone.
    let status = launcher.run(&["status", &hosts[0], &hosts[1]]);
    assert_eq!(status.code, 0, "{}", status.text());
    assert_eq!(status.stdout.matches(": running (pid ").count(), 2);
    let again = launcher.run(&start);
    assert_eq!(again.code, 0, "{}", again.text());
    assert_eq!(again.stdout.matches(": already running (pid ").count(), 2);
    assert_eq!(workers(&lab, &auth).len(), 2);

    // stop drains both: they detach, their processes end, the PID files go.
    let ran = launcher.run(&["stop", &hosts[0], &hosts[1]]);
    assert_eq!(ran.code, 0, "ssh-workers.sh stop: {}", ran.text());
    assert_eq!(
        ran.stdout.matches(": stopped (pid ").count(),
        2,
        "{}",
        ran.text()
    );
    for (host, pid) in hosts.iter().zip(&pids) {
        assert!(!process_alive(*pid), "worker {pid} on {host} has exited");
        assert_eq!(launcher.recorded_pid(host), None);
        let log = std::fs::read_to_string(launcher.host_dir(host).join("worker.log")).unwrap();
        assert!(log.contains("drain"), "the worker drained: {log}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !workers(&lab, &auth).is_empty() {
        assert!(
            Instant::now() < deadline,
            "workers still listed as attached"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = launcher.run(&["status", &hosts[0], &hosts[1]]);
    assert_eq!(status.code, 1, "{}", status.text());
    assert_eq!(status.stdout.matches(": not running").count(), 2);
}

/// `file` from deploy/systemd with `replacements` applied, written to `dir`.
fn adapted_config(dir: &Path, file: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = read(&deploy_dir().join("systemd").join(file));
    for (from, to) in replacements {
        assert!(text.contains(from), "{file} contains {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn example_configs_run_a_coordinator_and_a_worker() {
    let dir = Scratch::new("example-configs");
    let (client, worker) = (dir.join("client-token"), dir.join("worker-token"));
    std::fs::write(&client, "client-token-for-the-config-test\n").unwrap();
    std::fs::write(&worker, "worker-token-for-the-config-test\n").unwrap();
    let state = dir.join("state");
    let coordinator_toml = adapted_config(
        &dir,
        "coordinator.toml",
        &[
            ("\"0.0.0.0:7070\"", "\"127.0.0.1:0\""),
            (
                "\"/var/lib/concur\"",
                &format!("{:?}", state.display().to_string()),
            ),
        ],
    );
    // As the unit runs it: the TOML plus the token files from the command line.
    let mut command = Command::new(bin("concur-coordinator"));
    command
        .arg("--config")
        .arg(&coordinator_toml)
        .arg("--token-file")
        .arg(&client)
        .arg("--worker-token-file")
        .arg(&worker)
        .env_remove("CONCUR_LISTEN")
        .env_remove("CONCUR_STATE_DIR");
    let coordinator = concur_tests::spawn_server(command);
    let url = coordinator
        .first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {:?}", coordinator.first_line))
        .to_string();
    let worker_toml = adapted_config(
        &dir,
        "worker.toml",
        &[("\"http://coordinator.example:7070\"", &format!("\"{url}\""))],
    );
    let mut worker_command = Command::new(bin("concur-worker"));
    worker_command
        .arg("--config")
        .arg(&worker_toml)
        .arg("--token-file")
        .arg(&worker)
        .arg("--host-name")
        .arg("from-worker-toml")
        .env_remove("CONCUR_COORDINATOR");
    let _worker = spawn_quiet(worker_command);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = concur_tests::cli(&[
            "--coordinator",
            &url,
            "--token",
            "client-token-for-the-config-test",
            "--output",
            "json",
            "workers",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let workers = out.json()["workers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(w) = workers.first() {
            assert_eq!(w["host"], "from-worker-toml");
            assert_eq!(w["slots"], 1, "slots from worker.toml");
            break;
        }
        assert!(Instant::now() < deadline, "the worker never attached");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(state.is_dir(), "state_dir from the TOML is used");
    drop(coordinator);
}

#[test]
fn every_documented_config_key_is_known_to_the_binaries() {
    let dir = Scratch::new("config-keys");
    for (file, binary) in [
        ("coordinator.toml", "concur-coordinator"),
        ("worker.toml", "concur-worker"),
    ] {
        // Uncomment the optional `# key = "value"` lines too.
        let text: String = read(&deploy_dir().join("systemd").join(file))
            .lines()
            .map(|line| {
                let bare = line.strip_prefix("# ").unwrap_or(line);
                match bare.split_once(" = ") {
                    Some((key, value))
                        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                    {
                        let value = value.split("  #").next().unwrap().trim();
                        format!("{key} = {value}\n")
                    }
                    _ => String::new(),
                }
            })
            .collect();
        assert!(text.lines().count() >= 6, "{file}: {text}");
        let attempt = |text: &str| {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            let mut command = Command::new("timeout");
            command
                .arg("10")
                .arg(bin(binary))
                .arg("--config")
                .arg(&path)
                .env_remove("CONCUR_COORDINATOR")
                .env_remove("CONCUR_LISTEN");
            run(command)
        };
        // The files they name do not exist here, so the binary stops — but not on the config.
        let text = text.replace("\"0.0.0.0:7070\"", "\"127.0.0.1:0\"");
        let ran = attempt(&text);
        assert_ne!(ran.code, 0, "{file}: {}", ran.text());
        assert!(
            !ran.stderr.contains("invalid config file"),
            "{file} has a key {binary} does not know: {}",
            ran.text()
        );
        // Control: an unknown key is reported as such.
        let ran = attempt(&format!("{text}no_such_key = 1\n"));
        assert!(ran.stderr.contains("invalid config file"), "{}", ran.text());
    }
}
