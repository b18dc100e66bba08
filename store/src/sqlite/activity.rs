//! What the console reads of the outbox: filtered listings across instances, the bulk
//! redelivery of dead letters, per-minute attempt statistics and each instance's activity.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::SqliteStore;
use super::outbox::query_notifications;
use super::rows::{NOTIFICATION_COLUMNS, RawPollState, db};
use crate::{
    Activity, InstanceId, Millis, MinuteStats, Notification, NotificationFilter, PollState,
    Redelivered, StoreError,
};

/// The condition on `instance_id` for `ids` and the value to bind to `?1`: a plain
/// equality for one instance (the index on `(instance_id, seq)` then serves the order),
/// else membership of a JSON array (any number of ids, one parameter).
fn instances_sql(ids: &[InstanceId]) -> (&'static str, rusqlite::types::Value) {
    match ids {
        [one] => ("instance_id = ?1", one.0.into()),
        many => (
            "instance_id IN (SELECT value FROM json_each(?1))",
            serde_json::to_string(&many.iter().map(|i| i.0).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into())
                .into(),
        ),
    }
}

/// A count read back as a `u64`.
fn count(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
}

/// [`crate::Store::redeliver_dead`]'s work, in the writer's transaction.
fn redeliver_dead(
    conn: &Connection,
    instance_id: InstanceId,
    since: Millis,
    limit: u32,
    now: Millis,
) -> Result<Redelivered, StoreError> {
    let sql = format!(
        "UPDATE notifications SET state = 'pending', delivery = delivery + 1,
             attempts = 0, next_attempt_ms = ?4
         WHERE seq IN (SELECT seq FROM notifications
                       WHERE state = 'dead' AND instance_id = ?1 AND created_ms >= ?2
                       ORDER BY seq LIMIT ?3)
         RETURNING {NOTIFICATION_COLUMNS}"
    );
    let mut notifications: Vec<Notification> =
        query_notifications(conn, &sql, params![instance_id, since, limit, now])?;
    notifications.sort_unstable_by_key(|n| n.seq);
    let more = conn
        .prepare_cached(
            "SELECT 1 FROM notifications
             WHERE state = 'dead' AND instance_id = ?1 AND created_ms >= ?2",
        )
        .map_err(db)?
        .exists(params![instance_id, since])
        .map_err(db)?;
    Ok(Redelivered {
        notifications,
        more,
    })
}

impl SqliteStore {
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
        let (which, ids) = instances_sql(instances);
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications
             WHERE {which} AND {} AND created_ms >= ?2 AND created_ms < ?3
             ORDER BY seq DESC LIMIT ?4 OFFSET ?5",
            filter.statuses_sql()
        );
        let since = filter.since.unwrap_or(Millis::MIN);
        let until = filter.until.unwrap_or(Millis::MAX);
        self.read(move |conn| {
            query_notifications(conn, &sql, params![ids, since, until, limit, offset])
        })
        .await
    }

    /// Implements [`Store::redeliver_dead`](crate::Store::redeliver_dead).
    pub(super) async fn activity_redeliver_dead(
        &self,
        instance_id: InstanceId,
        since: Option<Millis>,
        limit: u32,
        now: Millis,
    ) -> Result<Redelivered, StoreError> {
        let since = since.unwrap_or(Millis::MIN);
        self.write(move |conn| redeliver_dead(conn, instance_id, since, limit, now))
            .await
    }

    /// Implements [`Store::attempt_stats`](crate::Store::attempt_stats): grouped in SQL,
    /// through the index of attempts by time.
    pub(super) async fn activity_attempt_stats(
        &self,
        instance_id: InstanceId,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<MinuteStats>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT (a.at_ms / 60000) * 60000 AS minute, COUNT(*),
                         SUM(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END),
                         AVG(a.latency_us), MAX(a.latency_us)
                     FROM attempts a JOIN notifications n ON n.id = a.notification_id
                     WHERE n.instance_id = ?1 AND a.at_ms >= ?2 AND a.at_ms < ?3
                     GROUP BY minute ORDER BY minute",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![instance_id, from, until], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, f64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (minute_ms, attempts, delivered, avg, max) = row.map_err(db)?;
                out.push(MinuteStats {
                    minute_ms,
                    attempts: count(attempts)?,
                    delivered: count(delivered)?,
                    latency_us_avg: avg,
                    latency_us_max: max,
                });
            }
            Ok(out)
        })
        .await
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
        let json = serde_json::to_string(&instances.iter().map(|i| i.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Database(e.to_string()))?;
        self.read(move |conn| {
            let mut out: HashMap<InstanceId, Activity> = HashMap::new();
            let mut newest = conn
                .prepare_cached(
                    "SELECT j.value, (SELECT n.created_ms FROM notifications n
                                      WHERE n.instance_id = j.value
                                      ORDER BY n.seq DESC LIMIT 1)
                     FROM json_each(?1) j",
                )
                .map_err(db)?;
            let rows = newest
                .query_map([&json], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                })
                .map_err(db)?;
            for row in rows {
                let (id, last) = row.map_err(db)?;
                if let Some(last) = last {
                    out.entry(InstanceId(id)).or_default().last_created_ms = Some(last);
                }
            }
            let mut counts = conn
                .prepare_cached(
                    "SELECT instance_id, state, COUNT(*) FROM notifications
                     WHERE state IN ('pending', 'dead')
                       AND instance_id IN (SELECT value FROM json_each(?1))
                     GROUP BY instance_id, state",
                )
                .map_err(db)?;
            let rows = counts
                .query_map([&json], |r| {
                    Ok((
                        r.get::<_, InstanceId>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(db)?;
            for row in rows {
                let (id, state, n) = row.map_err(db)?;
                let entry = out.entry(id).or_default();
                match state.as_str() {
                    "pending" => entry.backlog = count(n)?,
                    _ => entry.dead = count(n)?,
                }
            }
            Ok(out)
        })
        .await
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
        let (which, ids) = instances_sql(instances);
        let sql = format!(
            "SELECT instance_id, resource, last_success_ms, '[]', last_attempt_ms,
                 last_error, failures, last_events, not_before_ms
             FROM poll_state WHERE {which} ORDER BY instance_id, resource"
        );
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let rows = stmt.query_map([ids], RawPollState::from_row).map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(db)?.check()?);
            }
            Ok(out)
        })
        .await
    }
}
