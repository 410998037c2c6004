//! Printing: tables for people, one JSON object for scripts.

use crate::args::OutputFormat;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use concur_core::report::JobReport;
use concur_proto::convert::{job_state_from_i32, strategy_from_i32};
use concur_proto::pb;
use serde_json::json;

/// Items listed in the human report before it summarises the rest.
const ITEMS_SHOWN: usize = 20;

pub(crate) fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(header);
    table
}

/// Prints an error the way the output format wants it.
pub(crate) fn print_error(format: OutputFormat, message: &str) {
    match format {
        OutputFormat::Json => print_json(&json!({ "error": message })),
        OutputFormat::Human => eprintln!("error: {message}"),
    }
}

/// After `submit` without `--wait`.
pub(crate) fn print_submitted(format: OutputFormat, accepted: &pb::SubmitJobResponse) {
    match format {
        OutputFormat::Json => print_json(&json!({
            "job_id": accepted.job_id,
            "shards": accepted.shards,
            "items": accepted.items,
        })),
        OutputFormat::Human => println!(
            "submitted job {} ({} items in {} shards); follow it with: concur-cli job {} --wait",
            accepted.job_id, accepted.items, accepted.shards, accepted.job_id
        ),
    }
}

/// A job's full report.
pub(crate) fn print_report(format: OutputFormat, report: &JobReport) {
    if format == OutputFormat::Json {
        return print_json(report);
    }
    println!(
        "job {}  {}  {}  strategy {} x{}  {} shards  {} items ({} ok, {} failed)",
        report.job_id,
        report.state,
        report.workload,
        report.strategy,
        report.concurrency,
        report.shards.len(),
        report.items_total,
        report.items_ok,
        report.items_failed,
    );
    let mut summary = table(&[
        "wall",
        "item time",
        "processes",
        "hosts",
        "process par.",
        "effective par.",
        "overhead",
        "CPU util.",
    ]);
    summary.add_row(vec![
        format!("{:.3} s", report.wall_s),
        format!("{:.3} s", report.item_time_s),
        report.processes.to_string(),
        report.hosts.to_string(),
        format!("{:.2}", report.process_parallelism),
        format!("{:.2}", report.effective_parallelism),
        format!("{:.3} s", report.overhead_s),
        format!("{:.0}%", report.cpu_utilisation * 100.0),
    ]);
    println!("{summary}");
    let mut shards = table(&[
        "shard",
        "worker",
        "host",
        "pid",
        "attempt",
        "items",
        "queue",
        "run",
        "cpu",
        "task par.",
        "CPU util.",
        "note",
    ]);
    for s in &report.shards {
        shards.add_row(vec![
            s.shard_id.to_string(),
            s.worker_id.to_string(),
            s.host.clone(),
            s.pid.to_string(),
            s.attempt.to_string(),
            s.items.to_string(),
            format!("{:.3} s", s.queue_s),
            format!("{:.3} s", s.run_s),
            format!("{:.3} s", s.cpu_s),
            format!("{:.2}", s.task_parallelism),
            format!("{:.0}%", s.cpu_utilisation * 100.0),
            s.error.clone().unwrap_or_else(|| {
                if s.done {
                    String::new()
                } else {
                    "not done".into()
                }
            }),
        ]);
    }
    println!("{shards}");
    let fetch = report.workload == "fetch";
    let mut items = table(if fetch {
        &["input", "ok", "duration", "status", "bytes", "error"]
    } else {
        &["n", "ok", "duration", "sum of squares", "error"]
    });
    // The first items, then any failures further down.
    let shown: Vec<_> = report
        .items
        .iter()
        .enumerate()
        .filter(|(i, item)| *i < ITEMS_SHOWN || (!item.ok && *i < ITEMS_SHOWN * 5))
        .map(|(_, item)| item)
        .collect();
    for item in &shown {
        let mut row = vec![
            item.input.clone(),
            if item.ok { "yes" } else { "NO" }.to_string(),
            format!("{:.4} s", item.duration_s),
        ];
        if fetch {
            row.push(item.status.unwrap_or(0).to_string());
            row.push(item.bytes.unwrap_or(0).to_string());
        } else {
            row.push(item.value.clone().unwrap_or_default());
        }
        row.push(item.error.clone().unwrap_or_default());
        items.add_row(row);
    }
    println!("{items}");
    if shown.len() < report.items.len() {
        println!(
            "({} more items not shown; --output json lists them all)",
            report.items.len() - shown.len()
        );
    }
}

/// `concur-cli jobs`.
pub(crate) fn print_jobs(format: OutputFormat, jobs: &[pb::JobSummary]) {
    if format == OutputFormat::Json {
        let rows: Vec<_> = jobs
            .iter()
            .map(|job| {
                let p = job.progress.unwrap_or_default();
                json!({
                    "job_id": job.job_id,
                    "state": job_state_from_i32(job.state).as_str(),
                    "workload": job.workload,
                    "strategy": strategy_name(job.strategy),
                    "concurrency": job.concurrency,
                    "items_total": p.items_total,
                    "items_done": p.items_done,
                    "items_failed": p.items_failed,
                    "shards_total": p.shards_total,
                    "shards_done": p.shards_done,
                    "elapsed_s": p.elapsed_s,
                    "label": job.label,
                })
            })
            .collect();
        return print_json(&json!({ "jobs": rows }));
    }
    if jobs.is_empty() {
        return println!("no jobs");
    }
    let mut t = table(&[
        "job",
        "state",
        "workload",
        "strategy",
        "items done",
        "failed",
        "shards",
        "elapsed",
        "label",
    ]);
    for job in jobs {
        let p = job.progress.unwrap_or_default();
        t.add_row(vec![
            job.job_id.to_string(),
            job_state_from_i32(job.state).to_string(),
            job.workload.clone(),
            format!("{} x{}", strategy_name(job.strategy), job.concurrency),
            format!("{}/{}", p.items_done, p.items_total),
            p.items_failed.to_string(),
            format!("{}/{}", p.shards_done, p.shards_total),
            format!("{:.2} s", p.elapsed_s),
            job.label.clone(),
        ]);
    }
    println!("{t}");
}

/// `concur-cli workers`.
pub(crate) fn print_workers(format: OutputFormat, workers: &[pb::WorkerSummary]) {
    if format == OutputFormat::Json {
        let rows: Vec<_> = workers
            .iter()
            .map(|w| {
                json!({
                    "worker_id": w.worker_id,
                    "host": w.host,
                    "pid": w.pid,
                    "cores": w.cores,
                    "slots": w.slots,
                    "running": w.running,
                    "state": w.state,
                    "version": w.version,
                    "last_heartbeat_s": w.last_heartbeat_s,
                    "shards_done": w.shards_done,
                })
            })
            .collect();
        return print_json(&json!({ "workers": rows }));
    }
    if workers.is_empty() {
        return println!("no workers attached");
    }
    let mut t = table(&[
        "worker",
        "host",
        "pid",
        "cores",
        "slots",
        "load",
        "state",
        "shards done",
        "last heartbeat",
        "version",
    ]);
    for w in workers {
        t.add_row(vec![
            w.worker_id.to_string(),
            w.host.clone(),
            w.pid.to_string(),
            w.cores.to_string(),
            w.slots.to_string(),
            format!("{}/{}", w.running, w.slots),
            w.state.clone(),
            w.shards_done.to_string(),
            format!("{:.1} s ago", w.last_heartbeat_s),
            w.version.clone(),
        ]);
    }
    println!("{t}");
}

fn strategy_name(raw: i32) -> &'static str {
    strategy_from_i32(raw).map_or("unknown", |s| s.as_str())
}
