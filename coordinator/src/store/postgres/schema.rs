//! The PostgreSQL schema and its versioned migrations: created on first open, brought forward
//! on open, and refused when a newer concur wrote it.
//!
//! The version lives in `meta` under `schema_version`. Opening takes a transaction-scoped
//! advisory lock, so two coordinators opening an empty database at once do not both create it.

use super::conn::PgResult;
use crate::store::StoreError;
use deadpool_postgres::Object;

/// The schema version this build writes.
pub(crate) const VERSION: i64 = 1;

/// Serialises schema creation and migration between coordinators (an arbitrary constant:
/// "concur" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_6e63_7572;

/// Version 1: the same tables as SQLite's version 3, in PostgreSQL's types (unsigned values in
/// BIGINT), plus the `leadership` row that fences writes.
const V1: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE jobs (
    id BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    workload TEXT NOT NULL,
    strategy TEXT NOT NULL,
    concurrency BIGINT NOT NULL,
    label TEXT NOT NULL,
    submitted_unix_ms BIGINT NOT NULL,
    wall_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    items_total BIGINT NOT NULL,
    items_ok BIGINT NOT NULL DEFAULT 0,
    items_failed BIGINT NOT NULL DEFAULT 0,
    shards_total BIGINT NOT NULL,
    shards_done BIGINT NOT NULL DEFAULT 0,
    item_time_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    shard_time_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    cpu_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    longest_run_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    processes BIGINT NOT NULL DEFAULT 0,
    hosts BIGINT NOT NULL DEFAULT 0,
    stale_discarded BIGINT NOT NULL DEFAULT 0,
    requested_shards BIGINT NOT NULL,
    spec TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE TABLE urls (
    job_id BIGINT NOT NULL,
    chunk BIGINT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, chunk)
);
CREATE TABLE shards (
    job_id BIGINT NOT NULL,
    shard_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    state SMALLINT NOT NULL DEFAULT 0,
    worker_id BIGINT NOT NULL DEFAULT 0,
    host TEXT NOT NULL DEFAULT '',
    pid BIGINT NOT NULL DEFAULT 0,
    items BIGINT NOT NULL DEFAULT 0,
    run_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    cpu_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    queue_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    round_trip_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    item_time_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    concurrency BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    units_ok BIGINT NOT NULL DEFAULT 0,
    units_failed BIGINT NOT NULL DEFAULT 0,
    start_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    start_error_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    slot BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, shard_id)
);
CREATE TABLE results (
    job_id BIGINT NOT NULL,
    shard_id BIGINT NOT NULL,
    unit BIGINT NOT NULL,
    ok BOOLEAN NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    value BYTEA,
    status BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    start_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    lane BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, shard_id, unit)
);
CREATE TABLE doomed (
    job_id BIGINT PRIMARY KEY
);
CREATE TABLE leadership (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO leadership (id, holder, epoch, expires_at) VALUES (1, '', 0, to_timestamp(0));
";

/// Each entry brings version `i + 1` to `i + 2`; append one per schema change, never edit one.
const MIGRATIONS: &[&str] = &[];
const _: () = assert!(
    MIGRATIONS.len() as i64 == VERSION - 1,
    "one migration per version"
);

/// Shard states in the `shards` table (the same numbers as SQLite's).
pub(crate) const SHARD_LEASED: i16 = 0;
pub(crate) const SHARD_COMMITTED: i16 = 1;
pub(crate) const SHARD_GAVE_UP: i16 = 2;

/// Creates the schema in an empty database, or migrates an older one, in one transaction.
pub(super) async fn to_current(client: &mut Object) -> PgResult<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        tx.batch_execute(V1).await?;
        set_version(&tx, 1).await?;
    }
    let version: i64 = tx
        .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .await?
        .map_or(0, |row| row.get(0));
    if version > VERSION {
        return Err(StoreError::Corrupt {
            what: "schema".into(),
            reason: format!(
                "version {version} was written by a newer concur (this one reads up to {VERSION})"
            ),
        }
        .into());
    }
    if version < 1 {
        return Err(StoreError::Corrupt {
            what: "schema".into(),
            reason: "the database has a `meta` table without a schema version: it is not \
                     concur's (use an empty database or another schema)"
                .into(),
        }
        .into());
    }
    for (from, migration) in (version..VERSION).zip(&MIGRATIONS[(version - 1) as usize..]) {
        tracing::info!(from, to = from + 1, "migrating the PostgreSQL state schema");
        tx.batch_execute(migration).await?;
        set_version(&tx, from + 1).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn set_version(tx: &deadpool_postgres::Transaction<'_>, version: i64) -> PgResult<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&version],
    )
    .await?;
    Ok(())
}
