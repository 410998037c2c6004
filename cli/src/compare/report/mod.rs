//! The result of a `compare` run: cells with median and spread, speedups over the one-process
//! sequential baseline, Amdahl and USL fits per series, and the recommendation. This is the
//! `report.json` schema.

use super::matrix::{Axis, Measured};
use crate::runner::WarmUp;
use crate::trust::{self, Flag};
use concur_core::fit::{self, Point, Spread};
use concur_core::report::{efficiency, speedup};
use serde::Serialize;

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompareReport {
    /// `fetch` or `sum-squares`.
    pub(crate) workload: String,
    /// Items in the job.
    pub(crate) items: u64,
    /// `local` or the coordinator the jobs ran on.
    pub(crate) target: String,
    /// Cores of the machine running `compare`.
    pub(crate) cores: u32,
    /// Runs per cell.
    pub(crate) repeat: u32,
    /// The untimed runs made first; `null` with `--no-warm-up`.
    pub(crate) warm_up: Option<WarmUp>,
    /// Cores the jobs could use: `cores` locally, the attached hosts' against a coordinator.
    pub(crate) target_cores: u32,
    /// Median wall time of 1 process x sequential, the base of every speedup.
    pub(crate) baseline_wall_s: f64,
    /// One entry per axis of variation.
    pub(crate) series: Vec<SeriesReport>,
    /// The configuration to pick.
    pub(crate) recommendation: Recommendation,
}

/// One series: the cells along one axis and the curves fitted to them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SeriesReport {
    /// E.g. `scale-out: processes x sequential`, `scale-up: 1 process x threads`.
    pub(crate) name: String,
    /// `processes` (scale-out) or `concurrency` (scale-up and mixes).
    pub(crate) axis: Axis,
    /// The strategy of every cell.
    pub(crate) strategy: String,
    /// The cells, in increasing parallel units.
    pub(crate) cells: Vec<CellReport>,
    /// The fitted models.
    pub(crate) fit: FitReport,
}

/// One configuration, run `repeat` times.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CellReport {
    /// Worker processes.
    pub(crate) processes: u32,
    /// In-process strategy.
    pub(crate) strategy: String,
    /// Threads or tasks per process; the ceiling of an auto cell.
    pub(crate) concurrency: u32,
    /// Each worker tuned its concurrency (`--concurrency auto`).
    pub(crate) auto: bool,
    /// Auto cells: the limit the workers settled on, per process (median over the runs of
    /// each run's time-weighted mean); `null` otherwise.
    pub(crate) tuned_concurrency: Option<f64>,
    /// processes x concurrency (the tuned one, rounded, for an auto cell).
    pub(crate) units: u32,
    /// Every run's wall time, in run order.
    pub(crate) wall_s: Vec<f64>,
    /// Median wall time.
    pub(crate) wall_s_median: f64,
    /// Fastest run.
    pub(crate) wall_s_min: f64,
    /// Slowest run.
    pub(crate) wall_s_max: f64,
    /// baseline / median wall.
    pub(crate) speedup: f64,
    /// speedup / units.
    pub(crate) efficiency: f64,
    /// Median item time / wall.
    pub(crate) effective_parallelism: f64,
    /// Median CPU time / run time.
    pub(crate) cpu_utilisation: f64,
    /// Distinct hosts that ran shards (largest over the runs).
    pub(crate) hosts: u32,
    /// Failed items (largest over the runs); timings of failing runs mean little.
    pub(crate) items_failed: u64,
    /// Median CPU time / wall: cores kept busy on average.
    pub(crate) cpu_cores_busy: f64,
    /// Median per-job overhead: wall minus the longest shard.
    pub(crate) overhead_s: f64,
    /// Each run's position in the comparison (1 = first timed run), in run order.
    pub(crate) run_order: Vec<u32>,
    /// Why a figure of this cell should not be read plainly (empty when all are plausible).
    pub(crate) flags: Vec<String>,
    /// The same flags with the figure each is about, for the table's markers.
    #[serde(skip)]
    pub(crate) flagged: Vec<Flag>,
}

/// The models fitted to a series' speedups; `null`s when the series has no cell beyond one
/// unit.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct FitReport {
    /// Amdahl's serial fraction s.
    pub(crate) amdahl_serial_fraction: Option<f64>,
    /// RMS relative error of the Amdahl curve.
    pub(crate) amdahl_rms_error: Option<f64>,
    /// USL contention σ.
    pub(crate) usl_sigma: Option<f64>,
    /// USL coherency κ.
    pub(crate) usl_kappa: Option<f64>,
    /// RMS relative error of the USL curve.
    pub(crate) usl_rms_error: Option<f64>,
    /// Parallel units where the USL curve peaks; `null` when it keeps rising (κ = 0).
    pub(crate) optimum_units: Option<f64>,
    /// The peak along the series' axis (concurrency per process, or processes for scale-out),
    /// rounded to a whole number.
    pub(crate) optimum_concurrency: Option<u32>,
    /// Predicted wall time at that optimum.
    pub(crate) optimum_wall_s: Option<f64>,
}

/// What to pick, and what the model says about going further.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Recommendation {
    /// The series of the best cell.
    pub(crate) series: String,
    /// Its processes.
    pub(crate) processes: u32,
    /// Its strategy.
    pub(crate) strategy: String,
    /// Its concurrency (the ceiling, when auto).
    pub(crate) concurrency: u32,
    /// It tuned its concurrency itself; `tuned_concurrency` is where it settled.
    pub(crate) auto: bool,
    /// Where an auto cell's limit settled, per process.
    pub(crate) tuned_concurrency: Option<f64>,
    /// Its median wall time (measured).
    pub(crate) wall_s: f64,
    /// Its speedup over the baseline (measured).
    pub(crate) speedup: f64,
    /// The USL optimum along the series' axis, if the curve peaks.
    pub(crate) predicted_optimum_concurrency: Option<u32>,
    /// Predicted wall time at that optimum.
    pub(crate) predicted_wall_s: Option<f64>,
    /// The same in a sentence or two.
    pub(crate) text: String,
}

impl FitReport {
    fn new(points: &[Point], axis: Axis, processes: u32, baseline_wall_s: f64) -> Self {
        // One tuned cell has no curve to fit.
        if axis == Axis::Auto {
            return Self::default();
        }
        let amdahl = fit::fit_amdahl(points);
        let Some(usl) = fit::fit_usl(points) else {
            return Self::default();
        };
        let optimum_units = usl.optimum_units();
        // Along a concurrency axis one step adds `processes` units.
        let per_step = match axis {
            Axis::Processes => 1,
            Axis::Concurrency | Axis::Auto => processes.max(1),
        };
        let optimum_concurrency =
            optimum_units.map(|units| ((units / f64::from(per_step)).round() as u32).max(1));
        let optimum_wall_s = optimum_concurrency.map(|c| {
            let units = f64::from(c * per_step);
            baseline_wall_s / usl.speedup(units)
        });
        Self {
            amdahl_serial_fraction: amdahl.map(|a| a.serial_fraction),
            amdahl_rms_error: amdahl.map(|a| a.rms_relative_error),
            usl_sigma: Some(usl.sigma),
            usl_kappa: Some(usl.kappa),
            usl_rms_error: Some(usl.rms_relative_error),
            optimum_units,
            optimum_concurrency,
            optimum_wall_s,
        }
    }
}

impl CellReport {
    /// `8`, or `auto→17.2` (where the tuned limit settled).
    pub(crate) fn concurrency_label(&self) -> String {
        match self.tuned_concurrency {
            Some(tuned) if self.auto => format!("auto→{tuned:.1}"),
            _ => self.concurrency.to_string(),
        }
    }

    fn new(measured: &Measured, baseline_wall_s: f64, context: &Context) -> Self {
        let walls: Vec<f64> = measured.runs.iter().map(|r| r.wall_s).collect();
        let spread = Spread::of(&walls).unwrap_or(Spread {
            median: 0.0,
            min: 0.0,
            max: 0.0,
        });
        let median_of = |f: fn(&concur_core::report::JobSummary) -> f64| {
            let values: Vec<f64> = measured.runs.iter().map(f).collect();
            Spread::of(&values).map_or(0.0, |s| s.median)
        };
        let tuned_concurrency = measured
            .cell
            .auto
            .then(|| Spread::of(&measured.tuned).map_or(0.0, |s| s.median));
        let units = match tuned_concurrency {
            Some(tuned) => measured.cell.processes * (tuned.round() as u32).max(1),
            None => measured.cell.units(),
        };
        let speedup = speedup(baseline_wall_s, spread.median);
        let overhead_s = median_of(|r| r.overhead_s);
        let flagged = trust::flags(&trust::Figures {
            cpu_bound: context.workload == "sum-squares",
            units,
            cores: context.target_cores,
            wall_s: spread.median,
            speedup,
            efficiency: efficiency(speedup, units),
            overhead_s,
        });
        Self {
            processes: measured.cell.processes,
            strategy: measured.cell.strategy.to_string(),
            concurrency: measured.cell.concurrency,
            auto: measured.cell.auto,
            tuned_concurrency,
            units,
            wall_s: walls,
            wall_s_median: spread.median,
            wall_s_min: spread.min,
            wall_s_max: spread.max,
            speedup,
            efficiency: efficiency(speedup, units),
            effective_parallelism: median_of(|r| r.effective_parallelism),
            cpu_utilisation: median_of(|r| r.cpu_utilisation),
            hosts: measured.runs.iter().map(|r| r.hosts).max().unwrap_or(0),
            items_failed: measured
                .runs
                .iter()
                .map(|r| r.items_failed)
                .max()
                .unwrap_or(0),
            cpu_cores_busy: median_of(|r| concur_core::report::ratio(r.cpu_s, r.wall_s)),
            overhead_s,
            run_order: measured.order.clone(),
            flags: trust::reasons(&flagged),
            flagged,
        }
    }
}

/// Facts about the run that are not measurements.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) workload: String,
    pub(crate) items: u64,
    pub(crate) target: String,
    pub(crate) cores: u32,
    pub(crate) repeat: u32,
    pub(crate) warm_up: Option<WarmUp>,
    pub(crate) target_cores: u32,
}

/// Builds the report from the measured cells of each series (series 0 holds the baseline).
pub(crate) fn build(context: Context, series: &[super::matrix::SeriesRun]) -> CompareReport {
    let baseline_wall_s = series
        .iter()
        .flat_map(|s| &s.cells)
        .find(|m| m.cell.is_baseline())
        .and_then(|m| Spread::of(&m.runs.iter().map(|r| r.wall_s).collect::<Vec<_>>()))
        .map_or(0.0, |s| s.median);
    let series: Vec<SeriesReport> = series
        .iter()
        .map(|run| {
            let mut cells: Vec<CellReport> = run
                .cells
                .iter()
                .map(|m| CellReport::new(m, baseline_wall_s, &context))
                .collect();
            cells.sort_by_key(|c| c.units);
            let points: Vec<Point> = cells
                .iter()
                .map(|c| Point {
                    units: f64::from(c.units),
                    speedup: c.speedup,
                })
                .collect();
            SeriesReport {
                name: run.def.name.clone(),
                axis: run.def.axis,
                strategy: run.def.strategy.to_string(),
                fit: FitReport::new(&points, run.def.axis, run.def.processes, baseline_wall_s),
                cells,
            }
        })
        .collect();
    let recommendation = recommend(&series, baseline_wall_s);
    CompareReport {
        workload: context.workload,
        items: context.items,
        target: context.target,
        cores: context.cores,
        repeat: context.repeat,
        warm_up: context.warm_up,
        target_cores: context.target_cores,
        baseline_wall_s,
        series,
        recommendation,
    }
}

/// The fastest measured cell (fewer units on a tie within 2 %: the same speed for less), with
/// its series' predicted optimum.
fn recommend(series: &[SeriesReport], baseline_wall_s: f64) -> Recommendation {
    let mut best: Option<(&SeriesReport, &CellReport)> = None;
    for s in series {
        for cell in s.cells.iter().filter(|c| c.items_failed == 0) {
            let better = match best {
                None => true,
                Some((_, b)) => {
                    cell.wall_s_median < b.wall_s_median * 0.98
                        || (cell.wall_s_median <= b.wall_s_median * 1.02 && cell.units < b.units)
                }
            };
            if better {
                best = Some((s, cell));
            }
        }
    }
    let Some((s, cell)) = best else {
        return Recommendation {
            series: String::new(),
            processes: 0,
            strategy: String::new(),
            concurrency: 0,
            auto: false,
            tuned_concurrency: None,
            wall_s: 0.0,
            speedup: 0.0,
            predicted_optimum_concurrency: None,
            predicted_wall_s: None,
            text: "no configuration ran without failed items; fix the job first".into(),
        };
    };
    let axis_name = match s.axis {
        Axis::Processes => "processes",
        Axis::Concurrency | Axis::Auto => "concurrency",
    };
    let mut text = format!(
        "Best measured: {} process{} x {} {} — {:.3} s, {:.2}x over 1 process x sequential ({:.3} s).",
        cell.processes,
        if cell.processes == 1 { "" } else { "es" },
        cell.strategy,
        cell.concurrency_label(),
        cell.wall_s_median,
        cell.speedup,
        baseline_wall_s
    );
    let tested_max = s
        .cells
        .iter()
        .map(|c| match s.axis {
            Axis::Processes => c.processes,
            Axis::Concurrency | Axis::Auto => c.concurrency,
        })
        .max()
        .unwrap_or(1);
    match (s.fit.optimum_concurrency, s.fit.optimum_wall_s) {
        (Some(optimum), Some(wall)) => {
            text.push_str(&format!(
                " The USL fit of '{}' (σ = {:.3}, κ = {:.5}) puts the optimum at {axis_name} {optimum}, expected {wall:.3} s",
                s.name,
                s.fit.usl_sigma.unwrap_or(0.0),
                s.fit.usl_kappa.unwrap_or(0.0),
            ));
            let measured_there = s.cells.iter().find(|c| {
                optimum
                    == match s.axis {
                        Axis::Processes => c.processes,
                        Axis::Concurrency | Axis::Auto => c.concurrency,
                    }
            });
            // The model is a guide: where the data has the optimum's cell, show both.
            text.push_str(&match measured_there {
                Some(c) => format!(" (measured there: {:.3} s).", c.wall_s_median),
                None if optimum > tested_max => {
                    " — beyond the tested range, so an extrapolation: measure it.".to_string()
                }
                None => " — between the tested levels: measure it.".to_string(),
            });
        }
        _ => {
            if let Some(sigma) = s.fit.usl_sigma {
                text.push_str(&format!(
                    " The USL fit of '{}' (σ = {sigma:.3}, κ = 0) has no peak: more {axis_name} would still help",
                    s.name
                ));
                text.push_str(&if sigma > 1e-3 {
                    format!(", but never beyond {:.1}x.", 1.0 / sigma)
                } else {
                    " about linearly so far.".to_string()
                });
            }
        }
    }
    Recommendation {
        series: s.name.clone(),
        processes: cell.processes,
        strategy: cell.strategy.clone(),
        concurrency: cell.concurrency,
        auto: cell.auto,
        tuned_concurrency: cell.tuned_concurrency,
        wall_s: cell.wall_s_median,
        speedup: cell.speedup,
        predicted_optimum_concurrency: s.fit.optimum_concurrency,
        predicted_wall_s: s.fit.optimum_wall_s,
        text,
    }
}

#[cfg(test)]
mod tests;
