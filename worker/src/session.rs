//! One attach stream's life: register, then take assignments (queued for the slots), cancels
//! and acknowledgements, send heartbeats, and drain on request.
//!
//! Policy when the stream breaks: shards leased on it are cancelled and their results dropped.
//! A lease lives exactly as long as the stream it was granted on: the coordinator re-queues the
//! shards of a broken stream (or of a restarted coordinator) with a new attempt, so results of
//! the old lease would be refused anyway. Nothing is lost, nothing counted twice.

use crate::connect::{self, BearerToken};
use crate::executor::{HttpConfig, Pace, Units};
use crate::settings::WorkerSettings;
use crate::slots::{Slots, Task};
use crate::system;
use anyhow::Context;
use concur_core::LeaseKey;
use concur_core::exec::ExecPermission;
use concur_core::plan::Unit;
use concur_core::protocol::{PROTOCOL_REVISION, ReceivedAssignment};
use concur_proto::pb::{self, from_worker_message::Msg as Out, to_worker_message::Msg as In};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

/// Messages queued towards the coordinator before senders wait.
const OUTBOUND_CAPACITY: usize = 256;

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The stream closed or broke: re-attach.
    Closed,
    /// Drained on request: stop.
    Drained,
}

/// One attach stream.
pub(crate) struct Session {
    register: pb::Register,
    /// Which programs exec shards may run here.
    exec: ExecPermission,
    /// Cancel flags of the leases granted on this stream that are not yet acknowledged.
    leases: HashMap<LeaseKey, Arc<AtomicBool>>,
    /// The pace of the jobs seen lately (their tuned limits, host gates), shared by their
    /// shards; the oldest is forgotten past [`PACED_JOBS`].
    paces: VecDeque<(u64, Pace)>,
}

/// Jobs whose pace a session keeps: more than run at once on any worker.
const PACED_JOBS: usize = 16;

impl Session {
    /// The pace of `assignment`'s job: the one its earlier shards here used, or a new one.
    /// Kept most recently used last; past [`PACED_JOBS`], the least recently used pace that no
    /// queued or running shard holds is forgotten (one still held stays: forgetting it would
    /// give the job's next shard a second limiter).
    fn pace(&mut self, assignment: &ReceivedAssignment) -> Pace {
        let job = assignment.lease.job_id.get();
        if let Some(at) = self.paces.iter().position(|(id, _)| *id == job) {
            let entry = self.paces.remove(at).expect("position is in range");
            let pace = entry.1.clone();
            self.paces.push_back(entry);
            return pace;
        }
        let pace = Pace::new(&assignment.pacing, assignment.concurrency);
        if !pace.is_paced() {
            return pace;
        }
        if self.paces.len() >= PACED_JOBS
            && let Some(idle) = self.paces.iter().position(|(_, p)| !p.in_use())
        {
            self.paces.remove(idle);
        }
        self.paces.push_back((job, pace.clone()));
        pace
    }
}

fn message(msg: Out) -> pb::FromWorkerMessage {
    pb::FromWorkerMessage { msg: Some(msg) }
}

/// The task for an assignment: its units, or why they cannot run.
fn task(
    assignment: ReceivedAssignment,
    cancel: Arc<AtomicBool>,
    outbound: &mpsc::Sender<pb::FromWorkerMessage>,
    permission: &ExecPermission,
) -> Task {
    let mut refused = None;
    let units = if let Some(command) = assignment.exec.clone() {
        // The coordinator should never send this; if it does, the units fail saying why.
        if !permission.allows(&command.program) {
            refused = Some(format!(
                "this worker does not allow exec of {}: start it with --allow-exec",
                command.program
            ));
        }
        Units::Exec {
            command: Arc::new(command),
            items: assignment
                .units
                .into_iter()
                .map(|u| match u {
                    Unit::Exec { arg, .. } => arg,
                    Unit::Fetch { .. } | Unit::SumSquares { .. } => String::new(),
                })
                .collect(),
        }
    } else if assignment
        .units
        .iter()
        .any(|u| matches!(u, Unit::Fetch { .. }))
    {
        Units::Fetch {
            urls: assignment
                .units
                .into_iter()
                .filter_map(|u| match u {
                    Unit::Fetch { url, .. } => Some(url),
                    Unit::SumSquares { .. } | Unit::Exec { .. } => None,
                })
                .collect(),
            http: HttpConfig {
                timeout: Duration::from_millis(assignment.fetch_timeout_ms.max(1)),
                policy: Arc::new(assignment.fetch_policy),
            },
            max_body_bytes: assignment.fetch_max_body_bytes,
        }
    } else {
        Units::SumSquares(
            assignment
                .units
                .iter()
                .filter_map(|u| match u {
                    Unit::SumSquares { lo, hi, .. } => Some((*lo, *hi)),
                    Unit::Fetch { .. } | Unit::Exec { .. } => None,
                })
                .collect(),
        )
    };
    Task {
        lease: assignment.lease.into(),
        work: match refused {
            Some(reason) => Err(reason),
            None => assignment
                .strategy
                .as_ref()
                .map(|_| units)
                .map_err(Clone::clone),
        },
        strategy: assignment
            .strategy
            .unwrap_or(concur_core::Strategy::Sequential),
        concurrency: assignment.concurrency,
        pace: Pace::default(),
        received: std::time::Instant::now(),
        cancel,
        outbound: outbound.clone(),
        results_apart: false,
    }
}

impl Session {
    pub(crate) fn new(opts: &WorkerSettings) -> Self {
        Self {
            register: pb::Register {
                host: opts.host_name.clone().unwrap_or_else(system::hostname),
                pid: std::process::id(),
                cores: system::cores(),
                slots: opts.slots,
                version: env!("CARGO_PKG_VERSION").to_string(),
                prefetch: opts.prefetch,
                protocol: PROTOCOL_REVISION,
                allow_exec: opts.exec.to_wire().0,
                exec_programs: opts.exec.to_wire().1,
            },
            exec: opts.exec.clone(),
            leases: HashMap::new(),
            paces: VecDeque::new(),
        }
    }

    /// Runs until the coordinator closes the stream, or a drain completes (`Ok`), or the stream
    /// cannot be opened (`Err`).
    pub(crate) async fn run(
        mut self,
        endpoint: &Endpoint,
        token: &BearerToken,
        drain: &mut watch::Receiver<bool>,
        drain_timeout: Duration,
        slots: &Slots,
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
        crate::metrics::global().attached(true);
        // A first-release coordinator reads unit results only apart from a shard's end.
        let results_apart = registered.protocol < 2;
        let interval = Duration::from_millis(registered.heartbeat_interval_ms.clamp(100, 60_000));
        let mut heartbeat = tokio::time::interval(interval);
        let mut drain_deadline: Option<Instant> = None;
        let far_future = Instant::now() + Duration::from_secs(86_400 * 365);
        let result = loop {
            if drain_deadline.is_some() && self.leases.is_empty() {
                break Ok(SessionEnd::Drained);
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::Assign(assign)) })) => {
                        self.take(vec![assign], slots, &outbound, results_apart);
                    }
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::AssignMany(many)) })) => {
                        self.take(many.shards, slots, &outbound, results_apart);
                    }
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::Cancel(cancel)) })) => {
                        if let Some(lease) = cancel.lease
                            && let Some(flag) = self.leases.remove(&LeaseKey::from(lease))
                        {
                            info!(job_id = lease.job_id, shard_id = lease.shard_id, reason = %cancel.reason, "cancelling shard");
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::Accepted(accepted)) })) => {
                        // Committed by the coordinator: this shard is done for good.
                        if let Some(lease) = accepted.lease {
                            self.leases.remove(&LeaseKey::from(lease));
                        }
                    }
                    Ok(Some(pb::ToWorkerMessage { msg: Some(In::AcceptedMany(accepted)) })) => {
                        for lease in accepted.leases {
                            self.leases.remove(&LeaseKey::from(lease));
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
                    let beat = pb::Heartbeat { running: slots.executions() };
                    if outbound.try_send(message(Out::Heartbeat(beat))).is_err() {
                        debug!("outbound queue full; heartbeat skipped");
                    }
                }
                _ = drain.changed(), if drain_deadline.is_none() => {
                    info!(running = self.leases.len(), "draining: finishing running shards");
                    let _ = outbound.send(message(Out::Drain(pb::Drain {}))).await;
                    drain_deadline = Some(Instant::now() + drain_timeout);
                }
                () = tokio::time::sleep_until(drain_deadline.unwrap_or(far_future)), if drain_deadline.is_some() => {
                    warn!(running = self.leases.len(), "drain timeout: handing the remaining shards back");
                    break Ok(SessionEnd::Drained);
                }
            }
        };
        crate::metrics::global().attached(false);
        // Drop policy: the coordinator re-queues these shards itself.
        for flag in self.leases.values() {
            flag.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Queues assignments for the slots, all at once.
    fn take(
        &mut self,
        assignments: Vec<pb::AssignShard>,
        slots: &Slots,
        outbound: &mpsc::Sender<pb::FromWorkerMessage>,
        results_apart: bool,
    ) {
        let mut tasks = Vec::with_capacity(assignments.len());
        for assign in assignments {
            if assign.lease.is_none() {
                warn!("assignment without a lease: ignored");
                continue;
            }
            let assignment = ReceivedAssignment::from(assign);
            let cancel = Arc::new(AtomicBool::new(false));
            self.leases.insert(assignment.lease, cancel.clone());
            debug!(lease = %assignment.lease, "shard assigned");
            let pace = self.pace(&assignment);
            let mut task = task(assignment, cancel, outbound, &self.exec);
            task.results_apart = results_apart;
            task.pace = pace;
            tasks.push(task);
        }
        slots.push(tasks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concur_core::protocol::ExecCommand;
    use concur_core::{Attempt, JobId, ShardId};

    fn exec_assignment(program: &str) -> ReceivedAssignment {
        ReceivedAssignment {
            pacing: Default::default(),
            lease: LeaseKey {
                job_id: JobId(1),
                shard_id: ShardId(0),
                attempt: Attempt(1),
            },
            strategy: Ok(concur_core::Strategy::Sequential),
            concurrency: 1,
            units: vec![Unit::Exec {
                item: 0,
                arg: "x".into(),
            }],
            fetch_timeout_ms: 0,
            fetch_max_body_bytes: 0,
            fetch_policy: Default::default(),
            exec: Some(ExecCommand {
                program: program.into(),
                args: Vec::new(),
                timeout_ms: 1000,
            }),
        }
    }

    #[test]
    fn an_exec_shard_this_worker_does_not_allow_fails_saying_why() {
        let (outbound, _inbound) = mpsc::channel(1);
        let cancel = Arc::new(AtomicBool::new(false));
        let denied = task(
            exec_assignment("true"),
            cancel.clone(),
            &outbound,
            &ExecPermission::Denied,
        );
        let error = denied.work.err().unwrap_or_default();
        assert_eq!(
            error,
            "this worker does not allow exec of true: start it with --allow-exec"
        );
        let listed = ExecPermission::Only(vec!["true".into()]);
        let other = task(exec_assignment("sh"), cancel.clone(), &outbound, &listed);
        assert!(other.work.is_err());
        let allowed = task(exec_assignment("true"), cancel, &outbound, &listed);
        assert!(matches!(allowed.work, Ok(Units::Exec { ref items, .. }) if items == &["x"]));
    }
}
