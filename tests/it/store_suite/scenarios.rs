//! The scenarios, each written once against the `Store` trait; `mod.rs` runs each on
//! every backend. The side door (`Subject::count`, `scalar`, `execute`) uses only tables
//! and columns both schemas have.

use std::sync::Arc;

use store::{
    AttemptRecord, InstanceId, InstanceUpdate, NewNotification, NotificationState, PollState,
    StoreError, StoredCredentials, WebhookStored,
};

use super::Subject;
pub use super::activity::{
    activity_of_reads_each_instance_s_last_event_backlog_and_dead_letters_and_poll_health,
    attempt_stats_count_each_minute_of_one_instance,
    find_notifications_filters_by_status_time_and_instances,
    redeliver_dead_starts_a_round_for_each_dead_letter_since_a_time_oldest_first,
};
use super::fixtures::{
    attempt, creds, exists, ids, instances, intake, new_instance, nid, note, poll_state, record,
    secrets, seqs_and_ids, state_of, webhook_note,
};

pub async fn orgs_are_created_and_found_by_secret_hashes(s: Subject) {
    assert_eq!(s.count_orgs().await.unwrap(), 0);

    let a = s
        .create_org("acme", &secrets("u1", "o1"), 10)
        .await
        .unwrap();
    let b = s
        .create_org("beta", &secrets("u2", "o2"), 20)
        .await
        .unwrap();
    assert_eq!(a.name, "acme");
    assert_eq!(a.created_ms, 10);
    assert!(b.id > a.id);

    assert_eq!(s.find_org(&secrets("u1", "o1")).await.unwrap(), Some(a));
    assert_eq!(s.find_org(&secrets("u2", "o2")).await.unwrap(), Some(b));
    // Both hashes must match, not just one.
    assert_eq!(s.find_org(&secrets("u1", "o2")).await.unwrap(), None);
    assert_eq!(s.find_org(&secrets("nope", "o1")).await.unwrap(), None);
    assert_eq!(s.count_orgs().await.unwrap(), 2);
}

pub async fn instances_crud_and_config_upsert_keeps_ids(s: Subject) {
    let org = s.create_org("acme", &secrets("u", "o"), 1).await.unwrap();

    let one = s
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
    assert_eq!(s.get_instance(one.id).await.unwrap(), Some(one.clone()));
    assert_eq!(s.get_instance(InstanceId(9_999)).await.unwrap(), None);

    let mut two_new = new_instance(org.id, "two");
    two_new.disabled = true;
    two_new.config = vec![("only".into(), "1".into())];
    let two = s.create_instance(two_new).await.unwrap();
    assert!(two.id > one.id);
    assert!(two.disabled);
    // Entry ids are unique across the store.
    assert!(two.config[0].id > one.config[1].id);

    assert_eq!(
        s.all_instances().await.unwrap(),
        vec![one.clone(), two.clone()]
    );

    // Update: change the name and one key, add a key, leave tags alone.
    let updated = s
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
    assert_eq!(s.get_instance(one.id).await.unwrap(), Some(updated.clone()));

    // Tags only; an empty update keeps everything but updated_ms.
    let retagged = s
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
        s.update_instance(InstanceId(9_999), InstanceUpdate::default())
            .await
            .unwrap(),
        None
    );

    // Delete: the instance and its configuration go away.
    assert!(s.delete_instance(two.id).await.unwrap());
    assert!(!s.delete_instance(two.id).await.unwrap());
    assert_eq!(s.get_instance(two.id).await.unwrap(), None);
    assert_eq!(s.all_instances().await.unwrap(), vec![retagged.clone()]);
    let left = format!(
        "SELECT COUNT(*) FROM config WHERE instance_id = {}",
        two.id.0
    );
    assert_eq!(
        s.scalar(&left).await,
        0,
        "the deleted instance's configuration"
    );
    // Ids are not reused after a delete.
    let three = s
        .create_instance(new_instance(org.id, "three"))
        .await
        .unwrap();
    assert!(three.id > two.id);
    assert!(three.config[0].id > retagged.config[2].id);
}

pub async fn deleting_an_instance_drops_its_pending_notifications_only(s: Subject) {
    let [gone, kept] = instances(&*s, ["gone", "kept"]).await;
    s.enqueue(vec![
        note("p", gone.id, 10),
        note("d", gone.id, 11),
        note("x", gone.id, 12),
        note("late-ok", gone.id, 13),
        note("other", kept.id, 14),
    ])
    .await
    .unwrap();
    let delivered = NotificationState::Delivered;
    record(&*s, attempt("d", 1, 1, 20, Some(200)), delivered, 0)
        .await
        .unwrap();
    let dead = NotificationState::Dead;
    record(&*s, attempt("x", 1, 1, 20, Some(500)), dead, 0)
        .await
        .unwrap();

    assert!(s.delete_instance(gone.id).await.unwrap());
    assert_eq!(state_of(&*s, "p").await, NotificationState::Dropped);
    assert_eq!(state_of(&*s, "late-ok").await, NotificationState::Dropped);
    assert_eq!(state_of(&*s, "d").await, delivered);
    assert_eq!(state_of(&*s, "x").await, dead);
    assert_eq!(state_of(&*s, "other").await, NotificationState::Pending);

    // History is kept: the notifications, their bodies and attempts are still there.
    let listed = s.list_notifications(gone.id, 10, 0).await.unwrap();
    assert_eq!(ids(listed), ["late-ok", "x", "d", "p"]);
    assert!(s.body(&nid("p")).await.unwrap().is_some());
    assert_eq!(s.attempts(&nid("d")).await.unwrap().len(), 1);
    assert_eq!(ids(s.pending().await.unwrap()), ["other"]);

    // An attempt that was in flight during the delete is recorded: a failure does not
    // revive it, a delivery records the delivery.
    let pending = NotificationState::Pending;
    record(&*s, attempt("p", 1, 1, 30, Some(503)), pending, 40)
        .await
        .unwrap();
    let p = s.get_notification(&nid("p")).await.unwrap().unwrap();
    assert_eq!(p.state, NotificationState::Dropped);
    assert_eq!(p.attempts, 1);
    assert_eq!(s.attempts(&nid("p")).await.unwrap().len(), 1);
    record(&*s, attempt("late-ok", 1, 1, 30, Some(200)), delivered, 0)
        .await
        .unwrap();
    let late = s.get_notification(&nid("late-ok")).await.unwrap().unwrap();
    assert_eq!((late.state, late.delivered_ms), (delivered, Some(30)));
}

pub async fn outbox_enqueue_pending_body_and_attempts(s: Subject) {
    let [inst, other] = instances(&*s, ["i", "j"]).await;

    assert_eq!(s.enqueue(vec![]).await.unwrap(), Vec::<i64>::new());
    let seqs = s
        .enqueue(vec![note("n1", inst.id, 100), note("n2", inst.id, 101)])
        .await
        .unwrap();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    let seqs2 = s
        .enqueue(vec![note("o1", other.id, 102), note("n3", inst.id, 103)])
        .await
        .unwrap();
    assert!(seqs[1] < seqs2[0] && seqs2[0] < seqs2[1]);

    let n1 = s.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(n1.seq, seqs[0]);
    assert_eq!(n1.instance_id, inst.id);
    assert_eq!(n1.endpoint, "https://example.com/cb");
    assert_eq!(n1.event_count, 2);
    assert_eq!(n1.created_ms, 100);
    assert_eq!(n1.state, NotificationState::Pending);
    assert_eq!((n1.delivery, n1.attempts), (1, 0));
    assert_eq!(n1.next_attempt_ms, 100);
    assert_eq!(n1.delivered_ms, None);
    assert_eq!(s.get_notification(&nid("missing")).await.unwrap(), None);

    // Bodies come back byte for byte, bytes that are not UTF-8 included.
    assert_eq!(
        s.body(&nid("n2")).await.unwrap().unwrap(),
        note("n2", inst.id, 101).body
    );
    assert_eq!(s.body(&nid("missing")).await.unwrap(), None);

    let pending = s.pending().await.unwrap();
    assert_eq!(pending[0], n1);
    assert_eq!(
        seqs_and_ids(pending),
        vec![
            (seqs[0], "n1".to_string()),
            (seqs[1], "n2".to_string()),
            (seqs2[0], "o1".to_string()),
            (seqs2[1], "n3".to_string()),
        ]
    );

    // A duplicate id fails the whole call and stores nothing of it.
    let dup = s
        .enqueue(vec![note("fresh", inst.id, 104), note("n1", inst.id, 104)])
        .await;
    assert!(matches!(dup, Err(StoreError::Database(_))), "{dup:?}");
    assert_eq!(s.get_notification(&nid("fresh")).await.unwrap(), None);

    // n1: a failed attempt, then success.
    let a1 = attempt("n1", 1, 1, 200, Some(502));
    record(&*s, a1.clone(), NotificationState::Pending, 1_200)
        .await
        .unwrap();
    let after = s.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(after.state, NotificationState::Pending);
    assert_eq!(after.attempts, 1);
    assert_eq!(after.next_attempt_ms, 1_200);
    assert_eq!(after.delivered_ms, None);

    let a2 = attempt("n1", 1, 2, 1_250, Some(204));
    record(&*s, a2.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();
    let delivered = s.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(delivered.state, NotificationState::Delivered);
    assert_eq!(delivered.attempts, 2);
    assert_eq!(delivered.delivered_ms, Some(1_250));
    assert_eq!(s.attempts(&nid("n1")).await.unwrap(), vec![a1, a2]);

    // n2 is dead-lettered.
    record(
        &*s,
        attempt("n2", 1, 1, 300, None),
        NotificationState::Dead,
        0,
    )
    .await
    .unwrap();
    assert_eq!(state_of(&*s, "n2").await, NotificationState::Dead);

    // An attempt of another delivery round is stored but leaves the state alone.
    let other_round = attempt("n3", 7, 1, 400, Some(200));
    record(&*s, other_round.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();
    let n3 = s.get_notification(&nid("n3")).await.unwrap().unwrap();
    assert_eq!(
        (n3.state, n3.attempts, n3.delivered_ms),
        (NotificationState::Pending, 0, None)
    );
    assert_eq!(s.attempts(&nid("n3")).await.unwrap(), vec![other_round]);

    // An attempt for an unknown notification is refused, naming it, and stores nothing.
    let unknown = record(
        &*s,
        attempt("ghost", 1, 1, 1, Some(200)),
        NotificationState::Delivered,
        0,
    )
    .await;
    match unknown {
        Err(StoreError::Database(e)) => assert!(e.contains("ghost"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.attempts(&nid("ghost")).await.unwrap(), vec![]);
    assert_eq!(s.count("attempts").await, 4);

    assert_eq!(ids(s.pending().await.unwrap()), ["o1", "n3"]);
}

pub async fn attempts_recorded_in_one_batch_fail_one_by_one(s: Subject) {
    let [inst] = instances(&*s, ["i"]).await;
    s.enqueue(vec![note("n1", inst.id, 10), note("n2", inst.id, 11)])
        .await
        .unwrap();
    let rec = |a, state, next| AttemptRecord {
        attempt: a,
        new_state: state,
        next_attempt_ms: next,
    };
    let (a1, a2) = (
        attempt("n1", 1, 1, 20, Some(502)),
        attempt("n1", 1, 2, 40, Some(200)),
    );
    let b1 = attempt("n2", 1, 1, 30, Some(204));
    let results = s
        .record_attempts(vec![
            rec(a1.clone(), NotificationState::Pending, 35),
            rec(
                attempt("ghost", 1, 1, 25, Some(200)),
                NotificationState::Delivered,
                0,
            ),
            rec(b1.clone(), NotificationState::Delivered, 0),
            rec(a2.clone(), NotificationState::Delivered, 0),
        ])
        .await;
    // The unknown notification fails alone, naming it; the others are recorded, in order.
    assert_eq!(results.len(), 4);
    assert!(
        results[0].is_ok() && results[2].is_ok() && results[3].is_ok(),
        "{results:?}"
    );
    match &results[1] {
        Err(StoreError::Database(e)) => assert!(e.contains("ghost"), "{e}"),
        other => panic!("{other:?}"),
    }
    let n1 = s.get_notification(&nid("n1")).await.unwrap().unwrap();
    assert_eq!(
        (n1.state, n1.attempts, n1.delivered_ms),
        (NotificationState::Delivered, 2, Some(40))
    );
    assert_eq!(s.attempts(&nid("n1")).await.unwrap(), vec![a1, a2]);
    assert_eq!(s.attempts(&nid("n2")).await.unwrap(), vec![b1]);
    assert_eq!(state_of(&*s, "n2").await, NotificationState::Delivered);
    assert_eq!(s.count("attempts").await, 3);
    assert_eq!(s.pending().await.unwrap(), vec![]);
}

pub async fn list_attempts_redeliver_and_counts_by_state(s: Subject) {
    let [inst, other] = instances(&*s, ["i", "j"]).await;
    assert_eq!(s.count_by_state().await.unwrap(), vec![]);
    let seqs = s
        .enqueue(vec![
            note("n1", inst.id, 10),
            note("n2", inst.id, 11),
            note("o1", other.id, 12),
            note("n3", inst.id, 13),
        ])
        .await
        .unwrap();

    // Listing: newest first, per instance, with limit and offset.
    let list = |id: InstanceId, limit: u32, offset: u32| {
        let store = Arc::clone(&s.store);
        async move { ids(store.list_notifications(id, limit, offset).await.unwrap()) }
    };
    assert_eq!(list(inst.id, 10, 0).await, ["n3", "n2", "n1"]);
    assert_eq!(list(inst.id, 1, 1).await, ["n2"]);
    assert_eq!(list(inst.id, 10, 3).await, Vec::<String>::new());
    assert_eq!(list(other.id, 10, 0).await, ["o1"]);
    assert_eq!(
        s.list_notifications(inst.id, 1, 0).await.unwrap(),
        vec![s.get_notification(&nid("n3")).await.unwrap().unwrap()]
    );

    // Attempts, oldest first, exactly as recorded; none for a notification without any
    // or an unknown one.
    let a1 = attempt("n1", 1, 1, 200, Some(502));
    let a2 = attempt("n1", 1, 2, 1_250, Some(204));
    let a3 = attempt("n2", 1, 1, 300, None);
    record(&*s, a1.clone(), NotificationState::Pending, 1_200)
        .await
        .unwrap();
    record(&*s, a2.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();
    record(&*s, a3.clone(), NotificationState::Dead, 0)
        .await
        .unwrap();
    assert_eq!(s.attempts(&nid("n1")).await.unwrap(), vec![a1, a2]);
    assert_eq!(s.attempts(&nid("n2")).await.unwrap(), vec![a3.clone()]);
    assert_eq!(s.attempts(&nid("n3")).await.unwrap(), vec![]);
    assert_eq!(s.attempts(&nid("missing")).await.unwrap(), vec![]);

    // Redeliver a dead one: a new round, pending, due now; the same seq.
    let again = s.redeliver(&nid("n2"), 5_000).await.unwrap().unwrap();
    assert_eq!(again.state, NotificationState::Pending);
    assert_eq!((again.delivery, again.attempts), (2, 0));
    assert_eq!((again.next_attempt_ms, again.seq), (5_000, seqs[1]));
    assert_eq!(s.get_notification(&nid("n2")).await.unwrap(), Some(again));
    assert_eq!(s.redeliver(&nid("missing"), 5_000).await.unwrap(), None);
    // A late attempt of round 1 is kept but does not end round 2.
    let late = attempt("n2", 1, 2, 5_001, Some(200));
    record(&*s, late.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();
    let n2 = s.get_notification(&nid("n2")).await.unwrap().unwrap();
    assert_eq!((n2.state, n2.delivery), (NotificationState::Pending, 2));
    let a4 = attempt("n2", 2, 1, 5_002, Some(200));
    record(&*s, a4.clone(), NotificationState::Delivered, 0)
        .await
        .unwrap();
    assert_eq!(s.attempts(&nid("n2")).await.unwrap(), vec![a3, late, a4]);
    let n2 = s.get_notification(&nid("n2")).await.unwrap().unwrap();
    assert_eq!(
        (n2.state, n2.delivered_ms),
        (NotificationState::Delivered, Some(5_002))
    );

    // Counts: only the states that have notifications.
    assert!(s.delete_instance(other.id).await.unwrap());
    let mut counts = s.count_by_state().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        counts,
        vec![
            (NotificationState::Delivered, 2),
            (NotificationState::Dropped, 1),
            (NotificationState::Pending, 1),
        ]
    );
    assert_eq!(ids(s.pending().await.unwrap()), ["n3"]);
}

pub async fn a_failing_write_fails_only_its_caller(s: Subject) {
    s.enqueue(vec![note("taken", InstanceId(1), 0)])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&s.store);
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
            assert!(exists(&*s, &format!("n{i}")).await, "n{i}");
        }
    }
    assert_eq!(s.pending().await.unwrap().len(), 200);
}

pub async fn everything_survives_a_reopen(s: Subject) {
    let org = s.create_org("acme", &secrets("u", "o"), 7).await.unwrap();
    let inst = s.create_instance(new_instance(org.id, "i")).await.unwrap();
    let inst = s
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
    s.enqueue(vec![note("a", inst.id, 1), note("b", inst.id, 2)])
        .await
        .unwrap();
    let delivered = NotificationState::Delivered;
    record(&*s, attempt("a", 1, 1, 3, Some(200)), delivered, 0)
        .await
        .unwrap();
    let mut failed = poll_state(inst.id, "orders", 40, 0);
    failed.last_success_ms = None;
    failed.last_error = Some("HTTP 429".into());
    failed.failures = 1;
    failed.not_before_ms = Some(60);
    s.save_poll(failed, vec![]).await.unwrap();
    s.save_poll(
        poll_state(inst.id, "contacts", 50, 3),
        vec![note("p1", inst.id, 50)],
    )
    .await
    .unwrap();
    let raw = b"{\"hook\":1}";
    s.enqueue_webhook(
        intake(4, raw, Some(0)),
        vec![
            webhook_note("w1", inst.id, 60, raw),
            webhook_note("w2", inst.id, 60, raw),
        ],
    )
    .await
    .unwrap();
    s.save_credentials(inst.id, Some(creds("tok", Some("ref"), 5)))
        .await
        .unwrap();
    let notes = s.list_notifications(inst.id, 10, 0).await.unwrap();
    let attempts = s.attempts(&nid("a")).await.unwrap();
    let counts = s.count_by_state().await.unwrap();
    let polls = s.poll_states(inst.id).await.unwrap();
    assert_eq!(polls.len(), 2);
    let saved_creds = s.credentials(inst.id).await.unwrap().unwrap();

    let s = s.reopen().await;
    assert_eq!(
        s.find_org(&secrets("u", "o")).await.unwrap(),
        Some(org.clone())
    );
    assert_eq!(s.count_orgs().await.unwrap(), 1);
    assert_eq!(s.all_instances().await.unwrap(), vec![inst.clone()]);
    assert_eq!(s.list_notifications(inst.id, 10, 0).await.unwrap(), notes);
    assert_eq!(s.attempts(&nid("a")).await.unwrap(), attempts);
    assert_eq!(s.count_by_state().await.unwrap(), counts);
    assert_eq!(
        s.body(&nid("b")).await.unwrap(),
        Some(note("b", inst.id, 2).body)
    );
    assert_eq!(
        s.body(&nid("w2")).await.unwrap(),
        Some(webhook_note("w2", inst.id, 60, raw).body)
    );
    assert_eq!(s.poll_states(inst.id).await.unwrap(), polls);
    assert_eq!(s.credentials(inst.id).await.unwrap(), Some(saved_creds));
    let pending = s.pending().await.unwrap();
    let last = pending.last().unwrap().seq;
    assert_eq!(ids(pending), ["b", "p1", "w1", "w2"]);
    // The same webhook is still a duplicate after the reopen.
    let again = s
        .enqueue_webhook(
            intake(4, raw, Some(0)),
            vec![webhook_note("w3", inst.id, 70, raw)],
        )
        .await
        .unwrap();
    assert_eq!(
        again.duplicates,
        vec![(inst.id, vec![nid("w1"), nid("w2")])]
    );
    // New rows continue after the old ones.
    let seq = s.enqueue(vec![note("c", inst.id, 9)]).await.unwrap();
    assert!(seq[0] > last);
    let next = s.create_instance(new_instance(org.id, "j")).await.unwrap();
    assert!(next.id > inst.id);
}

pub async fn save_poll_stores_the_notifications_and_the_cursor_together(s: Subject) {
    let [inst, other] = instances(&*s, ["i", "j"]).await;
    assert_eq!(s.poll_states(inst.id).await.unwrap(), vec![]);
    s.enqueue(vec![note("earlier", inst.id, 1)]).await.unwrap();

    let first = poll_state(inst.id, "contacts", 1_000, 3);
    let notes = vec![
        note("c1", inst.id, 1_001),
        note("c2", inst.id, 1_002),
        note("c3", inst.id, 1_003),
    ];
    let seqs = s.save_poll(first.clone(), notes.clone()).await.unwrap();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    assert_eq!(s.poll_states(inst.id).await.unwrap(), vec![first.clone()]);
    assert_eq!(s.poll_states(other.id).await.unwrap(), vec![]);
    let pending = seqs_and_ids(s.pending().await.unwrap());
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
    let c2 = s.get_notification(&nid("c2")).await.unwrap().unwrap();
    assert_eq!(c2.state, NotificationState::Pending);
    assert_eq!(
        (c2.seq, c2.instance_id, c2.event_count, c2.created_ms),
        (seqs[1], inst.id, 2, 1_002)
    );
    assert_eq!(
        (c2.delivery, c2.attempts, c2.next_attempt_ms),
        (1, 0, 1_002)
    );
    assert_eq!(
        s.body(&nid("c3")).await.unwrap(),
        Some(notes[2].body.clone())
    );

    // The next poll replaces the resource's state; another resource gets its own row, and
    // states come back ordered by resource name. A long seen list is kept as given.
    let second = poll_state(inst.id, "contacts", 2_000, 5_000);
    let seqs2 = s
        .save_poll(second.clone(), vec![note("c4", inst.id, 2_001)])
        .await
        .unwrap();
    assert_eq!(seqs2.len(), 1);
    assert!(seqs2[0] > seqs[2]);
    let accounts = poll_state(inst.id, "accounts", 1_500, 0);
    assert_eq!(
        s.save_poll(accounts.clone(), vec![]).await.unwrap(),
        Vec::<i64>::new()
    );
    let states = s.poll_states(inst.id).await.unwrap();
    assert_eq!(states, vec![accounts, second.clone()]);
    assert_eq!(states[1].seen.len(), 5_000);
    assert_eq!(
        states[1].seen[4_999],
        ("contacts-4999".to_string(), 2_000 - 4_999)
    );
    assert_eq!(s.pending().await.unwrap().len(), 5);
}

pub async fn a_failed_poll_records_its_error_without_notifications(s: Subject) {
    let [inst] = instances(&*s, ["i"]).await;

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
        s.save_poll(failed.clone(), vec![]).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(s.poll_states(inst.id).await.unwrap(), vec![failed]);
    assert_eq!(s.pending().await.unwrap(), vec![]);

    // A success, then a failure that keeps the cursor and the seen list of the success.
    let ok = poll_state(inst.id, "contacts", 1_000, 2);
    s.save_poll(ok.clone(), vec![note("n1", inst.id, 1_000)])
        .await
        .unwrap();
    let mut again = ok.clone();
    again.last_attempt_ms = Some(2_000);
    again.last_error = Some("Retry-After: 120".into());
    again.failures = 1;
    again.not_before_ms = Some(122_000);
    s.save_poll(again.clone(), vec![]).await.unwrap();
    let states = s.poll_states(inst.id).await.unwrap();
    assert_eq!(states, vec![again]);
    assert_eq!(states[0].last_success_ms, Some(1_000));
    assert_eq!(states[0].seen, ok.seen);
    assert_eq!(ids(s.pending().await.unwrap()), ["n1"]);
}

pub async fn a_failed_save_poll_stores_neither_the_state_nor_any_notification(s: Subject) {
    let [inst] = instances(&*s, ["i"]).await;
    let before = poll_state(inst.id, "contacts", 1_000, 1);
    s.save_poll(before.clone(), vec![note("taken", inst.id, 1_000)])
        .await
        .unwrap();
    let pending_before = seqs_and_ids(s.pending().await.unwrap());

    // The last notification's id already exists: the whole call fails.
    let advanced = poll_state(inst.id, "contacts", 2_000, 3);
    let dup = s
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
    assert_eq!(s.poll_states(inst.id).await.unwrap(), vec![before.clone()]);
    assert!(!exists(&*s, "fresh1").await && !exists(&*s, "fresh2").await);
    assert_eq!(seqs_and_ids(s.pending().await.unwrap()), pending_before);

    // A new resource's first state is not created by a failing call either.
    let dup = s
        .save_poll(
            poll_state(inst.id, "orders", 2_000, 1),
            vec![note("taken", inst.id, 2_000)],
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Database(_))), "{dup:?}");
    assert_eq!(s.poll_states(inst.id).await.unwrap(), vec![before]);

    // A poll of an instance that never existed stores nothing, not even its notifications
    // (the state is written after them, in the same transaction).
    let orphan = s
        .save_poll(
            poll_state(InstanceId(9_999), "contacts", 1, 0),
            vec![note("orphan", InstanceId(9_999), 1)],
        )
        .await;
    assert!(matches!(orphan, Err(StoreError::Database(_))), "{orphan:?}");
    assert!(!exists(&*s, "orphan").await);

    // Nor does a poll that finishes after its instance was deleted.
    assert!(s.delete_instance(inst.id).await.unwrap());
    let late = s
        .save_poll(advanced, vec![note("late", inst.id, 3_000)])
        .await;
    assert!(matches!(late, Err(StoreError::Database(_))), "{late:?}");
    assert_eq!(s.poll_states(inst.id).await.unwrap(), vec![]);
    assert!(!exists(&*s, "late").await);

    // The same call, retried once the conflict is gone, succeeds.
    let inst2 = s
        .create_instance(new_instance(inst.org_id, "i2"))
        .await
        .unwrap();
    let retried = poll_state(inst2.id, "contacts", 2_000, 3);
    let seqs = s
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
    assert_eq!(s.poll_states(inst2.id).await.unwrap(), vec![retried]);
}

pub async fn a_corrupt_seen_list_is_reported_naming_the_instance_and_the_resource(s: Subject) {
    let [inst] = instances(&*s, ["i"]).await;
    s.save_poll(poll_state(inst.id, "deals", 1, 1), vec![])
        .await
        .unwrap();
    s.execute("UPDATE poll_state SET seen = 'not json'").await;
    let err = s.poll_states(inst.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("\"deals\""), "{text}");
    assert!(text.contains(&format!("instance {}", inst.id)), "{text}");
}

pub async fn concurrent_save_polls_fail_only_the_failing_one(s: Subject) {
    let [inst] = instances(&*s, ["i"]).await;
    s.enqueue(vec![note("taken", inst.id, 0)]).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = Arc::clone(&s.store);
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
            assert!(!exists(&*s, "r50-a").await);
        } else {
            assert_eq!(result.unwrap().len(), 2);
        }
    }
    let states = s.poll_states(inst.id).await.unwrap();
    assert_eq!(states.len(), 99);
    assert!(states.iter().all(|s| s.resource != "r050"));
    assert_eq!(s.pending().await.unwrap().len(), 1 + 99 * 2);
}

pub async fn credentials_round_trip_replace_and_remove(s: Subject) {
    let [inst, other] = instances(&*s, ["i", "j"]).await;
    assert_eq!(s.credentials(inst.id).await.unwrap(), None);

    let first = creds("access-1", Some("refresh-1"), 100);
    s.save_credentials(inst.id, Some(first.clone()))
        .await
        .unwrap();
    let key_only = StoredCredentials {
        access_token: "api-key".into(),
        refresh_token: None,
        expires_at_ms: None,
        obtained_ms: 7,
        origin: None,
    };
    s.save_credentials(other.id, Some(key_only.clone()))
        .await
        .unwrap();
    assert_eq!(s.credentials(inst.id).await.unwrap(), Some(first));
    assert_eq!(
        s.credentials(other.id).await.unwrap(),
        Some(key_only.clone())
    );

    // Replace: every field is taken from the new value, the origin and a dropped refresh
    // token included.
    let second = StoredCredentials {
        access_token: "access-2".into(),
        refresh_token: None,
        expires_at_ms: None,
        obtained_ms: 200,
        origin: Some("base.url=https://other.example:443".into()),
    };
    s.save_credentials(inst.id, Some(second.clone()))
        .await
        .unwrap();
    assert_eq!(s.credentials(inst.id).await.unwrap(), Some(second));

    // Remove, twice (the second is a no-op), and for an unknown instance.
    s.save_credentials(inst.id, None).await.unwrap();
    assert_eq!(s.credentials(inst.id).await.unwrap(), None);
    s.save_credentials(inst.id, None).await.unwrap();
    s.save_credentials(InstanceId(9_999), None).await.unwrap();
    assert_eq!(s.credentials(other.id).await.unwrap(), Some(key_only));

    // Credentials for an instance that does not exist are refused.
    let unknown = s
        .save_credentials(InstanceId(9_999), Some(creds("x", None, 1)))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Database(_))),
        "{unknown:?}"
    );
    assert_eq!(s.credentials(InstanceId(9_999)).await.unwrap(), None);

    // Debug output never shows the tokens.
    let shown = format!("{:?}", creds("s3cret-access", Some("s3cret-refresh"), 1));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("obtained_ms: 1"), "{shown}");
}

pub async fn deleting_an_instance_removes_its_poll_states_and_credentials(s: Subject) {
    let [gone, kept] = instances(&*s, ["gone", "kept"]).await;
    for inst in [&gone, &kept] {
        for resource in ["accounts", "contacts"] {
            s.save_poll(poll_state(inst.id, resource, 10, 2), vec![])
                .await
                .unwrap();
        }
        s.save_credentials(inst.id, Some(creds(&format!("t{}", inst.id), None, 1)))
            .await
            .unwrap();
    }
    s.save_poll(
        poll_state(gone.id, "orders", 10, 1),
        vec![note("gone-1", gone.id, 10)],
    )
    .await
    .unwrap();
    let kept_polls = s.poll_states(kept.id).await.unwrap();
    let kept_creds = s.credentials(kept.id).await.unwrap();
    assert_eq!(s.poll_states(gone.id).await.unwrap().len(), 3);

    assert!(s.delete_instance(gone.id).await.unwrap());
    assert_eq!(s.poll_states(gone.id).await.unwrap(), vec![]);
    assert_eq!(s.credentials(gone.id).await.unwrap(), None);
    assert_eq!(state_of(&*s, "gone-1").await, NotificationState::Dropped);
    // The other instance keeps its own.
    assert_eq!(s.poll_states(kept.id).await.unwrap(), kept_polls);
    assert_eq!(s.credentials(kept.id).await.unwrap(), kept_creds);
    // And nothing is left behind in the tables themselves.
    for table in ["poll_state", "credentials"] {
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE instance_id = {}",
            gone.id.0
        );
        assert_eq!(s.scalar(&sql).await, 0, "{table}");
    }
}

pub async fn prune_deletes_old_finished_notifications_with_their_attempts_and_never_a_pending_one(
    s: Subject,
) {
    let [inst, gone] = instances(&*s, ["i", "gone"]).await;
    // Accepted at 10..=17; `new` after the cut at 100.
    s.enqueue(vec![
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
        let store = Arc::clone(&s.store);
        async move {
            let status = if state == NotificationState::Delivered {
                200
            } else {
                500
            };
            record(&*store, attempt(id, 1, 1, at, Some(status)), state, 0)
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
    // Accepted long ago, dead-lettered by an attempt after the cut.
    finish("late-dead", NotificationState::Dead, 150).await;
    finish("new", NotificationState::Delivered, 300).await;
    assert!(s.delete_instance(gone.id).await.unwrap());

    // The limit bounds one call; the oldest go first, whatever their state.
    assert_eq!(s.prune(100, 2).await.unwrap(), 2);
    assert!(!exists(&*s, "delivered-1").await && !exists(&*s, "dead").await);
    assert!(exists(&*s, "dropped").await && exists(&*s, "delivered-2").await);
    assert!(s.attempts(&nid("delivered-1")).await.unwrap().is_empty());

    assert_eq!(s.prune(100, 100).await.unwrap(), 3);
    for id in ["dropped", "delivered-2", "delivered-3"] {
        assert!(!exists(&*s, id).await, "{id}");
        assert!(s.attempts(&nid(id)).await.unwrap().is_empty(), "{id}");
    }
    assert_eq!(s.prune(100, 100).await.unwrap(), 0);
    // Still there: the pending one however old, the ones active after the cut, and
    // everything accepted after it.
    assert_eq!(ids(s.pending().await.unwrap()), ["pending-old"]);
    for id in ["redelivered", "late-dead", "new"] {
        assert_eq!(s.attempts(&nid(id)).await.unwrap().len(), 1, "{id}");
    }
    assert_eq!(s.count("attempts").await, 3);
}

pub async fn prune_never_deletes_a_notification_accepted_after_the_cut_whatever_its_seq(
    s: Subject,
) {
    // The clock stepped back between two acceptances: `ahead` has the lower seq but was
    // accepted after the cut (and, the clock stepping back again, delivered before it).
    // The trait lets a backend keep `behind` (SQLite stops its scan at `ahead`) or delete
    // it (PostgreSQL checks each row); it never lets one delete `ahead`.
    let [inst] = instances(&*s, ["i"]).await;
    s.enqueue(vec![
        note("ahead", inst.id, 500),
        note("behind", inst.id, 10),
    ])
    .await
    .unwrap();
    let delivered = NotificationState::Delivered;
    record(&*s, attempt("ahead", 1, 1, 50, Some(200)), delivered, 0)
        .await
        .unwrap();
    record(&*s, attempt("behind", 1, 1, 20, Some(200)), delivered, 0)
        .await
        .unwrap();
    let pruned = s.prune(100, 100).await.unwrap();
    assert!(exists(&*s, "ahead").await);
    assert_eq!(pruned, u64::from(!exists(&*s, "behind").await));
}

pub async fn a_webhook_body_is_stored_once_and_every_notification_reads_back_whole(s: Subject) {
    let [a, b] = instances(&*s, ["a", "b"]).await;
    let raw = format!("{{\"pad\":\"{}\"}}", "x".repeat(200_000)).into_bytes();
    let notes: Vec<NewNotification> = (0..5)
        .map(|i| webhook_note(&format!("a{i}"), a.id, 10, &raw))
        .chain([webhook_note("b0", b.id, 10, &raw)])
        .collect();
    let wanted: Vec<Vec<u8>> = notes.iter().map(|n| n.body.clone()).collect();
    let stored = s
        .enqueue_webhook(intake(1, &raw, Some(0)), notes)
        .await
        .unwrap();
    assert_eq!(stored.seqs.len(), 6);
    assert!(stored.seqs.iter().all(Option::is_some));
    assert!(stored.duplicates.is_empty());
    for (i, id) in ["a0", "a1", "a2", "a3", "a4", "b0"].iter().enumerate() {
        assert_eq!(
            s.body(&nid(id)).await.unwrap().as_ref(),
            Some(&wanted[i]),
            "{id}"
        );
    }
    assert_eq!(s.count("webhook_bodies").await, 1);
    // Two runs: a0..a4 and b0.
    assert_eq!(s.count("webhook_intake").await, 2);
    let largest = s
        .scalar("SELECT CAST(MAX(length(body)) AS BIGINT) FROM notifications")
        .await;
    assert!(
        largest < 100,
        "each envelope is stored without the body: {largest}"
    );
    let total = s
        .scalar("SELECT CAST(SUM(length(body)) AS BIGINT) FROM notifications")
        .await;
    assert!(total < 600, "{total}");

    // A notification that does not carry the body where it says is refused, whole.
    let mut bad = webhook_note("bad", a.id, 11, &raw);
    bad.raw_at = Some(3);
    let refused = s.enqueue_webhook(intake(2, &raw, None), vec![bad]).await;
    assert!(
        matches!(refused, Err(StoreError::Database(_))),
        "{refused:?}"
    );
    assert!(!exists(&*s, "bad").await);
    // An empty webhook stores nothing.
    assert_eq!(
        s.enqueue_webhook(intake(2, &raw, Some(0)), vec![])
            .await
            .unwrap(),
        WebhookStored::default()
    );
}

pub async fn the_same_webhook_within_the_window_notifies_each_instance_once(s: Subject) {
    let [a, b] = instances(&*s, ["a", "b"]).await;
    let raw = b"{\"n\":1}";
    let first = s
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
    let again = s
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
    assert!(!exists(&*s, "a-3").await);
    assert!(exists(&*s, "b-1").await);

    // Another digest is another webhook.
    let other = s
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
        let later = s
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
    assert_eq!(s.count("webhook_bodies").await, 1);
    assert_eq!(
        s.body(&nid("a-6")).await.unwrap(),
        Some(webhook_note("a-6", a.id, 400, raw).body)
    );

    // Two identical webhooks at once: one is stored, the other is its duplicate.
    let both = tokio::join!(
        s.enqueue_webhook(
            intake(9, raw, Some(0)),
            vec![webhook_note("c-1", a.id, 500, raw)]
        ),
        s.enqueue_webhook(
            intake(9, raw, Some(0)),
            vec![webhook_note("c-2", a.id, 500, raw)]
        ),
    );
    let (x, y) = (both.0.unwrap(), both.1.unwrap());
    let stored = [&x, &y].iter().filter(|s| s.seqs[0].is_some()).count();
    assert_eq!(stored, 1, "{x:?} {y:?}");
    assert_eq!(x.duplicates.len() + y.duplicates.len(), 1);
}

pub async fn prune_deletes_a_shared_body_and_its_intake_run_with_their_last_notification(
    s: Subject,
) {
    let [inst] = instances(&*s, ["i"]).await;
    let raw = b"{\"shared\":true}";
    s.enqueue_webhook(
        intake(3, raw, Some(0)),
        vec![
            webhook_note("w1", inst.id, 10, raw),
            webhook_note("w2", inst.id, 11, raw),
            webhook_note("w3", inst.id, 50, raw),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.count("notification_bodies").await, 3);
    for (id, at) in [("w1", 20), ("w2", 20), ("w3", 60)] {
        let delivered = NotificationState::Delivered;
        record(&*s, attempt(id, 1, 1, at, Some(200)), delivered, 0)
            .await
            .unwrap();
    }

    // w1 and w2 go; w3 still carries the body, which stays and reads back whole, and the
    // run is kept: the same webhook is still a duplicate.
    assert_eq!(s.prune(30, 100).await.unwrap(), 2);
    assert!(!exists(&*s, "w1").await && !exists(&*s, "w2").await);
    assert_eq!(s.count("webhook_bodies").await, 1);
    assert_eq!(s.count("webhook_intake").await, 1);
    assert_eq!(s.count("notification_bodies").await, 1);
    assert_eq!(
        s.body(&nid("w3")).await.unwrap(),
        Some(webhook_note("w3", inst.id, 50, raw).body)
    );
    let again = s
        .enqueue_webhook(
            intake(3, raw, Some(0)),
            vec![webhook_note("w4", inst.id, 70, raw)],
        )
        .await
        .unwrap();
    assert_eq!(again.duplicates, vec![(inst.id, vec![nid("w3")])]);

    // With its last notification, the body and the run go too, and the webhook is new
    // again.
    assert_eq!(s.prune(100, 100).await.unwrap(), 1);
    assert_eq!(s.count("webhook_bodies").await, 0);
    assert_eq!(s.count("webhook_intake").await, 0);
    assert_eq!(s.count("notification_bodies").await, 0);
    let new = s
        .enqueue_webhook(
            intake(3, raw, Some(0)),
            vec![webhook_note("w5", inst.id, 200, raw)],
        )
        .await
        .unwrap();
    assert!(new.duplicates.is_empty() && new.seqs[0].is_some());
}
