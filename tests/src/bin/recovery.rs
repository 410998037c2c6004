//! Measures recovery times on the namespace lab (needs root), for `docs/reliability.md`:
//! - worker SIGKILL → its shard leased again elsewhere;
//! - host cut off (cable pulled) → its shard leased again elsewhere;
//! - coordinator SIGKILL + restart on its state → first shard leased again.
//!
//! Run: `cargo run --release -p concur-tests --bin recovery [TRIALS]` (default 3 trials).
//! Uses the coordinator's defaults (1 s heartbeats, 5 s heartbeat timeout).

use concur_tests::jobs::Coordinator;
use concur_tests::lab::Lab;
use concur_tests::{Proc, scratch_dir};
use std::time::{Duration, Instant};

/// 24 items of about 0.3 s in 6 shards: each shard runs about 1.2 s on a worker.
const JOB: &str = "1000000000..1000000024";
const SHARDS: &str = "6";

/// Seconds from `since` until some shard of the job runs (or ran) as a re-lease.
fn until_re_leased(c: &Coordinator<'_>, id: &str, since: Instant) -> f64 {
    let deadline = since + Duration::from_secs(60);
    loop {
        let out = c.json(&["job", id]);
        if out.code == 0 {
            let report = out.json();
            let re_leased = report["shards"]
                .as_array()
                .is_some_and(|shards| shards.iter().any(|s| s["attempt"].as_u64() >= Some(2)));
            if re_leased {
                return since.elapsed().as_secs_f64();
            }
        }
        assert!(Instant::now() < deadline, "no re-lease within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn summary(name: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    println!(
        "{name:<44} median {median:>6.2} s   min {:>6.2} s   max {:>6.2} s   ({} trials)",
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}

fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let lab = Lab::new("rec", "10.77.20", 4);
    let state = scratch_dir("recovery");
    let state_arg = state.to_str().expect("utf-8 path").to_string();
    let mut coordinator = lab.start_coordinator(&["--state-dir", &state_arg]);
    let run = |a: &[&str]| lab.cli(a);
    let c = Coordinator::new(&lab.url(), &run);
    let mut workers: Vec<Proc> = (1..=3).map(|h| lab.start_worker(h)).collect();
    c.wait_for_workers(3);
    let (mut killed, mut cut, mut restarted) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 1..=trials {
        eprintln!("trial {trial}/{trials}");
        // A worker is SIGKILLed mid-shard.
        let id = c.submit(JOB, SHARDS);
        let victim = c.busy_worker_mid_job(&id);
        let index = workers
            .iter()
            .position(|w| w.pid() == victim)
            .expect("ours");
        workers[index].signal(libc::SIGKILL);
        killed.push(until_re_leased(&c, &id, Instant::now()));
        c.wait_succeeded(&id);
        workers[index] = lab.start_worker(index as u32 + 1);
        c.wait_for_workers(3);

        // A worker's host is cut off mid-shard.
        let id = c.submit(JOB, SHARDS);
        let victim = c.busy_worker_mid_job(&id);
        let host = workers
            .iter()
            .position(|w| w.pid() == victim)
            .expect("ours") as u32
            + 1;
        lab.cut(host);
        cut.push(until_re_leased(&c, &id, Instant::now()));
        lab.restore(host);
        c.wait_succeeded(&id);
        c.wait_for_workers(3);

        // The coordinator is SIGKILLed mid-job and restarted on its state directory.
        let id = c.submit(JOB, SHARDS);
        c.busy_worker_mid_job(&id);
        coordinator.signal(libc::SIGKILL);
        coordinator
            .wait_timeout(Duration::from_secs(5))
            .expect("coordinator died");
        let start = Instant::now();
        coordinator = lab.start_coordinator(&["--state-dir", &state_arg]);
        restarted.push(until_re_leased(&c, &id, start));
        c.wait_succeeded(&id);
        c.wait_for_workers(3);
    }
    println!("recovery on the namespace lab (1 coordinator host, 3 worker hosts):");
    summary("worker SIGKILL -> shard leased elsewhere", &mut killed);
    summary("host cut off -> shard leased elsewhere", &mut cut);
    summary("coordinator restart -> shard leased again", &mut restarted);
    drop(workers);
    drop(coordinator);
    let _ = std::fs::remove_dir_all(state);
}
