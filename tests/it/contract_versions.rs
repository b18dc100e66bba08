//! Connectors built for an older contract keep working: each binary kept in
//! `tests/fixtures/connectors/` (never rebuilt) is loaded by this host and turns a webhook
//! into a delivered notification.

use std::path::PathBuf;
use std::time::Duration;

use tests::receiver::Receiver;
use tests::seeds::echo_instance;
use tests::{TestHost, create_instance, eventually, get, webhook};

/// A kept binary by file name.
fn kept(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/connectors")
        .join(name)
}

#[tokio::test]
async fn an_echo_connector_built_for_contract_0_1_0_loads_and_delivers() {
    let host = TestHost::start(&[]);
    std::fs::copy(
        kept("echo-contract-0.1.0.wasm"),
        host.connectors.join("echo.wasm"),
    )
    .unwrap();
    let element = eventually(
        Duration::from_secs(30),
        "the kept binary loaded",
        || async {
            let answer = get(&host.url("/elements/echo")).await;
            (answer.status == 200).then(|| answer.json())
        },
    )
    .await;
    assert_eq!(element["contractVersion"], "0.1.0");

    let callback = Receiver::start().await;
    let created = create_instance(&host, &echo_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap().to_string();
    let body = serde_json::json!({"id": "kept-1"}).to_string();
    let answer = webhook(
        &host,
        "echo",
        &[("element-instances", &id)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let got = eventually(Duration::from_secs(10), "the delivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    let events = got.json()["message"]["events"].clone();
    assert_eq!(events[0]["objectId"], "kept-1", "{events}");
}
