//! What the store tests build their data from, for every backend.

use std::path::Path;

use store::postgres::PgStore;
use store::sqlite::SqliteStore;
use store::{
    Attempt, AttemptRecord, Instance, InstanceId, NewInstance, NewNotification, Notification,
    NotificationId, NotificationState, OrgId, PollState, SecretHashes, Store, StoreError,
    StoredCredentials, WebhookIntake,
};
use tests::pg::TestDatabase;

/// A `SqliteStore` on the file at `path`.
pub fn open_sqlite(path: &Path) -> SqliteStore {
    SqliteStore::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// A `PgStore` on `db`.
pub async fn open_pg(db: &TestDatabase) -> PgStore {
    PgStore::connect(db.url())
        .await
        .unwrap_or_else(|e| panic!("PgStore::connect to {}: {e}", db.name()))
}

/// A notification id.
pub fn nid(id: &str) -> NotificationId {
    NotificationId::from(id)
}

/// The secret hashes of an organization.
pub fn secrets(user: &str, org: &str) -> SecretHashes {
    SecretHashes {
        user: user.into(),
        org: org.into(),
    }
}

/// An `ecwid` instance named `name`, with two tags, two configuration entries and
/// `providerData`, created at 1000.
pub fn new_instance(org_id: OrgId, name: &str) -> NewInstance {
    NewInstance {
        org_id,
        element_key: "ecwid".into(),
        name: name.into(),
        token_sha256: format!("token-of-{name}"),
        tags: vec!["a".into(), "b".into()],
        config: vec![
            ("event.notification.enabled".into(), "true".into()),
            (
                "event.notification.callback.url".into(),
                "https://example.com/cb".into(),
            ),
        ],
        provider_data: serde_json::json!({ "code": "xyz", "n": 1 }),
        disabled: false,
        created_ms: 1_000,
    }
}

/// An organization `acme` with one instance per name, in order.
pub async fn instances<const N: usize>(store: &dyn Store, names: [&str; N]) -> [Instance; N] {
    let org = store
        .create_org("acme", &secrets("u", "o"), 1)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(N);
    for name in names {
        out.push(
            store
                .create_instance(new_instance(org.id, name))
                .await
                .unwrap(),
        );
    }
    out.try_into()
        .unwrap_or_else(|_| unreachable!("one instance per name"))
}

/// A notification of 2 events whose body ends with bytes that are not UTF-8.
pub fn note(id: &str, instance_id: InstanceId, created_ms: i64) -> NewNotification {
    NewNotification {
        id: id.into(),
        instance_id,
        endpoint: "https://example.com/cb".into(),
        body: format!("{{\"id\":\"{id}\",\"bytes\":[0,255]}}")
            .into_bytes()
            .into_iter()
            .chain([0u8, 255, 0x80])
            .collect(),
        raw_at: None,
        event_count: 2,
        created_ms,
    }
}

/// A webhook's notification for `instance_id` carrying `raw` as its `message.raw`, the
/// last member of the last member, as the host's envelope has it.
pub fn webhook_note(
    id: &str,
    instance_id: InstanceId,
    created_ms: i64,
    raw: &[u8],
) -> NewNotification {
    let mut body = format!("{{\"id\":\"{id}\",\"message\":{{\"events\":[],\"raw\":").into_bytes();
    let at = body.len();
    body.extend_from_slice(raw);
    body.extend_from_slice(b"}}");
    NewNotification {
        body,
        raw_at: Some(at),
        ..note(id, instance_id, created_ms)
    }
}

/// A webhook of digest `[digest; 32]` whose body is `raw`.
pub fn intake(digest: u8, raw: &[u8], dedupe_since: Option<i64>) -> WebhookIntake {
    WebhookIntake {
        digest: [digest; 32],
        raw: raw.to_vec(),
        dedupe_since,
    }
}

/// Attempt `n` of round `delivery` at `at_ms`: answered `status`, or not answered.
pub fn attempt(id: &str, delivery: u32, n: u32, at_ms: i64, status: Option<u16>) -> Attempt {
    Attempt {
        notification_id: id.into(),
        delivery,
        attempt: n,
        at_ms,
        status_code: status,
        latency_us: 1234,
        error: match status {
            Some(200..=299) => None,
            Some(s) => Some(format!("status {s}")),
            None => Some("connect refused".into()),
        },
    }
}

/// Records `attempt`, which leaves its notification in `state` (due again at `next_ms`).
pub async fn record(
    store: &dyn Store,
    attempt: Attempt,
    state: NotificationState,
    next_ms: i64,
) -> Result<(), StoreError> {
    store
        .record_attempt(AttemptRecord {
            attempt,
            new_state: state,
            next_attempt_ms: next_ms,
        })
        .await
}

/// A successful poll of `resource` up to `until` that saw `seen` records.
pub fn poll_state(instance_id: InstanceId, resource: &str, until: i64, seen: usize) -> PollState {
    PollState {
        instance_id,
        resource: resource.into(),
        last_success_ms: Some(until),
        seen: (0..seen)
            .map(|i| (format!("{resource}-{i}"), until - i as i64))
            .collect(),
        last_attempt_ms: Some(until - 5),
        last_error: None,
        failures: 0,
        last_events: seen as u32,
        not_before_ms: None,
    }
}

/// OAuth2 credentials obtained at `obtained_ms`, valid for an hour.
pub fn creds(token: &str, refresh: Option<&str>, obtained_ms: i64) -> StoredCredentials {
    StoredCredentials {
        access_token: token.into(),
        refresh_token: refresh.map(Into::into),
        expires_at_ms: Some(obtained_ms + 3_600_000),
        obtained_ms,
        origin: Some("base.url=https://api.example:443".into()),
    }
}

/// The ids of `v`, in order.
pub fn ids(v: Vec<Notification>) -> Vec<String> {
    v.into_iter().map(|n| n.id.0).collect()
}

/// The seqs and ids of `v`, in order.
pub fn seqs_and_ids(v: Vec<Notification>) -> Vec<(i64, String)> {
    v.into_iter().map(|n| (n.seq, n.id.0)).collect()
}

/// The state of notification `id`, which must exist.
pub async fn state_of(store: &dyn Store, id: &str) -> NotificationState {
    store
        .get_notification(&nid(id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no notification {id}"))
        .state
}

/// Whether notification `id` is stored.
pub async fn exists(store: &dyn Store, id: &str) -> bool {
    store.get_notification(&nid(id)).await.unwrap().is_some()
}
