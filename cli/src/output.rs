//! Printing: tables for people, one JSON object for scripts.

use crate::args::OutputFormat;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use concur_core::report::JobSummary;
use concur_proto::convert::{job_state_from_i32, strategy_from_i32};
use concur_proto::pb;
use serde_json::json;

pub(crate) fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => crate::stdout::outln!("{text}"),
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
        OutputFormat::Human => crate::stdout::outln!(
            "submitted job {} ({} items in {} shards); follow it with: concur-cli job {} --wait",
            accepted.job_id,
            accepted.items,
            accepted.shards,
            accepted.job_id
        ),
    }
}

/// A job summary's figures as a one-row table.
pub(crate) fn summary_table(report: &JobSummary) -> Table {
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
    summary
}

/// `concur-cli jobs`: the listed jobs and how many matched before the limit.
pub(crate) fn print_jobs(format: OutputFormat, jobs: &[pb::JobSummary], matched: u64) {
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
        return print_json(&json!({ "jobs": rows, "matched": matched }));
    }
    if jobs.is_empty() {
        return crate::stdout::outln!("no jobs");
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
            format!(
                "{} {}",
                strategy_name(job.strategy),
                concur_core::pacing::describe_recorded(job.concurrency)
            ),
            format!("{}/{}", p.items_done, p.items_total),
            p.items_failed.to_string(),
            format!("{}/{}", p.shards_done, p.shards_total),
            format!("{:.2} s", p.elapsed_s),
            job.label.clone(),
        ]);
    }
    crate::stdout::outln!("{t}");
    if matched > jobs.len() as u64 {
        crate::stdout::outln!(
            "(the {} most recent of {matched} jobs; --limit 0 lists all)",
            jobs.len()
        );
    }
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
        return crate::stdout::outln!("no workers attached");
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
    crate::stdout::outln!("{t}");
}

fn strategy_name(raw: i32) -> &'static str {
    strategy_from_i32(raw).map_or("unknown", |s| s.as_str())
}
