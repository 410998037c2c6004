//! `compare --out DIR`: report.json (the `--output json` object), report.csv (one row per
//! cell), chart.svg, chart.png and report.html — the chart and the tables in one
//! self-contained page (inline SVG and CSS, nothing fetched).

use super::chart;
use super::matrix::Axis;
use super::report::CompareReport;
use crate::exit::CliError;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Creates `dir` before any job runs, so a bad path fails at once rather than after the
/// matrix.
///
/// # Errors
/// The directory cannot be created (exit 2).
pub(crate) fn prepare(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::Input(format!(
            "cannot create the --out directory '{}': {e}",
            dir.display()
        ))
    })
}

/// Writes every file into `dir`; the paths written.
///
/// # Errors
/// A file cannot be written or the chart cannot be drawn.
pub(crate) fn write_all(dir: &Path, report: &CompareReport) -> anyhow::Result<Vec<PathBuf>> {
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(report).context("cannot encode report.json")?;
    write(&json_path, json.as_bytes())?;
    let csv_path = dir.join("report.csv");
    write(&csv_path, &csv(report)?)?;
    let svg = chart::svg(report)?;
    let svg_path = dir.join("chart.svg");
    write(&svg_path, svg.as_bytes())?;
    let png_path = dir.join("chart.png");
    chart::png(report, &png_path)?;
    let html_path = dir.join("report.html");
    write(&html_path, html(report, &svg).as_bytes())?;
    Ok(vec![json_path, csv_path, svg_path, png_path, html_path])
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// One row per cell, flat, for spreadsheets.
fn csv(report: &CompareReport) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "series",
        "processes",
        "strategy",
        "concurrency",
        "auto",
        "tuned_concurrency",
        "units",
        "runs",
        "wall_s_median",
        "wall_s_min",
        "wall_s_max",
        "speedup",
        "efficiency",
        "effective_parallelism",
        "cpu_utilisation",
        "items_failed",
    ])?;
    for s in &report.series {
        for c in &s.cells {
            writer.write_record([
                s.name.clone(),
                c.processes.to_string(),
                c.strategy.clone(),
                c.concurrency.to_string(),
                c.auto.to_string(),
                c.tuned_concurrency
                    .map_or_else(String::new, |t| format!("{t:.2}")),
                c.units.to_string(),
                c.wall_s.len().to_string(),
                format!("{:.6}", c.wall_s_median),
                format!("{:.6}", c.wall_s_min),
                format!("{:.6}", c.wall_s_max),
                format!("{:.4}", c.speedup),
                format!("{:.4}", c.efficiency),
                format!("{:.4}", c.effective_parallelism),
                format!("{:.4}", c.cpu_utilisation),
                c.items_failed.to_string(),
            ])?;
        }
    }
    writer.into_inner().context("cannot finish report.csv")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}\
.rec{background:#eef6ee;border-left:4px solid #3a3;padding:.6em 1em;max-width:70em}\
svg{max-width:100%;height:auto}";

/// The page: recommendation, chart, fits, cells.
fn html(report: &CompareReport, svg: &str) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>concur compare: {}</title><style>{STYLE}</style></head><body>\n",
        escape(&report.workload)
    );
    let _ = write!(
        page,
        "<h1>concur compare</h1>\n<p>{} job, {} items, on {} ({} cores), {} run(s) per cell. Baseline 1 process x sequential: {:.3} s.</p>\n<p class=\"rec\">{}</p>\n",
        escape(&report.workload),
        report.items,
        escape(&report.target),
        report.cores,
        report.repeat,
        report.baseline_wall_s,
        escape(&report.recommendation.text)
    );
    // The SVG document minus its XML prolog, inline.
    let svg_body = svg.find("<svg").map_or(svg, |at| &svg[at..]);
    page.push_str(svg_body);
    page.push_str("\n<h2>Fits</h2>\n<p>Amdahl: S(N) = 1 / (s + (1 - s)/N). USL: S(N) = N / (1 + &sigma;(N-1) + &kappa;N(N-1)); &sigma; is contention, &kappa; coherency; with &kappa; &gt; 0 the speedup peaks at N* = &radic;((1-&sigma;)/&kappa;).</p>\n<table><tr><th>series</th><th>Amdahl s</th><th>USL &sigma;</th><th>USL &kappa;</th><th>USL error</th><th>optimum</th><th>predicted wall</th></tr>\n");
    // A tuned cell has no curve: no row of fits.
    for s in report.series.iter().filter(|s| s.axis != Axis::Auto) {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            optional(s.fit.amdahl_serial_fraction, 3),
            optional(s.fit.usl_sigma, 3),
            optional(s.fit.usl_kappa, 5),
            s.fit
                .usl_rms_error
                .map_or_else(|| "-".into(), |e| format!("{:.1}%", e * 100.0)),
            s.fit
                .optimum_concurrency
                .map_or_else(|| "no peak".into(), |c| c.to_string()),
            s.fit
                .optimum_wall_s
                .map_or_else(|| "-".into(), |w| format!("{w:.3} s")),
        );
    }
    page.push_str("</table>\n<h2>Cells</h2>\n<table><tr><th>series</th><th>processes x strategy</th><th>units</th><th>wall (median)</th><th>min-max</th><th>speedup</th><th>efficiency</th><th>eff. parallelism</th><th>CPU util.</th><th>failed</th></tr>\n");
    for s in &report.series {
        for c in &s.cells {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{} x {} {}</td><td>{}</td><td>{:.3} s</td><td>{:.3}-{:.3}</td><td>{:.2}x</td><td>{:.0}%</td><td>{:.2}</td><td>{:.0}%</td><td>{}</td></tr>",
                escape(&s.name),
                c.processes,
                escape(&c.strategy),
                escape(&c.concurrency_label()),
                c.units,
                c.wall_s_median,
                c.wall_s_min,
                c.wall_s_max,
                c.speedup,
                c.efficiency * 100.0,
                c.effective_parallelism,
                c.cpu_utilisation * 100.0,
                c.items_failed
            );
        }
    }
    page.push_str("</table>\n</body></html>\n");
    page
}
