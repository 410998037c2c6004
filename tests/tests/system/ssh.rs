//! `concur-cli cluster` for real, over ssh to network-namespace hosts running sshd.

use concur_tests::bin;
use concur_tests::deploy::{Launcher, Scratch, SshHosts, cmdline, long_flags, require_tool};
use concur_tests::lab::Lab;
use concur_tests::{CliOutput, assert_sums_exact, process_alive, run_cli};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

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

/// Every process's command line on the machine (the lab's hosts share one PID namespace).
fn every_cmdline() -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|pid| (pid, cmdline(pid)))
        .collect()
}

#[test]
fn cluster_up_starts_attaches_and_drains_workers_on_namespace_hosts() {
    // Fail with the package to install before building anything.
    require_tool("sshd", "openssh-server");
    require_tool("ssh", "openssh-client");
    // Declared first, dropped last: the lab outlives everything running in it.
    let lab = Lab::new("dp1", "10.77.30", 3);
    let scratch = Scratch::new("deploy-auth");
    let auth = Auth::detect(&scratch);
    let worker_token = auth
        .launcher_args
        .get(1)
        .map(|file| std::fs::read_to_string(file).unwrap().trim().to_string());
    let extra: Vec<&str> = auth.coordinator_args.iter().map(String::as_str).collect();
    let _coordinator = lab.start_coordinator(&extra);
    let ssh_hosts = SshHosts::start(&lab, &[1, 2]);
    let mut launcher = Launcher::new(&lab, 0, &ssh_hosts);
    if let Some(token) = &auth.client_token {
        // For `up` to see the workers attach, and `status` to say so.
        launcher = launcher.env("CONCUR_TOKEN", token);
    }
    let hosts = [lab.addr(1), lab.addr(2)];
    let expected: BTreeSet<String> = hosts.iter().cloned().collect();
    let url = lab.url();
    let mut up: Vec<&str> = vec!["--coordinator", &url];
    up.extend(auth.launcher_args.iter().map(String::as_str));
    up.extend(hosts.iter().map(String::as_str));

    // First `up`: the binary is copied to each host, the workers start and attach.
    let ran = launcher.cluster("up", &up);
    assert_eq!(ran.code, 0, "cluster up: {}", ran.text());
    let mut pids = Vec::new();
    for host in &hosts {
        for said in ["binary copied (sha256 ", "started (pid "] {
            assert!(
                ran.stdout.contains(&format!("{host}: {said}")),
                "{}",
                ran.text()
            );
        }
        let pid = launcher.recorded_pid(host).expect("pid file");
        assert!(process_alive(pid), "worker on {host} runs");
        pids.push(pid);
    }
    assert!(
        ran.stderr.contains("attached: all 2 workers"),
        "{}",
        ran.text()
    );
    let copied = launcher.run_dir().join("concur-worker");
    assert_eq!(sha256_of(&copied), sha256_of(&bin("concur-worker")));
    if auth.client_token.is_some() {
        let token = std::fs::metadata(launcher.host_dir(&hosts[0]).join("token")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(token.permissions().mode() & 0o777, 0o600, "token file mode");
    }
    // The token is on no command line: not the workers', not any ssh's or sshd's.
    for pid in &pids {
        let line = cmdline(*pid);
        assert!(line.starts_with(&copied.display().to_string()), "{line}");
    }
    if let Some(token) = &worker_token {
        for (pid, line) in every_cmdline() {
            assert!(
                !line.contains(token.as_str()),
                "token on pid {pid}'s command line: {line}"
            );
        }
    }

    // Both attached, each reporting the ssh host it was started on, with the recorded PID.
    let attached = workers(&lab, &auth);
    assert_eq!(hosts_of(&attached), expected);
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

    // status: a table, and JSON with stable keys.
    let status = launcher.cluster("status", &["-c", &url, &hosts[0], &hosts[1]]);
    assert_eq!(
        status.code,
        0,
        "every worker runs and is attached: {}",
        status.text()
    );
    assert!(!status.stdout.contains("not running"), "{}", status.text());
    let status = launcher.cluster("status", &["-c", &url, "--json", &hosts[0], &hosts[1]]);
    assert_eq!(status.code, 0, "{}", status.text());
    let json: Value = serde_json::from_str(&status.stdout).expect("status --json");
    for (row, (host, pid)) in json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(hosts.iter().zip(&pids))
    {
        assert_eq!(row["host"], host.as_str());
        assert_eq!(row["running"], true, "{row}");
        assert_eq!(row["attached"], true, "{row}");
        assert_eq!(row["pid"].as_u64(), Some(u64::from(*pid)), "{row}");
        assert_eq!(row["worker_host"], host.as_str(), "{row}");
    }

    // A second `up`: the binary is up to date, the running workers are left alone.
    let again = launcher.cluster("up", &up);
    assert_eq!(again.code, 0, "{}", again.text());
    assert_eq!(
        again.stdout.matches(": binary up to date (sha256 ").count(),
        2,
        "{}",
        again.text()
    );
    assert_eq!(
        again.stdout.matches(": already running (pid ").count(),
        2,
        "{}",
        again.text()
    );
    assert_eq!(workers(&lab, &auth).len(), 2);
    // The wrapper kept for existing users hands over to the same implementation.
    let wrapped = launcher.script(&["status", &hosts[0], &hosts[1]]);
    assert_eq!(wrapped.code, 0, "ssh-workers.sh status: {}", wrapped.text());

    // down drains both: they detach, their processes end, the PID and token files go.
    let ran = launcher.cluster("down", &[&hosts[0], &hosts[1]]);
    assert_eq!(ran.code, 0, "cluster down: {}", ran.text());
    assert_eq!(
        ran.stdout.matches(": stopped (pid ").count(),
        2,
        "{}",
        ran.text()
    );
    for (host, pid) in hosts.iter().zip(&pids) {
        assert!(!process_alive(*pid), "worker {pid} on {host} has exited");
        assert_eq!(launcher.recorded_pid(host), None);
        assert!(!launcher.host_dir(host).join("token").exists());
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
    let status = launcher.cluster("status", &["--log-lines", "0", &hosts[0], &hosts[1]]);
    assert_eq!(status.code, 1, "{}", status.text());
    assert_eq!(
        status.stdout.matches("not running").count(),
        2,
        "{}",
        status.text()
    );
}

/// `sha256sum FILE`'s digest.
fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
