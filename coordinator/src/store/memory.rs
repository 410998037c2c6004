//! The in-memory store, for `--in-memory` and local mode: the same interface as SQLite, nothing
//! survives the process. Retention applies too, so a long-lived in-memory coordinator keeps a
//! bounded number of finished jobs.

use super::{
    Loaded, NewJobRecord, Result, Retention, StoreRead, StoreWrite, StoredInput, URL_CHUNK, WriteOp,
};
use crate::scheduler::{Persist, StoredEnd, StoredShard};
use concur_core::report::{JobRecord, JobState};
use concur_core::workload::Workload;
use concur_core::{JobId, JobSpec, Outcome, ShardId};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
struct StoredJob {
    record: JobRecord,
    spec: Arc<JobSpec>,
    shards_requested: u32,
    shards: BTreeMap<ShardId, StoredShard>,
    results: HashMap<ShardId, Vec<Outcome>>,
}

#[derive(Debug, Default)]
struct Data {
    jobs: BTreeMap<JobId, StoredJob>,
}

/// The writing side; [`MemoryStore::reader`] gives the reading side over the same data.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
}

/// The reading side of a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryReader {
    data: Arc<Mutex<Data>>,
}

fn lock(data: &Mutex<Data>) -> MutexGuard<'_, Data> {
    data.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader over the same data.
    pub fn reader(&self) -> MemoryReader {
        MemoryReader {
            data: self.data.clone(),
        }
    }

    /// Nothing to restore: an in-memory store starts empty.
    pub fn load(&mut self) -> Loaded {
        Loaded {
            next_job_id: JobId(1),
            ..Loaded::default()
        }
    }
}

impl StoreWrite for MemoryStore {
    fn submit(&mut self, job: &NewJobRecord) -> Result<()> {
        lock(&self.data).jobs.insert(
            job.record.job_id,
            StoredJob {
                record: job.record.clone(),
                spec: job.spec.clone(),
                shards_requested: job.shards,
                shards: BTreeMap::new(),
                results: HashMap::new(),
            },
        );
        Ok(())
    }

    fn apply(&mut self, ops: &[WriteOp]) -> Result<()> {
        let mut removed = Vec::new();
        let mut data = lock(&self.data);
        for op in ops {
            match op {
                WriteOp::Delete(job_id) => removed.extend(data.jobs.remove(job_id)),
                WriteOp::Persist(event) => apply(&mut data, event),
            }
        }
        drop(data);
        // Dropped outside the lock: a big job's outcomes take a while to free.
        drop(removed);
        Ok(())
    }

    fn prune(&mut self, retention: &Retention, now_unix_ms: u64, _budget: usize) -> Result<bool> {
        let cutoff = retention.cutoff_unix_ms(now_unix_ms);
        let mut data = lock(&self.data);
        let finished: Vec<JobId> = data
            .jobs
            .values()
            .filter(|job| job.record.state.is_final())
            .map(|job| job.record.job_id)
            .collect();
        let beyond = if retention.max_jobs == 0 {
            0
        } else {
            finished.len().saturating_sub(retention.max_jobs as usize)
        };
        let expired: Vec<JobId> = finished
            .iter()
            .enumerate()
            .filter(|(i, id)| *i < beyond || data.jobs[id].record.submitted_unix_ms < cutoff)
            .map(|(_, id)| *id)
            .collect();
        let removed: Vec<StoredJob> = expired
            .iter()
            .filter_map(|id| data.jobs.remove(id))
            .collect();
        drop(data);
        drop(removed);
        Ok(false)
    }
}

fn apply(data: &mut Data, event: &Persist) {
    let job_id = match event {
        Persist::JobStarted { job_id } => *job_id,
        Persist::ShardLeased { lease } => lease.job_id,
        Persist::ShardCommitted { lease, .. } => lease.job_id,
        Persist::ShardGaveUp { job_id, .. } => *job_id,
        Persist::JobFinished { record } => record.job_id,
        Persist::StaleResults { job_id, .. } => *job_id,
        Persist::WorkerIdsReserved { .. } => return,
    };
    let Some(job) = data.jobs.get_mut(&job_id) else {
        return;
    };
    match event {
        Persist::JobStarted { .. } => {
            if job.record.state == JobState::Pending {
                job.record.state = JobState::Running;
            }
        }
        Persist::ShardLeased { lease } => {
            let shard = job.shards.entry(lease.shard_id).or_insert(StoredShard {
                shard_id: lease.shard_id,
                attempt: lease.attempt,
                end: None,
            });
            shard.attempt = lease.attempt;
        }
        Persist::ShardCommitted {
            lease,
            row,
            outcomes,
            ..
        } => {
            let units_ok = outcomes.iter().filter(|o| o.ok).count() as u64;
            job.shards.insert(
                lease.shard_id,
                StoredShard {
                    shard_id: lease.shard_id,
                    attempt: lease.attempt,
                    end: Some(StoredEnd {
                        row: row.clone(),
                        units_ok,
                        units_failed: outcomes.len() as u64 - units_ok,
                        gave_up: false,
                    }),
                },
            );
            job.results.insert(lease.shard_id, outcomes.clone());
        }
        Persist::ShardGaveUp { row, .. } => {
            job.shards.insert(
                row.shard_id,
                StoredShard {
                    shard_id: row.shard_id,
                    attempt: row.attempt,
                    end: Some(StoredEnd {
                        row: row.clone(),
                        units_ok: 0,
                        units_failed: row.items,
                        gave_up: true,
                    }),
                },
            );
        }
        Persist::JobFinished { record } => job.record = record.clone(),
        Persist::StaleResults { count, .. } => {
            job.record.stale_results_discarded =
                job.record.stale_results_discarded.saturating_add(*count);
        }
        Persist::WorkerIdsReserved { .. } => {}
    }
}

impl StoreRead for MemoryReader {
    fn job(&self, job_id: JobId) -> Result<Option<JobRecord>> {
        Ok(lock(&self.data).jobs.get(&job_id).map(|j| j.record.clone()))
    }

    fn jobs(&self, states: &[JobState], limit: u32) -> Result<(Vec<JobRecord>, u64)> {
        let data = lock(&self.data);
        let matching: Vec<&StoredJob> = data
            .jobs
            .values()
            .filter(|j| states.is_empty() || states.contains(&j.record.state))
            .collect();
        let skip = if limit == 0 {
            0
        } else {
            matching.len().saturating_sub(limit as usize)
        };
        let jobs = matching[skip..].iter().map(|j| j.record.clone()).collect();
        Ok((jobs, matching.len() as u64))
    }

    fn input(&self, job_id: JobId) -> Result<Option<StoredInput>> {
        Ok(lock(&self.data).jobs.get(&job_id).map(|j| StoredInput {
            spec: j.spec.clone(),
            items: j.record.items.total,
            shards: j.shards_requested,
        }))
    }

    fn url_chunk(&self, job_id: JobId, chunk: u64) -> Result<Option<String>> {
        let data = lock(&self.data);
        let Some(Workload::Fetch(fetch)) = data.jobs.get(&job_id).map(|j| &j.spec.workload) else {
            return Ok(None);
        };
        let start = (chunk as usize).saturating_mul(URL_CHUNK);
        if start >= fetch.urls.len() {
            return Ok(None);
        }
        Ok(Some(
            fetch
                .urls
                .lines(start..(start + URL_CHUNK).min(fetch.urls.len())),
        ))
    }

    fn shards(&self, job_id: JobId, from: ShardId, limit: u32) -> Result<Vec<StoredShard>> {
        let data = lock(&self.data);
        let end = ShardId(from.get().saturating_add(limit));
        Ok(data.jobs.get(&job_id).map_or_else(Vec::new, |job| {
            job.shards
                .range(from..end)
                .map(|(_, s)| s.clone())
                .collect()
        }))
    }

    fn results(
        &self,
        job_id: JobId,
        shard_id: ShardId,
        from: u32,
        limit: usize,
    ) -> Result<Vec<(u32, Outcome)>> {
        let data = lock(&self.data);
        let Some(outcomes) = data
            .jobs
            .get(&job_id)
            .and_then(|j| j.results.get(&shard_id))
        else {
            return Ok(Vec::new());
        };
        Ok(outcomes
            .iter()
            .enumerate()
            .skip(from as usize)
            .take(limit)
            .map(|(unit, outcome)| (unit as u32, outcome.clone()))
            .collect())
    }
}
