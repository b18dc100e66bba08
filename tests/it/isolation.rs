//! Tenant isolation in delivery: a notification in backoff holds back only its own
//! instance's later ones, and pending notifications follow the instance's current callback
//! settings (URL, signature key, headers).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, webhook};

/// Posts an Ecwid order webhook for `store_id`; returns its notification id and when it
/// was accepted.
async fn order(host: &TestHost, order_id: &str, store_id: u64) -> (String, Instant) {
    let body = ecwid_order("order.created", order_id, store_id).to_string();
    let answer = webhook(host, "ecwid", &[], body.as_bytes()).await;
    let accepted = Instant::now();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let id = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .expect("one notification")
        .to_string();
    (id, accepted)
}

/// The `message.eventId` of a callback request.
fn event_id(body: &Value) -> String {
    body["message"]["eventId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_notification_in_backoff_never_delays_another_organizations_to_the_same_url() {
    // Retries every 200 ms for 20 s: the first organization's head stays in backoff.
    let retries = vec!["200"; 100].join(",");
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", &retries]);
    // One callback URL for both: it refuses the first organization's notifications.
    let callback = Receiver::start_answering(|req| match req.header("x-tenant") {
        Some("first") => 503,
        _ => 200,
    })
    .await;
    let url = callback.url("/shared");

    let mut first = ecwid_instance(&url);
    first["configuration"]["event.notification.callback.headers"] = json!({"x-tenant": "first"});
    let first_id = create_instance(&host, &first).await["id"].as_i64().unwrap();
    let second_org = host.add_organization("second");
    let mut second = ecwid_instance(&url);
    second["configuration"]["ecwid.store.id"] = json!("2004");
    second["configuration"]["event.notification.callback.headers"] = json!({"x-tenant": "second"});
    let answer = host.post_instance_as(&second_org, &second).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    // The first organization's notifications: the head fails and is retried.
    let mut firsts = Vec::new();
    for i in 0..3 {
        firsts.push(order(&host, &format!("f{i}"), 1003).await.0);
    }
    let refused = |r: &tests::receiver::Received| r.header("x-tenant") == Some("first");
    eventually(
        Duration::from_secs(10),
        "a retry of the first's head",
        || async { (callback.received().iter().filter(|r| refused(r)).count() >= 2).then_some(()) },
    )
    .await;

    // The second organization's, to the same URL, go through at once meanwhile.
    let mut seconds = Vec::new();
    for i in 0..5 {
        seconds.push(order(&host, &format!("s{i}"), 2004).await);
    }
    let arrived = eventually(
        Duration::from_secs(10),
        "the second's notifications",
        || {
            let got = callback.delivered();
            let seconds = &seconds;
            async move {
                let times: Vec<Duration> = seconds
                    .iter()
                    .map(|(id, accepted)| {
                        got.iter()
                            .find(|r| event_id(&r.json()) == *id)
                            .map(|r| r.at.saturating_duration_since(*accepted))
                    })
                    .collect::<Option<_>>()?;
                Some(times)
            }
        },
    )
    .await;
    println!("the second's notifications arrived after {arrived:?}");
    assert!(
        arrived.iter().all(|d| *d <= Duration::from_secs(1)),
        "each within a second of acceptance: {arrived:?}"
    );

    // Meanwhile the first's head is still being retried, and its later ones wait behind it
    // (order per instance): none of them was attempted.
    let head = format!("/instances/{first_id}/events/{}", firsts[0]);
    let e = eventually(
        Duration::from_secs(5),
        "the head's attempts recorded",
        || {
            let head = &head;
            let host = &host;
            async move {
                let e = host.call("GET", head, None).await.json();
                (e["attempts"].as_u64() > Some(1)).then_some(e)
            }
        },
    )
    .await;
    assert_eq!(e["state"], "pending", "{e}");
    assert!(
        callback.delivered().iter().all(|r| !refused(r)),
        "none of the first's got through"
    );
    let attempted: Vec<String> = callback
        .received()
        .iter()
        .filter(|r| refused(r))
        .map(|r| event_id(&r.json()))
        .collect();
    assert!(
        attempted.iter().all(|id| *id == firsts[0]),
        "only the head of the first's queue was attempted: {attempted:?}"
    );
}

#[tokio::test]
async fn pending_notifications_follow_a_changed_callback_url_and_signature_key() {
    // The first retry comes 1.2 s ± 20 % after the first attempt, the next ones at once.
    let mut retries = vec!["1200"];
    retries.extend(["50"; 20]);
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", &retries.join(",")]);
    let old = Receiver::start().await;
    old.set_status(503);
    let new = Receiver::start().await;

    let mut instance = ecwid_instance(&old.url("/old"));
    let config = &mut instance["configuration"];
    config["event.notification.signature.key"] = json!("old-signing-key-0123");
    config["event.notification.callback.headers"] = json!({"x-callback-version": "old"});
    let id = create_instance(&host, &instance).await["id"]
        .as_i64()
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(order(&host, &format!("p{i}"), 1003).await.0);
    }
    eventually(Duration::from_secs(10), "the first attempt", || async {
        (!old.received().is_empty()).then_some(())
    })
    .await;

    // The pending notifications are in backoff; the instance moves to another receiver
    // with a new key and header.
    let patch = json!({"configuration": {
        "event.notification.callback.url": new.url("/new"),
        "event.notification.signature.key": "new-signing-key-4567",
        "event.notification.callback.headers": {"x-callback-version": "new"},
    }});
    let answer = host
        .call("PATCH", &format!("/instances/{id}"), Some(&patch))
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let old_requests = old.received().len();

    let got = eventually(
        Duration::from_secs(10),
        "all three at the new URL",
        || async {
            let d = new.delivered();
            (d.len() >= 3).then_some(d)
        },
    )
    .await;
    let order: Vec<String> = got.iter().map(|r| event_id(&r.json())).collect();
    assert_eq!(order, ids, "in acceptance order");
    for r in &got {
        assert_eq!(r.header("x-callback-version"), Some("new"));
        assert_eq!(
            r.header("elements-webhook-signature"),
            Some(host::notify::elements_signature("new-signing-key-4567", &r.body).as_str()),
            "signed with the new key"
        );
    }
    assert_eq!(
        old.received().len(),
        old_requests,
        "the old URL got nothing after the change"
    );
    assert_eq!(old_requests, 1, "only the head's first attempt went to it");
}
