//! Row mapping: the column lists, the raw rows as read and their checked conversion to the
//! crate's types, and the mapping of errors to [`StoreError`].

use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::{
    ConfigEntry, Instance, InstanceId, Millis, Notification, NotificationId, NotificationState,
    OrgId, PollState, StoreError,
};

/// The ids are stored as the values they wrap: integers, and text for notification ids.
macro_rules! sql_as_inner {
    ($($t:ident),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }
        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                FromSql::column_result(value).map($t)
            }
        }
    )*};
}
sql_as_inner!(OrgId, InstanceId, NotificationId);

/// The notification columns [`RawNotification::from_row`] reads, in its order.
pub(super) const NOTIFICATION_COLUMNS: &str = "seq, id, instance_id, endpoint, event_count, \
     created_ms, state, delivery, attempts, next_attempt_ms, delivered_ms";

/// The instance columns [`RawInstance::from_row`] reads, in its order.
pub(super) const INSTANCE_COLUMNS: &str = "id, org_id, element_key, name, token_sha256, tags, \
     provider_data, disabled, created_ms, updated_ms";

/// A database error as a [`StoreError::Database`].
pub(super) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// `v` as a `u32`, or [`StoreError::Corrupt`] naming `what`.
pub(super) fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

/// A notification row as stored, before its values are checked.
pub(super) struct RawNotification {
    seq: i64,
    id: NotificationId,
    instance_id: InstanceId,
    endpoint: String,
    event_count: i64,
    created_ms: Millis,
    state: String,
    delivery: i64,
    attempts: i64,
    next_attempt_ms: Millis,
    delivered_ms: Option<Millis>,
}

impl RawNotification {
    /// Reads the columns of a row, in the order of its column list.
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawNotification {
            seq: r.get(0)?,
            id: r.get(1)?,
            instance_id: r.get(2)?,
            endpoint: r.get(3)?,
            event_count: r.get(4)?,
            created_ms: r.get(5)?,
            state: r.get(6)?,
            delivery: r.get(7)?,
            attempts: r.get(8)?,
            next_attempt_ms: r.get(9)?,
            delivered_ms: r.get(10)?,
        })
    }

    /// The notification, once its state and counters are checked.
    pub(super) fn check(self) -> Result<Notification, StoreError> {
        Ok(Notification {
            state: NotificationState::parse(&self.state).ok_or_else(|| {
                StoreError::Corrupt(format!("notification state {:?}", self.state))
            })?,
            event_count: to_u32(self.event_count, "event_count")?,
            delivery: to_u32(self.delivery, "delivery")?,
            attempts: to_u32(self.attempts, "attempts")?,
            seq: self.seq,
            id: self.id,
            instance_id: self.instance_id,
            endpoint: self.endpoint,
            created_ms: self.created_ms,
            next_attempt_ms: self.next_attempt_ms,
            delivered_ms: self.delivered_ms,
        })
    }
}

/// An instance row as stored, before its JSON columns are parsed.
pub(super) struct RawInstance {
    /// The instance id.
    pub(super) id: InstanceId,
    org_id: OrgId,
    element_key: String,
    name: String,
    token_sha256: String,
    tags: String,
    provider_data: String,
    disabled: bool,
    created_ms: Millis,
    updated_ms: Millis,
}

impl RawInstance {
    /// Reads the columns of a row, in the order of its column list.
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawInstance {
            id: r.get(0)?,
            org_id: r.get(1)?,
            element_key: r.get(2)?,
            name: r.get(3)?,
            token_sha256: r.get(4)?,
            tags: r.get(5)?,
            provider_data: r.get(6)?,
            disabled: r.get(7)?,
            created_ms: r.get(8)?,
            updated_ms: r.get(9)?,
        })
    }

    /// The instance with its configuration `config`, once its JSON columns are parsed.
    pub(super) fn check(self, config: Vec<ConfigEntry>) -> Result<Instance, StoreError> {
        let tags = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of instance {}: {e}", self.id)))?;
        let provider_data = serde_json::from_str(&self.provider_data).map_err(|e| {
            StoreError::Corrupt(format!("providerData of instance {}: {e}", self.id))
        })?;
        Ok(Instance {
            id: self.id,
            org_id: self.org_id,
            element_key: self.element_key,
            name: self.name,
            token_sha256: self.token_sha256,
            tags,
            config,
            provider_data,
            disabled: self.disabled,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        })
    }
}

/// A poll state row as stored, before its values are checked.
pub(super) struct RawPollState {
    instance_id: InstanceId,
    resource: String,
    last_success_ms: Option<Millis>,
    seen: String,
    last_attempt_ms: Option<Millis>,
    last_error: Option<String>,
    failures: i64,
    last_events: i64,
    not_before_ms: Option<Millis>,
}

impl RawPollState {
    /// Reads the columns of a row, in the order of its column list.
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawPollState {
            instance_id: r.get(0)?,
            resource: r.get(1)?,
            last_success_ms: r.get(2)?,
            seen: r.get(3)?,
            last_attempt_ms: r.get(4)?,
            last_error: r.get(5)?,
            failures: r.get(6)?,
            last_events: r.get(7)?,
            not_before_ms: r.get(8)?,
        })
    }

    /// The poll state, once its seen list is parsed and its counters checked.
    pub(super) fn check(self) -> Result<PollState, StoreError> {
        let seen = serde_json::from_str(&self.seen).map_err(|e| {
            StoreError::Corrupt(format!(
                "seen list of instance {} resource {:?}: {e}",
                self.instance_id, self.resource
            ))
        })?;
        Ok(PollState {
            failures: to_u32(self.failures, "failures")?,
            last_events: to_u32(self.last_events, "last_events")?,
            seen,
            instance_id: self.instance_id,
            resource: self.resource,
            last_success_ms: self.last_success_ms,
            last_attempt_ms: self.last_attempt_ms,
            last_error: self.last_error,
            not_before_ms: self.not_before_ms,
        })
    }
}

/// A JSON encoding error as a [`StoreError::Database`].
pub(super) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Database(format!("cannot encode JSON: {e}"))
}
