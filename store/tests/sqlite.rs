//! Tests of the SQLite store through the [`Store`] trait, as the host uses it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use store::sqlite::SqliteStore;
use store::{
    Attempt, AttemptRecord, InstanceId, InstanceUpdate, NewInstance, NewNotification,
    NotificationId, NotificationState, OrgId, PollState, SecretHashes, Store, StoreError,
    StoredCredentials, WebhookIntake,
};

/// A notification id.
fn nid(id: &str) -> NotificationId {
    NotificationId::from(id)
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
        body: format!("{{\"id\":\"{id}\",\"bytes\":[0,255]}}").into_bytes(),
        raw_at: None,
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

fn creds(token: &str, refresh: Option<&str>, obtained_ms: i64) -> StoredCredentials {
    StoredCredentials {
        access_token: token.into(),
        refresh_token: refresh.map(Into::into),
        expires_at_ms: Some(obtained_ms + 3_600_000),
        obtained_ms,
        origin: Some("base.url=https://api.example:443".into()),
    }
}

fn pending_ids(pending: Vec<store::Notification>) -> Vec<(i64, String)> {
    pending.into_iter().map(|n| (n.seq, n.id.0)).collect()
}

/// Records `attempt`, which leaves its notification in `state` (due again at `next_ms`).
async fn record(
    store: &SqliteStore,
    attempt: Attempt,
    state: NotificationState,
    next_ms: i64,
) -> Result<(), store::StoreError> {
    store
        .record_attempt(AttemptRecord {
            attempt,
            new_state: state,
            next_attempt_ms: next_ms,
        })
        .await
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("store.db")).expect("open the store")
}

/// An organization `acme` with one instance per name, in order.
async fn instances<const N: usize>(store: &SqliteStore, names: [&str; N]) -> [store::Instance; N] {
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
            .update_instance(InstanceId(9_999), InstanceUpdate::default())
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
    let [gone, kept] = instances(&store, ["gone", "kept"]).await;

    store
        .enqueue(vec![
            note("p", gone.id, 10),
            note("d", gone.id, 11),
            note("x", gone.id, 12),
            note("other", kept.id, 13),
        ])
        .await
        .unwrap();
    record(
        &store,
        attempt("d", 1, 1, 20, Some(200)),
        NotificationState::Delivered,
        0,
    )
    .await
    .unwrap();
    record(
        &store,
        attempt("x", 1, 1, 20, Some(500)),
        NotificationState::Dead,
        0,
    )
    .await
    .unwrap();

    assert!(store.delete_instance(gone.id).await.unwrap());
    let state = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_notification(&nid(id))
                .await
                .unwrap()
                .unwrap()
                .state
        }
    };
    assert_eq!(state("p").await, NotificationState::Dropped);
    assert_eq!(state("d").await, NotificationState::Delivered);
    assert_eq!(state("x").await, NotificationState::Dead);
    assert_eq!(state("other").await, NotificationState::Pending);

    // History is kept: the notifications, their bodies and attempts are still there.
    let listed = store.list_notifications(gone.id, 10, 0).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["x", "d", "p"]);
    assert!(store.body(&nid("p")).await.unwrap().is_some());
    assert_eq!(store.attempts(&nid("d")).await.unwrap().len(), 1);
    let pending: Vec<String> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id.0)
        .collect();
    assert_eq!(pending, ["other"]);

    // An attempt that was in flight during the delete is recorded but does not revive it.
    record(
        &store,
        attempt("p", 1, 1, 30, Some(503)),
        NotificationState::Pending,
        40,
    )
    .await
    .unwrap();
    let p = store.get_notification(&nid("p")).await.unwrap().unwrap();
    assert_eq!(p.state, NotificationState::Dropped);
    assert_eq!(p.attempts, 1);
    assert_eq!(store.attempts(&nid("p")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn outbox_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [inst, other] = instances(&store, ["i", "j"]).await;

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

    let n1 = store.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(n1.seq, seqs[0]);
    assert_eq!(n1.instance_id, inst.id);
    assert_eq!(n1.endpoint, "https://example.com/cb");
    assert_eq!(n1.event_count, 2);
    assert_eq!(n1.created_ms, 100);
    assert_eq!(n1.state, NotificationState::Pending);
    assert_eq!((n1.delivery, n1.attempts), (1, 0));
    assert_eq!(n1.next_attempt_ms, 100);
    assert_eq!(n1.delivered_ms, None);
    assert_eq!(store.get_notification(&nid("missing")).await.unwrap(), None);

    assert_eq!(
        store.body(&nid("n2")).await.unwrap().unwrap(),
        note("n2", inst.id, 101).body
    );
    assert_eq!(store.body(&nid("missing")).await.unwrap(), None);

    let pending: Vec<(i64, String)> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.seq, n.id.0))
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
    assert_eq!(store.get_notification(&nid("fresh")).await.unwrap(), None);

    // n1: a failed attempt, then success.
    let a1 = attempt("n1", 1, 1, 200, Some(502));
    record(&store, a1.clone(), NotificationState::Pending, 1_200)
        .await
        .unwrap();
    let after = store.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(after.state, NotificationState::Pending);
    assert_eq!(after.attempts, 1);
    assert_eq!(after.next_attempt_ms, 1_200);
    assert_eq!(after.delivered_ms, None);

    let a2 = attempt("n1", 1, 2, 1_250, Some(204));
    record(&store, a2.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();
    let delivered = store.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(delivered.state, NotificationState::Delivered);
    assert_eq!(delivered.attempts, 2);
    assert_eq!(delivered.delivered_ms, Some(1_250));

    // n2: dies, then is redelivered.
    let a3 = attempt("n2", 1, 1, 300, None);
    record(&store, a3.clone(), NotificationState::Dead, 0)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_notification(&nid("n2"))
            .await
            .unwrap()
            .unwrap()
            .state,
        NotificationState::Dead
    );
    let again = store.redeliver(&nid("n2"), 5_000).await.unwrap().unwrap();
    assert_eq!(again.state, NotificationState::Pending);
    assert_eq!((again.delivery, again.attempts), (2, 0));
    assert_eq!(again.next_attempt_ms, 5_000);
    assert_eq!(again.seq, seqs[1]);
    assert_eq!(
        store.get_notification(&nid("n2")).await.unwrap(),
        Some(again)
    );
    assert_eq!(store.redeliver(&nid("missing"), 5_000).await.unwrap(), None);

    let a4 = attempt("n2", 2, 1, 5_001, Some(200));
    record(&store, a4.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();

    // Attempts, oldest first.
    assert_eq!(store.attempts(&nid("n1")).await.unwrap(), vec![a1, a2]);
    assert_eq!(store.attempts(&nid("n2")).await.unwrap(), vec![a3, a4]);
    assert_eq!(store.attempts(&nid("n3")).await.unwrap(), vec![]);

    // An attempt for an unknown notification is refused and stores nothing.
    let unknown = record(
        &store,
        attempt("missing", 1, 1, 1, Some(200)),
        NotificationState::Delivered,
        0,
    )
    .await;
    assert!(matches!(unknown, Err(StoreError::Database(_))));
    assert_eq!(store.attempts(&nid("missing")).await.unwrap(), vec![]);

    // Listing: newest first, per instance, with limit and offset.
    let ids = |v: Vec<store::Notification>| v.into_iter().map(|n| n.id.0).collect::<Vec<_>>();
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
        .map(|n| n.id.0)
        .collect();
    assert_eq!(pending, ["o1", "n3"]);
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let (org, inst, notes, attempts, counts, polls, saved_creds) = {
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
        record(
            &store,
            attempt("a", 1, 1, 3, Some(200)),
            NotificationState::Delivered,
            0,
        )
        .await
        .unwrap();
        let mut failed = poll_state(inst.id, "orders", 40, 0);
        failed.last_success_ms = None;
        failed.last_error = Some("HTTP 429".into());
        failed.failures = 1;
        failed.not_before_ms = Some(60);
        store.save_poll(failed, vec![]).await.unwrap();
        store
            .save_poll(
                poll_state(inst.id, "contacts", 50, 3),
                vec![note("p1", inst.id, 50)],
            )
            .await
            .unwrap();
        store
            .save_credentials(inst.id, Some(creds("tok", Some("ref"), 5)))
            .await
            .unwrap();
        let notes = store.list_notifications(inst.id, 10, 0).await.unwrap();
        let attempts = store.attempts(&nid("a")).await.unwrap();
        let counts = store.count_by_state().await.unwrap();
        let polls = store.poll_states(inst.id).await.unwrap();
        assert_eq!(polls.len(), 2);
        let saved_creds = store.credentials(inst.id).await.unwrap().unwrap();
        (org, inst, notes, attempts, counts, polls, saved_creds)
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
    assert_eq!(store.attempts(&nid("a")).await.unwrap(), attempts);
    assert_eq!(store.count_by_state().await.unwrap(), counts);
    assert_eq!(
        store.body(&nid("b")).await.unwrap(),
        Some(note("b", inst.id, 2).body)
    );
    assert_eq!(store.poll_states(inst.id).await.unwrap(), polls);
    assert_eq!(store.credentials(inst.id).await.unwrap(), Some(saved_creds));
    let pending = store.pending().await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["b", "p1"]);
    // New rows continue after the old ones.
    let seq = store.enqueue(vec![note("c", inst.id, 9)]).await.unwrap();
    assert!(seq[0] > pending[1].seq);
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
    store
        .enqueue(vec![note("taken", InstanceId(1), 0)])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let id = if i == 100 {
                "taken".to_string()
            } else {
                format!("n{i}")
            };
            (i, store.enqueue(vec![note(&id, InstanceId(1), i)]).await)
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
                    .get_notification(&nid(&format!("n{i}")))
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
                id: format!("evt-{i}").into(),
                instance_id: InstanceId((i % 7) as i64),
                endpoint: "https://example.com/cb".into(),
                body,
                raw_at: None,
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
        let i: usize = n.id.0.strip_prefix("evt-").unwrap().parse().unwrap();
        assert_eq!(n.seq, seq_of[i]);
        assert_eq!(n.created_ms, i as i64);
        assert_eq!(n.next_attempt_ms, i as i64);
    }
    assert_eq!(store.body(&nid("evt-1999")).await.unwrap(), Some(body));
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
                    id: format!("w{w}-c{c}").into(),
                    instance_id: InstanceId(w as i64),
                    endpoint: "https://example.com/cb".into(),
                    body: vec![b'y'; 600],
                    raw_at: None,
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
        let listed = store
            .list_notifications(InstanceId(w as i64), 1_000, 0)
            .await
            .unwrap();
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
            .enqueue(vec![note(&format!("n{i}"), InstanceId(1), i)])
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

#[tokio::test]
async fn save_poll_stores_the_notifications_and_the_cursor_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [inst, other] = instances(&store, ["i", "j"]).await;
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);
    store
        .enqueue(vec![note("earlier", inst.id, 1)])
        .await
        .unwrap();

    let first = poll_state(inst.id, "contacts", 1_000, 3);
    let notes = vec![
        note("c1", inst.id, 1_001),
        note("c2", inst.id, 1_002),
        note("c3", inst.id, 1_003),
    ];
    let seqs = store.save_poll(first.clone(), notes.clone()).await.unwrap();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    assert_eq!(
        store.poll_states(inst.id).await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(store.poll_states(other.id).await.unwrap(), vec![]);
    let pending = pending_ids(store.pending().await.unwrap());
    assert_eq!(pending.len(), 4);
    assert_eq!(pending[0].1, "earlier");
    assert_eq!(
        pending[1..],
        [
            (seqs[0], "c1".to_string()),
            (seqs[1], "c2".to_string()),
            (seqs[2], "c3".to_string()),
        ]
    );
    // Stored as enqueue stores them.
    let c2 = store.get_notification(&nid("c2")).await.unwrap().unwrap();
    assert_eq!(c2.state, NotificationState::Pending);
    assert_eq!(
        (c2.instance_id, c2.event_count, c2.created_ms),
        (inst.id, 2, 1_002)
    );
    assert_eq!(
        (c2.delivery, c2.attempts, c2.next_attempt_ms),
        (1, 0, 1_002)
    );
    assert_eq!(
        store.body(&nid("c3")).await.unwrap(),
        Some(notes[2].body.clone())
    );

    // The next poll replaces the resource's state; another resource gets its own row, and
    // states come back ordered by resource name. A long seen list is kept as given.
    let second = poll_state(inst.id, "contacts", 2_000, 5_000);
    let seqs2 = store
        .save_poll(second.clone(), vec![note("c4", inst.id, 2_001)])
        .await
        .unwrap();
    assert_eq!(seqs2.len(), 1);
    assert!(seqs2[0] > seqs[2]);
    let accounts = poll_state(inst.id, "accounts", 1_500, 0);
    assert_eq!(
        store.save_poll(accounts.clone(), vec![]).await.unwrap(),
        Vec::<i64>::new()
    );
    let states = store.poll_states(inst.id).await.unwrap();
    assert_eq!(states, vec![accounts, second.clone()]);
    assert_eq!(states[1].seen.len(), 5_000);
    assert_eq!(
        states[1].seen[4_999],
        ("contacts-4999".to_string(), 2_000 - 4_999)
    );
    assert_eq!(store.pending().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_failed_poll_records_its_error_without_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [inst] = instances(&store, ["i"]).await;

    // The first poll ever fails: no success yet, nothing seen.
    let failed = PollState {
        instance_id: inst.id,
        resource: "contacts".into(),
        last_success_ms: None,
        seen: vec![],
        last_attempt_ms: Some(100),
        last_error: Some("vendor answered 503".into()),
        failures: 1,
        last_events: 0,
        not_before_ms: Some(30_100),
    };
    assert_eq!(
        store.save_poll(failed.clone(), vec![]).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![failed]);
    assert_eq!(store.pending().await.unwrap(), vec![]);

    // A success, then a failure that keeps the cursor and the seen list of the success.
    let ok = poll_state(inst.id, "contacts", 1_000, 2);
    store
        .save_poll(ok.clone(), vec![note("n1", inst.id, 1_000)])
        .await
        .unwrap();
    let mut again = ok.clone();
    again.last_attempt_ms = Some(2_000);
    again.last_error = Some("Retry-After: 120".into());
    again.failures = 1;
    again.not_before_ms = Some(122_000);
    store.save_poll(again.clone(), vec![]).await.unwrap();
    let states = store.poll_states(inst.id).await.unwrap();
    assert_eq!(states, vec![again]);
    assert_eq!(states[0].last_success_ms, Some(1_000));
    assert_eq!(states[0].seen, ok.seen);
    let pending: Vec<String> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id.0)
        .collect();
    assert_eq!(pending, ["n1"]);
}

#[tokio::test]
async fn a_failed_save_poll_stores_neither_the_state_nor_any_notification() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [inst] = instances(&store, ["i"]).await;
    let before = poll_state(inst.id, "contacts", 1_000, 1);
    store
        .save_poll(before.clone(), vec![note("taken", inst.id, 1_000)])
        .await
        .unwrap();
    let pending_before = pending_ids(store.pending().await.unwrap());

    // The last notification's id already exists: the whole call fails.
    let advanced = poll_state(inst.id, "contacts", 2_000, 3);
    let dup = store
        .save_poll(
            advanced.clone(),
            vec![
                note("fresh1", inst.id, 2_000),
                note("fresh2", inst.id, 2_000),
                note("taken", inst.id, 2_000),
            ],
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Database(_))), "{dup:?}");
    assert_eq!(
        store.poll_states(inst.id).await.unwrap(),
        vec![before.clone()]
    );
    assert_eq!(store.get_notification(&nid("fresh1")).await.unwrap(), None);
    assert_eq!(store.get_notification(&nid("fresh2")).await.unwrap(), None);
    assert_eq!(pending_ids(store.pending().await.unwrap()), pending_before);

    // A new resource's first state is not created by a failing call either.
    let dup = store
        .save_poll(
            poll_state(inst.id, "orders", 2_000, 1),
            vec![note("taken", inst.id, 2_000)],
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Database(_))), "{dup:?}");
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![before]);

    // A poll that finishes after its instance was deleted stores nothing.
    assert!(store.delete_instance(inst.id).await.unwrap());
    let late = store
        .save_poll(advanced, vec![note("late", inst.id, 3_000)])
        .await;
    assert!(matches!(late, Err(StoreError::Database(_))), "{late:?}");
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);
    assert_eq!(store.get_notification(&nid("late")).await.unwrap(), None);

    // The same call, retried once the conflict is gone, succeeds.
    let inst2 = store
        .create_instance(new_instance(inst.org_id, "i2"))
        .await
        .unwrap();
    let retried = poll_state(inst2.id, "contacts", 2_000, 3);
    let seqs = store
        .save_poll(
            retried.clone(),
            vec![
                note("fresh1", inst2.id, 2_000),
                note("fresh2", inst2.id, 2_000),
            ],
        )
        .await
        .unwrap();
    assert_eq!(seqs.len(), 2);
    assert_eq!(store.poll_states(inst2.id).await.unwrap(), vec![retried]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_save_polls_fail_only_the_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let [inst] = instances(&store, ["i"]).await;
    store
        .enqueue(vec![note("taken", inst.id, 0)])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = Arc::clone(&store);
        let iid = inst.id;
        tasks.push(tokio::spawn(async move {
            let last = if i == 50 {
                "taken".to_string()
            } else {
                format!("r{i}-b")
            };
            let result = store
                .save_poll(
                    poll_state(iid, &format!("r{i:03}"), 10 + i, 2),
                    vec![note(&format!("r{i}-a"), iid, i), note(&last, iid, i)],
                )
                .await;
            (i, result)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i == 50 {
            assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
            assert_eq!(store.get_notification(&nid("r50-a")).await.unwrap(), None);
        } else {
            assert_eq!(result.unwrap().len(), 2);
        }
    }
    let states = store.poll_states(inst.id).await.unwrap();
    assert_eq!(states.len(), 99);
    assert!(states.iter().all(|s| s.resource != "r050"));
    assert_eq!(store.pending().await.unwrap().len(), 1 + 99 * 2);
}

#[tokio::test]
async fn credentials_round_trip_replace_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [inst, other] = instances(&store, ["i", "j"]).await;
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

    // Replace: every field is taken from the new value, including a dropped refresh token.
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

    // Credentials for an instance that does not exist are refused.
    let unknown = store
        .save_credentials(InstanceId(9_999), Some(creds("x", None, 1)))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Database(_))),
        "{unknown:?}"
    );
    assert_eq!(store.credentials(InstanceId(9_999)).await.unwrap(), None);

    // Debug output never shows the tokens.
    let shown = format!("{:?}", creds("s3cret-access", Some("s3cret-refresh"), 1));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("obtained_ms: 1"), "{shown}");
}

#[tokio::test]
async fn deleting_an_instance_removes_its_poll_states_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [gone, kept] = instances(&store, ["gone", "kept"]).await;
    for inst in [&gone, &kept] {
        for resource in ["accounts", "contacts"] {
            store
                .save_poll(poll_state(inst.id, resource, 10, 2), vec![])
                .await
                .unwrap();
        }
        store
            .save_credentials(inst.id, Some(creds(&format!("t{}", inst.id), None, 1)))
            .await
            .unwrap();
    }
    store
        .save_poll(
            poll_state(gone.id, "orders", 10, 1),
            vec![note("gone-1", gone.id, 10)],
        )
        .await
        .unwrap();
    let kept_polls = store.poll_states(kept.id).await.unwrap();
    let kept_creds = store.credentials(kept.id).await.unwrap();
    assert_eq!(store.poll_states(gone.id).await.unwrap().len(), 3);

    assert!(store.delete_instance(gone.id).await.unwrap());
    assert_eq!(store.poll_states(gone.id).await.unwrap(), vec![]);
    assert_eq!(store.credentials(gone.id).await.unwrap(), None);
    assert_eq!(
        store
            .get_notification(&nid("gone-1"))
            .await
            .unwrap()
            .unwrap()
            .state,
        NotificationState::Dropped
    );
    // The other instance keeps its own.
    assert_eq!(store.poll_states(kept.id).await.unwrap(), kept_polls);
    assert_eq!(store.credentials(kept.id).await.unwrap(), kept_creds);
    // And nothing is left behind in the tables themselves.
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    for table in ["poll_state", "credentials"] {
        let n: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE instance_id = ?1"),
                [gone.id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

/// The schema version 1 wrote, verbatim (the code before poll states and credentials).
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS orgs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    user_secret_sha256 TEXT    NOT NULL,
    org_secret_sha256  TEXT    NOT NULL,
    created_ms         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS orgs_by_secrets ON orgs (user_secret_sha256, org_secret_sha256);

CREATE TABLE IF NOT EXISTS instances (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL,
    element_key   TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    token_sha256  TEXT    NOT NULL,
    tags          TEXT    NOT NULL,
    provider_data TEXT    NOT NULL,
    disabled      INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS config (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    UNIQUE (instance_id, key)
);

-- The body is the last column: the other columns stay on the row's first page, so
-- scans that do not need the body never read its overflow pages.
CREATE TABLE IF NOT EXISTS notifications (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    instance_id     INTEGER NOT NULL,
    endpoint        TEXT    NOT NULL,
    event_count     INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    delivery        INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER,
    body            BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_state ON notifications (state, seq);
CREATE INDEX IF NOT EXISTS notifications_by_instance ON notifications (instance_id, seq);

CREATE TABLE IF NOT EXISTS attempts (
    id              INTEGER PRIMARY KEY,
    notification_id TEXT    NOT NULL,
    delivery        INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    status_code     INTEGER,
    latency_us      INTEGER NOT NULL,
    error           TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_notification ON attempts (notification_id, id);
";

#[tokio::test]
async fn a_version_1_file_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    // A file as the version-1 code left it, with an org, an instance and a notification.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(
            "INSERT INTO orgs (name, user_secret_sha256, org_secret_sha256, created_ms)
                 VALUES ('acme', 'u', 'o', 5);
             INSERT INTO instances (org_id, element_key, name, token_sha256, tags,
                 provider_data, disabled, created_ms, updated_ms)
                 VALUES (1, 'ecwid', 'old', 'tok', '[\"t\"]', '{}', 0, 6, 7);
             INSERT INTO config (instance_id, key, value) VALUES (1, 'k', 'v');
             INSERT INTO notifications (id, instance_id, endpoint, event_count, created_ms,
                 state, delivery, attempts, next_attempt_ms, body)
                 VALUES ('old-n', 1, 'https://example.com/cb', 1, 8, 'pending', 1, 0, 8,
                     x'7b7d');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }

    let (inst, polls, saved) = {
        let store = SqliteStore::open(&path).unwrap();
        // The version-1 data is all there.
        let org = store.find_org(&secrets("u", "o")).await.unwrap().unwrap();
        assert_eq!(
            (org.id, org.name.as_str(), org.created_ms),
            (OrgId(1), "acme", 5)
        );
        let inst = store.get_instance(InstanceId(1)).await.unwrap().unwrap();
        assert_eq!(inst.name, "old");
        assert_eq!(inst.tags, vec!["t".to_string()]);
        assert_eq!(inst.config_value("k"), Some("v"));
        let pending = store.pending().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, "old-n");
        assert_eq!(
            store.body(&nid("old-n")).await.unwrap(),
            Some(b"{}".to_vec())
        );

        // The new tables exist and work.
        assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);
        assert_eq!(store.credentials(inst.id).await.unwrap(), None);
        let state = poll_state(inst.id, "contacts", 100, 2);
        let seqs = store
            .save_poll(state, vec![note("new-n", inst.id, 100)])
            .await
            .unwrap();
        assert!(seqs[0] > pending[0].seq);
        let saved = creds("tok", Some("ref"), 9);
        store
            .save_credentials(inst.id, Some(saved.clone()))
            .await
            .unwrap();
        let polls = store.poll_states(inst.id).await.unwrap();
        assert_eq!(polls.len(), 1);
        // And so do version 3's shared webhook bodies.
        let raw = b"[1]";
        let hooked = store
            .enqueue_webhook(
                intake(5, raw, Some(0)),
                vec![webhook_note("hook-n", inst.id, 101, raw)],
            )
            .await
            .unwrap();
        assert!(hooked.seqs[0].is_some());
        assert_eq!(
            store.body(&nid("hook-n")).await.unwrap(),
            Some(webhook_note("hook-n", inst.id, 101, raw).body)
        );
        (inst, polls, saved)
    };

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    drop(conn);

    // Opening the migrated file again changes nothing.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.get_instance(inst.id).await.unwrap(),
        Some(inst.clone())
    );
    assert_eq!(store.poll_states(inst.id).await.unwrap(), polls);
    assert_eq!(store.credentials(inst.id).await.unwrap(), Some(saved));
    let ids: Vec<String> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id.0)
        .collect();
    assert_eq!(ids, ["old-n", "new-n", "hook-n"]);
    // And deleting the migrated instance cascades to the new tables.
    assert!(store.delete_instance(inst.id).await.unwrap());
    assert_eq!(store.poll_states(inst.id).await.unwrap(), vec![]);
    assert_eq!(store.credentials(inst.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_new_file_gets_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "credentials",
        "instances",
        "notifications",
        "poll_state",
        "webhook_intake",
        "webhook_intake_keys",
        "webhook_intake_merged",
        "webhook_bodies",
        "notification_bodies",
    ] {
        assert!(tables.iter().any(|n| n == t), "{t} missing from {tables:?}");
    }
}

#[tokio::test]
async fn prune_deletes_old_finished_notifications_with_their_attempts_and_never_a_pending_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [inst, gone] = instances(&store, ["i", "gone"]).await;
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
            note("new", inst.id, 200),
        ])
        .await
        .unwrap();
    // One attempt at `at` that leaves the notification in `state`.
    let finish = |id: &'static str, state: NotificationState, at: i64| {
        let store = store.clone();
        async move {
            let status = if state == NotificationState::Delivered {
                200
            } else {
                500
            };
            record(&store, attempt(id, 1, 1, at, Some(status)), state, 0)
                .await
                .unwrap();
        }
    };
    finish("delivered-1", NotificationState::Delivered, 50).await;
    finish("dead", NotificationState::Dead, 50).await;
    finish("delivered-2", NotificationState::Delivered, 50).await;
    // Accepted long ago, but delivered after the cut (a late redelivery).
    finish("redelivered", NotificationState::Delivered, 150).await;
    finish("delivered-3", NotificationState::Delivered, 50).await;
    finish("new", NotificationState::Delivered, 300).await;
    assert!(store.delete_instance(gone.id).await.unwrap());

    // The limit bounds one call; the oldest go first, whatever their state.
    assert_eq!(store.prune(100, 2).await.unwrap(), 2);
    let exists = |id: &'static str| {
        let store = store.clone();
        async move { store.get_notification(&nid(id)).await.unwrap().is_some() }
    };
    assert!(!exists("delivered-1").await && !exists("dead").await);
    assert!(exists("dropped").await && exists("delivered-2").await);
    assert!(
        store
            .attempts(&nid("delivered-1"))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.prune(100, 100).await.unwrap(), 3);
    for id in ["dropped", "delivered-2", "delivered-3"] {
        assert_eq!(
            store.get_notification(&nid(id)).await.unwrap(),
            None,
            "{id}"
        );
        assert!(store.attempts(&nid(id)).await.unwrap().is_empty(), "{id}");
    }
    assert_eq!(store.prune(100, 100).await.unwrap(), 0);
    // Still there: the pending one however old, the one active after the cut, and
    // everything accepted after it.
    let pending = store
        .get_notification(&nid("pending-old"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.state, NotificationState::Pending);
    assert_eq!(store.attempts(&nid("redelivered")).await.unwrap().len(), 1);
    assert_eq!(store.attempts(&nid("new")).await.unwrap().len(), 1);
    assert_eq!(store.pending().await.unwrap().len(), 1);
}

/// A webhook's notification for `instance_id` carrying `raw` as its `message.raw`, the
/// last member of the last member, as the host's envelope has it.
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

/// Rows of a table, read beside the store.
fn count(path: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_webhook_body_is_stored_once_and_every_notification_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let path = dir.path().join("store.db");
    let [a, b] = instances(&store, ["a", "b"]).await;
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
            store.body(&nid(id)).await.unwrap().as_ref(),
            Some(&wanted[i]),
            "{id}"
        );
    }
    assert_eq!(count(&path, "webhook_bodies"), 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (largest, total): (i64, i64) = conn
        .query_row(
            "SELECT MAX(length(body)), SUM(length(body)) FROM notifications",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
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
    assert_eq!(store.get_notification(&nid("bad")).await.unwrap(), None);
}

#[tokio::test]
async fn the_same_webhook_within_the_window_notifies_each_instance_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let [a, b] = instances(&store, ["a", "b"]).await;
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
    assert_eq!(again.duplicates, vec![(a.id, vec![nid("a-1"), nid("a-2")])]);
    assert_eq!(again.seqs[0], None);
    assert!(again.seqs[1].is_some());
    assert_eq!(store.get_notification(&nid("a-3")).await.unwrap(), None);
    assert!(store.get_notification(&nid("b-1")).await.unwrap().is_some());

    // Another digest is another webhook.
    let other = store
        .enqueue_webhook(
            intake(8, raw, Some(0)),
            vec![webhook_note("a-4", a.id, 300, raw)],
        )
        .await
        .unwrap();
    assert_eq!(other.seqs.len(), 1);
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
    assert_eq!(count(&dir.path().join("store.db"), "webhook_bodies"), 1);
    assert_eq!(
        store.body(&nid("a-6")).await.unwrap(),
        Some(webhook_note("a-6", a.id, 400, raw).body)
    );

    // Two identical webhooks at once: one is stored, the other is its duplicate.
    let both = tokio::join!(
        store.enqueue_webhook(
            intake(9, raw, Some(0)),
            vec![webhook_note("c-1", a.id, 500, raw)]
        ),
        store.enqueue_webhook(
            intake(9, raw, Some(0)),
            vec![webhook_note("c-2", a.id, 500, raw)]
        ),
    );
    let (x, y) = (both.0.unwrap(), both.1.unwrap());
    let stored = [&x, &y].iter().filter(|s| s.seqs[0].is_some()).count();
    assert_eq!(stored, 1, "{x:?} {y:?}");
    assert_eq!(x.duplicates.len() + y.duplicates.len(), 1);
}

#[tokio::test]
async fn a_shared_body_is_pruned_with_its_last_notification_never_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let path = dir.path().join("store.db");
    let [a] = instances(&store, ["a"]).await;
    let raw = b"{\"shared\":true}";
    store
        .enqueue_webhook(
            intake(3, raw, Some(0)),
            vec![
                webhook_note("old", a.id, 10, raw),
                webhook_note("young", a.id, 500, raw),
            ],
        )
        .await
        .unwrap();
    for id in ["old", "young"] {
        record(
            &store,
            attempt(id, 1, 1, 20, Some(200)),
            NotificationState::Delivered,
            0,
        )
        .await
        .unwrap();
    }
    // `old` goes; `young` still carries the body, which stays and reads back whole.
    assert_eq!(store.prune(100, 100).await.unwrap(), 1);
    assert_eq!(store.get_notification(&nid("old")).await.unwrap(), None);
    assert_eq!(count(&path, "webhook_bodies"), 1);
    let young = store.body(&nid("young")).await.unwrap().unwrap();
    assert_eq!(young, webhook_note("young", a.id, 500, raw).body);
    // With its last notification, the body goes too.
    assert_eq!(store.prune(1_000, 100).await.unwrap(), 1);
    assert_eq!(count(&path, "webhook_bodies"), 0);
    assert_eq!(count(&path, "notification_bodies"), 0);
}
