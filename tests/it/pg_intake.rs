//! Group commit of intake on PostgreSQL (`store::postgres`'s writer): calls made together
//! share one transaction, a failing call fails alone, two calls that depend on each other
//! are not run as one, and the per-digest dedupe still holds across hosts. Each test on a
//! fresh database of the tests' server (`tests::pg`).
//!
//! To put chosen calls in one batch, a test holds the writer: it takes a digest's advisory
//! lock on a connection of its own, queues a webhook of that digest (whose batch then waits
//! for the lock), queues the calls, and lets the lock go. The writer takes everything queued
//! meanwhile as its next batch.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use store::postgres::PgStore;
use store::{
    Attempt, AttemptRecord, GroupCommits, InstanceId, NewNotification, NotificationState, Store,
    StoreError, WebhookIntake, WebhookStored,
};
use tests::eventually;
use tests::pg::{TestDatabase, describe};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

const A: InstanceId = InstanceId(1);
const B: InstanceId = InstanceId(2);

async fn raw_client(db: &TestDatabase) -> Client {
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {}", db.name(), describe(&e)));
    tokio::spawn(connection);
    client
}

async fn open(db: &TestDatabase) -> Arc<PgStore> {
    Arc::new(
        PgStore::connect(db.url())
            .await
            .unwrap_or_else(|e| panic!("PgStore::connect to {}: {e}", db.name())),
    )
}

fn note(id: &str, instance_id: InstanceId) -> NewNotification {
    NewNotification {
        id: id.into(),
        instance_id,
        endpoint: "https://example.com/cb".into(),
        body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
        raw_at: None,
        event_count: 1,
        created_ms: 100,
    }
}

fn webhook_note(id: &str, instance_id: InstanceId, raw: &[u8]) -> NewNotification {
    let mut body = format!("{{\"id\":\"{id}\",\"raw\":").into_bytes();
    let at = body.len();
    body.extend_from_slice(raw);
    body.push(b'}');
    NewNotification {
        body,
        raw_at: Some(at),
        ..note(id, instance_id)
    }
}

fn intake(digest: u8, raw: &[u8]) -> WebhookIntake {
    WebhookIntake {
        digest: [digest; 32],
        raw: raw.to_vec(),
        dedupe_since: Some(0),
    }
}

fn attempt(id: &str, n: u32, state: NotificationState) -> AttemptRecord {
    AttemptRecord {
        attempt: Attempt {
            notification_id: id.into(),
            delivery: 1,
            attempt: n,
            at_ms: 200 + i64::from(n),
            status_code: Some(if state == NotificationState::Delivered {
                200
            } else {
                500
            }),
            latency_us: 10,
            error: None,
        },
        new_state: state,
        next_attempt_ms: 1_000,
    }
}

/// The writer of a store, held in a batch that waits for an advisory lock taken beside it.
struct Held {
    client: Client,
    blocker: JoinHandle<Result<WebhookStored, StoreError>>,
}

/// Holds `store`'s writer: locks digest `[digest; 32]`'s key on a connection of the test's,
/// queues a webhook of that digest and waits until its batch waits for the lock.
async fn hold_writer(db: &TestDatabase, store: &Arc<PgStore>, digest: u8) -> Held {
    let client = raw_client(db).await;
    let key = i64::from_be_bytes([digest; 8]);
    client
        .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
        .await
        .unwrap();
    let s = store.clone();
    let blocker = tokio::spawn(async move {
        let raw = b"{\"blocker\":1}";
        s.enqueue_webhook(
            intake(digest, raw),
            vec![webhook_note(&format!("blocker-{digest}"), B, raw)],
        )
        .await
    });
    eventually(
        Duration::from_secs(20),
        "the writer's batch waiting for the advisory lock",
        || async {
            let waiting: i64 = client
                .query_one(
                    "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                     WHERE l.locktype = 'advisory' AND NOT l.granted
                       AND d.datname = current_database()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (waiting > 0).then_some(())
        },
    )
    .await;
    Held { client, blocker }
}

/// Polls `calls` once (each queues its operation on its first poll), lets the held writer
/// go, and returns what the calls answered: they ran as the writer's next batch.
async fn as_one_batch<F: Future>(held: Held, calls: F) -> F::Output {
    let mut calls = std::pin::pin!(calls);
    let mut early = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = calls.as_mut().poll(cx) {
            early = Some(v);
        }
        Poll::Ready(())
    })
    .await;
    assert!(
        early.is_none(),
        "the calls answered while the writer was held"
    );
    held.client.batch_execute("COMMIT").await.unwrap();
    held.blocker.await.unwrap().unwrap();
    calls.await
}

/// The distinct transaction ids (`xmin`) of the rows of `table` whose `column` is in `ids`.
async fn transactions(client: &Client, table: &str, column: &str, ids: &[&str]) -> Vec<String> {
    client
        .query(
            &format!("SELECT DISTINCT xmin::text FROM {table} WHERE {column} = ANY($1::text[])"),
            &[&ids],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn since(before: GroupCommits, after: GroupCommits) -> (u64, u64) {
    (after.commits - before.commits, after.writes - before.writes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_together_commit_in_one_transaction() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let client = raw_client(&db).await;
    store.enqueue(vec![note("delivered", A)]).await.unwrap();
    let before = store
        .group_commits()
        .expect("the PostgreSQL store group-commits");

    let held = hold_writer(&db, &store, 0xee).await;
    let raw = b"{\"order\":1}";
    let (webhooks, enqueued, recorded) = as_one_batch(held, async {
        tokio::join!(
            futures_util::future::join_all((0..16u8).map(|i| {
                let note = webhook_note(&format!("w{i}"), A, raw);
                store.enqueue_webhook(intake(i, raw), vec![note])
            })),
            store.enqueue(vec![note("e1", B), note("e2", B)]),
            store.record_attempt(attempt("delivered", 1, NotificationState::Delivered)),
        )
    })
    .await;
    for w in webhooks {
        assert!(w.unwrap().seqs[0].is_some());
    }
    let seqs = enqueued.unwrap();
    assert!(seqs[0] < seqs[1], "{seqs:?}");
    recorded.unwrap();

    // The held call's transaction, then one for the 18 calls.
    let after = store.group_commits().unwrap();
    assert_eq!(since(before, after), (2, 19));
    let mut ids: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
    ids.extend(["e1".into(), "e2".into()]);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let notes = transactions(&client, "notifications", "id", &ids).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let attempts = transactions(&client, "attempts", "notification_id", &["delivered"]).await;
    assert_eq!(attempts, notes);
    let state: String = client
        .query_one(
            "SELECT state FROM notifications WHERE id = 'delivered'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_call_fails_alone_and_its_neighbours_commit() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let client = raw_client(&db).await;
    store
        .enqueue(vec![note("taken", A), note("pending", A)])
        .await
        .unwrap();
    let before = store.group_commits().unwrap();

    let held = hold_writer(&db, &store, 0xee).await;
    let raw = b"{\"order\":2}";
    let (good_webhook, duplicate_id, unknown, good_enqueue, good_attempt) =
        as_one_batch(held, async {
            tokio::join!(
                store.enqueue_webhook(intake(1, raw), vec![webhook_note("w1", A, raw)]),
                // "taken" is stored already: this call's insert fails the transaction.
                store.enqueue(vec![note("fresh", B), note("taken", B)]),
                store.record_attempt(attempt("nobody", 1, NotificationState::Dead)),
                store.enqueue(vec![note("e1", B)]),
                store.record_attempt(attempt("pending", 1, NotificationState::Pending)),
            )
        })
        .await;
    assert!(good_webhook.unwrap().seqs[0].is_some());
    good_enqueue.unwrap();
    good_attempt.unwrap();
    let e = duplicate_id.expect_err("a notification id stored twice");
    assert!(e.to_string().contains("duplicate key"), "{e}");
    let e = unknown.expect_err("an attempt of an unknown notification");
    assert!(e.to_string().contains("nobody"), "{e}");

    // Still one transaction for the batch, and the failing calls stored nothing.
    assert_eq!(since(before, store.group_commits().unwrap()).0, 2);
    let mut stored: Vec<String> = client
        .query("SELECT id FROM notifications", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    stored.sort_unstable();
    // Not "fresh": its call failed as a whole.
    assert_eq!(stored, ["blocker-238", "e1", "pending", "taken", "w1"]);
    let attempts: Vec<String> = client
        .query("SELECT notification_id FROM attempts", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts, ["pending"]);

    // The store goes on: the statements it prepared before the rollback still work.
    store.enqueue(vec![note("after", A)]).await.unwrap();
    store
        .record_attempt(attempt("pending", 2, NotificationState::Delivered))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_depend_on_each_other_are_not_one_batch() {
    let db = TestDatabase::create();
    let store = open(&db).await;
    let client = raw_client(&db).await;
    store.enqueue(vec![note("n", A)]).await.unwrap();

    let held = hold_writer(&db, &store, 0xee).await;
    let raw = b"{\"order\":3}";
    let (first, second, failed, delivered) = as_one_batch(held, async {
        tokio::join!(
            store.enqueue_webhook(intake(3, raw), vec![webhook_note("first", A, raw)]),
            store.enqueue_webhook(intake(3, raw), vec![webhook_note("second", A, raw)]),
            store.record_attempt(attempt("n", 1, NotificationState::Pending)),
            store.record_attempt(attempt("n", 2, NotificationState::Delivered)),
        )
    })
    .await;
    // The same webhook twice at once notifies once: the second sees the first.
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first.seqs[0].is_some() && first.duplicates.is_empty());
    assert_eq!(second.seqs, [None]);
    assert_eq!(second.duplicates, [(A, vec!["first".into()])]);
    // Two attempts of one notification: the later one's state stands. (One multi-row
    // UPDATE with both would apply one of them, which one being the plan's choice: they
    // are committed apart.)
    failed.unwrap();
    delivered.unwrap();
    let apart = transactions(&client, "attempts", "notification_id", &["n"]).await;
    assert_eq!(apart.len(), 2, "{apart:?}");
    let row = client
        .query_one(
            "SELECT state, attempts FROM notifications WHERE id = 'n'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i64>(1)),
        ("delivered".into(), 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_hosts_taking_the_same_webhooks_at_once_notify_once_each() {
    let db = TestDatabase::create();
    let mut hosts = Vec::new();
    for _ in 0..8 {
        hosts.push(open(&db).await);
    }
    // Each host takes the same 12 webhooks, in its own order, all at once.
    let raw = b"{\"order\":4}";
    let tasks: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(h, host)| {
            let host = host.clone();
            tokio::spawn(async move {
                let calls = (0..12u8).map(|i| {
                    let digest = (i + 5 * h as u8) % 12;
                    let note = webhook_note(&format!("h{h}-d{digest}"), A, raw);
                    host.enqueue_webhook(intake(digest, raw), vec![note])
                });
                futures_util::future::join_all(calls).await
            })
        })
        .collect();
    let mut stored = 0;
    let mut duplicates = 0;
    for task in tasks {
        for got in task.await.unwrap() {
            let got = got.unwrap();
            stored += got.seqs.iter().flatten().count();
            duplicates += got.duplicates.len();
        }
    }
    assert_eq!((stored, duplicates), (12, 84));
    let batched: u64 = hosts
        .iter()
        .map(|h| {
            let g = h.group_commits().unwrap();
            g.writes - g.commits
        })
        .sum();
    assert!(batched > 0, "no host put two calls in one transaction");
}

#[tokio::test]
async fn connect_gives_up_after_the_connect_timeout_naming_the_server_without_its_password() {
    // A server that takes the TCP connection and never answers the startup message.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("postgres://u:s3cret@127.0.0.1:{port}/db?connect_timeout=1");
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(15), PgStore::connect(&url))
        .await
        .expect("connect gave up by itself");
    let e = result.expect_err("a server that never answers");
    let text = e.to_string();
    assert!(started.elapsed() < Duration::from_secs(10), "{text}");
    assert!(text.contains("connect timeout"), "{text}");
    assert!(text.contains(&format!("u:***@127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    silent.abort();
}
