//! Hostile input against a real coordinator process: malformed protobuf, absurd specs, limits,
//! oversized messages, rogue workers and slow-loris connections. None may crash it or corrupt a
//! job: afterwards a normal job still completes with every value exact.

use bytes::{Buf, BufMut};
use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_proto::pb::worker_service_client::WorkerServiceClient;
use concur_tests::{assert_sums_exact, cli, start_coordinator, start_worker, wait_for_workers};
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Sends arbitrary bytes as a gRPC message and reads the answer as bytes.
#[derive(Debug, Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

async fn channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn sum_spec(numbers: pb::sum_squares_spec::Numbers, shards: Option<u32>) -> pb::SubmitJobRequest {
    pb::SubmitJobRequest {
        spec: Some(pb::JobSpec {
            workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
                numbers: Some(numbers),
            })),
            strategy: pb::Strategy::Sequential as i32,
            concurrency: 1,
            shards,
            ..pb::JobSpec::default()
        }),
    }
}

fn fetch_spec(urls: Vec<String>) -> pb::SubmitJobRequest {
    pb::SubmitJobRequest {
        spec: Some(pb::JobSpec {
            workload: Some(pb::job_spec::Workload::Fetch(pb::FetchSpec {
                urls,
                ..pb::FetchSpec::default()
            })),
            strategy: pb::Strategy::Async as i32,
            concurrency: 4,
            ..pb::JobSpec::default()
        }),
    }
}

fn range(start: u64, end: u64) -> pb::sum_squares_spec::Numbers {
    pb::sum_squares_spec::Numbers::Range(pb::NumberRange { start, end })
}

fn assert_refused(
    result: Result<tonic::Response<pb::SubmitJobResponse>, Status>,
    code: Code,
    needle: &str,
) {
    let status = result.expect_err("hostile submission accepted");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status
            .message()
            .to_lowercase()
            .contains(&needle.to_lowercase()),
        "expected {needle:?} in {:?}",
        status.message()
    );
}

async fn malformed_and_absurd_submissions(url: &str) {
    // Bytes that are not a protobuf message at all.
    let mut raw = tonic::client::Grpc::new(channel(url).await);
    raw.ready().await.unwrap();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/concur.v1.JobService/SubmitJob");
    let garbage = vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80, 0x80];
    let answer = raw
        .unary(tonic::Request::new(garbage), path, RawCodec)
        .await;
    assert!(answer.is_err(), "malformed protobuf accepted");

    let mut jobs = JobServiceClient::new(channel(url).await);
    let no_workload = pb::SubmitJobRequest {
        spec: Some(pb::JobSpec::default()),
    };
    assert_refused(
        jobs.submit_job(no_workload).await,
        Code::InvalidArgument,
        "workload",
    );
    assert_refused(
        jobs.submit_job(pb::SubmitJobRequest { spec: None }).await,
        Code::InvalidArgument,
        "spec",
    );
    let mut bad_strategy = sum_spec(range(1, 5), None);
    bad_strategy.spec.as_mut().unwrap().strategy = 99;
    assert_refused(
        jobs.submit_job(bad_strategy).await,
        Code::InvalidArgument,
        "strategy",
    );
    assert_refused(
        jobs.submit_job(sum_spec(range(1, 5), Some(0))).await,
        Code::InvalidArgument,
        "shards",
    );
    assert_refused(
        jobs.submit_job(sum_spec(range(5, 5), None)).await,
        Code::InvalidArgument,
        "empty range",
    );
    assert_refused(
        jobs.submit_job(sum_spec(range(0, u64::MAX), None)).await,
        Code::InvalidArgument,
        "overflows",
    );
    assert_refused(
        jobs.submit_job(sum_spec(range(0, 5), Some(5_000_000)))
            .await,
        Code::InvalidArgument,
        "shards",
    );
    let too_many: Vec<String> = (0..1001)
        .map(|i| format!("http://example.com/{i}"))
        .collect();
    assert_refused(
        jobs.submit_job(fetch_spec(too_many)).await,
        Code::InvalidArgument,
        "items",
    );
    let long = format!("http://example.com/{}", "a".repeat(9000));
    assert_refused(
        jobs.submit_job(fetch_spec(vec![long])).await,
        Code::InvalidArgument,
        "longer than",
    );
    assert_refused(
        jobs.submit_job(fetch_spec(vec!["file:///etc/passwd".into()]))
            .await,
        Code::InvalidArgument,
        "scheme",
    );
    assert_refused(
        jobs.submit_job(fetch_spec(vec!["http://169.254.169.254/latest".into()]))
            .await,
        Code::InvalidArgument,
        "private",
    );
    // A message over the coordinator's size limit is refused without being buffered whole.
    let huge: Vec<String> = (0..800)
        .map(|i| format!("http://example.com/{i}/{}", "b".repeat(100_000)))
        .collect();
    let answer = jobs.submit_job(fetch_spec(huge)).await;
    assert!(answer.is_err(), "an 80 MB request was accepted");
}

async fn limits_on_unfinished_jobs(url: &str) {
    let mut jobs = JobServiceClient::new(channel(url).await);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            jobs.submit_job(sum_spec(range(1, 3), None))
                .await
                .unwrap()
                .into_inner()
                .job_id,
        );
    }
    assert_refused(
        jobs.submit_job(sum_spec(range(1, 3), None)).await,
        Code::ResourceExhausted,
        "limit",
    );
    for job_id in ids {
        jobs.cancel_job(pb::CancelJobRequest { job_id })
            .await
            .unwrap();
    }
}

fn from_worker(msg: pb::from_worker_message::Msg) -> pb::FromWorkerMessage {
    pb::FromWorkerMessage { msg: Some(msg) }
}

async fn rogue_workers(url: &str) {
    use pb::from_worker_message::Msg;
    // Attach without registering first.
    let mut client = WorkerServiceClient::new(channel(url).await);
    let first = tokio_stream::iter(vec![from_worker(Msg::Heartbeat(pb::Heartbeat {
        running: 9,
    }))]);
    let status = client
        .attach(first)
        .await
        .expect_err("attach without Register accepted");
    assert_eq!(status.code(), Code::InvalidArgument);

    // Register, then send results for leases it does not hold, duplicates, absurd indexes and
    // durations, a huge error text, a finish for a job that does not exist, a second Register.
    let lease = |job_id, shard_id, attempt| {
        Some(pb::LeaseKey {
            job_id,
            shard_id,
            attempt,
        })
    };
    let result = |unit, duration_s: f64| pb::UnitResult {
        unit,
        ok: true,
        duration_s,
        value_lo: 42,
        error: "e".repeat(1 << 20),
        ..pb::UnitResult::default()
    };
    let messages = vec![
        from_worker(Msg::Register(pb::Register {
            host: "h".repeat(10_000),
            pid: 1,
            cores: 0,
            slots: 0,
            version: "v".repeat(10_000),
            prefetch: u32::MAX,
            protocol: u32::MAX,
            allow_exec: true,
            exec_programs: vec!["p".repeat(10_000); 2000],
        })),
        from_worker(Msg::Results(pb::UnitResults {
            lease: lease(1, 0, 1),
            results: vec![
                result(0, f64::NAN),
                result(0, -1.0),
                result(u32::MAX, f64::INFINITY),
            ],
        })),
        from_worker(Msg::Results(pb::UnitResults {
            lease: None,
            results: vec![],
        })),
        from_worker(Msg::Finished(pb::ShardFinished {
            lease: lease(999_999, 7, 3),
            run_s: f64::NAN,
            ..pb::ShardFinished::default()
        })),
        from_worker(Msg::Register(pb::Register::default())),
        from_worker(pb::from_worker_message::Msg::Drain(pb::Drain {})),
    ];
    let mut client = WorkerServiceClient::new(channel(url).await);
    let mut inbound = client
        .attach(tokio_stream::iter(messages))
        .await
        .expect("registered")
        .into_inner();
    // It is told its worker id, then told to drop the leases it does not hold.
    let registered = inbound.message().await.unwrap().unwrap();
    assert!(matches!(
        registered.msg,
        Some(pb::to_worker_message::Msg::Registered(_))
    ));
    let mut cancels = 0;
    while let Ok(Ok(Some(message))) =
        tokio::time::timeout(Duration::from_secs(2), inbound.message()).await
    {
        if matches!(message.msg, Some(pb::to_worker_message::Msg::Cancel(_))) {
            cancels += 1;
        }
    }
    assert!(
        cancels >= 1,
        "the rogue worker was not told to drop foreign leases"
    );
}

#[test]
fn hostile_input_never_crashes_the_coordinator_or_corrupts_a_job() {
    let (mut coordinator, url) = start_coordinator(&[
        "--max-active-jobs",
        "3",
        "--max-items",
        "1000",
        "--deny-private",
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        malformed_and_absurd_submissions(&url).await;
        limits_on_unfinished_jobs(&url).await;
        rogue_workers(&url).await;
    });
    // Slow-loris: connections that start the HTTP/2 preface and stall, held during a real job.
    let address = url.trim_start_matches("http://");
    let stalled: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            let _ = std::io::Write::write_all(&mut stream, b"PRI * HTTP/2.0\r\n");
            stream
        })
        .collect();
    let _worker = start_worker(&url, 1);
    wait_for_workers(&url, 1);
    let out = cli(&[
        "--coordinator",
        &url,
        "--output",
        "json",
        "submit",
        "sum-squares",
        "100000..100040",
        "--shards",
        "4",
        "--wait",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(assert_sums_exact(&out.json()), 40);
    drop(stalled);
    assert!(
        coordinator
            .wait_timeout(Duration::from_millis(100))
            .is_none(),
        "the coordinator died"
    );
}
