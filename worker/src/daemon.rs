//! The worker daemon: one `Attach` stream per session, re-established with capped exponential
//! backoff and jitter when it breaks.
//!
//! Policy when the stream breaks: shards running at that moment are cancelled and their results
//! dropped. A lease lives exactly as long as the stream it was granted on: the coordinator
//! re-queues the shards of a broken stream (or of a restarted coordinator) with a new attempt,
//! so results of the old lease would be refused anyway. Nothing is lost, nothing counted twice.
//!
//! Drain (SIGTERM): the worker tells the coordinator it is draining (no new shards), waits until
//! every running shard is finished *and acknowledged* as committed, then detaches. Past
//! `--drain-timeout` it cancels what is left and detaches, which hands those shards back.

use crate::connect::{self, BearerToken};
use crate::executor::{HttpConfig, ShardWork, run_shard};
use crate::settings::WorkerSettings;
use crate::system;
use anyhow::Context;
use concur_core::Outcome;
use concur_core::policy::HostPolicy;
use concur_proto::convert::{strategy_from_i32, unit_result};
use concur_proto::pb::{self, from_worker_message::Msg as Out, to_worker_message::Msg as In};
use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

/// Results per `ItemResults` message at most.
const RESULT_BATCH: usize = 1024;
/// A partial batch is sent after this long.
const RESULT_FLUSH: Duration = Duration::from_millis(100);
/// Messages queued towards the coordinator before senders wait.
const OUTBOUND_CAPACITY: usize = 256;
/// First and largest pause between attach attempts.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
enum SessionEnd {
    /// The stream closed or broke: re-attach.
    Closed,
    /// Drained on request: stop.
    Drained,
}

/// Attaches and serves shards until `shutdown` completes.
///
/// # Errors
/// The coordinator address or TLS settings are invalid, the coordinator refuses the worker's
/// credentials, or `--max-attach-failures` was reached.
pub async fn run(
    opts: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    system::raise_fd_limit();
    let url = opts.coordinator.clone();
    let endpoint = connect::endpoint(&opts)?;
    let token = BearerToken::new(opts.token.as_ref())?;
    let (drain_sender, mut drain) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        info!("shutdown requested: draining");
        let _ = drain_sender.send(true);
    });
    let mut failures = 0u32;
    let mut backoff = BACKOFF_START;
    loop {
        if *drain.borrow() {
            return Ok(());
        }
        let session = Session::new(&opts);
        match session
            .run(&endpoint, &token, &mut drain, opts.drain_timeout)
            .await
        {
            Ok(SessionEnd::Drained) => {
                info!("drained; detached from the coordinator");
                return Ok(());
            }
            Ok(SessionEnd::Closed) => {
                info!("stream to coordinator closed; re-attaching");
                failures = 0;
                backoff = BACKOFF_START;
            }
            Err(e) if refused_credentials(&e) => {
                // Retrying cannot help: the operator must fix the token or certificate.
                return Err(e.context(format!(
                    "the coordinator at {url} refused this worker: set --token-file / CONCUR_WORKER_TOKEN to its worker token (and --tls-cert/--tls-key if it requires client certificates)"
                )));
            }
            Err(e) => {
                failures += 1;
                warn!(cause = %format!("{e:#}"), coordinator = %url, "attach failed");
                if opts.max_attach_failures != 0 && failures >= opts.max_attach_failures {
                    return Err(e.context(format!("cannot attach to coordinator at {url}")));
                }
            }
        }
        let jitter = rand::rng().random_range(0.5..1.5);
        tokio::select! {
            () = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
            _ = drain.changed() => return Ok(()),
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Whether an attach error is the coordinator refusing our credentials.
fn refused_credentials(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<tonic::Status>().is_some_and(|status| {
            matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            )
        })
    })
}

/// One attach stream's life.
struct Session {
    register: pb::Register,
    /// Cancel flags of running shards, by (job, shard, attempt).
    running: HashMap<(u64, u32, u32), Arc<AtomicBool>>,
}

impl Session {
    fn new(opts: &WorkerSettings) -> Self {
        Self {
            register: pb::Register {
                host: opts.host_name.clone().unwrap_or_else(system::hostname),
                pid: std::process::id(),
                cores: system::cores(),
                slots: opts.slots,
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            running: HashMap::new(),
        }
    }

    /// Runs until the coordinator closes the stream, or a drain completes (`Ok`), or the stream
    /// cannot be opened (`Err`).
    async fn run(
        mut self,
        endpoint: &Endpoint,
        token: &BearerToken,
        drain: &mut watch::Receiver<bool>,
        drain_timeout: Duration,
    ) -> anyhow::Result<SessionEnd> {
        let mut client = tokio::select! {
            client = connect::connect(endpoint, token) => client?,
            _ = drain.changed() => return Ok(SessionEnd::Drained),
        };
        let (outbound, receiver) = mpsc::channel(OUTBOUND_CAPACITY);
        outbound
            .send(message(Out::Register(self.register.clone())))
            .await
            .ok();
        let mut inbound = client
            .attach(ReceiverStream::new(receiver))
            .await
            .context("attaching")?
            .into_inner();
        let registered = match inbound.message().await.context("registering")? {
            Some(pb::ToWorkerMessage {
                msg: Some(In::Registered(registered)),
            }) => registered,
            other => anyhow::bail!("expected Registered, got {other:?}"),
        };
        info!(worker_id = registered.worker_id, "attached to coordinator");
        let interval = Duration::from_millis(registered.heartbeat_interval_ms.clamp(100, 60_000));
        let mut heartbeat = tokio::time::interval(interval);
        let (done_sender, mut done) = mpsc::unbounded_channel::<((u64, u32, u32), bool)>();
        let mut drain_deadline: Option<Instant> = None;
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
        let result = loop {
            if drain_deadline.is_some() && self.running.is_empty() {
                break Ok(SessionEnd::Drained);
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::Assign(assign)) })) => {
                        self.start_shard(assign, &outbound, &done_sender);
                    }
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::Cancel(cancel)) })) => {
                        if let Some(lease) = cancel.lease {
                            let key = (lease.job_id, lease.shard_id, lease.attempt);
                            if let Some(flag) = self.running.remove(&key) {
                                info!(job_id = lease.job_id, shard_id = lease.shard_id, reason = %cancel.reason, "cancelling shard");
                                flag.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::Accepted(accepted)) })) => {
                        // Committed by the coordinator: this shard is done for good.
                        if let Some(lease) = accepted.lease {
                            self.running.remove(&(lease.job_id, lease.shard_id, lease.attempt));
                        }
                    }
                    Ok(Some(_)) => debug!("ignoring unexpected message"),
                    Ok(None) => break Ok(SessionEnd::Closed),
                    Err(status) => {
                        info!(cause = %status.message(), "stream to coordinator broke");
                        break Ok(SessionEnd::Closed);
                    }
                },
                _ = heartbeat.tick() => {
                    let beat = pb::Heartbeat { running: self.running.len() as u32 };
                    if outbound.try_send(message(Out::Heartbeat(beat))).is_err() {
                        debug!("outbound queue full; heartbeat skipped");
                    }
                }
                Some((key, cancelled)) = done.recv() => {
                    // Finished shards stay until acknowledged; cancelled ones are gone now.
                    if cancelled {
                        self.running.remove(&key);
                    }
                }
                _ = drain.changed(), if drain_deadline.is_none() => {
                    info!(running = self.running.len(), "draining: finishing running shards");
                    let _ = outbound.send(message(Out::Drain(pb::Drain {}))).await;
                    drain_deadline = Some(Instant::now() + drain_timeout);
                }
                () = tokio::time::sleep_until(drain_deadline.unwrap_or(far_future)), if drain_deadline.is_some() => {
                    warn!(running = self.running.len(), "drain timeout: handing the remaining shards back");
                    break Ok(SessionEnd::Drained);
                }
            }
        };
        // Drop policy: the coordinator re-queues these shards itself.
        for flag in self.running.values() {
            flag.store(true, Ordering::Relaxed);
        }
        result
    }

    fn start_shard(
        &mut self,
        assign: pb::AssignShard,
        outbound: &mpsc::Sender<pb::FromWorkerMessage>,
        done: &mpsc::UnboundedSender<((u64, u32, u32), bool)>,
    ) {
        let Some(lease) = assign.lease else {
            return warn!("assignment without a lease: ignored");
        };
        let key = (lease.job_id, lease.shard_id, lease.attempt);
        let cancel = Arc::new(AtomicBool::new(false));
        self.running.insert(key, cancel.clone());
        info!(
            job_id = lease.job_id,
            shard_id = lease.shard_id,
            attempt = lease.attempt,
            units = assign.fetch.len() + assign.sum_squares.len(),
            "shard assigned"
        );
        let outbound = outbound.clone();
        let done = done.clone();
        tokio::spawn(async move {
            run_assignment(assign, lease, cancel.clone(), outbound).await;
            let _ = done.send((key, cancel.load(Ordering::Relaxed)));
        });
    }
}

/// Runs one assignment off the async runtime and streams its results in batches.
async fn run_assignment(
    assign: pb::AssignShard,
    lease: pb::LeaseKey,
    cancel: Arc<AtomicBool>,
    outbound: mpsc::Sender<pb::FromWorkerMessage>,
) {
    let strategy = match strategy_from_i32(assign.strategy) {
        Ok(strategy) => strategy,
        Err(e) => {
            let finished = pb::ShardFinished {
                lease: Some(lease),
                error: e.to_string(),
                ..pb::ShardFinished::default()
            };
            let _ = outbound.send(message(Out::Finished(finished))).await;
            return;
        }
    };
    let work = if assign.fetch.is_empty() {
        ShardWork::SumSquares(assign.sum_squares.iter().map(|u| (u.lo, u.hi)).collect())
    } else {
        ShardWork::Fetch {
            urls: assign.fetch.into_iter().map(|u| u.url).collect(),
            http: HttpConfig {
                timeout: Duration::from_millis(assign.fetch_timeout_ms.max(1)),
                policy: Arc::new(HostPolicy {
                    allow: assign.allow_hosts,
                    deny: assign.deny_hosts,
                    deny_private: assign.deny_private,
                }),
            },
            max_body_bytes: assign.fetch_max_body_bytes,
        }
    };
    let (sender, mut results) = mpsc::unbounded_channel::<(u32, Outcome)>();
    let concurrency = assign.concurrency;
    let executor_cancel = cancel.clone();
    let execution = tokio::task::spawn_blocking(move || {
        // `sender` lives in this closure: the result stream ends when the shard does.
        let emit = move |unit: u32, outcome: Outcome| {
            let _ = sender.send((unit, outcome));
        };
        run_shard(&work, strategy, concurrency, &executor_cancel, &emit)
    });
    let mut batch = Vec::new();
    let mut flush = tokio::time::interval(RESULT_FLUSH);
    loop {
        tokio::select! {
            result = results.recv() => match result {
                Some((unit, outcome)) => {
                    batch.push(unit_result(unit, &outcome));
                    if batch.len() >= RESULT_BATCH {
                        send_batch(&outbound, &lease, &mut batch).await;
                    }
                }
                None => break,
            },
            _ = flush.tick() => send_batch(&outbound, &lease, &mut batch).await,
        }
    }
    send_batch(&outbound, &lease, &mut batch).await;
    let run = execution.await.unwrap_or_else(|e| {
        // A bug in an executor fails the shard's remaining units, never the whole worker.
        warn!(cause = %e, "executor panicked");
        crate::executor::ShardRun {
            run_s: 0.0,
            cpu_s: 0.0,
            concurrency,
            error: Some(format!("executor failed: {e}")),
        }
    });
    if cancel.load(Ordering::Relaxed) {
        // The coordinator no longer holds this lease; anything more would be discarded.
        return;
    }
    let finished = pb::ShardFinished {
        lease: Some(lease),
        run_s: run.run_s,
        cpu_s: run.cpu_s,
        concurrency: run.concurrency,
        error: run.error.unwrap_or_default(),
    };
    info!(
        job_id = lease.job_id,
        shard_id = lease.shard_id,
        run_s = run.run_s,
        "shard finished"
    );
    let _ = outbound.send(message(Out::Finished(finished))).await;
}

async fn send_batch(
    outbound: &mpsc::Sender<pb::FromWorkerMessage>,
    lease: &pb::LeaseKey,
    batch: &mut Vec<pb::UnitResult>,
) {
    if batch.is_empty() {
        return;
    }
    let results = pb::ItemResults {
        lease: Some(*lease),
        results: std::mem::take(batch),
    };
    let _ = outbound.send(message(Out::Results(results))).await;
}

fn message(msg: Out) -> pb::FromWorkerMessage {
    pb::FromWorkerMessage { msg: Some(msg) }
}
