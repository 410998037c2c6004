//! The ssh launcher for real, on network-namespace hosts running sshd.

use concur_tests::bin;
use concur_tests::deploy::{Launcher, Scratch, SshHosts, long_flags, require_tool};
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
