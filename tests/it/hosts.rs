//! Hosts on PostgreSQL (`--database-url`): one host on the shared store behaves as on
//! SQLite; several hosts on one database share instances, delivery and polling.

use std::time::Duration;

use tests::pg::TestDatabase;
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, webhook};

#[tokio::test]
async fn a_host_on_postgres_takes_a_webhook_delivers_it_and_keeps_it_across_a_restart() {
    let db = TestDatabase::create();
    let callback = Receiver::start().await;
    let host = TestHost::start_with(&["ecwid"], &["--database-url", db.url()]);
    let created = create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "P1", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let event_id = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let delivered = eventually(Duration::from_secs(10), "the delivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    assert_eq!(delivered.json()["message"]["eventId"], event_id.as_str());
    // Its attempt is recorded behind the send: wait for it before the kill.
    let path = format!("/instances/{id}/events/{event_id}");
    eventually(Duration::from_secs(10), "the recorded delivery", || async {
        (host.call("GET", &path, None).await.json()["status"] == "NOTIFIED").then_some(())
    })
    .await;

    // The data directory holds no store: a host on a new data directory and the same
    // database finds the instance and the notification.
    let sqlite = host.data.join("store.sqlite");
    assert!(!sqlite.exists(), "no SQLite store beside a database URL");
    let (connectors, _data, dirs) = host.kill();
    let fresh = tempfile::tempdir().unwrap();
    let mut again =
        TestHost::start_in_with(&connectors, fresh.path(), &["--database-url", db.url()]);
    again.adopt(dirs);
    let auth = std::fs::read_to_string(_data.join("authorization")).unwrap();
    let answer = tests::send(
        "GET",
        &again.url(&path),
        &[("authorization", auth.trim())],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["status"], "NOTIFIED", "delivered");
}
