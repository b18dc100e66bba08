//! The outbox: notifications, their delivery attempts, redelivery, pruning and the counts
//! by state.

use rusqlite::{Connection, OptionalExtension, params};

use std::sync::Arc;

use super::SqliteStore;
use super::intake::{IntakeTail, intake_key};
use super::rows::{NOTIFICATION_COLUMNS, RawNotification, db, to_u32};
use crate::webhook::{Prepared, prepare_webhook};
use crate::{
    Attempt, AttemptRecord, InstanceId, Millis, NewNotification, Notification, NotificationId,
    NotificationState, StoreError, WebhookIntake, WebhookStored,
};

/// The notifications a query of [`NOTIFICATION_COLUMNS`] returns, checked.
pub(super) fn query_notifications<P: rusqlite::Params>(
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

/// One notification.
fn get_notification(conn: &Connection, id: &str) -> Result<Option<Notification>, StoreError> {
    let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?1");
    Ok(query_notifications(conn, &sql, [id])?.pop())
}

/// A notification's stored body, and the shared webhook body that goes back in at the
/// offset, if it carries one.
type StoredBody = (Vec<u8>, Option<i64>, Option<Vec<u8>>);

/// Inserts one notification as `Pending` with the stored body `body`; returns its seq.
fn insert_notification(
    conn: &Connection,
    n: &NewNotification,
    body: &[u8],
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO notifications (id, instance_id, endpoint, event_count,
             created_ms, state, delivery, attempts, next_attempt_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 1, 0, ?5, ?6)",
    )
    .map_err(db)?
    .execute(params![
        n.id,
        n.instance_id,
        n.endpoint,
        n.event_count,
        n.created_ms,
        body
    ])
    .map_err(db)?;
    Ok(conn.last_insert_rowid())
}

/// Inserts `notifications` as `Pending`, in order, each with its whole body; returns their
/// seqs.
pub(super) fn insert_notifications(
    conn: &Connection,
    notifications: &[NewNotification],
) -> Result<Vec<i64>, StoreError> {
    notifications
        .iter()
        .map(|n| insert_notification(conn, n, &n.body))
        .collect()
}

/// Records that notification `seq` carries the shared body `body_id` at `at`.
fn link_body(conn: &Connection, seq: i64, body_id: i64, at: usize) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notification_bodies (seq, body_id, raw_at) VALUES (?1, ?2, ?3)",
    )
    .map_err(db)?
    .execute(params![seq, body_id, at as i64])
    .map_err(db)?;
    Ok(())
}

/// The instances already notified of the webhook of `digest` since `since`, in the order
/// they first appear in `notifications`, each with the ids of those notifications (oldest
/// first). A recorded run whose notifications were all pruned does not count.
fn earlier_notifications(
    conn: &Connection,
    tail: &IntakeTail,
    digest: &[u8; 32],
    since: Millis,
    notifications: &[NewNotification],
) -> Result<Vec<(InstanceId, Vec<NotificationId>)>, StoreError> {
    // (instance, first seq, last seq) of each recorded run, oldest first. The key finds
    // the candidates; the whole digest confirms them.
    let mut run = conn
        .prepare_cached(
            "SELECT instance_id, last_seq FROM webhook_intake
             WHERE seq = ?1 AND digest = ?2 AND created_ms >= ?3",
        )
        .map_err(db)?;
    let mut runs: Vec<(InstanceId, i64, i64)> = Vec::new();
    for seq in tail.candidates(conn, intake_key(digest))? {
        if let Some((instance, last)) = run
            .query_row(params![seq, &digest[..], since], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db)?
        {
            runs.push((instance, seq, last));
        }
    }
    let mut duplicates: Vec<(InstanceId, Vec<NotificationId>)> = Vec::new();
    if runs.is_empty() {
        return Ok(duplicates);
    }
    let mut ids = conn
        .prepare_cached(
            "SELECT id FROM notifications WHERE seq BETWEEN ?1 AND ?2 AND instance_id = ?3
             ORDER BY seq",
        )
        .map_err(db)?;
    for n in notifications {
        if duplicates.iter().any(|(i, _)| *i == n.instance_id) {
            continue;
        }
        let mut earlier = Vec::new();
        for (_, first, last) in runs.iter().filter(|(i, _, _)| *i == n.instance_id) {
            let rows = ids
                .query_map(params![first, last, n.instance_id], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(db)?;
            for id in rows {
                earlier.push(NotificationId(id.map_err(db)?));
            }
        }
        if !earlier.is_empty() {
            duplicates.push((n.instance_id, earlier));
        }
    }
    Ok(duplicates)
}

/// [`Store::enqueue_webhook`](crate::Store::enqueue_webhook)'s work, in the writer's
/// transaction: the check for an earlier notification of the same webhook and the inserts
/// are one step.
///
/// A webhook that stores one notification stores its whole envelope, as
/// [`insert_notifications`] does; one that stores several stores the body once
/// (`webhook_bodies`) and each envelope without it (`notification_bodies` says where it
/// goes back). With the dedupe window on, each run of consecutive notifications of one
/// instance is recorded in `webhook_intake`.
fn insert_webhook(
    conn: &Connection,
    tail: &IntakeTail,
    intake: &WebhookIntake,
    notifications: &[NewNotification],
    prepared: &[Prepared],
) -> Result<WebhookStored, StoreError> {
    let duplicates = match intake.dedupe_since {
        Some(since) => earlier_notifications(conn, tail, &intake.digest, since, notifications)?,
        None => Vec::new(),
    };
    let is_duplicate = |n: &NewNotification| duplicates.iter().any(|(i, _)| *i == n.instance_id);
    let stored = notifications.iter().filter(|n| !is_duplicate(n)).count();
    let mut seqs = Vec::with_capacity(notifications.len());
    // (first seq, last seq) of the stored ones that carry the shared body.
    let mut shared: Option<(i64, i64)> = None;
    // The run being recorded: instance, first seq, last seq, created_ms.
    let mut run: Option<(InstanceId, i64, i64, Millis)> = None;
    let mut record = conn
        .prepare_cached(
            "INSERT INTO webhook_intake (seq, last_seq, instance_id, created_ms, key, digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db)?;
    let key = intake_key(&intake.digest);
    let mut record_run = |run: Option<(InstanceId, i64, i64, Millis)>| match run {
        Some((instance, first, last, created)) if intake.dedupe_since.is_some() => {
            record
                .execute(params![
                    first,
                    last,
                    instance,
                    created,
                    key,
                    &intake.digest[..]
                ])
                .map_err(db)?;
            tail.add(key, first);
            Ok(())
        }
        _ => Ok(()),
    };
    for (n, (at, stripped)) in notifications.iter().zip(prepared) {
        if is_duplicate(n) {
            seqs.push(None);
            continue;
        }
        let seq = match stripped {
            Some(stripped) if stored > 1 => {
                let seq = insert_notification(conn, n, stripped)?;
                let first = shared.map_or(seq, |(first, _)| first);
                link_body(conn, seq, first, *at)?;
                shared = Some((first, seq));
                seq
            }
            _ => insert_notification(conn, n, &n.body)?,
        };
        run = match run {
            Some((instance, first, last, created))
                if instance == n.instance_id && last + 1 == seq =>
            {
                Some((instance, first, seq, created))
            }
            other => {
                record_run(other)?;
                Some((n.instance_id, seq, seq, n.created_ms))
            }
        };
        seqs.push(Some(seq));
    }
    record_run(run)?;
    if let Some((first, last)) = shared {
        conn.prepare_cached("INSERT INTO webhook_bodies (id, last_seq, body) VALUES (?1, ?2, ?3)")
            .map_err(db)?
            .execute(params![first, last, intake.raw])
            .map_err(db)?;
    }
    Ok(WebhookStored { seqs, duplicates })
}

impl SqliteStore {
    /// Implements [`Store::enqueue`](crate::Store::enqueue).
    pub(super) async fn outbox_enqueue(
        &self,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| insert_notifications(conn, &notifications))
            .await
    }

    /// Implements [`Store::enqueue_webhook`](crate::Store::enqueue_webhook).
    pub(super) async fn outbox_enqueue_webhook(
        &self,
        intake: WebhookIntake,
        notifications: Vec<NewNotification>,
    ) -> Result<WebhookStored, StoreError> {
        if notifications.is_empty() {
            return Ok(WebhookStored::default());
        }
        // Done here, not on the writer thread: the copies can be big.
        let prepared = prepare_webhook(&intake.raw, &notifications)?;
        let tail = Arc::clone(&self.inner.intake);
        let stored = self
            .write(move |conn| insert_webhook(conn, &tail, &intake, &notifications, &prepared))
            .await?;
        if self.inner.intake.is_due() {
            // In the background: this webhook is stored, and answered now.
            let store = self.clone();
            tokio::spawn(async move { store.merge_intake(false).await });
        }
        Ok(stored)
    }

    /// Implements [`Store::pending`](crate::Store::pending).
    pub(super) async fn outbox_pending(&self) -> Result<Vec<Notification>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications
                 WHERE state = 'pending' ORDER BY seq"
            );
            query_notifications(conn, &sql, [])
        })
        .await
    }

    /// Implements [`Store::body`](crate::Store::body).
    pub(super) async fn outbox_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let row: Option<StoredBody> = conn
                .prepare_cached(
                    "SELECT n.body, r.raw_at, b.body FROM notifications n
                     LEFT JOIN notification_bodies r ON r.seq = n.seq
                     LEFT JOIN webhook_bodies b ON b.id = r.body_id
                     WHERE n.id = ?1",
                )
                .map_err(db)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(db)?;
            let Some((body, at, raw)) = row else {
                return Ok(None);
            };
            let (Some(at), Some(raw)) = (at, raw) else {
                return Ok(Some(body));
            };
            let at = usize::try_from(at)
                .ok()
                .filter(|&at| at <= body.len())
                .ok_or_else(|| StoreError::Corrupt(format!("raw_at {at}")))?;
            let mut whole = Vec::with_capacity(body.len() + raw.len());
            whole.extend_from_slice(&body[..at]);
            whole.extend_from_slice(&raw);
            whole.extend_from_slice(&body[at..]);
            Ok(Some(whole))
        })
        .await
    }

    /// Implements [`Store::record_attempt`](crate::Store::record_attempt).
    pub(super) async fn outbox_record_attempt(
        &self,
        record: AttemptRecord,
    ) -> Result<(), StoreError> {
        self.write(move |conn| record_attempt(conn, &record)?).await
    }

    /// Implements [`Store::record_attempts`](crate::Store::record_attempts): one write
    /// operation for the whole batch (statements prepared once, one reply), instead of
    /// one per attempt. A record of an unknown notification fails alone; a database error
    /// fails the batch (the writer rolls it back), as it would fail each of its records.
    pub(super) async fn outbox_record_attempts(
        &self,
        records: Vec<AttemptRecord>,
    ) -> Vec<Result<(), StoreError>> {
        let n = records.len();
        match self
            .write(move |conn| {
                records
                    .iter()
                    .map(|record| record_attempt(conn, record))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
        {
            Ok(each) => each,
            Err(e) => {
                let why = e.to_string();
                (0..n)
                    .map(|_| Err(StoreError::Database(why.clone())))
                    .collect()
            }
        }
    }

    /// Implements [`Store::get_notification`](crate::Store::get_notification).
    pub(super) async fn outbox_get(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| get_notification(conn, &id)).await
    }

    /// Implements [`Store::attempts`](crate::Store::attempts).
    pub(super) async fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
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
                    notification_id: NotificationId(notification_id),
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

    /// Implements [`Store::redeliver`](crate::Store::redeliver).
    pub(super) async fn outbox_redeliver(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<Notification>, StoreError> {
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

    /// Implements [`Store::prune`](crate::Store::prune).
    pub(super) async fn outbox_prune(&self, before: Millis, limit: u32) -> Result<u64, StoreError> {
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
            let mut links = conn
                .prepare_cached("DELETE FROM notification_bodies WHERE seq = ?1 RETURNING body_id")
                .map_err(db)?;
            let mut notifications = conn
                .prepare_cached("DELETE FROM notifications WHERE seq = ?1")
                .map_err(db)?;
            // The intake run a notification belongs to, if recorded: the last one that
            // starts at or before it (runs do not overlap), if it ends at or after it.
            let mut run = conn
                .prepare_cached(
                    "SELECT seq, last_seq FROM webhook_intake WHERE seq <= ?1
                     ORDER BY seq DESC LIMIT 1",
                )
                .map_err(db)?;
            let mut bodies: Vec<i64> = Vec::new();
            let mut runs: Vec<i64> = Vec::new();
            for (seq, id) in &doomed {
                attempts.execute(params![id]).map_err(db)?;
                if let Some(body) = links
                    .query_row(params![seq], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(db)?
                {
                    bodies.push(body);
                }
                notifications.execute(params![seq]).map_err(db)?;
                if let Some((first, _)) = run
                    .query_row(params![seq], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()
                    .map_err(db)?
                    .filter(|&(_, last)| last >= *seq)
                {
                    runs.push(first);
                }
            }
            // A shared body, and an intake record, go with the last notification of theirs.
            bodies.sort_unstable();
            bodies.dedup();
            let mut orphan = conn
                .prepare_cached(
                    "DELETE FROM webhook_bodies AS b WHERE b.id = ?1 AND NOT EXISTS
                     (SELECT 1 FROM notification_bodies r WHERE r.seq BETWEEN b.id AND b.last_seq)",
                )
                .map_err(db)?;
            for body in bodies {
                orphan.execute([body]).map_err(db)?;
            }
            runs.sort_unstable();
            runs.dedup();
            let mut forget = conn
                .prepare_cached(
                    "DELETE FROM webhook_intake AS w WHERE w.seq = ?1 AND NOT EXISTS
                     (SELECT 1 FROM notifications n WHERE n.seq BETWEEN w.seq AND w.last_seq)
                     RETURNING key",
                )
                .map_err(db)?;
            let mut unkey = conn
                .prepare_cached("DELETE FROM webhook_intake_keys WHERE key = ?1 AND seq = ?2")
                .map_err(db)?;
            for first in runs {
                if let Some(key) = forget
                    .query_row([first], |r| r.get::<_, i64>(0))
                    .optional()
                    .map_err(db)?
                {
                    unkey.execute(params![key, first]).map_err(db)?;
                }
            }
            Ok(doomed.len() as u64)
        })
        .await
    }

    /// Implements [`Store::count_by_state`](crate::Store::count_by_state).
    pub(super) async fn outbox_count_by_state(
        &self,
    ) -> Result<Vec<(NotificationState, u64)>, StoreError> {
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
}

/// Records one attempt in the writer's transaction: `Err` on a database error (which fails
/// the whole operation), `Ok(Err)` when the notification does not exist (nothing written).
fn record_attempt(
    conn: &Connection,
    record: &AttemptRecord,
) -> Result<Result<(), StoreError>, StoreError> {
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
        // An attempt of an earlier round, finished after a redeliver call: kept in the
        // history, but it does not change the new round's state.
        let exists = conn
            .prepare_cached("SELECT 1 FROM notifications WHERE id = ?1")
            .map_err(db)?
            .exists([&a.notification_id])
            .map_err(db)?;
        if !exists {
            return Ok(Err(StoreError::Database(format!(
                "no notification {:?}",
                a.notification_id
            ))));
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
    Ok(Ok(()))
}
