//! Organizations: creating them and finding them by their secret hashes.

use super::{PgStore, pg};
use crate::{Millis, Org, OrgId, SecretHashes, StoreError};

impl PgStore {
    /// Implements [`Store::create_org`](crate::Store::create_org).
    pub(super) async fn orgs_create(
        &self,
        name: &str,
        secrets: &SecretHashes,
        now: Millis,
    ) -> Result<Org, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO orgs (name, user_secret_sha256, org_secret_sha256, created_ms)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&name, &secrets.user, &secrets.org, &now],
            )
            .await
            .map_err(pg)?;
        Ok(Org {
            id: OrgId(row.try_get(0).map_err(pg)?),
            name: name.to_owned(),
            created_ms: now,
        })
    }

    /// Implements [`Store::find_org`](crate::Store::find_org).
    pub(super) async fn orgs_find(
        &self,
        secrets: &SecretHashes,
    ) -> Result<Option<Org>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id, name, created_ms FROM orgs
                 WHERE user_secret_sha256 = $1 AND org_secret_sha256 = $2
                 ORDER BY id LIMIT 1",
                &[&secrets.user, &secrets.org],
            )
            .await
            .map_err(pg)?;
        row.map(|r| {
            Ok(Org {
                id: OrgId(r.try_get(0).map_err(pg)?),
                name: r.try_get(1).map_err(pg)?,
                created_ms: r.try_get(2).map_err(pg)?,
            })
        })
        .transpose()
    }

    /// Implements [`Store::count_orgs`](crate::Store::count_orgs).
    pub(super) async fn orgs_count(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT COUNT(*) FROM orgs", &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(pg)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
    }
}
