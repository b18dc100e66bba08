//! The writer task: group commit of intake writes.
//!
//! `enqueue`, `enqueue_webhook` and `record_attempt` calls queue on a channel; one task
//! per store takes everything waiting (up to [`MAX_BATCH`]), runs it in one transaction
//! (`batch`: a fixed number of statements per batch) and answers every caller once it is
//! committed. The busier the store, the bigger the batches: many webhooks, one commit.
//!
//! Error isolation: a call that fails a statement fails the whole transaction; the writer
//! then rolls it back and runs the batch again with a savepoint per call, so only that call
//! fails. The digests' advisory locks are taken first in that second transaction too (in
//! key order), so it cannot deadlock with another host's batch either.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Client;

use super::batch::{self, Key, Op, Outcome};
use super::pg;
use super::pool::{Pool, Statements};
use crate::{GroupCommits, StoreError};

/// The most calls the writer puts in one transaction.
pub const MAX_BATCH: usize = 512;

/// A queued call and where its caller waits.
struct Queued {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// The writer's counters.
#[derive(Default)]
struct Stats {
    commits: AtomicU64,
    writes: AtomicU64,
}

/// The handle of a store's writer task; the task ends when this is dropped (after the
/// calls already queued).
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Queued>,
    stats: Arc<Stats>,
}

impl Writer {
    /// Starts the writer task on the current runtime, writing through `pool`.
    pub(super) fn start(pool: Arc<Pool>) -> Writer {
        let (queue, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(pool, rx, stats.clone()));
        Writer { queue, stats }
    }

    /// Queues `op` (before the first await, so calls made together queue together) and
    /// waits until its batch is committed.
    pub(super) async fn submit(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued { op, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Transactions committed, and the calls in them.
    pub(super) fn group_commits(&self) -> GroupCommits {
        GroupCommits {
            commits: self.stats.commits.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
        }
    }
}

/// The task: takes batches until the queue is closed and empty.
async fn run(pool: Arc<Pool>, mut rx: mpsc::UnboundedReceiver<Queued>, stats: Arc<Stats>) {
    // Calls kept for the next batch because they shared a key with one of this one.
    let mut waiting: VecDeque<Queued> = VecDeque::new();
    loop {
        let mut batch = Vec::new();
        let mut keys = HashSet::new();
        let mut later = VecDeque::new();
        for q in waiting.drain(..) {
            admit(q, &mut batch, &mut keys, &mut later);
        }
        if batch.is_empty() {
            match rx.recv().await {
                Some(q) => admit(q, &mut batch, &mut keys, &mut later),
                None => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => admit(q, &mut batch, &mut keys, &mut later),
                Err(_) => break,
            }
        }
        waiting = later;
        run_batch(&pool, batch, &stats).await;
    }
    tracing::debug!("PostgreSQL store writer stopping");
}

/// Puts `q` in `batch`, or in `later` when the batch is full or has a call of the same key.
fn admit(
    q: Queued,
    batch: &mut Vec<Queued>,
    keys: &mut HashSet<Key>,
    later: &mut VecDeque<Queued>,
) {
    if batch.len() >= MAX_BATCH {
        later.push_back(q);
        return;
    }
    if let Some(key) = q.op.key()
        && !keys.insert(key)
    {
        later.push_back(q);
        return;
    }
    batch.push(q);
}

/// Runs `batch`, counts it if committed, and answers every caller.
async fn run_batch(pool: &Pool, batch: Vec<Queued>, stats: &Stats) {
    let ops: Vec<&Op> = batch.iter().map(|q| &q.op).collect();
    let results = match commit(pool, &ops).await {
        Ok(results) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.writes.fetch_add(ops.len() as u64, Ordering::Relaxed);
            results
        }
        Err(e) => {
            tracing::error!("store write transaction failed: {e}");
            ops.iter().map(|_| Err(copy(&e))).collect()
        }
    };
    for (q, result) in batch.into_iter().zip(results) {
        // The caller may have stopped waiting; the write stands either way.
        let _ = q.reply.send(result);
    }
}

/// The same error again, for each caller of a failed batch.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Database(m) => StoreError::Database(m.clone()),
        StoreError::Open { path, message } => StoreError::Open {
            path: path.clone(),
            message: message.clone(),
        },
        StoreError::Closed => StoreError::Closed,
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

/// Runs `ops` in one transaction and commits it: each op's result. First all together;
/// if a statement fails, again with a savepoint per op, so that only the failing op fails.
async fn commit(pool: &Pool, ops: &[&Op]) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
    let mut pooled = pool.get().await?;
    let (client, statements) = pooled.parts();
    let client: &Client = client;
    match batch::run(client, statements, ops, "BEGIN", Some("COMMIT")).await {
        Ok(results) => return Ok(results),
        Err(e) => {
            // After a failed statement the pipelined COMMIT has ended the transaction;
            // if the batch failed before it, this ends it.
            rollback(client, "ROLLBACK").await?;
            if ops.len() == 1 {
                // Alone in its transaction: its failure is already confined.
                return Err(e);
            }
            tracing::debug!("a write batch failed ({e}); running it again, a savepoint per call");
        }
    }
    client.batch_execute("BEGIN").await.map_err(pg)?;
    let results = match each_in_a_savepoint(client, statements, ops).await {
        Ok(results) => results,
        Err(e) => {
            rollback(client, "ROLLBACK").await?;
            return Err(e);
        }
    };
    client.batch_execute("COMMIT").await.map_err(pg)?;
    Ok(results)
}

/// Runs each of `ops` in a savepoint of the open transaction, after taking every digest's
/// advisory lock in key order: each op's result, a failing one rolled back alone.
async fn each_in_a_savepoint(
    client: &Client,
    statements: &mut Statements,
    ops: &[&Op],
) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
    batch::lock_digests(client, statements, ops).await?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        match batch::run(client, statements, &[*op], "SAVEPOINT op", None).await {
            Ok(mut result) => {
                client
                    .batch_execute("RELEASE SAVEPOINT op")
                    .await
                    .map_err(pg)?;
                results.push(result.pop().unwrap_or_else(|| {
                    Err(StoreError::Database("a write call had no result".into()))
                }));
            }
            Err(e) => {
                rollback(client, "ROLLBACK TO SAVEPOINT op").await?;
                results.push(Err(e));
            }
        }
    }
    Ok(results)
}

/// Sends `sql` (`ROLLBACK`, or `ROLLBACK TO SAVEPOINT …`); `ROLLBACK` with no transaction
/// open is only a warning.
async fn rollback(client: &Client, sql: &str) -> Result<(), StoreError> {
    client.batch_execute(sql).await.map_err(pg)
}
