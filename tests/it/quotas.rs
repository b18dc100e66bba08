//! Quotas per organization: instances (403 past the quota, other organizations unaffected),
//! configuration size, polled resources and the least refresh interval (400 naming the
//! field). Each names its flag.

use serde_json::{Value, json};
use tests::TestHost;
use tests::receiver::Receiver;
use tests::seeds::{echo_instance, infusionsoft_instance};

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_organization_gets_a_403_past_its_instance_quota_and_others_are_unaffected() {
    let host = TestHost::start_with(&["echo"], &["--max-instances-per-org", "2"]);
    let callback = Receiver::start().await;
    let instance = echo_instance(&callback.url("/"));
    for _ in 0..2 {
        let answer = host.call("POST", "/instances", Some(&instance)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let refused = host.call("POST", "/instances", Some(&instance)).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        message(&refused.json()).contains("--max-instances-per-org"),
        "{}",
        refused.text()
    );

    // Another organization has its own quota.
    let other = host.add_organization("other");
    let answer = host.post_instance_as(&other, &instance).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // Deleting one frees a place.
    let listed = host.call("GET", "/instances", None).await.json();
    let id = listed[0]["id"].as_i64().unwrap();
    let deleted = host.call("DELETE", &format!("/instances/{id}"), None).await;
    assert!(deleted.status < 300, "{}", deleted.text());
    let answer = host.call("POST", "/instances", Some(&instance)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[tokio::test]
async fn configuration_size_resources_and_refresh_interval_have_quotas() {
    let host = TestHost::start_with(
        &["echo", "infusionsoftrest"],
        &[
            "--max-config-bytes",
            "4096",
            "--max-poll-resources",
            "2",
            "--min-poll-interval-ms",
            "60000",
        ],
    );
    let callback = Receiver::start().await;

    let mut big = echo_instance(&callback.url("/"));
    big["configuration"]["padding"] = json!("x".repeat(5000));
    let refused = host.call("POST", "/instances", Some(&big)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["field"], "configuration");
    assert!(message(&refused.json()).contains("--max-config-bytes"));

    let keap = "http://127.0.0.1:9/crm/rest/v1";
    let mut many = infusionsoft_instance(&callback.url("/"), keap);
    let one = many["configuration"]["event.poller.configuration"]["appointments"].clone();
    for name in ["notes", "tasks"] {
        many["configuration"]["event.poller.configuration"][name] = one.clone();
    }
    let refused = host.call("POST", "/instances", Some(&many)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        refused.json()["field"],
        "configuration.event.poller.configuration"
    );
    assert!(message(&refused.json()).contains("--max-poll-resources"));

    let mut fast = infusionsoft_instance(&callback.url("/"), keap);
    fast["configuration"]["event.poller.refresh_interval"] = json!("0.5");
    let refused = host.call("POST", "/instances", Some(&fast)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        refused.json()["field"],
        "configuration.event.poller.refresh_interval"
    );
    assert!(message(&refused.json()).contains("--min-poll-interval-ms"));

    // A change is held to the same quotas.
    let created = host
        .call(
            "POST",
            "/instances",
            Some(&echo_instance(&callback.url("/"))),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let id = created.json()["id"].as_i64().unwrap();
    let patch = json!({"configuration": {"padding": "x".repeat(5000)}});
    let refused = host
        .call("PATCH", &format!("/instances/{id}"), Some(&patch))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["field"], "configuration");
}

#[tokio::test]
async fn changes_at_once_cannot_together_pass_the_configuration_quota() {
    let host = TestHost::start_with(&["echo"], &["--max-config-bytes", "8192"]);
    let callback = Receiver::start().await;
    let created = host
        .call(
            "POST",
            "/instances",
            Some(&echo_instance(&callback.url("/"))),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let path = format!("/instances/{}", created.json()["id"].as_i64().unwrap());
    // Each change alone fits (3 KB); any three together do not.
    let changes = (0..8).map(|i| {
        let body = json!({"configuration": {format!("padding.{i}"): "x".repeat(3000)}});
        let (host, path) = (&host, &path);
        async move { host.call("PATCH", path, Some(&body)).await.status }
    });
    let statuses = futures_util::future::join_all(changes).await;
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    assert_eq!(accepted, 2, "{statuses:?}");
    let shown = host.call("GET", &path, None).await.json();
    let paddings = shown["configuration"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("padding."))
        .count();
    assert_eq!(paddings, 2, "{shown}");
}
