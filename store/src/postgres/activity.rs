//! What the console reads of the outbox: filtered listings across instances, the bulk
//! redelivery of dead letters, per-minute attempt statistics and each instance's activity.

use std::collections::HashMap;

use super::outbox::{NOTIFICATION_COLUMNS, notification_from_row};
use super::poll::poll_state_from_row;
use super::{PgStore, pg};
use crate::{
    Activity, InstanceId, Millis, MinuteStats, Notification, NotificationFilter, PollState,
    Redelivered, StoreError,
};

/// A count read back as a `u64`.
fn count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
}

/// The ids as the array parameter `= ANY($n)` takes.
fn id_array(instances: &[InstanceId]) -> Vec<i64> {
    instances.iter().map(|i| i.0).collect()
}

impl PgStore {
    /// Implements [`Store::find_notifications`](crate::Store::find_notifications).
    pub(super) async fn activity_find(
        &self,
        instances: &[InstanceId],
        filter: &NotificationFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        if instances.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE instance_id = ANY($1) AND {} AND created_ms >= $2 AND created_ms < $3
             ORDER BY seq DESC LIMIT $4 OFFSET $5",
            filter.statuses_sql()
        );
        let ids = id_array(instances);
        let since = filter.since.unwrap_or(Millis::MIN);
        let until = filter.until.unwrap_or(Millis::MAX);
        client
            .query(
                &sql,
                &[&ids, &since, &until, &i64::from(limit), &i64::from(offset)],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(notification_from_row)
            .collect()
    }

    /// Implements [`Store::redeliver_dead`](crate::Store::redeliver_dead): the rows locked
    /// and changed in one statement, and what remains counted, in one transaction.
    pub(super) async fn activity_redeliver_dead(
        &self,
        instance_id: InstanceId,
        since: Option<Millis>,
        limit: u32,
        now: Millis,
    ) -> Result<Redelivered, StoreError> {
        let since = since.unwrap_or(Millis::MIN);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let sql = format!(
            "UPDATE notifications SET state = 'pending', delivery = delivery + 1,
                 attempts = 0, next_attempt_ms = $4
             WHERE seq IN (SELECT seq FROM notifications
                           WHERE state = 'dead' AND instance_id = $1 AND created_ms >= $2
                           ORDER BY seq LIMIT $3 FOR UPDATE)
             RETURNING {NOTIFICATION_COLUMNS}"
        );
        let mut notifications = tx
            .query(&sql, &[&instance_id.0, &since, &i64::from(limit), &now])
            .await
            .map_err(pg)?
            .iter()
            .map(notification_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        notifications.sort_unstable_by_key(|n| n.seq);
        let more: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM notifications
                                WHERE state = 'dead' AND instance_id = $1 AND created_ms >= $2)",
                &[&instance_id.0, &since],
            )
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(Redelivered {
            notifications,
            more,
        })
    }

    /// Implements [`Store::attempt_stats`](crate::Store::attempt_stats): grouped in SQL,
    /// through the index of attempts by time.
    pub(super) async fn activity_attempt_stats(
        &self,
        instance_id: InstanceId,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<MinuteStats>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT (a.at_ms / 60000) * 60000 AS minute, COUNT(*),
                     SUM(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END)::BIGINT,
                     AVG(a.latency_us)::FLOAT8, MAX(a.latency_us)
                 FROM attempts a JOIN notifications n ON n.id = a.notification_id
                 WHERE n.instance_id = $1 AND a.at_ms >= $2 AND a.at_ms < $3
                 GROUP BY minute ORDER BY minute",
                &[&instance_id.0, &from, &until],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                Ok(MinuteStats {
                    minute_ms: r.try_get(0).map_err(pg)?,
                    attempts: count(r.try_get(1).map_err(pg)?)?,
                    delivered: count(r.try_get(2).map_err(pg)?)?,
                    latency_us_avg: r.try_get(3).map_err(pg)?,
                    latency_us_max: r.try_get(4).map_err(pg)?,
                })
            })
            .collect()
    }

    /// Implements [`Store::activity_of`](crate::Store::activity_of): the newest
    /// notification of each instance through the index on `(instance_id, seq)`, then the
    /// pending and dead ones counted in one grouped scan.
    pub(super) async fn activity_of(
        &self,
        instances: &[InstanceId],
    ) -> Result<HashMap<InstanceId, Activity>, StoreError> {
        if instances.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = id_array(instances);
        let client = self.pool.get().await?;
        let mut out: HashMap<InstanceId, Activity> = HashMap::new();
        let newest = client
            .query(
                "SELECT i.id, (SELECT n.created_ms FROM notifications n
                               WHERE n.instance_id = i.id ORDER BY n.seq DESC LIMIT 1)
                 FROM unnest($1::BIGINT[]) AS i (id)",
                &[&ids],
            )
            .await
            .map_err(pg)?;
        for r in &newest {
            let id: i64 = r.try_get(0).map_err(pg)?;
            let last: Option<i64> = r.try_get(1).map_err(pg)?;
            if let Some(last) = last {
                out.entry(InstanceId(id)).or_default().last_created_ms = Some(last);
            }
        }
        let counts = client
            .query(
                "SELECT instance_id, state, COUNT(*) FROM notifications
                 WHERE state IN ('pending', 'dead') AND instance_id = ANY($1)
                 GROUP BY instance_id, state",
                &[&ids],
            )
            .await
            .map_err(pg)?;
        for r in &counts {
            let id: i64 = r.try_get(0).map_err(pg)?;
            let state: String = r.try_get(1).map_err(pg)?;
            let n: i64 = r.try_get(2).map_err(pg)?;
            let entry = out.entry(InstanceId(id)).or_default();
            match state.as_str() {
                "pending" => entry.backlog = count(n)?,
                _ => entry.dead = count(n)?,
            }
        }
        Ok(out)
    }

    /// Implements [`Store::poll_health_of`](crate::Store::poll_health_of): the seen lists
    /// are not read.
    pub(super) async fn activity_poll_health(
        &self,
        instances: &[InstanceId],
    ) -> Result<Vec<PollState>, StoreError> {
        if instances.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT instance_id, resource, last_success_ms, '[]', last_attempt_ms,
                     last_error, failures, last_events, not_before_ms
                 FROM poll_state WHERE instance_id = ANY($1) ORDER BY instance_id, resource",
                &[&id_array(instances)],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(poll_state_from_row)
            .collect()
    }
}
