//! Read-only views of the scheduler: progress, reports, listings.

use super::{JobProgress, JobSnapshot, Scheduler, WorkerView};
use concur_core::{JobId, JobSpec};
use std::time::Instant;

impl Scheduler {
    /// Progress of one job.
    pub fn job_progress(&self, job_id: JobId, now: Instant) -> Option<JobProgress> {
        self.jobs.get(&job_id).map(|job| job.progress(now))
    }

    /// Everything needed for a job's report.
    pub fn job_snapshot(&self, job_id: JobId, now: Instant) -> Option<JobSnapshot> {
        self.jobs.get(&job_id).map(|job| job.snapshot(now))
    }

    /// Every job, oldest first, with its spec (without item lists) and progress.
    pub fn list_jobs(&self, now: Instant) -> Vec<(JobProgress, &JobSpec, u64)> {
        self.jobs
            .values()
            .map(|job| (job.progress(now), &job.spec, job.submitted_unix_ms))
            .collect()
    }

    /// Every attached worker, by id.
    pub fn list_workers(&self, now: Instant) -> Vec<WorkerView> {
        let mut views: Vec<WorkerView> = self
            .workers
            .iter()
            .map(|(id, w)| WorkerView {
                worker_id: *id,
                info: w.info.clone(),
                running: w.running.len() as u32,
                last_heartbeat_s: now.saturating_duration_since(w.last_seen).as_secs_f64(),
                state: w.state(),
                shards_done: w.shards_done,
            })
            .collect();
        views.sort_by_key(|v| v.worker_id);
        views
    }

    /// Slots over all attached workers.
    pub fn total_slots(&self) -> u32 {
        self.workers.values().map(|w| w.info.slots).sum()
    }
}
