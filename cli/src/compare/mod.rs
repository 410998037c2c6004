//! `concur-cli compare`: run one job over a matrix of processes, strategies and concurrency
//! levels, fit Amdahl's law and the USL to each series, recommend a configuration, and write
//! the table, data and charts.
//!
//! Layout: `matrix` plans and runs the cells, `report` turns timings into speedups, fits and
//! the recommendation, `table` prints it, `chart` draws it, `files` writes `--out DIR`.

mod chart;
mod files;
mod matrix;
mod report;
mod table;

use crate::args::{
    ExecInput, FetchInput, GlobalOpts, OutputFormat, SumSquaresInput, parse_strategy,
};
use crate::exit::{CliError, Exit};
use crate::progress::RunsProgress;
use crate::runner::{Target, WarmUp};
use crate::submit;
use clap::{Args, Subcommand};
use concur_core::pacing::{ConcurrencyArg, Pacing};
use concur_core::spec::Limits;
use concur_core::{JobSpec, Strategy};
use std::path::PathBuf;

/// Options of `concur-cli compare`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  concur-cli compare sum-squares 200000000..200000020 --processes 1,2 --concurrency 1,2,4 --repeat 3 --out cmp
  concur-cli compare fetch --urls-file urls.txt --strategies threads,async --concurrency 1,4,16,64,auto
  concur-cli compare exec --range 1..200 --strategies threads,async --concurrency 1,4,16 -- sleep 0.01
  concur-cli --coordinator http://10.0.0.1:7070 compare sum-squares 1000000000..1000000040 --processes 1,2,4,8

Series: 'scale-out: processes x sequential' (always run; its 1-process cell is the baseline of
every speedup), then per strategy and process count a series over concurrency ('scale-up' with
1 process, 'mix' with more), and with 'auto' in --concurrency a one-cell series 'auto: P
processes x STRATEGY' where each worker tunes its limit (shown as auto→N, where it settled).
Parallel units = processes x concurrency. Against a coordinator, processes = attached workers
used (one shard each); workers on other hosts are scale-out too.

Before the timed runs, one untimed warm-up run per cluster (--no-warm-up skips it); the timed
runs go in rounds over every cell. Figures that cannot be true (a CPU-bound speedup above the
cores used, efficiency over 100%) or cells too short to time (under 50 ms) are marked [!n]
with the reason below the table and in the JSON's per-cell \"flags\".")]
pub(crate) struct CompareOpts {
    /// Worker process counts to try, e.g. 1,2,4 (scale-out).
    #[arg(long, global = true, value_delimiter = ',', default_value = "1,2,4", value_parser = parse_positive)]
    pub(crate) processes: Vec<u32>,
    /// In-process strategies to try besides sequential (scale-up), e.g. threads,async,rayon.
    #[arg(long, global = true, value_delimiter = ',', default_value = "threads,async,rayon", value_parser = parse_strategy)]
    pub(crate) strategies: Vec<Strategy>,
    /// Threads or tasks per process to try for each strategy, e.g. 1,2,4,8,16,64; `auto` (or
    /// `auto:MAX`) adds a run where each worker tunes its concurrency itself.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "1,2,4,8,16,64",
        value_name = "N|auto[:MAX],..."
    )]
    pub(crate) concurrency: Vec<ConcurrencyArg>,
    /// Runs per cell: the median is used, the min-max range shown.
    #[arg(long, global = true, default_value_t = 3, value_parser = parse_positive)]
    pub(crate) repeat: u32,
    /// Skip the untimed warm-up run (one per process count) made before the timed runs.
    #[arg(long, global = true)]
    pub(crate) no_warm_up: bool,
    /// Write report.json, report.csv, chart.svg, chart.png and report.html into this directory.
    #[arg(long, global = true)]
    pub(crate) out: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) workload: CompareWorkload,
}

/// The job to compare configurations of: anything `submit` takes.
#[derive(Debug, Subcommand)]
pub(crate) enum CompareWorkload {
    /// For each n, the exact sum of i*i for i in 0..n (CPU-bound).
    SumSquares(SumSquaresInput),
    /// GET each URL and read the whole body (I/O-bound).
    Fetch(FetchInput),
    /// Run a program once per item (`-- PROGRAM ARGS`, `{}` is the item).
    Exec(ExecInput),
}

/// A whole number of at least 1.
pub(crate) fn parse_positive(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

fn sorted_unique(values: &[u32]) -> Vec<u32> {
    let mut values = values.to_vec();
    values.sort_unstable();
    values.dedup();
    values
}

/// The warm-up (unless `warm_counts` is empty) and then the timed matrix; `None` on Ctrl-C.
async fn run_all(
    target: &mut Target,
    spec: &JobSpec,
    series: Vec<matrix::SeriesDef>,
    warm_counts: &[u32],
    repeat: u32,
    progress: &RunsProgress,
) -> Result<Option<(Option<WarmUp>, Vec<matrix::SeriesRun>)>, CliError> {
    let warm_up = if warm_counts.is_empty() {
        None
    } else {
        match target.warm_up(spec, warm_counts, progress).await? {
            Some(w) => Some(w),
            None => return Ok(None),
        }
    };
    let runs = matrix::run(target, spec, series, repeat, progress).await?;
    Ok(runs.map(|runs| (warm_up, runs)))
}

/// Runs `compare`.
pub(crate) async fn run(global: &GlobalOpts, opts: CompareOpts) -> Result<Exit, CliError> {
    let (workload, pacing) = match &opts.workload {
        CompareWorkload::SumSquares(input) => {
            (submit::sum_squares_workload(input)?, Pacing::default())
        }
        CompareWorkload::Fetch(input) => {
            (submit::fetch_workload(input)?, submit::politeness(input))
        }
        CompareWorkload::Exec(input) => (submit::exec_workload(input)?, Pacing::default()),
    };
    let processes = sorted_unique(&opts.processes);
    let fixed: Vec<u32> = opts
        .concurrency
        .iter()
        .filter(|c| !c.is_auto())
        .map(|c| c.value())
        .collect();
    let concurrency = sorted_unique(&fixed);
    let auto = opts
        .concurrency
        .iter()
        .filter(|c| c.is_auto())
        .map(|c| c.value())
        .max();
    let mut strategies = opts.strategies.clone();
    strategies.dedup();
    if auto.is_some() && !strategies.iter().any(|s| s.can_tune()) {
        return Err(CliError::Input(
            "--concurrency auto needs threads, rayon or async among --strategies".into(),
        ));
    }
    let limits = Limits::default();
    if let Some(&c) = concurrency
        .iter()
        .chain(auto.as_ref())
        .find(|c| **c > limits.max_concurrency)
    {
        return Err(CliError::Input(format!(
            "--concurrency {c} is above the limit of {}",
            limits.max_concurrency
        )));
    }
    let spec = JobSpec {
        pacing,
        workload,
        strategy: Strategy::Sequential,
        concurrency: 1,
        shards: None,
        max_retries: None,
        label: String::new(),
    };
    spec.validate(&limits)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let max_processes = processes.iter().copied().max().unwrap_or(1);
    if global.coordinator.is_none() && max_processes > 256 {
        return Err(CliError::Input(format!(
            "--processes {max_processes} would fork that many local workers; use at most 256, or a coordinator with attached workers"
        )));
    }
    if let Some(dir) = &opts.out {
        files::prepare(dir)?;
    }
    let mut target =
        Target::new(global.coordinator.as_deref(), max_processes, global.debug).await?;
    let series = matrix::plan(&processes, &strategies, &concurrency, auto);
    // One warm-up per cluster: each local process count is its own cluster; a coordinator's
    // workers are warmed by one run over as many as the matrix uses.
    let warm_counts: Vec<u32> = match (opts.no_warm_up, global.coordinator.is_some()) {
        (true, _) => Vec::new(),
        (false, true) => vec![max_processes],
        (false, false) => sorted_unique(&[processes.as_slice(), &[1]].concat()),
    };
    let total = matrix::total_runs(&series, opts.repeat) + warm_counts.len() as u64;
    // A person watching gets the plan; pipes and scripts get only the result.
    if crate::progress::enabled(global.output) {
        eprintln!(
            "compare: {} {} items on {} — {} series, {total} runs ({} per cell)",
            spec.workload.name(),
            spec.workload.item_count(),
            target.describe(),
            series.len(),
            opts.repeat
        );
    }
    let progress = RunsProgress::new(global.output, total, "compare");
    let result = run_all(
        &mut target,
        &spec,
        series,
        &warm_counts,
        opts.repeat,
        &progress,
    )
    .await;
    progress.finish();
    let describe = target.describe();
    let target_cores = target.cores();
    target.shutdown();
    let Some((warm_up, runs)) = result? else {
        return Ok(Exit::Interrupted);
    };
    let report = report::build(
        report::Context {
            workload: spec.workload.name().into(),
            items: spec.workload.item_count(),
            target: describe,
            cores: concur_worker::system::cores(),
            repeat: opts.repeat,
            warm_up,
            target_cores,
        },
        &runs,
    );
    let written = match &opts.out {
        Some(dir) => Some(files::write_all(dir, &report)?),
        None => None,
    };
    match global.output {
        OutputFormat::Json => crate::output::print_json(&report),
        OutputFormat::Human => table::print(&report, written.as_deref()),
    }
    let failed = report
        .series
        .iter()
        .flat_map(|s| &s.cells)
        .any(|c| c.items_failed > 0);
    Ok(if failed { Exit::No } else { Exit::Success })
}
