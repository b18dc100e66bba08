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
