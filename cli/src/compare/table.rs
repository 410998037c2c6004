//! The human view of a comparison: one table of cells per series, the fits, the
//! recommendation.

use super::report::CompareReport;
use crate::runner::WarmUp;
use crate::trust::{self, Figure, Footnotes};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use std::path::PathBuf;

fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// Prints `report`, and where its files went.
pub(crate) fn print(report: &CompareReport, written: Option<&[PathBuf]>) {
    crate::stdout::outln!(
        "{} job, {} items, on {} ({} cores here), {} run(s) per cell; baseline 1 process x sequential: {:.3} s",
        report.workload,
        report.items,
        report.target,
        report.cores,
        report.repeat,
        report.baseline_wall_s
    );
    crate::stdout::outln!("{}", WarmUp::describe(report.warm_up.as_ref()));
    let mut notes = Footnotes::default();
    let mut cells = Table::new();
    cells.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        "series",
        "processes x strategy",
        "units",
        "wall (median)",
        "min-max",
        "speedup",
        "efficiency",
        "eff. par.",
        "CPU util.",
        "failed",
    ]);
    for series in &report.series {
        for (i, c) in series.cells.iter().enumerate() {
            let label = format!("{} x {} {}", c.processes, c.strategy, c.concurrency_label());
            cells.add_row(vec![
                if i == 0 {
                    series.name.clone()
                } else {
                    String::new()
                },
                label.clone(),
                c.units.to_string(),
                notes.mark(
                    format!("{:.3} s", c.wall_s_median),
                    &c.flagged,
                    Figure::Wall,
                    &label,
                ),
                format!("{:.3}-{:.3}", c.wall_s_min, c.wall_s_max),
                notes.mark(
                    format!("{:.2}x", c.speedup),
                    &c.flagged,
                    Figure::Speedup,
                    &label,
                ),
                notes.mark(
                    format!("{:.0}%", c.efficiency * 100.0),
                    &c.flagged,
                    Figure::Efficiency,
                    &label,
                ),
                trust::parallelism_cell(
                    c.effective_parallelism,
                    c.cpu_cores_busy,
                    report.target_cores,
                ),
                format!("{:.0}%", c.cpu_utilisation * 100.0),
                c.items_failed.to_string(),
            ]);
        }
    }
    crate::stdout::outln!("{cells}");
    for line in notes.lines() {
        crate::stdout::outln!("{line}");
    }
    crate::stdout::outln!("{}", trust::PARALLELISM_LEGEND);
    let mut fits = Table::new();
    fits.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        "series",
        "Amdahl serial fraction",
        "USL σ (contention)",
        "USL κ (coherency)",
        "USL fit error",
        "optimum",
        "predicted wall",
    ]);
    // A tuned cell has no curve: no row of fits.
    for s in report
        .series
        .iter()
        .filter(|s| s.axis != super::matrix::Axis::Auto)
    {
        let axis = match s.axis {
            super::matrix::Axis::Processes => "processes",
            super::matrix::Axis::Concurrency | super::matrix::Axis::Auto => "concurrency",
        };
        fits.add_row(vec![
            s.name.clone(),
            optional(s.fit.amdahl_serial_fraction, 3),
            optional(s.fit.usl_sigma, 3),
            optional(s.fit.usl_kappa, 5),
            s.fit
                .usl_rms_error
                .map_or_else(|| "-".into(), |e| format!("{:.1}%", e * 100.0)),
            s.fit.optimum_concurrency.map_or_else(
                || {
                    if s.fit.usl_sigma.is_some() {
                        "no peak".into()
                    } else {
                        "-".into()
                    }
                },
                |c| format!("{axis} {c}"),
            ),
            s.fit
                .optimum_wall_s
                .map_or_else(|| "-".into(), |w| format!("{w:.3} s")),
        ]);
    }
    crate::stdout::outln!("{fits}");
    crate::stdout::outln!("{}", report.recommendation.text);
    if let Some(paths) = written {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        crate::stdout::outln!("wrote {}", names.join(", "));
    }
}
