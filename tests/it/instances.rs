//! The instances API: the seeds' JSON as is, masked secrets, configuration entries, the
//! checks that name the bad key, and tenancy.

use std::time::Duration;

use serde_json::json;
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, get, send, webhook};

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn callback_headers_the_host_sets_cannot_be_configured() {
    let host = TestHost::start(&["ecwid"]);
    for name in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "webhook-signature",
    ] {
        let mut seed = ecwid_instance("http://127.0.0.1:9/hook");
        seed["configuration"]["event.notification.callback.headers"] = json!({name: "x"});
        let answer = host.call("POST", "/instances", Some(&seed)).await;
        assert_eq!(
            answer.status,
            400,
            "{name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let field = format!("configuration.event.notification.callback.headers.{name}");
        assert_eq!(answer.json()["field"], json!(field), "{}", answer.json());
    }
    // Any other header is fine.
    let mut seed = ecwid_instance("http://127.0.0.1:9/hook");
    seed["configuration"]["event.notification.callback.headers"] = json!({"x-tenant": "a"});
    assert_eq!(
        host.call("POST", "/instances", Some(&seed)).await.status,
        200
    );
}

#[tokio::test]
async fn the_seeds_ecwid_instance_is_accepted_with_secrets_masked() {
    let host = TestHost::start(&["ecwid"]);
    let callback = Receiver::start().await;
    let mut seed = ecwid_instance(&callback.url("/hook"));
    seed["configuration"]["event.notification.callback.headers"] =
        json!({"authorization": "Bearer callback-token-789"});
    let created = create_instance(&host, &seed).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["configuration"]["event.notification.callback.headers"],
        "********"
    );
    assert!(created["token"].as_str().is_some_and(|t| t.len() >= 32));
    assert_eq!(created["element"]["key"], "ecwid");
    assert_eq!(created["element"]["hub"], "ecommerce");
    assert_eq!(created["eventsEnabled"], true);
    assert_eq!(created["tags"], json!(["shop"]));

    let shown = host.call("GET", &format!("/instances/{id}"), None).await;
    assert_eq!(shown.status, 200);
    let shown = shown.json();
    let config = &shown["configuration"];
    assert_eq!(config["ecwid.order.key"], "********");
    assert_eq!(config["ecwid.product.key"], "********");
    assert_eq!(config["ecwid.store.id"], "1003");
    assert_eq!(config["event.notification.enabled"], "true");
    assert!(shown.get("token").is_none(), "the token is shown once");
    let text = shown.to_string();
    assert!(!text.contains("order-secret-123") && !text.contains("product-key-456"));
    assert!(!text.contains("callback-token-789"));

    let entries = host
        .call("GET", &format!("/instances/{id}/configuration"), None)
        .await
        .json();
    let entries = entries.as_array().unwrap();
    let order_key = entries
        .iter()
        .find(|e| e["key"] == "ecwid.order.key")
        .unwrap();
    assert_eq!(order_key["propertyValue"], "********");
    assert!(order_key["id"].as_i64().is_some());

    let listed = host.call("GET", "/instances", None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], json!(id));
}

#[tokio::test]
async fn patching_the_callback_entry_sends_the_next_notification_to_the_new_url() {
    let host = TestHost::start(&["ecwid"]);
    let (first, second) = (Receiver::start().await, Receiver::start().await);
    let created = create_instance(&host, &ecwid_instance(&first.url("/a"))).await;
    let id = created["id"].as_i64().unwrap();

    let body = ecwid_order("order.created", "A1", 1003).to_string();
    assert_eq!(
        webhook(&host, "ecwid", &[], body.as_bytes()).await.status,
        200
    );
    eventually(WITHIN, "the first callback", || async {
        (first.delivered().len() == 1).then_some(())
    })
    .await;

    let entries = host
        .call("GET", &format!("/instances/{id}/configuration"), None)
        .await
        .json();
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "event.notification.callback.url")
        .unwrap()
        .clone();
    let patched = host
        .call(
            "PATCH",
            &format!("/instances/{id}/configuration/{}", entry["id"]),
            Some(&json!({"propertyValue": second.url("/b")})),
        )
        .await;
    assert_eq!(
        patched.status,
        200,
        "{}",
        String::from_utf8_lossy(&patched.body)
    );
    assert_eq!(patched.json()["propertyValue"], second.url("/b"));

    let body = ecwid_order("order.updated", "A1", 1003).to_string();
    assert_eq!(
        webhook(&host, "ecwid", &[], body.as_bytes()).await.status,
        200
    );
    let got = eventually(WITHIN, "the second callback", || async {
        second.delivered().first().cloned()
    })
    .await;
    assert_eq!(got.path, "/b");
    assert_eq!(got.json()["message"]["events"][0]["eventType"], "UPDATED");
    assert_eq!(first.received().len(), 1, "the old URL gets nothing more");
}

#[tokio::test]
async fn bad_configurations_are_refused_naming_the_key() {
    let host = TestHost::start(&["ecwid", "pardot"]);
    let cases = [
        (
            json!({"element": {"key": "nope"}, "configuration": {}}),
            "element.key",
        ),
        (
            json!({"element": {"key": "ecwid"}, "configuration": {
                "ecwid.store.id": "1003", "event.notification.enabled": true}}),
            "configuration.event.notification.callback.url",
        ),
        (
            json!({"element": {"key": "ecwid"}, "configuration": {
                "ecwid.store.id": "1003", "event.notification.enabled": true,
                "event.notification.callback.url": "mailto:me@example.com"}}),
            "configuration.event.notification.callback.url",
        ),
        (
            json!({"element": {"key": "ecwid"}, "configuration": {
                "ecwid.store.id": "abc", "event.notification.enabled": false}}),
            "configuration.ecwid.store.id",
        ),
        (
            json!({"element": {"key": "pardot"}, "configuration": {
                "apikey.user.name": "u", "apikey.user.password": "p", "apikey.user.key": "k",
                "event.notification.enabled": true, "event.vendor.type": "webhooks",
                "event.notification.callback.url": "http://127.0.0.1:9/"}}),
            "configuration.event.vendor.type",
        ),
        (
            json!({"element": {"key": "pardot"}, "configuration": {
                "apikey.user.name": "u", "apikey.user.password": "p", "apikey.user.key": "k",
                "event.notification.enabled": true, "event.vendor.type": "polling",
                "event.poller.refresh_interval": "soon",
                "event.notification.callback.url": "http://127.0.0.1:9/"}}),
            "configuration.event.poller.refresh_interval",
        ),
        (
            json!({"element": {"key": "pardot"}, "configuration": {
                "apikey.user.name": "u", "apikey.user.password": "p", "apikey.user.key": "k",
                "event.notification.enabled": true, "event.vendor.type": "polling",
                "event.poller.refresh_interval": 1e18,
                "event.notification.callback.url": "http://127.0.0.1:9/"}}),
            "configuration.event.poller.refresh_interval",
        ),
        (
            json!({"element": {"key": "pardot"}, "configuration": {
                "apikey.user.name": "u", "apikey.user.password": "p", "apikey.user.key": "k",
                "event.notification.enabled": true, "event.vendor.type": "polling",
                "event.poller.configuration": {"contacts": {"url": "/hubs/marketing/contacts"}},
                "event.notification.callback.url": "http://127.0.0.1:9/"}}),
            "configuration.event.poller.configuration.contacts.idField",
        ),
    ];
    for (body, field) in cases {
        let answer = host.call("POST", "/instances", Some(&body)).await;
        assert_eq!(
            answer.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let error = answer.json();
        assert_eq!(error["field"], field, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    let not_json = send(
        "POST",
        &host.url("/instances"),
        &[("authorization", &host.authorization())],
        b"{nope",
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert!(
        not_json.json()["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(host.call("GET", "/instances", None).await.json(), json!([]));
}

#[tokio::test]
async fn credentials_are_required_and_organizations_are_walled_off() {
    let host = TestHost::start(&["ecwid"]);
    let callback = Receiver::start().await;
    let created = create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    let token = created["token"].as_str().unwrap().to_string();

    let missing = get(&host.url("/instances")).await;
    assert_eq!(missing.status, 401);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .contains("Authorization")
    );
    let wrong = send(
        "GET",
        &host.url("/instances"),
        &[("authorization", "User nope, Organization nope")],
        b"",
    )
    .await;
    assert_eq!(wrong.status, 401);

    // A second organization, added with the CLI next to the running host.
    let out = std::process::Command::new(tests::host_binary())
        .args(["orgs", "add", "other", "--data"])
        .arg(&host.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(other.starts_with("User ") && other.contains(", Organization "));
    let path = format!("/instances/{id}");
    for method in ["GET", "PATCH", "DELETE"] {
        let answer = send(
            method,
            &host.url(&path),
            &[("authorization", &other)],
            br#"{"name":"x"}"#,
        )
        .await;
        assert_eq!(answer.status, 404, "{method} by another organization");
    }
    let theirs = send(
        "GET",
        &host.url("/instances"),
        &[("authorization", &other)],
        b"",
    )
    .await;
    assert_eq!(theirs.json(), json!([]));

    // The instance's own token opens that instance only.
    let element = format!("Element {token}");
    let own = send("GET", &host.url(&path), &[("authorization", &element)], b"").await;
    assert_eq!(own.status, 200);
    assert_eq!(own.json()["id"], json!(id));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(host.data.join("authorization"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let deleted = host.call("DELETE", &path, None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(host.call("GET", &path, None).await.status, 404);
}
