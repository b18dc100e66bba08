//! Organizations: creating them and finding them by their secret hashes.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::rows::db;
use crate::{Millis, Org, OrgId, SecretHashes, StoreError};

impl SqliteStore {
    /// Implements [`Store::create_org`](crate::Store::create_org).
    pub(super) async fn orgs_create(
        &self,
        name: &str,
        secrets: &SecretHashes,
        now: Millis,
    ) -> Result<Org, StoreError> {
        let name = name.to_owned();
        let secrets = secrets.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO orgs (name, user_secret_sha256, org_secret_sha256, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db)?
            .execute(params![name, secrets.user, secrets.org, now])
            .map_err(db)?;
            Ok(Org {
                id: OrgId(conn.last_insert_rowid()),
                name: name.clone(),
                created_ms: now,
            })
        })
        .await
    }

    /// Implements [`Store::find_org`](crate::Store::find_org).
    pub(super) async fn orgs_find(
        &self,
        secrets: &SecretHashes,
    ) -> Result<Option<Org>, StoreError> {
        let secrets = secrets.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, name, created_ms FROM orgs
                 WHERE user_secret_sha256 = ?1 AND org_secret_sha256 = ?2
                 ORDER BY id LIMIT 1",
            )
            .map_err(db)?
            .query_row([&secrets.user, &secrets.org], |r| {
                Ok(Org {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_ms: r.get(2)?,
                })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    /// Implements [`Store::count_orgs`](crate::Store::count_orgs).
    pub(super) async fn orgs_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM orgs")
                .map_err(db)?
                .query_row([], |r| r.get(0))
                .map_err(db)?;
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
        })
        .await
    }
}
