//! `event.notification.max.in.flight`: K attempts of one instance in flight at once, the
//! order kept per object id; K = 1 keeps strict acceptance order; bad values refused.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::standin::{StandIn, VendorAnswer};
use tests::{TestHost, create_instance, eventually, webhook};

/// A callback that holds every request while closed, and answers each open one after a
/// short latency (so that attempts in flight overlap); it counts the requests open at
/// once, in all and per object id, and records the order each object's notifications
/// came in.
#[derive(Default)]
struct Watch {
    open: AtomicBool,
    gate: tokio::sync::Notify,
    current: AtomicUsize,
    most: AtomicUsize,
    /// Object ids with a request open; a second one of the same id is an overlap.
    busy: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
    /// Per object id, the `eventCreated` of each notification received, in order.
    seen: Mutex<HashMap<String, Vec<i64>>>,
    /// Every notification's (object id, eventCreated), in arrival order.
    arrivals: Mutex<Vec<(String, i64)>>,
    answered: AtomicUsize,
}

async fn watched_callback(watch: Arc<Watch>) -> StandIn {
    StandIn::start(move |req| {
        let watch = watch.clone();
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let object = v["message"]["events"][0]["objectId"]
            .as_str()
            .unwrap()
            .to_string();
        let created = v["message"]["raw"]["eventCreated"].as_i64().unwrap();
        Box::pin(async move {
            let now = watch.current.fetch_add(1, Ordering::SeqCst) + 1;
            watch.most.fetch_max(now, Ordering::SeqCst);
            if !watch.busy.lock().unwrap().insert(object.clone()) {
                watch.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            watch
                .seen
                .lock()
                .unwrap()
                .entry(object.clone())
                .or_default()
                .push(created);
            watch
                .arrivals
                .lock()
                .unwrap()
                .push((object.clone(), created));
            while !watch.open.load(Ordering::SeqCst) {
                let opened = watch.gate.notified();
                if watch.open.load(Ordering::SeqCst) {
                    break;
                }
                opened.await;
            }
            // The callback's own latency, so that attempts in flight overlap.
            tokio::time::sleep(Duration::from_millis(3)).await;
            watch.busy.lock().unwrap().remove(&object);
            watch.current.fetch_sub(1, Ordering::SeqCst);
            watch.answered.fetch_add(1, Ordering::SeqCst);
            VendorAnswer::json(json!({}))
        })
    })
    .await
}

/// Posts one webhook per object id of `objects`, in order: each webhook's `eventCreated`
/// is its acceptance rank.
async fn post_updates(host: &TestHost, objects: &[String]) -> usize {
    for (n, object) in objects.iter().enumerate() {
        let mut order = ecwid_order("order.updated", object, 1003);
        order["eventCreated"] = json!(n);
        order["eventId"] = json!(format!("evt-{n}"));
        let answer = webhook(host, "ecwid", &[], order.to_string().as_bytes()).await;
        assert_eq!(answer.status, 200);
    }
    objects.len()
}

/// `rounds` rounds of `distinct` orders, each followed by an update of the order `hot`:
/// o0, hot, o1, hot, …
fn interleaved(distinct: usize, rounds: usize) -> Vec<String> {
    (0..distinct * rounds)
        .flat_map(|i| [format!("o{}", i % distinct), "hot".to_string()])
        .collect()
}

/// Starts a host with an Ecwid instance whose callback is `watch`'s, with `max_in_flight`
/// set when given; posts the backlog while the callback holds what it gets, waits until
/// `held` requests are open at the callback, then opens it and waits for all.
async fn run(max_in_flight: Option<&str>, held: usize, objects: &[String]) -> Arc<Watch> {
    let host = TestHost::start(&["ecwid"]);
    let watch = Arc::new(Watch::default());
    let callback = watched_callback(watch.clone()).await;
    let mut instance = ecwid_instance(&callback.url("/cb"));
    if let Some(k) = max_in_flight {
        instance["configuration"]["event.notification.max.in.flight"] = json!(k);
    }
    create_instance(&host, &instance).await;
    let total = post_updates(&host, objects).await;
    eventually(
        Duration::from_secs(10),
        "the first attempts open at the callback",
        || async { (watch.current.load(Ordering::SeqCst) >= held).then_some(()) },
    )
    .await;
    watch.open.store(true, Ordering::SeqCst);
    watch.gate.notify_waiters();
    eventually(
        Duration::from_secs(30),
        "every notification answered",
        || async { (watch.answered.load(Ordering::SeqCst) >= total).then_some(()) },
    )
    .await;
    watch
}

#[tokio::test]
async fn sixteen_in_flight_deliver_in_parallel_in_order_per_object() {
    // Many orders, and one (`hot`) updated between each two others: without the order
    // per object, its updates would be in flight together.
    let objects = interleaved(20, 3);
    let watch = run(Some("16"), 16, &objects).await;
    assert_eq!(
        watch.most.load(Ordering::SeqCst),
        16,
        "up to 16 requests open at the callback at once, and never more"
    );
    assert_eq!(
        watch.overlaps.load(Ordering::SeqCst),
        0,
        "two notifications of one object were in flight together"
    );
    let seen = watch.seen.lock().unwrap();
    assert_eq!(seen.len(), 21);
    for (object, created) in seen.iter() {
        let expected: Vec<i64> = (0..objects.len() as i64)
            .filter(|&n| &objects[n as usize] == object)
            .collect();
        assert_eq!(
            created, &expected,
            "{object}'s notifications, once each in order"
        );
    }
}

#[tokio::test]
async fn one_in_flight_by_default_keeps_strict_acceptance_order() {
    let objects = interleaved(10, 2);
    let watch = run(None, 1, &objects).await;
    assert_eq!(
        watch.most.load(Ordering::SeqCst),
        1,
        "at most one request open at the callback at once"
    );
    let arrivals = watch.arrivals.lock().unwrap();
    let created: Vec<i64> = arrivals.iter().map(|(_, c)| *c).collect();
    assert_eq!(created, (0..40).collect::<Vec<i64>>(), "acceptance order");
}

#[tokio::test]
async fn bad_max_in_flight_values_are_refused_naming_the_key() {
    let host = TestHost::start(&["ecwid"]);
    let field = "configuration.event.notification.max.in.flight";
    for bad in [
        json!("0"),
        json!(0),
        json!("257"),
        json!("-1"),
        json!("1.5"),
        json!("many"),
    ] {
        let mut instance = ecwid_instance("http://127.0.0.1:9/cb");
        instance["configuration"]["event.notification.max.in.flight"] = bad.clone();
        let answer = host.call("POST", "/instances", Some(&instance)).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text());
        let error = answer.json();
        assert_eq!(error["field"], field, "{bad}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{bad}: {error}"
        );
    }
    for good in [json!("1"), json!(16), json!("256")] {
        let mut instance = ecwid_instance("http://127.0.0.1:9/cb");
        instance["configuration"]["event.notification.max.in.flight"] = good.clone();
        let answer = host.call("POST", "/instances", Some(&instance)).await;
        assert_eq!(answer.status, 200, "{good}: {}", answer.text());
    }
}
