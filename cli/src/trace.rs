//! `concur-cli job ID --trace FILE`: the job as a Chrome Trace Event file, which Perfetto
//! (ui.perfetto.dev) and chrome://tracing open. A process per worker (named host:pid), a
//! thread per slot carrying its shards, and under it a thread per lane (thread or task)
//! carrying the shard's items; every event a complete event ("X") with its attempt, status and
//! bytes. Times are the coordinator's clock, in microseconds after the job's submission (see
//! docs/observability.md for how worker times are placed on it).
//!
//! Shards are read first (one small row each), then items are streamed and written as they
//! arrive, so a job of a million items costs a few MiB however large the file.

use crate::client::Client;
use crate::exit::CliError;
use concur_core::report::ShardRow;
use concur_proto::convert::join_u128;
use concur_proto::pb;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

/// Thread ids per slot: the slot's own, then one per lane.
const TIDS_PER_SLOT: u64 = 100_000;

fn micros(seconds: f64) -> f64 {
    (seconds * 1e6 * 1000.0).round() / 1000.0
}

/// Where a shard ran, for its items.
struct Placed {
    pid: u64,
    slot_tid: u64,
    start_s: f64,
    attempt: u32,
}

/// What was written, for the CLI's message.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub(crate) processes: usize,
    pub(crate) shards: u64,
    pub(crate) items: u64,
}

struct Out<W: Write> {
    writer: W,
    first: bool,
}

impl<W: Write> Out<W> {
    fn event(&mut self, event: &Value) -> std::io::Result<()> {
        if !self.first {
            self.writer.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.writer, event)?;
        Ok(())
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Input(format!("cannot write trace file {}: {e}", path.display()))
}

/// Writes the trace and says so on stderr.
pub(crate) async fn write_and_tell(
    client: &mut Client,
    job_id: u64,
    path: &Path,
) -> Result<(), CliError> {
    let written = write(client, job_id, path).await?;
    eprintln!(
        "wrote {} ({} worker processes, {} shards, {} items): open it in https://ui.perfetto.dev or chrome://tracing",
        path.display(),
        written.processes,
        written.shards,
        written.items
    );
    Ok(())
}

/// Writes job `job_id`'s trace to `path`.
pub(crate) async fn write(
    client: &mut Client,
    job_id: u64,
    path: &Path,
) -> Result<Written, CliError> {
    let record = crate::report::fetch_record(client, job_id).await?;
    let mut shards: Vec<ShardRow> = Vec::new();
    let mut stream = client
        .list_job_shards(pb::ListJobShardsRequest {
            job_id,
            offset: 0,
            limit: 0,
        })
        .await?
        .into_inner();
    while let Some(chunk) = stream.message().await? {
        shards.extend(
            chunk
                .shards
                .iter()
                .map(ShardRow::from)
                .filter(|s| s.worker_id.get() != 0 && s.done),
        );
    }
    let file = std::fs::File::create(path).map_err(io_error(path))?;
    let mut out = Out {
        writer: std::io::BufWriter::new(file),
        first: true,
    };
    let fail = io_error(path);
    out.writer
        .write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")
        .map_err(&fail)?;
    let mut written = Written::default();
    let mut placed: HashMap<u32, Placed> = HashMap::new();
    let mut named: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut processes: BTreeSet<u64> = BTreeSet::new();
    for shard in &shards {
        let pid = shard.worker_id.get();
        if processes.insert(pid) {
            out.event(&json!({"name": "process_name", "ph": "M", "pid": pid,
                "args": {"name": format!("{}:{}", shard.host, shard.pid)}}))
                .map_err(&fail)?;
        }
        let slot_tid = u64::from(shard.slot) * TIDS_PER_SLOT;
        if named.insert((pid, slot_tid)) {
            out.event(
                &json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": slot_tid,
                "args": {"name": format!("slot {}", shard.slot)}}),
            )
            .map_err(&fail)?;
        }
        out.event(&json!({
            "name": format!("shard {}", shard.shard_id.get()),
            "cat": "shard",
            "ph": "X",
            "pid": pid,
            "tid": slot_tid,
            "ts": micros(shard.start_s),
            "dur": micros(shard.run_s),
            "args": {
                "attempt": shard.attempt.get(),
                "items": shard.items,
                "status": if shard.error.is_some() { "failed" } else { "ok" },
                "error": shard.error,
                "concurrency": shard.concurrency,
                "cpu_s": shard.cpu_s,
                "placement_error_us": micros(shard.start_error_s),
            }
        }))
        .map_err(&fail)?;
        written.shards += 1;
        placed.insert(
            shard.shard_id.get(),
            Placed {
                pid,
                slot_tid,
                start_s: shard.start_s,
                attempt: shard.attempt.get(),
            },
        );
    }
    written.processes = processes.len();
    let is_fetch = record.workload == "fetch";
    let is_exec = record.workload == "exec";
    let mut stream = client
        .list_job_items(pb::ListJobItemsRequest {
            job_id,
            filter: pb::ItemFilter::All.into(),
            offset: 0,
            limit: 0,
        })
        .await?
        .into_inner();
    while let Some(chunk) = stream.message().await? {
        for item in chunk.items.iter().filter(|i| i.reported) {
            let Some(shard) = placed.get(&item.shard_id) else {
                continue; // its shard gave up without running: nothing ran
            };
            let tid = shard.slot_tid + 1 + u64::from(item.lane);
            if named.insert((shard.pid, tid)) {
                out.event(&json!({"name": "thread_name", "ph": "M", "pid": shard.pid, "tid": tid,
                    "args": {"name": format!("slot {} · lane {}", shard.slot_tid / TIDS_PER_SLOT, item.lane)}}))
                    .map_err(&fail)?;
            }
            let mut args = json!({
                "item": item.index,
                "input": item.input,
                "attempt": shard.attempt,
                "ok": item.ok,
            });
            if is_fetch {
                args["status"] = json!(item.status);
                args["bytes"] = json!(item.bytes);
            } else if is_exec {
                // An exec item's value packs its CPU time and stderr bytes, not a sum.
                let row = concur_proto::convert::item_row_of(item, "exec");
                args["status"] = json!(item.status);
                args["bytes"] = json!(item.bytes);
                args["cpu_s"] = json!(row.cpu_s);
                args["stderr_bytes"] = json!(row.stderr_bytes);
            } else if item.ok {
                args["value"] = json!(join_u128(item.value_hi, item.value_lo).to_string());
            }
            if !item.error.is_empty() {
                args["error"] = json!(item.error);
            }
            out.event(&json!({
                "name": format!("item {}", item.index),
                "cat": if item.ok { "item" } else { "item,failed" },
                "ph": "X",
                "pid": shard.pid,
                "tid": tid,
                "ts": micros(shard.start_s + item.start_s),
                "dur": micros(item.duration_s),
                "args": args,
            }))
            .map_err(&fail)?;
            written.items += 1;
        }
    }
    let meta = json!({
        "job_id": job_id,
        "state": record.state.as_str(),
        "workload": record.workload,
        "strategy": record.strategy.to_string(),
        "clock": "coordinator: microseconds after submission",
    });
    write!(out.writer, "\n],\"otherData\":{meta}}}\n").map_err(&fail)?;
    out.writer.flush().map_err(&fail)?;
    Ok(written)
}
