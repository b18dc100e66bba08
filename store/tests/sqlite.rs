//! Tests of the SQLite store through the [`Store`] trait, as the host uses it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use store::sqlite::SqliteStore;
use store::{
    Attempt, AttemptRecord, InstanceUpdate, NewInstance, NewNotification, NotificationState,
    SecretHashes, Store, StoreError,
};

fn secrets(user: &str, org: &str) -> SecretHashes {
    SecretHashes {
        user: user.into(),
        org: org.into(),
    }
}

fn new_instance(org_id: i64, name: &str) -> NewInstance {
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

fn note(id: &str, instance_id: i64, created_ms: i64) -> NewNotification {
    NewNotification {
        id: id.into(),
        instance_id,
        endpoint: "https://example.com/cb".into(),
        body: format!("{{\"id\":\"{id}\",\"bytes\":[0,255]}}").into_bytes(),
        event_count: 2,
        created_ms,
    }
}

fn attempt(id: &str, delivery: u32, n: u32, at_ms: i64, status: Option<u16>) -> Attempt {
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

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("store.db")).expect("open the store")
}

#[tokio::test]
async fn orgs_are_created_and_found_by_secret_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.count_orgs().await.unwrap(), 0);

    let a = store
        .create_org("acme", &secrets("u1", "o1"), 10)
        .await
        .unwrap();
    let b = store
        .create_org("beta", &secrets("u2", "o2"), 20)
        .await
        .unwrap();
    assert_eq!(a.name, "acme");
    assert_eq!(a.created_ms, 10);
    assert!(b.id > a.id);

    assert_eq!(store.find_org(&secrets("u1", "o1")).await.unwrap(), Some(a));
    assert_eq!(store.find_org(&secrets("u2", "o2")).await.unwrap(), Some(b));
    // Both hashes must match, not just one.
    assert_eq!(store.find_org(&secrets("u1", "o2")).await.unwrap(), None);
    assert_eq!(store.find_org(&secrets("nope", "o1")).await.unwrap(), None);
    assert_eq!(store.count_orgs().await.unwrap(), 2);
}

#[tokio::test]
async fn instances_crud_and_config_upsert_keeps_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let org = store
        .create_org("acme", &secrets("u", "o"), 1)
        .await
        .unwrap();

    let one = store
        .create_instance(new_instance(org.id, "one"))
        .await
        .unwrap();
    assert_eq!(one.org_id, org.id);
    assert_eq!(one.element_key, "ecwid");
    assert_eq!(one.name, "one");
    assert_eq!(one.token_sha256, "token-of-one");
    assert_eq!(one.tags, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(
        one.provider_data,
        serde_json::json!({ "code": "xyz", "n": 1 })
    );
    assert!(!one.disabled);
    assert_eq!((one.created_ms, one.updated_ms), (1_000, 1_000));
    let keys: Vec<&str> = one.config.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "event.notification.enabled",
            "event.notification.callback.url"
        ]
    );
    assert!(one.config[0].id < one.config[1].id);
    assert_eq!(one.config_value("event.notification.enabled"), Some("true"));
    assert_eq!(store.get_instance(one.id).await.unwrap(), Some(one.clone()));

    let mut two_new = new_instance(org.id, "two");
    two_new.disabled = true;
    two_new.config = vec![("only".into(), "1".into())];
    let two = store.create_instance(two_new).await.unwrap();
    assert!(two.id > one.id);
    assert!(two.disabled);
    // Entry ids are unique across the store.
    assert!(two.config[0].id > one.config[1].id);

    assert_eq!(
        store.all_instances().await.unwrap(),
        vec![one.clone(), two.clone()]
    );

    // Update: change the name and one key, add a key, leave tags alone.
    let updated = store
        .update_instance(
            one.id,
            InstanceUpdate {
                name: Some("renamed".into()),
                tags: None,
                disabled: Some(true),
                set_config: vec![
                    ("event.notification.enabled".into(), "false".into()),
                    ("new.key".into(), "15".into()),
                ],
                updated_ms: 2_000,
            },
        )
        .await
        .unwrap()
        .expect("the instance exists");
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.tags, one.tags);
    assert!(updated.disabled);
    assert_eq!((updated.created_ms, updated.updated_ms), (1_000, 2_000));
    assert_eq!(updated.config.len(), 3);
    assert_eq!(updated.config[0].id, one.config[0].id);
    assert_eq!(updated.config[0].value, "false");
    assert_eq!(updated.config[1], one.config[1]);
    assert_eq!(updated.config[2].key, "new.key");
    assert_eq!(updated.config[2].value, "15");
    assert!(updated.config[2].id > two.config[0].id);
    assert_eq!(
        store.get_instance(one.id).await.unwrap(),
        Some(updated.clone())
    );

    // Tags only; an empty update keeps everything but updated_ms.
    let retagged = store
        .update_instance(
            one.id,
            InstanceUpdate {
                tags: Some(vec!["x".into()]),
                disabled: Some(false),
                updated_ms: 3_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retagged.tags, vec!["x".to_string()]);
    assert!(!retagged.disabled);
    assert_eq!(retagged.name, "renamed");
    assert_eq!(retagged.config, updated.config);

    assert_eq!(
        store
            .update_instance(9_999, InstanceUpdate::default())
            .await
            .unwrap(),
        None
    );

    // Delete: the instance and its configuration go away.
    assert!(store.delete_instance(two.id).await.unwrap());
    assert!(!store.delete_instance(two.id).await.unwrap());
    assert_eq!(store.get_instance(two.id).await.unwrap(), None);
    assert_eq!(store.all_instances().await.unwrap(), vec![retagged.clone()]);
    // Ids are not reused after a delete.
    let three = store
        .create_instance(new_instance(org.id, "three"))
        .await
        .unwrap();
    assert!(three.id > two.id);
    assert!(three.config[0].id > retagged.config[2].id);
}

#[tokio::test]
async fn deleting_an_instance_drops_its_pending_notifications_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let org = store
        .create_org("acme", &secrets("u", "o"), 1)
        .await
        .unwrap();
    let gone = store
        .create_instance(new_instance(org.id, "gone"))
        .await
        .unwrap();
    let kept = store
        .create_instance(new_instance(org.id, "kept"))
        .await
        .unwrap();

    store
        .enqueue(vec![
            note("p", gone.id, 10),
            note("d", gone.id, 11),
            note("x", gone.id, 12),
            note("other", kept.id, 13),
        ])
        .await
        .unwrap();
    store
        .record_attempt(AttemptRecord {
            attempt: attempt("d", 1, 1, 20, Some(200)),
            new_state: NotificationState::Delivered,
            next_attempt_ms: 0,
        })
        .await
        .unwrap();
    store
        .record_attempt(AttemptRecord {
            attempt: attempt("x", 1, 1, 20, Some(500)),
            new_state: NotificationState::Dead,
            next_attempt_ms: 0,
        })
        .await
        .unwrap();

    assert!(store.delete_instance(gone.id).await.unwrap());
    let state = |id: &'static str| {
        let store = store.clone();
        async move { store.get_notification(id).await.unwrap().unwrap().state }
    };
    assert_eq!(state("p").await, NotificationState::Dropped);
    assert_eq!(state("d").await, NotificationState::Delivered);
    assert_eq!(state("x").await, NotificationState::Dead);
    assert_eq!(state("other").await, NotificationState::Pending);

    // History is kept: the notifications, their bodies and attempts are still there.
    let listed = store.list_notifications(gone.id, 10, 0).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["x", "d", "p"]);
    assert!(store.body("p").await.unwrap().is_some());
    assert_eq!(store.attempts("d").await.unwrap().len(), 1);
    let pending: Vec<String> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(pending, ["other"]);

    // An attempt that was in flight during the delete is recorded but does not revive it.
    store
        .record_attempt(AttemptRecord {
            attempt: attempt("p", 1, 1, 30, Some(503)),
            new_state: NotificationState::Pending,
            next_attempt_ms: 40,
        })
        .await
        .unwrap();
    let p = store.get_notification("p").await.unwrap().unwrap();
    assert_eq!(p.state, NotificationState::Dropped);
    assert_eq!(p.attempts, 1);
    assert_eq!(store.attempts("p").await.unwrap().len(), 1);
}

#[tokio::test]
async fn outbox_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let org = store
        .create_org("acme", &secrets("u", "o"), 1)
        .await
        .unwrap();
    let inst = store
        .create_instance(new_instance(org.id, "i"))
        .await
        .unwrap();
    let other = store
        .create_instance(new_instance(org.id, "j"))
        .await
        .unwrap();

    assert_eq!(store.enqueue(vec![]).await.unwrap(), Vec::<i64>::new());
    let seqs = store
        .enqueue(vec![note("n1", inst.id, 100), note("n2", inst.id, 101)])
        .await
        .unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    let seqs2 = store
        .enqueue(vec![note("o1", other.id, 102), note("n3", inst.id, 103)])
        .await
        .unwrap();
    assert!(seqs[1] < seqs2[0] && seqs2[0] < seqs2[1]);

    let n1 = store.get_notification("n1").await.unwrap().unwrap();
    assert_eq!(n1.seq, seqs[0]);
    assert_eq!(n1.instance_id, inst.id);
    assert_eq!(n1.endpoint, "https://example.com/cb");
    assert_eq!(n1.event_count, 2);
    assert_eq!(n1.created_ms, 100);
    assert_eq!(n1.state, NotificationState::Pending);
    assert_eq!((n1.delivery, n1.attempts), (1, 0));
    assert_eq!(n1.next_attempt_ms, 100);
    assert_eq!(n1.delivered_ms, None);
    assert_eq!(store.get_notification("missing").await.unwrap(), None);

    assert_eq!(
        store.body("n2").await.unwrap().unwrap(),
        note("n2", inst.id, 101).body
    );
    assert_eq!(store.body("missing").await.unwrap(), None);

    let pending: Vec<(i64, String)> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.seq, n.id))
        .collect();
    assert_eq!(
        pending,
        vec![
            (seqs[0], "n1".to_string()),
            (seqs[1], "n2".to_string()),
            (seqs2[0], "o1".to_string()),
            (seqs2[1], "n3".to_string()),
        ]
    );

    // A duplicate id fails the whole call and stores nothing of it.
    let dup = store
        .enqueue(vec![note("fresh", inst.id, 104), note("n1", inst.id, 104)])
        .await;
    assert!(matches!(dup, Err(StoreError::Database(_))), "{dup:?}");
    assert_eq!(store.get_notification("fresh").await.unwrap(), None);

    // n1: a failed attempt, then success.
    let a1 = attempt("n1", 1, 1, 200, Some(502));
    store
        .record_attempt(AttemptRecord {
            attempt: a1.clone(),
            new_state: NotificationState::Pending,
            next_attempt_ms: 1_200,
        })
        .await
        .unwrap();
    let after = store.get_notification("n1").await.unwrap().unwrap();
    assert_eq!(after.state, NotificationState::Pending);
    assert_eq!(after.attempts, 1);
    assert_eq!(after.next_attempt_ms, 1_200);
    assert_eq!(after.delivered_ms, None);

    let a2 = attempt("n1", 1, 2, 1_250, Some(204));
    store
        .record_attempt(AttemptRecord {
            attempt: a2.clone(),
            new_state: NotificationState::Delivered,
            next_attempt_ms: 0,
        })
        .await
        .unwrap();
    let delivered = store.get_notification("n1").await.unwrap().unwrap();
    assert_eq!(delivered.state, NotificationState::Delivered);
    assert_eq!(delivered.attempts, 2);
    assert_eq!(delivered.delivered_ms, Some(1_250));

    // n2: dies, then is redelivered.
    let a3 = attempt("n2", 1, 1, 300, None);
    store
        .record_attempt(AttemptRecord {
            attempt: a3.clone(),
            new_state: NotificationState::Dead,
            next_attempt_ms: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_notification("n2").await.unwrap().unwrap().state,
        NotificationState::Dead
    );
    let again = store.redeliver("n2", 5_000).await.unwrap().unwrap();
    assert_eq!(again.state, NotificationState::Pending);
    assert_eq!((again.delivery, again.attempts), (2, 0));
    assert_eq!(again.next_attempt_ms, 5_000);
    assert_eq!(again.seq, seqs[1]);
    assert_eq!(store.get_notification("n2").await.unwrap(), Some(again));
    assert_eq!(store.redeliver("missing", 5_000).await.unwrap(), None);

    let a4 = attempt("n2", 2, 1, 5_001, Some(200));
    store
        .record_attempt(AttemptRecord {
            attempt: a4.clone(),
            new_state: NotificationState::Delivered,
            next_attempt_ms: 0,
        })
        .await
        .unwrap();

    // Attempts, oldest first.
    assert_eq!(store.attempts("n1").await.unwrap(), vec![a1, a2]);
    assert_eq!(store.attempts("n2").await.unwrap(), vec![a3, a4]);
    assert_eq!(store.attempts("n3").await.unwrap(), vec![]);

    // An attempt for an unknown notification is refused and stores nothing.
    let unknown = store
        .record_attempt(AttemptRecord {
            attempt: attempt("missing", 1, 1, 1, Some(200)),
            new_state: NotificationState::Delivered,
            next_attempt_ms: 0,
        })
        .await;
    assert!(matches!(unknown, Err(StoreError::Database(_))));
    assert_eq!(store.attempts("missing").await.unwrap(), vec![]);

    // Listing: newest first, per instance, with limit and offset.
    let ids = |v: Vec<store::Notification>| v.into_iter().map(|n| n.id).collect::<Vec<_>>();
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

    let mut counts = store.count_by_state().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        counts,
        vec![
            (NotificationState::Delivered, 2),
            (NotificationState::Pending, 2),
        ]
    );
    let pending: Vec<String> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(pending, ["o1", "n3"]);
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let (org, inst, notes, attempts, counts) = {
        let store = SqliteStore::open(&path).unwrap();
        let org = store
            .create_org("acme", &secrets("u", "o"), 7)
            .await
            .unwrap();
        let inst = store
            .create_instance(new_instance(org.id, "i"))
            .await
            .unwrap();
        let inst = store
            .update_instance(
                inst.id,
                InstanceUpdate {
                    set_config: vec![("k".into(), "v".into())],
                    updated_ms: 8,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        store
            .enqueue(vec![note("a", inst.id, 1), note("b", inst.id, 2)])
            .await
            .unwrap();
        store
            .record_attempt(AttemptRecord {
                attempt: attempt("a", 1, 1, 3, Some(200)),
                new_state: NotificationState::Delivered,
                next_attempt_ms: 0,
            })
            .await
            .unwrap();
        let notes = store.list_notifications(inst.id, 10, 0).await.unwrap();
        let attempts = store.attempts("a").await.unwrap();
        let counts = store.count_by_state().await.unwrap();
        (org, inst, notes, attempts, counts)
        // The store is dropped here: its writer thread ends and its connections close.
    };
    // Every connection closed cleanly: the last one checkpointed and removed the WAL.
    assert!(!dir.path().join("store.db-wal").exists());

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.find_org(&secrets("u", "o")).await.unwrap(), Some(org));
    assert_eq!(store.count_orgs().await.unwrap(), 1);
    assert_eq!(store.all_instances().await.unwrap(), vec![inst.clone()]);
    assert_eq!(
        store.list_notifications(inst.id, 10, 0).await.unwrap(),
        notes
    );
    assert_eq!(store.attempts("a").await.unwrap(), attempts);
    assert_eq!(store.count_by_state().await.unwrap(), counts);
    assert_eq!(
        store.body("b").await.unwrap(),
        Some(note("b", inst.id, 2).body)
    );
    let pending = store.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, "b");
    // New rows continue after the old ones.
    let seq = store.enqueue(vec![note("c", inst.id, 9)]).await.unwrap();
    assert!(seq[0] > pending[0].seq);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");

    let bad = SqliteStore::open(&dir.path().join("no/such/dir/store.db")).unwrap_err();
    assert!(matches!(bad, StoreError::Open { .. }), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_fails_only_its_caller() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    store.enqueue(vec![note("taken", 1, 0)]).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let id = if i == 100 {
                "taken".to_string()
            } else {
                format!("n{i}")
            };
            (i, store.enqueue(vec![note(&id, 1, i)]).await)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i == 100 {
            assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        } else {
            assert_eq!(result.unwrap().len(), 1);
            assert!(
                store
                    .get_notification(&format!("n{i}"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }
    assert_eq!(store.pending().await.unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enqueues_are_group_committed() {
    const CALLS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let body = vec![b'x'; 600];
    let commits_before = store.commits();
    let ops_before = store.write_ops();

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let store = store.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let n = NewNotification {
                id: format!("evt-{i}"),
                instance_id: (i % 7) as i64,
                endpoint: "https://example.com/cb".into(),
                body,
                event_count: 1,
                created_ms: i as i64,
            };
            let seqs = store.enqueue(vec![n]).await.expect("enqueue");
            (i, seqs)
        }));
    }
    let mut seq_of = vec![0i64; CALLS];
    for task in tasks {
        let (i, seqs) = task.await.unwrap();
        assert_eq!(seqs.len(), 1);
        seq_of[i] = seqs[0];
    }
    let elapsed = start.elapsed();
    let commits = store.commits() - commits_before;
    let ops = store.write_ops() - ops_before;
    eprintln!(
        "enqueue: {CALLS} concurrent calls in {elapsed:?} = {:.0} notifications/s, \
         {commits} commits (mean batch {:.1} ops)",
        CALLS as f64 / elapsed.as_secs_f64(),
        ops as f64 / commits.max(1) as f64,
    );
    assert_eq!(ops, CALLS as u64);
    assert!(commits >= 1 && commits <= CALLS as u64);

    // Every seq distinct, and each stored notification carries the seq its caller got.
    let distinct: HashSet<i64> = seq_of.iter().copied().collect();
    assert_eq!(distinct.len(), CALLS);
    let pending = store.pending().await.unwrap();
    assert_eq!(pending.len(), CALLS);
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    for n in &pending {
        let i: usize = n.id.strip_prefix("evt-").unwrap().parse().unwrap();
        assert_eq!(n.seq, seq_of[i]);
        assert_eq!(n.created_ms, i as i64);
        assert_eq!(n.next_attempt_ms, i as i64);
    }
    assert_eq!(store.body("evt-1999").await.unwrap(), Some(body));
    assert_eq!(
        store.count_by_state().await.unwrap(),
        vec![(NotificationState::Pending, CALLS as u64)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sustained_enqueue_load_forms_batches() {
    // Closed loop: each worker waits for its enqueue to commit before sending the next,
    // as webhook handlers do, so batches form only from the commits' own duration.
    const WORKERS: usize = 64;
    const CALLS_EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let commits_before = store.commits();

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(WORKERS);
    for w in 0..WORKERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for c in 0..CALLS_EACH {
                let n = NewNotification {
                    id: format!("w{w}-c{c}"),
                    instance_id: w as i64,
                    endpoint: "https://example.com/cb".into(),
                    body: vec![b'y'; 600],
                    event_count: 1,
                    created_ms: c as i64,
                };
                let seq = store.enqueue(vec![n]).await.expect("enqueue")[0];
                // One caller's notifications get increasing seqs.
                assert!(seq > last);
                last = seq;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();
    let total = WORKERS * CALLS_EACH;
    let commits = store.commits() - commits_before;
    eprintln!(
        "sustained enqueue: {total} calls from {WORKERS} workers in {elapsed:?} = {:.0} \
         notifications/s, {commits} commits (mean batch {:.1})",
        total as f64 / elapsed.as_secs_f64(),
        total as f64 / commits.max(1) as f64,
    );
    assert!(commits >= 1 && commits <= total as u64);
    assert_eq!(store.pending().await.unwrap().len(), total);
    for w in 0..WORKERS {
        let listed = store.list_notifications(w as i64, 1_000, 0).await.unwrap();
        assert_eq!(listed.len(), CALLS_EACH);
        assert!(listed.windows(2).all(|p| p[0].seq > p[1].seq));
    }
}

#[tokio::test]
async fn a_lone_enqueue_commits_at_once() {
    // No timed batching window: sequential writes each commit on their own.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let before = store.commits();
    let mut latencies = Vec::new();
    for i in 0..200 {
        let start = Instant::now();
        store
            .enqueue(vec![note(&format!("n{i}"), 1, i)])
            .await
            .unwrap();
        latencies.push(start.elapsed());
    }
    assert_eq!(store.commits() - before, 200);
    latencies.sort();
    eprintln!(
        "lone enqueue latency: p50 {:?}, p99 {:?}, max {:?}",
        latencies[100], latencies[197], latencies[199]
    );
}
