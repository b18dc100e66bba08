//! The writer thread: the only write connection, group commit, and the checkpoint policy.
//!
//! Operations queue on a channel; the thread takes what is waiting, runs it in one
//! transaction and answers every caller once it is committed (see the module
//! documentation of [`super`] for how a failing operation is confined).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

/// The most operations the writer puts in one transaction.
pub const MAX_BATCH: usize = 1024;

/// The WAL size (in pages) that triggers a checkpoint while writes come one or two at a
/// time: small checkpoints, so none holds the writes behind it for long (latency).
pub const CHECKPOINT_QUIET: i64 = 250;
/// The same while batches are big: fewer checkpoints, and the hot pages every insert
/// touches copied once per checkpoint (throughput).
pub const CHECKPOINT_BUSY: i64 = 1000;
/// The average batch size from which the writer counts as busy.
const BUSY_BATCH: f64 = 4.0;

/// The writer's counters, read by [`SqliteStore::commits`](super::SqliteStore::commits) and
/// [`SqliteStore::write_ops`](super::SqliteStore::write_ops).
#[derive(Default)]
pub(super) struct WriteStats {
    /// Write transactions committed.
    pub(super) commits: AtomicU64,
    /// Write operations in those transactions.
    pub(super) ops: AtomicU64,
}

/// One write operation queued for the writer thread.
pub(super) trait WriteOp: Send {
    /// Runs the operation; returns whether it succeeded. May run again (after a rollback),
    /// each run replacing the last one's result.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: with the operation's result if the transaction committed,
    /// else with `failure` (or the operation's own error if it had failed).
    fn answer(self: Box<Self>, failure: Option<&str>);
}

/// A [`WriteOp`] that runs a closure and sends its result to the caller.
pub(super) struct Job<T, F> {
    /// The operation; re-runnable.
    work: F,
    /// The last run's result.
    result: Option<Result<T, StoreError>>,
    /// Where the caller waits for the result.
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job<T, F> {
    /// An operation that runs `work` and answers on `reply`.
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        Job {
            work,
            result: None,
            reply,
        }
    }
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

/// Runs a statement without parameters, through the statement cache.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer thread's body: takes batches of queued operations and runs them until the
/// queue is closed, adjusting the checkpoint threshold to the batch sizes, then closes the
/// connection.
pub(super) fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn WriteOp>>,
    stats: &WriteStats,
) {
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
