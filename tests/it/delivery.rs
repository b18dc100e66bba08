//! Durable delivery: retries on the schedule, the dead letter, redelivery, and a crash with
//! a thousand notifications in the outbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, webhook};

#[tokio::test]
async fn a_down_callback_is_retried_on_schedule_then_dead_lettered_then_redelivered() {
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", "100,200"]);
    let callback = Receiver::start().await;
    callback.set_status(503);
    let created = create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "D1", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200);
    let event_id = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();

    let path = format!("/instances/{id}/events/{event_id}");
    let dead = eventually(Duration::from_secs(10), "the dead letter", || async {
        let e = host.call("GET", &path, None).await.json();
        (e["status"] == "FAILED").then_some(e)
    })
    .await;
    assert_eq!(dead["deadLettered"], true);
    assert_eq!(dead["attempts"], 3, "one attempt and two retries");

    // Three attempts, spaced by the schedule (100 ms and 200 ms, ±20 %).
    let got = callback.received();
    assert_eq!(got.len(), 3);
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(80), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(160), "{gaps:?}");
    let deliveries = host
        .call("GET", &format!("{path}/deliveries"), None)
        .await
        .json();
    let attempts = deliveries["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    for (n, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], json!(n + 1));
        assert_eq!(a["statusCode"], 503);
        assert!(a["error"].as_str().unwrap().contains("503"));
        assert!(a["latencyMs"].as_f64().is_some());
    }

    // Back up: a redeliver call gets it through.
    callback.set_status(200);
    let redeliver = host.call("POST", &format!("{path}/redeliver"), None).await;
    assert_eq!(
        redeliver.status,
        202,
        "{}",
        String::from_utf8_lossy(&redeliver.body)
    );
    let delivered = eventually(Duration::from_secs(10), "the redelivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    assert_eq!(
        delivered.json()["message"]["eventId"],
        json!(event_id),
        "the same notification, byte for byte"
    );
    let after = eventually(Duration::from_secs(10), "NOTIFIED", || async {
        let d = host
            .call("GET", &format!("{path}/deliveries"), None)
            .await
            .json();
        (d["event"]["status"] == "NOTIFIED").then_some(d)
    })
    .await;
    assert_eq!(after["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(after["deliveries"][1]["attempts"][0]["statusCode"], 200);
}

#[tokio::test]
async fn notifications_to_one_callback_arrive_in_acceptance_order() {
    // Retries every 50 ms for ten seconds: the head fails until the callback comes back.
    let retries = vec!["50"; 200].join(",");
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", &retries]);
    let callback = Receiver::start().await;
    callback.set_status(500);
    create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    for i in 0..20 {
        let order = ecwid_order("order.updated", &format!("o{i}"), 1003).to_string();
        assert_eq!(
            webhook(&host, "ecwid", &[], order.as_bytes()).await.status,
            200
        );
    }
    // The first keeps failing; nothing overtakes it.
    eventually(Duration::from_secs(10), "a few retries", || async {
        (callback.received().len() >= 3).then_some(())
    })
    .await;
    callback.set_status(200);
    let got = eventually(Duration::from_secs(10), "all twenty", || async {
        let d = callback.delivered();
        (d.len() >= 20).then_some(d)
    })
    .await;
    let order: Vec<String> = got
        .iter()
        .map(|r| {
            r.json()["message"]["events"][0]["objectId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("o{i}")).collect();
    assert_eq!(order, expected);
    assert!(
        callback
            .received()
            .iter()
            .take_while(|r| r.answered != 200)
            .all(|r| { r.json()["message"]["events"][0]["objectId"] == "o0" }),
        "while the first failed, no later one was sent"
    );
}

#[tokio::test]
async fn a_thousand_webhooks_survive_a_kill_9() {
    const N: usize = 1000;
    // The callback's port is reserved now and nothing listens on it: connection refused.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let callback_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let retries = vec!["100"; 200].join(",");
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", &retries]);
    create_instance(
        &host,
        &ecwid_instance(&format!("http://{callback_addr}/crash")),
    )
    .await;

    let host = Arc::new(host);
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..N).step_by(20) {
                let order = ecwid_order("order.created", &format!("c{i}"), 1003).to_string();
                let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
                assert_eq!(answer.status, 200, "webhook {i}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let host = Arc::into_inner(host).expect("all webhook tasks ended");
    let (connectors, data, dirs) = host.kill();

    let mut host = TestHost::start_in_with(&connectors, &data, &["--retry-delays-ms", &retries]);
    host.adopt(dirs);
    let callback = Receiver::start_on(callback_addr).await;
    let got = eventually(Duration::from_secs(60), "all 1000 delivered", || async {
        let d = callback.delivered();
        let distinct: std::collections::HashSet<String> = d
            .iter()
            .map(|r| {
                r.json()["message"]["events"][0]["objectId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        (distinct.len() == N).then_some(d)
    })
    .await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let v: Value = r.json();
        *counts
            .entry(
                v["message"]["events"][0]["objectId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
            .or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!("kill -9 with {N} pending: all {N} delivered, {duplicates} duplicates");
    assert_eq!(counts.len(), N);
    assert!(
        duplicates <= 1,
        "{duplicates} duplicates: only the attempt in flight may repeat"
    );
    assert!(host.is_running());
}

#[tokio::test]
async fn a_redeliver_call_wakes_a_notification_waiting_for_a_late_retry() {
    // After the first failure the next retry is a minute away.
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", "60000"]);
    let callback = Receiver::start().await;
    callback.set_status(503);
    let created = create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "W1", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    let event_id = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/instances/{id}/events/{event_id}");
    eventually(Duration::from_secs(10), "the first attempt", || async {
        let e = host.call("GET", &path, None).await.json();
        (e["status"] == "DISPATCHED").then_some(())
    })
    .await;
    callback.set_status(200);
    let redeliver = host.call("POST", &format!("{path}/redeliver"), None).await;
    assert_eq!(redeliver.status, 202);
    eventually(
        Duration::from_secs(10),
        "the redelivery, long before the retry",
        || async { (!callback.delivered().is_empty()).then_some(()) },
    )
    .await;
    let done = eventually(Duration::from_secs(10), "NOTIFIED", || async {
        let d = host
            .call("GET", &format!("{path}/deliveries"), None)
            .await
            .json();
        (d["event"]["status"] == "NOTIFIED").then_some(d)
    })
    .await;
    assert_eq!(done["deliveries"][1]["attempts"][0]["statusCode"], 200);
}

#[tokio::test]
async fn finished_notifications_are_deleted_past_retention_and_pending_ones_are_kept() {
    // Kept 300 ms after acceptance, looked for every 50 ms; a failed attempt waits a minute.
    let host = TestHost::start_with(
        &["ecwid"],
        &[
            "--retention-ms",
            "300",
            "--prune-interval-ms",
            "50",
            "--retry-delays-ms",
            "60000",
        ],
    );
    let down = Receiver::start().await;
    down.set_status(503);
    let up = Receiver::start().await;
    let waiting = create_instance(&host, &ecwid_instance(&down.url("/"))).await;
    let mut second = ecwid_instance(&up.url("/"));
    second["configuration"]["ecwid.store.id"] = json!("2004");
    let delivered = create_instance(&host, &second).await;

    // The pending one is accepted first, so it is always the older of the two.
    let send = |store: u64, order: &'static str| {
        let host = &host;
        async move {
            let body = ecwid_order("order.created", order, store).to_string();
            let answer = webhook(host, "ecwid", &[], body.as_bytes()).await;
            assert_eq!(answer.status, 200);
            answer.json()["instances"][0]["notifications"][0]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let pending_id = send(1003, "R1").await;
    let done_id = send(2004, "R2").await;
    let pending_path = format!("/instances/{}/events/{pending_id}", waiting["id"]);
    let done_path = format!("/instances/{}/events/{done_id}", delivered["id"]);
    eventually(Duration::from_secs(10), "the delivery", || async {
        let e = host.call("GET", &done_path, None).await.json();
        (e["status"] == "NOTIFIED").then_some(())
    })
    .await;

    eventually(
        Duration::from_secs(10),
        "the delivered one deleted",
        || async { (host.call("GET", &done_path, None).await.status == 404).then_some(()) },
    )
    .await;
    let deliveries = host
        .call("GET", &format!("{done_path}/deliveries"), None)
        .await;
    assert_eq!(deliveries.status, 404, "its attempts went with it");
    // Counted once the pruner's pass ends, which may be just after the row is gone.
    eventually(Duration::from_secs(10), "the prune counted", || async {
        let metrics = tests::get(&host.root_url("/metrics")).await;
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        assert!(
            !text.lines().any(|l| l == "notifications_pruned_total 2"),
            "the pending one was pruned too: {text}"
        );
        text.lines()
            .any(|l| l == "notifications_pruned_total 1")
            .then_some(())
    })
    .await;

    // Older than the retention too, but still waiting for its retry: kept, and delivered
    // once the callback is back.
    eventually(
        Duration::from_secs(10),
        "the pending one, tried once",
        || async {
            let e = host.call("GET", &pending_path, None).await;
            assert_eq!(e.status, 200, "a pending notification was deleted");
            (e.json()["status"] == "DISPATCHED").then_some(())
        },
    )
    .await;
    down.set_status(200);
    let redeliver = host
        .call("POST", &format!("{pending_path}/redeliver"), None)
        .await;
    assert_eq!(redeliver.status, 202);
    eventually(Duration::from_secs(10), "the late delivery", || async {
        (!down.delivered().is_empty()).then_some(())
    })
    .await;
}

/// A callback that answers 200 at once and then streams a body that does not end within
/// any test's patience (a 4 KiB chunk a millisecond, for about 30 s), on `127.0.0.1`.
async fn endless_answer_callback() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if s.write_all(head).await.is_err() {
                    return;
                }
                let mut chunk = b"1000\r\n".to_vec();
                chunk.extend_from_slice(&[b'x'; 4096]);
                chunk.extend_from_slice(b"\r\n");
                // A chunk a millisecond: bounded by count (at most ~30 s, 120 MiB).
                for _ in 0..30_000 {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_callback_answer_that_never_ends_is_read_no_further_than_64_kib() {
    // The attempt time-out is far longer than the test's deadline: a host that read the
    // whole answer would still be reading, and the notification would not be delivered.
    let host = TestHost::start_with(&["echo"], &["--delivery-timeout-ms", "20000"]);
    let url = endless_answer_callback().await;
    let created = create_instance(&host, &tests::seeds::echo_instance(&url)).await;
    let id = created["id"].as_i64().unwrap();
    let sent = webhook(
        &host,
        "echo",
        &[("element-instances", &id.to_string())],
        br#"{"id": "endless"}"#,
    )
    .await;
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.body));
    eventually(
        Duration::from_secs(5),
        "the notification delivered",
        || async {
            let events = host
                .call("GET", &format!("/instances/{id}/events"), None)
                .await
                .json();
            (events[0]["status"] == json!("NOTIFIED")).then_some(())
        },
    )
    .await;
}
