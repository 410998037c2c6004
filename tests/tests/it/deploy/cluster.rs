//! `concur-cli cluster` without root or an sshd: usage errors, and the whole up / status / down
//! flow (and Ctrl-C during `up`) on this machine through a stand-in for ssh (`CONCUR_SSH`), a
//! real coordinator with tokens and real workers. Over real ssh on namespace hosts: the system
//! suite (`tests/system/ssh.rs`).

use super::*;
use concur_tests::deploy::cmdline;
use concur_tests::{process_alive, start_coordinator};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

const WORKER_TOKEN: &str = "worker-token-for-the-cluster-test-2";
const CLIENT_TOKEN: &str = "client-token-for-the-cluster-test-1";

fn cluster_alone(args: &[&str]) -> Ran {
    let mut c = Command::new(bin("concur-cli"));
    c.arg("cluster")
        .args(args)
        .env_remove("CONCUR_COORDINATOR")
        .env_remove("CONCUR_WORKER_TOKEN")
        .env_remove("CONCUR_WORKER_BIN")
        // Any attempt to reach a host would fail differently: none must happen.
        .env("CONCUR_SSH", "/nonexistent/ssh");
    run(c)
}

#[test]
fn cluster_rejects_bad_usage_with_exit_code_2() {
    let scratch = Scratch::new("cluster-usage");
    let hosts = scratch.join("hosts.txt");
    std::fs::write(&hosts, "# ok\nnode1\nnode2 node3\n").unwrap();
    let empty = scratch.join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let (hosts, empty) = (hosts.to_str().unwrap(), empty.to_str().unwrap());
    let c = ["up", "-c", "http://x:1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["up"], "name at least one host"),
        (vec!["up", "h1"], "give --coordinator"),
        (vec!["frob"], "unrecognized subcommand"),
        (vec!["down", "a;b"], "bad host 'a;b'"),
        (vec!["status", "--", "-oProxyCommand=x"], "bad host"),
        (
            vec!["status", "--hosts-file", hosts],
            "hosts.txt:3: one host per line",
        ),
        (
            vec!["status", "--hosts-file", "/nonexistent"],
            "cannot read hosts file",
        ),
        (vec!["down", "alice@h", "bob@h"], "share a run directory"),
        ([&c[..], &["--slots", "0", "h1"]].concat(), "--slots"),
        (
            [&c[..], &["--bin", "w", "--copy-bin", "w", "h1"]].concat(),
            "cannot be used with",
        ),
        (
            [
                &c[..],
                &[
                    "up",
                    "--token-file",
                    empty,
                    "--remote-token-file",
                    "/t",
                    "h1",
                ],
            ]
            .concat(),
            "cannot be used with",
        ),
        (
            [&c[..], &["--token-file", empty, "h1"]].concat(),
            "one non-empty line",
        ),
        (
            [&c[..], &["--token-file", "/nonexistent", "h1"]].concat(),
            "cannot read token file",
        ),
        (
            [&c[..], &["--copy-bin", hosts, "h1"]].concat(),
            "not an executable file",
        ),
        (
            vec!["down", "--stop-timeout", "soon", "h1"],
            "not a duration",
        ),
        (vec!["status", "--parallel", "0", "h1"], "--parallel"),
    ];
    for (args, message) in cases {
        let ran = cluster_alone(&args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.text());
        assert!(
            ran.stderr.contains(message),
            "{args:?} should say {message:?}: {}",
            ran.text()
        );
    }
    let help = cluster_alone(&["up", "--help"]);
    for needle in [
        "--token-file",
        "--copy-bin",
        "--wait-timeout",
        "Examples:",
        "sha256",
    ] {
        assert!(help.stdout.contains(needle), "up --help names {needle}");
    }
}

fn json_hosts(ran: &Ran) -> Vec<Value> {
    let value: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", ran.text()));
    value["hosts"].as_array().expect("hosts").clone()
}

#[test]
fn cluster_up_status_down_through_a_stand_in_for_ssh() {
    let scratch = Scratch::new("cluster-local");
    let (client_file, worker_file) = (scratch.join("client-token"), scratch.join("worker-token"));
    std::fs::write(&client_file, format!("{CLIENT_TOKEN}\n")).unwrap();
    std::fs::write(&worker_file, format!("{WORKER_TOKEN}\n")).unwrap();
    let (client_file, worker_file) = (client_file.to_str().unwrap(), worker_file.to_str().unwrap());
    let (_coordinator, url) = start_coordinator(&[
        "--in-memory",
        "--token-file",
        client_file,
        "--worker-token-file",
        worker_file,
    ]);
    let launcher = Launcher::local(&fake_ssh(&scratch)).env("CONCUR_TOKEN", CLIENT_TOKEN);
    let hosts_file = scratch.join("hosts.txt");
    std::fs::write(&hosts_file, "# two hosts\nh1\n\nh2   # the second\n").unwrap();
    let hosts_file = hosts_file.to_str().unwrap();
    let up_args = [
        "-c",
        &url,
        "--token-file",
        worker_file,
        "--hosts-file",
        hosts_file,
        "--worker-arg=--drain-timeout=5s",
    ];

    let up = launcher.cluster("up", &up_args);
    assert_eq!(up.code, 0, "cluster up: {}", up.text());
    let mut pids = Vec::new();
    for host in ["h1", "h2"] {
        assert!(
            up.stdout
                .contains(&format!("{host}: binary copied (sha256 ")),
            "{}",
            up.text()
        );
        assert!(
            up.stdout.contains(&format!("{host}: started (pid ")),
            "{}",
            up.text()
        );
        let pid = launcher.recorded_pid(host).expect("pid file");
        assert!(process_alive(pid));
        let command_line = cmdline(pid);
        assert!(command_line.contains("--token-file"), "{command_line}");
        assert!(
            !command_line.contains(WORKER_TOKEN),
            "token on the worker's command line"
        );
        let token = launcher.host_dir(host).join("token");
        assert_eq!(read(&token).trim(), WORKER_TOKEN);
        assert_eq!(
            std::fs::metadata(&token).unwrap().permissions().mode() & 0o777,
            0o600
        );
        pids.push(pid);
    }
    assert!(
        up.stderr.contains("attached: all 2 workers"),
        "{}",
        up.text()
    );
    let copied = launcher.run_dir().join("concur-worker");
    assert_eq!(
        std::fs::read(&copied).unwrap(),
        std::fs::read(bin("concur-worker")).unwrap(),
        "the copied binary is the local one"
    );
    let argv_log = read(&scratch.join("ssh-argv.log"));
    assert!(argv_log.contains("BatchMode=yes"), "{argv_log}");
    assert!(
        !argv_log.contains(WORKER_TOKEN),
        "token on ssh's command line: {argv_log}"
    );

    let status = launcher.cluster("status", &["-c", &url, "--json", "h1", "h2"]);
    assert_eq!(status.code, 0, "{}", status.text());
    let hosts = json_hosts(&status);
    for (host, pid) in hosts.iter().zip(&pids) {
        assert_eq!(host["running"], true, "{host}");
        assert_eq!(host["attached"], true, "{host}");
        assert_eq!(host["pid"].as_u64(), Some(u64::from(*pid)), "{host}");
        assert!(!host["log"].as_array().unwrap().is_empty(), "{host}");
    }

    // Again: the binary is up to date, the workers are left alone.
    let again = launcher.cluster("up", &up_args);
    assert_eq!(again.code, 0, "{}", again.text());
    assert_eq!(
        again.stdout.matches(": binary up to date").count(),
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
    assert_eq!(launcher.recorded_pid("h1"), Some(pids[0]));

    let down = launcher.cluster("down", &["--hosts-file", hosts_file]);
    assert_eq!(down.code, 0, "cluster down: {}", down.text());
    assert_eq!(
        down.stdout.matches(": stopped (pid ").count(),
        2,
        "{}",
        down.text()
    );
    for (host, pid) in ["h1", "h2"].iter().zip(&pids) {
        assert!(!process_alive(*pid), "worker {pid} has exited");
        assert!(
            !launcher.host_dir(host).join("token").exists(),
            "token removed"
        );
        assert!(read(&launcher.host_dir(host).join("worker.log")).contains("drain"));
    }
    let status = launcher.cluster("status", &["--log-lines", "0", "h1", "h2"]);
    assert_eq!(status.code, 1, "{}", status.text());
    assert_eq!(
        status.stdout.matches("not running").count(),
        2,
        "{}",
        status.text()
    );
}

#[test]
fn ctrl_c_during_up_drains_the_workers_it_started() {
    let scratch = Scratch::new("cluster-ctrl-c");
    let launcher = Launcher::local(&fake_ssh(&scratch));
    let worker = bin("concur-worker");
    // Nothing listens on port 1: the workers start, keep trying to attach, never do.
    let mut up = spawn_quiet(launcher.cluster_command(
        "up",
        &[
            "-c",
            "http://127.0.0.1:1",
            "--bin",
            worker.to_str().unwrap(),
            "h1",
            "h2",
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids = loop {
        let pids: Vec<u32> = ["h1", "h2"]
            .iter()
            .filter_map(|h| launcher.recorded_pid(h))
            .collect();
        if pids.len() == 2 {
            break pids;
        }
        assert!(Instant::now() < deadline, "workers never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Past the start's one-second check: `up` is waiting for them to attach.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(up.wait_timeout(Duration::ZERO), None, "up still waits");
    up.signal(libc::SIGINT);
    assert_eq!(
        up.wait_timeout(Duration::from_secs(60)),
        Some(130),
        "exit 130 after Ctrl-C"
    );
    for pid in pids {
        assert!(!process_alive(pid), "worker {pid} was torn down");
    }
    assert_eq!(launcher.recorded_pid("h1"), None);
}

#[test]
fn the_wrapper_script_maps_start_status_stop_and_host_names_can_be_the_machines() {
    let scratch = Scratch::new("cluster-wrapper");
    let (_coordinator, url) = start_coordinator(&["--in-memory"]);
    let launcher = Launcher::local(&fake_ssh(&scratch));
    // start-only options given to every command, as old scripts did: stop drops them.
    let common = [
        "-c",
        url.as_str(),
        "--host-name-from",
        "host",
        "--stop-timeout",
        "20",
    ];
    let start = launcher.script(&[&common[..], &["start", "h1"]].concat());
    assert_eq!(start.code, 0, "ssh-workers.sh start: {}", start.text());
    assert!(
        start.stdout.contains("h1: started (pid "),
        "{}",
        start.text()
    );
    assert!(
        !start.stderr.contains("attached"),
        "start does not wait: {}",
        start.text()
    );
    let machine = read(Path::new("/proc/sys/kernel/hostname"))
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = launcher.cluster("status", &["-c", &url, "--json", "h1"]);
        let host = json_hosts(&status)[0].clone();
        assert_eq!(host["worker_host"], machine.as_str(), "{host}");
        if status.code == 0 && host["attached"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never attached: {}",
            status.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = launcher.script(&[&common[..], &["status", "h1"]].concat());
    assert_eq!(status.code, 0, "ssh-workers.sh status: {}", status.text());
    let stop = launcher.script(&[&common[..], &["--force", "stop", "h1"]].concat());
    assert_eq!(stop.code, 0, "ssh-workers.sh stop: {}", stop.text());
    assert!(stop.stdout.contains("h1: stopped (pid "), "{}", stop.text());
}

#[test]
fn an_unreachable_host_is_named_with_ssh_s_message_and_exit_1() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("cluster-unreachable");
    let ssh = scratch.join("failing-ssh");
    std::fs::write(
        &ssh,
        "#!/bin/sh\necho 'ssh: connect to host far port 22: Connection refused' >&2\nexit 255\n",
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let launcher = Launcher::local(&ssh);
    let up = launcher.cluster("up", &["-c", "http://127.0.0.1:1", "--bin", "w", "far"]);
    assert_eq!(up.code, 1, "{}", up.text());
    assert!(
        up.stdout
            .contains("far: ssh failed: ssh: connect to host far port 22: Connection refused"),
        "{}",
        up.text()
    );
    assert!(
        up.stderr.contains("up failed on 1 of 1 hosts: far"),
        "{}",
        up.text()
    );
    let status = launcher.cluster("status", &["--json", "far"]);
    assert_eq!(status.code, 1, "{}", status.text());
    let host = &json_hosts(&status)[0];
    assert_eq!(host["running"], false);
    assert!(
        host["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{host}"
    );
    let down = launcher.cluster("down", &["far"]);
    assert_eq!(down.code, 1, "{}", down.text());
    assert!(
        down.stderr.contains("down failed on 1 of 1 hosts: far"),
        "{}",
        down.text()
    );
}
