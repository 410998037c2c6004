//! A job of a million items on a coordinator with a 2 s heartbeat timeout, while a client keeps
//! reading its report: no worker may be declared lost, no shard re-run, every item counted once.
//! (Before, submitting and reading such a job held the coordinator's lock for seconds, and
//! live workers were condemned for the coordinator's own silence.)

use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_tests::{start_coordinator, start_worker, wait_for_workers};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const ITEMS: usize = 1_000_000;

async fn worker_ids(client: &mut JobServiceClient<Channel>) -> BTreeSet<u64> {
    client
        .list_workers(pb::ListWorkersRequest {})
        .await
        .expect("list workers")
        .into_inner()
        .workers
        .iter()
        .map(|w| w.worker_id)
        .collect()
}

/// Reads every item of the job; returns how many there were.
async fn read_items(client: &mut JobServiceClient<Channel>, job_id: u64) -> usize {
    let request = pb::ListJobItemsRequest {
        job_id,
        ..pb::ListJobItemsRequest::default()
    };
    let mut stream = client
        .list_job_items(request)
        .await
        .expect("list items")
        .into_inner();
    let mut count = 0;
    while let Some(chunk) = stream.message().await.expect("item chunk") {
        count += chunk.items.len();
    }
    count
}

#[test]
fn a_million_items_while_the_report_is_read_lose_no_worker_and_rerun_no_shard() {
    let (_coordinator, url) =
        start_coordinator(&["--heartbeat-timeout", "2s", "--heartbeat-interval", "500ms"]);
    let _workers = [start_worker(&url, 1), start_worker(&url, 1)];
    wait_for_workers(&url, 2);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel = Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = JobServiceClient::new(channel).max_decoding_message_size(64 << 20);
        let before = worker_ids(&mut client).await;
        let spec = pb::JobSpec {
            workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
                numbers: Some(pb::sum_squares_spec::Numbers::List(pb::NumberList {
                    values: vec![7; ITEMS],
                })),
            })),
            strategy: pb::Strategy::Sequential as i32,
            concurrency: 1,
            ..pb::JobSpec::default()
        };
        let job_id = client
            .submit_job(pb::SubmitJobRequest { spec: Some(spec) })
            .await
            .expect("submit")
            .into_inner()
            .job_id;
        // Read the report over and over while the job runs, and once more at the end.
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut reads = 0;
        loop {
            let report = client
                .get_job(pb::GetJobRequest { job_id })
                .await
                .expect("get job")
                .into_inner();
            let finished = report.state >= pb::JobState::Succeeded as i32;
            assert_eq!(read_items(&mut client, job_id).await, ITEMS);
            reads += 1;
            if finished {
                assert_eq!(report.state, pb::JobState::Succeeded as i32, "{report:?}");
                assert_eq!(report.items_ok, ITEMS as u64);
                assert_eq!(report.stale_results_discarded, 0, "results were refused");
                break;
            }
            assert!(Instant::now() < deadline, "the job did not finish");
        }
        assert!(reads >= 2, "the report was read while the job ran");
        assert_eq!(
            worker_ids(&mut client).await,
            before,
            "a worker was declared lost"
        );
        let mut shards = client
            .list_job_shards(pb::ListJobShardsRequest {
                job_id,
                ..pb::ListJobShardsRequest::default()
            })
            .await
            .expect("shards")
            .into_inner();
        let mut count = 0;
        while let Some(chunk) = shards.message().await.expect("shard chunk") {
            for shard in chunk.shards {
                assert_eq!(shard.attempt, 1, "shard {} was re-run", shard.shard_id);
                count += 1;
            }
        }
        assert_eq!(count, 100, "a million items in shards of 10,000");
    });
}
