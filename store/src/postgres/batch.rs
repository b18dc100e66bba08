//! The SQL of one writer batch: any number of `enqueue`, `enqueue_webhook` and
//! `record_attempt` calls in one transaction, with a fixed number of statements whatever
//! the batch's size (each table's rows go in one `INSERT … SELECT FROM unnest(…)`).
//!
//! Three round trips per batch (statements sent together are pipelined: the server runs
//! them in order, each with its own snapshot):
//!
//! 1. `BEGIN` (or the fallback's `SAVEPOINT`); the advisory locks of every webhook digest
//!    with the dedupe window on, in one statement, in ascending key order (two hosts'
//!    batches take their common keys in the same order, so they never wait for each other
//!    in a cycle); the dedupe lookup of those digests (a statement after the locks, so its
//!    snapshot sees whatever another host committed under them); which notifications of
//!    the attempts exist, and their new state. (Plus one for the ids of the earlier
//!    notifications, when the lookup found some.)
//! 2. Every new notification, in call order.
//! 3. The webhooks' shared bodies, their links and intake runs, the attempt rows (but not
//!    those of an unknown notification: that call fails alone, having written nothing), and
//!    `COMMIT`. A statement that fails aborts the transaction, so the `COMMIT` then only
//!    ends it (as a `ROLLBACK`) and the batch fails with that statement's error.
//!
//! Two calls of a batch must not depend on each other: the writer keeps a second webhook of
//! the same digest, or a second attempt of the same notification, for the next batch.
//! A call's own failure found before it writes (an unknown notification) is its result;
//! any other error fails the statement, and so the whole batch: the writer then runs each
//! call in its own savepoint.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::future::try_join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::pg;
use super::pool::Statements;
use crate::webhook::Prepared;
use crate::{
    AttemptRecord, InstanceId, NewNotification, NotificationId, NotificationState, StoreError,
    WebhookIntake, WebhookStored,
};

/// One write call queued for the writer.
pub(super) enum Op {
    /// [`Store::enqueue`](crate::Store::enqueue).
    Enqueue(Vec<NewNotification>),
    /// [`Store::enqueue_webhook`](crate::Store::enqueue_webhook), its bodies already
    /// checked and cut (`prepare_webhook`).
    Webhook {
        /// The webhook.
        intake: WebhookIntake,
        /// Its notifications (at least one).
        notifications: Vec<NewNotification>,
        /// Each notification's `raw_at` and body without the shared one.
        prepared: Vec<Prepared>,
    },
    /// [`Store::record_attempt`](crate::Store::record_attempt).
    Attempt(AttemptRecord),
}

/// What a call stored.
#[derive(Debug)]
pub(super) enum Outcome {
    /// An `enqueue`'s seqs.
    Seqs(Vec<i64>),
    /// An `enqueue_webhook`'s result.
    Stored(WebhookStored),
    /// A `record_attempt`'s.
    Recorded,
}

/// What must not be twice in one batch: the digest of a webhook with the dedupe window on,
/// or the notification of an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// A webhook digest.
    Digest([u8; 32]),
    /// An attempt's notification.
    Notification(String),
}

impl Op {
    /// The key another call of the same batch must not share with this one.
    pub(super) fn key(&self) -> Option<Key> {
        match self {
            Op::Enqueue(_) => None,
            Op::Webhook { intake, .. } => intake
                .dedupe_since
                .is_some()
                .then_some(Key::Digest(intake.digest)),
            Op::Attempt(r) => Some(Key::Notification(r.attempt.notification_id.0.clone())),
        }
    }
}

/// The advisory lock key of a digest: its first 8 bytes. Two webhooks whose digests share
/// them only wait for each other; the check itself compares the whole digest.
fn lock_key(digest: &[u8; 32]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

const LOCK: &str = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k";

const EARLIER_RUNS: &str = "SELECT u.i, w.instance_id, w.seq, w.last_seq
     FROM unnest($1::bytea[], $2::int8[]) WITH ORDINALITY AS u(digest, since, i)
     JOIN webhook_intake w ON w.digest = u.digest AND w.created_ms >= u.since
     ORDER BY u.i, w.seq";

const EARLIER_IDS: &str = "SELECT u.j, n.id
     FROM unnest($1::int8[], $2::int8[], $3::int8[]) WITH ORDINALITY AS u(first, last, inst, j)
     JOIN notifications n ON n.seq BETWEEN u.first AND u.last AND n.instance_id = u.inst
     ORDER BY u.j, n.seq";

/// Inserts notifications as `Pending` from arrays (id, instance, endpoint, event count,
/// created, body), in array order; returns each one's `id, seq`.
pub(super) const INSERT_NOTIFICATIONS: &str =
    "INSERT INTO notifications (id, instance_id, endpoint,
         event_count, created_ms, state, delivery, attempts, next_attempt_ms, body)
     SELECT id, inst, endpoint, events, created, 'pending', 1, 0, created, body
     FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::bytea[])
         WITH ORDINALITY AS u(id, inst, endpoint, events, created, body, i)
     ORDER BY i
     RETURNING id, seq";

const INSERT_LINKS: &str = "INSERT INTO notification_bodies (seq, body_id, raw_at)
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[])";

const INSERT_RUNS: &str = "INSERT INTO webhook_intake (seq, last_seq, instance_id, created_ms,
         digest)
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::bytea[])";

const INSERT_BODIES: &str = "INSERT INTO webhook_bodies (id, last_seq, body)
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[])";

const EXISTING: &str = "SELECT id FROM notifications WHERE id = ANY($1::text[])";

const UPDATE_STATES: &str = "UPDATE notifications n SET
         state = CASE WHEN n.state = 'dropped' AND u.state <> 'delivered'
                      THEN 'dropped' ELSE u.state END,
         attempts = u.attempts,
         next_attempt_ms = u.next,
         delivered_ms = COALESCE(u.delivered, n.delivered_ms)
     FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[])
         AS u(id, state, attempts, next, delivered, delivery)
     WHERE n.id = u.id AND n.delivery = u.delivery";

const INSERT_ATTEMPTS: &str = "INSERT INTO attempts (notification_id, delivery, attempt, at_ms,
         status_code, latency_us, error)
     SELECT id, delivery, attempt, at, status, latency, error
     FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
                 $7::text[]) WITH ORDINALITY AS u(id, delivery, attempt, at, status, latency,
                 error, i)
     ORDER BY i";

/// One statement of a pipelined round trip: its rows (none for a statement without).
type Step<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// Parameters of a statement.
type Params<'a> = [&'a (dyn ToSql + Sync)];

/// `statement` run for its rows.
fn query<'a>(c: &'a Client, statement: &'a Statement, params: &'a Params<'a>) -> Step<'a> {
    Box::pin(c.query(statement, params))
}

/// `statement` run for its effect.
fn execute<'a>(c: &'a Client, statement: &'a Statement, params: &'a Params<'a>) -> Step<'a> {
    Box::pin(async move { c.execute(statement, params).await.map(|_| Vec::new()) })
}

/// `sql` (no parameters: `BEGIN`, `COMMIT`, …) through the simple query protocol.
fn simple<'a>(c: &'a Client, sql: &'a str) -> Step<'a> {
    Box::pin(async move { c.batch_execute(sql).await.map(|()| Vec::new()) })
}

/// Sends `steps` together, in order (each step sends its statement when first polled, and
/// `try_join_all` polls them in order), and waits for every answer.
async fn pipeline(steps: Vec<Step<'_>>) -> Result<Vec<Vec<Row>>, StoreError> {
    try_join_all(steps).await.map_err(pg)
}

/// The advisory lock keys of `ops`' webhooks with the dedupe window on, ascending, once each.
fn lock_keys(ops: &[&Op]) -> Vec<i64> {
    let mut keys: Vec<i64> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Webhook { intake, .. } if intake.dedupe_since.is_some() => {
                Some(lock_key(&intake.digest))
            }
            _ => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Takes the advisory locks of the digests of `ops`' webhooks with the dedupe window on,
/// in ascending key order, in one statement (none: no statement).
pub(super) async fn lock_digests(
    c: &Client,
    statements: &mut Statements,
    ops: &[&Op],
) -> Result<(), StoreError> {
    let keys = lock_keys(ops);
    if keys.is_empty() {
        return Ok(());
    }
    let lock = statements.get(c, LOCK).await?;
    c.execute(&lock, &[&keys]).await.map_err(pg)?;
    Ok(())
}

/// For each op (by index), the instances already notified of its webhook within its
/// window, in the order they first appear in its notifications, each with the ids of those
/// notifications (oldest first), from the dedupe lookup's `runs` (of the `probed` ops). A
/// recorded run whose notifications were all pruned does not count.
async fn earlier_notifications(
    c: &Client,
    ids_statement: &Statement,
    ops: &[&Op],
    probed: &[usize],
    runs: &[Row],
) -> Result<HashMap<usize, Vec<(InstanceId, Vec<NotificationId>)>>, StoreError> {
    let mut found = HashMap::new();
    // One probe per run of an instance the op notifies: (op, instance).
    let mut probes: Vec<(usize, InstanceId)> = Vec::new();
    let (mut firsts, mut lasts, mut instances) = (Vec::new(), Vec::new(), Vec::new());
    for r in runs {
        let i: i64 = r.try_get(0).map_err(pg)?;
        let k = usize::try_from(i - 1)
            .ok()
            .and_then(|i| probed.get(i))
            .copied()
            .ok_or_else(|| StoreError::Database(format!("dedupe lookup row {i}")))?;
        let instance = InstanceId(r.try_get(1).map_err(pg)?);
        let Op::Webhook { notifications, .. } = ops[k] else {
            continue;
        };
        if !notifications.iter().any(|n| n.instance_id == instance) {
            continue;
        }
        probes.push((k, instance));
        instances.push(instance.0);
        firsts.push(r.try_get::<_, i64>(2).map_err(pg)?);
        lasts.push(r.try_get::<_, i64>(3).map_err(pg)?);
    }
    if probes.is_empty() {
        return Ok(found);
    }
    let mut ids: HashMap<(usize, InstanceId), Vec<NotificationId>> = HashMap::new();
    for r in c
        .query(ids_statement, &[&firsts, &lasts, &instances])
        .await
        .map_err(pg)?
    {
        let j: i64 = r.try_get(0).map_err(pg)?;
        let probe = usize::try_from(j - 1)
            .ok()
            .and_then(|j| probes.get(j))
            .copied()
            .ok_or_else(|| StoreError::Database(format!("dedupe id row {j}")))?;
        ids.entry(probe)
            .or_default()
            .push(NotificationId(r.try_get(1).map_err(pg)?));
    }
    for &k in probed {
        let Op::Webhook { notifications, .. } = ops[k] else {
            continue;
        };
        let mut duplicates: Vec<(InstanceId, Vec<NotificationId>)> = Vec::new();
        for n in notifications {
            if duplicates.iter().any(|(i, _)| *i == n.instance_id) {
                continue;
            }
            if let Some(earlier) = ids.remove(&(k, n.instance_id)) {
                duplicates.push((n.instance_id, earlier));
            }
        }
        if !duplicates.is_empty() {
            found.insert(k, duplicates);
        }
    }
    Ok(found)
}

/// A notification row to insert.
struct NewRow<'a> {
    n: &'a NewNotification,
    body: &'a [u8],
}

/// Runs `ops` on `c`, opening with `open` (`BEGIN`, or a `SAVEPOINT` inside one) and, when
/// `close` is given (`COMMIT`), ending with it in the last round trip: each op's result,
/// in order. `Err` when a statement failed, which aborted the transaction: the caller rolls
/// it back (after a `COMMIT`, there is nothing left to roll back).
pub(super) async fn run(
    c: &Client,
    statements: &mut Statements,
    ops: &[&Op],
    open: &str,
    close: Option<&str>,
) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
    // Prepared once per connection: no round trip after the first batches.
    let lock = statements.get(c, LOCK).await?;
    let earlier_runs = statements.get(c, EARLIER_RUNS).await?;
    let earlier_ids = statements.get(c, EARLIER_IDS).await?;
    let insert = statements.get(c, INSERT_NOTIFICATIONS).await?;
    let insert_links = statements.get(c, INSERT_LINKS).await?;
    let insert_runs = statements.get(c, INSERT_RUNS).await?;
    let insert_bodies = statements.get(c, INSERT_BODIES).await?;
    let existing = statements.get(c, EXISTING).await?;
    let update_states = statements.get(c, UPDATE_STATES).await?;
    let insert_attempts = statements.get(c, INSERT_ATTEMPTS).await?;

    // Round trip 1: open, locks, dedupe lookup, attempts' notifications and states.
    let keys = lock_keys(ops);
    let mut probed = Vec::new();
    let mut digests: Vec<&[u8]> = Vec::new();
    let mut sinces = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        if let Op::Webhook { intake, .. } = op
            && let Some(since) = intake.dedupe_since
        {
            probed.push(k);
            digests.push(&intake.digest[..]);
            sinces.push(since);
        }
    }
    let records: Vec<(usize, &AttemptRecord)> = ops
        .iter()
        .enumerate()
        .filter_map(|(k, op)| match op {
            Op::Attempt(r) => Some((k, r)),
            _ => None,
        })
        .collect();
    let attempt_ids: Vec<&str> = records
        .iter()
        .map(|(_, r)| r.attempt.notification_id.as_str())
        .collect();
    let states: Vec<&str> = records.iter().map(|(_, r)| r.new_state.as_str()).collect();
    let attempt_numbers: Vec<i64> = records
        .iter()
        .map(|(_, r)| i64::from(r.attempt.attempt))
        .collect();
    let next: Vec<i64> = records.iter().map(|(_, r)| r.next_attempt_ms).collect();
    let delivered: Vec<Option<i64>> = records
        .iter()
        .map(|(_, r)| (r.new_state == NotificationState::Delivered).then_some(r.attempt.at_ms))
        .collect();
    let deliveries: Vec<i64> = records
        .iter()
        .map(|(_, r)| i64::from(r.attempt.delivery))
        .collect();
    let lock_params: [&(dyn ToSql + Sync); 1] = [&keys];
    let lookup_params: [&(dyn ToSql + Sync); 2] = [&digests, &sinces];
    let existing_params: [&(dyn ToSql + Sync); 1] = [&attempt_ids];
    let state_params: [&(dyn ToSql + Sync); 6] = [
        &attempt_ids,
        &states,
        &attempt_numbers,
        &next,
        &delivered,
        &deliveries,
    ];
    let mut first = vec![simple(c, open)];
    if !keys.is_empty() {
        first.push(execute(c, &lock, &lock_params));
    }
    let lookup_at = (!probed.is_empty()).then(|| {
        first.push(query(c, &earlier_runs, &lookup_params));
        first.len() - 1
    });
    let existing_at = (!records.is_empty()).then(|| {
        first.push(query(c, &existing, &existing_params));
        // The update of an unknown notification changes nothing. An attempt of an earlier
        // round (after a redeliver) matches no row: it is kept in the history but leaves
        // the new round's state alone.
        first.push(execute(c, &update_states, &state_params));
        first.len() - 2
    });
    let mut answers = pipeline(first).await?;
    let runs = lookup_at.map(|i| std::mem::take(&mut answers[i]));
    let found = existing_at.map(|i| std::mem::take(&mut answers[i]));
    let mut duplicates = match runs {
        Some(runs) if !runs.is_empty() => {
            earlier_notifications(c, &earlier_ids, ops, &probed, &runs).await?
        }
        _ => HashMap::new(),
    };
    let mut results: Vec<Option<Result<Outcome, StoreError>>> =
        std::iter::repeat_with(|| None).take(ops.len()).collect();

    // Round trip 2: every notification to insert, in call order; each op's rows (by
    // index), `None` for a webhook notification not stored as a duplicate.
    let mut rows: Vec<NewRow<'_>> = Vec::new();
    let mut op_rows: Vec<Vec<Option<usize>>> = vec![Vec::new(); ops.len()];
    for (k, op) in ops.iter().enumerate() {
        match op {
            Op::Enqueue(notifications) => {
                for n in notifications {
                    op_rows[k].push(Some(rows.len()));
                    rows.push(NewRow { n, body: &n.body });
                }
            }
            Op::Webhook {
                notifications,
                prepared,
                ..
            } => {
                let dups = duplicates.get(&k);
                let is_duplicate = |n: &NewNotification| {
                    dups.is_some_and(|d| d.iter().any(|(i, _)| *i == n.instance_id))
                };
                let stored = notifications.iter().filter(|n| !is_duplicate(n)).count();
                for (n, (_, stripped)) in notifications.iter().zip(prepared) {
                    if is_duplicate(n) {
                        op_rows[k].push(None);
                        continue;
                    }
                    // With several stored, each carries the shared body (stored once) cut
                    // out.
                    let body = match stripped {
                        Some(stripped) if stored > 1 => stripped.as_slice(),
                        _ => n.body.as_slice(),
                    };
                    op_rows[k].push(Some(rows.len()));
                    rows.push(NewRow { n, body });
                }
            }
            Op::Attempt(_) => {}
        }
    }
    let seqs = insert_rows(c, &insert, &rows).await?;

    // Round trip 3: the webhooks' shared bodies, links and intake runs, the attempts, close.
    let (mut link_seqs, mut link_bodies, mut link_at) = (Vec::new(), Vec::new(), Vec::new());
    let (mut run_firsts, mut run_lasts, mut run_instances, mut run_created, mut run_digests) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<&[u8]>::new(),
    );
    let (mut body_ids, mut body_lasts, mut body_raws) = (Vec::new(), Vec::new(), Vec::new());
    for (k, op) in ops.iter().enumerate() {
        match op {
            Op::Enqueue(_) => {
                let mine = op_rows[k].iter().flatten().map(|&r| seqs[r]).collect();
                results[k] = Some(Ok(Outcome::Seqs(mine)));
            }
            Op::Webhook {
                intake,
                notifications,
                prepared,
            } => {
                let stored = op_rows[k].iter().flatten().count();
                // (first seq, last seq) of the stored ones that carry the shared body.
                let mut shared: Option<(i64, i64)> = None;
                // Runs of consecutive seqs of one instance: instance, first, last, created.
                // Another host's insert between two of ours only splits a run.
                let mut runs: Vec<(InstanceId, i64, i64, i64)> = Vec::new();
                let mut mine = Vec::with_capacity(notifications.len());
                for ((n, (at, stripped)), row) in
                    notifications.iter().zip(prepared).zip(&op_rows[k])
                {
                    let Some(row) = row else {
                        mine.push(None);
                        continue;
                    };
                    let seq = seqs[*row];
                    if stripped.is_some() && stored > 1 {
                        let first = shared.map_or(seq, |(first, _)| first);
                        let at = i64::try_from(*at).map_err(|_| {
                            StoreError::Database(format!("raw_at {at} out of range"))
                        })?;
                        link_seqs.push(seq);
                        link_bodies.push(first);
                        link_at.push(at);
                        shared = Some((first, seq));
                    }
                    match runs.last_mut() {
                        Some((instance, _, last, _))
                            if *instance == n.instance_id && *last + 1 == seq =>
                        {
                            *last = seq;
                        }
                        _ => runs.push((n.instance_id, seq, seq, n.created_ms)),
                    }
                    mine.push(Some(seq));
                }
                if intake.dedupe_since.is_some() {
                    for (instance, first, last, created) in runs {
                        run_firsts.push(first);
                        run_lasts.push(last);
                        run_instances.push(instance.0);
                        run_created.push(created);
                        run_digests.push(&intake.digest[..]);
                    }
                }
                if let Some((first, last)) = shared {
                    body_ids.push(first);
                    body_lasts.push(last);
                    body_raws.push(intake.raw.as_slice());
                }
                results[k] = Some(Ok(Outcome::Stored(WebhookStored {
                    seqs: mine,
                    duplicates: duplicates.remove(&k).unwrap_or_default(),
                })));
            }
            Op::Attempt(_) => {}
        }
    }
    // The attempts of known notifications; an unknown one's call fails, writing nothing.
    let found: Vec<String> = found
        .unwrap_or_default()
        .iter()
        .map(|r| r.try_get(0).map_err(pg))
        .collect::<Result<_, _>>()?;
    let mut kept: Vec<&AttemptRecord> = Vec::new();
    for (k, r) in &records {
        let id = r.attempt.notification_id.as_str();
        results[*k] = Some(if found.iter().any(|f| f == id) {
            kept.push(r);
            Ok(Outcome::Recorded)
        } else {
            Err(StoreError::Database(format!(
                "no notification {:?}",
                r.attempt.notification_id
            )))
        });
    }
    let a = |f: fn(&AttemptRecord) -> i64| kept.iter().map(|r| f(r)).collect::<Vec<_>>();
    let kept_ids: Vec<&str> = kept
        .iter()
        .map(|r| r.attempt.notification_id.as_str())
        .collect();
    let (kept_deliveries, kept_numbers, kept_at, kept_latency) = (
        a(|r| i64::from(r.attempt.delivery)),
        a(|r| i64::from(r.attempt.attempt)),
        a(|r| r.attempt.at_ms),
        a(|r| r.attempt.latency_us),
    );
    let kept_status: Vec<Option<i64>> = kept
        .iter()
        .map(|r| r.attempt.status_code.map(i64::from))
        .collect();
    let kept_errors: Vec<Option<&str>> = kept.iter().map(|r| r.attempt.error.as_deref()).collect();
    let link_params: [&(dyn ToSql + Sync); 3] = [&link_seqs, &link_bodies, &link_at];
    let run_params: [&(dyn ToSql + Sync); 5] = [
        &run_firsts,
        &run_lasts,
        &run_instances,
        &run_created,
        &run_digests,
    ];
    let body_params: [&(dyn ToSql + Sync); 3] = [&body_ids, &body_lasts, &body_raws];
    let attempt_params: [&(dyn ToSql + Sync); 7] = [
        &kept_ids,
        &kept_deliveries,
        &kept_numbers,
        &kept_at,
        &kept_status,
        &kept_latency,
        &kept_errors,
    ];
    let mut last = Vec::new();
    if !link_seqs.is_empty() {
        last.push(execute(c, &insert_links, &link_params));
    }
    if !run_firsts.is_empty() {
        last.push(execute(c, &insert_runs, &run_params));
    }
    if !body_ids.is_empty() {
        last.push(execute(c, &insert_bodies, &body_params));
    }
    if !kept.is_empty() {
        last.push(execute(c, &insert_attempts, &attempt_params));
    }
    if let Some(close) = close {
        last.push(simple(c, close));
    }
    pipeline(last).await?;
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| StoreError::Database("a write call had no result".into())))
        .collect()
}

/// Inserts `rows` in one statement, in order; their seqs, in the same order.
async fn insert_rows(
    c: &Client,
    insert: &Statement,
    rows: &[NewRow<'_>],
) -> Result<Vec<i64>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.n.id.as_str()).collect();
    let instances: Vec<i64> = rows.iter().map(|r| r.n.instance_id.0).collect();
    let endpoints: Vec<&str> = rows.iter().map(|r| r.n.endpoint.as_str()).collect();
    let events: Vec<i64> = rows.iter().map(|r| i64::from(r.n.event_count)).collect();
    let created: Vec<i64> = rows.iter().map(|r| r.n.created_ms).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body).collect();
    let returned = c
        .query(
            insert,
            &[&ids, &instances, &endpoints, &events, &created, &bodies],
        )
        .await
        .map_err(pg)?;
    let mut by_id: HashMap<&str, i64> = HashMap::with_capacity(returned.len());
    for r in &returned {
        by_id.insert(r.try_get(0).map_err(pg)?, r.try_get(1).map_err(pg)?);
    }
    ids.iter()
        .map(|id| {
            by_id
                .get(id)
                .copied()
                .ok_or_else(|| StoreError::Database(format!("no seq returned for {id}")))
        })
        .collect()
}
