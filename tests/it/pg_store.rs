//! What only the PostgreSQL backend (`store::postgres::PgStore`) has: a schema version in
//! the database, migrations by hosts starting together, connection errors, the pool, and
//! several hosts (stores) on one database. Everything the `Store` trait promises is in
//! `store_suite`, which runs on this backend too, each test on a fresh database of the
//! tests' PostgreSQL server (`tests::pg`).

use std::sync::Arc;

use store::postgres::{PgStore, SCHEMA_VERSION};
use store::{Store, StoreError};
use tests::pg::TestDatabase;
use tokio_postgres::Client;

use crate::store_suite::fixtures::{instances, intake, note, open_pg as open, webhook_note};
use crate::store_suite::pg_client as raw_client;

async fn schema_version(client: &Client) -> i64 {
    client
        .query_one("SELECT version FROM schema_version WHERE id = 0", &[])
        .await
        .expect("schema_version row")
        .get(0)
}

#[tokio::test]
async fn a_new_database_gets_the_current_schema_version_once() {
    let db = TestDatabase::create();
    drop(open(&db).await);
    // Connecting again finds the schema current and leaves it as it is.
    drop(open(&db).await);
    let client = raw_client(&db).await;
    assert_eq!(schema_version(&client).await, SCHEMA_VERSION);
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_through_the_pool_all_commit() {
    let db = TestDatabase::create();
    let store = Arc::new(PgStore::connect_with(db.url(), 3).await.unwrap());
    let [inst] = instances(&*store, ["a"]).await;
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
    // The store's 3, the one announcing its changes to other hosts, and this one.
    assert!(connections <= 5, "{connections} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_taking_the_same_webhook_at_once_notify_once() {
    // The same webhook taken by 8 hosts at once (8 stores on the database, each with its
    // own connections): exactly one stores it, the 7 others get it as their duplicate.
    let db = TestDatabase::create();
    let first = open(&db).await;
    let [a] = instances(&first, ["a"]).await;
    let raw = b"{\"n\":1}";
    let mut hosts = vec![Arc::new(first)];
    for _ in 1..8 {
        hosts.push(Arc::new(open(&db).await));
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
    let mut duplicates = Vec::new();
    for task in tasks {
        let got = task.await.unwrap();
        stored.extend(got.seqs.iter().flatten().copied());
        duplicates.extend(got.duplicates);
    }
    assert_eq!((stored.len(), duplicates.len()), (1, 7));
    let pending = hosts[0].pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        duplicates
            .iter()
            .all(|d| *d == (a.id, vec![pending[0].id.clone()]))
    );
}

#[tokio::test]
async fn a_lease_goes_to_one_host_until_it_expires_or_is_released() {
    let db = TestDatabase::create();
    let (a, b) = (open(&db).await, open(&db).await);
    let (a, b) = (a.shared().unwrap(), b.shared().unwrap());
    let names = |ns: &[&str]| ns.iter().map(|n| n.to_string()).collect::<Vec<_>>();

    // Both hosts alive; a takes x and y, b only what a does not hold.
    assert_eq!(a.heartbeat("a", 60_000).await.unwrap(), ["a"]);
    assert_eq!(b.heartbeat("b", 60_000).await.unwrap(), ["a", "b"]);
    let mut got = a.claim("a", &names(&["x", "y"]), 60_000).await.unwrap();
    got.sort();
    assert_eq!(got, ["x", "y"]);
    assert_eq!(
        b.claim("b", &names(&["x", "z"]), 60_000).await.unwrap(),
        ["z"],
        "a live lease of another host is left alone"
    );
    // a renews its own; a release frees one for b.
    let mut renewed = a.claim("a", &names(&["x", "y"]), 60_000).await.unwrap();
    renewed.sort();
    assert_eq!(renewed, ["x", "y"]);
    a.release("a", &names(&["y"])).await.unwrap();
    assert_eq!(b.claim("b", &names(&["y"]), 60_000).await.unwrap(), ["y"]);
    // A release by a host that does not hold the lease changes nothing.
    a.release("a", &names(&["y"])).await.unwrap();
    assert!(
        a.claim("a", &names(&["y"]), 60_000)
            .await
            .unwrap()
            .is_empty()
    );

    // A lease not renewed expires: b takes x over, and a's renewal then fails.
    assert_eq!(a.claim("a", &names(&["x"]), 1).await.unwrap(), ["x"]);
    tests::eventually(
        std::time::Duration::from_secs(5),
        "the lease to expire",
        || async {
            let got = b.claim("b", &names(&["x"]), 60_000).await.unwrap();
            (got == ["x"]).then_some(())
        },
    )
    .await;
    assert!(
        a.claim("a", &names(&["x"]), 60_000)
            .await
            .unwrap()
            .is_empty()
    );

    // A host whose heartbeat ran out is no longer listed.
    assert_eq!(a.heartbeat("a", 500).await.unwrap(), ["a", "b"]);
    tests::eventually(
        std::time::Duration::from_secs(5),
        "a to be listed dead",
        || async {
            let live = b.heartbeat("b", 60_000).await.unwrap();
            (live == ["b"]).then_some(())
        },
    )
    .await;
}

/// The next change a listener hears, within 5 s.
async fn next(heard: &mut tokio::sync::mpsc::UnboundedReceiver<store::Change>) -> store::Change {
    tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv())
        .await
        .expect("a change within 5 s")
        .expect("the feed is open")
}

#[tokio::test]
async fn another_stores_changes_reach_a_listener_and_its_own_do_not() {
    use store::{Change, InstanceId};
    let db = TestDatabase::create();
    let (a, b) = (Arc::new(open(&db).await), open(&db).await);
    let mut heard = b.shared().unwrap().listen().await.unwrap();
    let mut own = a.shared().unwrap().listen().await.unwrap();
    let [inst] = instances(&*a, ["a"]).await;
    let seqs = a.enqueue(vec![note("n1", inst.id, 1)]).await.unwrap();
    assert_eq!(next(&mut heard).await, Change::Instance(inst.id));
    assert_eq!(
        next(&mut heard).await,
        Change::Pending {
            instance_id: inst.id,
            seqs: seqs.clone()
        }
    );
    assert!(
        own.try_recv().is_err(),
        "a store is not told of its own changes"
    );
    let pending = b.shared().unwrap().pending_among(&seqs).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0.instance_id, inst.id);
    assert_eq!(
        Some(pending[0].1.clone()),
        b.body(&pending[0].0.id).await.unwrap(),
        "with its whole body"
    );
    assert_eq!(
        b.shared().unwrap().pending_counts().await.unwrap(),
        [(inst.id, 1)]
    );
    assert_eq!(
        b.shared()
            .unwrap()
            .pending_of(InstanceId(inst.id.0 + 1))
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn pending_among_reads_a_shared_webhook_body_back_whole() {
    use crate::store_suite::fixtures::{intake, webhook_note};
    let db = TestDatabase::create();
    let store = open(&db).await;
    let [inst] = instances(&store, ["a"]).await;
    let raw = br#"{"orders":[1,2,3]}"#;
    let notes: Vec<_> = (0..3)
        .map(|i| webhook_note(&format!("w{i}"), inst.id, 10, raw))
        .collect();
    let wanted: Vec<Vec<u8>> = notes.iter().map(|n| n.body.clone()).collect();
    let stored = store
        .enqueue_webhook(intake(7, raw, None), notes)
        .await
        .unwrap();
    let seqs: Vec<i64> = stored.seqs.iter().map(|s| s.unwrap()).collect();
    let pending = store.shared().unwrap().pending_among(&seqs).await.unwrap();
    let bodies: Vec<Vec<u8>> = pending.into_iter().map(|(_, body)| body).collect();
    assert_eq!(
        bodies, wanted,
        "each envelope with the webhook's body spliced in"
    );
}
