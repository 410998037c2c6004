//! The SQLite schema (version 3) and the pragmas every connection runs with.

use rusqlite::Connection;

/// The schema version this build writes (`PRAGMA user_version`). Version 1 was the first
/// release's (jobs with their whole spec and items in JSON); version 2 had no timeline
/// placement (shard start, slot; unit start, lane). Older versions are migrated on open.
pub(crate) const VERSION: i64 = 3;

/// Tables and indexes. Items live in `results`, one row per committed unit, never in memory
/// once their shard is stored; URLs in `urls`, a chunk of them per row.
pub(crate) const SCHEMA: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    workload TEXT NOT NULL,
    strategy TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    label TEXT NOT NULL,
    submitted_unix_ms INTEGER NOT NULL,
    wall_s REAL NOT NULL DEFAULT 0,
    items_total INTEGER NOT NULL,
    items_ok INTEGER NOT NULL DEFAULT 0,
    items_failed INTEGER NOT NULL DEFAULT 0,
    shards_total INTEGER NOT NULL,
    shards_done INTEGER NOT NULL DEFAULT 0,
    item_time_s REAL NOT NULL DEFAULT 0,
    shard_time_s REAL NOT NULL DEFAULT 0,
    cpu_s REAL NOT NULL DEFAULT 0,
    longest_run_s REAL NOT NULL DEFAULT 0,
    processes INTEGER NOT NULL DEFAULT 0,
    hosts INTEGER NOT NULL DEFAULT 0,
    stale_discarded INTEGER NOT NULL DEFAULT 0,
    requested_shards INTEGER NOT NULL,
    spec TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE TABLE urls (
    job_id INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, chunk)
) WITHOUT ROWID;
CREATE TABLE shards (
    job_id INTEGER NOT NULL,
    shard_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    worker_id INTEGER NOT NULL DEFAULT 0,
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL DEFAULT 0,
    items INTEGER NOT NULL DEFAULT 0,
    run_s REAL NOT NULL DEFAULT 0,
    cpu_s REAL NOT NULL DEFAULT 0,
    queue_s REAL NOT NULL DEFAULT 0,
    round_trip_s REAL NOT NULL DEFAULT 0,
    item_time_s REAL NOT NULL DEFAULT 0,
    concurrency INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    units_ok INTEGER NOT NULL DEFAULT 0,
    units_failed INTEGER NOT NULL DEFAULT 0,
    start_s REAL NOT NULL DEFAULT 0,
    start_error_s REAL NOT NULL DEFAULT 0,
    slot INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, shard_id)
) WITHOUT ROWID;
CREATE TABLE results (
    job_id INTEGER NOT NULL,
    shard_id INTEGER NOT NULL,
    unit INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    value BLOB,
    status INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    start_s REAL NOT NULL DEFAULT 0,
    lane INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, shard_id, unit)
) WITHOUT ROWID;
CREATE TABLE doomed (
    job_id INTEGER PRIMARY KEY
);
";

/// Brings a version-2 schema to version 3: the timeline's columns, zero for old rows.
pub(crate) const V2_TO_V3: &str = "
ALTER TABLE shards ADD COLUMN start_s REAL NOT NULL DEFAULT 0;
ALTER TABLE shards ADD COLUMN start_error_s REAL NOT NULL DEFAULT 0;
ALTER TABLE shards ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN start_s REAL NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
";

/// Shard states in the `shards` table.
pub(crate) const SHARD_LEASED: i64 = 0;
pub(crate) const SHARD_COMMITTED: i64 = 1;
pub(crate) const SHARD_GAVE_UP: i64 = 2;

/// Pragmas for the writing connection. WAL lets readers run beside the writer;
/// `synchronous = NORMAL` survives a killed process (kill -9), while a power cut may lose the
/// last transactions; incremental auto-vacuum gives pruned pages back to the file system.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Creates the schema in a fresh database (auto-vacuum must be set before any table).
pub(crate) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}
