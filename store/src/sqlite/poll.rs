//! Poll states: where the host's polling of each resource of an instance stands. Saving
//! one stores the notifications it covers in the same transaction.

use rusqlite::params;

use super::SqliteStore;
use super::outbox::insert_notifications;
use super::rows::{RawPollState, db, json_err};
use crate::{InstanceId, NewNotification, PollState, StoreError};

impl SqliteStore {
    /// Implements [`Store::poll_states`](crate::Store::poll_states).
    pub(super) async fn poll_load(
        &self,
        instance_id: InstanceId,
    ) -> Result<Vec<PollState>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT instance_id, resource, last_success_ms, seen, last_attempt_ms,
                         last_error, failures, last_events, not_before_ms
                     FROM poll_state WHERE instance_id = ?1 ORDER BY resource",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([instance_id], RawPollState::from_row)
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(db)?.check()?);
            }
            Ok(out)
        })
        .await
    }

    /// Implements [`Store::save_poll`](crate::Store::save_poll).
    pub(super) async fn poll_save(
        &self,
        state: PollState,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        // Encoded here, not on the writer thread: the list can be long.
        let seen = serde_json::to_string(&state.seen).map_err(json_err)?;
        self.write(move |conn| {
            let seqs = insert_notifications(conn, &notifications)?;
            conn.prepare_cached(
                "INSERT INTO poll_state (instance_id, resource, last_success_ms, seen,
                     last_attempt_ms, last_error, failures, last_events, not_before_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (instance_id, resource) DO UPDATE SET
                     last_success_ms = excluded.last_success_ms,
                     seen = excluded.seen,
                     last_attempt_ms = excluded.last_attempt_ms,
                     last_error = excluded.last_error,
                     failures = excluded.failures,
                     last_events = excluded.last_events,
                     not_before_ms = excluded.not_before_ms",
            )
            .map_err(db)?
            .execute(params![
                state.instance_id,
                state.resource,
                state.last_success_ms,
                seen,
                state.last_attempt_ms,
                state.last_error,
                state.failures,
                state.last_events,
                state.not_before_ms,
            ])
            .map_err(db)?;
            Ok(seqs)
        })
        .await
    }
}
