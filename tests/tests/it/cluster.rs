//! A real coordinator and worker processes on loopback: both workloads, every strategy.

use concur_tests::{
    assert_sums_exact, cli, start_coordinator, start_sites, start_worker, wait_for_workers,
};
use std::collections::HashSet;

const STRATEGIES: [&str; 6] = [
    "sequential",
    "threads",
    "async",
    "rayon",
    "async-blocking",
    "async-cpu",
];

#[test]
fn sum_squares_is_exact_with_every_strategy_across_two_workers() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _workers = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    for strategy in STRATEGIES {
        let out = cli(&[
            "--coordinator",
            &url,
            "--output",
            "json",
            "submit",
            "sum-squares",
            "3000000..3000008",
            "--strategy",
            strategy,
            "--concurrency",
            "2",
            "--shards",
            "4",
            "--wait",
        ]);
        assert_eq!(out.code, 0, "{strategy}: {}", out.stderr);
        let report = out.json();
        assert_eq!(report["state"], "succeeded");
        assert_eq!(report["strategy"], strategy);
        assert_eq!(assert_sums_exact(&report), 8);
        let shards = report["shards"].as_array().unwrap();
        assert_eq!(shards.len(), 4);
        // 4 shards and 2 idle workers: both work.
        let workers: HashSet<_> = shards.iter().map(|s| s["worker_id"].as_u64()).collect();
        assert_eq!(workers.len(), 2, "{strategy}: shards went to {workers:?}");
        for key in [
            "wall_s",
            "item_time_s",
            "process_parallelism",
            "effective_parallelism",
            "overhead_s",
        ] {
            assert!(report[key].as_f64().is_some(), "{key} missing");
        }
        for shard in shards {
            for key in [
                "shard_id",
                "worker_id",
                "host",
                "pid",
                "attempt",
                "items",
                "run_s",
                "cpu_s",
                "queue_s",
            ] {
                assert!(!shard[key].is_null(), "shard {key} missing");
            }
        }
    }
}

#[test]
fn one_huge_n_is_split_into_sub_ranges_across_shards() {
    let (_coordinator, url) = start_coordinator(&[]);
    let _workers = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "50000000",
        "--strategy",
        "sequential",
        "--shards",
        "6",
        "--wait",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["shards"].as_array().unwrap().len(), 6);
    assert_eq!(assert_sums_exact(&report), 1);
}

#[test]
fn fetch_gets_every_body_with_every_strategy() {
    let (_sites, sites) = start_sites(&["--latency", "20ms", "--bytes", "5k"]);
    let (_coordinator, url) = start_coordinator(&[]);
    let _workers = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    let urls: Vec<String> = (0..24).map(|i| format!("{sites}/page/{i}")).collect();
    for strategy in STRATEGIES {
        let mut args = vec!["--coordinator", &url, "--output", "json", "submit", "fetch"];
        args.extend(urls.iter().map(String::as_str));
        args.extend(["--strategy", strategy, "--concurrency", "4", "--wait"]);
        let out = cli(&args);
        assert_eq!(out.code, 0, "{strategy}: {}", out.stderr);
        let report = out.json();
        assert_eq!(report["state"], "succeeded");
        let items = report["items"].as_array().unwrap();
        assert_eq!(items.len(), 24);
        for (item, expected) in items.iter().zip(&urls) {
            assert_eq!(item["input"].as_str(), Some(expected.as_str()));
            assert_eq!(item["ok"], true, "{item}");
            assert_eq!(item["status"], 200);
            assert_eq!(item["bytes"], 5000);
        }
    }
}

#[test]
fn failing_urls_are_failed_items_not_a_failed_job() {
    let (_sites, sites) = start_sites(&["--latency", "1ms", "--bytes", "100"]);
    let (_coordinator, url) = start_coordinator(&[]);
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let good = format!("{sites}/ok");
    let server_error = format!("{sites}/boom?status=500");
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let unreachable = "http://127.0.0.1:1/nothing";
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "fetch",
        &good,
        &server_error,
        unreachable,
        "--strategy",
        "async",
        "--timeout",
        "5s",
        "--wait",
    ]);
    assert_eq!(out.code, 1, "failed items exit 1: {}", out.stderr);
    let report = out.json();
    assert_eq!(report["state"], "failed");
    let items = report["items"].as_array().unwrap();
    assert_eq!(items[0]["ok"], true);
    assert_eq!(items[0]["bytes"], 100);
    assert_eq!(items[1]["ok"], false);
    assert_eq!(items[1]["status"], 500);
    assert!(items[1]["error"].as_str().unwrap().contains("500"));
    assert_eq!(items[2]["ok"], false);
    assert_eq!(items[2]["status"], 0);
    assert!(!items[2]["error"].as_str().unwrap().is_empty());
}

#[test]
fn jobs_workers_and_cancel_work_against_a_running_coordinator() {
    let (_coordinator, url) = start_coordinator(&[]);
    let worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    // Long enough to still be running when cancelled: 40 items of about 1 s each.
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "2000000000..2000000040",
        "--shards",
        "1",
        "--label",
        "long",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let job_id = out.json()["job_id"].as_u64().expect("job_id");
    let id = job_id.to_string();

    let jobs = cli(&["--coordinator", &url, "--output", "json", "jobs"]).json();
    let listed = &jobs["jobs"][0];
    assert_eq!(listed["job_id"], job_id);
    assert_eq!(listed["label"], "long");

    let workers = cli(&["--coordinator", &url, "--output", "json", "workers"]).json();
    assert_eq!(workers["workers"][0]["pid"], worker.pid());

    let cancelled = cli(&["--coordinator", &url, "--output", "json", "cancel", &id]);
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    assert_eq!(cancelled.json()["state"], "cancelled");

    let report = cli(&["--coordinator", &url, "--output", "json", "job", &id]);
    assert_eq!(report.code, 1, "a cancelled job exits 1");
    assert_eq!(report.json()["state"], "cancelled");

    // The worker stops its in-flight shard and is free for the next job at once.
    let quick = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "10,20",
        "--wait",
    ]);
    assert_eq!(quick.code, 0, "{}", quick.stderr);
    assert_sums_exact(&quick.json());

    let human = cli(&["--coordinator", &url, "job", &id]);
    assert!(human.stdout.contains("cancelled"), "{}", human.stdout);
}

#[test]
fn health_checking_answers_serving() {
    let (_coordinator, url) = start_coordinator(&[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        for service in ["", "concur.v1.JobService", "concur.v1.WorkerService"] {
            let response = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                response.status,
                tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
                "{service}"
            );
        }
    });
}
