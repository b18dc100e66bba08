//! Instances and their configuration entries.

use tokio_postgres::{GenericClient, Row};

use super::{PgStore, pg};
use crate::{ConfigEntry, Instance, InstanceId, InstanceUpdate, NewInstance, OrgId, StoreError};

/// The instance columns [`instance_from_row`] reads, in its order.
const INSTANCE_COLUMNS: &str = "id, org_id, element_key, name, token_sha256, tags, \
     provider_data, disabled, created_ms, updated_ms";

/// An instance row with its configuration `config`, its JSON columns parsed.
fn instance_from_row(r: &Row, config: Vec<ConfigEntry>) -> Result<Instance, StoreError> {
    let id = InstanceId(r.try_get(0).map_err(pg)?);
    let tags: String = r.try_get(5).map_err(pg)?;
    let provider_data: String = r.try_get(6).map_err(pg)?;
    Ok(Instance {
        id,
        org_id: OrgId(r.try_get(1).map_err(pg)?),
        element_key: r.try_get(2).map_err(pg)?,
        name: r.try_get(3).map_err(pg)?,
        token_sha256: r.try_get(4).map_err(pg)?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Corrupt(format!("tags of instance {id}: {e}")))?,
        config,
        provider_data: serde_json::from_str(&provider_data)
            .map_err(|e| StoreError::Corrupt(format!("providerData of instance {id}: {e}")))?,
        disabled: r.try_get(7).map_err(pg)?,
        created_ms: r.try_get(8).map_err(pg)?,
        updated_ms: r.try_get(9).map_err(pg)?,
    })
}

/// A configuration entry from `r`'s columns `at`, `at + 1`, `at + 2` (id, key, value).
fn entry_from_row(r: &Row, at: usize) -> Result<ConfigEntry, StoreError> {
    Ok(ConfigEntry {
        id: r.try_get(at).map_err(pg)?,
        key: r.try_get(at + 1).map_err(pg)?,
        value: r.try_get(at + 2).map_err(pg)?,
    })
}

/// One instance with its configuration.
async fn get_instance<C: GenericClient>(
    client: &C,
    id: InstanceId,
) -> Result<Option<Instance>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1");
    let Some(row) = client.query_opt(&sql, &[&id.0]).await.map_err(pg)? else {
        return Ok(None);
    };
    let config = client
        .query(
            "SELECT id, key, value FROM config WHERE instance_id = $1 ORDER BY id",
            &[&id.0],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| entry_from_row(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    instance_from_row(&row, config).map(Some)
}

/// Sets configuration key `key` of an instance, keeping the entry id of an existing key.
async fn upsert_config<C: GenericClient>(
    client: &C,
    instance_id: InstanceId,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO config (instance_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value",
            &[&instance_id.0, &key, &value],
        )
        .await
        .map_err(pg)?;
    Ok(())
}

/// `value` as JSON text.
fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Database(format!("cannot encode JSON: {e}")))
}

impl PgStore {
    /// Implements [`Store::create_instance`](crate::Store::create_instance).
    pub(super) async fn instances_create(&self, new: NewInstance) -> Result<Instance, StoreError> {
        let tags = json(&new.tags)?;
        let provider_data = json(&new.provider_data)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let row = tx
            .query_one(
                "INSERT INTO instances (org_id, element_key, name, token_sha256, tags,
                     provider_data, disabled, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                &[
                    &new.org_id.0,
                    &new.element_key,
                    &new.name,
                    &new.token_sha256,
                    &tags,
                    &provider_data,
                    &new.disabled,
                    &new.created_ms,
                ],
            )
            .await
            .map_err(pg)?;
        let id = InstanceId(row.try_get(0).map_err(pg)?);
        for (key, value) in &new.config {
            upsert_config(&tx, id, key, value).await?;
        }
        let instance = get_instance(&tx, id)
            .await?
            .ok_or_else(|| StoreError::Database(format!("instance {id} vanished")))?;
        tx.commit().await.map_err(pg)?;
        Ok(instance)
    }

    /// Implements [`Store::get_instance`](crate::Store::get_instance).
    pub(super) async fn instances_get(
        &self,
        id: InstanceId,
    ) -> Result<Option<Instance>, StoreError> {
        let mut client = self.pool.get().await?;
        // One snapshot for the instance and its configuration.
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(pg)?;
        let instance = get_instance(&tx, id).await?;
        tx.commit().await.map_err(pg)?;
        Ok(instance)
    }

    /// Implements [`Store::all_instances`](crate::Store::all_instances).
    pub(super) async fn instances_all(&self) -> Result<Vec<Instance>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(pg)?;
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY id");
        let rows = tx.query(&sql, &[]).await.map_err(pg)?;
        let entries = tx
            .query(
                "SELECT instance_id, id, key, value FROM config ORDER BY instance_id, id",
                &[],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        let mut entries = entries
            .iter()
            .map(|r| Ok((r.try_get::<_, i64>(0).map_err(pg)?, entry_from_row(r, 1)?)))
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .peekable();
        // Both lists are ordered by instance id: walk them together.
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get(0).map_err(pg)?;
            while entries.next_if(|(iid, _)| *iid < id).is_some() {}
            let mut config = Vec::new();
            while let Some((_, entry)) = entries.next_if(|(iid, _)| *iid == id) {
                config.push(entry);
            }
            out.push(instance_from_row(row, config)?);
        }
        Ok(out)
    }

    /// Implements [`Store::update_instance`](crate::Store::update_instance).
    pub(super) async fn instances_update(
        &self,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<Instance>, StoreError> {
        let tags = update.tags.as_ref().map(json).transpose()?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let changed = tx
            .execute(
                "UPDATE instances SET
                     name = COALESCE($2, name),
                     tags = COALESCE($3, tags),
                     disabled = COALESCE($4, disabled),
                     updated_ms = $5
                 WHERE id = $1",
                &[
                    &id.0,
                    &update.name,
                    &tags,
                    &update.disabled,
                    &update.updated_ms,
                ],
            )
            .await
            .map_err(pg)?;
        if changed == 0 {
            return Ok(None);
        }
        for (key, value) in &update.set_config {
            upsert_config(&tx, id, key, value).await?;
        }
        let instance = get_instance(&tx, id).await?;
        tx.commit().await.map_err(pg)?;
        Ok(instance)
    }

    /// Implements [`Store::delete_instance`](crate::Store::delete_instance).
    pub(super) async fn instances_delete(&self, id: InstanceId) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let deleted = tx
            .execute("DELETE FROM instances WHERE id = $1", &[&id.0])
            .await
            .map_err(pg)?;
        if deleted == 0 {
            return Ok(false);
        }
        // config, poll_state and credentials go with it (ON DELETE CASCADE).
        tx.execute(
            "UPDATE notifications SET state = 'dropped'
             WHERE instance_id = $1 AND state = 'pending'",
            &[&id.0],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(true)
    }
}
