//! A version-2 database (before the timeline's columns) opens under version 3 with every
//! report intact, and new shards then store where they ran.

use super::sqlite::{self, Sqlite};
use super::tests::{run_job_on, sum_spec, temp_dir};
use super::*;
use crate::scheduler::{Scheduler, SchedulerConfig};

#[test]
fn a_version_2_database_gains_the_timeline_columns_and_keeps_its_reports() {
    let dir = temp_dir("v2");
    let mut store = Sqlite::open(&dir).unwrap();
    let mut scheduler = Scheduler::new(SchedulerConfig::default());
    let (old_job, _) = run_job_on(&mut scheduler, &mut store, sum_spec("0..6", 3), 1, 3, false);
    drop(store);
    // Make it what version 2 wrote: no placement columns.
    let conn = rusqlite::Connection::open(dir.join(sqlite::DATABASE)).unwrap();
    conn.execute_batch(
        "ALTER TABLE shards DROP COLUMN start_s;
         ALTER TABLE shards DROP COLUMN start_error_s;
         ALTER TABLE shards DROP COLUMN slot;
         ALTER TABLE results DROP COLUMN start_s;
         ALTER TABLE results DROP COLUMN lane;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let mut store = Sqlite::open(&dir).unwrap();
    let reader = store.reader();
    let record = reader.job(old_job).unwrap().unwrap();
    assert_eq!(record.items.ok, 6);
    let results = reader.results(old_job, ShardId(0), 0, 10).unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|(_, o)| o.ok && o.start_s == 0.0));
    let shards = reader.shards(old_job, ShardId(0), 10).unwrap();
    assert_eq!(shards.len(), 3);
    // New work is stored with the new columns.
    let (new_job, _) = run_job_on(&mut scheduler, &mut store, sum_spec("0..4", 2), 1, 2, false);
    let stored = reader.shards(new_job, ShardId(0), 10).unwrap();
    assert!(
        stored.iter().any(|s| s.end.is_some()),
        "a committed shard of the new job"
    );
    drop(store);
    let conn = rusqlite::Connection::open(dir.join(sqlite::DATABASE)).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let _ = std::fs::remove_dir_all(dir);
}
