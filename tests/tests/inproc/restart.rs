//! A coordinator stopped mid-job and opened again on its state directory, in process: the job
//! finishes exactly once, workers re-attach on their own, a drained worker detaches cleanly.

use crate::harness::{
    Served, Worker, assert_exact, items, submit, sum_squares, wait, wait_for_workers,
};
use concur_coordinator::CoordinatorConfig;
use concur_proto::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_coordinator_restart_in_process() {
    let dir = concur_tests::scratch_dir("inproc-restart");
    let config = || CoordinatorConfig {
        state_dir: Some(dir.clone()),
        ..CoordinatorConfig::default()
    };
    let served = Served::start(config()).await;
    let address = served.url.trim_start_matches("http://").to_string();
    let worker = Worker::start(&served.url, 1);
    let mut client = served.client().await;
    wait_for_workers(&mut client, 1).await;
    let job = submit(
        &mut client,
        sum_squares(1_200_000_000, 1_200_000_006, pb::Strategy::Sequential, 3),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    served.stop().await;

    let served = Served::start_on(&address, config()).await;
    let mut client = served.client().await;
    assert_eq!(wait(&mut client, job).await, pb::JobState::Succeeded);
    let all = items(&mut client, job, pb::ItemFilter::All).await;
    assert_eq!(all.len(), 6);
    assert_exact(&all);
    worker.drain().await;
    served.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
