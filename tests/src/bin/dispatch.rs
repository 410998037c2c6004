//! Dispatch throughput, for `docs/benchmarks.md`:
//!
//! - `stock`: N empty shards (one item, n = 1) on real `concur-worker` processes (default
//!   settings), durable and in memory: µs per shard end to end, coordinator CPU per shard.
//! - `swarm`: W simulated workers in this process, each with its own connection, `Attach`
//!   stream and heartbeats, answering every assignment at once: shards/s, coordinator CPU per
//!   shard, coordinator RSS per attached worker and per shard.
//!
//! Run:
//!
//!     cargo build --release --bins
//!     ./target/release/dispatch stock [--shards 100000] [--workers 2] [--bin-dir DIR]
//!     ./target/release/dispatch swarm [--shards 100000] [--workers 1000] [--window 0]
//!
//! Add `--in-memory` for a coordinator without durable state (default: a temporary state
//! directory), `--legacy` to submit the way the first release understood.

use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_proto::pb::worker_service_client::WorkerServiceClient;
use concur_tests::measure::{Proc, mib, rss_kib, server};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

struct Options {
    mode: String,
    shards: u64,
    workers: u32,
    window: u32,
    in_memory: bool,
    bin_dir: PathBuf,
}

fn options() -> Options {
    let exe = std::env::current_exe().expect("own path");
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "stock".into());
    let mut o = Options {
        shards: 100_000,
        workers: if mode == "swarm" { 1000 } else { 2 },
        window: 0,
        in_memory: false,
        bin_dir: exe.parent().expect("bin dir").to_path_buf(),
        mode,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--shards" => o.shards = value().parse().expect("--shards N"),
            "--workers" => o.workers = value().parse().expect("--workers N"),
            "--window" => o.window = value().parse().expect("--window N"),
            "--in-memory" => o.in_memory = true,
            "--bin-dir" => o.bin_dir = PathBuf::from(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// User plus system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second.max(1.0)
}

fn empty_shards(shards: u64) -> pb::JobSpec {
    pb::JobSpec {
        workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
            numbers: Some(pb::sum_squares_spec::Numbers::List(pb::NumberList {
                values: vec![1; shards as usize],
            })),
        })),
        strategy: pb::Strategy::Sequential as i32,
        concurrency: 1,
        shards: Some(shards as u32),
        ..pb::JobSpec::default()
    }
}

async fn job_client(url: &str) -> JobServiceClient<Channel> {
    let channel = Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    JobServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

async fn attached(client: &mut JobServiceClient<Channel>) -> usize {
    client
        .list_workers(pb::ListWorkersRequest {})
        .await
        .map_or(0, |r| r.into_inner().workers.len())
}

async fn run_job(client: &mut JobServiceClient<Channel>, shards: u64) -> (u64, Duration) {
    let start = Instant::now();
    let job_id = client
        .submit_job(pb::SubmitJobRequest {
            spec: Some(empty_shards(shards)),
        })
        .await
        .expect("submit")
        .into_inner()
        .job_id;
    let mut stream = client
        .watch_job(pb::WatchJobRequest { job_id })
        .await
        .expect("watch")
        .into_inner();
    let mut state = 0;
    while let Ok(Some(progress)) = stream.message().await {
        state = progress.state;
    }
    assert_eq!(
        state,
        pb::JobState::Succeeded as i32,
        "job {job_id} did not succeed"
    );
    (job_id, start.elapsed())
}

/// One simulated worker: attaches, heartbeats, and finishes every assignment at once.
async fn simulated_worker(channel: Channel, window: u32, finished: Arc<AtomicU64>) {
    let mut client = WorkerServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let (outbound, receiver) = mpsc::channel(1024);
    let register = pb::Register {
        host: "swarm".into(),
        pid: std::process::id(),
        cores: 1,
        slots: 1,
        version: "swarm".into(),
        prefetch: window,
        protocol: concur_core::protocol::PROTOCOL_REVISION,
    };
    let message = |msg| pb::FromWorkerMessage { msg: Some(msg) };
    use pb::from_worker_message::Msg as Out;
    use pb::to_worker_message::Msg as In;
    outbound.send(message(Out::Register(register))).await.ok();
    let Ok(response) = client.attach(ReceiverStream::new(receiver)).await else {
        return;
    };
    let mut inbound = response.into_inner();
    let beats = outbound.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        loop {
            interval.tick().await;
            let beat = pb::Heartbeat { running: 0 };
            if beats.send(message(Out::Heartbeat(beat))).await.is_err() {
                return;
            }
        }
    });
    while let Ok(Some(message_in)) = inbound.message().await {
        let assignments = match message_in.msg {
            Some(In::Assign(assign)) => vec![assign],
            Some(In::AssignMany(many)) => many.shards,
            _ => continue,
        };
        for assign in assignments {
            let results = assign
                .sum_squares
                .iter()
                .enumerate()
                .map(|(unit, u)| pb::UnitResult {
                    unit: unit as u32,
                    ok: true,
                    value_lo: concur_core::kernel::sum_squares_range(u.lo, u.hi) as u64,
                    ..pb::UnitResult::default()
                })
                .collect();
            let done = pb::ShardFinished {
                lease: assign.lease,
                results,
                ..pb::ShardFinished::default()
            };
            if outbound.send(message(Out::Finished(done))).await.is_err() {
                return;
            }
            finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let o = options();
    raise_fd_limit();
    let state = std::env::temp_dir().join(format!("concur-dispatch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let (coordinator, url) = server({
        let mut c = Command::new(o.bin_dir.join("concur-coordinator"));
        c.args(["--listen", "127.0.0.1:0", "--max-shards", "10000000"]);
        if o.in_memory {
            c.arg("--in-memory");
        } else {
            c.arg("--state-dir").arg(&state);
        }
        c
    });
    let pid = coordinator.0.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let storage = if o.in_memory { "in memory" } else { "durable" };
    let idle = rss_kib(pid);
    let mut client = runtime.block_on(job_client(&url));
    let _processes: Vec<Proc>;
    let finished = Arc::new(AtomicU64::new(0));
    match o.mode.as_str() {
        "stock" => {
            _processes = (0..o.workers)
                .map(|_| {
                    let child = Command::new(o.bin_dir.join("concur-worker"))
                        .args(["--coordinator", &url])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("worker");
                    Proc(child)
                })
                .collect();
        }
        "swarm" => {
            _processes = Vec::new();
            let endpoint = Endpoint::from_shared(url.clone()).unwrap();
            for _ in 0..o.workers {
                let channel = runtime.block_on(endpoint.connect()).expect("connect");
                runtime.spawn(simulated_worker(channel, o.window, finished.clone()));
            }
        }
        other => panic!("unknown mode {other} (stock or swarm)"),
    }
    let start = Instant::now();
    while runtime.block_on(attached(&mut client)) < o.workers as usize {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "workers did not attach"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let attach_s = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let with_workers = rss_kib(pid);
    // A warm-up job, then the measured one.
    runtime.block_on(run_job(&mut client, 1000.min(o.shards)));
    let cpu_before = cpu_seconds(pid);
    let (_, wall) = runtime.block_on(run_job(&mut client, o.shards));
    let cpu = cpu_seconds(pid) - cpu_before;
    let peak = rss_kib(pid);
    let per_shard_us = wall.as_secs_f64() * 1e6 / o.shards as f64;
    println!(
        "# dispatch {}: {} empty shards on {} {} workers, {storage}",
        o.mode, o.shards, o.workers, o.mode
    );
    println!("workers attached in           {attach_s:.2} s");
    println!("coordinator RSS idle          {:.1} MiB", mib(idle));
    println!(
        "coordinator RSS per worker    {:.1} KiB",
        with_workers.saturating_sub(idle) as f64 / f64::from(o.workers)
    );
    println!("wall                          {:.3} s", wall.as_secs_f64());
    println!("per shard                     {per_shard_us:.2} µs");
    println!(
        "shards/s                      {:.0}",
        o.shards as f64 / wall.as_secs_f64()
    );
    println!(
        "coordinator CPU per shard     {:.2} µs ({:.2} s)",
        cpu * 1e6 / o.shards as f64,
        cpu
    );
    println!(
        "coordinator RSS after the job {:.1} MiB ({:.0} B per shard over the attached RSS)",
        mib(peak),
        peak.saturating_sub(with_workers) as f64 * 1024.0 / o.shards as f64
    );
    drop(coordinator);
    let _ = std::fs::remove_dir_all(&state);
}
