//! Webhook intake: a webhook's notifications stored in one transaction, its body once when
//! several share it, and each instance notified of one webhook (one digest) at most once
//! within the dedupe window, across every host on the database.

use tokio_postgres::Transaction;

use super::{PgStore, pg};
use crate::webhook::{Prepared, prepare_webhook};
use crate::{
    InstanceId, Millis, NewNotification, NotificationId, StoreError, WebhookIntake, WebhookStored,
};

/// The advisory lock key of a digest: its first 8 bytes. Two webhooks whose digests share
/// them only wait for each other; the check itself compares the whole digest.
fn lock_key(digest: &[u8; 32]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The instances already notified of the webhook of `digest` since `since`, in the order
/// they first appear in `notifications`, each with the ids of those notifications (oldest
/// first). A recorded run whose notifications were all pruned does not count.
async fn earlier_notifications(
    tx: &Transaction<'_>,
    digest: &[u8; 32],
    since: Millis,
    notifications: &[NewNotification],
) -> Result<Vec<(InstanceId, Vec<NotificationId>)>, StoreError> {
    let runs: Vec<(InstanceId, i64, i64)> = tx
        .query(
            "SELECT instance_id, seq, last_seq FROM webhook_intake
             WHERE digest = $1 AND created_ms >= $2 ORDER BY seq",
            &[&&digest[..], &since],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| {
            Ok((
                InstanceId(r.try_get(0).map_err(pg)?),
                r.try_get(1).map_err(pg)?,
                r.try_get(2).map_err(pg)?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    let mut duplicates: Vec<(InstanceId, Vec<NotificationId>)> = Vec::new();
    if runs.is_empty() {
        return Ok(duplicates);
    }
    let ids = tx
        .prepare(
            "SELECT id FROM notifications WHERE seq BETWEEN $1 AND $2 AND instance_id = $3
             ORDER BY seq",
        )
        .await
        .map_err(pg)?;
    for n in notifications {
        if duplicates.iter().any(|(i, _)| *i == n.instance_id) {
            continue;
        }
        let mut earlier = Vec::new();
        for (_, first, last) in runs.iter().filter(|(i, _, _)| *i == n.instance_id) {
            for r in tx
                .query(&ids, &[first, last, &n.instance_id.0])
                .await
                .map_err(pg)?
            {
                earlier.push(NotificationId(r.try_get(0).map_err(pg)?));
            }
        }
        if !earlier.is_empty() {
            duplicates.push((n.instance_id, earlier));
        }
    }
    Ok(duplicates)
}

/// The work of [`Store::enqueue_webhook`](crate::Store::enqueue_webhook) in `tx`, as the
/// SQLite backend's `insert_webhook` does it: with the dedupe window on, the digest's
/// advisory lock is held from the check to the commit, so the check and the inserts are
/// one step across hosts.
async fn insert_webhook(
    tx: &Transaction<'_>,
    intake: &WebhookIntake,
    notifications: &[NewNotification],
    prepared: &[Prepared],
) -> Result<WebhookStored, StoreError> {
    let duplicates = match intake.dedupe_since {
        Some(since) => {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&lock_key(&intake.digest)],
            )
            .await
            .map_err(pg)?;
            earlier_notifications(tx, &intake.digest, since, notifications).await?
        }
        None => Vec::new(),
    };
    let is_duplicate = |n: &NewNotification| duplicates.iter().any(|(i, _)| *i == n.instance_id);
    let stored = notifications.iter().filter(|n| !is_duplicate(n)).count();
    let insert = tx
        .prepare(
            "INSERT INTO notifications (id, instance_id, endpoint, event_count,
                 created_ms, state, delivery, attempts, next_attempt_ms, body)
             VALUES ($1, $2, $3, $4, $5, 'pending', 1, 0, $5, $6) RETURNING seq",
        )
        .await
        .map_err(pg)?;
    let link = tx
        .prepare("INSERT INTO notification_bodies (seq, body_id, raw_at) VALUES ($1, $2, $3)")
        .await
        .map_err(pg)?;
    let record = tx
        .prepare(
            "INSERT INTO webhook_intake (seq, last_seq, instance_id, created_ms, digest)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(pg)?;
    let mut seqs = Vec::with_capacity(notifications.len());
    // (first seq, last seq) of the stored ones that carry the shared body.
    let mut shared: Option<(i64, i64)> = None;
    // Runs of consecutive seqs of one instance: instance, first seq, last seq, created_ms.
    // Another host's insert between two of ours only splits a run.
    let mut runs: Vec<(InstanceId, i64, i64, Millis)> = Vec::new();
    for (n, (at, stripped)) in notifications.iter().zip(prepared) {
        if is_duplicate(n) {
            seqs.push(None);
            continue;
        }
        // With several stored, each carries the shared body (stored once) cut out.
        let (body, shares) = match stripped {
            Some(stripped) if stored > 1 => (stripped, true),
            _ => (&n.body, false),
        };
        let seq: i64 = tx
            .query_one(
                &insert,
                &[
                    &n.id.as_str(),
                    &n.instance_id.0,
                    &n.endpoint,
                    &i64::from(n.event_count),
                    &n.created_ms,
                    body,
                ],
            )
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        if shares {
            let first = shared.map_or(seq, |(first, _)| first);
            let at = i64::try_from(*at)
                .map_err(|_| StoreError::Database(format!("raw_at {at} out of range")))?;
            tx.execute(&link, &[&seq, &first, &at]).await.map_err(pg)?;
            shared = Some((first, seq));
        }
        match runs.last_mut() {
            Some((instance, _, last, _)) if *instance == n.instance_id && *last + 1 == seq => {
                *last = seq;
            }
            _ => runs.push((n.instance_id, seq, seq, n.created_ms)),
        }
        seqs.push(Some(seq));
    }
    if intake.dedupe_since.is_some() {
        for (instance, first, last, created) in &runs {
            tx.execute(
                &record,
                &[first, last, &instance.0, created, &&intake.digest[..]],
            )
            .await
            .map_err(pg)?;
        }
    }
    if let Some((first, last)) = shared {
        tx.execute(
            "INSERT INTO webhook_bodies (id, last_seq, body) VALUES ($1, $2, $3)",
            &[&first, &last, &intake.raw],
        )
        .await
        .map_err(pg)?;
    }
    Ok(WebhookStored { seqs, duplicates })
}

impl PgStore {
    /// Implements [`Store::enqueue_webhook`](crate::Store::enqueue_webhook).
    pub(super) async fn intake_enqueue_webhook(
        &self,
        intake: WebhookIntake,
        notifications: Vec<NewNotification>,
    ) -> Result<WebhookStored, StoreError> {
        if notifications.is_empty() {
            return Ok(WebhookStored::default());
        }
        let prepared = prepare_webhook(&intake.raw, &notifications)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let stored = insert_webhook(&tx, &intake, &notifications, &prepared).await?;
        tx.commit().await.map_err(pg)?;
        Ok(stored)
    }
}
