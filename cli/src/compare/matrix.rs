//! The matrix of `compare`: which cells to run, grouped into series (one axis of variation
//! each), and running them — round after round over every cell, so a slow spell of the
//! machine (another program, a build) spreads over all cells alike instead of skewing one.

use crate::exit::CliError;
use crate::progress::RunsProgress;
use crate::runner::Target;
use concur_core::pacing::Pacing;
use concur_core::report::JobSummary;
use concur_core::{JobSpec, Strategy};
use serde::Serialize;

/// What varies along a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Axis {
    /// More worker processes (or hosts), one sequential thread each: scale-out.
    Processes,
    /// More threads or tasks in a fixed number of processes: scale-up (or a mix).
    Concurrency,
    /// One cell: the concurrency each worker tuned itself (`--concurrency auto`).
    Auto,
}

/// One configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub(crate) processes: u32,
    pub(crate) strategy: Strategy,
    /// Threads or tasks per process; the ceiling of an auto cell.
    pub(crate) concurrency: u32,
    /// Each worker tunes its in-flight limit (up to `concurrency`).
    pub(crate) auto: bool,
}

impl Cell {
    /// Parallel units: processes x concurrency.
    pub(crate) fn units(&self) -> u32 {
        self.processes * self.concurrency
    }

    /// `8`, or `auto` for a tuned cell.
    pub(crate) fn concurrency_label(&self) -> String {
        if self.auto {
            "auto".into()
        } else {
            self.concurrency.to_string()
        }
    }

    /// 1 process x sequential: the base of every speedup.
    pub(crate) fn is_baseline(&self) -> bool {
        self.processes == 1 && self.strategy == Strategy::Sequential
    }
}

/// A series before it ran.
#[derive(Debug, Clone)]
pub(crate) struct SeriesDef {
    pub(crate) name: String,
    pub(crate) axis: Axis,
    pub(crate) strategy: Strategy,
    /// Fixed process count of a concurrency series (1 for the scale-out series).
    pub(crate) processes: u32,
    pub(crate) cells: Vec<Cell>,
}

/// A cell and the reports of its runs.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) cell: Cell,
    pub(crate) runs: Vec<JobSummary>,
    /// Auto cells: each run's tuned limit per process, averaged over its shards' run time.
    pub(crate) tuned: Vec<f64>,
    /// Each run's position in the whole comparison (1 = the first timed run), which shows
    /// the rounds: a cell's second run comes after every cell's first.
    pub(crate) order: Vec<u32>,
}

/// A series after it ran.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRun {
    pub(crate) def: SeriesDef,
    pub(crate) cells: Vec<Measured>,
}

fn plural(processes: u32) -> &'static str {
    if processes == 1 {
        "process"
    } else {
        "processes"
    }
}

/// The series of a matrix: scale-out (processes x sequential, always run: it holds the
/// baseline), then for every other strategy and process count a series over concurrency —
/// scale-up with 1 process, a mix with more — and, with `auto` (its ceiling), a one-cell
/// series where each worker tunes its concurrency itself.
pub(crate) fn plan(
    processes: &[u32],
    strategies: &[Strategy],
    concurrency: &[u32],
    auto: Option<u32>,
) -> Vec<SeriesDef> {
    let mut out_processes: Vec<u32> = processes.iter().copied().chain([1]).collect();
    out_processes.sort_unstable();
    out_processes.dedup();
    let mut series = vec![SeriesDef {
        name: "scale-out: processes x sequential".into(),
        axis: Axis::Processes,
        strategy: Strategy::Sequential,
        processes: 1,
        cells: out_processes
            .iter()
            .map(|&p| Cell {
                processes: p,
                strategy: Strategy::Sequential,
                concurrency: 1,
                auto: false,
            })
            .collect(),
    }];
    for &strategy in strategies.iter().filter(|s| **s != Strategy::Sequential) {
        for &p in processes {
            let kind = if p == 1 { "scale-up" } else { "mix" };
            if !concurrency.is_empty() {
                series.push(SeriesDef {
                    name: format!("{kind}: {p} {} x {strategy}", plural(p)),
                    axis: Axis::Concurrency,
                    strategy,
                    processes: p,
                    cells: concurrency
                        .iter()
                        .map(|&c| Cell {
                            processes: p,
                            strategy,
                            concurrency: c,
                            auto: false,
                        })
                        .collect(),
                });
            }
            if let Some(ceiling) = auto.filter(|_| strategy.can_tune()) {
                series.push(SeriesDef {
                    name: format!("auto: {p} {} x {strategy}", plural(p)),
                    axis: Axis::Auto,
                    strategy,
                    processes: p,
                    cells: vec![Cell {
                        processes: p,
                        strategy,
                        concurrency: ceiling,
                        auto: true,
                    }],
                });
            }
        }
    }
    series
}

/// Runs every cell of `series` `repeat` times. `None` when the user pressed Ctrl-C.
///
/// # Errors
/// A cluster did not start or the coordinator refused a job.
pub(crate) async fn run(
    target: &mut Target,
    spec: &JobSpec,
    series: Vec<SeriesDef>,
    repeat: u32,
    progress: &RunsProgress,
) -> Result<Option<Vec<SeriesRun>>, CliError> {
    let mut runs: Vec<SeriesRun> = series
        .into_iter()
        .map(|def| SeriesRun {
            cells: def
                .cells
                .iter()
                .map(|&cell| Measured {
                    cell,
                    runs: Vec::new(),
                    tuned: Vec::new(),
                    order: Vec::new(),
                })
                .collect(),
            def,
        })
        .collect();
    let mut position = 0;
    // Rounds, not repeats back to back: each round runs every cell once.
    for round in 0..repeat {
        for series in &mut runs {
            for measured in &mut series.cells {
                let cell = measured.cell;
                let label = format!(
                    "{} x {} {} (run {}/{repeat})",
                    cell.processes,
                    cell.strategy,
                    cell.concurrency_label(),
                    round + 1
                );
                let bar = progress.job(&label);
                let spec = JobSpec {
                    strategy: cell.strategy,
                    concurrency: cell.concurrency,
                    label: format!("compare {label}"),
                    pacing: Pacing {
                        auto: cell.auto,
                        ..spec.pacing
                    },
                    ..spec.clone()
                };
                let Some(report) = target.run(&spec, cell.processes, bar.as_ref()).await? else {
                    progress.finish();
                    return Ok(None);
                };
                if cell.auto {
                    let tuned = target
                        .mean_shard_concurrency(cell.processes, report.job_id.get())
                        .await?;
                    measured.tuned.push(tuned);
                }
                progress.run_done(bar);
                position += 1;
                measured.runs.push(report);
                measured.order.push(position);
            }
        }
    }
    Ok(Some(runs))
}

/// Number of job runs `series` take with `repeat`.
pub(crate) fn total_runs(series: &[SeriesDef], repeat: u32) -> u64 {
    series.iter().map(|s| s.cells.len() as u64).sum::<u64>() * u64::from(repeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_out_series_always_holds_the_baseline() {
        let series = plan(&[2, 4], &[Strategy::Threads], &[1, 8], None);
        assert_eq!(series[0].axis, Axis::Processes);
        assert!(series[0].cells[0].is_baseline());
        assert_eq!(series[0].cells.len(), 3, "1, 2 and 4 processes");
        assert_eq!(
            series.len(),
            3,
            "scale-out plus threads at 2 and 4 processes"
        );
        assert_eq!(series[2].name, "mix: 4 processes x threads");
        assert_eq!(series[2].cells[1].units(), 32);
    }

    #[test]
    fn sequential_in_the_strategies_adds_no_series() {
        let series = plan(
            &[1],
            &[Strategy::Sequential, Strategy::Rayon],
            &[1, 2],
            None,
        );
        assert_eq!(series.len(), 2);
        assert_eq!(series[1].name, "scale-up: 1 process x rayon");
        assert_eq!(total_runs(&series, 3), 9);
    }

    #[test]
    fn auto_adds_a_one_cell_series_per_strategy_and_process_count() {
        let series = plan(&[1, 2], &[Strategy::Async], &[4], Some(256));
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "scale-out: processes x sequential",
                "scale-up: 1 process x async",
                "auto: 1 process x async",
                "mix: 2 processes x async",
                "auto: 2 processes x async"
            ]
        );
        assert!(series[2].cells[0].auto && series[2].cells[0].concurrency == 256);
        // Only auto: no fixed series at all.
        let only = plan(&[1], &[Strategy::Async], &[], Some(64));
        assert_eq!(only.len(), 2);
        assert_eq!(only[1].axis, Axis::Auto);
    }
}
