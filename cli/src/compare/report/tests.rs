//! Unit tests of the compare report: series, fits, the recommendation.

use super::super::matrix::{SeriesRun, plan};
use super::*;
use concur_core::JobId;
use concur_core::Strategy;
use concur_core::report::{ItemCounts, JobHeader, JobState, JobSummary, JobTotals};

fn job(wall_s: f64) -> JobSummary {
    let header = JobHeader {
        job_id: JobId(1),
        state: JobState::Succeeded,
        workload: "sum-squares".into(),
        strategy: "threads".into(),
        concurrency: 1,
        label: String::new(),
        wall_s,
        stale_results_discarded: 0,
    };
    JobSummary::new(header, ItemCounts::default(), JobTotals::default())
}

/// Runs every planned cell with the wall times `walls(cell)` gives.
fn measured(walls: impl Fn(&super::super::matrix::Cell) -> Vec<f64>) -> Vec<SeriesRun> {
    plan(&[1, 2], &[Strategy::Threads], &[1, 2, 4], None)
        .into_iter()
        .map(|def| SeriesRun {
            cells: def
                .cells
                .iter()
                .map(|cell| Measured {
                    cell: *cell,
                    runs: walls(cell).into_iter().map(job).collect(),
                    tuned: Vec::new(),
                    order: Vec::new(),
                })
                .collect(),
            def,
        })
        .collect()
}

fn context() -> Context {
    Context {
        workload: "sum-squares".into(),
        items: 20,
        target: "local".into(),
        cores: 2,
        repeat: 3,
        warm_up: None,
        target_cores: 2,
    }
}

#[test]
fn speedups_are_over_the_median_of_the_baseline_cell() {
    // 1 x sequential: median 1.0; everything else: 1 / units, perfectly linear.
    let runs = measured(|cell| {
        if cell.is_baseline() {
            vec![1.2, 1.0, 0.9]
        } else {
            let wall = 1.0 / f64::from(cell.units());
            vec![wall, wall * 1.1, wall * 0.9]
        }
    });
    let report = build(context(), &runs);
    assert_eq!(report.baseline_wall_s, 1.0);
    let out = &report.series[0];
    assert_eq!(out.axis, Axis::Processes);
    let two = &out.cells[1];
    assert_eq!((two.processes, two.units), (2, 2));
    assert!((two.speedup - 2.0).abs() < 1e-12);
    assert!((two.efficiency - 1.0).abs() < 1e-12);
    assert_eq!((two.wall_s_min, two.wall_s_max), (0.45, 0.55));
    // Linear scaling: no contention, no coherency, no peak.
    let mix = &report.series[2];
    assert_eq!(mix.name, "mix: 2 processes x threads");
    assert!(mix.fit.usl_sigma.unwrap() < 1e-9 && mix.fit.usl_kappa.unwrap() < 1e-9);
    assert_eq!(mix.fit.optimum_concurrency, None);
    // The fastest cell is 2 processes x threads 4 (8 units).
    let rec = &report.recommendation;
    assert_eq!(
        (rec.processes, rec.strategy.as_str(), rec.concurrency),
        (2, "threads", 4)
    );
    assert!(rec.text.contains("Best measured"), "{}", rec.text);
}

#[test]
fn a_peaked_series_gets_an_optimum_on_its_own_axis() {
    // Threads in one process follow a USL curve that peaks at N* = sqrt(0.9 / 0.1) = 3.
    let runs = measured(|cell| {
        let wall = if cell.processes == 1 && cell.strategy == Strategy::Threads {
            1.0 / concur_core::fit::usl_speedup(0.1, 0.1, f64::from(cell.units()))
        } else {
            1.0
        };
        vec![wall]
    });
    let report = build(context(), &runs);
    let threads = &report.series[1];
    assert_eq!(threads.name, "scale-up: 1 process x threads");
    assert!((threads.fit.usl_sigma.unwrap() - 0.1).abs() < 1e-9);
    assert_eq!(threads.fit.optimum_concurrency, Some(3));
    let expected = 1.0 / concur_core::fit::usl_speedup(0.1, 0.1, 3.0);
    assert!((threads.fit.optimum_wall_s.unwrap() - expected).abs() < 1e-9);
}

#[test]
fn a_cold_baseline_shows_as_flags_not_as_plain_figures() {
    // The run: the baseline carried the start-up (1.35 s instead of 1.0 s), so
    // 2 processes x threads 1 came out at 2.70x on 2 cores.
    let timed = |wall_s: f64| {
        let mut run = job(wall_s);
        run.overhead_s = 0.01;
        run
    };
    let runs: Vec<SeriesRun> = measured(|cell| {
        vec![if cell.is_baseline() {
            1.35
        } else {
            1.0 / f64::from(cell.units().min(2))
        }]
    })
    .into_iter()
    .map(|mut s| {
        for m in &mut s.cells {
            m.runs = m.runs.iter().map(|r| timed(r.wall_s)).collect();
        }
        s
    })
    .collect();
    let report = build(context(), &runs);
    let mix = &report.series[2];
    let two_by_one = &mix.cells[0];
    assert_eq!((two_by_one.processes, two_by_one.concurrency), (2, 1));
    assert!(
        two_by_one.flags[0].starts_with("speedup 2.70x exceeds the 2 cores used"),
        "{:?}",
        two_by_one.flags
    );
    assert!(two_by_one.flags[1].starts_with("efficiency 135% is over 100%"));
    // The baseline itself is plausible: nothing to flag.
    assert!(report.series[0].cells[0].flags.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["series"][2]["cells"][0]["flags"][0]
            .as_str()
            .map(|f| f.starts_with("speedup 2.70x")),
        Some(true)
    );
}
