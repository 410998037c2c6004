//! The dashboard in a real browser (Debian's headless Chromium) while a job runs, and the
//! metrics of coordinator and worker through Prometheus's own linter (`promtool`).

use concur_tests::deploy::require_tool;
use concur_tests::web::get;
use concur_tests::{
    bin, cli, scratch_dir, spawn_server, start_coordinator_with_dashboard, start_sites,
    wait_for_workers,
};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The page's DOM once loaded, as headless Chromium sees it.
fn dump_dom(chromium: &Path, url: &str) -> String {
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--dump-dom",
            url,
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(output.status.success(), "chromium failed on {url}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The percentage the first progress bar of `dom` shows.
fn progress_in(dom: &str) -> f64 {
    let marker = "class=\"progress\"><span style=\"width:";
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no progress bar in the page:\n{dom}"));
    let rest = &dom[at + marker.len()..];
    rest[..rest.find('%').expect("a percentage")]
        .parse()
        .expect("a number")
}

#[test]
fn chromium_sees_workers_progress_and_timeline_bars_while_a_job_runs() {
    let chromium = require_tool("chromium", "chromium");
    let (_sites, sites) = start_sites(&["--latency", "30ms", "--bytes", "200"]);
    let (_coordinator, url, web) = start_coordinator_with_dashboard(&["--in-memory"]);
    let _w1 = concur_tests::start_worker(&url, 2);
    let _w2 = concur_tests::start_worker(&url, 2);
    wait_for_workers(&url, 2);
    // About 8 s of work: 1,000 URLs at 30 ms, 4 slots of 1 task each.
    let urls: Vec<String> = (0..1000).map(|i| format!("{sites}/page/{i}")).collect();
    let dir = scratch_dir("browser");
    let list = dir.join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let submitted = cli(&[
        "--coordinator",
        &url,
        "submit",
        "fetch",
        "--urls-file",
        list.to_str().unwrap(),
        "--strategy",
        "async",
        "--concurrency",
        "1",
        "--shards",
        "100",
    ]);
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    std::thread::sleep(Duration::from_millis(1500));

    let overview = dump_dom(&chromium, &format!("{web}/"));
    assert_eq!(
        overview.matches("<tr class=\"worker\">").count(),
        2,
        "both workers listed:\n{overview}"
    );
    let first = dump_dom(&chromium, &format!("{web}/jobs/1"));
    let before = progress_in(&first);
    assert!(
        first.contains("class=\"bar ok") || first.contains("class=\"bar running"),
        "timeline bars drawn:\n{first}"
    );
    assert!(
        first.contains("group-label"),
        "a lane group per worker process"
    );
    std::thread::sleep(Duration::from_millis(2000));
    let second = dump_dom(&chromium, &format!("{web}/jobs/1"));
    let after = progress_in(&second);
    assert!(before < 100.0, "caught the job running ({before}%)");
    assert!(after > before, "progress moved: {before}% then {after}%");
    let bars = |dom: &str| dom.matches("class=\"bar ").count();
    assert!(bars(&second) >= bars(&first), "bars only accumulate");

    // A screenshot renders too (what docs/ shows), with the page's own size.
    let shot = dir.join("timeline.png");
    let status = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,800",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("{web}/jobs/1"))
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run chromium");
    assert!(status.success());
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let _ = std::fs::remove_dir_all(dir);
}

/// `promtool check metrics` on a scrape; panics with its complaints.
fn promtool_accepts(promtool: &Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_coordinators_and_the_workers_metrics() {
    let promtool = require_tool("promtool", "prometheus");
    let (_coordinator, url, web) = start_coordinator_with_dashboard(&["--in-memory"]);
    let mut command = Command::new(bin("concur-worker"));
    command.args(["--coordinator", &url, "--metrics-listen", "127.0.0.1:0"]);
    let worker = spawn_server(command);
    let worker_web = worker
        .first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("metrics address")
        .trim_end_matches("/metrics")
        .to_string();
    wait_for_workers(&url, 1);
    let run = cli(&[
        "--coordinator",
        &url,
        "submit",
        "sum-squares",
        "--wait",
        "100000..100010",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let coordinator_metrics = get(&web, "/metrics").body;
    assert!(coordinator_metrics.contains("concur_items_total{outcome=\"ok\"} 10"));
    promtool_accepts(&promtool, &coordinator_metrics);
    let deadline = Instant::now() + Duration::from_secs(10);
    let worker_metrics = loop {
        let text = get(&worker_web, "/metrics").body;
        if text.contains("concur_worker_units_total{outcome=\"ok\"} 10") {
            break text;
        }
        assert!(Instant::now() < deadline, "worker metrics:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    promtool_accepts(&promtool, &worker_metrics);
    // The scrape config and the Grafana dashboard shipped in deploy/ are valid too.
    let config = concur_tests::deploy::deploy_dir().join("prometheus/prometheus.yml");
    let checked = Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(&config)
        .output()
        .expect("run promtool");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
