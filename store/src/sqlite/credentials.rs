//! Vendor credentials the host keeps for an instance.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rows::db;
use crate::{InstanceId, StoreError, StoredCredentials};

impl SqliteStore {
    /// Implements [`Store::credentials`](crate::Store::credentials).
    pub(super) async fn credentials_load(
        &self,
        instance_id: InstanceId,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT access_token, refresh_token, expires_at_ms, obtained_ms, origin
                 FROM credentials WHERE instance_id = ?1",
            )
            .map_err(db)?
            .query_row([instance_id], |r| {
                Ok(StoredCredentials {
                    access_token: r.get(0)?,
                    refresh_token: r.get(1)?,
                    expires_at_ms: r.get(2)?,
                    obtained_ms: r.get(3)?,
                    origin: r.get(4)?,
                })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    /// Implements [`Store::save_credentials`](crate::Store::save_credentials).
    pub(super) async fn credentials_save(
        &self,
        instance_id: InstanceId,
        credentials: Option<StoredCredentials>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            match &credentials {
                Some(c) => conn
                    .prepare_cached(
                        "INSERT INTO credentials (instance_id, access_token, refresh_token,
                             expires_at_ms, obtained_ms, origin)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (instance_id) DO UPDATE SET
                             access_token = excluded.access_token,
                             refresh_token = excluded.refresh_token,
                             expires_at_ms = excluded.expires_at_ms,
                             obtained_ms = excluded.obtained_ms,
                             origin = excluded.origin",
                    )
                    .map_err(db)?
                    .execute(params![
                        instance_id,
                        c.access_token,
                        c.refresh_token,
                        c.expires_at_ms,
                        c.obtained_ms,
                        c.origin,
                    ])
                    .map_err(db)?,
                None => conn
                    .prepare_cached("DELETE FROM credentials WHERE instance_id = ?1")
                    .map_err(db)?
                    .execute([instance_id])
                    .map_err(db)?,
            };
            Ok(())
        })
        .await
    }
}
