//! Poll states (saved together with the notifications they cover) and the vendor
//! credentials the host keeps for an instance.

use tokio_postgres::Row;

use super::outbox::{insert_notifications, to_u32};
use super::{PgStore, pg};
use crate::{InstanceId, NewNotification, PollState, StoreError, StoredCredentials};

/// A `poll_state` row (all its columns, in table order), checked: the seen list parsed.
pub(super) fn poll_state_from_row(r: &Row) -> Result<PollState, StoreError> {
    let instance_id = InstanceId(r.try_get(0).map_err(pg)?);
    let resource: String = r.try_get(1).map_err(pg)?;
    let seen: String = r.try_get(3).map_err(pg)?;
    let seen = serde_json::from_str(&seen).map_err(|e| {
        StoreError::Corrupt(format!(
            "seen list of instance {instance_id} resource {resource:?}: {e}"
        ))
    })?;
    Ok(PollState {
        instance_id,
        last_success_ms: r.try_get(2).map_err(pg)?,
        seen,
        last_attempt_ms: r.try_get(4).map_err(pg)?,
        last_error: r.try_get(5).map_err(pg)?,
        failures: to_u32(r.try_get(6).map_err(pg)?, "failures")?,
        last_events: to_u32(r.try_get(7).map_err(pg)?, "last_events")?,
        not_before_ms: r.try_get(8).map_err(pg)?,
        resource,
    })
}

impl PgStore {
    /// Implements [`Store::poll_states`](crate::Store::poll_states): by resource name.
    pub(super) async fn poll_load(
        &self,
        instance_id: InstanceId,
    ) -> Result<Vec<PollState>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT instance_id, resource, last_success_ms, seen, last_attempt_ms,
                     last_error, failures, last_events, not_before_ms
                 FROM poll_state WHERE instance_id = $1 ORDER BY resource",
                &[&instance_id.0],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(poll_state_from_row)
            .collect()
    }

    /// Implements [`Store::save_poll`](crate::Store::save_poll): the notifications and the
    /// state in one transaction.
    pub(super) async fn poll_save(
        &self,
        state: PollState,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        let seen = serde_json::to_string(&state.seen)
            .map_err(|e| StoreError::Database(format!("cannot encode JSON: {e}")))?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let seqs = insert_notifications(&tx, &notifications).await?;
        tx.execute(
            "INSERT INTO poll_state (instance_id, resource, last_success_ms, seen,
                 last_attempt_ms, last_error, failures, last_events, not_before_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (instance_id, resource) DO UPDATE SET
                 last_success_ms = excluded.last_success_ms,
                 seen = excluded.seen,
                 last_attempt_ms = excluded.last_attempt_ms,
                 last_error = excluded.last_error,
                 failures = excluded.failures,
                 last_events = excluded.last_events,
                 not_before_ms = excluded.not_before_ms",
            &[
                &state.instance_id.0,
                &state.resource,
                &state.last_success_ms,
                &seen,
                &state.last_attempt_ms,
                &state.last_error,
                &i64::from(state.failures),
                &i64::from(state.last_events),
                &state.not_before_ms,
            ],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(seqs)
    }

    /// Implements [`Store::credentials`](crate::Store::credentials).
    pub(super) async fn credentials_load(
        &self,
        instance_id: InstanceId,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        let client = self.pool.get().await?;
        let Some(r) = client
            .query_opt(
                "SELECT access_token, refresh_token, expires_at_ms, obtained_ms, origin
                 FROM credentials WHERE instance_id = $1",
                &[&instance_id.0],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        Ok(Some(StoredCredentials {
            access_token: r.try_get(0).map_err(pg)?,
            refresh_token: r.try_get(1).map_err(pg)?,
            expires_at_ms: r.try_get(2).map_err(pg)?,
            obtained_ms: r.try_get(3).map_err(pg)?,
            origin: r.try_get(4).map_err(pg)?,
        }))
    }

    /// Implements [`Store::save_credentials`](crate::Store::save_credentials): replaces
    /// them, or with `None` removes them.
    pub(super) async fn credentials_save(
        &self,
        instance_id: InstanceId,
        credentials: Option<StoredCredentials>,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        match &credentials {
            Some(c) => client
                .execute(
                    "INSERT INTO credentials (instance_id, access_token, refresh_token,
                         expires_at_ms, obtained_ms, origin)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (instance_id) DO UPDATE SET
                         access_token = excluded.access_token,
                         refresh_token = excluded.refresh_token,
                         expires_at_ms = excluded.expires_at_ms,
                         obtained_ms = excluded.obtained_ms,
                         origin = excluded.origin",
                    &[
                        &instance_id.0,
                        &c.access_token,
                        &c.refresh_token,
                        &c.expires_at_ms,
                        &c.obtained_ms,
                        &c.origin,
                    ],
                )
                .await
                .map_err(pg)?,
            None => client
                .execute(
                    "DELETE FROM credentials WHERE instance_id = $1",
                    &[&instance_id.0],
                )
                .await
                .map_err(pg)?,
        };
        Ok(())
    }
}
