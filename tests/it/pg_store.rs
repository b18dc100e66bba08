//! The store's PostgreSQL backend (`store::postgres::PgStore`) through the `Store` trait,
//! each test on a fresh database of the tests' PostgreSQL server (`tests::pg`).

use store::postgres::{PgStore, SCHEMA_VERSION};
use store::{
    Attempt, AttemptRecord, InstanceId, InstanceUpdate, NewInstance, NewNotification,
    NotificationId, NotificationState, OrgId, SecretHashes, Store, StoreError,
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

#[tokio::test]
async fn methods_not_yet_implemented_say_so() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let err = store.prune(0, 10).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotImplemented {
                method: "prune",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "prune is not implemented on PostgreSQL yet"
    );
    let err = store.poll_states(InstanceId(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotImplemented { .. }), "{err:?}");
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
