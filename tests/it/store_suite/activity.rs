//! The scenarios of what the console reads: filtered listings across instances, the bulk
//! redelivery of dead letters, per-minute attempt statistics and each instance's activity.

use std::collections::HashMap;

use store::{
    Activity, Attempt, MinuteStats, NotificationFilter, NotificationState, NotificationStatus,
};

use super::Subject;
use super::fixtures::{attempt, ids, instances, nid, note, poll_state, record, state_of};

/// Records one failed attempt that dead-letters each of `ids`.
async fn dead_letter(s: &Subject, ids: &[&str]) {
    for id in ids {
        record(
            &**s,
            attempt(id, 1, 1, 100, Some(500)),
            NotificationState::Dead,
            0,
        )
        .await
        .unwrap();
    }
}

pub async fn find_notifications_filters_by_status_time_and_instances(s: Subject) {
    let [i, j, k] = instances(&*s, ["i", "j", "k"]).await;
    s.enqueue(vec![
        note("n1", i.id, 10),
        note("n2", i.id, 20),
        note("o1", j.id, 25),
        note("n3", i.id, 30),
        note("n4", i.id, 40),
        note("k1", k.id, 35),
    ])
    .await
    .unwrap();
    // n1 delivered, n2 tried and waiting, n3 and o1 dead, n4 new, k1 dropped.
    record(
        &*s,
        attempt("n1", 1, 1, 100, Some(200)),
        NotificationState::Delivered,
        0,
    )
    .await
    .unwrap();
    record(
        &*s,
        attempt("n2", 1, 1, 100, Some(503)),
        NotificationState::Pending,
        900,
    )
    .await
    .unwrap();
    dead_letter(&s, &["n3", "o1"]).await;
    assert!(s.delete_instance(k.id).await.unwrap());

    let find = |instances: Vec<store::InstanceId>, filter: NotificationFilter, limit, offset| {
        let store = std::sync::Arc::clone(&s.store);
        async move {
            ids(store
                .find_notifications(&instances, &filter, limit, offset)
                .await
                .unwrap())
        }
    };
    let statuses = |statuses: &[NotificationStatus]| NotificationFilter {
        statuses: statuses.to_vec(),
        ..NotificationFilter::default()
    };
    let between = |since: Option<i64>, until: Option<i64>| NotificationFilter {
        since,
        until,
        ..NotificationFilter::default()
    };
    use NotificationStatus::*;

    // No filter: every notification of the instance, newest first, as list_notifications.
    let all = find(vec![i.id], NotificationFilter::default(), 10, 0).await;
    assert_eq!(all, ["n4", "n3", "n2", "n1"]);
    assert_eq!(ids(s.list_notifications(i.id, 10, 0).await.unwrap()), all);
    // Each status alone, and two together.
    for (status, expected) in [
        (New, vec!["n4"]),
        (Dispatched, vec!["n2"]),
        (Notified, vec!["n1"]),
        (Failed, vec!["n3"]),
        (Dropped, vec![]),
    ] {
        assert_eq!(
            find(vec![i.id], statuses(&[status]), 10, 0).await,
            expected,
            "{status:?}"
        );
    }
    assert_eq!(
        find(vec![i.id], statuses(&[Failed, New]), 10, 0).await,
        ["n4", "n3"]
    );
    assert_eq!(find(vec![k.id], statuses(&[Dropped]), 10, 0).await, ["k1"]);
    // Times: since inclusive, until exclusive.
    assert_eq!(
        find(vec![i.id], between(Some(20), None), 10, 0).await,
        ["n4", "n3", "n2"]
    );
    assert_eq!(
        find(vec![i.id], between(None, Some(30)), 10, 0).await,
        ["n2", "n1"]
    );
    assert_eq!(
        find(vec![i.id], between(Some(20), Some(30)), 10, 0).await,
        ["n2"]
    );
    assert_eq!(
        find(vec![i.id], between(Some(30), Some(30)), 10, 0).await,
        Vec::<String>::new()
    );
    // Several instances, merged newest first, with the filter, a limit and an offset.
    let dead_since = |since| NotificationFilter {
        statuses: vec![Failed],
        since,
        until: None,
    };
    assert_eq!(
        find(vec![i.id, j.id], dead_since(None), 10, 0).await,
        ["n3", "o1"]
    );
    assert_eq!(
        find(vec![i.id, j.id], dead_since(Some(26)), 10, 0).await,
        ["n3"]
    );
    assert_eq!(
        find(vec![i.id, j.id, k.id], NotificationFilter::default(), 2, 1).await,
        ["n4", "n3"],
        "k1 then n4 then n3: the second and third"
    );
    assert_eq!(
        find(vec![], NotificationFilter::default(), 10, 0).await,
        Vec::<String>::new()
    );
}

pub async fn redeliver_dead_starts_a_round_for_each_dead_letter_since_a_time_oldest_first(
    s: Subject,
) {
    let [i, j] = instances(&*s, ["i", "j"]).await;
    s.enqueue(vec![
        note("d1", i.id, 10),
        note("p1", i.id, 15),
        note("d2", i.id, 20),
        note("x1", j.id, 22),
        note("d3", i.id, 30),
        note("d4", i.id, 40),
    ])
    .await
    .unwrap();
    dead_letter(&s, &["d1", "d2", "x1", "d3", "d4"]).await;
    record(
        &*s,
        attempt("p1", 1, 1, 100, Some(200)),
        NotificationState::Delivered,
        0,
    )
    .await
    .unwrap();

    // Since 20, two at a time: d2 and d3 first, oldest first; d4 remains.
    let first = s.redeliver_dead(i.id, Some(20), 2, 5_000).await.unwrap();
    assert_eq!(ids(first.notifications.clone()), ["d2", "d3"]);
    assert!(first.more);
    for n in &first.notifications {
        assert_eq!(n.state, NotificationState::Pending);
        assert_eq!((n.delivery, n.attempts, n.next_attempt_ms), (2, 0, 5_000));
        assert_eq!(
            s.get_notification(&n.id).await.unwrap().as_ref(),
            Some(n),
            "stored as returned"
        );
    }
    let second = s.redeliver_dead(i.id, Some(20), 2, 5_000).await.unwrap();
    assert_eq!(ids(second.notifications), ["d4"]);
    assert!(!second.more);
    // d1 was accepted before 20: only a call without `since` takes it.
    assert_eq!(state_of(&*s, "d1").await, NotificationState::Dead);
    let rest = s.redeliver_dead(i.id, None, 10, 6_000).await.unwrap();
    assert_eq!(ids(rest.notifications), ["d1"]);
    assert!(!rest.more);
    let none = s.redeliver_dead(i.id, None, 10, 6_000).await.unwrap();
    assert!(none.notifications.is_empty() && !none.more);
    // Neither another instance's dead letter nor a delivered notification was touched.
    assert_eq!(state_of(&*s, "x1").await, NotificationState::Dead);
    assert_eq!(state_of(&*s, "p1").await, NotificationState::Delivered);
    // Exactly the limit left: taken, and nothing more.
    let last = s.redeliver_dead(j.id, None, 1, 7_000).await.unwrap();
    assert_eq!(ids(last.notifications), ["x1"]);
    assert!(!last.more);
    assert_eq!(
        s.pending().await.unwrap().len(),
        5,
        "every dead letter is pending again"
    );
}

pub async fn attempt_stats_count_each_minute_of_one_instance(s: Subject) {
    const MIN: i64 = 60_000;
    let [i, j] = instances(&*s, ["i", "j"]).await;
    s.enqueue(vec![
        note("n1", i.id, 10),
        note("n2", i.id, 11),
        note("o1", j.id, 12),
    ])
    .await
    .unwrap();
    let at = |id: &str, n: u32, at_ms: i64, status: Option<u16>, latency_us: i64| Attempt {
        latency_us,
        ..attempt(id, 1, n, at_ms, status)
    };
    for a in [
        // Before the window.
        at("n1", 1, 10 * MIN - 1, Some(500), 9_000),
        // Minute 10: a failure and a success.
        at("n1", 2, 10 * MIN + 5, Some(500), 1_000),
        at("n1", 3, 10 * MIN + 30_000, Some(204), 3_000),
        // Another instance's, in the same minute.
        at("o1", 1, 10 * MIN + 10, Some(200), 7_000),
        // Minute 12: no answer.
        at("n2", 1, 12 * MIN + 1, None, 500),
        // At the window's end (exclusive).
        at("n2", 2, 13 * MIN, Some(200), 9_000),
    ] {
        record(&*s, a, NotificationState::Pending, 0).await.unwrap();
    }
    let stats = s.attempt_stats(i.id, 10 * MIN, 13 * MIN).await.unwrap();
    assert_eq!(
        stats,
        vec![
            MinuteStats {
                minute_ms: 10 * MIN,
                attempts: 2,
                delivered: 1,
                latency_us_avg: 2_000.0,
                latency_us_max: 3_000,
            },
            MinuteStats {
                minute_ms: 12 * MIN,
                attempts: 1,
                delivered: 0,
                latency_us_avg: 500.0,
                latency_us_max: 500,
            },
        ]
    );
    assert_eq!(
        s.attempt_stats(j.id, 10 * MIN, 11 * MIN).await.unwrap(),
        vec![MinuteStats {
            minute_ms: 10 * MIN,
            attempts: 1,
            delivered: 1,
            latency_us_avg: 7_000.0,
            latency_us_max: 7_000,
        }]
    );
    assert_eq!(
        s.attempt_stats(i.id, 20 * MIN, 30 * MIN).await.unwrap(),
        vec![]
    );
}

pub async fn activity_of_reads_each_instance_s_last_event_backlog_and_dead_letters_and_poll_health(
    s: Subject,
) {
    let [i, j, k] = instances(&*s, ["i", "j", "k"]).await;
    s.enqueue(vec![
        note("n1", i.id, 10),
        note("n2", i.id, 20),
        note("o1", j.id, 25),
        note("o2", j.id, 26),
        note("n3", i.id, 30),
        note("n4", i.id, 40),
    ])
    .await
    .unwrap();
    record(
        &*s,
        attempt("n1", 1, 1, 100, Some(200)),
        NotificationState::Delivered,
        0,
    )
    .await
    .unwrap();
    record(
        &*s,
        attempt("n4", 1, 1, 100, Some(503)),
        NotificationState::Pending,
        900,
    )
    .await
    .unwrap();
    dead_letter(&s, &["n2", "o1", "o2"]).await;

    let activity = s.activity_of(&[i.id, j.id, k.id]).await.unwrap();
    assert_eq!(
        activity,
        HashMap::from([
            (
                i.id,
                Activity {
                    last_created_ms: Some(40),
                    backlog: 2,
                    dead: 1,
                }
            ),
            (
                j.id,
                Activity {
                    last_created_ms: Some(26),
                    backlog: 0,
                    dead: 2,
                }
            ),
        ]),
        "k has no notification and is left out"
    );
    assert_eq!(
        s.activity_of(&[j.id])
            .await
            .unwrap()
            .get(&j.id)
            .map(|a| a.dead),
        Some(2)
    );
    assert!(s.activity_of(&[k.id]).await.unwrap().is_empty());
    assert!(s.activity_of(&[]).await.unwrap().is_empty());
    // Polling health: every resource of the instances asked for, without the seen lists.
    for (inst, resource) in [(&j, "leads"), (&i, "contacts"), (&j, "contacts"), (&k, "x")] {
        s.save_poll(poll_state(inst.id, resource, 500, 3), vec![])
            .await
            .unwrap();
    }
    let health = s.poll_health_of(&[i.id, j.id]).await.unwrap();
    let mut expected = Vec::new();
    for inst in [&i, &j] {
        for mut state in s.poll_states(inst.id).await.unwrap() {
            assert_eq!(state.seen.len(), 3);
            state.seen.clear();
            expected.push(state);
        }
    }
    assert_eq!(health, expected);
    assert_eq!(s.poll_health_of(&[k.id]).await.unwrap()[0].resource, "x");
    assert!(s.poll_health_of(&[]).await.unwrap().is_empty());
    // A redelivered dead letter counts in the backlog.
    s.redeliver(&nid("o1"), 1_000).await.unwrap();
    let j_now = s.activity_of(&[j.id]).await.unwrap()[&j.id];
    assert_eq!((j_now.backlog, j_now.dead), (1, 1));
}
