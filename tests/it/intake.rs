//! Webhook intake limits: a webhook's body is stored once however many notifications carry
//! it, and the same webhook again (a vendor's retry, an attacker's replay) is answered 200
//! and notified once.

use std::time::Duration;

use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::echo_instance;
use tests::{TestHost, create_instance, eventually, webhook};

const WITHIN: Duration = Duration::from_secs(20);

/// The store file's pages in use, in bytes, read beside the running host (WAL included).
fn store_bytes(host: &TestHost) -> i64 {
    let conn = open_store(host);
    let pragma = |name: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    };
    (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")
}

fn open_store(host: &TestHost) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        host.data.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// Rows of a table of the running host's store.
fn rows(host: &TestHost, table: &str) -> i64 {
    open_store(host)
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// An echo instance taking webhooks to `callback`; returns its id.
async fn echo(host: &TestHost, callback: &Receiver) -> String {
    let created = create_instance(host, &echo_instance(&callback.url("/"))).await;
    created["id"].as_i64().unwrap().to_string()
}

/// Posts `body` for instance `id`; asserts a 200 and returns the answer's JSON.
async fn post(host: &TestHost, id: &str, body: &[u8]) -> Value {
    let answer = webhook(host, "echo", &[("element-instances", id)], body).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

/// Waits until `n` notifications have been delivered, then returns their `message.events`
/// object ids, in order.
async fn delivered(callback: &Receiver, n: usize) -> Vec<Vec<String>> {
    let got = eventually(WITHIN, "the deliveries", || async {
        let d = callback.delivered();
        (d.len() >= n).then_some(d)
    })
    .await;
    got.iter()
        .map(|r| {
            r.json()["message"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["objectId"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_hundred_object_webhook_stores_its_body_once_for_its_five_notifications() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let id = echo(&host, &callback).await;
    // 100 objects, 200 KB: five notifications of 20, each carrying the whole body.
    let body = json!({"id": "big", "count": 100, "padding": "x".repeat(200_000)}).to_string();
    let before = store_bytes(&host);

    let answer = post(&host, &id, body.as_bytes()).await;
    assert_eq!(answer["notifications"], 5, "{answer}");
    let grown = store_bytes(&host) - before;
    assert!(
        grown < 2 * body.len() as i64,
        "the store grew by {grown} bytes for one {}-byte body",
        body.len()
    );
    assert_eq!(rows(&host, "webhook_bodies"), 1);

    // Delivered unchanged: each notification carries the whole body as `raw`.
    let events = delivered(&callback, 5).await;
    assert_eq!(events.iter().map(Vec::len).collect::<Vec<_>>(), [20; 5]);
    let raw: Value = serde_json::from_str(&body).unwrap();
    for r in callback.delivered() {
        assert_eq!(r.json()["message"]["raw"], raw);
    }
    assert_eq!(callback.delivered().len(), 5);
}

#[tokio::test]
async fn the_same_webhook_again_is_answered_200_and_notified_once() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let id = echo(&host, &callback).await;
    let retried = br#"{"id": "retried", "count": 2}"#;
    let first = post(&host, &id, retried).await;
    assert_eq!(first["notifications"], 1, "{first}");
    assert_eq!(first.get("duplicate"), None, "{first}");
    // A vendor's retry: the first answer again, marked, and nothing new stored.
    let again = post(&host, &id, retried).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["instances"][0]["duplicate"], true, "{again}");
    assert_eq!(
        again["instances"][0]["notifications"],
        first["instances"][0]["notifications"]
    );

    // Two identical webhooks at once: both 200, one notification.
    let twins = br#"{"id": "twins"}"#;
    let (a, b) = tokio::join!(post(&host, &id, twins), post(&host, &id, twins));
    let marked = [&a, &b]
        .iter()
        .filter(|x| x.get("duplicate") == Some(&json!(true)))
        .count();
    assert_eq!(marked, 1, "{a} {b}");
    assert_eq!(
        delivered(&callback, 2).await,
        [vec!["retried-0", "retried-1"], vec!["twins"]]
    );
    // Recorded as delivered before the restart, so it does not deliver them again.
    eventually(WITHIN, "both recorded as delivered", || async {
        let list = host
            .call("GET", &format!("/instances/{id}/events"), None)
            .await
            .json();
        let list = list.as_array().cloned().unwrap_or_default();
        (list.len() == 2 && list.iter().all(|n| n["status"] == "NOTIFIED")).then_some(())
    })
    .await;

    // The same webhook after a restart is still a duplicate: the check is in the store.
    let (connectors, data, dirs) = host.kill();
    let mut host = TestHost::start_in(&connectors, &data);
    host.adopt(dirs);
    let restarted = post(&host, &id, retried).await;
    assert_eq!(restarted["duplicate"], true, "{restarted}");

    // Another body is another webhook; the same body with another query string too (a
    // connector may read events from it).
    post(&host, &id, br#"{"id": "other"}"#).await;
    let answer = webhook(&host, "echo?again=1", &[("element-instances", &id)], twins).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json().get("duplicate"), None, "{}", answer.json());

    // Delivered in acceptance order, each once: once the last is in, nothing else comes.
    let events = delivered(&callback, 4).await;
    assert_eq!(
        events,
        [
            vec!["retried-0", "retried-1"],
            vec!["twins"],
            vec!["other"],
            vec!["twins"],
        ]
    );
    let listed = host
        .call("GET", &format!("/instances/{id}/events"), None)
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    let metrics = tests::send("GET", &host.root_url("/metrics"), &[], b"").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("webhooks_duplicate_total 1"), "{text}");
}

#[tokio::test]
async fn with_the_window_off_the_same_webhook_is_notified_every_time() {
    let host = TestHost::start_with(&["echo"], &["--dedupe-window-ms", "0"]);
    let callback = Receiver::start().await;
    let id = echo(&host, &callback).await;
    let body = br#"{"id": "again"}"#;
    for _ in 0..2 {
        let answer = post(&host, &id, body).await;
        assert_eq!(answer["notifications"], 1, "{answer}");
        assert_eq!(answer.get("duplicate"), None, "{answer}");
    }
    assert_eq!(delivered(&callback, 2).await, [["again"], ["again"]]);
    // Each stored its one notification whole: no body apart, and nothing recorded for
    // the check.
    assert_eq!(rows(&host, "webhook_bodies"), 0);
    assert_eq!(rows(&host, "webhook_intake"), 0);
}

#[tokio::test]
async fn past_the_window_the_same_webhook_is_notified_again() {
    let host = TestHost::start_with(&["echo"], &["--dedupe-window-ms", "3000"]);
    let callback = Receiver::start().await;
    let id = echo(&host, &callback).await;
    let body = br#"{"id": "later"}"#;
    post(&host, &id, body).await;
    let within = post(&host, &id, body).await;
    assert_eq!(within["duplicate"], true, "{within}");
    // Retried until the window has passed: then it is notified again.
    let later = eventually(WITHIN, "an answer past the window", || async {
        let answer = post(&host, &id, body).await;
        answer.get("duplicate").is_none().then_some(answer)
    })
    .await;
    assert_eq!(later["notifications"], 1, "{later}");
    assert_eq!(delivered(&callback, 2).await, [["later"], ["later"]]);
}
