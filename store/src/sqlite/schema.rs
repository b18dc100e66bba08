//! Connection settings and the schema: the pragmas every connection gets, the schema
//! versions and the migrations that bring a file to the current one.

use std::time::Duration;

use rusqlite::Connection;

use super::writer::CHECKPOINT_QUIET;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer connection's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// The size the WAL file is truncated to after a checkpoint, in bytes.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 5;

/// The steps from an empty file to [`SCHEMA_VERSION`]: step `i` takes a file from version
/// `i` to `i + 1`, in the transaction that reads and sets the version, so none runs twice.
/// Never edit a released step: add one.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] =
    [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

/// Version 1: organizations, instances, the outbox and delivery attempts.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS orgs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    user_secret_sha256 TEXT    NOT NULL,
    org_secret_sha256  TEXT    NOT NULL,
    created_ms         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orgs_by_secrets ON orgs (user_secret_sha256, org_secret_sha256);

CREATE TABLE IF NOT EXISTS instances (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL,
    element_key   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    token_sha256  TEXT    NOT NULL,
    tags          TEXT    NOT NULL,
    provider_data TEXT    NOT NULL,
    disabled      INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS config (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    UNIQUE (instance_id, key)
);

-- The body is the last column: the other columns stay on the row's first page, so
-- scans that do not need the body never read its overflow pages.
CREATE TABLE IF NOT EXISTS notifications (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    instance_id     INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    event_count     INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    delivery        INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER,
    body            BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_state ON notifications (state, seq);
CREATE INDEX IF NOT EXISTS notifications_by_instance ON notifications (instance_id, seq);

CREATE TABLE IF NOT EXISTS attempts (
    id              INTEGER PRIMARY KEY,
    notification_id TEXT    NOT NULL,
    delivery        INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    status_code     INTEGER,
    latency_us      INTEGER NOT NULL,
    error           TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_notification ON attempts (notification_id, id);
";

/// Version 2: the host's polling of vendor APIs (cursors and credentials).
const SCHEMA_V2: &str = "
-- One row per polled resource of an instance. `seen` is a JSON array of [id, ms] pairs.
CREATE TABLE IF NOT EXISTS poll_state (
    instance_id     INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    resource        TEXT    NOT NULL,
    last_success_ms INTEGER,
    seen            TEXT    NOT NULL,
    last_attempt_ms INTEGER,
    last_error      TEXT,
    failures        INTEGER NOT NULL,
    last_events     INTEGER NOT NULL,
    not_before_ms   INTEGER,
    PRIMARY KEY (instance_id, resource)
);

CREATE TABLE IF NOT EXISTS credentials (
    instance_id   INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    access_token  TEXT    NOT NULL,
    refresh_token TEXT,
    expires_at_ms INTEGER,
    obtained_ms   INTEGER NOT NULL
);
";

/// Version 3: idempotent webhook intake, and a webhook's body stored once when several
/// notifications carry it.
///
/// Every table here but `webhook_intake_keys` is keyed by notification `seq`, so its rows
/// append in acceptance order; `webhook_intake_keys` (random keys) is written in merges
/// (see `intake.rs`).
const SCHEMA_V3: &str = "
-- One row per run of consecutive notifications of one instance stored from one webhook
-- while the dedupe window is on: `seq` is the run's first notification, `last_seq` its
-- last. A webhook whose sha256 (`digest`; `key` is its first 8 bytes, big-endian) matches
-- a row of the instance accepted within the window is a duplicate, if the row's
-- notifications are still stored.
CREATE TABLE IF NOT EXISTS webhook_intake (
    seq         INTEGER PRIMARY KEY,
    last_seq    INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    key         INTEGER NOT NULL,
    digest      BLOB    NOT NULL
);

-- The index of `webhook_intake` by `key`, but for its newest rows, which the writer keeps
-- in memory and merges in here thousands at a time, in key order.
CREATE TABLE IF NOT EXISTS webhook_intake_keys (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;

-- Every `webhook_intake` row with a seq up to `through_seq` is in `webhook_intake_keys`.
CREATE TABLE IF NOT EXISTS webhook_intake_merged (
    id          INTEGER PRIMARY KEY CHECK (id = 0),
    through_seq INTEGER NOT NULL
);

-- A webhook's body, stored once for the notifications of it that carry it when there are
-- several (one notification keeps its whole envelope in `notifications.body`): `id` is
-- the seq of the first of them and `last_seq` of the last (they are stored together).
CREATE TABLE IF NOT EXISTS webhook_bodies (
    id       INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    body     BLOB    NOT NULL
);

-- One row per notification that carries a shared body: its `notifications.body` is the
-- envelope without it, and the body goes back in at byte `raw_at`.
CREATE TABLE IF NOT EXISTS notification_bodies (
    seq     INTEGER PRIMARY KEY REFERENCES notifications (seq),
    body_id INTEGER NOT NULL,
    raw_at  INTEGER NOT NULL
);
";

/// Version 4: where vendor credentials were obtained (the host's fingerprint of the
/// instance's vendor URLs), so they never go to another origin.
const SCHEMA_V4: &str = "
ALTER TABLE credentials ADD COLUMN origin TEXT;
";

/// Version 5: attempts by time, for the per-minute statistics of an instance's deliveries
/// (`Store::attempt_stats` reads the attempts of a window and joins their notifications).
const SCHEMA_V5: &str = "
CREATE INDEX IF NOT EXISTS attempts_by_time ON attempts (at_ms);
";

/// Sets the pragmas every connection needs.
pub(super) fn configure(conn: &Connection, reader: bool) -> Result<(), String> {
    let set = |name: &str, value: &dyn rusqlite::ToSql| {
        conn.pragma_update(None, name, value)
            .map_err(|e| format!("cannot set {name}: {e}"))
    };
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| format!("cannot set the busy timeout: {e}"))?;
    conn.set_prepared_statement_cache_capacity(64);
    set("foreign_keys", &true)?;
    set("synchronous", &"FULL")?;
    if reader {
        set("query_only", &true)?;
    } else {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| format!("cannot switch to WAL mode: {e}"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!(
                "cannot switch to WAL mode (journal_mode is {mode})"
            ));
        }
        // A bigger page cache for the writer (inserts into the notification id index
        // touch random pages), and a WAL that shrinks back after a burst.
        set("cache_size", &WRITER_CACHE_KIB.wrapping_neg())?;
        set("journal_size_limit", &WAL_SIZE_LIMIT)?;
        set("wal_autocheckpoint", &CHECKPOINT_QUIET)?;
    }
    Ok(())
}

/// Creates the schema or migrates it to [`SCHEMA_VERSION`], in one transaction.
pub(super) fn migrate(conn: &Connection) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    // Read the version inside the write transaction, so two processes opening the same
    // old file cannot both migrate it.
    let result = migrate_in_transaction(conn)
        .and_then(|()| conn.execute_batch("COMMIT").map_err(|e| e.to_string()));
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// [`migrate`]'s work, inside its transaction.
fn migrate_in_transaction(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {version}, newer than this program's \
             {SCHEMA_VERSION}"
        ));
    }
    let from = usize::try_from(version)
        .map_err(|_| format!("the database has schema version {version}"))?;
    if from == MIGRATIONS.len() {
        return Ok(());
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from) {
        conn.execute_batch(step)
            .map_err(|e| format!("migrating to schema version {}: {e}", i + 1))?;
    }
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(|e| e.to_string())
}
