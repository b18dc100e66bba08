//! The outbox: notifications and their delivery attempts.

use tokio_postgres::{Row, Transaction};

use super::batch::{INSERT_NOTIFICATIONS, Op, Outcome};
use super::{PgStore, pg};
use crate::{
    Attempt, AttemptRecord, InstanceId, Millis, NewNotification, Notification, NotificationId,
    NotificationState, StoreError,
};

/// The notification columns [`notification_from_row`] reads, in its order.
pub(super) const NOTIFICATION_COLUMNS: &str = "seq, id, instance_id, endpoint, event_count, \
     created_ms, state, delivery, attempts, next_attempt_ms, delivered_ms";

/// `v` as a `u32`, or [`StoreError::Corrupt`] naming `what`.
pub(super) fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

/// A notification row of [`NOTIFICATION_COLUMNS`], checked.
pub(super) fn notification_from_row(r: &Row) -> Result<Notification, StoreError> {
    let state: String = r.try_get(6).map_err(pg)?;
    Ok(Notification {
        seq: r.try_get(0).map_err(pg)?,
        id: NotificationId(r.try_get(1).map_err(pg)?),
        instance_id: InstanceId(r.try_get(2).map_err(pg)?),
        endpoint: r.try_get(3).map_err(pg)?,
        event_count: to_u32(r.try_get(4).map_err(pg)?, "event_count")?,
        created_ms: r.try_get(5).map_err(pg)?,
        state: NotificationState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("notification state {state:?}")))?,
        delivery: to_u32(r.try_get(7).map_err(pg)?, "delivery")?,
        attempts: to_u32(r.try_get(8).map_err(pg)?, "attempts")?,
        next_attempt_ms: r.try_get(9).map_err(pg)?,
        delivered_ms: r.try_get(10).map_err(pg)?,
    })
}

/// Inserts `notifications` as `Pending`, in order, each with its whole body, in `tx`, in
/// one statement; returns their seqs.
pub(super) async fn insert_notifications(
    tx: &Transaction<'_>,
    notifications: &[NewNotification],
) -> Result<Vec<i64>, StoreError> {
    if notifications.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = notifications.iter().map(|n| n.id.as_str()).collect();
    let instances: Vec<i64> = notifications.iter().map(|n| n.instance_id.0).collect();
    let endpoints: Vec<&str> = notifications.iter().map(|n| n.endpoint.as_str()).collect();
    let events: Vec<i64> = notifications
        .iter()
        .map(|n| i64::from(n.event_count))
        .collect();
    let created: Vec<i64> = notifications.iter().map(|n| n.created_ms).collect();
    let bodies: Vec<&[u8]> = notifications.iter().map(|n| n.body.as_slice()).collect();
    let returned = tx
        .query(
            INSERT_NOTIFICATIONS,
            &[&ids, &instances, &endpoints, &events, &created, &bodies],
        )
        .await
        .map_err(pg)?;
    let by_id: std::collections::HashMap<String, i64> = returned
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(pg)?, r.try_get(1).map_err(pg)?)))
        .collect::<Result<_, StoreError>>()?;
    ids.iter()
        .map(|id| {
            by_id
                .get(*id)
                .copied()
                .ok_or_else(|| StoreError::Database(format!("no seq returned for {id}")))
        })
        .collect()
}

/// The whole body of a notification from the row's columns `first` (its own body),
/// `first + 1` (where a shared webhook body goes in it, if it has one) and `first + 2`
/// (that shared body): the two spliced together.
pub(super) fn whole_body(row: &Row, first: usize) -> Result<Vec<u8>, StoreError> {
    let body: Vec<u8> = row.try_get(first).map_err(pg)?;
    let at: Option<i64> = row.try_get(first + 1).map_err(pg)?;
    let raw: Option<Vec<u8>> = row.try_get(first + 2).map_err(pg)?;
    let (Some(at), Some(raw)) = (at, raw) else {
        return Ok(body);
    };
    let at = usize::try_from(at)
        .ok()
        .filter(|&at| at <= body.len())
        .ok_or_else(|| StoreError::Corrupt(format!("raw_at {at}")))?;
    let mut whole = Vec::with_capacity(body.len() + raw.len());
    whole.extend_from_slice(&body[..at]);
    whole.extend_from_slice(&raw);
    whole.extend_from_slice(&body[at..]);
    Ok(whole)
}

impl PgStore {
    /// Implements [`Store::enqueue`](crate::Store::enqueue): group-committed by the writer,
    /// one multi-row insert per batch.
    pub(super) async fn outbox_enqueue(
        &self,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        match self.writer.submit(Op::Enqueue(notifications)).await? {
            Outcome::Seqs(seqs) => Ok(seqs),
            other => Err(StoreError::Database(format!("enqueue answered {other:?}"))),
        }
    }

    /// Implements [`Store::pending`](crate::Store::pending).
    pub(super) async fn outbox_pending(&self) -> Result<Vec<Notification>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE state = 'pending' ORDER BY seq"
        );
        client
            .query(&sql, &[])
            .await
            .map_err(pg)?
            .iter()
            .map(notification_from_row)
            .collect()
    }

    /// Implements [`Store::get_notification`](crate::Store::get_notification).
    pub(super) async fn outbox_get(&self, id: &str) -> Result<Option<Notification>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1");
        client
            .query_opt(&sql, &[&id])
            .await
            .map_err(pg)?
            .as_ref()
            .map(notification_from_row)
            .transpose()
    }

    /// Implements [`Store::body`](crate::Store::body), splicing a shared webhook body back
    /// in at its offset (`notification_bodies`, written by `enqueue_webhook` once it is
    /// implemented).
    pub(super) async fn outbox_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut client = self.pool.get().await?;
        let statement = client
            .statement(
                "SELECT n.body, r.raw_at, b.body FROM notifications n
                 LEFT JOIN notification_bodies r ON r.seq = n.seq
                 LEFT JOIN webhook_bodies b ON b.id = r.body_id
                 WHERE n.id = $1",
            )
            .await?;
        let Some(row) = client.query_opt(&statement, &[&id]).await.map_err(pg)? else {
            return Ok(None);
        };
        whole_body(&row, 0).map(Some)
    }

    /// Implements [`Store::record_attempt`](crate::Store::record_attempt): group-committed
    /// by the writer.
    pub(super) async fn outbox_record_attempt(
        &self,
        record: AttemptRecord,
    ) -> Result<(), StoreError> {
        match self.writer.submit(Op::Attempt(record)).await? {
            Outcome::Recorded => Ok(()),
            other => Err(StoreError::Database(format!(
                "record_attempt answered {other:?}"
            ))),
        }
    }

    /// Implements [`Store::attempts`](crate::Store::attempts): oldest first.
    pub(super) async fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT notification_id, delivery, attempt, at_ms, status_code, latency_us, error
                 FROM attempts WHERE notification_id = $1 ORDER BY id",
                &[&id],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let status: Option<i64> = r.try_get(4).map_err(pg)?;
                let status_code = status
                    .map(|s| {
                        u16::try_from(s)
                            .map_err(|_| StoreError::Corrupt(format!("status code {s}")))
                    })
                    .transpose()?;
                Ok(Attempt {
                    notification_id: NotificationId(r.try_get(0).map_err(pg)?),
                    delivery: to_u32(r.try_get(1).map_err(pg)?, "delivery")?,
                    attempt: to_u32(r.try_get(2).map_err(pg)?, "attempt")?,
                    at_ms: r.try_get(3).map_err(pg)?,
                    status_code,
                    latency_us: r.try_get(5).map_err(pg)?,
                    error: r.try_get(6).map_err(pg)?,
                })
            })
            .collect()
    }

    /// Implements [`Store::redeliver`](crate::Store::redeliver): one statement, returning
    /// the row after it.
    pub(super) async fn outbox_redeliver(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<Notification>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE notifications SET state = 'pending', delivery = delivery + 1,
                 attempts = 0, next_attempt_ms = $2
             WHERE id = $1 RETURNING {NOTIFICATION_COLUMNS}"
        );
        client
            .query_opt(&sql, &[&id, &now])
            .await
            .map_err(pg)?
            .as_ref()
            .map(notification_from_row)
            .transpose()
    }

    /// Implements [`Store::count_by_state`](crate::Store::count_by_state): only the states
    /// that have notifications.
    pub(super) async fn outbox_count_by_state(
        &self,
    ) -> Result<Vec<(NotificationState, u64)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT state, COUNT(*) FROM notifications GROUP BY state",
                &[],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get(0).map_err(pg)?;
                let n: i64 = r.try_get(1).map_err(pg)?;
                let state = NotificationState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("notification state {state:?}")))?;
                let n = u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))?;
                Ok((state, n))
            })
            .collect()
    }

    /// Implements [`Store::prune`](crate::Store::prune), in one transaction.
    ///
    /// The candidates are locked (`FOR UPDATE`): a redeliver or an attempt recorded at the
    /// same time either waits and then finds the row gone, or changed it first and the
    /// row, re-checked, is no longer a candidate. Unlike the SQLite backend, which stops
    /// each state's scan at the first row accepted at or after `before`, the test here is
    /// per row: with a clock stepped back the two may differ, both within the contract.
    pub(super) async fn outbox_prune(&self, before: Millis, limit: u32) -> Result<u64, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let doomed = tx
            .query(
                "SELECT n.seq, n.id FROM notifications n
                 WHERE n.state IN ('delivered', 'dead', 'dropped')
                   AND n.created_ms < $1
                   AND (n.delivered_ms IS NULL OR n.delivered_ms < $1)
                   AND NOT EXISTS (SELECT 1 FROM attempts a
                                   WHERE a.notification_id = n.id AND a.at_ms >= $1)
                 ORDER BY n.seq LIMIT $2
                 FOR UPDATE OF n",
                &[&before, &i64::from(limit)],
            )
            .await
            .map_err(pg)?;
        if doomed.is_empty() {
            return Ok(0);
        }
        let mut seqs: Vec<i64> = Vec::with_capacity(doomed.len());
        let mut ids: Vec<String> = Vec::with_capacity(doomed.len());
        for r in &doomed {
            seqs.push(r.try_get(0).map_err(pg)?);
            ids.push(r.try_get(1).map_err(pg)?);
        }
        tx.execute(
            "DELETE FROM attempts WHERE notification_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg)?;
        let bodies: Vec<i64> = tx
            .query(
                "DELETE FROM notification_bodies WHERE seq = ANY($1) RETURNING body_id",
                &[&seqs],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.try_get(0).map_err(pg))
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM notifications WHERE seq = ANY($1)", &[&seqs])
            .await
            .map_err(pg)?;
        // A shared body, and an intake record, go with the last notification of theirs.
        if !bodies.is_empty() {
            tx.execute(
                "DELETE FROM webhook_bodies b WHERE b.id = ANY($1) AND NOT EXISTS
                 (SELECT 1 FROM notification_bodies r
                  WHERE r.seq BETWEEN b.id AND b.last_seq AND r.body_id = b.id)",
                &[&bodies],
            )
            .await
            .map_err(pg)?;
        }
        tx.execute(
            // The run a notification belongs to: the last one that starts at or before it
            // (runs do not overlap), if it ends at or after it.
            "DELETE FROM webhook_intake w
             WHERE w.seq IN (SELECT r.seq FROM UNNEST($1::BIGINT[]) AS d (seq)
                             CROSS JOIN LATERAL (SELECT i.seq, i.last_seq FROM webhook_intake i
                                                 WHERE i.seq <= d.seq
                                                 ORDER BY i.seq DESC LIMIT 1) AS r
                             WHERE r.last_seq >= d.seq)
               AND NOT EXISTS (SELECT 1 FROM notifications n
                               WHERE n.seq BETWEEN w.seq AND w.last_seq)",
            &[&seqs],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(seqs.len() as u64)
    }
}
