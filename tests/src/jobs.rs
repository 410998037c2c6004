//! Job helpers shared by the loopback and the namespace-lab fault tests: they drive a
//! coordinator through `concur-cli`, however that is run.

use crate::{CliOutput, Proc};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A coordinator reached by running `concur-cli` through `run`.
pub struct Coordinator<'a> {
    /// Its URL.
    pub url: String,
    run: &'a dyn Fn(&[&str]) -> CliOutput,
}

impl std::fmt::Debug for Coordinator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("url", &self.url)
            .finish()
    }
}

impl<'a> Coordinator<'a> {
    /// The coordinator at `url`, driven by `run`.
    pub fn new(url: &str, run: &'a dyn Fn(&[&str]) -> CliOutput) -> Self {
        Self {
            url: url.to_string(),
            run,
        }
    }

    /// `concur-cli --coordinator URL --output json ARGS...`.
    pub fn json(&self, args: &[&str]) -> CliOutput {
        let mut all = vec!["--coordinator", &self.url, "--output", "json"];
        all.extend_from_slice(args);
        (self.run)(&all)
    }

    /// A job's report.
    pub fn job(&self, id: &str) -> Value {
        self.json(&["job", id]).json()
    }

    /// The attached workers.
    pub fn workers(&self) -> Vec<Value> {
        let out = self.json(&["workers"]);
        if out.code != 0 {
            return Vec::new();
        }
        out.json()["workers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `count` workers are attached.
    pub fn wait_for_workers(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.workers().len() < count {
            assert!(Instant::now() < deadline, "{count} workers did not attach");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a worker with this PID (on this host name, if given) is attached.
    pub fn has_worker(&self, pid: u32) -> bool {
        self.workers()
            .iter()
            .any(|w| w["pid"].as_u64() == Some(u64::from(pid)))
    }

    /// Submits sum-squares `spec` in `shards` shards without waiting; the job id.
    pub fn submit(&self, spec: &str, shards: &str) -> String {
        let out = self.json(&["submit", "sum-squares", spec, "--shards", shards]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()["job_id"].as_u64().expect("job_id").to_string()
    }

    /// Waits until a shard of the job is done while the job still runs, and returns the PID
    /// of a worker busy at that moment.
    pub fn busy_worker_mid_job(&self, id: &str) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let report = self.job(id);
            assert_eq!(report["state"], "running", "job ended too early: {report}");
            let done = report["shards"]
                .as_array()
                .expect("shards")
                .iter()
                .filter(|s| s["done"] == true)
                .count();
            let busy: Vec<u32> = self
                .workers()
                .iter()
                .filter(|w| w["running"].as_u64() > Some(0))
                .map(|w| w["pid"].as_u64().expect("pid") as u32)
                .collect();
            if done >= 1 && !busy.is_empty() {
                return busy[0];
            }
            assert!(Instant::now() < deadline, "no shard finished in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the job to end and returns its report, which must say succeeded.
    pub fn wait_succeeded(&self, id: &str) -> Value {
        let out = self.json(&["job", id, "--wait"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let report = out.json();
        assert_eq!(report["state"], "succeeded");
        report
    }
}

/// The process in `procs` with this PID.
pub fn find(procs: &mut [Proc], pid: u32) -> &mut Proc {
    procs
        .iter_mut()
        .find(|p| p.pid() == pid)
        .expect("the busy worker is one of ours")
}

/// True when some shard of the report ran as a re-lease (attempt 2 or more).
pub fn any_re_leased(report: &Value) -> bool {
    report["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .any(|s| s["attempt"].as_u64() >= Some(2))
}
