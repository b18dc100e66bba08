//! Instances and their configuration entries.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::rows::{INSTANCE_COLUMNS, RawInstance, db, json_err};
use crate::{ConfigEntry, Instance, InstanceId, InstanceUpdate, NewInstance, StoreError};

/// One instance with its configuration.
fn get_instance(conn: &Connection, id: InstanceId) -> Result<Option<Instance>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .map_err(db)?
        .query_row([id], RawInstance::from_row)
        .optional()
        .map_err(db)?;
    let Some(raw) = raw else { return Ok(None) };
    let mut stmt = conn
        .prepare_cached("SELECT id, key, value FROM config WHERE instance_id = ?1 ORDER BY id")
        .map_err(db)?;
    let config = stmt
        .query_map([id], |r| {
            Ok(ConfigEntry {
                id: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    raw.check(config).map(Some)
}

/// Every instance with its configuration, ordered by id.
fn all_instances(conn: &Connection) -> Result<Vec<Instance>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY id");
    let raws = conn
        .prepare_cached(&sql)
        .map_err(db)?
        .query_map([], RawInstance::from_row)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare_cached("SELECT instance_id, id, key, value FROM config ORDER BY instance_id, id")
        .map_err(db)?;
    let entries = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, InstanceId>(0)?,
                ConfigEntry {
                    id: r.get(1)?,
                    key: r.get(2)?,
                    value: r.get(3)?,
                },
            ))
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    // Both lists are ordered by instance id: walk them together.
    let mut entries = entries.into_iter().peekable();
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        while entries.next_if(|(iid, _)| *iid < raw.id).is_some() {}
        let mut config = Vec::new();
        while let Some((_, entry)) = entries.next_if(|(iid, _)| *iid == raw.id) {
            config.push(entry);
        }
        out.push(raw.check(config)?);
    }
    Ok(out)
}

/// Sets configuration key `key` of an instance, keeping the entry id of an existing key.
fn upsert_config(
    conn: &Connection,
    instance_id: InstanceId,
    key: &str,
    value: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO config (instance_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![instance_id, key, value])
    .map(|_| ())
}

impl SqliteStore {
    /// Implements [`Store::create_instance`](crate::Store::create_instance).
    pub(super) async fn instances_create(&self, new: NewInstance) -> Result<Instance, StoreError> {
        let tags = serde_json::to_string(&new.tags).map_err(json_err)?;
        let provider_data = serde_json::to_string(&new.provider_data).map_err(json_err)?;
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO instances (org_id, element_key, name, token_sha256, tags,
                     provider_data, disabled, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )
            .map_err(db)?
            .execute(params![
                new.org_id,
                new.element_key,
                new.name,
                new.token_sha256,
                tags,
                provider_data,
                new.disabled,
                new.created_ms,
            ])
            .map_err(db)?;
            let id = InstanceId(conn.last_insert_rowid());
            for (key, value) in &new.config {
                upsert_config(conn, id, key, value).map_err(db)?;
            }
            get_instance(conn, id)?
                .ok_or_else(|| StoreError::Database(format!("instance {id} vanished")))
        })
        .await
    }

    /// Implements [`Store::get_instance`](crate::Store::get_instance).
    pub(super) async fn instances_get(
        &self,
        id: InstanceId,
    ) -> Result<Option<Instance>, StoreError> {
        self.read(move |conn| get_instance(conn, id)).await
    }

    /// Implements [`Store::all_instances`](crate::Store::all_instances).
    pub(super) async fn instances_all(&self) -> Result<Vec<Instance>, StoreError> {
        self.read(all_instances).await
    }

    /// Implements [`Store::update_instance`](crate::Store::update_instance).
    pub(super) async fn instances_update(
        &self,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<Instance>, StoreError> {
        let tags = match &update.tags {
            Some(tags) => Some(serde_json::to_string(tags).map_err(json_err)?),
            None => None,
        };
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE instances SET
                         name = COALESCE(?2, name),
                         tags = COALESCE(?3, tags),
                         disabled = COALESCE(?4, disabled),
                         updated_ms = ?5
                     WHERE id = ?1",
                )
                .map_err(db)?
                .execute(params![
                    id,
                    update.name,
                    tags,
                    update.disabled,
                    update.updated_ms
                ])
                .map_err(db)?;
            if changed == 0 {
                return Ok(None);
            }
            for (key, value) in &update.set_config {
                upsert_config(conn, id, key, value).map_err(db)?;
            }
            get_instance(conn, id)
        })
        .await
    }

    /// Implements [`Store::delete_instance`](crate::Store::delete_instance).
    pub(super) async fn instances_delete(&self, id: InstanceId) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM instances WHERE id = ?1")
                .map_err(db)?
                .execute([id])
                .map_err(db)?;
            if deleted == 0 {
                return Ok(false);
            }
            // The foreign keys cascade these deletes too; deleting explicitly keeps them
            // gone even on a connection without foreign keys.
            for sql in [
                "DELETE FROM poll_state WHERE instance_id = ?1",
                "DELETE FROM credentials WHERE instance_id = ?1",
            ] {
                conn.prepare_cached(sql)
                    .map_err(db)?
                    .execute([id])
                    .map_err(db)?;
            }
            conn.prepare_cached(
                "UPDATE notifications SET state = 'dropped'
                 WHERE instance_id = ?1 AND state = 'pending'",
            )
            .map_err(db)?
            .execute([id])
            .map_err(db)?;
            Ok(true)
        })
        .await
    }
}
