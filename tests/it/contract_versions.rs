//! Connectors built for an older contract keep working: each binary kept in
//! `tests/fixtures/connectors/` (never rebuilt) is loaded by this host and turns a webhook
//! into a delivered notification.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tests::receiver::Receiver;
use tests::seeds::{echo_instance, ecwid_instance};
use tests::{TestHost, create_instance, eventually, get, webhook};

/// A kept binary by file name.
fn kept(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/connectors")
        .join(name)
}

/// A host whose connectors folder holds the kept 0.1.0 echo binary, once it is loaded, and
/// the element's JSON.
async fn host_with_the_kept_echo() -> (TestHost, serde_json::Value) {
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
    (host, element)
}

#[tokio::test]
async fn an_echo_connector_built_for_contract_0_1_0_loads_and_delivers() {
    let (host, element) = host_with_the_kept_echo().await;
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

/// The field a 400 names, with its message.
fn refused_field(answer: &tests::Answer) -> String {
    assert_eq!(answer.status, 400, "{}", answer.text());
    answer.json()["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field named: {}", answer.text()))
        .to_string()
}

#[tokio::test]
async fn a_0_2_connector_s_typed_keys_refuse_a_wrong_type_with_a_400_naming_the_key() {
    let host = TestHost::start(&["ecwid"]);
    let element = get(&host.url("/elements/ecwid")).await.json();
    assert_eq!(element["contractVersion"], "0.2.0");
    let keys = element["configuration"].as_array().unwrap().clone();
    let key = |k: &str| keys.iter().find(|c| c["key"] == k).unwrap().clone();
    assert_eq!(key("ecwid.store.id")["type"], "integer");
    assert_eq!(key("ecwid.access.token")["type"], "secret");
    assert_eq!(key("ecwid.access.token")["secret"], true);
    assert_eq!(key("base.url")["type"], "url");

    // Keys the connector itself does not check: only the host's typed check refuses them.
    let callback = Receiver::start().await;
    for (key, value) in [
        ("ecwid.access.token", json!([1, 2])),
        ("ecwid.access.token", json!({"a": 1})),
        ("ecwid.order.key", json!(-5)),
        ("base.url", json!(5)),
        ("base.url", json!("not a url")),
        ("event.notification.signature.key", json!("")),
    ] {
        let mut instance = ecwid_instance(&callback.url("/"));
        instance["configuration"][key] = value.clone();
        let answer = host.call("POST", "/instances", Some(&instance)).await;
        assert_eq!(
            refused_field(&answer),
            format!("configuration.{key}"),
            "{key} = {value}"
        );
        let message = answer.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(key), "{message}");
    }
    // A required key left out is the host's refusal too, before the connector is called.
    let mut instance = ecwid_instance(&callback.url("/"));
    instance["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("ecwid.store.id");
    let answer = host.call("POST", "/instances", Some(&instance)).await;
    assert_eq!(refused_field(&answer), "configuration.ecwid.store.id");
    assert!(answer.text().contains("required"), "{}", answer.text());

    // Values of the right types, as JSON or as text, pass; a change is checked the same way.
    let mut instance = ecwid_instance(&callback.url("/"));
    instance["configuration"]["ecwid.store.id"] = json!(1003);
    instance["configuration"]["base.url"] = json!(callback.url("/api/v3"));
    let created = create_instance(&host, &instance).await;
    let path = format!("/instances/{}", created["id"].as_i64().unwrap());
    let change = json!({"configuration": {"ecwid.access.token": [1, 2]}});
    let answer = host.call("PATCH", &path, Some(&change)).await;
    assert_eq!(refused_field(&answer), "configuration.ecwid.access.token");
    let change = json!({"configuration": {"ecwid.access.token": "t0ken"}});
    let answer = host.call("PATCH", &path, Some(&change)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(!answer.text().contains("t0ken"), "{}", answer.text());
}

#[tokio::test]
async fn a_0_1_connector_keeps_the_untyped_0_1_behaviour() {
    let (host, element) = host_with_the_kept_echo().await;
    assert_eq!(element["contractVersion"], "0.1.0");
    // The host has no types to check for it: any value of a free key passes to the
    // connector, which 0.1 made responsible for its own checks.
    let callback = Receiver::start().await;
    let mut instance = echo_instance(&callback.url("/"));
    instance["configuration"]["echo.anything"] = json!([1, 2]);
    create_instance(&host, &instance).await;
}

#[tokio::test]
async fn a_0_2_connector_is_handed_the_headers_without_hop_by_hop_ones() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let created = create_instance(&host, &echo_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap().to_string();
    let body = json!({"id": "$headers"}).to_string();
    let answer = webhook(
        &host,
        "echo",
        &[
            ("element-instances", &id),
            ("connection", "keep-alive, x-trace"),
            ("x-trace", "abc"),
            ("x-vendor-signature", "sig"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let got = eventually(Duration::from_secs(10), "the delivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    let seen = got.json()["message"]["events"][0]["objectId"]
        .as_str()
        .unwrap()
        .to_string();
    let seen: Vec<&str> = seen.split(',').collect();
    assert!(seen.contains(&"x-vendor-signature"), "{seen:?}");
    assert!(seen.contains(&"content-type"), "{seen:?}");
    for gone in ["connection", "x-trace", "content-length"] {
        assert!(
            !seen.contains(&gone),
            "{gone} reached the connector: {seen:?}"
        );
    }
}

#[tokio::test]
async fn webhooks_are_recognized_by_the_vendor_event_id_when_the_connector_gives_one() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let created = create_instance(&host, &echo_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap().to_string();
    let send = |body: serde_json::Value, event_id: &'static str| {
        let (host, id) = (&host, id.clone());
        async move {
            let answer = webhook(
                host,
                "echo",
                &[("element-instances", &id), ("x-echo-event-id", event_id)],
                body.to_string().as_bytes(),
            )
            .await;
            assert_eq!(answer.status, 200, "{}", answer.text());
            answer.json()["instances"][0]["duplicate"] == json!(true)
        }
    };
    // The vendor's retry of delivery d-1 with another body (a new timestamp): the same
    // webhook, not notified again.
    assert!(!send(json!({"id": "a", "sentAt": 1}), "d-1").await);
    assert!(send(json!({"id": "a", "sentAt": 2}), "d-1").await);
    // Another delivery with the same bytes as the first: a new event.
    assert!(!send(json!({"id": "a", "sentAt": 1}), "d-2").await);
    eventually(Duration::from_secs(10), "two deliveries", || async {
        (callback.delivered().len() == 2).then_some(())
    })
    .await;
}
