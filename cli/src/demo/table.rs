//! The human view of the demo: the warm-up line, one table of rows with markers on the
//! figures not to read plainly, their footnotes, and the findings.

use super::DemoReport;
use crate::runner::WarmUp;
use crate::trust::{self, Figure, Footnotes};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

/// Prints `report`.
pub(super) fn print(report: &DemoReport) {
    crate::stdout::outln!("{}", WarmUp::describe(report.warm_up.as_ref()));
    let mut notes = Footnotes::default();
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "scenario",
            "processes x strategy",
            "wall",
            "speedup",
            "efficiency",
            "eff. par.",
            "CPU util.",
            "Python (post)",
            "what it shows",
        ]);
    for row in &report.scenarios {
        table.add_row(vec![
            row.name.clone(),
            format!("{} x {} {}", row.processes, row.strategy, row.concurrency),
            notes.mark(
                format!("{:.3} s", row.wall_s),
                &row.flagged,
                Figure::Wall,
                &row.name,
            ),
            notes.mark(
                format!("{:.2}x", row.speedup),
                &row.flagged,
                Figure::Speedup,
                &row.name,
            ),
            notes.mark(
                format!("{:.0}%", row.efficiency * 100.0),
                &row.flagged,
                Figure::Efficiency,
                &row.name,
            ),
            trust::parallelism_cell(
                row.effective_parallelism,
                row.cpu_cores_busy,
                report.settings.cores,
            ),
            format!("{:.0}%", row.cpu_utilisation * 100.0),
            match (row.python_s, row.python_speedup) {
                (Some(s), Some(x)) => format!("{s:.2} s ({x:.2}x)"),
                _ => "-".into(),
            },
            row.about.clone(),
        ]);
    }
    crate::stdout::outln!("{table}");
    for line in notes.lines() {
        crate::stdout::outln!("{line}");
    }
    crate::stdout::outln!("{}", trust::PARALLELISM_LEGEND);
    for finding in &report.findings {
        crate::stdout::outln!("- {finding}");
    }
    crate::stdout::outln!(
        "(speedup over io-sync / cpu-sync of this run; efficiency = speedup / (processes x concurrency); CPU util. = CPU time / shard time, per process; demo took {:.1} s)",
        report.elapsed_s
    );
}
