//! Starting and stopping a coordinator and workers inside the test's own runtime.

use concur_coordinator::{Coordinator, CoordinatorConfig};
use concur_proto::pb;
use concur_proto::pb::job_service_client::JobServiceClient;
use concur_worker::WorkerSettings;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A running in-process coordinator; stopped (and its state stored) when dropped or stopped.
pub(crate) struct Served {
    pub(crate) url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Served {
    /// Opens `config`'s state and serves it on an ephemeral loopback port.
    pub(crate) async fn start(config: CoordinatorConfig) -> Self {
        Self::start_on("127.0.0.1:0", config).await
    }

    /// Serves on `address` (an earlier coordinator's, to restart it there).
    pub(crate) async fn start_on(address: &str, config: CoordinatorConfig) -> Self {
        let coordinator = Coordinator::open(config).expect("open the coordinator's state");
        let listener = TcpListener::bind(address).await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(coordinator.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops serving and waits until everything is stored.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("coordinator task")
                .expect("coordinator ran");
        }
    }

    /// A client of its job service.
    pub(crate) async fn client(&self) -> JobServiceClient<Channel> {
        let channel = Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .expect("connect");
        JobServiceClient::new(channel)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An in-process worker; drained when stopped, abandoned when dropped.
pub(crate) struct Worker {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    /// A worker with `slots` slots attached to `url`, retrying for ever.
    pub(crate) fn start(url: &str, slots: u32) -> Self {
        let settings = WorkerSettings {
            coordinator: url.to_string(),
            slots,
            host_name: Some("inproc".into()),
            max_attach_failures: 0,
            drain_timeout: Duration::from_secs(10),
            token: None,
            tls: None,
            max_threads: 64,
            prefetch: concur_worker::settings::DEFAULT_PREFETCH,
            metrics_listen: None,
            exec: Default::default(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(concur_worker::run(settings, async move {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Drains: running shards finish and are acknowledged, then the worker detaches.
    pub(crate) async fn drain(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("worker task").expect("worker ran");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Waits until `count` workers are attached.
pub(crate) async fn wait_for_workers(client: &mut JobServiceClient<Channel>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attached = client
            .list_workers(pb::ListWorkersRequest {})
            .await
            .map_or(0, |r| r.into_inner().workers.len());
        if attached >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{count} workers did not attach");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sum-squares job over `start..end`.
pub(crate) fn sum_squares(
    start: u64,
    end: u64,
    strategy: pb::Strategy,
    shards: u32,
) -> pb::JobSpec {
    pb::JobSpec {
        workload: Some(pb::job_spec::Workload::SumSquares(pb::SumSquaresSpec {
            numbers: Some(pb::sum_squares_spec::Numbers::Range(pb::NumberRange {
                start,
                end,
            })),
        })),
        strategy: strategy as i32,
        concurrency: 2,
        shards: Some(shards),
        ..pb::JobSpec::default()
    }
}

/// Submits `spec`; the job id.
pub(crate) async fn submit(client: &mut JobServiceClient<Channel>, spec: pb::JobSpec) -> u64 {
    client
        .submit_job(pb::SubmitJobRequest { spec: Some(spec) })
        .await
        .expect("submit")
        .into_inner()
        .job_id
}

/// Follows the job to its end (reading the stream to its end); its final state.
pub(crate) async fn wait(client: &mut JobServiceClient<Channel>, job_id: u64) -> pb::JobState {
    let mut stream = client
        .watch_job(pb::WatchJobRequest { job_id })
        .await
        .expect("watch")
        .into_inner();
    let mut state = pb::JobState::Unspecified;
    while let Some(progress) = stream.message().await.expect("progress") {
        state = progress.state();
    }
    state
}

/// Every item of the job, in order.
pub(crate) async fn items(
    client: &mut JobServiceClient<Channel>,
    job_id: u64,
    filter: pb::ItemFilter,
) -> Vec<pb::ItemOutcome> {
    let request = pb::ListJobItemsRequest {
        job_id,
        filter: filter as i32,
        ..pb::ListJobItemsRequest::default()
    };
    let mut stream = client
        .list_job_items(request)
        .await
        .expect("items")
        .into_inner();
    let mut items = Vec::new();
    while let Some(chunk) = stream.message().await.expect("item chunk") {
        items.extend(chunk.items);
    }
    items
}

/// Checks every item against the closed form.
pub(crate) fn assert_exact(items: &[pb::ItemOutcome]) {
    for item in items {
        let n: u64 = item.input.parse().expect("n");
        let expected = concur_core::kernel::closed_form(n).expect("fits");
        let value = concur_proto::convert::join_u128(item.value_hi, item.value_lo);
        assert!(item.ok && item.reported, "{item:?}");
        assert_eq!(value, expected, "n = {n}");
    }
}
