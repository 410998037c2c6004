//! `concur-cli compare` end to end, at a small scale: the JSON contract of report.json, the
//! files of `--out DIR`, and bad input.

use concur_tests::cli;
use serde_json::Value;
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("concur-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn finite(value: &Value, what: &str) -> f64 {
    let number = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(number.is_finite(), "{what} is not finite");
    number
}

#[test]
fn compare_writes_report_csv_charts_and_html() {
    let dir = temp_dir("files");
    let out = cli(&[
        "--output",
        "json",
        "compare",
        "sum-squares",
        "2000000..2000008",
        "--processes",
        "1,2",
        "--strategies",
        "threads,rayon",
        "--concurrency",
        "1,2,4",
        "--repeat",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let printed = out.json();
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    let report: Value = serde_json::from_str(&text).expect("report.json is JSON");
    assert_eq!(printed, report, "--output json prints report.json");

    let series = report["series"].as_array().expect("series array");
    // Scale-out, then threads and rayon at 1 and 2 processes.
    assert_eq!(series.len(), 5, "{series:#?}");
    assert_eq!(series[0]["axis"], "processes");
    for s in series {
        let cells = s["cells"].as_array().expect("cells");
        assert!(!cells.is_empty());
        for cell in cells {
            let median = finite(&cell["wall_s_median"], "median");
            let min = finite(&cell["wall_s_min"], "min");
            let max = finite(&cell["wall_s_max"], "max");
            assert!(min <= median && median <= max && min > 0.0, "{cell}");
            assert_eq!(cell["wall_s"].as_array().unwrap().len(), 2, "two repeats");
            assert!(cell["processes"].as_u64().unwrap() >= 1);
            assert!(cell["concurrency"].as_u64().unwrap() >= 1);
        }
        let fit = &s["fit"];
        for field in [
            "amdahl_serial_fraction",
            "usl_sigma",
            "usl_kappa",
            "optimum_concurrency",
        ] {
            assert!(fit.get(field).is_some(), "fit.{field} missing: {fit}");
        }
        // Every series here has a cell beyond one unit, so it is fitted.
        let sigma = finite(&fit["usl_sigma"], "sigma");
        let kappa = finite(&fit["usl_kappa"], "kappa");
        let s_frac = finite(&fit["amdahl_serial_fraction"], "amdahl");
        assert!((0.0..=1.0).contains(&sigma) && kappa >= 0.0 && (0.0..=1.0).contains(&s_frac));
    }
    // A warm-up run on each of the two local clusters, not counted in any cell.
    assert_eq!(report["warm_up"]["runs"], 2, "{}", report["warm_up"]);
    assert!(finite(&report["warm_up"]["wall_s"], "warm-up wall") > 0.0);
    // Rounds: every cell's first run comes before any cell's second run, and the positions
    // cover the timed runs exactly once.
    let orders: Vec<Vec<u64>> = series
        .iter()
        .flat_map(|s| s["cells"].as_array().unwrap())
        .map(|c| {
            assert!(c["flags"].is_array(), "flags missing: {c}");
            finite(&c["cpu_cores_busy"], "cpu_cores_busy");
            c["run_order"]
                .as_array()
                .expect("run_order")
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        })
        .collect();
    let last_first = orders.iter().map(|o| o[0]).max().unwrap();
    let first_second = orders.iter().map(|o| o[1]).min().unwrap();
    assert!(
        last_first < first_second,
        "repeats ran back to back, not in rounds: {orders:?}"
    );
    let mut all: Vec<u64> = orders.concat();
    all.sort_unstable();
    assert_eq!(all, (1..=all.len() as u64).collect::<Vec<_>>());
    // The baseline cell has speedup 1 by definition.
    let baseline = &series[0]["cells"][0];
    assert_eq!(
        (
            baseline["processes"].as_u64(),
            baseline["strategy"].as_str()
        ),
        (Some(1), Some("sequential"))
    );
    assert!((finite(&baseline["speedup"], "baseline speedup") - 1.0).abs() < 1e-9);
    let rec = &report["recommendation"];
    assert!(rec["processes"].as_u64().unwrap() >= 1);
    assert!(finite(&rec["wall_s"], "recommended wall") > 0.0);
    assert!(rec["text"].as_str().unwrap().contains("Best measured"));

    let csv = std::fs::read_to_string(dir.join("report.csv")).expect("report.csv");
    let cells: usize = series
        .iter()
        .map(|s| s["cells"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        csv.lines().count(),
        cells + 1,
        "a header and a row per cell"
    );
    let png = std::fs::read(dir.join("chart.png")).expect("chart.png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let svg = std::fs::read_to_string(dir.join("chart.svg")).expect("chart.svg");
    assert!(
        svg.contains("<svg") && svg.contains("<text"),
        "SVG without text"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("<svg") && html.contains("<table"));
    assert!(
        !html.contains("src=\"http"),
        "the page must be self-contained"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_human_output_on_fetch_jobs() {
    let (_sites, url) = concur_tests::start_sites(&["--latency", "5ms", "--bytes", "1k"]);
    let urls: Vec<String> = (0..8).map(|i| format!("{url}/page/{i}")).collect();
    let mut args = vec![
        "compare",
        "--processes",
        "1",
        "--strategies",
        "async",
        "--concurrency",
        "1,8",
        "--repeat",
        "1",
        "fetch",
    ];
    args.extend(urls.iter().map(String::as_str));
    let out = cli(&args);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("scale-up: 1 process x async"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Best measured"), "{}", out.stdout);
    assert!(
        out.stdout.contains("warm-up: 1 run, ") && out.stdout.contains("not counted"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("items in flight on average") && out.stdout.contains("CPU busy"),
        "effective parallelism is explained: {}",
        out.stdout
    );
}

#[test]
fn compare_refuses_bad_lists_with_exit_2() {
    for args in [
        vec!["compare", "--processes", "0", "sum-squares", "1..5"],
        vec!["compare", "--concurrency", "abc", "sum-squares", "1..5"],
        vec!["compare", "--processes", "", "sum-squares", "1..5"],
        vec!["compare", "--strategies", "fibers", "sum-squares", "1..5"],
        vec!["compare", "--repeat", "0", "sum-squares", "1..5"],
        vec!["compare", "sum-squares", "5..1"],
    ] {
        let out = cli(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.trim().is_empty(), "{args:?} gave no message");
    }
    let out = cli(&["--output", "json", "compare", "sum-squares", "5..1"]);
    assert_eq!(out.code, 2);
    assert!(out.json()["error"].is_string(), "{}", out.stdout);
}

#[test]
fn compare_against_a_coordinator_needs_enough_workers() {
    let (_coordinator, url) = concur_tests::start_coordinator(&[]);
    let _worker = concur_tests::start_worker(&url, 1);
    concur_tests::wait_for_workers(&url, 1);
    let out = cli(&[
        "--coordinator",
        &url,
        "compare",
        "--processes",
        "1,2",
        "sum-squares",
        "1..5",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("only 1 workers are attached"),
        "{}",
        out.stderr
    );
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "compare",
        "--processes",
        "1",
        "--strategies",
        "threads",
        "--concurrency",
        "2",
        "--repeat",
        "1",
        "sum-squares",
        "1000..1010",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert!(report["target"].as_str().unwrap().contains(&url));
    assert_eq!(report["series"].as_array().unwrap().len(), 2);
    assert_eq!(report["warm_up"]["runs"], 1, "one warm-up on a coordinator");
    // Ten small n take far less than 50 ms: every cell is flagged, none is read plainly.
    for series in report["series"].as_array().unwrap() {
        for cell in series["cells"].as_array().unwrap() {
            let flags = cell["flags"].as_array().unwrap();
            assert!(
                flags
                    .iter()
                    .any(|f| f.as_str().unwrap().starts_with("too short to time")),
                "{cell}"
            );
        }
    }
    // Flagged figures carry a marker and a footnote in the table; --no-warm-up says so.
    let out = cli(&[
        "--coordinator",
        &url,
        "compare",
        "--no-warm-up",
        "--processes",
        "1",
        "--strategies",
        "threads",
        "--concurrency",
        "2",
        "--repeat",
        "1",
        "sum-squares",
        "1000..1010",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("warm-up: skipped"), "{}", out.stdout);
    assert!(out.stdout.contains(" [!1]"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("[!1] 1 x sequential 1: too short to time"),
        "{}",
        out.stdout
    );
}
