//! The store's PostgreSQL backend (`store::postgres::PgStore`) through the `Store` trait,
//! each test on a fresh database of the tests' PostgreSQL server (`tests::pg`).

use store::postgres::{PgStore, SCHEMA_VERSION};
use store::{
    Attempt, AttemptRecord, InstanceId, InstanceUpdate, NewInstance, NewNotification,
    NotificationId, NotificationState, OrgId, PollState, SecretHashes, Store, StoreError,
    StoredCredentials, WebhookIntake, WebhookStored,
};
use tests::pg::{TestDatabase, describe};
use tokio_postgres::{Client, NoTls};

/// A plain client on `db`, to look at or tamper with what the store wrote.
async fn raw_client(db: &TestDatabase) -> Client {
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {}", db.name(), describe(&e)));
    tokio::spawn(connection);
    client
}

async fn open(db: &TestDatabase) -> PgStore {
    PgStore::connect(db.url())
        .await
        .unwrap_or_else(|e| panic!("PgStore::connect to {}: {e}", db.name()))
}

fn secrets(user: &str, org: &str) -> SecretHashes {
    SecretHashes {
        user: user.into(),
        org: org.into(),
    }
}

fn new_instance(org_id: OrgId, name: &str) -> NewInstance {
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

fn note(id: &str, instance_id: InstanceId, created_ms: i64) -> NewNotification {
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

fn record(
    id: &str,
    delivery: u32,
    n: u32,
    status: Option<u16>,
    state: NotificationState,
) -> AttemptRecord {
    AttemptRecord {
        attempt: Attempt {
            notification_id: id.into(),
            delivery,
            attempt: n,
            at_ms: 5_000 + i64::from(n),
            status_code: status,
            latency_us: 1234,
            error: status
                .filter(|s| !(200..300).contains(s))
                .map(|s| format!("status {s}")),
        },
        new_state: state,
        next_attempt_ms: 9_000,
    }
}

/// An `attempts` row: notification id, delivery, attempt, status, error.
type AttemptRow = (String, i64, i64, Option<i64>, Option<String>);

async fn schema_version(client: &Client) -> i64 {
    client
        .query_one("SELECT version FROM schema_version WHERE id = 0", &[])
        .await
        .expect("schema_version row")
        .get(0)
}

#[tokio::test]
async fn connect_creates_the_schema_once_and_reconnecting_keeps_the_data() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store
        .create_org("acme", &secrets("u", "o"), 10)
        .await
        .unwrap();
    drop(store);

    let again = open(&db).await;
    assert_eq!(again.count_orgs().await.unwrap(), 1);
    assert_eq!(again.find_org(&secrets("u", "o")).await.unwrap(), Some(org));
    assert_eq!(schema_version(&raw_client(&db).await).await, SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_starting_together_migrate_the_database_once() {
    let db = TestDatabase::create();
    // Eight connects at once on an empty database: without the advisory lock, several
    // would run `CREATE TABLE orgs` together and all but one would fail.
    let url = db.url().to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        if let Err(e) = task.await.unwrap() {
            panic!("connect {i} failed: {e}");
        }
    }
    assert_eq!(schema_version(&raw_client(&db).await).await, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let db = TestDatabase::create();
    drop(open(&db).await);
    raw_client(&db)
        .await
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let err = PgStore::connect(db.url()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        text.contains(&format!("schema version {}", SCHEMA_VERSION + 1)) && text.contains("newer"),
        "{text}"
    );
}

#[tokio::test]
async fn a_connect_error_does_not_show_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = PgStore::connect("postgres://someone:s3cret-pw@127.0.0.1:1/nothing")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("someone:***@127.0.0.1:1"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}

#[tokio::test]
async fn orgs_are_created_and_found_by_secret_hashes() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    assert_eq!(store.count_orgs().await.unwrap(), 0);
    let a = store
        .create_org("a", &secrets("u1", "o1"), 100)
        .await
        .unwrap();
    let b = store
        .create_org("b", &secrets("u2", "o2"), 200)
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!((a.name.as_str(), a.created_ms), ("a", 100));
    assert_eq!(store.find_org(&secrets("u2", "o2")).await.unwrap(), Some(b));
    assert_eq!(store.find_org(&secrets("u1", "o2")).await.unwrap(), None);
    assert_eq!(store.count_orgs().await.unwrap(), 2);
}

#[tokio::test]
async fn instances_crud_and_config_upsert_keeps_ids() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();

    let a = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let b = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    assert!(b.id > a.id);
    assert_eq!(a.org_id, org.id);
    assert_eq!(a.tags, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(
        a.provider_data,
        serde_json::json!({ "code": "xyz", "n": 1 })
    );
    assert_eq!(
        (a.created_ms, a.updated_ms, a.disabled),
        (1_000, 1_000, false)
    );
    assert_eq!(a.config_value("event.notification.enabled"), Some("true"));
    assert_eq!(a.config.len(), 2);
    assert_eq!(store.get_instance(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_instance(InstanceId(9_999)).await.unwrap(), None);

    let updated = store
        .update_instance(
            a.id,
            InstanceUpdate {
                name: Some("a2".into()),
                tags: Some(vec!["x".into()]),
                disabled: Some(true),
                set_config: vec![
                    ("event.notification.enabled".into(), "false".into()),
                    ("new.key".into(), "v".into()),
                ],
                updated_ms: 2_000,
            },
        )
        .await
        .unwrap()
        .expect("instance a exists");
    assert_eq!(updated.name, "a2");
    assert_eq!(updated.tags, vec!["x".to_string()]);
    assert!(updated.disabled);
    assert_eq!((updated.created_ms, updated.updated_ms), (1_000, 2_000));
    // The existing key kept its entry id; the new one got a new id, after the others.
    let enabled = |i: &store::Instance| {
        i.config
            .iter()
            .find(|e| e.key == "event.notification.enabled")
            .cloned()
            .unwrap()
    };
    assert_eq!(enabled(&updated).id, enabled(&a).id);
    assert_eq!(enabled(&updated).value, "false");
    assert_eq!(updated.config.len(), 3);
    assert_eq!(updated.config[2].key, "new.key");
    assert!(updated.config.windows(2).all(|w| w[0].id < w[1].id));

    // A partial update leaves the other fields alone.
    let renamed = store
        .update_instance(
            b.id,
            InstanceUpdate {
                name: Some("b2".into()),
                updated_ms: 3_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.tags.clone(), renamed.disabled),
        (b.tags.clone(), false)
    );
    assert_eq!(renamed.config, b.config);
    assert_eq!(
        store
            .update_instance(InstanceId(9_999), InstanceUpdate::default())
            .await
            .unwrap(),
        None
    );

    assert_eq!(store.all_instances().await.unwrap(), vec![updated, renamed]);

    assert!(store.delete_instance(a.id).await.unwrap());
    assert!(!store.delete_instance(a.id).await.unwrap());
    assert_eq!(store.get_instance(a.id).await.unwrap(), None);
    let left: i64 = raw_client(&db)
        .await
        .query_one(
            "SELECT COUNT(*) FROM config WHERE instance_id = $1",
            &[&a.id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the deleted instance's configuration is gone");
    // Ids are never reused.
    let c = store
        .create_instance(new_instance(org.id, "c"))
        .await
        .unwrap();
    assert!(c.id > b.id);
}

#[tokio::test]
async fn outbox_enqueue_pending_body_and_attempts() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();

    assert_eq!(store.enqueue(Vec::new()).await.unwrap(), Vec::<i64>::new());
    let seqs = store
        .enqueue(vec![note("n1", inst.id, 10), note("n2", inst.id, 11)])
        .await
        .unwrap();
    let more = store.enqueue(vec![note("n3", inst.id, 12)]).await.unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1] && seqs[1] < more[0], "{seqs:?} {more:?}");

    let pending = store.pending().await.unwrap();
    let ids: Vec<_> = pending.iter().map(|n| (n.seq, n.id.as_str())).collect();
    assert_eq!(ids, vec![(seqs[0], "n1"), (seqs[1], "n2"), (more[0], "n3")]);
    let first = &pending[0];
    assert_eq!(first.instance_id, inst.id);
    assert_eq!(first.endpoint, "https://example.com/cb");
    assert_eq!((first.event_count, first.created_ms), (2, 10));
    assert_eq!((first.delivery, first.attempts), (1, 0));
    assert_eq!((first.next_attempt_ms, first.delivered_ms), (10, None));
    assert_eq!(first.state, NotificationState::Pending);

    // Bodies come back byte for byte, non-UTF-8 bytes included.
    assert_eq!(
        store.body(&NotificationId::from("n2")).await.unwrap(),
        Some(note("n2", inst.id, 11).body)
    );
    assert_eq!(
        store.body(&NotificationId::from("nope")).await.unwrap(),
        None
    );

    // A failed attempt keeps it pending, with the new due time.
    store
        .record_attempt(record("n1", 1, 1, Some(500), NotificationState::Pending))
        .await
        .unwrap();
    let n1 = store.get_notification(&"n1".into()).await.unwrap().unwrap();
    assert_eq!(
        (n1.state, n1.attempts, n1.next_attempt_ms),
        (NotificationState::Pending, 1, 9_000)
    );
    // A delivery records when.
    store
        .record_attempt(record("n1", 1, 2, Some(200), NotificationState::Delivered))
        .await
        .unwrap();
    let n1 = store.get_notification(&"n1".into()).await.unwrap().unwrap();
    assert_eq!(
        (n1.state, n1.attempts, n1.delivered_ms),
        (NotificationState::Delivered, 2, Some(5_002))
    );
    // Dead-lettered.
    store
        .record_attempt(record("n2", 1, 1, None, NotificationState::Dead))
        .await
        .unwrap();
    // An attempt of another delivery round is stored but leaves the state alone.
    store
        .record_attempt(record("n3", 7, 1, Some(200), NotificationState::Delivered))
        .await
        .unwrap();
    let n3 = store.get_notification(&"n3".into()).await.unwrap().unwrap();
    assert_eq!(
        (n3.state, n3.attempts, n3.delivered_ms),
        (NotificationState::Pending, 0, None)
    );
    let pending: Vec<_> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(pending, vec![NotificationId::from("n3")]);

    // An unknown notification: an error, and nothing stored.
    let err = store
        .record_attempt(record(
            "ghost",
            1,
            1,
            Some(200),
            NotificationState::Delivered,
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
    let client = raw_client(&db).await;
    let rows = client
        .query(
            "SELECT notification_id, delivery, attempt, status_code, error FROM attempts ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<AttemptRow> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("n1".into(), 1, 1, Some(500), Some("status 500".into())),
            ("n1".into(), 1, 2, Some(200), None),
            ("n2".into(), 1, 1, None, None),
            ("n3".into(), 7, 1, Some(200), None),
        ]
    );

    // A duplicate notification id fails the whole enqueue: nothing of it is stored.
    let err = store
        .enqueue(vec![note("n4", inst.id, 13), note("n1", inst.id, 13)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(store.get_notification(&"n4".into()).await.unwrap(), None);
}

#[tokio::test]
async fn deleting_an_instance_drops_its_pending_notifications_only() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let a = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let b = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    store
        .enqueue(vec![
            note("a1", a.id, 1),
            note("a2", a.id, 2),
            note("b1", b.id, 3),
        ])
        .await
        .unwrap();
    store
        .record_attempt(record("a1", 1, 1, Some(200), NotificationState::Delivered))
        .await
        .unwrap();
    assert!(store.delete_instance(a.id).await.unwrap());
    let state = |id: &'static str| {
        let store = &store;
        async move {
            store
                .get_notification(&id.into())
                .await
                .unwrap()
                .unwrap()
                .state
        }
    };
    assert_eq!(state("a1").await, NotificationState::Delivered);
    assert_eq!(state("a2").await, NotificationState::Dropped);
    assert_eq!(state("b1").await, NotificationState::Pending);
    // An attempt in flight when it was dropped: a failure keeps it dropped, a delivery
    // records the delivery.
    store
        .record_attempt(record("a2", 1, 1, Some(500), NotificationState::Pending))
        .await
        .unwrap();
    assert_eq!(state("a2").await, NotificationState::Dropped);
    store
        .record_attempt(record("a2", 1, 2, Some(200), NotificationState::Delivered))
        .await
        .unwrap();
    assert_eq!(state("a2").await, NotificationState::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_through_the_pool_all_commit() {
    let db = TestDatabase::create();
    let store = std::sync::Arc::new(PgStore::connect_with(db.url(), 3).await.unwrap());
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    // 3 connections, 24 tasks: they queue for a connection.
    let tasks: Vec<_> = (0..24)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let notes = (0..5)
                    .map(|i| note(&format!("t{t}-{i}"), inst.id, t))
                    .collect();
                store.enqueue(notes).await.unwrap()
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        all.extend(seqs);
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 120);
    assert_eq!(store.pending().await.unwrap().len(), 120);
    let connections: i64 = raw_client(&db)
        .await
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The store's 3 and this one.
    assert!(connections <= 4, "{connections} connections");
}

/// The ids of `v`, in order.
fn ids(v: Vec<store::Notification>) -> Vec<String> {
    v.into_iter().map(|n| n.id.0).collect()
}

#[tokio::test]
async fn list_attempts_redeliver_and_counts_by_state() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let other = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    assert_eq!(store.count_by_state().await.unwrap(), vec![]);
    let seqs = store
        .enqueue(vec![
            note("n1", inst.id, 10),
            note("n2", inst.id, 11),
            note("o1", other.id, 12),
            note("n3", inst.id, 13),
        ])
        .await
        .unwrap();

    // Listing: newest first, per instance, with limit and offset.
    assert_eq!(
        ids(store.list_notifications(inst.id, 10, 0).await.unwrap()),
        ["n3", "n2", "n1"]
    );
    assert_eq!(
        ids(store.list_notifications(inst.id, 1, 1).await.unwrap()),
        ["n2"]
    );
    assert_eq!(
        ids(store.list_notifications(inst.id, 10, 3).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.list_notifications(other.id, 10, 0).await.unwrap()),
        ["o1"]
    );
    assert_eq!(
        store.list_notifications(inst.id, 1, 0).await.unwrap(),
        vec![store.get_notification(&"n3".into()).await.unwrap().unwrap()]
    );

    // Attempts, oldest first, exactly as recorded; none for a notification without any
    // or an unknown one.
    let a1 = record("n1", 1, 1, Some(502), NotificationState::Pending);
    let a2 = record("n1", 1, 2, Some(204), NotificationState::Delivered);
    let a3 = record("n2", 1, 1, None, NotificationState::Dead);
    for r in [&a1, &a2, &a3] {
        store.record_attempt(r.clone()).await.unwrap();
    }
    assert_eq!(
        store.attempts(&"n1".into()).await.unwrap(),
        vec![a1.attempt.clone(), a2.attempt.clone()]
    );
    assert_eq!(
        store.attempts(&"n2".into()).await.unwrap(),
        vec![a3.attempt.clone()]
    );
    assert_eq!(store.attempts(&"n3".into()).await.unwrap(), vec![]);
    assert_eq!(store.attempts(&"missing".into()).await.unwrap(), vec![]);

    // Redeliver a dead one: a new round, pending, due now; the same seq.
    let again = store
        .redeliver(&"n2".into(), 50_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, NotificationState::Pending);
    assert_eq!((again.delivery, again.attempts), (2, 0));
    assert_eq!((again.next_attempt_ms, again.seq), (50_000, seqs[1]));
    assert_eq!(
        store.get_notification(&"n2".into()).await.unwrap(),
        Some(again)
    );
    assert_eq!(store.redeliver(&"missing".into(), 1).await.unwrap(), None);
    // A late attempt of round 1 is kept but does not end round 2.
    store
        .record_attempt(record("n2", 1, 2, Some(200), NotificationState::Delivered))
        .await
        .unwrap();
    let n2 = store.get_notification(&"n2".into()).await.unwrap().unwrap();
    assert_eq!((n2.state, n2.delivery), (NotificationState::Pending, 2));
    store
        .record_attempt(record("n2", 2, 1, Some(200), NotificationState::Delivered))
        .await
        .unwrap();
    let rounds: Vec<_> = store
        .attempts(&"n2".into())
        .await
        .unwrap()
        .iter()
        .map(|a| (a.delivery, a.attempt))
        .collect();
    assert_eq!(rounds, vec![(1, 1), (1, 2), (2, 1)]);

    // Counts: only the states that have notifications.
    store.delete_instance(other.id).await.unwrap();
    let mut counts = store.count_by_state().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        counts,
        vec![
            (NotificationState::Delivered, 2),
            (NotificationState::Dropped, 1),
            (NotificationState::Pending, 1),
        ]
    );
    assert_eq!(ids(store.pending().await.unwrap()), ["n3"]);
}

fn poll_state(instance_id: InstanceId, resource: &str, until: i64, seen: usize) -> PollState {
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

#[tokio::test]
async fn save_poll_stores_the_notifications_and_the_cursor_together() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let other = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);

    let first = poll_state(inst.id, "contacts", 1_000, 3);
    let notes = vec![note("c1", inst.id, 1_001), note("c2", inst.id, 1_002)];
    let seqs = store.save_poll(first.clone(), notes.clone()).await.unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![first]);
    assert_eq!(store.poll_states(other.id).await.unwrap(), vec![]);
    assert_eq!(ids(store.pending().await.unwrap()), ["c1", "c2"]);
    let c2 = store.get_notification(&"c2".into()).await.unwrap().unwrap();
    assert_eq!(
        (c2.seq, c2.delivery, c2.attempts, c2.next_attempt_ms),
        (seqs[1], 1, 0, 1_002)
    );
    assert_eq!(
        store.body(&"c2".into()).await.unwrap(),
        Some(notes[1].body.clone())
    );

    // The next poll replaces the resource's state; another resource gets its own row;
    // states come back by resource name; a long seen list is kept as given.
    let second = poll_state(inst.id, "contacts", 2_000, 5_000);
    store.save_poll(second.clone(), vec![]).await.unwrap();
    let failed = PollState {
        instance_id: inst.id,
        resource: "accounts".into(),
        last_success_ms: None,
        seen: vec![],
        last_attempt_ms: Some(100),
        last_error: Some("vendor answered 503".into()),
        failures: 3,
        last_events: 0,
        not_before_ms: Some(30_100),
    };
    assert_eq!(
        store.save_poll(failed.clone(), vec![]).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        store.poll_states(inst.id).await.unwrap(),
        vec![failed, second.clone()]
    );

    // A failing call (a notification id already taken) stores neither the state nor any
    // notification.
    let err = store
        .save_poll(
            poll_state(inst.id, "contacts", 3_000, 1),
            vec![note("fresh", inst.id, 3_000), note("c1", inst.id, 3_000)],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let err = store
        .save_poll(
            poll_state(inst.id, "orders", 3_000, 1),
            vec![note("c2", inst.id, 3_000)],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let states = store.poll_states(inst.id).await.unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states[1], second);
    assert_eq!(store.get_notification(&"fresh".into()).await.unwrap(), None);
    assert_eq!(ids(store.pending().await.unwrap()), ["c1", "c2"]);

    // A poll state of an unknown instance is refused, and the notifications of that call
    // are not stored either (the state is written after them, in the same transaction);
    // deleting the instance removes its states.
    let err = store
        .save_poll(
            poll_state(InstanceId(9_999), "contacts", 1, 0),
            vec![note("orphan", InstanceId(9_999), 1)],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(
        store.get_notification(&"orphan".into()).await.unwrap(),
        None
    );
    assert!(store.delete_instance(inst.id).await.unwrap());
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);

    // A corrupt seen list is reported as such, naming the instance and the resource.
    store
        .save_poll(poll_state(other.id, "deals", 1, 1), vec![])
        .await
        .unwrap();
    raw_client(&db)
        .await
        .execute("UPDATE poll_state SET seen = 'not json'", &[])
        .await
        .unwrap();
    let err = store.poll_states(other.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("\"deals\""), "{err}");
}

fn creds(token: &str, refresh: Option<&str>, obtained_ms: i64) -> StoredCredentials {
    StoredCredentials {
        access_token: token.into(),
        refresh_token: refresh.map(Into::into),
        expires_at_ms: Some(obtained_ms + 3_600_000),
        obtained_ms,
        origin: Some("base.url=https://api.example:443".into()),
    }
}

#[tokio::test]
async fn credentials_round_trip_replace_and_remove() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let other = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    assert_eq!(store.credentials(inst.id).await.unwrap(), None);

    let first = creds("access-1", Some("refresh-1"), 100);
    store
        .save_credentials(inst.id, Some(first.clone()))
        .await
        .unwrap();
    let key_only = StoredCredentials {
        access_token: "api-key".into(),
        refresh_token: None,
        expires_at_ms: None,
        obtained_ms: 7,
        origin: None,
    };
    store
        .save_credentials(other.id, Some(key_only.clone()))
        .await
        .unwrap();
    assert_eq!(store.credentials(inst.id).await.unwrap(), Some(first));
    assert_eq!(
        store.credentials(other.id).await.unwrap(),
        Some(key_only.clone())
    );

    // Replace: every field comes from the new value, the origin and a dropped refresh
    // token included.
    let second = StoredCredentials {
        access_token: "access-2".into(),
        refresh_token: None,
        expires_at_ms: None,
        obtained_ms: 200,
        origin: Some("base.url=https://other.example:443".into()),
    };
    store
        .save_credentials(inst.id, Some(second.clone()))
        .await
        .unwrap();
    assert_eq!(store.credentials(inst.id).await.unwrap(), Some(second));

    // Remove, twice (the second is a no-op), and for an unknown instance.
    store.save_credentials(inst.id, None).await.unwrap();
    assert_eq!(store.credentials(inst.id).await.unwrap(), None);
    store.save_credentials(inst.id, None).await.unwrap();
    store
        .save_credentials(InstanceId(9_999), None)
        .await
        .unwrap();
    assert_eq!(store.credentials(other.id).await.unwrap(), Some(key_only));

    // Credentials of an instance that does not exist are refused; deleting an instance
    // removes its credentials.
    let err = store
        .save_credentials(InstanceId(9_999), Some(creds("x", None, 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(store.credentials(InstanceId(9_999)).await.unwrap(), None);
    assert!(store.delete_instance(other.id).await.unwrap());
    assert_eq!(store.credentials(other.id).await.unwrap(), None);
}

#[tokio::test]
async fn prune_deletes_old_finished_notifications_with_their_attempts_and_never_a_pending_one() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "i"))
        .await
        .unwrap();
    let gone = store
        .create_instance(new_instance(org.id, "gone"))
        .await
        .unwrap();
    // Accepted at 10..=16; `new` after the cut at 100.
    store
        .enqueue(vec![
            note("pending-old", inst.id, 10),
            note("delivered-1", inst.id, 11),
            note("dead", inst.id, 12),
            note("dropped", gone.id, 13),
            note("delivered-2", inst.id, 14),
            note("redelivered", inst.id, 15),
            note("delivered-3", inst.id, 16),
            note("late-dead", inst.id, 17),
            note("new", inst.id, 200),
        ])
        .await
        .unwrap();
    // One attempt at `at` that leaves the notification in `state`.
    let finish = |id: &'static str, state: NotificationState, at: i64| {
        let store = &store;
        async move {
            let status = if state == NotificationState::Delivered {
                200
            } else {
                500
            };
            let mut r = record(id, 1, 1, Some(status), state);
            r.attempt.at_ms = at;
            store.record_attempt(r).await.unwrap();
        }
    };
    finish("delivered-1", NotificationState::Delivered, 50).await;
    finish("dead", NotificationState::Dead, 50).await;
    finish("delivered-2", NotificationState::Delivered, 50).await;
    // Accepted long ago, but delivered after the cut (a late redelivery).
    finish("redelivered", NotificationState::Delivered, 150).await;
    finish("delivered-3", NotificationState::Delivered, 50).await;
    // Accepted long ago, dead-lettered by an attempt after the cut.
    finish("late-dead", NotificationState::Dead, 150).await;
    finish("new", NotificationState::Delivered, 300).await;
    assert!(store.delete_instance(gone.id).await.unwrap());

    // The limit bounds one call; the oldest go first, whatever their state.
    assert_eq!(store.prune(100, 2).await.unwrap(), 2);
    let exists = |id: &'static str| {
        let store = &store;
        async move { store.get_notification(&id.into()).await.unwrap().is_some() }
    };
    assert!(!exists("delivered-1").await && !exists("dead").await);
    assert!(exists("dropped").await && exists("delivered-2").await);
    assert!(
        store
            .attempts(&"delivered-1".into())
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.prune(100, 100).await.unwrap(), 3);
    for id in ["dropped", "delivered-2", "delivered-3"] {
        assert!(!exists(id).await, "{id}");
        assert!(store.attempts(&id.into()).await.unwrap().is_empty(), "{id}");
    }
    assert_eq!(store.prune(100, 100).await.unwrap(), 0);
    // Still there: the pending one however old, the one active after the cut, and
    // everything accepted after it.
    assert_eq!(ids(store.pending().await.unwrap()), ["pending-old"]);
    assert_eq!(
        store.attempts(&"redelivered".into()).await.unwrap().len(),
        1
    );
    assert_eq!(store.attempts(&"late-dead".into()).await.unwrap().len(), 1);
    assert_eq!(store.attempts(&"new".into()).await.unwrap().len(), 1);
    let count: i64 = raw_client(&db)
        .await
        .query_one("SELECT COUNT(*) FROM attempts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
}

fn webhook_note(id: &str, instance_id: InstanceId, created_ms: i64, raw: &[u8]) -> NewNotification {
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

fn intake(digest: u8, raw: &[u8], dedupe_since: Option<i64>) -> WebhookIntake {
    WebhookIntake {
        digest: [digest; 32],
        raw: raw.to_vec(),
        dedupe_since,
    }
}

/// Rows of `table`, read beside the store.
async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_webhook_body_is_stored_once_and_every_notification_reads_back_whole() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let a = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let b = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    let raw = format!("{{\"pad\":\"{}\"}}", "x".repeat(200_000)).into_bytes();
    let notes: Vec<NewNotification> = (0..5)
        .map(|i| webhook_note(&format!("a{i}"), a.id, 10, &raw))
        .chain([webhook_note("b0", b.id, 10, &raw)])
        .collect();
    let wanted: Vec<Vec<u8>> = notes.iter().map(|n| n.body.clone()).collect();
    let stored = store
        .enqueue_webhook(intake(1, &raw, Some(0)), notes)
        .await
        .unwrap();
    assert_eq!(stored.seqs.len(), 6);
    assert!(stored.seqs.iter().all(Option::is_some));
    assert!(stored.duplicates.is_empty());
    for (i, id) in ["a0", "a1", "a2", "a3", "a4", "b0"].iter().enumerate() {
        assert_eq!(
            store.body(&(*id).into()).await.unwrap().as_ref(),
            Some(&wanted[i]),
            "{id}"
        );
    }
    let client = raw_client(&db).await;
    assert_eq!(count(&client, "webhook_bodies").await, 1);
    // Two runs: a0..a4 and b0.
    assert_eq!(count(&client, "webhook_intake").await, 2);
    let (largest, total): (i32, i64) = {
        let r = client
            .query_one(
                "SELECT MAX(length(body)), SUM(length(body))::BIGINT FROM notifications",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        largest < 100,
        "each envelope is stored without the body: {largest}"
    );
    assert!(total < 600, "{total}");

    // A notification that does not carry the body where it says is refused, whole.
    let mut bad = webhook_note("bad", a.id, 11, &raw);
    bad.raw_at = Some(3);
    let refused = store
        .enqueue_webhook(intake(2, &raw, None), vec![bad])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Database(_))),
        "{refused:?}"
    );
    assert_eq!(store.get_notification(&"bad".into()).await.unwrap(), None);
    // An empty webhook stores nothing.
    assert_eq!(
        store
            .enqueue_webhook(intake(2, &raw, Some(0)), vec![])
            .await
            .unwrap(),
        WebhookStored::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_webhook_within_the_window_notifies_each_instance_once() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let a = store
        .create_instance(new_instance(org.id, "a"))
        .await
        .unwrap();
    let b = store
        .create_instance(new_instance(org.id, "b"))
        .await
        .unwrap();
    let raw = b"{\"n\":1}";
    let first = store
        .enqueue_webhook(
            intake(7, raw, Some(0)),
            vec![
                webhook_note("a-1", a.id, 100, raw),
                webhook_note("a-2", a.id, 100, raw),
            ],
        )
        .await
        .unwrap();
    assert!(first.duplicates.is_empty());

    // Again for `a` (and new for `b`), within the window: `a` gets the earlier ids.
    let again = store
        .enqueue_webhook(
            intake(7, raw, Some(50)),
            vec![
                webhook_note("a-3", a.id, 200, raw),
                webhook_note("b-1", b.id, 200, raw),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        again.duplicates,
        vec![(a.id, vec!["a-1".into(), "a-2".into()])]
    );
    assert_eq!(again.seqs[0], None);
    assert!(again.seqs[1].is_some());
    assert_eq!(store.get_notification(&"a-3".into()).await.unwrap(), None);
    assert!(
        store
            .get_notification(&"b-1".into())
            .await
            .unwrap()
            .is_some()
    );

    // Another digest is another webhook.
    let other = store
        .enqueue_webhook(
            intake(8, raw, Some(0)),
            vec![webhook_note("a-4", a.id, 300, raw)],
        )
        .await
        .unwrap();
    assert!(other.seqs[0].is_some() && other.duplicates.is_empty());

    // Past the window, or with the check off, the same webhook notifies again.
    for (id, since) in [("a-5", Some(101)), ("a-6", None)] {
        let later = store
            .enqueue_webhook(
                intake(7, raw, since),
                vec![webhook_note(id, a.id, 400, raw)],
            )
            .await
            .unwrap();
        assert!(
            later.seqs[0].is_some() && later.duplicates.is_empty(),
            "{id}"
        );
    }
    // Only the first webhook, with two notifications, stored its body apart; one that
    // stores a single notification keeps its whole envelope.
    assert_eq!(count(&raw_client(&db).await, "webhook_bodies").await, 1);
    assert_eq!(
        store.body(&"a-6".into()).await.unwrap(),
        Some(webhook_note("a-6", a.id, 400, raw).body)
    );

    // The same webhook taken by 8 hosts at once (8 stores on the database, each its own
    // connections): exactly one stores it, the 7 others get it as their duplicate.
    let mut hosts = Vec::new();
    for _ in 0..8 {
        hosts.push(std::sync::Arc::new(open(&db).await));
    }
    let tasks: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = host.clone();
            tokio::spawn(async move {
                host.enqueue_webhook(
                    intake(9, raw, Some(0)),
                    vec![webhook_note(&format!("c-{i}"), a.id, 500, raw)],
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut stored = Vec::new();
    let mut duplicates = 0;
    for task in tasks {
        let got = task.await.unwrap();
        stored.extend(got.seqs.iter().flatten().copied());
        duplicates += got.duplicates.len();
    }
    assert_eq!((stored.len(), duplicates), (1, 7));
}

#[tokio::test]
async fn prune_deletes_a_shared_body_and_its_intake_run_with_their_last_notification() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let org = store.create_org("o", &secrets("u", "o"), 1).await.unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "i"))
        .await
        .unwrap();
    let raw = b"{\"shared\":true}";
    store
        .enqueue_webhook(
            intake(3, raw, Some(0)),
            vec![
                webhook_note("w1", inst.id, 10, raw),
                webhook_note("w2", inst.id, 11, raw),
                webhook_note("w3", inst.id, 50, raw),
            ],
        )
        .await
        .unwrap();
    let client = raw_client(&db).await;
    assert_eq!(count(&client, "notification_bodies").await, 3);
    for (id, at) in [("w1", 20), ("w2", 20), ("w3", 60)] {
        let mut r = record(id, 1, 1, Some(200), NotificationState::Delivered);
        r.attempt.at_ms = at;
        store.record_attempt(r).await.unwrap();
    }

    // w1 and w2 go; w3 still carries the body, whole, and the run is kept: the same
    // webhook is still a duplicate.
    assert_eq!(store.prune(30, 100).await.unwrap(), 2);
    assert_eq!(count(&client, "webhook_bodies").await, 1);
    assert_eq!(count(&client, "webhook_intake").await, 1);
    assert_eq!(count(&client, "notification_bodies").await, 1);
    assert_eq!(
        store.body(&"w3".into()).await.unwrap(),
        Some(webhook_note("w3", inst.id, 50, raw).body)
    );
    let again = store
        .enqueue_webhook(
            intake(3, raw, Some(0)),
            vec![webhook_note("w4", inst.id, 70, raw)],
        )
        .await
        .unwrap();
    assert_eq!(again.duplicates, vec![(inst.id, vec!["w3".into()])]);

    // With the last one, the body and the run go too, and the webhook is new again.
    assert_eq!(store.prune(100, 100).await.unwrap(), 1);
    assert_eq!(count(&client, "webhook_bodies").await, 0);
    assert_eq!(count(&client, "webhook_intake").await, 0);
    assert_eq!(count(&client, "notification_bodies").await, 0);
    let new = store
        .enqueue_webhook(
            intake(3, raw, Some(0)),
            vec![webhook_note("w5", inst.id, 200, raw)],
        )
        .await
        .unwrap();
    assert!(new.duplicates.is_empty() && new.seqs[0].is_some());
}
