//! What `top` shows: the coordinator's workers and jobs from one poll, with each job's rate
//! and ETA worked out from the poll before (the coordinator keeps no rates itself).

use concur_proto::convert::{job_state_from_i32, strategy_from_i32};
use concur_proto::pb;
use serde::Serialize;

/// One answer of ListWorkers and ListJobs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Poll {
    pub(crate) workers: Vec<pb::WorkerSummary>,
    pub(crate) jobs: Vec<pb::JobSummary>,
    /// Jobs that matched before the limit.
    pub(crate) matched: u64,
}

/// A worker's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WorkerRow {
    pub(crate) worker_id: u64,
    /// `host:pid`.
    pub(crate) process: String,
    pub(crate) slots: u32,
    pub(crate) running: u32,
    pub(crate) state: String,
    pub(crate) shards_done: u64,
    /// Seconds since its last heartbeat.
    pub(crate) last_heartbeat_s: f64,
}

/// A job's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JobRow {
    pub(crate) job_id: u64,
    pub(crate) state: String,
    /// `sum-squares threads x4`.
    pub(crate) what: String,
    pub(crate) items_total: u64,
    /// Finished items, ok or failed.
    pub(crate) items_done: u64,
    pub(crate) items_failed: u64,
    pub(crate) elapsed_s: f64,
    /// Items per second between the last two polls (since submission on the first poll).
    pub(crate) rate: Option<f64>,
    /// Seconds left at that rate, while the job runs.
    pub(crate) eta_s: Option<f64>,
    pub(crate) label: String,
}

impl JobRow {
    /// Finished share, 0..=1.
    pub(crate) fn fraction(&self) -> f64 {
        if self.items_total == 0 {
            return 0.0;
        }
        (self.items_done as f64 / self.items_total as f64).clamp(0.0, 1.0)
    }

    /// Whether the job still runs (or waits to).
    pub(crate) fn active(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "running")
    }
}

/// Everything on screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct View {
    pub(crate) coordinator: String,
    pub(crate) workers: Vec<WorkerRow>,
    /// The most recent first.
    pub(crate) jobs: Vec<JobRow>,
    pub(crate) jobs_matched: u64,
}

/// Items per second: over the interval between two polls when the job's clock moved, else
/// over its whole life.
pub(crate) fn rate(previous: Option<(f64, u64)>, elapsed_s: f64, done: u64) -> Option<f64> {
    if let Some((before_s, before_done)) = previous {
        let span = elapsed_s - before_s;
        if span > 1e-6 && done >= before_done {
            return Some((done - before_done) as f64 / span);
        }
    }
    (elapsed_s > 0.0).then(|| done as f64 / elapsed_s)
}

/// Seconds to finish `left` items at `rate`, when that is known and the job runs.
pub(crate) fn eta(active: bool, left: u64, rate: Option<f64>) -> Option<f64> {
    match rate {
        Some(r) if active && r > 0.0 => Some(left as f64 / r),
        _ => None,
    }
}

fn job_row(job: &pb::JobSummary, previous: Option<&pb::JobSummary>) -> JobRow {
    let p = job.progress.unwrap_or_default();
    let before = previous
        .and_then(|j| j.progress)
        .map(|b| (b.elapsed_s, b.items_done));
    let state = job_state_from_i32(job.state).as_str().to_string();
    let rate = rate(before, p.elapsed_s, p.items_done);
    let active = matches!(state.as_str(), "pending" | "running");
    JobRow {
        job_id: job.job_id,
        what: format!(
            "{} {} {}",
            job.workload,
            strategy_from_i32(job.strategy).map_or("unknown", |s| s.as_str()),
            concur_core::pacing::describe_recorded(job.concurrency)
        ),
        state,
        items_total: p.items_total,
        items_done: p.items_done,
        items_failed: p.items_failed,
        elapsed_s: p.elapsed_s,
        rate,
        eta_s: eta(active, p.items_total.saturating_sub(p.items_done), rate),
        label: job.label.clone(),
    }
}

/// The view of `now`, with rates from `previous` where the same job was seen.
pub(crate) fn view(coordinator: &str, previous: Option<&Poll>, now: &Poll) -> View {
    let workers = now
        .workers
        .iter()
        .map(|w| WorkerRow {
            worker_id: w.worker_id,
            process: format!("{}:{}", w.host, w.pid),
            slots: w.slots,
            running: w.running,
            state: w.state.clone(),
            shards_done: w.shards_done,
            last_heartbeat_s: w.last_heartbeat_s,
        })
        .collect();
    let jobs = now
        .jobs
        .iter()
        .rev()
        .map(|job| {
            let before = previous.and_then(|p| p.jobs.iter().find(|j| j.job_id == job.job_id));
            job_row(job, before)
        })
        .collect();
    View {
        coordinator: coordinator.to_string(),
        workers,
        jobs,
        jobs_matched: now.matched,
    }
}

/// `1m05s`, `42s`, `-`.
pub(crate) fn duration(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() && s >= 60.0 => {
            let s = s.round() as u64;
            format!("{}m{:02}s", s / 60, s % 60)
        }
        Some(s) if s.is_finite() => format!("{s:.0}s"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, state: pb::JobState, done: u64, elapsed_s: f64) -> pb::JobSummary {
        pb::JobSummary {
            job_id: id,
            state: state.into(),
            workload: "sum-squares".into(),
            concurrency: 4,
            progress: Some(pb::JobProgress {
                job_id: id,
                items_total: 100,
                items_done: done,
                elapsed_s,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_rate_is_taken_between_polls_and_gives_the_eta() {
        let first = Poll {
            jobs: vec![job(7, pb::JobState::Running, 10, 10.0)],
            ..Default::default()
        };
        let second = Poll {
            jobs: vec![job(7, pb::JobState::Running, 40, 11.0)],
            ..Default::default()
        };
        let alone = view("c", None, &first);
        assert_eq!(
            alone.jobs[0].rate,
            Some(1.0),
            "since submission: 10 in 10 s"
        );
        let row = &view("c", Some(&first), &second).jobs[0];
        assert_eq!(row.rate, Some(30.0), "30 items in the last second");
        assert_eq!(row.eta_s, Some(2.0), "60 left at 30/s");
        assert!((row.fraction() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn finished_jobs_have_no_eta_and_jobs_list_newest_first() {
        let poll = Poll {
            jobs: vec![
                job(1, pb::JobState::Succeeded, 100, 5.0),
                job(2, pb::JobState::Pending, 0, 0.0),
            ],
            ..Default::default()
        };
        let v = view("c", None, &poll);
        assert_eq!((v.jobs[0].job_id, v.jobs[1].job_id), (2, 1));
        assert_eq!((v.jobs[0].rate, v.jobs[0].eta_s), (None, None));
        assert_eq!((v.jobs[1].rate, v.jobs[1].eta_s), (Some(20.0), None));
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(Some(65.2)), "1m05s");
        assert_eq!(duration(Some(4.4)), "4s");
        assert_eq!(duration(None), "-");
    }
}
