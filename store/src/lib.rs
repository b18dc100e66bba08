//! The host's durable store: organizations, connector instances, the notification outbox
//! and every delivery attempt, and the state of the host's polling of vendor APIs (poll
//! cursors and vendor credentials).
//!
//! [`Store`] is the interface the host codes against; [`sqlite::SqliteStore`] is the default
//! backend (one file under the data directory, nothing to install); [`postgres::PgStore`]
//! lets several hosts share one database, coordinating through its [`SharedStore`].
//!
//! Durability: when a write method returns `Ok`, the change is committed to disk. Writes are
//! group-committed: concurrent writers share one transaction and one fsync, so ingest does
//! not pay one fsync per request.

mod ids;
pub mod postgres;
pub mod sqlite;
mod webhook;

pub use ids::{InstanceId, NotificationId, OrgId};

use async_trait::async_trait;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Database(String),
    /// The database file could not be opened or prepared.
    #[error("cannot open the store at {path}: {message}")]
    Open {
        /// The database path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The store's writer has stopped (the host is shutting down).
    #[error("the store is closed")]
    Closed,
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// An organization: the tenant every instance belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// The id.
    pub id: OrgId,
    /// The name given at creation.
    pub name: String,
    /// When it was created.
    pub created_ms: Millis,
}

/// The two secrets of `Authorization: User <secret>, Organization <secret>`, as hex sha256
/// digests: the store never holds a secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHashes {
    /// sha256 hex of the user secret.
    pub user: String,
    /// sha256 hex of the organization secret.
    pub org: String,
}

/// One configuration entry of an instance: `{id, key, propertyValue}` in the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The entry id (unique across the store; the API's `configurationId`).
    pub id: i64,
    /// The key, e.g. `event.notification.callback.url`.
    pub key: String,
    /// The value as a string (`"true"`, `"15"`, JSON text for structured values).
    pub value: String,
}

/// What creating an instance needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInstance {
    /// The owning organization.
    pub org_id: OrgId,
    /// The connector key, e.g. `ecwid`.
    pub element_key: String,
    /// The instance name.
    pub name: String,
    /// sha256 hex of the instance token (`Authorization: Element <token>`).
    pub token_sha256: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Configuration as key/value, in the order given.
    pub config: Vec<(String, String)>,
    /// `providerData` as given (e.g. an OAuth2 code), JSON.
    pub provider_data: serde_json::Value,
    /// True when the instance starts disabled.
    pub disabled: bool,
    /// Creation time.
    pub created_ms: Millis,
}

/// A stored instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The id.
    pub id: InstanceId,
    /// The owning organization.
    pub org_id: OrgId,
    /// The connector key.
    pub element_key: String,
    /// The name.
    pub name: String,
    /// sha256 hex of the instance token.
    pub token_sha256: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Configuration entries, ordered by id.
    pub config: Vec<ConfigEntry>,
    /// `providerData`.
    pub provider_data: serde_json::Value,
    /// True when disabled.
    pub disabled: bool,
    /// Creation time.
    pub created_ms: Millis,
    /// Last change.
    pub updated_ms: Millis,
}

impl Instance {
    /// The value of configuration key `key`, if set.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }
}

/// A change to an instance. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceUpdate {
    /// A new name.
    pub name: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// Enable or disable.
    pub disabled: Option<bool>,
    /// Configuration entries to set: an existing key keeps its entry id and takes the new
    /// value; a new key gets a new entry.
    pub set_config: Vec<(String, String)>,
    /// `updated_ms` to record.
    pub updated_ms: Millis,
}

/// A notification to store in the outbox: one POST to a callback URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The notification id (`message.eventId`), unique.
    pub id: NotificationId,
    /// The instance it belongs to.
    pub instance_id: InstanceId,
    /// The callback URL it goes to; notifications to one URL are delivered in `seq` order.
    pub endpoint: String,
    /// The exact body bytes to POST (signatures are computed over these).
    pub body: Vec<u8>,
    /// Where the webhook's shared body ([`WebhookIntake::raw`]) sits in `body`, for
    /// [`Store::enqueue_webhook`], which stores `body` without it; [`Store::enqueue`] and
    /// [`Store::save_poll`] store the whole `body` and ignore this.
    pub raw_at: Option<usize>,
    /// How many event objects it carries.
    pub event_count: u32,
    /// When it was accepted.
    pub created_ms: Millis,
}

/// A webhook's raw body, stored once and shared by its notifications when it has several
/// (each carries it whole as `message.raw`), and the key of idempotent intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookIntake {
    /// sha256 of the request (its query, content type and body): webhooks with the same
    /// digest are the same webhook.
    pub digest: [u8; 32],
    /// The bytes every notification of the webhook carries, at its
    /// [`NewNotification::raw_at`].
    pub raw: Vec<u8>,
    /// An instance with a notification of a webhook of this digest accepted at or after
    /// this time is not notified again (idempotent intake); `None` always notifies, and
    /// records nothing for later checks.
    pub dedupe_since: Option<Millis>,
}

/// What [`Store::enqueue_webhook`] stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookStored {
    /// Each notification's `seq`, in the order given; `None` for one not stored because its
    /// instance was already notified of this webhook.
    pub seqs: Vec<Option<i64>>,
    /// The instances already notified of this webhook within the window, each with the
    /// ids of those earlier notifications (oldest first).
    pub duplicates: Vec<(InstanceId, Vec<NotificationId>)>,
}

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationState {
    /// Waiting for (another) attempt at `next_attempt_ms`.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; it waits for a redeliver call.
    Dead,
    /// Its instance was deleted before it was delivered.
    Dropped,
}

impl NotificationState {
    /// The lowercase name stored and shown: `pending`, `delivered`, `dead`, `dropped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::Dead => "dead",
            NotificationState::Dropped => "dropped",
        }
    }

    /// The inverse of [`NotificationState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => NotificationState::Pending,
            "delivered" => NotificationState::Delivered,
            "dead" => NotificationState::Dead,
            "dropped" => NotificationState::Dropped,
            _ => return None,
        })
    }
}

/// A stored notification, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Acceptance order across the whole store (assigned by the store, increasing).
    pub seq: i64,
    /// The id (`message.eventId`).
    pub id: NotificationId,
    /// The instance.
    pub instance_id: InstanceId,
    /// The callback URL.
    pub endpoint: String,
    /// Event objects carried.
    pub event_count: u32,
    /// When it was accepted.
    pub created_ms: Millis,
    /// Its state.
    pub state: NotificationState,
    /// The delivery round: 1 for the first, +1 for each redeliver call.
    pub delivery: u32,
    /// Attempts made in the current delivery round.
    pub attempts: u32,
    /// When the next attempt is due (meaningful while pending).
    pub next_attempt_ms: Millis,
    /// When it was delivered, if it was.
    pub delivered_ms: Option<Millis>,
}

/// A notification's status as the API shows it: its [`NotificationState`], with `Pending`
/// split by whether the current delivery round has made an attempt yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationStatus {
    /// Pending, not tried yet in this round (`NEW`).
    New,
    /// Pending, tried and waiting for a retry (`DISPATCHED`).
    Dispatched,
    /// Delivered (`NOTIFIED`).
    Notified,
    /// Dead-lettered (`FAILED`).
    Failed,
    /// Dropped with its instance (`DROPPED`).
    Dropped,
}

impl NotificationStatus {
    /// Every status, in the order of a notification's life.
    pub const ALL: [NotificationStatus; 5] = [
        NotificationStatus::New,
        NotificationStatus::Dispatched,
        NotificationStatus::Notified,
        NotificationStatus::Failed,
        NotificationStatus::Dropped,
    ];

    /// The status of `n`.
    pub fn of(n: &Notification) -> Self {
        match n.state {
            NotificationState::Pending if n.attempts == 0 => NotificationStatus::New,
            NotificationState::Pending => NotificationStatus::Dispatched,
            NotificationState::Delivered => NotificationStatus::Notified,
            NotificationState::Dead => NotificationStatus::Failed,
            NotificationState::Dropped => NotificationStatus::Dropped,
        }
    }

    /// The name the API shows: `NEW`, `DISPATCHED`, `NOTIFIED`, `FAILED`, `DROPPED`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NotificationStatus::New => "NEW",
            NotificationStatus::Dispatched => "DISPATCHED",
            NotificationStatus::Notified => "NOTIFIED",
            NotificationStatus::Failed => "FAILED",
            NotificationStatus::Dropped => "DROPPED",
        }
    }

    /// The inverse of [`NotificationStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        NotificationStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// The SQL condition (on the `notifications` table's `state` and `attempts`) that
    /// holds for the notifications of this status; the same text on both backends.
    pub(crate) fn sql(&self) -> &'static str {
        match self {
            NotificationStatus::New => "(state = 'pending' AND attempts = 0)",
            NotificationStatus::Dispatched => "(state = 'pending' AND attempts > 0)",
            NotificationStatus::Notified => "state = 'delivered'",
            NotificationStatus::Failed => "state = 'dead'",
            NotificationStatus::Dropped => "state = 'dropped'",
        }
    }
}

/// Which notifications [`Store::find_notifications`] returns; the default passes every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    /// Only notifications of these statuses; empty: of any status.
    pub statuses: Vec<NotificationStatus>,
    /// Only those accepted at or after this time.
    pub since: Option<Millis>,
    /// Only those accepted before this time.
    pub until: Option<Millis>,
}

impl NotificationFilter {
    /// The SQL condition for [`NotificationFilter::statuses`] (`1 = 1` for any status):
    /// fixed text, never a value given by a caller.
    pub(crate) fn statuses_sql(&self) -> String {
        if self.statuses.is_empty() {
            return "1 = 1".into();
        }
        let each: Vec<&str> = self.statuses.iter().map(NotificationStatus::sql).collect();
        format!("({})", each.join(" OR "))
    }
}

/// What [`Store::redeliver_dead`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redelivered {
    /// The notifications given a new delivery round, as they are after it, oldest first.
    pub notifications: Vec<Notification>,
    /// True when dead-lettered notifications the call asked for remain (past its limit).
    pub more: bool,
}

/// The delivery attempts of one minute (see [`Store::attempt_stats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteStats {
    /// The minute's start (a multiple of 60 000).
    pub minute_ms: Millis,
    /// Attempts made in it.
    pub attempts: u64,
    /// Of those, the ones answered 2xx.
    pub delivered: u64,
    /// Their mean latency, in microseconds.
    pub latency_us_avg: f64,
    /// Their largest latency, in microseconds.
    pub latency_us_max: i64,
}

/// What an instance's notifications come to (see [`Store::activity_of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// When its newest notification was accepted.
    pub last_created_ms: Option<Millis>,
    /// Its pending notifications.
    pub backlog: u64,
    /// Its dead-lettered notifications.
    pub dead: u64,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The notification.
    pub notification_id: NotificationId,
    /// The delivery round (see [`Notification::delivery`]).
    pub delivery: u32,
    /// 1-based attempt number within the round.
    pub attempt: u32,
    /// When the attempt started.
    pub at_ms: Millis,
    /// The HTTP status received, if an answer came.
    pub status_code: Option<u16>,
    /// Time from sending to the answer (or the failure), in microseconds.
    pub latency_us: i64,
    /// Why it failed (connect error, time-out, non-2xx), if it did.
    pub error: Option<String>,
}

/// The outcome of one attempt, to record with [`Store::record_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The attempt.
    pub attempt: Attempt,
    /// The notification's state after it.
    pub new_state: NotificationState,
    /// When the next attempt is due, if `new_state` is `Pending`.
    pub next_attempt_ms: Millis,
}

/// Where polling of one resource of one instance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollState {
    /// The instance.
    pub instance_id: InstanceId,
    /// The resource name, e.g. `contacts`.
    pub resource: String,
    /// The end (until) of the last successful poll window; `None` before the first success.
    pub last_success_ms: Option<Millis>,
    /// Records already notified, by id with their updated date (ms), to drop repeats.
    pub seen: Vec<(String, Millis)>,
    /// When the last poll (successful or not) started.
    pub last_attempt_ms: Option<Millis>,
    /// Why the last poll failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Polls failed in a row (0 after a success).
    pub failures: u32,
    /// Events notified by the last successful poll.
    pub last_events: u32,
    /// Not before this instant may the next poll run (backoff, or a vendor's Retry-After).
    pub not_before_ms: Option<Millis>,
}

/// Vendor credentials the host keeps for an instance (never shown in any answer).
///
/// Its `Debug` output redacts both tokens, so logging it cannot leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    /// The access token or api key.
    pub access_token: String,
    /// The OAuth2 refresh token, if any.
    pub refresh_token: Option<String>,
    /// When the access token expires, if known.
    pub expires_at_ms: Option<Millis>,
    /// When they were obtained.
    pub obtained_ms: Millis,
    /// Where they were obtained: the host's fingerprint of the instance's vendor URLs then.
    /// Credentials whose fingerprint is not the instance's current one are never sent.
    /// `None` for credentials stored before the fingerprint was kept.
    pub origin: Option<String>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const REDACTED: &str = "<redacted>";
        f.debug_struct("StoredCredentials")
            .field("access_token", &REDACTED)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| REDACTED),
            )
            .field("expires_at_ms", &self.expires_at_ms)
            .field("obtained_ms", &self.obtained_ms)
            .finish()
    }
}

/// How a store that commits writes in groups has batched them so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommits {
    /// Write transactions committed.
    pub commits: u64,
    /// Write operations (calls of write methods) in those transactions.
    pub writes: u64,
}

/// A change another host made to a shared store, as [`SharedStore::listen`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An instance was created, changed or deleted: read it again.
    Instance(InstanceId),
    /// Notifications of `instance_id` became pending (new, or redelivered): the host that
    /// delivers the instance loads them.
    Pending {
        /// The instance.
        instance_id: InstanceId,
        /// The notifications' seqs.
        seqs: Vec<i64>,
    },
    /// Changes may have been missed (the feed's connection was lost and is back): read
    /// everything again.
    Resync,
    /// Another host gave leases up: they may be taken now.
    Released,
}

/// What several hosts on one store share beyond the data: who is alive, who holds which
/// lease, and the feed of each other's changes. Only a store several hosts can open
/// (PostgreSQL) has it; see [`Store::shared`].
///
/// Times are the database's clock, so hosts whose clocks disagree still agree on leases.
#[async_trait]
pub trait SharedStore: Send + Sync {
    /// Marks `host` alive for `ttl_ms` more and returns every host alive now (sorted),
    /// `host` included; hosts dead for long are forgotten.
    async fn heartbeat(&self, host: &str, ttl_ms: i64) -> Result<Vec<String>, StoreError>;
    /// Takes or renews, for `ttl_ms`, each lease of `names` that is free, expired or held
    /// by `host` already; returns the names `host` holds now (a subset of `names`).
    async fn claim(
        &self,
        host: &str,
        names: &[String],
        ttl_ms: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Gives up the leases of `names` that `host` holds, and tells the other hosts
    /// ([`Change::Released`]).
    async fn release(&self, host: &str, names: &[String]) -> Result<(), StoreError>;
    /// The changes other hosts make from now on (this store's own writes are not
    /// reported). Its receiver ends when the store is dropped.
    async fn listen(&self) -> Result<tokio::sync::mpsc::UnboundedReceiver<Change>, StoreError>;
    /// The pending notifications of one instance, in seq order.
    async fn pending_of(&self, instance_id: InstanceId) -> Result<Vec<Notification>, StoreError>;
    /// The pending notifications among `seqs`, in seq order, each with its whole body
    /// (as [`Store::body`] reads it), so the host that delivers them need not read them
    /// one by one.
    async fn pending_among(&self, seqs: &[i64])
    -> Result<Vec<(Notification, Vec<u8>)>, StoreError>;
    /// How many notifications each instance has pending (instances with none left out).
    async fn pending_counts(&self) -> Result<Vec<(InstanceId, u64)>, StoreError>;
}

/// The durable store. Every method is safe to call from many tasks at once.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The group-commit counters of a store that batches writes; `None` for one that
    /// does not.
    fn group_commits(&self) -> Option<GroupCommits> {
        None
    }

    /// What hosts sharing this store coordinate through; `None` for a store one host owns
    /// (SQLite), where that host does all the work.
    fn shared(&self) -> Option<&dyn SharedStore> {
        None
    }

    // --- tenancy ---

    /// Creates an organization with its first user's and its own secret hashes.
    async fn create_org(
        &self,
        name: &str,
        secrets: &SecretHashes,
        now: Millis,
    ) -> Result<Org, StoreError>;
    /// The organization whose user and organization secrets hash to `secrets`.
    async fn find_org(&self, secrets: &SecretHashes) -> Result<Option<Org>, StoreError>;
    /// The number of organizations.
    async fn count_orgs(&self) -> Result<u64, StoreError>;

    // --- instances ---

    /// Creates an instance; entry ids and the instance id are assigned by the store.
    async fn create_instance(&self, new: NewInstance) -> Result<Instance, StoreError>;
    /// One instance, whatever its organization (callers check ownership).
    async fn get_instance(&self, id: InstanceId) -> Result<Option<Instance>, StoreError>;
    /// Every instance, ordered by id (the host caches them at start).
    async fn all_instances(&self) -> Result<Vec<Instance>, StoreError>;
    /// Applies `update`; returns the instance after it, `None` when it does not exist.
    async fn update_instance(
        &self,
        id: InstanceId,
        update: InstanceUpdate,
    ) -> Result<Option<Instance>, StoreError>;
    /// Deletes an instance, its configuration, its poll states and its vendor credentials;
    /// its pending notifications become `Dropped`. Returns false when it did not exist.
    async fn delete_instance(&self, id: InstanceId) -> Result<bool, StoreError>;

    // --- outbox ---

    /// Stores notifications durably, in order (group-committed with concurrent callers).
    /// Returns their assigned `seq`s in the same order.
    async fn enqueue(&self, notifications: Vec<NewNotification>) -> Result<Vec<i64>, StoreError>;
    /// Stores a webhook's notifications, all carrying `intake.raw` (at their
    /// [`NewNotification::raw_at`], which every one must have), with that body stored once
    /// when there are several, in one transaction (group-committed, as `enqueue`). The notifications of an instance that has
    /// one from a webhook of the same digest accepted since `intake.dedupe_since` are not
    /// stored: the check and the insert are one step, so two identical webhooks at once
    /// notify once. Their body, as [`Store::body`] returns it, is the whole `body` given.
    async fn enqueue_webhook(
        &self,
        intake: WebhookIntake,
        notifications: Vec<NewNotification>,
    ) -> Result<WebhookStored, StoreError>;
    /// Every `Pending` notification, in `seq` order (for resuming after a restart).
    async fn pending(&self) -> Result<Vec<Notification>, StoreError>;
    /// The exact body of a notification.
    async fn body(&self, id: &NotificationId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records an attempt and the state it leaves the notification in. An attempt of an
    /// earlier delivery round than the notification's current one is recorded but leaves
    /// the state alone.
    async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError>;
    /// Records attempts in their order, as [`Store::record_attempt`] each; returns each
    /// one's result, in the same order. A backend may write them together.
    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Vec<Result<(), StoreError>> {
        futures_util::future::join_all(records.into_iter().map(|r| self.record_attempt(r))).await
    }
    /// Notifications of an instance, newest first.
    async fn list_notifications(
        &self,
        instance_id: InstanceId,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        self.find_notifications(
            &[instance_id],
            &NotificationFilter::default(),
            limit,
            offset,
        )
        .await
    }
    /// The notifications of any of `instances` that pass `filter`, newest first (by
    /// `seq`): at most `limit`, after skipping `offset`. The filter runs in the database.
    async fn find_notifications(
        &self,
        instances: &[InstanceId],
        filter: &NotificationFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Notification>, StoreError>;
    /// One notification.
    async fn get_notification(
        &self,
        id: &NotificationId,
    ) -> Result<Option<Notification>, StoreError>;
    /// Every attempt of a notification, oldest first.
    async fn attempts(&self, id: &NotificationId) -> Result<Vec<Attempt>, StoreError>;
    /// Starts a new delivery round: state `Pending`, `delivery` + 1, `attempts` 0, due at
    /// `now`. Returns the notification after it, `None` when it does not exist.
    async fn redeliver(
        &self,
        id: &NotificationId,
        now: Millis,
    ) -> Result<Option<Notification>, StoreError>;
    /// Starts a new delivery round, as [`Store::redeliver`] does, for the dead-lettered
    /// notifications of `instance_id` accepted at or after `since` (all of them with
    /// `None`): at most `limit`, oldest first, in one transaction. Says whether more such
    /// remain.
    async fn redeliver_dead(
        &self,
        instance_id: InstanceId,
        since: Option<Millis>,
        limit: u32,
        now: Millis,
    ) -> Result<Redelivered, StoreError>;
    /// The attempts to deliver notifications of `instance_id` made from `from` (inclusive)
    /// to `until` (exclusive), counted per minute (UTC, from the epoch): only minutes that
    /// have attempts, oldest first.
    async fn attempt_stats(
        &self,
        instance_id: InstanceId,
        from: Millis,
        until: Millis,
    ) -> Result<Vec<MinuteStats>, StoreError>;
    /// The [`Activity`] of each of `instances` that has any notification (the others are
    /// left out), in one read.
    async fn activity_of(
        &self,
        instances: &[InstanceId],
    ) -> Result<std::collections::HashMap<InstanceId, Activity>, StoreError>;
    /// The poll states of every one of `instances`, by instance and resource name, in one
    /// read, each without its `seen` list (left empty): the polling health a listing shows.
    async fn poll_health_of(&self, instances: &[InstanceId]) -> Result<Vec<PollState>, StoreError>;
    /// Deletes notifications accepted before `before` that are no longer pending
    /// (delivered, dead-lettered or dropped) and have had no attempt or delivery since
    /// `before` (a late redelivery keeps one longer), with their attempts: at most `limit`,
    /// oldest (by acceptance) first. A pending notification is never deleted, however old.
    /// A shared webhook body is deleted with the last notification that carries it, never
    /// before. Returns how many notifications were deleted.
    async fn prune(&self, before: Millis, limit: u32) -> Result<u64, StoreError>;
    /// Counts of notifications by state (for metrics).
    async fn count_by_state(&self) -> Result<Vec<(NotificationState, u64)>, StoreError>;

    // --- polling ---

    /// The poll states of an instance, by resource name.
    async fn poll_states(&self, instance_id: InstanceId) -> Result<Vec<PollState>, StoreError>;
    /// Stores `notifications` (as `enqueue` does, returning their seqs in order) and the
    /// resource's new poll state in ONE transaction: the cursor advances only together with
    /// the notifications it covers. With no notifications it just saves the state (a failed
    /// poll records its error this way).
    async fn save_poll(
        &self,
        state: PollState,
        notifications: Vec<NewNotification>,
    ) -> Result<Vec<i64>, StoreError>;
    /// The instance's vendor credentials, if any.
    async fn credentials(
        &self,
        instance_id: InstanceId,
    ) -> Result<Option<StoredCredentials>, StoreError>;
    /// Replaces (or with `None` removes) the instance's vendor credentials.
    async fn save_credentials(
        &self,
        instance_id: InstanceId,
        credentials: Option<StoredCredentials>,
    ) -> Result<(), StoreError>;
}
