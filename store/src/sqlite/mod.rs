//! The SQLite backend: one database file, one writer thread that group-commits, and a
//! small pool of read connections.
//!
//! # Writes
//!
//! Every write method hands its work to a dedicated writer thread that owns the only
//! write connection. The thread takes the first queued operation, then every operation
//! already waiting (up to [`MAX_BATCH`]), runs them back to back in one transaction, with
//! no savepoint each (a savepoint costs two statements and a copy of every page the
//! operation touches), and commits once: one fsync for the whole batch. There is no timed
//! wait: a lone write commits at once, and batches form by themselves while a commit is in
//! progress.
//!
//! Only a failing operation changes this. The writer stops at it and rolls the transaction
//! back; an operation that was alone in its batch is then done (the rollback confined its
//! failure). Otherwise the writer runs the whole batch again in a new transaction, this
//! time with one savepoint per operation: an operation that fails in this second run is
//! rolled back to its savepoint, so its failure reaches only its caller, and the rest
//! commit together. An operation may thus run twice (operations are written to allow it);
//! its last run's result is the one returned. If SQLite rolls the whole transaction back
//! itself (disk full, I/O error...), or one of the writer's own statements (`BEGIN`,
//! `ROLLBACK`, the savepoints, `COMMIT`) fails, every operation of the batch fails.
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
//! - [`Store::enqueue_webhook`] keys a shared body by its digest alone: a later webhook of
//!   the same digest reuses the stored bytes (the host derives `raw` from what the digest
//!   covers). A notification keeps its stored envelope without the body, and
//!   [`Store::body`] puts the body back in at `raw_at`.
//!
//! # Schema versions
//!
//! `PRAGMA user_version` holds the schema version. Opening a file migrates it to the
//! current version (5) in one transaction, step by step, keeping its data: version 1 has
//! the organizations, instances and outbox; version 2 adds `poll_state` and
//! `credentials`; version 3 adds `webhook_intake` (idempotent intake, with its digest
//! index `webhook_intake_keys` and `webhook_intake_merged`, see `intake`), `webhook_bodies`
//! (a body several notifications of a webhook carry, stored once) and
//! `notification_bodies` (which notification carries which, and where); version 4 adds
//! `credentials.origin`; version 5 adds `attempts_by_time`, the index of attempts by time
//! (per-minute statistics). A file with a newer version is refused.
//!
//! # Code layout
//!
//! This module holds [`SqliteStore`] (opening, the read pool, the hand-off to the writer)
//! and its [`Store`] implementation, whose methods call into one submodule per concern:
//! `orgs`, `instances`, `outbox` (notifications and their attempts), `activity` (what the
//! console reads: filtered listings, dead letters redelivered in bulk, statistics), `poll`
//! (poll states) and `credentials`. `writer` is the writer thread and its group commit,
//! `schema` the connection settings and the migrations, `rows` the mapping of stored rows
//! to the crate's types.

mod activity;
mod credentials;
mod instances;
mod intake;
mod orgs;
mod outbox;
mod poll;
mod rows;
mod schema;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{
    Activity, Attempt, AttemptRecord, Instance, InstanceId, InstanceUpdate, Millis, MinuteStats,
    NewInstance, NewNotification, Notification, NotificationFilter, NotificationId,
    NotificationState, Org, PollState, Redelivered, SecretHashes, Store, StoreError,
    StoredCredentials, WebhookIntake, WebhookStored,
};
use intake::IntakeTail;
use schema::{configure, migrate};
use writer::{Job, WriteOp, WriteStats, writer_loop};

pub use writer::{CHECKPOINT_BUSY, CHECKPOINT_QUIET, MAX_BATCH};

/// How many read connections a store keeps.
const READERS: usize = 4;

/// A [`Store`] in one SQLite file.
///
/// Cloning is cheap and every clone shares the same connections and writer thread. When
/// the last clone is dropped, the writer finishes the operations already queued, closes
/// its connection and ends; the drop waits for it.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// What every clone of a [`SqliteStore`] shares.
struct Inner {
    /// The queue to the writer thread; `None` only while dropping.
    writer: Option<mpsc::Sender<Box<dyn WriteOp>>>,
    /// The writer thread; `None` only while dropping.
    thread: Option<JoinHandle<()>>,
    /// The read connections.
    readers: Vec<Mutex<Connection>>,
    /// Where the next read starts looking for an idle connection.
    next_reader: AtomicUsize,
    /// The writer's group-commit counters.
    stats: Arc<WriteStats>,
    /// The newest part of idempotent intake's digest index.
    intake: Arc<IntakeTail>,
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
        private_files(path).map_err(|e| open_err(e.to_string()))?;
        let writer = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        configure(&writer, false).map_err(open_err)?;
        migrate(&writer).map_err(open_err)?;
        let intake = Arc::new(IntakeTail::load(&writer).map_err(open_err)?);

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
                intake,
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
        let op: Box<dyn WriteOp> = Box::new(Job::new(f, reply));
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
        self.orgs_create(name, secrets, now).await
    }

    async fn find_org(&self, secrets: &SecretHashes) -> Result<Option<Org>, StoreError> {
        self.orgs_find(secrets).await
    }

    async fn count_orgs(&self) -> Result<u64, StoreError> {
        self.orgs_count().await
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError> {
        self.instances_create(new).await
    }

    async fn get_instance(&self, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        self.instances_get(id).await
    }

    async fn all_instances(&self) -> Result<Vec<Instance>, StoreError> {
        self.instances_all().await
    }

    async fn update_instance(
        &self,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<Instance>, StoreError> {
        self.instances_update(id, update).await
    }

    async fn delete_instance(&self, id: InstanceId) -> Result<bool, StoreError> {
        self.instances_delete(id).await
    }

    async fn enqueue(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>, StoreError> {
        self.outbox_enqueue(notifications).await
    }

    async fn enqueue_webhook(
        &self,
        intake: WebhookIntake,
        notifications: Vec<NewNotification>,
    ) -> Result<WebhookStored, StoreError> {
        self.outbox_enqueue_webhook(intake, notifications).await
    }

    async fn pending(&self) -> Result<Vec<Notification>, StoreError> {
        self.outbox_pending().await
    }

    async fn body(&self, id: &NotificationId) -> Result<Option<Vec<u8>>, StoreError> {
        self.outbox_body(id.as_str()).await
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError> {
        self.outbox_record_attempt(record).await
    }

    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Vec<Result<(), StoreError>> {
        self.outbox_record_attempts(records).await
    }

    async fn find_notifications(
        &self,
        instances: &[InstanceId],
        filter: &NotificationFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.activity_find(instances, filter, limit, offset).await
    }

    async fn get_notification(
        &self,
        id: &NotificationId,
    ) -> Result<Option<Notification>, StoreError> {
        self.outbox_get(id.as_str()).await
    }

    async fn attempts(&self, id: &NotificationId) -> Result<Vec<Attempt>, StoreError> {
        self.outbox_attempts(id.as_str()).await
    }

    async fn redeliver(
        &self,
        id: &NotificationId,
        now: Millis,
    ) -> Result<Option<Notification>, StoreError> {
        self.outbox_redeliver(id.as_str(), now).await
    }

    async fn redeliver_dead(
        &self,
        instance_id: InstanceId,
        since: Option<Millis>,
        limit: u32,
        now: Millis,
    ) -> Result<Redelivered, StoreError> {
        self.activity_redeliver_dead(instance_id, since, limit, now)
            .await
    }

    async fn attempt_stats(
        &self,
        instance_id: InstanceId,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<MinuteStats>, StoreError> {
        self.activity_attempt_stats(instance_id, from, until).await
    }

    async fn activity_of(
        &self,
        instances: &[InstanceId],
    ) -> Result<std::collections::HashMap<InstanceId, Activity>, StoreError> {
        SqliteStore::activity_of(self, instances).await
    }

    async fn poll_health_of(&self, instances: &[InstanceId]) -> Result<Vec<PollState>, StoreError> {
        self.activity_poll_health(instances).await
    }

    async fn prune(&self, before: Millis, limit: u32) -> Result<u64, StoreError> {
        self.outbox_prune(before, limit).await
    }

    async fn count_by_state(&self) -> Result<Vec<(NotificationState, u64)>, StoreError> {
        self.outbox_count_by_state().await
    }

    async fn poll_states(&self, instance_id: InstanceId) -> Result<Vec<PollState>, StoreError> {
        self.poll_load(instance_id).await
    }

    async fn save_poll(
        &self,
        state: PollState,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        self.poll_save(state, notifications).await
    }

    async fn credentials(
        &self,
        instance_id: InstanceId,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.credentials_load(instance_id).await
    }

    async fn save_credentials(
        &self,
        instance_id: InstanceId,
        credentials: Option<StoredCredentials>,
    ) -> Result<(), StoreError> {
        self.credentials_save(instance_id, credentials).await
    }
}

/// Makes the database file (created empty when missing) and any WAL or shared-memory file
/// beside it readable by this user alone (0600 on Unix). SQLite gives the WAL and
/// shared-memory files it creates the database file's mode.
fn private_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
