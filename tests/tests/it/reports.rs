//! Reports: counts that never call unfinished items failed, item filters, bounded human
//! output for big jobs, and a reader that goes away early.

use concur_tests::{bin, cli, start_coordinator, start_sites, start_worker, wait_for_workers};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn json(url: &str, args: &[&str]) -> concur_tests::CliOutput {
    let mut all = vec!["--coordinator", url, "--output", "json"];
    all.extend_from_slice(args);
    cli(&all)
}

#[test]
fn a_job_no_worker_touched_has_no_failed_items() {
    let (_coordinator, url) = start_coordinator(&[]);
    let out = json(&url, &["submit", "sum-squares", "0..10", "--shards", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = out.json()["job_id"].to_string();
    let report = json(&url, &["job", &id]).json();
    assert_eq!(report["state"], "pending");
    assert_eq!(report["items_failed"], 0, "{report}");
    assert_eq!(report["items_ok"], 0);
    assert_eq!(report["items_unfinished"], 10);
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 10, "every item is listed, as not finished");
    assert!(
        items
            .iter()
            .all(|i| i["ok"] == false && i["error"] == "not finished")
    );
    let human = cli(&["--coordinator", &url, "job", &id]);
    assert!(
        human.stdout.contains("(0 ok, 0 failed, 10 unfinished)"),
        "{}",
        human.stdout
    );
    let listing = json(&url, &["jobs"]).json();
    assert_eq!(listing["jobs"][0]["items_failed"], 0);
}

#[test]
fn item_filters_list_only_what_was_asked_for() {
    let (_sites, sites) = start_sites(&["--latency", "1ms", "--bytes", "10"]);
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let mut args: Vec<String> = ["submit", "fetch", "--strategy", "async", "--wait"]
        .map(String::from)
        .to_vec();
    for i in 0..30 {
        let status = if i % 10 == 3 { "500" } else { "200" };
        args.push(format!("{sites}/p{i}?status={status}"));
    }
    let mut all = vec!["--coordinator", &url, "--output", "json"];
    all.extend(args.iter().map(String::as_str));
    let out = cli(&all);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let id = out.json()["job_id"].to_string();
    let failed = json(&url, &["job", &id, "--items", "failed"]).json();
    let failed = failed["items"].as_array().unwrap();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|i| i["status"] == 500));
    let ok = json(&url, &["job", &id, "--items", "ok"]).json();
    assert_eq!(ok["items"].as_array().unwrap().len(), 27);
    let none = json(&url, &["job", &id, "--items", "none"]).json();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    assert_eq!(none["items_failed"], 3, "the summary is whole either way");
    // People get the failures and a sample, not every row.
    let human = cli(&["--coordinator", &url, "job", &id]);
    assert!(human.stdout.contains("failed items"), "{}", human.stdout);
    assert!(human.stdout.contains("first 10 items"), "{}", human.stdout);
    let lines = cli(&["--coordinator", &url, "job", &id, "--items", "failed"]);
    assert_eq!(
        lines
            .stdout
            .lines()
            .filter(|l| l.starts_with("NO "))
            .count(),
        3,
        "{}",
        lines.stdout
    );
}

#[test]
fn a_reader_that_stops_early_ends_the_cli_quietly() {
    let (_coordinator, url) = start_coordinator(&[]);
    let out = json(&url, &["submit", "sum-squares", "0..5000", "--shards", "4"]);
    let id = out.json()["job_id"].to_string();
    // `concur-cli --coordinator URL job ID | head -3`
    let mut child = Command::new(bin("concur-cli"))
        .args(["--coordinator", &url, "--output", "json", "job", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(3)
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines.len(), 3);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
