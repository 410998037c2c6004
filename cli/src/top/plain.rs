//! `top` off a terminal (or with `--once`): one snapshot as plain tables, or JSON.

use super::model::{View, duration};
use crate::args::OutputFormat;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

/// Prints `view` once.
pub(crate) fn print(format: OutputFormat, view: &View) {
    if format == OutputFormat::Json {
        return crate::output::print_json(view);
    }
    crate::stdout::outln!(
        "concur top — {}: {} workers, {} jobs shown of {}",
        view.coordinator,
        view.workers.len(),
        view.jobs.len(),
        view.jobs_matched
    );
    let mut workers = Table::new();
    workers.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        "worker",
        "host:pid",
        "slots",
        "running",
        "state",
        "shards done",
        "last heartbeat",
    ]);
    for w in &view.workers {
        workers.add_row(vec![
            w.worker_id.to_string(),
            w.process.clone(),
            w.slots.to_string(),
            w.running.to_string(),
            w.state.clone(),
            w.shards_done.to_string(),
            format!("{:.1} s ago", w.last_heartbeat_s),
        ]);
    }
    if view.workers.is_empty() {
        crate::stdout::outln!("no workers attached");
    } else {
        crate::stdout::outln!("{workers}");
    }
    let mut jobs = Table::new();
    jobs.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        "job", "state", "workload", "progress", "done", "failed", "rate", "ETA", "label",
    ]);
    for j in &view.jobs {
        jobs.add_row(vec![
            j.job_id.to_string(),
            j.state.clone(),
            j.what.clone(),
            format!("{} {:.0}%", bar(j.fraction(), 20), j.fraction() * 100.0),
            format!("{}/{}", j.items_done, j.items_total),
            j.items_failed.to_string(),
            j.rate.map_or_else(|| "-".into(), |r| format!("{r:.1}/s")),
            duration(j.eta_s),
            j.label.clone(),
        ]);
    }
    if view.jobs.is_empty() {
        crate::stdout::outln!("no jobs");
    } else {
        crate::stdout::outln!("{jobs}");
    }
}

/// `[=====     ]` of `width` cells.
pub(crate) fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("[{}{}]", "=".repeat(filled), " ".repeat(width - filled))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bar_fills_in_proportion() {
        assert_eq!(super::bar(0.5, 4), "[==  ]");
        assert_eq!(super::bar(1.5, 2), "[==]");
    }
}
