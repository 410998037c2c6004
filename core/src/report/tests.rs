//! Unit tests of the report arithmetic.

use super::*;

fn shard(run_s: f64, cpu_s: f64, item_time_s: f64) -> ShardRow {
    ShardRow {
        run_s,
        cpu_s,
        item_time_s,
        done: true,
        ..ShardRow::default()
    }
}

#[test]
fn figures_follow_the_design_formulas() {
    let header = JobHeader {
        job_id: JobId(7),
        state: JobState::Succeeded,
        workload: "fetch".into(),
        strategy: "threads".into(),
        concurrency: 4,
        label: String::new(),
        wall_s: 2.0,
        stale_results_discarded: 0,
    };
    // Two processes on one host, each busy 1.5 s, overlapping 4 items of 1 s each.
    let rows = [shard(1.5, 0.3, 4.0), shard(1.5, 0.3, 4.0)];
    let mut totals = JobTotals {
        processes: 2,
        hosts: 1,
        ..JobTotals::default()
    };
    rows.iter().for_each(|row| totals.add_shard(row));
    let items = ItemCounts {
        total: 8,
        ok: 7,
        failed: 1,
    };
    let summary = JobSummary::new(header, items, totals);
    assert_eq!(summary.item_time_s, 8.0);
    assert_eq!(summary.process_parallelism, 1.5);
    assert_eq!(summary.effective_parallelism, 4.0);
    assert_eq!(summary.overhead_s, 0.5);
    assert!((summary.cpu_utilisation - 0.2).abs() < 1e-12);
    let row = rows[0].clone().with_figures();
    assert!((row.task_parallelism - 4.0 / 1.5).abs() < 1e-12);
    assert_eq!((summary.processes, summary.hosts), (2, 1));
    assert_eq!((summary.items_ok, summary.items_failed), (7, 1));
    assert_eq!(summary.items_unfinished, 0);
}

#[test]
fn unfinished_items_are_not_failed() {
    let items = ItemCounts {
        total: 10,
        ok: 0,
        failed: 0,
    };
    assert_eq!(items.unfinished(), 10);
}

#[test]
fn speedup_and_efficiency() {
    assert_eq!(speedup(10.0, 2.5), 4.0);
    assert_eq!(efficiency(4.0, 8), 0.5);
    assert_eq!(speedup(10.0, 0.0), 0.0);
}
