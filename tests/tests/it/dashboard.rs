//! The coordinator's HTTP side as a browser, Prometheus and Perfetto see it: the dashboard's
//! pages and JSON, its live event stream, shard bars placed within the coordinator's own
//! timestamps, token rules, `/metrics` on coordinator and worker, and the trace file.

use concur_tests::web::{events, get, get_with};
use concur_tests::{
    bin, cli, scratch_dir, spawn_server, start_coordinator_with_dashboard, start_sites,
    wait_for_workers,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// A worker serving its own /metrics: (process, metrics URL).
fn worker_with_metrics(url: &str, slots: u32) -> (concur_tests::Proc, String) {
    let mut command = Command::new(bin("concur-worker"));
    command.args([
        "--coordinator",
        url,
        "--slots",
        &slots.to_string(),
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let proc = spawn_server(command);
    let metrics = proc
        .first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no metrics address in {:?}", proc.first_line))
        .trim_end_matches("/metrics")
        .to_string();
    (proc, metrics)
}

/// Samples of a metrics text, checked line by line: `name{labels} value`; OpenMetrics ends
/// with `# EOF`, the classic format must not.
fn parse_metrics(text: &str, openmetrics: bool) -> BTreeMap<String, f64> {
    assert_eq!(text.ends_with("# EOF\n"), openmetrics, "EOF marker");
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0,text/plain;q=0.5";

fn shards_of(report: &Value) -> Vec<Value> {
    report["shards"].as_array().expect("shards").clone()
}

#[test]
fn the_dashboard_shows_workers_jobs_and_bars_placed_within_the_coordinators_own_timestamps() {
    let (_coordinator, url, web) = start_coordinator_with_dashboard(&["--in-memory"]);
    let (worker, worker_metrics) = worker_with_metrics(&url, 2);
    wait_for_workers(&url, 1);
    let run = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "--strategy",
        "threads",
        "--concurrency",
        "3",
        "--shards",
        "6",
        "--wait",
        "2000000..2000024",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let job_id = report["job_id"].as_u64().expect("job id");

    let page = get(&web, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("concur dashboard"), "{}", page.body);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(get(&web, "/app.js").status, 200);

    let cluster = get(&web, "/api/cluster").json();
    let workers = cluster["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 1, "{cluster}");
    assert_eq!(workers[0]["pid"], worker.pid());
    assert_eq!(cluster["slots"], 2);

    let jobs = get(&web, "/api/jobs").json();
    assert_eq!(jobs[0]["job_id"], job_id);
    assert_eq!(jobs[0]["state"], "succeeded");
    assert_eq!(jobs[0]["progress"], 1.0);
    assert_eq!(jobs[0]["items"]["ok"], 24);

    // Every shard lies within the coordinator's own lease and result timestamps.
    for shard in shards_of(&report) {
        let start = shard["start_s"].as_f64().unwrap();
        let run_s = shard["run_s"].as_f64().unwrap();
        let leased = shard["queue_s"].as_f64().unwrap();
        let back = leased + shard["round_trip_s"].as_f64().unwrap();
        assert!(start >= leased - 1e-9, "{shard}");
        assert!(start + run_s <= back + 1e-6, "{shard}");
        assert!(shard["start_error_s"].as_f64().unwrap() >= 0.0, "{shard}");
    }

    let timeline = get(&web, &format!("/api/jobs/{job_id}/timeline")).json();
    let processes = timeline["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 1, "{timeline}");
    assert_eq!(processes[0]["pid"], worker.pid());
    let bars: Vec<&Value> = processes[0]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|lane| lane["bars"].as_array().unwrap())
        .collect();
    assert_eq!(bars.len(), 6, "one bar per shard: {timeline}");
    assert!(bars.iter().all(|b| b["state"] == "ok"));
    let lanes: BTreeSet<u64> = processes[0]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lane"].as_u64().unwrap())
        .collect();
    assert!(
        lanes.iter().all(|l| *l < 2),
        "slots 0 and 1 only: {lanes:?}"
    );

    let shard = get(&web, &format!("/api/jobs/{job_id}/shards/0")).json();
    let item_lanes = shard["processes"][0]["lanes"].as_array().expect("lanes");
    let items: usize = item_lanes
        .iter()
        .map(|l| l["bars"].as_array().unwrap().len())
        .sum();
    assert_eq!(items, 4, "shard 0's four items: {shard}");
    assert!(item_lanes.len() <= 3, "at most its 3 threads: {shard}");

    // The job's page embeds its first render, the opened shard's items included.
    let page = get(&web, &format!("/jobs/{job_id}?shard=0"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<script id=\"initial\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("\"shard\":{"), "shard items embedded");
    assert_eq!(get(&web, "/jobs/999").status, 404);

    let missing = get(&web, "/api/jobs/999/timeline");
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("no job with id 999"),
        "{}",
        missing.body
    );

    let snapshot = &events(&web, "/api/events", 1)[0];
    assert_eq!(snapshot["cluster"]["workers"].as_array().unwrap().len(), 1);
    assert_eq!(snapshot["jobs"][0]["job_id"], job_id);

    let scrape = get_with(&web, "/metrics", &[("Accept", OPENMETRICS)]);
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .header("content-type")
            .unwrap()
            .contains("openmetrics")
    );
    let samples = parse_metrics(&scrape.body, true);
    // Without asking for OpenMetrics (curl, promtool): the classic format, counters named
    // with their _total suffix in HELP and TYPE too.
    let classic = get(&web, "/metrics");
    assert!(
        classic
            .header("content-type")
            .unwrap()
            .contains("version=0.0.4")
    );
    assert!(classic.body.contains("# TYPE concur_items_total counter"));
    parse_metrics(&classic.body, false);
    assert_eq!(samples["concur_items_total{outcome=\"ok\"}"], 24.0);
    assert_eq!(
        samples["concur_shards_finished_total{outcome=\"committed\"}"],
        6.0
    );
    assert_eq!(
        samples["concur_jobs_finished_total{state=\"succeeded\"}"],
        1.0
    );
    assert_eq!(samples["concur_workers{state=\"idle\"}"], 1.0);
    assert_eq!(samples["concur_dispatch_latency_seconds_count"], 6.0);
    assert!(samples["concur_commit_latency_seconds_count"] >= 1.0);

    let worker_samples = parse_metrics(
        &get_with(&worker_metrics, "/metrics", &[("Accept", OPENMETRICS)]).body,
        true,
    );
    assert_eq!(
        worker_samples["concur_worker_units_total{outcome=\"ok\"}"],
        24.0
    );
    assert_eq!(worker_samples["concur_worker_shards_total"], 6.0);
    assert_eq!(worker_samples["concur_worker_attached"], 1.0);

    // Every metric the shipped Grafana dashboard queries is one the binaries export.
    let exported = format!(
        "{}{}",
        get(&web, "/metrics").body,
        get(&worker_metrics, "/metrics").body
    );
    let grafana: Value = serde_json::from_str(
        &std::fs::read_to_string(
            concur_tests::deploy::deploy_dir().join("grafana/concur-dashboard.json"),
        )
        .unwrap(),
    )
    .expect("the Grafana dashboard is JSON");
    let mut queried = 0;
    for panel in grafana["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("concur_") {
                    queried += 1;
                    assert!(
                        exported.contains(&format!("\n{word}")),
                        "{word} (panel {}) is not exported",
                        panel["title"]
                    );
                }
            }
        }
    }
    assert!(queried >= 10, "{queried} metrics queried");
}

#[test]
fn the_event_stream_shows_a_running_jobs_progress_move() {
    let (_sites, sites) = start_sites(&["--latency", "20ms", "--bytes", "100"]);
    let (_coordinator, url, web) = start_coordinator_with_dashboard(&["--in-memory"]);
    let (_worker, _) = worker_with_metrics(&url, 1);
    wait_for_workers(&url, 1);
    let urls: Vec<String> = (0..300).map(|i| format!("{sites}/p/{i}")).collect();
    let mut args = vec![
        "--coordinator",
        &url,
        "submit",
        "fetch",
        "--strategy",
        "async",
        "--concurrency",
        "4",
        "--shards",
        "30",
    ];
    args.extend(urls.iter().map(String::as_str));
    let submitted = cli(&args);
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    let snapshots = events(&web, "/api/events", 3);
    let progress: Vec<f64> = snapshots
        .iter()
        .map(|s| s["jobs"][0]["progress"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(progress[0] < 1.0, "{progress:?}");
    assert!(
        progress[2] > progress[0],
        "progress did not move: {progress:?}"
    );
    // While it runs, the timeline has running bars or finished ones, never none.
    let timeline = get(&web, "/api/jobs/1/timeline").json();
    assert!(timeline["bars"].as_u64().unwrap() > 0, "{timeline}");
}

#[test]
fn with_a_token_every_page_needs_it_and_the_browser_gets_it_as_a_cookie() {
    let (_coordinator, _url, web) = start_coordinator_with_dashboard(&[
        "--in-memory",
        "--token",
        "s3cret",
        "--worker-token",
        "w0rker",
    ]);
    for path in ["/", "/api/cluster", "/metrics", "/api/events"] {
        let refused = get(&web, path);
        assert_eq!(refused.status, 401, "{path}");
        assert!(refused.body.contains("?token="), "{}", refused.body);
    }
    assert_eq!(get(&web, "/?token=wrong").status, 401);
    let bearer = get_with(&web, "/metrics", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(bearer.status, 200);
    let first = get(&web, "/?token=s3cret");
    assert_eq!(first.status, 200);
    let cookie = first.header("set-cookie").expect("cookie set");
    assert!(cookie.starts_with("concur_token=s3cret"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let with_cookie = get_with(&web, "/api/cluster", &[("Cookie", "concur_token=s3cret")]);
    assert_eq!(with_cookie.status, 200);
}

#[test]
fn a_dashboard_beyond_loopback_without_a_token_is_refused() {
    let output = Command::new(bin("concur-coordinator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--in-memory",
            "--http-listen",
            "0.0.0.0:0",
        ])
        .output()
        .expect("run the coordinator");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve the dashboard on 0.0.0.0:0 without a token"),
        "{stderr}"
    );
}

#[test]
fn a_trace_file_has_a_process_per_worker_a_thread_per_lane_and_an_event_per_item() {
    let (_coordinator, url, _web) = start_coordinator_with_dashboard(&["--in-memory"]);
    let (w1, _) = worker_with_metrics(&url, 1);
    let (w2, _) = worker_with_metrics(&url, 1);
    wait_for_workers(&url, 2);
    let run = cli(&[
        "--coordinator",
        &url,
        "submit",
        "sum-squares",
        "--strategy",
        "rayon",
        "--concurrency",
        "2",
        "--shards",
        "8",
        "--wait",
        "1000000..1000032",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = scratch_dir("trace");
    let file = dir.join("job.json");
    let traced = cli(&[
        "--coordinator",
        &url,
        "job",
        "1",
        "--items",
        "none",
        "--trace",
        file.to_str().unwrap(),
    ]);
    assert_eq!(traced.code, 0, "{}", traced.stderr);
    assert!(
        traced.stderr.contains("ui.perfetto.dev"),
        "{}",
        traced.stderr
    );
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).expect("trace is JSON");
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let mut process_names = BTreeSet::new();
    let mut threads = BTreeSet::new();
    let (mut shards, mut items) = (0, 0);
    for event in events {
        let ph = event["ph"].as_str().expect("ph");
        assert!(event["pid"].is_u64(), "{event}");
        assert!(event["name"].is_string(), "{event}");
        match ph {
            "M" => match event["name"].as_str().unwrap() {
                "process_name" => {
                    process_names.insert(event["args"]["name"].as_str().unwrap().to_string());
                }
                "thread_name" => {
                    threads.insert((event["pid"].as_u64(), event["tid"].as_u64()));
                }
                other => panic!("unexpected metadata {other}"),
            },
            "X" => {
                assert!(event["tid"].is_u64(), "{event}");
                assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
                assert!(event["dur"].as_f64().unwrap() >= 0.0, "{event}");
                assert!(event["args"]["attempt"].as_u64().unwrap() >= 1, "{event}");
                assert!(
                    threads.contains(&(event["pid"].as_u64(), event["tid"].as_u64())),
                    "thread named before its events: {event}"
                );
                match event["cat"].as_str().unwrap() {
                    "shard" => shards += 1,
                    "item" => items += 1,
                    other => panic!("unexpected category {other}"),
                }
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    assert_eq!(shards, 8);
    assert_eq!(items, 32);
    let expected: BTreeSet<String> = [w1.pid(), w2.pid()]
        .iter()
        .map(|pid| format!("{}:{pid}", concur_worker::system::hostname()))
        .collect();
    // Each process that ran shards is named host:pid (one may have taken them all).
    assert!(!process_names.is_empty());
    assert!(process_names.is_subset(&expected), "{process_names:?}");
    assert_eq!(trace["otherData"]["state"], "succeeded");
}
