//! Job events: admission and submission, cancellation, unit results and a shard's finish, and
//! forgetting a finished job.

use super::{Admission, Comm, Disposition, NewJob, Persist, Scheduler, SchedulerError};
use concur_core::pacing::Pacing;
use concur_core::plan::default_shard_count;
use concur_core::protocol::ShardTiming;
use concur_core::report::JobState;
use concur_core::{JobId, JobSpec, LeaseKey, Outcome, WorkerId, Workload};
use std::sync::Arc;
use std::time::Instant;

impl Scheduler {
    /// Admits a job: checks the limit on unfinished jobs, allocates its id and picks its shard
    /// count (one per attached slot when the spec gives none, more for big jobs). The spec must
    /// have passed [`SchedulerConfig::validate`].
    ///
    /// # Errors
    /// [`SchedulerError::TooManyJobs`]; [`SchedulerError::ExecNotAllowed`] for an exec job
    /// that no attached worker may run (refused now rather than left pending for ever);
    /// [`SchedulerError::PacingUnsupported`] for a paced job when every attached worker is
    /// too old to pace it.
    pub fn admit(&mut self, spec: &JobSpec) -> Result<Admission, SchedulerError> {
        if let Workload::Exec(exec) = &spec.workload
            && !self
                .pool
                .iter()
                .any(|(_, w)| w.info.exec.allows(&exec.program))
        {
            return Err(SchedulerError::ExecNotAllowed(exec.program.clone()));
        }
        // Paced jobs need a worker of this release; with none attached yet, the job waits.
        if spec.pacing != Pacing::default()
            && self.pool.iter().next().is_some()
            && !self.pool.iter().any(|(_, w)| w.info.can_run(spec))
        {
            return Err(SchedulerError::PacingUnsupported);
        }
        let active = self.active_jobs() + self.admitting;
        if active >= self.config.max_active_jobs {
            return Err(SchedulerError::TooManyJobs {
                active,
                limit: self.config.max_active_jobs,
            });
        }
        let shards = spec.shards.unwrap_or_else(|| {
            default_shard_count(
                &spec.workload,
                self.pool.total_slots(),
                self.config.limits.max_shards,
            )
        });
        let job_id = self.next_job_id;
        self.next_job_id = JobId(job_id.get() + 1);
        self.admitting += 1;
        Ok(Admission { job_id, shards })
    }

    /// An admitted job could not be stored: it will never be inserted (its id stays unused).
    pub fn on_admission_dropped(&mut self) {
        self.admitting = self.admitting.saturating_sub(1);
    }

    /// Inserts an admitted job, stored by now, and leases its shards to free workers.
    pub fn on_job_submitted(&mut self, job: NewJob, now: Instant, comm: &mut impl Comm) {
        let NewJob(job) = job;
        let id = job.id;
        self.admitting = self.admitting.saturating_sub(1);
        self.next_job_id = self.next_job_id.max(JobId(id.get() + 1));
        self.jobs.insert(id, job);
        self.queue.push_back(id);
        comm.job_changed(id);
        self.dispatch(now, comm);
    }

    /// Validates, admits and inserts a job in one step (for tests and tools; the service
    /// stores a job between admitting and inserting it).
    ///
    /// # Errors
    /// An invalid spec or too many unfinished jobs.
    pub fn submit(
        &mut self,
        spec: JobSpec,
        now: Instant,
        unix_ms: u64,
        comm: &mut impl Comm,
    ) -> Result<JobId, SchedulerError> {
        self.config.validate(&spec)?;
        let admission = self.admit(&spec)?;
        self.on_job_submitted(admission.build(Arc::new(spec), now, unix_ms), now, comm);
        Ok(admission.job_id)
    }

    /// Cancels a job: pending shards are dropped, running ones cancelled on their workers.
    /// Cancelling a finished job changes nothing and returns its final state.
    ///
    /// # Errors
    /// [`SchedulerError::UnknownJob`].
    pub fn on_cancel(
        &mut self,
        job_id: JobId,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Result<JobState, SchedulerError> {
        let job = self
            .jobs
            .get_mut(&job_id)
            .ok_or(SchedulerError::UnknownJob(job_id))?;
        let Some(leases) = job.cancel(now) else {
            return Ok(job.state());
        };
        comm.persist(job.cancelled_record(now));
        for (worker, lease) in leases {
            comm.cancel(worker, lease, "job cancelled");
            self.pool.release(worker, job_id, lease.shard_id, false);
        }
        comm.job_changed(job_id);
        self.dispatch(now, comm);
        Ok(JobState::Cancelled)
    }

    /// A batch of unit results for a lease. Buffered only from the lease's current holder.
    pub fn on_unit_results(
        &mut self,
        worker: WorkerId,
        lease: LeaseKey,
        results: Vec<(u32, Outcome)>,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Disposition {
        self.pool.seen(worker, now);
        let count = results.len() as u64;
        let (current, stored_summary) = match self.jobs.get_mut(&lease.job_id) {
            Some(job) => (
                job.buffer_results(worker, lease, results),
                job.state().is_final(),
            ),
            None => (false, true),
        };
        if current {
            return Disposition::Accepted;
        }
        if stored_summary && count > 0 {
            // The job's summary is (or is about to be) stored: count the refusal there too.
            comm.persist(Persist::StaleResults {
                job_id: lease.job_id,
                count,
            });
        }
        comm.cancel(worker, lease, "stale lease: results discarded");
        Disposition::Discarded
    }

    /// A lease's shard finished: its results are committed and the worker's slot freed.
    /// Units the worker never reported fail (with the shard's error, if it sent one).
    pub fn on_shard_finished(
        &mut self,
        worker: WorkerId,
        lease: LeaseKey,
        timing: ShardTiming,
        now: Instant,
        comm: &mut impl Comm,
    ) -> Disposition {
        self.pool.seen(worker, now);
        let committed = match (self.pool.get(worker), self.jobs.get_mut(&lease.job_id)) {
            (Some(record), Some(job)) => job
                .commit(&record.info, worker, lease, timing, now)
                .map(|event| (event, job.finish_if_complete(now))),
            _ => None,
        };
        let Some((event, finished)) = committed else {
            comm.cancel(worker, lease, "stale lease: results discarded");
            return Disposition::Discarded;
        };
        comm.persist(event);
        if let Some(finished) = finished {
            comm.persist(finished);
        }
        comm.accepted(worker, lease);
        self.pool
            .release(worker, lease.job_id, lease.shard_id, true);
        comm.job_changed(lease.job_id);
        self.dispatch(now, comm);
        Disposition::Accepted
    }

    /// Forgets a finished job once its final state is stored (its report is served from the
    /// store from then on). Returns it so the caller can drop it outside any lock.
    pub fn evict(&mut self, job_id: JobId) -> Option<NewJob> {
        if self.jobs.get(&job_id)?.state().is_final() {
            self.jobs.remove(&job_id).map(NewJob)
        } else {
            None
        }
    }

    fn active_jobs(&self) -> u32 {
        self.jobs.values().filter(|j| !j.state().is_final()).count() as u32
    }
}
