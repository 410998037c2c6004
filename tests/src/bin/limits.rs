//! Limits and growth, for `docs/reliability.md`: a job of a million URLs on two workers against
//! the site simulator (latency 0, 100-byte bodies) with durable state, then ten thousand small
//! jobs in a row. Measures the coordinator's RSS (peak, before, after), how long `ListWorkers`
//! waits while all that happens (polled every 50 ms), SubmitJob and GetJob latency, the peak RSS
//! of `concur-cli --output json job ID`, the state directory's size, and false worker losses.
//!
//!     cargo build --release --bins
//!     ./target/release/limits [--items N] [--small-jobs N] [--bin-dir DIR] [--legacy]
//!
//! `--bin-dir` runs other builds of the binaries (e.g. an earlier release, for a before/after
//! table); `--legacy` talks to them the way the first release understood (URLs as a repeated
//! field, reports whole in `GetJob`).

use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_tests::measure::{
    Proc, dir_bytes, job_client, mib, peak_of, rss_kib, sample_peak, server, sibling_dir,
    site_simulator,
};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

struct Options {
    items: usize,
    small_jobs: usize,
    bin_dir: PathBuf,
    legacy: bool,
}

fn options() -> Options {
    let mut options = Options {
        items: 1_000_000,
        small_jobs: 10_000,
        bin_dir: sibling_dir(),
        legacy: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--items" => options.items = value().parse().expect("--items N"),
            "--small-jobs" => options.small_jobs = value().parse().expect("--small-jobs N"),
            "--bin-dir" => options.bin_dir = PathBuf::from(value()),
            "--legacy" => options.legacy = true,
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

/// What the poller saw: the longest wait, waits over 50 ms, polls, every worker id seen.
type Polled = (Duration, usize, usize, std::collections::BTreeSet<u64>);

/// Polls `ListWorkers` every 50 ms.
struct Poller {
    stop: Arc<AtomicBool>,
    result: Arc<Mutex<Polled>>,
}

impl Poller {
    fn start(runtime: &tokio::runtime::Runtime, mut client: JobServiceClient<Channel>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let result: Arc<Mutex<Polled>> = Arc::default();
        let (flag, out) = (stop.clone(), result.clone());
        runtime.spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                let start = Instant::now();
                let answer = client.list_workers(pb::ListWorkersRequest {}).await;
                let waited = start.elapsed();
                {
                    let mut r = out.lock().unwrap();
                    r.0 = r.0.max(waited);
                    r.1 += usize::from(waited > Duration::from_millis(50));
                    r.2 += 1;
                    if let Ok(answer) = answer {
                        r.3.extend(answer.into_inner().workers.iter().map(|w| w.worker_id));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { stop, result }
    }

    fn finish(self) -> Polled {
        self.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(200));
        self.result.lock().unwrap().clone()
    }
}

async fn wait_final(client: &mut JobServiceClient<Channel>, job_id: u64) -> i32 {
    let mut stream = client
        .watch_job(pb::WatchJobRequest { job_id })
        .await
        .expect("watch")
        .into_inner();
    let mut state = 0;
    // Read to the end of the stream (it ends after the final state).
    while let Ok(Some(progress)) = stream.message().await {
        state = progress.state;
    }
    state
}

fn main() {
    let o = options();
    let bin = |name: &str| o.bin_dir.join(name);
    let state = std::env::temp_dir().join(format!("concur-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let (_sites, sites) = site_simulator(&o.bin_dir);
    let (coordinator, url) = server({
        let mut c = Command::new(bin("concur-coordinator"));
        c.args(["--listen", "127.0.0.1:0", "--heartbeat-timeout", "2s"])
            .args(["--heartbeat-interval", "500ms", "--state-dir"])
            .arg(&state);
        c
    });
    let pid = coordinator.0.id();
    let _workers: Vec<Proc> = (0..2)
        .map(|_| {
            let child = Command::new(bin("concur-worker"))
                .args(["--coordinator", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("worker");
            Proc(child)
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let connect = || runtime.block_on(job_client(&url));
    let mut client = connect();
    while runtime
        .block_on(client.list_workers(pb::ListWorkersRequest {}))
        .map_or(0, |r| r.into_inner().workers.len())
        < 2
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid);
    let poller = Poller::start(&runtime, connect());
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let sampler = sample_peak(pid, stop_sampler.clone());

    assert!(o.items > 0, "--items must be at least 1");
    let urls = (0..o.items).map(|i| format!("{sites}/item/{i}"));
    let fetch = if o.legacy {
        pb::FetchSpec {
            urls: urls.collect(),
            ..pb::FetchSpec::default()
        }
    } else {
        pb::FetchSpec {
            urls_text: urls.collect::<Vec<_>>().join("\n"),
            ..pb::FetchSpec::default()
        }
    };
    let spec = pb::JobSpec {
        workload: Some(pb::job_spec::Workload::Fetch(fetch)),
        strategy: pb::Strategy::Async as i32,
        concurrency: 256,
        ..pb::JobSpec::default()
    };
    let start = Instant::now();
    let job_id = runtime
        .block_on(client.submit_job(pb::SubmitJobRequest { spec: Some(spec) }))
        .expect("submit")
        .into_inner()
        .job_id;
    let submit = start.elapsed();

    let state_code = runtime.block_on(wait_final(&mut client, job_id));
    let wall = start.elapsed();
    let start = Instant::now();
    let report = runtime
        .block_on(client.get_job(pb::GetJobRequest { job_id }))
        .expect("get job")
        .into_inner();
    let get_job = start.elapsed();
    let (cli_peak, cli_wall, cli_code) = peak_of({
        let mut c = Command::new(bin("concur-cli"));
        c.args([
            "--coordinator",
            &url,
            "--output",
            "json",
            "job",
            &job_id.to_string(),
        ]);
        c
    });
    std::thread::sleep(Duration::from_secs(3));
    stop_sampler.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    let after = rss_kib(pid);
    let (longest, slow, polls, ids) = poller.finish();
    let disk = dir_bytes(&state);

    println!(
        "# concur limits: {} URLs on 2 workers, durable state",
        o.items
    );
    println!(
        "job state code               {state_code} (3 = succeeded), wall {:.1} s",
        wall.as_secs_f64()
    );
    println!("coordinator RSS before       {:.1} MiB", mib(before));
    println!("coordinator RSS peak         {:.1} MiB", mib(peak));
    println!(
        "coordinator RSS after        {:.1} MiB (+{:.1} MiB)",
        mib(after),
        mib(after.saturating_sub(before))
    );
    println!("SubmitJob                    {:.3} s", submit.as_secs_f64());
    println!(
        "GetJob                       {:.3} s ({} bytes)",
        get_job.as_secs_f64(),
        prost::Message::encoded_len(&report)
    );
    println!(
        "job --output json            peak RSS {:.1} MiB, {:.1} s, exit {cli_code}",
        mib(cli_peak),
        cli_wall.as_secs_f64()
    );
    println!(
        "ListWorkers every 50 ms      longest {:.1} ms, {slow} of {polls} over 50 ms",
        longest.as_secs_f64() * 1000.0
    );
    println!(
        "worker ids seen              {} (2 = no worker lost)",
        ids.len()
    );
    println!(
        "stale results discarded      {}",
        report.stale_results_discarded
    );
    println!(
        "state directory              {:.1} MiB ({:.1} bytes per item)",
        disk as f64 / 1048576.0,
        disk as f64 / o.items as f64
    );

    if o.small_jobs > 0 {
        let disk_start = dir_bytes(&state);
        let mut samples = Vec::new();
        let start = Instant::now();
        for n in 1..=o.small_jobs {
            let spec = pb::JobSpec {
                workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
                    numbers: Some(pb::sum_squares_spec::Numbers::Range(pb::NumberRange {
                        start: 0,
                        end: 10,
                    })),
                })),
                strategy: pb::Strategy::Sequential as i32,
                concurrency: 1,
                shards: Some(1),
                ..pb::JobSpec::default()
            };
            let id = runtime
                .block_on(client.submit_job(pb::SubmitJobRequest { spec: Some(spec) }))
                .expect("submit small")
                .into_inner()
                .job_id;
            runtime.block_on(wait_final(&mut client, id));
            if n % (o.small_jobs / 10).max(1) == 0 {
                samples.push((n, rss_kib(pid)));
            }
        }
        let first = samples.first().map_or(1, |s| s.1).max(1);
        let last = samples.last().map_or(0, |s| s.1);
        println!(
            "# {} small jobs in a row ({:.1} s)",
            o.small_jobs,
            start.elapsed().as_secs_f64()
        );
        for (n, kib) in &samples {
            println!("after {n:>6} jobs              RSS {:.1} MiB", mib(*kib));
        }
        println!(
            "RSS last / first sample      {:.3}",
            last as f64 / first as f64
        );
        let grown = dir_bytes(&state).saturating_sub(disk_start);
        println!(
            "state directory growth       {:.0} bytes per job",
            grown as f64 / o.small_jobs as f64
        );
    }
    drop(coordinator);
    let _ = std::fs::remove_dir_all(&state);
}
