//! The PostgreSQL schema: its versions, and the migrations that bring a database to the
//! current one, run once under an advisory lock however many hosts start together.

use tokio_postgres::Client;

use super::pg;
use crate::StoreError;

/// The schema version this code writes (`schema_version.version`).
pub const SCHEMA_VERSION: i64 = 2;

/// The key of the transaction-scoped advisory lock the migrations run under (an arbitrary
/// constant: "ochost" in ASCII, so it is unlikely to clash with another program's lock).
const MIGRATION_LOCK: i64 = 0x6f63_686f_7374;

/// The steps from an empty database to [`SCHEMA_VERSION`]: step `i` takes a database from
/// version `i` to `i + 1`. Never edit a released step: add one.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_V1, SCHEMA_V2];

/// Version 1: everything SQLite's versions 1 to 4 have, in PostgreSQL types.
///
/// Differences from SQLite's schema: ids are `BIGSERIAL` (never reused, as SQLite's
/// `AUTOINCREMENT`); bodies and digests are `BYTEA`; `disabled` is a `BOOLEAN`; the
/// intake digest index is a plain B-tree index on `webhook_intake (digest)`, so
/// SQLite's `webhook_intake_keys` / `webhook_intake_merged` (its in-memory tail, merged in
/// key order) have no counterpart.
const SCHEMA_V1: &str = "
CREATE TABLE orgs (
    id                 BIGSERIAL PRIMARY KEY,
    name               TEXT      NOT NULL,
    user_secret_sha256 TEXT      NOT NULL,
    org_secret_sha256  TEXT      NOT NULL,
    created_ms         BIGINT    NOT NULL
);
CREATE INDEX orgs_by_secrets ON orgs (user_secret_sha256, org_secret_sha256);

CREATE TABLE instances (
    id            BIGSERIAL PRIMARY KEY,
    org_id        BIGINT    NOT NULL,
    element_key   TEXT      NOT NULL,
    name          TEXT      NOT NULL,
    token_sha256  TEXT      NOT NULL,
    tags          TEXT      NOT NULL,
    provider_data TEXT      NOT NULL,
    disabled      BOOLEAN   NOT NULL,
    created_ms    BIGINT    NOT NULL,
    updated_ms    BIGINT    NOT NULL
);

CREATE TABLE config (
    id          BIGSERIAL PRIMARY KEY,
    instance_id BIGINT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key         TEXT      NOT NULL,
    value       TEXT      NOT NULL,
    UNIQUE (instance_id, key)
);

CREATE TABLE notifications (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT      NOT NULL UNIQUE,
    instance_id     BIGINT    NOT NULL,
    endpoint        TEXT      NOT NULL,
    event_count     BIGINT    NOT NULL,
    created_ms      BIGINT    NOT NULL,
    state           TEXT      NOT NULL,
    delivery        BIGINT    NOT NULL,
    attempts        BIGINT    NOT NULL,
    next_attempt_ms BIGINT    NOT NULL,
    delivered_ms    BIGINT,
    body            BYTEA     NOT NULL
);
CREATE INDEX notifications_by_state ON notifications (state, seq);
CREATE INDEX notifications_by_instance ON notifications (instance_id, seq);

CREATE TABLE attempts (
    id              BIGSERIAL PRIMARY KEY,
    notification_id TEXT      NOT NULL,
    delivery        BIGINT    NOT NULL,
    attempt         BIGINT    NOT NULL,
    at_ms           BIGINT    NOT NULL,
    status_code     BIGINT,
    latency_us      BIGINT    NOT NULL,
    error           TEXT
);
CREATE INDEX attempts_by_notification ON attempts (notification_id, id);

CREATE TABLE poll_state (
    instance_id     BIGINT  NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    resource        TEXT    NOT NULL,
    last_success_ms BIGINT,
    seen            TEXT    NOT NULL,
    last_attempt_ms BIGINT,
    last_error      TEXT,
    failures        BIGINT  NOT NULL,
    last_events     BIGINT  NOT NULL,
    not_before_ms   BIGINT,
    PRIMARY KEY (instance_id, resource)
);

CREATE TABLE credentials (
    instance_id   BIGINT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    access_token  TEXT   NOT NULL,
    refresh_token TEXT,
    expires_at_ms BIGINT,
    obtained_ms   BIGINT NOT NULL,
    origin        TEXT
);

CREATE TABLE hosts (
    id             TEXT   PRIMARY KEY,
    alive_until_ms BIGINT NOT NULL
);

CREATE TABLE leases (
    name     TEXT   PRIMARY KEY,
    holder   TEXT   NOT NULL,
    until_ms BIGINT NOT NULL
);

CREATE TABLE webhook_intake (
    seq         BIGINT PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    instance_id BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    digest      BYTEA  NOT NULL
);
CREATE INDEX webhook_intake_by_digest ON webhook_intake (digest, instance_id);

CREATE TABLE webhook_bodies (
    id       BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    body     BYTEA  NOT NULL
);

CREATE TABLE notification_bodies (
    seq     BIGINT PRIMARY KEY REFERENCES notifications (seq),
    body_id BIGINT NOT NULL,
    raw_at  BIGINT NOT NULL
);
";

/// Version 2: attempts by time, for the per-minute statistics of an instance's deliveries
/// (SQLite's version 5).
const SCHEMA_V2: &str = "
CREATE INDEX attempts_by_time ON attempts (at_ms);
";

/// Creates the schema or migrates it to [`SCHEMA_VERSION`], in one transaction that holds
/// [`MIGRATION_LOCK`]: hosts starting together against one database migrate it once, the
/// others wait and then find it current. A database of a newer version is refused.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id      INTEGER PRIMARY KEY CHECK (id = 0),
             version BIGINT  NOT NULL
         )",
    )
    .await
    .map_err(pg)?;
    let version: i64 = tx
        .query_opt("SELECT version FROM schema_version WHERE id = 0", &[])
        .await
        .map_err(pg)?
        .map_or(0, |r| r.get(0));
    if version > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "the database has schema version {version}, newer than this program's \
             {SCHEMA_VERSION}"
        )));
    }
    let from = usize::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("the database has schema version {version}")))?;
    if from == MIGRATIONS.len() {
        return tx.commit().await.map_err(pg);
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.batch_execute(step).await.map_err(|e| {
            StoreError::Database(format!("migrating to schema version {}: {e}", i + 1))
        })?;
    }
    tx.execute(
        "INSERT INTO schema_version (id, version) VALUES (0, $1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}
