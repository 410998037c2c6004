//! Failover time, for `docs/ha.md`: two coordinators on one PostgreSQL database; kill -9 the
//! active one and time until the standby answers as the active coordinator (a `ListJobs`
//! that succeeds), then restart the killed one as the new standby; R rounds, alternating.
//!
//! Run (an empty database on a server you started, e.g. as in docs/ha.md):
//!
//!     cargo build --release --bins
//!     ./target/release/failover --state-url postgres://postgres@127.0.0.1:55432/bench [--rounds 5]

use concur_proto::pb;
use concur_tests::measure::Proc;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A coordinator on `port` sharing `url`; its gRPC URL.
fn coordinator(url: &str, port: u16) -> (Proc, String) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe.with_file_name("concur-coordinator"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-url", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a coordinator");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("its address");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

/// Whether the coordinator at `url` answers as the active one.
async fn active(url: &str) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(url.to_string()) else {
        return false;
    };
    let Ok(channel) = endpoint
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
    else {
        return false;
    };
    let mut client = pb::job_service_client::JobServiceClient::new(channel);
    client
        .list_jobs(pb::ListJobsRequest {
            states: Vec::new(),
            limit: 1,
        })
        .await
        .is_ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut url, mut rounds) = (None, 5usize);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--state-url" => url = args.next(),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .expect("--rounds N")
            }
            _ => {
                eprintln!("usage: failover --state-url postgres://… [--rounds 5]");
                std::process::exit(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("usage: failover --state-url postgres://… [--rounds 5]");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ports = [free_port(), free_port()];
    let wait_active = |target: &str, within: Duration| -> Duration {
        let start = Instant::now();
        while !runtime.block_on(active(target)) {
            assert!(start.elapsed() < within, "{target} did not become active");
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    };
    let mut procs = [Some(coordinator(&url, ports[0])), None];
    wait_active(
        &format!("http://127.0.0.1:{}", ports[0]),
        Duration::from_secs(30),
    );
    procs[1] = Some(coordinator(&url, ports[1]));
    // The standby has polled at least once.
    std::thread::sleep(Duration::from_secs(1));
    let mut times = Vec::new();
    let mut active_index = 0;
    for round in 1..=rounds {
        let standby = 1 - active_index;
        let standby_url = format!("http://127.0.0.1:{}", ports[standby]);
        let killed = procs[active_index].take().expect("the active one");
        drop(killed); // SIGKILL by its own PID, and reaped
        let took = wait_active(&standby_url, Duration::from_secs(60));
        println!(
            "round {round}: standby accepting work {:.2} s after kill -9",
            took.as_secs_f64()
        );
        times.push(took.as_secs_f64());
        procs[active_index] = Some(coordinator(&url, ports[active_index]));
        std::thread::sleep(Duration::from_secs(1));
        active_index = standby;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "failover after kill -9: median {:.2} s, min {:.2} s, max {:.2} s over {} rounds",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}
