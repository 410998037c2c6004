//! Durable state in an embedded SQLite database (WAL mode), so a restarted coordinator resumes
//! every job: committed shards stay committed, leased shards go back to pending with the next
//! attempt number.
//!
//! The scheduler emits [`Persist`] events; the service writes each event batch in one
//! transaction *before* it delivers any message that depends on it (a shard's `ShardAccepted`
//! goes out only after its results are committed). `synchronous = NORMAL` in WAL mode survives
//! a killed process (the kill -9 case); a power cut may lose the last transactions.

use crate::scheduler::{Persist, RestoredJob, RestoredShard};
use concur_core::report::{JobState, ShardRow};
use concur_core::{JobSpec, Outcome};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory or its lock file cannot be created.
    #[error("cannot use state directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another coordinator holds the directory.
    #[error("state directory {0} is in use by another coordinator")]
    Locked(PathBuf),
    /// SQLite failed.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored record does not decode.
    #[error("state database holds a corrupt record: {0}")]
    Corrupt(String),
}

/// The open database plus the lock that keeps a second coordinator out.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// Held for the store's lifetime; the kernel drops the lock if the process dies.
    _lock: File,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    spec TEXT NOT NULL,
    shards INTEGER NOT NULL,
    submitted_unix_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    wall_s REAL
);
CREATE TABLE IF NOT EXISTS shards (
    job_id INTEGER NOT NULL,
    shard_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    row TEXT,
    outcomes TEXT,
    PRIMARY KEY (job_id, shard_id)
);
";

/// The default state directory: `$XDG_STATE_HOME/concur`, else `~/.local/state/concur`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("concur");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/concur")
}

impl Store {
    /// Opens (creating if needed) the database in `dir` and locks the directory.
    ///
    /// # Errors
    /// The directory cannot be created, another coordinator holds it, or SQLite fails.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = File::create(dir.join("coordinator.lock")).map_err(io)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(StoreError::Locked(dir.to_path_buf()));
        }
        let conn = Connection::open(dir.join("state.sqlite3"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn, _lock: lock })
    }

    /// Writes a batch of events in one transaction.
    ///
    /// # Errors
    /// SQLite failed; nothing of the batch is stored.
    pub fn apply(&mut self, events: &[Persist]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for event in events {
            match event {
                Persist::JobSubmitted {
                    job_id,
                    spec,
                    shards,
                    submitted_unix_ms,
                } => {
                    let spec = to_json(spec)?;
                    tx.execute(
                        "INSERT INTO jobs (id, spec, shards, submitted_unix_ms, state) VALUES (?1, ?2, ?3, ?4, 'pending')",
                        params![*job_id as i64, spec, shards, *submitted_unix_ms as i64],
                    )?;
                }
                Persist::ShardLeased { lease } => {
                    tx.execute(
                        "INSERT INTO shards (job_id, shard_id, attempt) VALUES (?1, ?2, ?3)
                         ON CONFLICT (job_id, shard_id) DO UPDATE SET attempt = excluded.attempt",
                        params![lease.job_id as i64, lease.shard_id, lease.attempt],
                    )?;
                }
                Persist::ShardCommitted {
                    job_id,
                    shard_id,
                    row,
                    outcomes,
                } => {
                    tx.execute(
                        "INSERT INTO shards (job_id, shard_id, attempt, done, row, outcomes) VALUES (?1, ?2, ?3, 1, ?4, ?5)
                         ON CONFLICT (job_id, shard_id) DO UPDATE SET done = 1, row = excluded.row, outcomes = excluded.outcomes",
                        params![*job_id as i64, shard_id, row.attempt, to_json(row)?, to_json(outcomes)?],
                    )?;
                }
                Persist::JobFinished {
                    job_id,
                    state,
                    wall_s,
                } => {
                    tx.execute(
                        "UPDATE jobs SET state = ?2, wall_s = ?3 WHERE id = ?1",
                        params![*job_id as i64, state.as_str(), wall_s],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Reads every job back, oldest first.
    ///
    /// # Errors
    /// SQLite failed or a record does not decode.
    pub fn load(&self) -> Result<Vec<RestoredJob>, StoreError> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let mut shards: HashMap<u64, Vec<RestoredShard>> = HashMap::new();
        let mut statement = self
            .conn
            .prepare("SELECT job_id, shard_id, attempt, done, row, outcomes FROM shards")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let job_id = row.get::<_, i64>(0)? as u64;
            let done: bool = row.get(3)?;
            let committed = if done {
                let shard_row: ShardRow =
                    serde_json::from_str(&row.get::<_, String>(4)?).map_err(corrupt)?;
                let outcomes: Vec<Outcome> =
                    serde_json::from_str(&row.get::<_, String>(5)?).map_err(corrupt)?;
                Some((shard_row, outcomes))
            } else {
                None
            };
            shards.entry(job_id).or_default().push(RestoredShard {
                shard_id: row.get(1)?,
                attempt: row.get(2)?,
                committed,
            });
        }
        let mut statement = self.conn.prepare(
            "SELECT id, spec, shards, submitted_unix_ms, state, wall_s FROM jobs ORDER BY id",
        )?;
        let mut rows = statement.query([])?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next()? {
            let job_id = row.get::<_, i64>(0)? as u64;
            let spec: JobSpec = serde_json::from_str(&row.get::<_, String>(1)?).map_err(corrupt)?;
            let state = parse_state(&row.get::<_, String>(4)?)?;
            let wall_s: Option<f64> = row.get(5)?;
            jobs.push(RestoredJob {
                job_id,
                spec,
                shards: row.get(2)?,
                submitted_unix_ms: row.get::<_, i64>(3)? as u64,
                finished: wall_s.filter(|_| state.is_final()).map(|w| (state, w)),
                shard_states: shards.remove(&job_id).unwrap_or_default(),
            });
        }
        Ok(jobs)
    }

    /// The number of stored jobs (for logs).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn job_count(&self) -> Result<u64, StoreError> {
        let count: Option<i64> = self
            .conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .optional()?;
        Ok(count.unwrap_or(0) as u64)
    }
}

fn parse_state(text: &str) -> Result<JobState, StoreError> {
    Ok(match text {
        "pending" => JobState::Pending,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "cancelled" => JobState::Cancelled,
        other => return Err(StoreError::Corrupt(format!("unknown job state '{other}'"))),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{Comm, LeaseKey, Scheduler, SchedulerConfig, ShardTiming, WorkerInfo};
    use concur_core::{NumberSpec, Strategy, Workload, kernel};
    use std::time::Instant;

    /// Collects persist events and the assignments a test must complete.
    #[derive(Default)]
    struct Recorder {
        events: Vec<Persist>,
        assigned: Vec<(u64, crate::scheduler::Assignment)>,
    }

    impl Comm for Recorder {
        fn assign(&mut self, worker: u64, assignment: crate::scheduler::Assignment) {
            self.assigned.push((worker, assignment));
        }
        fn cancel(&mut self, _: u64, _: LeaseKey, _: &str) {}
        fn job_changed(&mut self, _: u64) {}
        fn accepted(&mut self, _: u64, _: LeaseKey) {}
        fn persist(&mut self, event: Persist) {
            self.events.push(event);
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("concur-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn finish(
        s: &mut Scheduler,
        rec: &mut Recorder,
        worker: u64,
        a: &crate::scheduler::Assignment,
    ) {
        let results = a
            .units
            .iter()
            .enumerate()
            .map(|(i, unit)| {
                let concur_core::plan::Unit::SumSquares { lo, hi, .. } = unit else {
                    unreachable!()
                };
                let outcome = Outcome {
                    ok: true,
                    value: kernel::sum_squares_range(*lo, *hi),
                    ..Outcome::default()
                };
                (i as u32, outcome)
            })
            .collect();
        let now = Instant::now();
        s.on_unit_results(worker, a.lease, results, now, rec);
        s.on_shard_finished(worker, a.lease, ShardTiming::default(), now, rec);
    }

    #[test]
    fn a_restarted_scheduler_keeps_committed_shards_and_re_leases_the_rest() {
        let dir = temp_dir("restart");
        let mut store = Store::open(&dir).unwrap();
        let mut s = Scheduler::new(SchedulerConfig::default());
        let mut rec = Recorder::default();
        let now = Instant::now();
        let worker = s.on_worker_attached(
            WorkerInfo {
                slots: 2,
                ..WorkerInfo::default()
            },
            now,
            &mut rec,
        );
        let spec = JobSpec {
            workload: Workload::SumSquares(NumberSpec::parse("0..30").unwrap()),
            strategy: Strategy::Sequential,
            concurrency: 1,
            shards: Some(3),
            max_retries: None,
            label: "persisted".into(),
        };
        let job = s.on_job_submitted(spec, now, 1_000, &mut rec).unwrap();
        // Two shards leased; finish one of them.
        let (_, first) = rec.assigned.remove(0);
        finish(&mut s, &mut rec, worker, &first);
        store.apply(&rec.events).unwrap();
        drop(store);

        // "Restart": a second open of the same directory.
        let store = Store::open(&dir).unwrap();
        let jobs = store.load().unwrap();
        assert_eq!(jobs.len(), 1);
        let mut s = Scheduler::restore(SchedulerConfig::default(), jobs, Instant::now(), 2_000);
        let progress = s.job_progress(job, Instant::now()).unwrap();
        assert_eq!(
            progress.shards_done, 1,
            "the committed shard stays committed"
        );
        assert_eq!(progress.items_done, 10);

        let mut rec = Recorder::default();
        let worker = s.on_worker_attached(
            WorkerInfo {
                slots: 4,
                ..WorkerInfo::default()
            },
            Instant::now(),
            &mut rec,
        );
        let leased: Vec<_> = rec.assigned.drain(..).collect();
        assert_eq!(
            leased.len(),
            2,
            "the two unfinished shards are pending again"
        );
        let attempts: Vec<u32> = leased.iter().map(|(_, a)| a.lease.attempt).collect();
        // Both were leased (attempt 1) when the coordinator stopped: now they run as attempt 2.
        assert_eq!(attempts, vec![2, 2]);
        for (_, a) in &leased {
            finish(&mut s, &mut rec, worker, a);
        }
        let snapshot = s.job_snapshot(job, Instant::now()).unwrap();
        assert_eq!(snapshot.progress.state, JobState::Succeeded);
        for (input, outcome) in &snapshot.items {
            let n: u64 = input.parse().unwrap();
            assert_eq!(
                Some(outcome.as_ref().unwrap().value),
                kernel::closed_form(n)
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_job_planned_into_fewer_shards_than_asked_restores_and_ids_are_not_reused() {
        let dir = temp_dir("fewer");
        let mut store = Store::open(&dir).unwrap();
        let mut s = Scheduler::new(SchedulerConfig::default());
        let mut rec = Recorder::default();
        let now = Instant::now();
        // 4 small items over 8 shards: the planner splits them into fewer parts than asked.
        let spec = JobSpec {
            workload: Workload::SumSquares(NumberSpec::parse("0..4").unwrap()),
            strategy: Strategy::Sequential,
            concurrency: 1,
            shards: Some(8),
            max_retries: None,
            label: String::new(),
        };
        let job = s.on_job_submitted(spec, now, 1, &mut rec).unwrap();
        let planned = s.job_progress(job, now).unwrap().shards_total;
        assert!(
            planned < 8,
            "the premise: fewer plans ({planned}) than asked"
        );
        store.apply(&rec.events).unwrap();
        let jobs = store.load().unwrap();
        let mut s = Scheduler::restore(SchedulerConfig::default(), jobs, Instant::now(), 2);
        assert_eq!(
            s.job_progress(job, Instant::now()).unwrap().shards_total,
            planned
        );
        let spec = JobSpec {
            workload: Workload::SumSquares(NumberSpec::parse("1").unwrap()),
            strategy: Strategy::Sequential,
            concurrency: 1,
            shards: None,
            max_retries: None,
            label: String::new(),
        };
        let next = s
            .on_job_submitted(spec, Instant::now(), 3, &mut Recorder::default())
            .unwrap();
        assert!(next > job, "job ids are never reused after a restart");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_second_coordinator_cannot_open_the_same_state_dir() {
        let dir = temp_dir("lock");
        let _first = Store::open(&dir).unwrap();
        assert!(matches!(Store::open(&dir), Err(StoreError::Locked(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn finished_jobs_come_back_with_their_state_and_wall_time() {
        let dir = temp_dir("finished");
        let mut store = Store::open(&dir).unwrap();
        let spec = JobSpec {
            workload: Workload::SumSquares(NumberSpec::parse("5").unwrap()),
            strategy: Strategy::Rayon,
            concurrency: 2,
            shards: Some(1),
            max_retries: None,
            label: String::new(),
        };
        store
            .apply(&[
                Persist::JobSubmitted {
                    job_id: 7,
                    spec: spec.clone(),
                    shards: 1,
                    submitted_unix_ms: 5,
                },
                Persist::ShardCommitted {
                    job_id: 7,
                    shard_id: 0,
                    row: ShardRow::default(),
                    outcomes: vec![Outcome {
                        ok: true,
                        value: u128::MAX,
                        ..Outcome::default()
                    }],
                },
                Persist::JobFinished {
                    job_id: 7,
                    state: JobState::Succeeded,
                    wall_s: 1.5,
                },
            ])
            .unwrap();
        let jobs = store.load().unwrap();
        assert_eq!(jobs[0].finished, Some((JobState::Succeeded, 1.5)));
        assert_eq!(jobs[0].spec, spec);
        let outcomes = &jobs[0].shard_states[0].committed.as_ref().unwrap().1;
        assert_eq!(
            outcomes[0].value,
            u128::MAX,
            "u128 values survive the round trip"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
