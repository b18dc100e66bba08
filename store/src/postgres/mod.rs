//! The PostgreSQL backend: several hosts can share one database.
//!
//! Chosen with `connector-host serve --database-url`. Besides the data, the hosts share
//! through it who is alive, who holds which lease, and a feed of each other's changes
//! (`shared`, [`SharedStore`](crate::SharedStore)).
//!
//! # Connections
//!
//! A [`PgStore`] keeps a small pool of `tokio-postgres` clients (`pool`), each with the
//! statements prepared on it; opening one gives up after the URL's `connect_timeout`
//! (default [`CONNECT_TIMEOUT`]). Each operation checks one out. The intake writes
//! ([`Store::enqueue`], [`Store::enqueue_webhook`], [`Store::record_attempt`]) are
//! group-committed as on SQLite: a writer task (`writer`) runs the calls waiting together
//! in one transaction of a few multi-row statements (`batch`), a failing call failing
//! alone; [`Store::group_commits`] counts them. The other writes run in their own
//! transaction.
//!
//! # Schema versions
//!
//! `schema_version` (one row) holds the version. [`PgStore::connect`] migrates the database
//! in one transaction holding a transaction-scoped advisory lock, so hosts starting together
//! migrate it once; a database of a newer version than this code's is refused.
//!
//! # Choices the trait leaves open (the same as the SQLite backend's)
//!
//! - Ids are never reused (`BIGSERIAL`).
//! - [`Store::enqueue_webhook`]'s dedupe check and inserts run under a transaction-scoped
//!   advisory lock keyed by the digest's first 8 bytes, so two hosts taking the same
//!   webhook at once notify once.
//! - [`Store::record_attempt`] always stores the attempt, but a `Dropped` notification stays
//!   `Dropped` unless the attempt delivered it; on an unknown notification it fails with
//!   [`StoreError::Database`] and stores nothing.

mod activity;
mod batch;
mod instances;
mod intake;
mod orgs;
mod outbox;
mod poll;
mod pool;
mod schema;
mod shared;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Activity, Attempt, AttemptRecord, GroupCommits, Instance, InstanceId, InstanceUpdate, Millis,
    MinuteStats, NewInstance, NewNotification, Notification, NotificationFilter, NotificationId,
    NotificationState, Org, PollState, Redelivered, SecretHashes, Store, StoreError,
    StoredCredentials, WebhookIntake, WebhookStored,
};
use pool::{Pool, connect_one};
use writer::Writer;

pub use pool::CONNECT_TIMEOUT;
pub use schema::SCHEMA_VERSION;
pub use writer::MAX_BATCH;

/// How many connections a store opens at most, by default.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// A [`Store`] in a PostgreSQL database, and the [`SharedStore`](crate::SharedStore) of the
/// hosts that use it.
pub struct PgStore {
    pool: Arc<Pool>,
    writer: Writer,
    url: String,
    /// This store's random id in the change feed, so it skips its own announcements.
    origin: String,
    /// The changes to announce to the other hosts (see `shared`).
    announce: tokio::sync::mpsc::UnboundedSender<shared::Announce>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`) with a
    /// pool of [`DEFAULT_POOL_SIZE`] connections, and creates or migrates its schema.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_with(url, DEFAULT_POOL_SIZE).await
    }

    /// [`PgStore::connect`] with a pool of at most `pool_size` connections (at least 1).
    pub async fn connect_with(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        let mut first = connect_one(url).await?;
        schema::migrate(&mut first)
            .await
            .map_err(|e| StoreError::Open {
                path: mask_url(url),
                message: e.to_string(),
            })?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| StoreError::Open {
            path: mask_url(url),
            message: format!("no randomness for the store's id: {e}"),
        })?;
        let origin: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let (announce, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(shared::announcer(url.to_owned(), origin.clone(), rx));
        let pool = Arc::new(Pool::new(url, pool_size, first));
        Ok(PgStore {
            writer: Writer::start(pool.clone()),
            pool,
            url: url.to_owned(),
            origin,
            announce,
        })
    }
}

/// A PostgreSQL error as a [`StoreError::Database`], with the server's message when it
/// sent one.
pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Database(e.to_string()),
    }
}

/// `url` with its password, if it has one, replaced by `***`: fit for errors and logs.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

impl PgStore {
    /// Tells the other hosts that `id` was created, changed or deleted.
    fn announce_instance(&self, id: InstanceId) {
        let _ = self.announce.send(shared::Announce::Instance(id));
    }

    /// Tells the other hosts that these notifications became pending.
    fn announce_pending(&self, notes: impl IntoIterator<Item = (InstanceId, i64)>) {
        for (instance, seq) in notes {
            let _ = self
                .announce
                .send(shared::Announce::Pending(instance, vec![seq]));
        }
    }
}

#[async_trait]
impl Store for PgStore {
    fn shared(&self) -> Option<&dyn crate::SharedStore> {
        Some(self)
    }

    fn group_commits(&self) -> Option<GroupCommits> {
        Some(self.writer.group_commits())
    }

    async fn create_org(
        &self,
        name: &str,
        secrets: &SecretHashes,
        now: Millis,
    ) -> Result<Org, StoreError> {
        self.orgs_create(name, secrets, now).await
    }

    async fn find_org(&self, secrets: &SecretHashes) -> Result<Option<Org>, StoreError> {
        self.orgs_find(secrets).await
    }

    async fn count_orgs(&self) -> Result<u64, StoreError> {
        self.orgs_count().await
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError> {
        let created = self.instances_create(new).await?;
        self.announce_instance(created.id);
        Ok(created)
    }

    async fn get_instance(&self, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        self.instances_get(id).await
    }

    async fn all_instances(&self) -> Result<Vec<Instance>, StoreError> {
        self.instances_all().await
    }

    async fn update_instance(
        &self,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<Instance>, StoreError> {
        let changed = self.instances_update(id, update).await?;
        self.announce_instance(id);
        Ok(changed)
    }

    async fn delete_instance(&self, id: InstanceId) -> Result<bool, StoreError> {
        let deleted = self.instances_delete(id).await?;
        self.announce_instance(id);
        Ok(deleted)
    }

    async fn enqueue(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<InstanceId> = notifications.iter().map(|n| n.instance_id).collect();
        let seqs = self.outbox_enqueue(notifications).await?;
        self.announce_pending(ids.into_iter().zip(seqs.iter().copied()));
        Ok(seqs)
    }

    async fn enqueue_webhook(
        &self,
        intake: WebhookIntake,
        notifications: Vec<NewNotification>,
    ) -> Result<WebhookStored, StoreError> {
        let ids: Vec<InstanceId> = notifications.iter().map(|n| n.instance_id).collect();
        let stored = self.intake_enqueue_webhook(intake, notifications).await?;
        self.announce_pending(
            ids.into_iter()
                .zip(stored.seqs.iter())
                .filter_map(|(id, seq)| Some((id, (*seq)?))),
        );
        Ok(stored)
    }

    async fn pending(&self) -> Result<Vec<Notification>, StoreError> {
        self.outbox_pending().await
    }

    async fn body(&self, id: &NotificationId) -> Result<Option<Vec<u8>>, StoreError> {
        self.outbox_body(id.as_str()).await
    }

    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError> {
        self.outbox_record_attempt(record).await
    }

    async fn find_notifications(
        &self,
        instances: &[InstanceId],
        filter: &NotificationFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.activity_find(instances, filter, limit, offset).await
    }

    async fn get_notification(
        &self,
        id: &NotificationId,
    ) -> Result<Option<Notification>, StoreError> {
        self.outbox_get(id.as_str()).await
    }

    async fn attempts(&self, id: &NotificationId) -> Result<Vec<Attempt>, StoreError> {
        self.outbox_attempts(id.as_str()).await
    }

    async fn redeliver(
        &self,
        id: &NotificationId,
        now: Millis,
    ) -> Result<Option<Notification>, StoreError> {
        let again = self.outbox_redeliver(id.as_str(), now).await?;
        if let Some(n) = &again {
            self.announce_pending([(n.instance_id, n.seq)]);
        }
        Ok(again)
    }

    async fn redeliver_dead(
        &self,
        instance_id: InstanceId,
        since: Option<Millis>,
        limit: u32,
        now: Millis,
    ) -> Result<Redelivered, StoreError> {
        let again = self
            .activity_redeliver_dead(instance_id, since, limit, now)
            .await?;
        self.announce_pending(again.notifications.iter().map(|n| (n.instance_id, n.seq)));
        Ok(again)
    }

    async fn attempt_stats(
        &self,
        instance_id: InstanceId,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<MinuteStats>, StoreError> {
        self.activity_attempt_stats(instance_id, from, until).await
    }

    async fn activity_of(
        &self,
        instances: &[InstanceId],
    ) -> Result<std::collections::HashMap<InstanceId, Activity>, StoreError> {
        PgStore::activity_of(self, instances).await
    }

    async fn poll_health_of(&self, instances: &[InstanceId]) -> Result<Vec<PollState>, StoreError> {
        self.activity_poll_health(instances).await
    }

    async fn prune(&self, before: Millis, limit: u32) -> Result<u64, StoreError> {
        self.outbox_prune(before, limit).await
    }

    async fn count_by_state(&self) -> Result<Vec<(NotificationState, u64)>, StoreError> {
        self.outbox_count_by_state().await
    }

    async fn poll_states(&self, instance_id: InstanceId) -> Result<Vec<PollState>, StoreError> {
        self.poll_load(instance_id).await
    }

    async fn save_poll(
        &self,
        state: PollState,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<InstanceId> = notifications.iter().map(|n| n.instance_id).collect();
        let seqs = self.poll_save(state, notifications).await?;
        self.announce_pending(ids.into_iter().zip(seqs.iter().copied()));
        Ok(seqs)
    }

    async fn credentials(
        &self,
        instance_id: InstanceId,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.credentials_load(instance_id).await
    }

    async fn save_credentials(
        &self,
        instance_id: InstanceId,
        credentials: Option<StoredCredentials>,
    ) -> Result<(), StoreError> {
        self.credentials_save(instance_id, credentials).await
    }
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn mask_url_hides_only_the_password() {
        assert_eq!(
            mask_url("postgres://u:s3cret@127.0.0.1:5432/db"),
            "postgres://u:***@127.0.0.1:5432/db"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_url("postgres://h/db?x=a@b"), "postgres://h/db?x=a@b");
        assert_eq!(mask_url("host=h user=u"), "host=h user=u");
    }
}
