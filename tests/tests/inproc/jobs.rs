//! Jobs end to end, in process: every strategy exact across two workers, a cancel, filters.

use crate::harness::{
    Served, Worker, assert_exact, items, submit, sum_squares, wait, wait_for_workers,
};
use concur_coordinator::CoordinatorConfig;
use concur_proto::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_is_exact_across_two_workers() {
    let served = Served::start(CoordinatorConfig::default()).await;
    let _workers = [Worker::start(&served.url, 1), Worker::start(&served.url, 2)];
    let mut client = served.client().await;
    wait_for_workers(&mut client, 2).await;
    for strategy in [
        pb::Strategy::Sequential,
        pb::Strategy::Threads,
        pb::Strategy::Async,
        pb::Strategy::Rayon,
        pb::Strategy::AsyncBlocking,
        pb::Strategy::AsyncCpu,
    ] {
        let job = submit(&mut client, sum_squares(1000, 1100, strategy, 5)).await;
        assert_eq!(
            wait(&mut client, job).await,
            pb::JobState::Succeeded,
            "{strategy:?}"
        );
        let all = items(&mut client, job, pb::ItemFilter::All).await;
        assert_eq!(all.len(), 100, "{strategy:?}");
        assert_exact(&all);
        let report = client
            .get_job(pb::GetJobRequest { job_id: job })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (report.items_ok, report.shards_done),
            (100, 5),
            "{strategy:?}"
        );
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_keeps_its_finished_items_and_fails_none() {
    let served = Served::start(CoordinatorConfig::default()).await;
    let _worker = Worker::start(&served.url, 1);
    let mut client = served.client().await;
    wait_for_workers(&mut client, 1).await;
    // One quick shard, then long ones.
    let job = submit(
        &mut client,
        sum_squares(3_000_000_000, 3_000_000_004, pb::Strategy::Sequential, 4),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let state = client
        .cancel_job(pb::CancelJobRequest { job_id: job })
        .await
        .unwrap()
        .into_inner()
        .state();
    assert_eq!(state, pb::JobState::Cancelled);
    assert_eq!(wait(&mut client, job).await, pb::JobState::Cancelled);
    let report = client
        .get_job(pb::GetJobRequest { job_id: job })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.items_failed, 0, "unfinished items are not failed");
    let unfinished = items(&mut client, job, pb::ItemFilter::Unfinished).await;
    assert_eq!(
        unfinished.len() as u64,
        report.items_total - report.items_ok
    );
    assert!(unfinished.iter().all(|i| !i.reported));
    served.stop().await;
}
