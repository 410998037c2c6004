//! Active and standby coordinators on a real PostgreSQL server that the test starts itself
//! (Debian's `postgresql`, a throwaway cluster on a free port, removed afterwards): kill -9 of
//! the active mid-job, an active frozen past its lease that wakes up deposed, and a restart of
//! everything — each time every item exactly once and nothing acknowledged lost.

use concur_coordinator::store::postgres::testing::{PgServer, TestDb, database};
use concur_tests::lab::Lab;
use concur_tests::{
    Proc, cli, run_cli, scratch_dir, spawn_server, start_coordinator, start_sites, start_worker,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The URLs of `count` pages on the site simulator, in a file.
fn url_file(sites: &str, count: usize) -> String {
    let dir = scratch_dir("ha-urls");
    let path = dir.join("urls.txt");
    let urls: Vec<String> = (0..count).map(|i| format!("{sites}/page/{i}")).collect();
    std::fs::write(&path, urls.join("\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// `concur-cli` arguments submitting the fetch job of `list` (async, 2 tasks) to `urls`.
fn fetch_job<'a>(urls: &'a str, list: &'a str, shards: &'a str) -> [&'a str; 13] {
    [
        "--coordinator",
        urls,
        "submit",
        "fetch",
        "--urls-file",
        list,
        "--strategy",
        "async",
        "--concurrency",
        "2",
        "--shards",
        shards,
        "--label=ha",
    ]
}

/// Waits until the coordinator at `url` answers as the active one; how long that took.
fn until_active(url: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let out = cli(&["--coordinator", url, "jobs"]);
        if out.code == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{url} did not become active within {within:?}: {}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A coordinator on the shared database.
fn coordinator(db: &TestDb) -> (Proc, String) {
    start_coordinator(&["--state-url", &db.url])
}

/// Every item of job 1 exactly once and ok, from whichever coordinator is active.
fn assert_every_item_once(urls: &str, items: usize) -> Value {
    let report = cli(&[
        "--coordinator",
        urls,
        "--output",
        "json",
        "job",
        "1",
        "--wait",
        "--items",
        "all",
    ]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let report = report.json();
    assert_eq!(report["state"], "succeeded", "{report}");
    let listed = report["items"].as_array().expect("items");
    assert_eq!(listed.len(), items);
    let inputs: BTreeSet<&str> = listed
        .iter()
        .map(|i| i["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs.len(), items, "every item once");
    assert!(listed.iter().all(|i| i["ok"] == true), "every item ok");
    report
}

#[test]
fn killing_the_active_mid_job_hands_over_to_the_standby_and_every_item_runs_once() {
    let db = database();
    let (_sites, sites) = start_sites(&["--latency", "40ms", "--bytes", "100"]);
    let (first, first_url) = coordinator(&db);
    until_active(&first_url, Duration::from_secs(10));
    let (second, second_url) = coordinator(&db);
    let standby = cli(&["--coordinator", &second_url, "workers"]);
    assert_eq!(standby.code, 2);
    assert!(
        standby
            .stderr
            .contains(&format!("standby; the active coordinator is {first_url}")),
        "{}",
        standby.stderr
    );
    let both = format!("{first_url},{second_url}");
    let _workers: Vec<Proc> = (0..2).map(|_| start_worker(&both, 2)).collect();
    let list = url_file(&sites, 800);
    let submitted = cli(&fetch_job(&both, &list, "80"));
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    std::thread::sleep(Duration::from_millis(1500));
    first.signal(libc::SIGKILL);
    let takeover = until_active(&second_url, Duration::from_secs(10));
    eprintln!("standby accepting work {takeover:?} after kill -9 of the active");
    let report = assert_every_item_once(&both, 800);
    let reruns = report["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["attempt"].as_u64().unwrap_or(0) > 1)
        .count();
    assert!(reruns > 0, "in-flight shards ran again as new attempts");

    // Restart everything: the job and its results are still there.
    drop(second);
    drop(first);
    let (_third, third_url) = coordinator(&db);
    until_active(&third_url, Duration::from_secs(10));
    assert_every_item_once(&third_url, 800);
}

#[test]
fn an_active_frozen_past_its_lease_wakes_up_deposed_commits_nothing_and_stops() {
    let db = database();
    let (_sites, sites) = start_sites(&["--latency", "40ms", "--bytes", "100"]);
    let (mut first, first_url) = coordinator(&db);
    until_active(&first_url, Duration::from_secs(10));
    let (_second, second_url) = coordinator(&db);
    let both = format!("{first_url},{second_url}");
    let _workers: Vec<Proc> = (0..2).map(|_| start_worker(&both, 2)).collect();
    let list = url_file(&sites, 600);
    let submitted = cli(&fetch_job(&both, &list, "60"));
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    std::thread::sleep(Duration::from_millis(1000));
    // Frozen (a long GC pause, a stopped VM): its lease lapses and the standby takes over.
    first.signal(libc::SIGSTOP);
    until_active(&second_url, Duration::from_secs(15));
    first.signal(libc::SIGCONT);
    // Awake, it finds the lease taken and stops: it never acts as a second active.
    let code = first.wait_timeout(Duration::from_secs(10));
    assert!(
        matches!(code, Some(c) if c != 0),
        "the deposed coordinator exited with an error: {code:?}"
    );
    assert_every_item_once(&both, 600);
}

#[test]
fn an_active_cut_off_from_the_network_stops_and_the_standby_takes_over() {
    // Host 0: PostgreSQL and the site simulator; hosts 1 and 2: coordinators; host 3: a worker.
    let lab = Lab::new("ha1", "10.77.5", 4);
    let pg = PgServer::start_in(&lab.host(0), &lab.addr(0));
    let db = pg.database();
    let coordinator_on = |i: u32| {
        let mut command = lab.command(i, "concur-coordinator");
        command.args([
            "--listen",
            &format!("{}:7070", lab.addr(i)),
            "--state-url",
            &db.url,
            "--insecure",
        ]);
        (
            spawn_server(command),
            format!("http://{}:7070", lab.addr(i)),
        )
    };
    let on_host3 = |args: &[&str]| {
        let mut command = lab.command(3, "concur-cli");
        command.args(args);
        run_cli(command)
    };
    let until_active_from_host3 = |url: &str, within: Duration| {
        let start = Instant::now();
        while on_host3(&["--coordinator", url, "jobs"]).code != 0 {
            assert!(start.elapsed() < within, "{url} did not become active");
            std::thread::sleep(Duration::from_millis(200));
        }
        start.elapsed()
    };
    let (mut first, first_url) = coordinator_on(1);
    until_active_from_host3(&first_url, Duration::from_secs(15));
    let (_second, second_url) = coordinator_on(2);
    let both = format!("{first_url},{second_url}");
    let mut sites = lab.command(0, "concur-cli");
    sites.args([
        "sites",
        "serve",
        "--listen",
        &format!("{}:8080", lab.addr(0)),
        "--latency",
        "40ms",
        "--bytes",
        "100",
    ]);
    let _sites = spawn_server(sites);
    let list = url_file(&format!("http://{}:8080", lab.addr(0)), 600);
    let _worker = lab
        .command(3, "concur-worker")
        .args(["--coordinator", &both, "--slots", "2"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Reaped)
        .expect("a worker on host 3");
    let submitted = on_host3(&fetch_job(&both, &list, "60"));
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    std::thread::sleep(Duration::from_millis(1000));
    lab.cut(1);
    let takeover = until_active_from_host3(&second_url, Duration::from_secs(20));
    eprintln!("standby accepting work {takeover:?} after the active was cut off");
    // Cut off, the old active cannot renew its lease: it stops acting as the active one.
    let code = first.wait_timeout(Duration::from_secs(15));
    assert!(
        matches!(code, Some(c) if c != 0),
        "the cut-off coordinator stopped: {code:?}"
    );
    lab.restore(1);
    let report = on_host3(&[
        "--coordinator",
        &both,
        "--output",
        "json",
        "job",
        "1",
        "--wait",
        "--items",
        "all",
    ]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let report = report.json();
    assert_eq!(report["state"], "succeeded");
    let inputs: BTreeSet<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["ok"] == true)
        .map(|i| i["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs.len(), 600, "every item once and ok");
}

/// Kills (and reaps) a child by its own PID when dropped.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
