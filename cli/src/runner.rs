//! Running a series of jobs for `compare` and `demo`: on local clusters (one per process
//! count, kept for every run that needs it) or on a running coordinator, where "processes"
//! means attached workers used and hosts count as scale-out. Only one job runs at a time, so
//! the idle clusters' workers do not compete with it.

use crate::client::{self, Client};
use crate::exit::CliError;
use crate::local::LocalCluster;
use crate::progress::RunsProgress;
use crate::{report, submit, watch};
use concur_core::JobSpec;
use concur_core::report::JobSummary;
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The untimed runs before the timed ones: one per worker-process count, so that no cell's
/// figure carries a cluster's first job (connections set up, code paged in, the CPU clock
/// ramping up). Without it the baseline, which runs first, is slow and every speedup inflated.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct WarmUp {
    /// Runs made.
    pub(crate) runs: u32,
    /// Their wall times, summed.
    pub(crate) wall_s: f64,
}

impl WarmUp {
    /// The line printed before a table: `warm-up: 2 runs, 0.84 s, not counted`.
    pub(crate) fn describe(warm_up: Option<&WarmUp>) -> String {
        match warm_up {
            Some(w) => format!(
                "warm-up: {} run{}, {:.2} s, not counted",
                w.runs,
                if w.runs == 1 { "" } else { "s" },
                w.wall_s
            ),
            None => {
                "warm-up: skipped (--no-warm-up); the first runs may carry start-up costs".into()
            }
        }
    }
}

/// Where the jobs run.
#[derive(Debug)]
pub(crate) enum Target {
    /// Local mode: a cluster per process count, started on first use and kept (idle workers
    /// cost nothing) so runs of different counts can interleave.
    Local {
        /// Whether forked workers log at debug level.
        debug: bool,
        /// The clusters started so far.
        clusters: Vec<(LocalCluster, Client)>,
    },
    /// A running coordinator and the workers attached to it.
    Remote {
        /// Its URL.
        url: String,
        /// A connected client (boxed: it dwarfs the local variant).
        client: Box<Client>,
        /// Attached worker processes: the most "processes" a run can use.
        workers: u32,
        /// Distinct hosts among them.
        hosts: u32,
        /// Cores of those hosts, summed (each host counted once).
        cores: u32,
    },
}

impl Target {
    /// Local mode unless `coordinator` is given; a coordinator must have `max_processes`
    /// workers attached.
    ///
    /// # Errors
    /// The coordinator is unreachable or has too few workers (exit 2).
    pub(crate) async fn new(
        coordinator: Option<&str>,
        max_processes: u32,
        debug: bool,
    ) -> Result<Self, CliError> {
        let Some(address) = coordinator else {
            return Ok(Target::Local {
                debug,
                clusters: Vec::new(),
            });
        };
        let mut client = client::connect(address).await?;
        let workers = client::list_workers(&mut client).await?;
        let hosts = workers
            .iter()
            .map(|w| &w.host)
            .collect::<HashSet<_>>()
            .len() as u32;
        let mut host_cores: HashMap<&str, u32> = HashMap::new();
        for w in &workers {
            let entry = host_cores.entry(w.host.as_str()).or_default();
            *entry = (*entry).max(w.cores);
        }
        let cores = host_cores.values().sum::<u32>().max(1);
        let count = workers.len() as u32;
        if count < max_processes {
            return Err(CliError::Input(format!(
                "--processes asks for up to {max_processes} but only {count} workers are attached to {address}; start more workers (on more hosts for scale-out) or lower --processes"
            )));
        }
        Ok(Target::Remote {
            url: client::normalize(address),
            client: Box::new(client),
            workers: count,
            hosts,
            cores,
        })
    }

    /// Cores the jobs can use: this machine's in local mode, the attached hosts' otherwise.
    pub(crate) fn cores(&self) -> u32 {
        match self {
            Target::Local { .. } => concur_worker::system::cores(),
            Target::Remote { cores, .. } => *cores,
        }
    }

    /// Runs `spec` once, untimed, on each of `processes` worker-process counts. `None` when
    /// the user pressed Ctrl-C.
    ///
    /// # Errors
    /// As [`Target::run`].
    pub(crate) async fn warm_up(
        &mut self,
        spec: &JobSpec,
        processes: &[u32],
        progress: &RunsProgress,
    ) -> Result<Option<WarmUp>, CliError> {
        let mut warm_up = WarmUp {
            runs: 0,
            wall_s: 0.0,
        };
        for &p in processes {
            let bar = progress.job(&format!("warm-up on {p} process(es)"));
            let spec = JobSpec {
                label: format!("warm-up {}", spec.label),
                ..spec.clone()
            };
            let Some(report) = self.run(&spec, p, bar.as_ref()).await? else {
                return Ok(None);
            };
            progress.run_done(bar);
            warm_up.runs += 1;
            warm_up.wall_s += report.wall_s;
        }
        Ok(Some(warm_up))
    }

    /// The concurrency the shards of job `job_id` (run on `processes` processes) used,
    /// averaged over their run time: for a tuned job, the limit its workers settled on.
    ///
    /// # Errors
    /// The coordinator went away.
    pub(crate) async fn mean_shard_concurrency(
        &mut self,
        processes: u32,
        job_id: u64,
    ) -> Result<f64, CliError> {
        let (_, client) = self.client(processes).await?;
        let (mut weighted, mut time) = (0.0, 0.0);
        crate::report::shards(client, job_id, 0, |shard| {
            weighted += f64::from(shard.concurrency) * shard.run_s;
            time += shard.run_s;
        })
        .await?;
        Ok(if time > 0.0 { weighted / time } else { 0.0 })
    }

    /// A short description for reports: `local` or the coordinator's URL.
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Local { .. } => "local".into(),
            Target::Remote {
                url,
                workers,
                hosts,
                ..
            } => format!("{url} ({workers} workers on {hosts} hosts)"),
        }
    }

    /// The coordinator's URL and a client for runs on `processes` worker processes, starting
    /// a local cluster of that size on first use.
    async fn client(&mut self, processes: u32) -> Result<(String, &mut Client), CliError> {
        match self {
            Target::Remote { url, client, .. } => Ok((url.clone(), client)),
            Target::Local { debug, clusters } => {
                let index = match clusters.iter().position(|(c, _)| c.workers == processes) {
                    Some(index) => index,
                    None => {
                        let started = LocalCluster::start(processes, *debug).await?;
                        let client = client::connect(&started.url).await?;
                        clusters.push((started, client));
                        clusters.len() - 1
                    }
                };
                let (cluster, client) = &mut clusters[index];
                Ok((cluster.url.clone(), client))
            }
        }
    }

    /// Runs `spec` on `processes` worker processes (one shard each) and returns its report;
    /// `None` when the user pressed Ctrl-C (the job is cancelled).
    ///
    /// # Errors
    /// The cluster could not start, or the coordinator refused the job or went away.
    pub(crate) async fn run(
        &mut self,
        spec: &JobSpec,
        processes: u32,
        bar: Option<&ProgressBar>,
    ) -> Result<Option<JobSummary>, CliError> {
        let spec = JobSpec {
            // One shard per process: each process gets an equal share and "processes" is
            // exactly the number of worker processes that run the job.
            shards: Some(processes),
            ..spec.clone()
        };
        let (url, client) = self.client(processes).await?;
        let accepted = submit::submit(client, &spec).await?;
        // Quiet: a run is one of many, and its progress bar already shows where it stands.
        if !watch::follow(&url, client, accepted.job_id, bar, true).await? {
            return Ok(None);
        }
        Ok(Some(report::fetch_summary(client, accepted.job_id).await?))
    }

    /// Stops the local clusters, if any run.
    pub(crate) fn shutdown(&mut self) {
        if let Target::Local { clusters, .. } = self {
            for (cluster, _) in clusters.iter_mut() {
                cluster.shutdown();
            }
            clusters.clear();
        }
    }
}
