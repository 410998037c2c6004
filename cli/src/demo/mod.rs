//! `concur-cli demo`: the reference scenarios of the Python concurrency post plus concur's
//! own, on a local cluster against the in-process site simulator, in one comparison table
//! with the post's published times and a few sentences the numbers support.
//!
//! Layout: `scenarios` is the table of rows, `findings` writes the sentences, `table` prints
//! them, this module sets up and runs.

mod findings;
mod scenarios;
mod table;

use crate::args::{GlobalOpts, OutputFormat};
use crate::exit::{CliError, Exit};
use crate::progress::RunsProgress;
use crate::runner::{Target, WarmUp};
use crate::sites::{self, SitesServeOpts};
use crate::trust::{self, Flag};
use concur_core::report::{JobSummary, efficiency, ratio, speedup};
use concur_core::workload::FetchSpec;
use concur_core::{JobSpec, NumberSpec, Workload};
use scenarios::{JobKind, SCENARIOS, Scenario};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The post's CPU job: n from 5,000,000, twenty values.
const CPU_FIRST_N: u64 = 5_000_000;
const CPU_ITEMS: u64 = 20;

/// Options of `concur-cli demo`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  concur-cli demo                      # ~30-40 s on 2 cores
  concur-cli demo --full               # the post's I/O size and latency, a CPU job as long as Python's
  concur-cli --output json demo --urls 20 --latency 10ms --cpu-scale 4   # a quick check

Defaults: 160 URLs (2 simulated sites x 80) at 40 ms + up to 20 ms jitter with 50 kB bodies,
and the CPU job's n scaled x40 (200,000,000..200,000,020): at the post's own n (--cpu-scale 1)
Rust finishes the whole job in ~30 ms and coordination would dominate. --full: 100 ms mean
latency (the post's 15.9 s / 160 requests) with 100 kB bodies, and n x400 (~10 s sequential,
about the post's 9.24 s). The demo always runs in local mode (--coordinator is ignored); use
`compare` to measure a running cluster.")]
pub(crate) struct DemoOpts {
    /// Use the post's sizes: ~100 ms per request, and a CPU job about as long as Python's.
    #[arg(long)]
    pub(crate) full: bool,
    /// URLs to fetch, split over two simulated sites [default: 160].
    #[arg(long, value_parser = crate::compare::parse_positive)]
    pub(crate) urls: Option<u32>,
    /// Simulated latency of every request [default: 40ms; --full: 80ms].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) latency: Option<Duration>,
    /// Extra random latency, uniform in 0..jitter [default: 20ms; --full: 40ms].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) jitter: Option<Duration>,
    /// Body size of every response, e.g. 50k [default: 50k; --full: 100k].
    #[arg(long, value_parser = sites::parse_size)]
    pub(crate) bytes: Option<u64>,
    /// Multiply the post's n (5,000,000..5,000,020) by this; 1 = the post's exact job
    /// [default: 40; --full: 400].
    #[arg(long, value_parser = parse_scale)]
    pub(crate) cpu_scale: Option<u64>,
    /// Worker processes of the *-processes rows [default: one per core].
    #[arg(long, value_parser = crate::compare::parse_positive)]
    pub(crate) processes: Option<u32>,
    /// Skip the untimed warm-up (a short CPU job on each local cluster) made before the rows.
    #[arg(long)]
    pub(crate) no_warm_up: bool,
}

fn parse_scale(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(k) if (1..=10_000).contains(&k) => Ok(k),
        _ => Err(format!("'{text}' is not a scale between 1 and 10000")),
    }
}

/// What the demo ran with; printed first and included in the JSON.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Settings {
    pub(crate) cores: u32,
    pub(crate) processes: u32,
    pub(crate) sites_url: String,
    pub(crate) urls: u32,
    pub(crate) latency_ms: f64,
    pub(crate) jitter_ms: f64,
    pub(crate) bytes: u64,
    pub(crate) cpu_spec: String,
    pub(crate) cpu_scale: u64,
}

impl Settings {
    fn io(&self) -> String {
        format!(
            "site simulator at {}: {} URLs over 2 sites, latency {:.0} ms + up to {:.0} ms jitter, {} kB bodies",
            self.sites_url,
            self.urls,
            self.latency_ms,
            self.jitter_ms,
            self.bytes / 1000
        )
    }

    fn cpu(&self) -> String {
        format!(
            "CPU job: sum of i*i for i < n, n in {} (the post's n x {})",
            self.cpu_spec, self.cpu_scale
        )
    }
}

/// One measured row; the `scenarios` entries of the JSON.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) workload: String,
    pub(crate) processes: u32,
    pub(crate) strategy: String,
    pub(crate) concurrency: u32,
    /// processes x concurrency.
    pub(crate) units: u32,
    pub(crate) wall_s: f64,
    /// Over the matching sequential row (io-sync or cpu-sync).
    pub(crate) speedup: f64,
    /// speedup / units.
    pub(crate) efficiency: f64,
    pub(crate) effective_parallelism: f64,
    pub(crate) cpu_utilisation: f64,
    pub(crate) items_ok: u64,
    pub(crate) items_failed: u64,
    /// CPU time / wall: cores kept busy on average.
    pub(crate) cpu_cores_busy: f64,
    /// Why a figure of this row should not be read plainly (empty when all are plausible).
    pub(crate) flags: Vec<String>,
    /// The same flags with the figure each is about, for the table's markers.
    #[serde(skip)]
    pub(crate) flagged: Vec<Flag>,
    /// The post's published wall time, for the reference rows.
    pub(crate) python_s: Option<f64>,
    /// The post's speedup over its own sequential row.
    pub(crate) python_speedup: Option<f64>,
    pub(crate) about: String,
}

/// The whole demo, as printed with `--output json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DemoReport {
    pub(crate) settings: Settings,
    pub(crate) scenarios: Vec<Row>,
    pub(crate) findings: Vec<String>,
    pub(crate) elapsed_s: f64,
    /// The untimed runs made first; `null` with `--no-warm-up`.
    pub(crate) warm_up: Option<WarmUp>,
}

/// Runs `demo`.
pub(crate) async fn run(global: &GlobalOpts, opts: DemoOpts) -> Result<Exit, CliError> {
    let start = Instant::now();
    let cores = concur_worker::system::cores();
    let (latency, jitter, bytes, scale) = if opts.full {
        (
            Duration::from_millis(80),
            Duration::from_millis(40),
            100_000,
            400,
        )
    } else {
        (
            Duration::from_millis(40),
            Duration::from_millis(20),
            50_000,
            40,
        )
    };
    let sites_opts = SitesServeOpts {
        listen: "127.0.0.1:0".into(),
        latency: opts.latency.unwrap_or(latency),
        jitter: opts.jitter.unwrap_or(jitter),
        bytes: opts.bytes.unwrap_or(bytes),
        error_rate: 0.0,
        reset_rate: 0.0,
        stall_rate: 0.0,
        stall: Duration::from_secs(60),
        capacity: 0,
        queue_limit: 0,
    };
    let listener = concur_coordinator::listen::bind(&sites_opts.listen)
        .await
        .map_err(|e| CliError::Input(format!("cannot bind the site simulator: {e}")))?;
    let sites_url = format!(
        "http://{}",
        listener.local_addr().map_err(anyhow::Error::from)?
    );
    let scale = opts.cpu_scale.unwrap_or(scale);
    let first_n = CPU_FIRST_N * scale;
    let settings = Settings {
        cores,
        processes: opts.processes.unwrap_or(cores),
        sites_url: sites_url.clone(),
        urls: opts.urls.unwrap_or(160),
        latency_ms: sites_opts.latency.as_secs_f64() * 1000.0,
        jitter_ms: sites_opts.jitter.as_secs_f64() * 1000.0,
        bytes: sites_opts.bytes,
        cpu_spec: format!("{first_n}..{}", first_n + CPU_ITEMS),
        cpu_scale: scale,
    };
    let (stop_sites, sites_stopped) = tokio::sync::oneshot::channel::<()>();
    let sites_task = tokio::spawn(sites::serve(listener, sites_opts, async {
        let _ = sites_stopped.await;
    }));
    if global.output == OutputFormat::Human {
        crate::stdout::outln!("{}", settings.io());
        crate::stdout::outln!("{}", settings.cpu());
        crate::stdout::outln!(
            "local cluster: in-process coordinator, 1 or {} worker processes ({cores} cores)",
            settings.processes
        );
    }
    let result = run_scenarios(global, &settings, !opts.no_warm_up).await;
    let _ = stop_sites.send(());
    let _ = sites_task.await;
    let Some((warm_up, rows)) = result? else {
        return Ok(Exit::Interrupted);
    };
    let report = DemoReport {
        findings: findings::write(&rows, &settings),
        settings,
        scenarios: rows,
        elapsed_s: start.elapsed().as_secs_f64(),
        warm_up,
    };
    match global.output {
        OutputFormat::Json => crate::output::print_json(&report),
        OutputFormat::Human => table::print(&report),
    }
    let failed = report.scenarios.iter().any(|r| r.items_failed > 0);
    Ok(if failed { Exit::No } else { Exit::Success })
}

fn job_spec(scenario: &Scenario, settings: &Settings) -> JobSpec {
    let workload = match scenario.job {
        JobKind::Io => Workload::Fetch(FetchSpec::new(
            (0..settings.urls)
                .map(|i| {
                    // Two "sites", alternating, like the post's two hosts.
                    let site = if i % 2 == 0 { "jython" } else { "dice" };
                    format!("{}/{site}/page/{i}", settings.sites_url)
                })
                .collect(),
        )),
        JobKind::Cpu => {
            let first = CPU_FIRST_N * settings.cpu_scale;
            Workload::SumSquares(NumberSpec::Range {
                start: first,
                end: first + CPU_ITEMS,
            })
        }
    };
    let items = workload.item_count() as u32;
    JobSpec {
        pacing: Default::default(),
        workload,
        strategy: scenario.strategy,
        concurrency: scenario.concurrency(items, settings.cores),
        shards: None,
        max_retries: None,
        label: format!("demo {}", scenario.name),
    }
}

/// The warm-up job: the CPU job's first values, one per process (at least two), run
/// sequentially — long enough to start every worker's code and the CPU clock, short beside
/// the rows.
fn warm_up_spec(settings: &Settings) -> JobSpec {
    let first = CPU_FIRST_N * settings.cpu_scale;
    let items = u64::from(settings.processes.max(2)).min(CPU_ITEMS);
    JobSpec {
        pacing: Default::default(),
        workload: Workload::SumSquares(NumberSpec::Range {
            start: first,
            end: first + items,
        }),
        strategy: concur_core::Strategy::Sequential,
        concurrency: 1,
        shards: None,
        max_retries: None,
        label: "demo".into(),
    }
}

/// Runs the warm-up (unless `warm` is false), then every scenario in table order on two local
/// clusters (1 worker process, and one per core). `None` when interrupted.
async fn run_scenarios(
    global: &GlobalOpts,
    settings: &Settings,
    warm: bool,
) -> Result<Option<(Option<WarmUp>, Vec<Row>)>, CliError> {
    let mut target = Target::new(None, 1, global.debug).await?;
    let mut clusters = vec![1, settings.processes];
    clusters.dedup();
    let warm_runs = if warm { clusters.len() as u64 } else { 0 };
    let progress = RunsProgress::new(global.output, SCENARIOS.len() as u64 + warm_runs, "demo");
    let warm_up = if warm {
        let outcome = target
            .warm_up(&warm_up_spec(settings), &clusters, &progress)
            .await;
        let Some(warm_up) = outcome? else {
            progress.finish();
            target.shutdown();
            return Ok(None);
        };
        Some(warm_up)
    } else {
        None
    };
    let mut reports: Vec<(&Scenario, u32, JobSummary)> = Vec::new();
    for scenario in &SCENARIOS {
        let processes = scenario.processes(settings.processes);
        let bar = progress.job(scenario.name);
        let spec = job_spec(scenario, settings);
        let outcome = target.run(&spec, processes, bar.as_ref()).await;
        let Some(report) = outcome? else {
            progress.finish();
            target.shutdown();
            return Ok(None);
        };
        progress.run_done(bar);
        reports.push((scenario, processes, report));
    }
    progress.finish();
    target.shutdown();
    let wall_of = |name: &str| {
        reports
            .iter()
            .find(|(s, _, _)| s.name == name)
            .map_or(0.0, |(_, _, r)| r.wall_s)
    };
    let rows = SCENARIOS
        .iter()
        .filter_map(|scenario| {
            let (_, processes, report) =
                reports.iter().find(|(s, _, _)| s.name == scenario.name)?;
            let units = processes * report.concurrency;
            let speedup = speedup(wall_of(scenario.baseline()), report.wall_s);
            let flagged = trust::flags(&trust::Figures {
                cpu_bound: scenario.job == JobKind::Cpu,
                units,
                cores: settings.cores,
                wall_s: report.wall_s,
                speedup,
                efficiency: efficiency(speedup, units),
                overhead_s: report.overhead_s,
            });
            Some(Row {
                name: scenario.name.into(),
                workload: report.workload.clone(),
                processes: *processes,
                strategy: report.strategy.clone(),
                concurrency: report.concurrency,
                units,
                wall_s: report.wall_s,
                speedup,
                efficiency: efficiency(speedup, units),
                effective_parallelism: report.effective_parallelism,
                cpu_utilisation: report.cpu_utilisation,
                items_ok: report.items_ok,
                items_failed: report.items_failed,
                cpu_cores_busy: ratio(report.cpu_s, report.wall_s),
                flags: trust::reasons(&flagged),
                flagged,
                python_s: scenario.python_s,
                python_speedup: scenario
                    .python_s
                    .map(|p| ratio(scenarios::python_baseline(scenario.job), p)),
                about: scenario.about.into(),
            })
        })
        .collect();
    Ok(Some((warm_up, rows)))
}
