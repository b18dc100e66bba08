//! The SQLite backend: one database file, one writer thread that group-commits, and a
//! small pool of read connections.
//!
//! # Writes
//!
//! Every write method hands its work to a dedicated writer thread that owns the only
//! write connection. The thread takes the first queued operation, then every operation
//! already waiting (up to [`MAX_BATCH`]), runs them all in one transaction (each inside its
//! own savepoint, so a failing operation fails only its caller) and commits once: one
//! fsync for the whole batch. There is no timed wait: a lone write commits at once, and
//! batches form by themselves while a commit is in progress.
//!
//! The database runs in WAL mode with `synchronous=FULL`, so a write that returned `Ok`
//! survives a process kill or a power loss.
//!
//! The writer checkpoints (copies the WAL back into the database file) by itself, after a
//! WAL of [`CHECKPOINT_QUIET`] pages while writes come singly and of [`CHECKPOINT_BUSY`]
//! pages while batches are big: short stalls when latency matters, fewer copies of the
//! same hot pages when throughput does.
//!
//! # Reads
//!
//! Reads run on a separate pool of connections in `tokio::task::spawn_blocking`; WAL lets
//! them proceed while the writer commits, and they always see every write that has
//! returned.
//!
//! # Choices the trait leaves open
//!
//! - Organization, instance and configuration-entry ids are never reused, even after a
//!   delete (`AUTOINCREMENT`), so a stale id can never name a newer row.
//! - [`Store::record_attempt`] always stores the attempt, but a notification that was
//!   `Dropped` (its instance was deleted while the attempt was in flight) stays `Dropped`
//!   unless the attempt delivered it: it is never made `Pending` or `Dead` again.
//! - [`Store::record_attempt`] on an unknown notification fails with
//!   [`StoreError::Database`] and stores nothing.
//! - Poll states and vendor credentials belong to an existing instance (a foreign key with
//!   `ON DELETE CASCADE`): [`Store::save_poll`] or [`Store::save_credentials`] (with
//!   `Some`) for an instance that does not exist, e.g. one deleted while a poll or a token
//!   refresh was in flight, fails with [`StoreError::Database`] and stores nothing, not
//!   even the notifications. [`Store::save_credentials`] with `None` for an unknown
//!   instance is a no-op.
//! - [`Store::save_poll`] does not check that its notifications belong to the state's
//!   instance.
//! - Vendor credentials are stored as given (not encrypted): protect the database file.
//!
//! # Schema versions
//!
//! `PRAGMA user_version` holds the schema version. Opening a file migrates it to the
//! current version (2) in one transaction, step by step, keeping its data: version 1 has
//! the organizations, instances and outbox; version 2 adds `poll_state` and
//! `credentials`. A file with a newer version is refused.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::oneshot;

use crate::{
    Attempt, AttemptRecord, ConfigEntry, Instance, InstanceUpdate, Millis, NewInstance,
    NewNotification, Notification, NotificationState, Org, PollState, SecretHashes, Store,
    StoreError, StoredCredentials,
};

/// The most operations the writer puts in one transaction.
pub const MAX_BATCH: usize = 1024;

/// How many read connections a store keeps.
const READERS: usize = 4;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer connection's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// The size the WAL file is truncated to after a checkpoint, in bytes.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The WAL size (in pages) that triggers a checkpoint while writes come one or two at a
/// time: small checkpoints, so none holds the writes behind it for long (latency).
pub const CHECKPOINT_QUIET: i64 = 250;
/// The same while batches are big: fewer checkpoints, and the hot pages every insert
/// touches copied once per checkpoint (throughput).
pub const CHECKPOINT_BUSY: i64 = 1000;
/// The average batch size from which the writer counts as busy.
const BUSY_BATCH: f64 = 4.0;

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// The steps from an empty file to [`SCHEMA_VERSION`]: step `i` takes a file from version
/// `i` to `i + 1`. Each is idempotent (`IF NOT EXISTS`). Never edit a released step: add
/// one.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_V1, SCHEMA_V2];

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

const NOTIFICATION_COLUMNS: &str = "seq, id, instance_id, endpoint, event_count, created_ms, \
     state, delivery, attempts, next_attempt_ms, delivered_ms";

const INSTANCE_COLUMNS: &str = "id, org_id, element_key, name, token_sha256, tags, \
     provider_data, disabled, created_ms, updated_ms";

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A [`Store`] in one SQLite file.
///
/// Cloning is cheap and every clone shares the same connections and writer thread. When
/// the last clone is dropped, the writer finishes the operations already queued, closes
/// its connection and ends; the drop waits for it.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while dropping.
    writer: Option<mpsc::Sender<Box<dyn WriteOp>>>,
    /// `None` only while dropping.
    thread: Option<JoinHandle<()>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    stats: Arc<WriteStats>,
}

#[derive(Default)]
struct WriteStats {
    commits: AtomicU64,
    ops: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once the queued operations are done.
        drop(self.writer.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("commits", &self.commits())
            .field("write_ops", &self.write_ops())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its schema when missing, and
    /// starts the writer thread. Does not block on any runtime, so it may be called from
    /// async code (it does a little synchronous file I/O).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        let writer = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        configure(&writer, false).map_err(open_err)?;
        migrate(&writer).map_err(open_err)?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
            configure(&reader, true).map_err(open_err)?;
            readers.push(Mutex::new(reader));
        }

        let stats = Arc::new(WriteStats::default());
        let (tx, rx) = mpsc::channel::<Box<dyn WriteOp>>();
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(writer, rx, &thread_stats))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;

        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Some(tx),
                thread: Some(thread),
                readers,
                next_reader: AtomicUsize::new(0),
                stats,
            }),
        })
    }

    /// The number of write transactions committed since the store was opened. With
    /// [`SqliteStore::write_ops`] it gives the average group-commit batch size.
    pub fn commits(&self) -> u64 {
        self.inner.stats.commits.load(Ordering::Relaxed)
    }

    /// The number of write operations (calls of write methods) that have been committed
    /// since the store was opened, successful or not.
    pub fn write_ops(&self) -> u64 {
        self.inner.stats.ops.load(Ordering::Relaxed)
    }

    /// Runs `f` on the writer thread inside the next group-commit transaction and returns
    /// its result once that transaction is committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(Job {
            work: f,
            result: None,
            reply,
        });
        self.inner
            .writer
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(op)
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read connection in a blocking task.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let n = inner.readers.len();
            let start = inner.next_reader.fetch_add(1, Ordering::Relaxed);
            // Take the first idle connection, else wait for the one in turn.
            let conn = (0..n)
                .find_map(|i| inner.readers[(start + i) % n].try_lock().ok())
                .unwrap_or_else(|| {
                    inner.readers[start % n]
                        .lock()
                        .expect("a read connection's mutex is poisoned")
                });
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

/// Sets the pragmas every connection needs.
fn configure(conn: &Connection, reader: bool) -> Result<(), String> {
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
fn migrate(conn: &Connection) -> Result<(), String> {
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

// --- the writer ---

/// One write operation queued for the writer thread.
trait WriteOp: Send {
    /// Runs the operation; returns whether it succeeded. May run again (after a rollback),
    /// each run replacing the last one's result.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: with the operation's result if the transaction committed,
    /// else with `failure` (or the operation's own error if it had failed).
    fn answer(self: Box<Self>, failure: Option<&str>);
}

struct Job<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteOp for Job<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // A panicking operation fails its caller, not the writer thread.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| (self.work)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Database("the write operation panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failure: Option<&str>) {
        let result = match (self.result, failure) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Some(why)) | (None, Some(why)) => Err(StoreError::Database(why.into())),
            (Some(Ok(v)), None) => Ok(v),
            (None, None) => Err(StoreError::Database("operation did not run".into())),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Box<dyn WriteOp>>, stats: &WriteStats) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_BATCH);
    let mut average_batch = 1.0;
    let mut checkpoint_at = CHECKPOINT_QUIET;
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        average_batch = 0.9 * average_batch + 0.1 * batch.len() as f64;
        let wanted = if average_batch >= BUSY_BATCH {
            CHECKPOINT_BUSY
        } else {
            CHECKPOINT_QUIET
        };
        if wanted != checkpoint_at {
            match conn.pragma_update(None, "wal_autocheckpoint", wanted) {
                Ok(()) => checkpoint_at = wanted,
                Err(e) => tracing::warn!("cannot set wal_autocheckpoint: {e}"),
            }
        }
        run_batch(&conn, &mut batch, stats);
    }
    tracing::debug!("store writer stopping");
    if let Err((_, e)) = conn.close() {
        tracing::warn!("closing the store's write connection: {e}");
    }
}

/// Runs `batch` in one transaction, commits, and answers every caller.
fn run_batch(conn: &Connection, batch: &mut Vec<Box<dyn WriteOp>>, stats: &WriteStats) {
    let n = batch.len() as u64;
    let failure = match run_in_transaction(conn, batch) {
        Ok(()) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.ops.fetch_add(n, Ordering::Relaxed);
            None
        }
        Err(why) => {
            tracing::error!("store write transaction failed: {why}");
            if !conn.is_autocommit()
                && let Err(e) = conn.execute_batch("ROLLBACK")
            {
                tracing::error!("rolling back the failed write transaction: {e}");
            }
            Some(why)
        }
    };
    for op in batch.drain(..) {
        op.answer(failure.as_deref());
    }
}

/// Runs `batch` in one transaction and commits it.
///
/// Optimistic first: the operations run back to back, with no savepoint each (which would
/// cost two statements and a copy of every page an operation touches). If one fails, the
/// transaction is rolled back and the batch runs again with a savepoint per operation, so
/// the failure is confined to its own caller; operations are re-runnable for this.
fn run_in_transaction(conn: &Connection, batch: &mut [Box<dyn WriteOp>]) -> Result<(), String> {
    exec_cached(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    let mut all_ok = true;
    for op in batch.iter_mut() {
        let ok = op.run(conn);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O error...).
            return Err("the transaction was rolled back by an error".into());
        }
        if !ok {
            all_ok = false;
            break;
        }
    }
    if all_ok {
        return exec_cached(conn, "COMMIT").map_err(|e| e.to_string());
    }
    exec_cached(conn, "ROLLBACK").map_err(|e| e.to_string())?;
    if batch.len() == 1 {
        // Alone in its transaction: its failure is already confined, and recorded.
        return Ok(());
    }
    exec_cached(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    for op in batch.iter_mut() {
        exec_cached(conn, "SAVEPOINT op").map_err(|e| e.to_string())?;
        let ok = op.run(conn);
        if conn.is_autocommit() {
            return Err("the transaction was rolled back by an error".into());
        }
        if !ok {
            exec_cached(conn, "ROLLBACK TO op").map_err(|e| e.to_string())?;
        }
        exec_cached(conn, "RELEASE op").map_err(|e| e.to_string())?;
    }
    exec_cached(conn, "COMMIT").map_err(|e| e.to_string())
}

// --- row mapping ---

fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

/// A notification row as stored, before its values are checked.
struct RawNotification {
    seq: i64,
    id: String,
    instance_id: i64,
    endpoint: String,
    event_count: i64,
    created_ms: Millis,
    state: String,
    delivery: i64,
    attempts: i64,
    next_attempt_ms: Millis,
    delivered_ms: Option<Millis>,
}

impl RawNotification {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawNotification {
            seq: r.get(0)?,
            id: r.get(1)?,
            instance_id: r.get(2)?,
            endpoint: r.get(3)?,
            event_count: r.get(4)?,
            created_ms: r.get(5)?,
            state: r.get(6)?,
            delivery: r.get(7)?,
            attempts: r.get(8)?,
            next_attempt_ms: r.get(9)?,
            delivered_ms: r.get(10)?,
        })
    }

    fn check(self) -> Result<Notification, StoreError> {
        Ok(Notification {
            state: NotificationState::parse(&self.state).ok_or_else(|| {
                StoreError::Corrupt(format!("notification state {:?}", self.state))
            })?,
            event_count: to_u32(self.event_count, "event_count")?,
            delivery: to_u32(self.delivery, "delivery")?,
            attempts: to_u32(self.attempts, "attempts")?,
            seq: self.seq,
            id: self.id,
            instance_id: self.instance_id,
            endpoint: self.endpoint,
            created_ms: self.created_ms,
            next_attempt_ms: self.next_attempt_ms,
            delivered_ms: self.delivered_ms,
        })
    }
}

fn query_notifications<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<Notification>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(params, RawNotification::from_row)
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(db)?.check()?);
    }
    Ok(out)
}

fn get_notification(conn: &Connection, id: &str) -> Result<Option<Notification>, StoreError> {
    let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?1");
    Ok(query_notifications(conn, &sql, [id])?.pop())
}

/// An instance row as stored, before its JSON columns are parsed.
struct RawInstance {
    id: i64,
    org_id: i64,
    element_key: String,
    name: String,
    token_sha256: String,
    tags: String,
    provider_data: String,
    disabled: bool,
    created_ms: Millis,
    updated_ms: Millis,
}

impl RawInstance {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawInstance {
            id: r.get(0)?,
            org_id: r.get(1)?,
            element_key: r.get(2)?,
            name: r.get(3)?,
            token_sha256: r.get(4)?,
            tags: r.get(5)?,
            provider_data: r.get(6)?,
            disabled: r.get(7)?,
            created_ms: r.get(8)?,
            updated_ms: r.get(9)?,
        })
    }

    fn check(self, config: Vec<ConfigEntry>) -> Result<Instance, StoreError> {
        let tags = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of instance {}: {e}", self.id)))?;
        let provider_data = serde_json::from_str(&self.provider_data).map_err(|e| {
            StoreError::Corrupt(format!("providerData of instance {}: {e}", self.id))
        })?;
        Ok(Instance {
            id: self.id,
            org_id: self.org_id,
            element_key: self.element_key,
            name: self.name,
            token_sha256: self.token_sha256,
            tags,
            config,
            provider_data,
            disabled: self.disabled,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        })
    }
}

/// A poll state row as stored, before its values are checked.
struct RawPollState {
    instance_id: i64,
    resource: String,
    last_success_ms: Option<Millis>,
    seen: String,
    last_attempt_ms: Option<Millis>,
    last_error: Option<String>,
    failures: i64,
    last_events: i64,
    not_before_ms: Option<Millis>,
}

impl RawPollState {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawPollState {
            instance_id: r.get(0)?,
            resource: r.get(1)?,
            last_success_ms: r.get(2)?,
            seen: r.get(3)?,
            last_attempt_ms: r.get(4)?,
            last_error: r.get(5)?,
            failures: r.get(6)?,
            last_events: r.get(7)?,
            not_before_ms: r.get(8)?,
        })
    }

    fn check(self) -> Result<PollState, StoreError> {
        let seen = serde_json::from_str(&self.seen).map_err(|e| {
            StoreError::Corrupt(format!(
                "seen list of instance {} resource {:?}: {e}",
                self.instance_id, self.resource
            ))
        })?;
        Ok(PollState {
            failures: to_u32(self.failures, "failures")?,
            last_events: to_u32(self.last_events, "last_events")?,
            seen,
            instance_id: self.instance_id,
            resource: self.resource,
            last_success_ms: self.last_success_ms,
            last_attempt_ms: self.last_attempt_ms,
            last_error: self.last_error,
            not_before_ms: self.not_before_ms,
        })
    }
}

fn get_instance(conn: &Connection, id: i64) -> Result<Option<Instance>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .map_err(db)?
        .query_row([id], RawInstance::from_row)
        .optional()
        .map_err(db)?;
    let Some(raw) = raw else { return Ok(None) };
    let mut stmt = conn
        .prepare_cached("SELECT id, key, value FROM config WHERE instance_id = ?1 ORDER BY id")
        .map_err(db)?;
    let config = stmt
        .query_map([id], |r| {
            Ok(ConfigEntry {
                id: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    raw.check(config).map(Some)
}

fn all_instances(conn: &Connection) -> Result<Vec<Instance>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY id");
    let raws = conn
        .prepare_cached(&sql)
        .map_err(db)?
        .query_map([], RawInstance::from_row)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare_cached("SELECT instance_id, id, key, value FROM config ORDER BY instance_id, id")
        .map_err(db)?;
    let entries = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ConfigEntry {
                    id: r.get(1)?,
                    key: r.get(2)?,
                    value: r.get(3)?,
                },
            ))
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    // Both lists are ordered by instance id: walk them together.
    let mut entries = entries.into_iter().peekable();
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        while entries.next_if(|(iid, _)| *iid < raw.id).is_some() {}
        let mut config = Vec::new();
        while let Some((_, entry)) = entries.next_if(|(iid, _)| *iid == raw.id) {
            config.push(entry);
        }
        out.push(raw.check(config)?);
    }
    Ok(out)
}

fn upsert_config(
    conn: &Connection,
    instance_id: i64,
    key: &str,
    value: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO config (instance_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![instance_id, key, value])
    .map(|_| ())
}

/// Inserts `notifications` as `Pending`, in order; returns their seqs.
fn insert_notifications(
    conn: &Connection,
    notifications: &[NewNotification],
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO notifications (id, instance_id, endpoint, event_count,
                 created_ms, state, delivery, attempts, next_attempt_ms, body)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 1, 0, ?5, ?6)",
        )
        .map_err(db)?;
    let mut seqs = Vec::with_capacity(notifications.len());
    for n in notifications {
        stmt.execute(params![
            n.id,
            n.instance_id,
            n.endpoint,
            n.event_count,
            n.created_ms,
            n.body
        ])
        .map_err(db)?;
        seqs.push(conn.last_insert_rowid());
    }
    Ok(seqs)
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Database(format!("cannot encode JSON: {e}"))
}

#[async_trait]
impl Store for SqliteStore {
    fn group_commits(&self) -> Option<crate::GroupCommits> {
        Some(crate::GroupCommits {
            commits: self.commits(),
            writes: self.write_ops(),
        })
    }

    async fn create_org(
        &self,
        name: &str,
        secrets: &SecretHashes,
        now: Millis,
    ) -> Result<Org, StoreError> {
        let name = name.to_owned();
        let secrets = secrets.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO orgs (name, user_secret_sha256, org_secret_sha256, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db)?
            .execute(params![name, secrets.user, secrets.org, now])
            .map_err(db)?;
            Ok(Org {
                id: conn.last_insert_rowid(),
                name: name.clone(),
                created_ms: now,
            })
        })
        .await
    }

    async fn find_org(&self, secrets: &SecretHashes) -> Result<Option<Org>, StoreError> {
        let secrets = secrets.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, name, created_ms FROM orgs
                 WHERE user_secret_sha256 = ?1 AND org_secret_sha256 = ?2
                 ORDER BY id LIMIT 1",
            )
            .map_err(db)?
            .query_row([&secrets.user, &secrets.org], |r| {
                Ok(Org {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_ms: r.get(2)?,
                })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn count_orgs(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM orgs")
                .map_err(db)?
                .query_row([], |r| r.get(0))
                .map_err(db)?;
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
        })
        .await
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError> {
        let tags = serde_json::to_string(&new.tags).map_err(json_err)?;
        let provider_data = serde_json::to_string(&new.provider_data).map_err(json_err)?;
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO instances (org_id, element_key, name, token_sha256, tags,
                     provider_data, disabled, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )
            .map_err(db)?
            .execute(params![
                new.org_id,
                new.element_key,
                new.name,
                new.token_sha256,
                tags,
                provider_data,
                new.disabled,
                new.created_ms,
            ])
            .map_err(db)?;
            let id = conn.last_insert_rowid();
            for (key, value) in &new.config {
                upsert_config(conn, id, key, value).map_err(db)?;
            }
            get_instance(conn, id)?
                .ok_or_else(|| StoreError::Database(format!("instance {id} vanished")))
        })
        .await
    }

    async fn get_instance(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        self.read(move |conn| get_instance(conn, id)).await
    }

    async fn all_instances(&self) -> Result<Vec<Instance>, StoreError> {
        self.read(all_instances).await
    }

    async fn update_instance(
        &self,
        id: i64,
        update: InstanceUpdate,
    ) -> Result<Option<Instance>, StoreError> {
        let tags = match &update.tags {
            Some(tags) => Some(serde_json::to_string(tags).map_err(json_err)?),
            None => None,
        };
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE instances SET
                         name = COALESCE(?2, name),
                         tags = COALESCE(?3, tags),
                         disabled = COALESCE(?4, disabled),
                         updated_ms = ?5
                     WHERE id = ?1",
                )
                .map_err(db)?
                .execute(params![
                    id,
                    update.name,
                    tags,
                    update.disabled,
                    update.updated_ms
                ])
                .map_err(db)?;
            if changed == 0 {
                return Ok(None);
            }
            for (key, value) in &update.set_config {
                upsert_config(conn, id, key, value).map_err(db)?;
            }
            get_instance(conn, id)
        })
        .await
    }

    async fn delete_instance(&self, id: i64) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM instances WHERE id = ?1")
                .map_err(db)?
                .execute([id])
                .map_err(db)?;
            if deleted == 0 {
                return Ok(false);
            }
            // The foreign keys cascade these deletes too; deleting explicitly keeps them
            // gone even on a connection without foreign keys.
            for sql in [
                "DELETE FROM poll_state WHERE instance_id = ?1",
                "DELETE FROM credentials WHERE instance_id = ?1",
            ] {
                conn.prepare_cached(sql)
                    .map_err(db)?
                    .execute([id])
                    .map_err(db)?;
            }
            conn.prepare_cached(
                "UPDATE notifications SET state = 'dropped'
                 WHERE instance_id = ?1 AND state = 'pending'",
            )
            .map_err(db)?
            .execute([id])
            .map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn enqueue(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>, StoreError> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| insert_notifications(conn, &notifications))
            .await
    }

    async fn pending(&self) -> Result<Vec<Notification>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications
                 WHERE state = 'pending' ORDER BY seq"
            );
            query_notifications(conn, &sql, [])
        })
        .await
    }

    async fn body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT body FROM notifications WHERE id = ?1")
                .map_err(db)?
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            let a = &record.attempt;
            let delivered = record.new_state == NotificationState::Delivered;
            let changed = conn
                .prepare_cached(
                    "UPDATE notifications SET
                         state = CASE WHEN state = 'dropped' AND ?2 <> 'delivered'
                                      THEN 'dropped' ELSE ?2 END,
                         attempts = ?3,
                         next_attempt_ms = ?4,
                         delivered_ms = CASE WHEN ?5 THEN ?6 ELSE delivered_ms END
                     WHERE id = ?1 AND delivery = ?7",
                )
                .map_err(db)?
                .execute(params![
                    a.notification_id,
                    record.new_state.as_str(),
                    a.attempt,
                    record.next_attempt_ms,
                    delivered,
                    a.at_ms,
                    a.delivery,
                ])
                .map_err(db)?;
            if changed == 0 {
                // An attempt of an earlier round, finished after a redeliver call: kept in
                // the history, but it does not change the new round's state.
                let exists = conn
                    .prepare_cached("SELECT 1 FROM notifications WHERE id = ?1")
                    .map_err(db)?
                    .exists([&a.notification_id])
                    .map_err(db)?;
                if !exists {
                    return Err(StoreError::Database(format!(
                        "no notification {:?}",
                        a.notification_id
                    )));
                }
            }
            conn.prepare_cached(
                "INSERT INTO attempts (notification_id, delivery, attempt, at_ms, status_code,
                     latency_us, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db)?
            .execute(params![
                a.notification_id,
                a.delivery,
                a.attempt,
                a.at_ms,
                a.status_code,
                a.latency_us,
                a.error,
            ])
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn list_notifications(
        &self,
        instance_id: i64,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications
                 WHERE instance_id = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3"
            );
            query_notifications(conn, &sql, params![instance_id, limit, offset])
        })
        .await
    }

    async fn get_notification(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| get_notification(conn, &id)).await
    }

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT notification_id, delivery, attempt, at_ms, status_code, latency_us,
                         error
                     FROM attempts WHERE notification_id = ?1 ORDER BY id",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (notification_id, delivery, attempt, at_ms, status, latency_us, error) =
                    row.map_err(db)?;
                let status_code = status
                    .map(|s| {
                        u16::try_from(s)
                            .map_err(|_| StoreError::Corrupt(format!("status code {s}")))
                    })
                    .transpose()?;
                out.push(Attempt {
                    notification_id,
                    delivery: to_u32(delivery, "delivery")?,
                    attempt: to_u32(attempt, "attempt")?,
                    at_ms,
                    status_code,
                    latency_us,
                    error,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn redeliver(&self, id: &str, now: Millis) -> Result<Option<Notification>, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE notifications SET state = 'pending', delivery = delivery + 1,
                         attempts = 0, next_attempt_ms = ?2
                     WHERE id = ?1",
                )
                .map_err(db)?
                .execute(params![id, now])
                .map_err(db)?;
            if changed == 0 {
                return Ok(None);
            }
            get_notification(conn, &id)
        })
        .await
    }

    async fn prune(&self, before: Millis, limit: u32) -> Result<u64, StoreError> {
        self.write(move |conn| {
            // Up to `limit` candidates from each final state, oldest first through
            // `notifications_by_state`; seq order is acceptance order, so the first row
            // accepted at or after `before` ends that state's scan (a clock stepped back only
            // makes it keep more). A row with an attempt or a delivery since `before` (a
            // redelivery) is skipped and does not count.
            let limit = limit as usize;
            let mut doomed: Vec<(i64, String)> = Vec::new();
            for state in [
                NotificationState::Delivered,
                NotificationState::Dead,
                NotificationState::Dropped,
            ] {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT n.seq, n.id, n.created_ms, n.delivered_ms,
                                (SELECT MAX(a.at_ms) FROM attempts a
                                 WHERE a.notification_id = n.id)
                         FROM notifications n WHERE n.state = ?1 ORDER BY n.seq",
                    )
                    .map_err(db)?;
                let mut rows = stmt.query(params![state.as_str()]).map_err(db)?;
                let mut taken = 0;
                while taken < limit {
                    let Some(row) = rows.next().map_err(db)? else {
                        break;
                    };
                    let created: i64 = row.get(2).map_err(db)?;
                    if created >= before {
                        break;
                    }
                    let delivered: Option<i64> = row.get(3).map_err(db)?;
                    let last_attempt: Option<i64> = row.get(4).map_err(db)?;
                    if delivered.max(last_attempt).is_some_and(|t| t >= before) {
                        continue;
                    }
                    doomed.push((row.get(0).map_err(db)?, row.get(1).map_err(db)?));
                    taken += 1;
                }
            }
            // The oldest `limit` across the states.
            doomed.sort_unstable_by_key(|(seq, _)| *seq);
            doomed.truncate(limit);
            let mut attempts = conn
                .prepare_cached("DELETE FROM attempts WHERE notification_id = ?1")
                .map_err(db)?;
            let mut notifications = conn
                .prepare_cached("DELETE FROM notifications WHERE seq = ?1")
                .map_err(db)?;
            for (seq, id) in &doomed {
                attempts.execute(params![id]).map_err(db)?;
                notifications.execute(params![seq]).map_err(db)?;
            }
            Ok(doomed.len() as u64)
        })
        .await
    }

    async fn count_by_state(&self) -> Result<Vec<(NotificationState, u64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT state, COUNT(*) FROM notifications GROUP BY state")
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (state, n) = row.map_err(db)?;
                let state = NotificationState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("notification state {state:?}")))?;
                let n = u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))?;
                out.push((state, n));
            }
            Ok(out)
        })
        .await
    }

    async fn poll_states(&self, instance_id: i64) -> Result<Vec<PollState>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT instance_id, resource, last_success_ms, seen, last_attempt_ms,
                         last_error, failures, last_events, not_before_ms
                     FROM poll_state WHERE instance_id = ?1 ORDER BY resource",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([instance_id], RawPollState::from_row)
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(db)?.check()?);
            }
            Ok(out)
        })
        .await
    }

    async fn save_poll(
        &self,
        state: PollState,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        // Encoded here, not on the writer thread: the list can be long.
        let seen = serde_json::to_string(&state.seen).map_err(json_err)?;
        self.write(move |conn| {
            let seqs = insert_notifications(conn, &notifications)?;
            conn.prepare_cached(
                "INSERT INTO poll_state (instance_id, resource, last_success_ms, seen,
                     last_attempt_ms, last_error, failures, last_events, not_before_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (instance_id, resource) DO UPDATE SET
                     last_success_ms = excluded.last_success_ms,
                     seen = excluded.seen,
                     last_attempt_ms = excluded.last_attempt_ms,
                     last_error = excluded.last_error,
                     failures = excluded.failures,
                     last_events = excluded.last_events,
                     not_before_ms = excluded.not_before_ms",
            )
            .map_err(db)?
            .execute(params![
                state.instance_id,
                state.resource,
                state.last_success_ms,
                seen,
                state.last_attempt_ms,
                state.last_error,
                state.failures,
                state.last_events,
                state.not_before_ms,
            ])
            .map_err(db)?;
            Ok(seqs)
        })
        .await
    }

    async fn credentials(&self, instance_id: i64) -> Result<Option<StoredCredentials>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT access_token, refresh_token, expires_at_ms, obtained_ms
                 FROM credentials WHERE instance_id = ?1",
            )
            .map_err(db)?
            .query_row([instance_id], |r| {
                Ok(StoredCredentials {
                    access_token: r.get(0)?,
                    refresh_token: r.get(1)?,
                    expires_at_ms: r.get(2)?,
                    obtained_ms: r.get(3)?,
                })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn save_credentials(
        &self,
        instance_id: i64,
        credentials: Option<StoredCredentials>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            match &credentials {
                Some(c) => conn
                    .prepare_cached(
                        "INSERT INTO credentials (instance_id, access_token, refresh_token,
                             expires_at_ms, obtained_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (instance_id) DO UPDATE SET
                             access_token = excluded.access_token,
                             refresh_token = excluded.refresh_token,
                             expires_at_ms = excluded.expires_at_ms,
                             obtained_ms = excluded.obtained_ms",
                    )
                    .map_err(db)?
                    .execute(params![
                        instance_id,
                        c.access_token,
                        c.refresh_token,
                        c.expires_at_ms,
                        c.obtained_ms,
                    ])
                    .map_err(db)?,
                None => conn
                    .prepare_cached("DELETE FROM credentials WHERE instance_id = ?1")
                    .map_err(db)?
                    .execute([instance_id])
                    .map_err(db)?,
            };
            Ok(())
        })
        .await
    }
}
