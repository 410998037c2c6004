//! Command-line arguments of `concur-cli`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use concur_core::Strategy;
use concur_core::pacing::ConcurrencyArg;
use std::path::PathBuf;
use std::time::Duration;

/// concur: run a job across worker processes and hosts, and see what each kind of
/// parallelism bought.
#[derive(Debug, Parser)]
#[command(
    name = "concur-cli",
    version,
    after_help = "Examples:\n  concur-cli submit sum-squares 5000000..5000020 --strategy threads --concurrency 4 --wait\n  concur-cli --coordinator http://127.0.0.1:7070 submit fetch --urls-file urls.txt --strategy async --wait\n  concur-cli sites serve --listen 127.0.0.1:8080 --latency 50ms --bytes 100k"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalOpts,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalOpts {
    /// Coordinator URL (several, comma-separated, for an active and its standbys); without it
    /// (and without CONCUR_COORDINATOR) `submit` runs a local cluster.
    #[arg(long, global = true, env = "CONCUR_COORDINATOR")]
    pub(crate) coordinator: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) output: OutputFormat,
    /// Client token the coordinator expects (prefer the environment variable: arguments are
    /// visible to other users).
    #[arg(long, global = true, env = "CONCUR_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// CA (PEM) to trust for the coordinator's TLS certificate (use an https:// URL).
    #[arg(long, global = true, env = "CONCUR_TLS_CA")]
    pub(crate) tls_ca: Option<std::path::PathBuf>,
    /// Log at debug level (RUST_LOG overrides).
    #[arg(long, global = true)]
    pub(crate) debug: bool,
    /// Local mode (`submit`, `demo`, `compare` without --coordinator): serve the local
    /// coordinator's web dashboard and /metrics on this loopback address (e.g. 127.0.0.1:8080).
    #[arg(long, global = true, value_name = "ADDR")]
    pub(crate) http_listen: Option<String>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Tables for people.
    Human,
    /// One JSON object for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Submit a job (runs a local cluster when no coordinator is given).
    Submit(SubmitOpts),
    /// Show a job's report: summary, shards and items (streamed, in constant memory).
    #[command(
        after_help = "Examples:\n  concur-cli --coordinator http://127.0.0.1:7070 job 3\n  concur-cli job 3 --wait --output json   # with CONCUR_COORDINATOR set\n  concur-cli job 3 --items failed         # every failed item, one per line\n  concur-cli --output json job 3 --items none   # summary and shards only"
    )]
    Job(JobShowOpts),
    /// Run the reference scenarios (threads, async, processes on I/O and CPU jobs) and compare.
    Demo(crate::demo::DemoOpts),
    /// Run a job over a matrix of processes, strategies and concurrency; fit, chart, recommend.
    Compare(crate::compare::CompareOpts),
    /// List the coordinator's jobs (the most recent first, oldest printed first).
    #[command(
        after_help = "Examples:\n  concur-cli --coordinator http://127.0.0.1:7070 jobs --output json\n  concur-cli jobs --state running,pending\n  concur-cli jobs --state failed --limit 5"
    )]
    Jobs(JobListOpts),
    /// List the workers attached to the coordinator.
    #[command(
        after_help = "Example:\n  concur-cli --coordinator http://127.0.0.1:7070 workers   # host, slots, load, state, version, last heartbeat"
    )]
    Workers,
    /// Watch the workers and jobs live (a plain snapshot when stdout is not a terminal).
    Top(crate::top::TopOpts),
    /// Cancel a job.
    #[command(
        after_help = "Example:\n  concur-cli --coordinator http://127.0.0.1:7070 cancel 3   # running shards stop on their workers"
    )]
    Cancel(JobCancelOpts),
    /// Delete a finished job and its results from the coordinator.
    #[command(
        after_help = "Example:\n  concur-cli --coordinator http://127.0.0.1:7070 delete 3\n\nFinished jobs are also forgotten on their own: see concur-coordinator --retain-jobs and --retain-for."
    )]
    Delete(JobDeleteOpts),
    /// Workers on other machines over ssh: start (copying the binary), stop, check.
    #[command(
        after_help = "Examples:\n  concur-cli cluster up -c http://10.0.0.1:7070 --token-file worker-token node1 user@node2\n  concur-cli cluster status -c http://10.0.0.1:7070 node1 user@node2\n  concur-cli cluster down node1 user@node2\n\nMore: concur-cli cluster up --help, docs/cluster.md"
    )]
    Cluster {
        #[command(subcommand)]
        command: crate::cluster::ClusterCommand,
    },
    /// The local site simulator, a stand-in for the internet.
    Sites {
        #[command(subcommand)]
        command: SitesCommand,
    },
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  concur-cli completions bash > /etc/bash_completion.d/concur-cli\n  concur-cli completions zsh > ~/.zfunc/_concur-cli"
    )]
    Completions {
        /// Shell to generate completions for.
        shell: clap_complete::Shell,
    },
    /// Run as a local worker (used by local mode; not for direct use).
    #[command(name = "__worker", hide = true)]
    Worker(concur_worker::WorkerOpts),
}

#[derive(Debug, Args)]
pub(crate) struct SubmitOpts {
    #[command(subcommand)]
    pub(crate) workload: WorkloadArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkloadArgs {
    /// For each n, the exact sum of i*i for i in 0..n (CPU-bound).
    #[command(
        after_help = "Examples:\n  concur-cli submit sum-squares 5000000..5000020 --strategy rayon --wait\n  concur-cli submit sum-squares 10,20,30\n  concur-cli submit sum-squares 4000000000 --shards 8   # one huge n, split in 8 sub-ranges"
    )]
    SumSquares {
        #[command(flatten)]
        input: SumSquaresInput,
        #[command(flatten)]
        run: RunOpts,
    },
    /// GET each URL and read the whole body (I/O-bound).
    #[command(
        after_help = "Examples:\n  concur-cli submit fetch http://127.0.0.1:8080/a http://127.0.0.1:8080/b --strategy async\n  concur-cli submit fetch --urls-file urls.txt --strategy threads --concurrency 10\n  concur-cli submit fetch --urls-file urls.txt --strategy async --concurrency auto --per-host-connections 8"
    )]
    Fetch {
        #[command(flatten)]
        input: FetchInput,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Run a program once per item; `{}` in its arguments is the item (appended if absent).
    #[command(
        after_help = "No shell is involved: items are passed as single arguments. For pipes or globs, run a\nshell yourself. Workers refuse exec unless started with --allow-exec (local mode allows it).\n\nExamples:\n  concur-cli submit exec --range 1..100 --strategy threads --concurrency 8 -- sleep 0.1\n  concur-cli submit exec --items-file hosts.txt -- ping -c1 {}\n  concur-cli submit exec a.txt b.txt -- sh -c 'gzip -k \"$1\"' sh {}"
    )]
    Exec {
        #[command(flatten)]
        input: ExecInput,
        #[command(flatten)]
        run: RunOpts,
    },
}

/// The inputs of an exec job (shared by `submit` and `compare`).
#[derive(Debug, Clone, Args)]
pub(crate) struct ExecInput {
    /// Items, one argument each (named `item` because `--items` picks the report's rows).
    #[arg(value_name = "ITEM", conflicts_with_all = ["items_file", "range"])]
    pub(crate) item: Vec<String>,
    /// File with one item per line (empty lines skipped).
    #[arg(long, conflicts_with = "range")]
    pub(crate) items_file: Option<PathBuf>,
    /// The integers a..b (end exclusive) as items.
    #[arg(long, value_name = "A..B")]
    pub(crate) range: Option<String>,
    /// Per-item timeout: the item's whole process group is killed after it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// After `--`: the program and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
    pub(crate) command: Vec<String>,
}

/// The inputs of a sum-squares job (shared by `submit` and `compare`).
#[derive(Debug, Clone, Args)]
pub(crate) struct SumSquaresInput {
    /// A half-open range `a..b` or a list `x,y,z`.
    pub(crate) spec: String,
}

/// The inputs of a fetch job (shared by `submit` and `compare`).
#[derive(Debug, Clone, Args)]
pub(crate) struct FetchInput {
    /// URLs to fetch (http or https).
    #[arg(required_unless_present = "urls_file", conflicts_with = "urls_file")]
    pub(crate) urls: Vec<String>,
    /// File with one URL per line (blank lines and # comments ignored).
    #[arg(long)]
    pub(crate) urls_file: Option<PathBuf>,
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// Politeness: requests in flight to one host, per worker, at most.
    #[arg(long, value_name = "N", value_parser = crate::compare::parse_positive)]
    pub(crate) per_host_connections: Option<u32>,
    /// Politeness: time between the starts of two requests to one host, per worker, at least
    /// (e.g. 200ms).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) per_host_delay: Option<Duration>,
}

/// How to run a job: strategy, concurrency, sharding, placement.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunOpts {
    /// In-process strategy of each worker: sequential, threads, async, rayon, async-blocking or
    /// async-cpu.
    #[arg(long, value_parser = parse_strategy, default_value = "sequential")]
    pub(crate) strategy: Strategy,
    /// Threads or tasks per worker, or `auto`: each worker tunes its in-flight limit from the
    /// latency and throughput it measures (`auto:MAX` caps it; plain `auto` at 256)
    /// [default: sequential 1, threads 8, async 64, rayon = cores].
    #[arg(long, value_name = "N|auto[:MAX]")]
    pub(crate) concurrency: Option<ConcurrencyArg>,
    /// Number of shards [default: one per worker slot].
    #[arg(long)]
    pub(crate) shards: Option<u32>,
    /// Local mode: worker processes to fork [default: one per core].
    #[arg(long)]
    pub(crate) local_workers: Option<u32>,
    /// Wait for the job to finish and print its report (always on in local mode).
    #[arg(long)]
    pub(crate) wait: bool,
    /// Re-leases allowed per shard when its worker is lost.
    #[arg(long)]
    pub(crate) max_retries: Option<u32>,
    /// A label shown in job listings.
    #[arg(long, default_value = "")]
    pub(crate) label: String,
    /// With --wait (or in local mode): which items the report lists, as for `job --items`.
    #[arg(long, value_enum)]
    pub(crate) items: Option<ItemsShown>,
    /// With --wait (or in local mode): also write the job's timeline as a Chrome Trace Event
    /// file, as `job --trace` does.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,
}

pub(crate) fn parse_strategy(text: &str) -> Result<Strategy, String> {
    text.parse::<Strategy>().map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub(crate) struct JobShowOpts {
    /// The job's id.
    pub(crate) job_id: u64,
    /// Wait until the job finishes (following it across coordinator restarts).
    #[arg(long)]
    pub(crate) wait: bool,
    /// Which items to list: all, ok, failed, unfinished or none [default: JSON all; human the
    /// failures and a sample].
    #[arg(long, value_enum)]
    pub(crate) items: Option<ItemsShown>,
    /// Also write the job's timeline as a Chrome Trace Event file (open it in
    /// ui.perfetto.dev or chrome://tracing): a process per worker, a thread per slot and lane.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,
}

/// Which of a job's items a report lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ItemsShown {
    /// Every item.
    All,
    /// Items that succeeded.
    Ok,
    /// Items that failed.
    Failed,
    /// Items not finished: waiting, running, or never run (a cancelled job).
    Unfinished,
    /// No items: the summary and shards only.
    None,
}

#[derive(Debug, Args)]
pub(crate) struct JobListOpts {
    /// Only jobs in these states (comma-separated or repeated): pending, running, succeeded,
    /// failed, cancelled.
    #[arg(long, value_delimiter = ',', value_parser = parse_state)]
    pub(crate) state: Vec<concur_core::report::JobState>,
    /// The most recent jobs to list at most (0 = all).
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u32,
}

fn parse_state(text: &str) -> Result<concur_core::report::JobState, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub(crate) struct JobCancelOpts {
    /// The job's id.
    pub(crate) job_id: u64,
}

#[derive(Debug, Args)]
pub(crate) struct JobDeleteOpts {
    /// The job's id.
    pub(crate) job_id: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SitesCommand {
    /// Serve simulated sites: every GET answers after a latency with a body of a set size.
    #[command(
        after_help = "Per-request overrides: ?latency=20ms&bytes=5000&status=500\nGET /__stats: requests, peak in flight and least gap between arrivals, per Host; shed count.\nExamples:\n  concur-cli sites serve --listen 127.0.0.1:8080 --latency 50ms --jitter 10ms --bytes 100k --error-rate 0.01\n  concur-cli sites serve --listen 127.0.0.1:8080 --latency 20ms --capacity 16 --queue-limit 32"
    )]
    Serve(crate::sites::SitesServeOpts),
}
