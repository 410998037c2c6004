//! Which measured figures to trust: flags beside figures that cannot be true (a CPU-bound
//! speedup above the cores used, an efficiency over 100 %) or that are too short to time, and
//! a plain reading of effective parallelism beside what the CPU did.

use std::fmt::Write as _;

/// Below this wall time a job is mostly coordination (submission, leases, result RPCs), so
/// its ratios say more about that overhead than about the strategy.
pub(crate) const MIN_TIMED_WALL_S: f64 = 0.050;

/// A run is too short to time when its per-job overhead (wall minus the longest shard) is
/// more than 1/this of its wall: the strategy's own time is then a minority of the figure.
pub(crate) const MIN_WALL_PER_OVERHEAD: f64 = 5.0;

/// The figure a flag is about, so a table can put its marker in the right column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Figure {
    /// The wall time.
    Wall,
    /// The speedup over the sequential baseline.
    Speedup,
    /// Speedup per parallel unit.
    Efficiency,
}

/// Why a figure should not be read plainly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flag {
    /// The figure concerned.
    pub(crate) figure: Figure,
    /// The reason, as a short sentence fragment (`speedup 2.70x exceeds the 2 cores used`).
    pub(crate) reason: String,
}

/// What the flags are computed from: one cell's (or row's) figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    /// Whether the job is CPU-bound (sum-squares): then speedup cannot exceed the cores used.
    pub(crate) cpu_bound: bool,
    /// Parallel units: processes x concurrency.
    pub(crate) units: u32,
    /// Cores of the machine(s) the jobs ran on.
    pub(crate) cores: u32,
    /// Median (or single) wall time.
    pub(crate) wall_s: f64,
    /// Speedup over the sequential baseline.
    pub(crate) speedup: f64,
    /// speedup / units.
    pub(crate) efficiency: f64,
    /// Per-job overhead: wall minus the longest shard.
    pub(crate) overhead_s: f64,
}

/// Cores a cell can keep busy: no more than its units, no more than the machine has.
pub(crate) fn cores_used(units: u32, cores: u32) -> u32 {
    units.min(cores).max(1)
}

/// The value as printed with `digits` decimals, so a figure that *prints* as exactly the
/// limit (2.00x on 2 cores, 100 %) is not flagged for a rounding residue.
fn printed(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The flags of one cell; empty when every figure is plausible.
pub(crate) fn flags(f: &Figures) -> Vec<Flag> {
    let mut flags = Vec::new();
    let used = cores_used(f.units, f.cores);
    if f.cpu_bound && printed(f.speedup, 2) > f64::from(used) {
        flags.push(Flag {
            figure: Figure::Speedup,
            reason: format!(
                "speedup {:.2}x exceeds the {used} core{} used (a CPU-bound job cannot go faster than its cores; the baseline was slowed, e.g. by a cold start)",
                f.speedup,
                if used == 1 { "" } else { "s" }
            ),
        });
    }
    if printed(f.efficiency * 100.0, 0) > 100.0 {
        flags.push(Flag {
            figure: Figure::Efficiency,
            reason: format!(
                "efficiency {:.0}% is over 100% (more speedup than parallel units: the baseline or this run was disturbed)",
                f.efficiency * 100.0
            ),
        });
    }
    if f.wall_s > 0.0 && f.wall_s < MIN_TIMED_WALL_S {
        flags.push(Flag {
            figure: Figure::Wall,
            reason: format!(
                "too short to time: {:.3} s is under {:.0} ms, where per-job coordination dominates",
                f.wall_s,
                MIN_TIMED_WALL_S * 1000.0
            ),
        });
    } else if f.wall_s > 0.0 && f.overhead_s * MIN_WALL_PER_OVERHEAD > f.wall_s {
        flags.push(Flag {
            figure: Figure::Wall,
            reason: format!(
                "too short to time: per-job overhead {:.3} s is over {:.0}% of the {:.3} s wall",
                f.overhead_s,
                100.0 / MIN_WALL_PER_OVERHEAD,
                f.wall_s
            ),
        });
    }
    flags
}

/// The reasons alone, for JSON.
pub(crate) fn reasons(flags: &[Flag]) -> Vec<String> {
    flags.iter().map(|f| f.reason.clone()).collect()
}

/// What the effective-parallelism cells mean, printed under a table that has them: items in
/// flight is not cores used (5 threads on 2 cores keep ~5 items in flight, busy 2 cores).
pub(crate) const PARALLELISM_LEGEND: &str = "eff. par. = items in flight on average (item time / wall), not cores used; CPU busy = CPU time / wall, in cores of the machine";

/// Effective parallelism beside what the CPU did, e.g.
/// `4.67 (CPU busy 193% = 1.93 of 2 cores)`.
pub(crate) fn parallelism_cell(effective: f64, cpu_cores_busy: f64, cores: u32) -> String {
    format!(
        "{effective:.2} (CPU busy {:.0}% = {cpu_cores_busy:.2} of {cores} cores)",
        cpu_cores_busy * 100.0
    )
}

/// Numbered footnotes for flagged figures in a table: the figure gets ` [n]`, the note
/// below the table says which cell and why.
#[derive(Debug, Default)]
pub(crate) struct Footnotes {
    notes: Vec<String>,
}

impl Footnotes {
    /// `text` with a marker for every flag of `figure`, each recorded as a note on `row`.
    pub(crate) fn mark(
        &mut self,
        text: String,
        flags: &[Flag],
        figure: Figure,
        row: &str,
    ) -> String {
        let mut text = text;
        for flag in flags.iter().filter(|f| f.figure == figure) {
            self.notes.push(format!("{row}: {}", flag.reason));
            let _ = write!(text, " [!{}]", self.notes.len());
        }
        text
    }

    /// One line per note, `[!n] row: reason`.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.notes
            .iter()
            .enumerate()
            .map(|(i, note)| format!("[!{}] {note}", i + 1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(units: u32, cores: u32, speedup: f64) -> Figures {
        Figures {
            cpu_bound: true,
            units,
            cores,
            wall_s: 1.0,
            speedup,
            efficiency: speedup / f64::from(units),
            overhead_s: 0.01,
        }
    }

    #[test]
    fn a_cpu_speedup_above_the_cores_used_is_flagged() {
        // The figure: 2 processes x threads 1 at 2.70x on 2 cores.
        let flagged = flags(&cpu(2, 2, 2.7));
        assert_eq!(flagged.len(), 2, "{flagged:?}");
        assert_eq!(flagged[0].figure, Figure::Speedup);
        assert!(
            flagged[0]
                .reason
                .starts_with("speedup 2.70x exceeds the 2 cores used")
        );
        assert!(
            flagged[1]
                .reason
                .starts_with("efficiency 135% is over 100%")
        );
        assert!(flags(&cpu(2, 2, 1.9)).is_empty());
        // Units beyond the cores: the cores are the limit, not the units.
        assert_eq!(flags(&cpu(8, 2, 2.4))[0].figure, Figure::Speedup);
        assert!(flags(&cpu(8, 2, 1.98)).is_empty());
        // 2.001x prints as 2.00x: not worth a flag.
        assert!(flags(&cpu(2, 2, 2.001)).is_empty());
    }

    #[test]
    fn io_jobs_may_beat_the_cores_but_not_their_units() {
        let io = Figures {
            cpu_bound: false,
            ..cpu(64, 2, 30.0)
        };
        assert!(
            flags(&io).is_empty(),
            "waiting on the network needs no core"
        );
        let superlinear = Figures {
            cpu_bound: false,
            ..cpu(5, 2, 5.1)
        };
        assert_eq!(flags(&superlinear)[0].figure, Figure::Efficiency);
    }

    #[test]
    fn the_demos_101_percent_rayon_row_is_flagged() {
        let flagged = flags(&cpu(2, 2, 2.02));
        assert!(flagged.iter().any(|f| f.reason.contains("efficiency 101%")));
    }

    #[test]
    fn short_cells_are_too_short_to_time() {
        let short = Figures {
            wall_s: 0.03,
            ..cpu(1, 2, 1.0)
        };
        assert!(
            flags(&short)[0]
                .reason
                .starts_with("too short to time: 0.030 s")
        );
        let overhead = Figures {
            wall_s: 0.2,
            overhead_s: 0.08,
            ..cpu(1, 2, 1.0)
        };
        assert!(
            flags(&overhead)[0]
                .reason
                .contains("per-job overhead 0.080 s")
        );
        let fine = Figures {
            wall_s: 0.2,
            overhead_s: 0.01,
            ..cpu(1, 2, 1.0)
        };
        assert!(flags(&fine).is_empty());
    }

    #[test]
    fn footnotes_number_the_markers_in_order() {
        let mut notes = Footnotes::default();
        let flagged = flags(&cpu(2, 2, 2.7));
        let speedup = notes.mark("2.70x".into(), &flagged, Figure::Speedup, "2 x threads 1");
        let wall = notes.mark("1.000 s".into(), &flagged, Figure::Wall, "2 x threads 1");
        let efficiency = notes.mark("135%".into(), &flagged, Figure::Efficiency, "2 x threads 1");
        assert_eq!((speedup.as_str(), wall.as_str()), ("2.70x [!1]", "1.000 s"));
        assert_eq!(efficiency, "135% [!2]");
        assert!(notes.lines()[0].starts_with("[!1] 2 x threads 1: speedup 2.70x"));
    }

    #[test]
    fn the_parallelism_cell_says_what_the_cpu_did() {
        assert_eq!(
            parallelism_cell(4.666, 1.93, 2),
            "4.67 (CPU busy 193% = 1.93 of 2 cores)"
        );
        assert!(PARALLELISM_LEGEND.contains("items in flight on average"));
    }
}
