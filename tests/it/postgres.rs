//! The PostgreSQL test server (tests/pg.rs): a private cluster (or `TEST_DATABASE_URL`'s
//! server) and a fresh database per test, isolated from the others and dropped after.

use std::time::Instant;

use tests::pg::{TestDatabase, cluster_start_time, describe};
use tokio_postgres::{Client, NoTls};

/// A client on `db`, its connection driven by a task. (The URL may hold a password: not
/// printed.)
async fn connect(db: &TestDatabase) -> Client {
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {}", db.name(), describe(&e)));
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn a_test_database_answers_and_takes_a_table() {
    let started = Instant::now();
    let db = TestDatabase::create();
    eprintln!(
        "first database after {:?} (cluster start: {:?})",
        started.elapsed(),
        cluster_start_time()
    );
    assert!(db.url().starts_with("postgres://"));
    let client = connect(&db).await;

    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let current: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, db.name());

    client
        .batch_execute("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO items (id, name) VALUES ($1, $2), ($3, $4)",
            &[&1i64, &"one", &2i64, &"two"],
        )
        .await
        .unwrap();
    let names: Vec<String> = client
        .query("SELECT name FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["one", "two"]);
}

/// Makes a table every test of this pair names alike, and finds only its own row there:
/// on a shared database one `CREATE TABLE` would fail, or one test see the other's row.
async fn own_table(marker: &str) {
    let db = TestDatabase::create();
    let client = connect(&db).await;
    client
        .batch_execute("CREATE TABLE isolation (marker text NOT NULL)")
        .await
        .unwrap_or_else(|e| panic!("CREATE TABLE in {}: {e}", db.name()));
    client
        .execute("INSERT INTO isolation (marker) VALUES ($1)", &[&marker])
        .await
        .unwrap();
    let markers: Vec<String> = client
        .query("SELECT marker FROM isolation", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(markers, [marker]);
}

#[tokio::test]
async fn each_test_has_its_own_database_a() {
    own_table("a").await;
}

#[tokio::test]
async fn each_test_has_its_own_database_b() {
    own_table("b").await;
}

#[tokio::test]
async fn databases_are_apart_and_dropped_with_their_value() {
    let kept = TestDatabase::create();
    let started = Instant::now();
    let dropped = TestDatabase::create();
    eprintln!("one more database: {:?}", started.elapsed());
    assert_ne!(kept.name(), dropped.name());

    let other = connect(&dropped).await;
    other
        .batch_execute("CREATE TABLE only_here (x int)")
        .await
        .unwrap();
    let client = connect(&kept).await;
    let found: Option<String> = client
        .query_one("SELECT to_regclass('only_here')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, None, "a table of one database is seen in another");

    let name = dropped.name().to_owned();
    let exists = "SELECT count(*) FROM pg_database WHERE datname = $1";
    let count: i64 = client.query_one(exists, &[&name]).await.unwrap().get(0);
    assert_eq!(count, 1);
    // Dropped while `other` is still connected to it: the drop ends that connection.
    drop(dropped);
    let count: i64 = client.query_one(exists, &[&name]).await.unwrap().get(0);
    assert_eq!(count, 0, "{name} outlived its TestDatabase");
    assert!(other.is_closed() || other.simple_query("SELECT 1").await.is_err());
}

#[tokio::test]
async fn databases_are_created_side_by_side() {
    let started = Instant::now();
    let dbs: Vec<TestDatabase> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(TestDatabase::create)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("6 databases side by side: {:?}", started.elapsed());
    let mut names: Vec<&str> = dbs.iter().map(|d| d.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6);
    for db in &dbs {
        let client = connect(db).await;
        let current: String = client
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(current, db.name());
    }
}
