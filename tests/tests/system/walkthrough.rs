//! docs/walkthrough.md, run for real: a command measured on one machine, then on three
//! namespace hosts started with `concur-cli cluster up` over ssh, compared with a chart, and
//! torn down. With `CONCUR_WALKTHROUGH_OUT=DIR` the compare files (chart.png, report.json, …)
//! are kept there — the docs' chart comes from this run.

use concur_tests::deploy::{Launcher, Scratch, SshHosts, require_tool};
use concur_tests::lab::Lab;
use concur_tests::{CliOutput, run_cli};
use serde_json::Value;

/// The walkthrough's command: a wait standing in for a call to a remote service.
const COMMAND: [&str; 5] = ["sh", "-c", "sleep 0.05", "sh", "{}"];

fn lab_cli(lab: &Lab, token: &str, args: &[&str]) -> CliOutput {
    let mut command = lab.command(0, "concur-cli");
    command
        .args(["--coordinator", &lab.url()])
        .args(args)
        .env("CONCUR_TOKEN", token);
    run_cli(command)
}

#[test]
fn walkthrough_from_one_machine_to_three_hosts() {
    require_tool("sshd", "openssh-server");
    require_tool("ssh", "openssh-client");
    let lab = Lab::new("wk1", "10.77.31", 4);
    let scratch = Scratch::new("walkthrough");
    let (client_file, worker_file) = (scratch.join("client-token"), scratch.join("worker-token"));
    let client = "client-token-for-the-walkthrough-1";
    std::fs::write(&client_file, format!("{client}\n")).unwrap();
    std::fs::write(&worker_file, "worker-token-for-the-walkthrough-2\n").unwrap();
    let (client_path, worker_path) = (
        client_file.display().to_string(),
        worker_file.display().to_string(),
    );
    let _coordinator = lab.start_coordinator(&[
        "--token-file",
        &client_path,
        "--worker-token-file",
        &worker_path,
    ]);
    let ssh_hosts = SshHosts::start(&lab, &[1, 2, 3]);
    let launcher = Launcher::new(&lab, 0, &ssh_hosts).env("CONCUR_TOKEN", client);
    let hosts = [lab.addr(1), lab.addr(2), lab.addr(3)];
    let url = lab.url();

    // Step 1 (one machine): local mode, no set-up.
    let mut local = lab.command(0, "concur-cli");
    local
        .args(["--output", "json", "submit", "exec", "--range", "0..20"])
        .args(["--strategy", "threads", "--concurrency", "4", "--"])
        .args(COMMAND);
    let out = run_cli(local);
    assert_eq!(out.code, 0, "local run: {}", out.stderr);
    assert_eq!(out.json()["items_ok"], 20);

    // Step 2: three hosts, each a worker that may run the command.
    let mut up = vec![
        "-c",
        &url,
        "--token-file",
        &worker_path,
        "--worker-arg=--allow-exec=sh",
    ];
    up.extend(hosts.iter().map(String::as_str));
    let ran = launcher.cluster("up", &up);
    assert_eq!(ran.code, 0, "cluster up: {}", ran.text());
    assert!(
        ran.stderr.contains("attached: all 3 workers"),
        "{}",
        ran.text()
    );

    // Step 3: compare scale-out (hosts) with scale-up (threads) and auto, with a chart.
    let out_dir = std::env::var_os("CONCUR_WALKTHROUGH_OUT")
        .map_or_else(|| scratch.join("compare"), std::path::PathBuf::from);
    let out_path = out_dir.display().to_string();
    let mut args = vec![
        "--output",
        "json",
        "compare",
        "exec",
        "--range",
        "0..200",
        "--processes",
        "1,2,3",
        "--strategies",
        "threads",
        "--concurrency",
        "1,4,16,auto:32",
        "--repeat",
        "1",
        "--out",
        &out_path,
        "--",
    ];
    args.extend(COMMAND);
    let out = lab_cli(&lab, client, &args);
    assert_eq!(out.code, 0, "compare: {}", out.stderr);
    let report: Value = out.json();
    let cells: Vec<&Value> = report["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["cells"].as_array().unwrap())
        .collect();
    // Three processes ran on three hosts; the tuned cells say where they settled.
    let three = cells
        .iter()
        .find(|c| c["processes"] == 3 && c["strategy"] == "sequential")
        .expect("3 x sequential");
    assert_eq!(three["hosts"], 3, "{three}");
    let auto: Vec<&&Value> = cells.iter().filter(|c| c["auto"] == true).collect();
    assert_eq!(auto.len(), 3, "an auto cell per process count");
    assert!(
        auto.iter()
            .all(|c| c["tuned_concurrency"].as_f64().unwrap() >= 1.0)
    );
    assert!(cells.iter().all(|c| c["items_failed"] == 0));
    for file in [
        "report.json",
        "report.csv",
        "chart.svg",
        "chart.png",
        "report.html",
    ] {
        let len = std::fs::metadata(out_dir.join(file)).map_or(0, |m| m.len());
        assert!(len > 0, "{file} written");
    }

    // Step 4: tear down.
    let down: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let ran = launcher.cluster("down", &down);
    assert_eq!(ran.code, 0, "cluster down: {}", ran.text());
}
