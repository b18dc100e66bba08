//! Connectors written in Python: the helper module's and the Shopify example's unit tests
//! under CPython, the example built with componentize-py and driven through a running host
//! (signed webhook in, signed notification out, a retry recognized by Shopify's delivery
//! id), `connectors check` on it, and a skeleton from `connectors new --lang python` that
//! builds with its one command, passes its unit tests and the check.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tests::python;
use tests::receiver::Receiver;
use tests::{TestHost, create_instance, eventually, get, host_binary, send};

/// An 18 MB component compiles in about 15 s on CI's 2 cores, more while other tests run.
const LOADED_WITHIN: Duration = Duration::from_secs(180);
const WITHIN: Duration = Duration::from_secs(20);
const SECRET: &str = "shpss_client_secret";
const SHOP: &str = "jsmith.myshopify.com";

fn hmac_b64(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn order_fixture() -> Vec<u8> {
    std::fs::read(python::root().join("connectors/shopify-py/fixtures/orders-create.json")).unwrap()
}

/// The headers Shopify sends with a webhook of `topic`, signed with `secret`.
fn shopify_headers(topic: &str, body: &[u8], secret: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-shopify-topic".into(), topic.into()),
        (
            "x-shopify-hmac-sha256".into(),
            hmac_b64(secret.as_bytes(), body),
        ),
        ("x-shopify-shop-domain".into(), SHOP.into()),
        ("x-shopify-api-version".into(), "2025-01".into()),
        (
            "x-shopify-webhook-id".into(),
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
        ),
        (
            "x-shopify-triggered-at".into(),
            "2023-03-29T18:00:27.877041743Z".into(),
        ),
    ]
}

#[test]
fn the_python_helper_and_example_pass_their_unit_tests() {
    let dir = tempfile::tempdir().unwrap();
    let bindings = dir.path().join("bindings");
    let root = python::root();
    python::bindings(&root.join("wit"), &bindings);
    let sdk = root.join("guest-sdk/python");
    for tests in [sdk.clone(), root.join("connectors/shopify-py")] {
        let report = python::unit_tests(&tests, &[&bindings, &sdk, &tests]);
        assert!(report.trim_end().ends_with("OK"), "{report}");
    }
}

#[tokio::test]
async fn a_shopify_webhook_through_the_python_connector_reaches_the_callback_signed() {
    let wasm = python::shopify_example();
    // With a spare instance of the heavy connector ready for each call (each still used
    // once): every answer below is the same as from a fresh instance made for the call.
    let host = TestHost::start_with(&[], &["--spare-instances"]);
    std::fs::copy(wasm, host.connectors.join("shopify-py.wasm")).unwrap();
    let element = eventually(LOADED_WITHIN, "the Python connector loaded", || async {
        let answer = get(&host.url("/elements/shopify")).await;
        (answer.status == 200).then(|| answer.json())
    })
    .await;
    assert_eq!(element["hub"], "ecommerce");
    assert_eq!(element["contractVersion"], "0.2.0", "{element}");

    // The host checks the keys the connector declares: the secret is required.
    let callback = Receiver::start().await;
    let mut instance = json!({
        "element": {"key": "shopify"},
        "configuration": {
            "shopify.shop.domain": SHOP,
            "event.notification.enabled": true,
            "event.vendor.type": "webhooks",
            "event.notification.callback.url": callback.url("/shopify"),
            "event.notification.signature.key": "abcd1234efgh5678"
        },
        "name": "My Shopify"
    });
    let refused = host.call("POST", "/instances", Some(&instance)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("shopify.client.secret"),
        "{}",
        refused.text()
    );
    // And the connector's own check: a URL is no shop domain.
    instance["configuration"]["shopify.client.secret"] = json!(SECRET);
    instance["configuration"]["shopify.shop.domain"] = json!("https://jsmith.myshopify.com");
    let refused = host.call("POST", "/instances", Some(&instance)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("shopify.shop.domain"),
        "{}",
        refused.text()
    );
    instance["configuration"]["shopify.shop.domain"] = json!(SHOP);
    let created = create_instance(&host, &instance).await;
    assert_eq!(
        created["configuration"]["shopify.client.secret"],
        "********"
    );
    let id = created["id"].as_i64().unwrap();
    // Shopify's payloads carry no shop id: each instance's webhook URL names it.
    let url = host.url(&format!(
        "/events/shopify/{}",
        STANDARD.encode(id.to_string())
    ));

    let body = order_fixture();
    let post = |headers: Vec<(String, String)>, body: Vec<u8>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            send("POST", &url, &headers, &body).await
        }
    };

    // A tampered body is refused, and nothing is notified.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let answer = post(shopify_headers("orders/create", &body, SECRET), tampered).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(
        answer.text().contains("X-Shopify-Hmac-Sha256"),
        "{}",
        answer.text()
    );

    let answer = post(
        shopify_headers("orders/create", &body, SECRET),
        body.clone(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["notifications"], 1);

    let got = eventually(WITHIN, "the notification", || async {
        callback.delivered().first().cloned()
    })
    .await;
    let message = &got.json()["message"];
    assert_eq!(message["elementKey"], "shopify");
    assert_eq!(message["instanceId"], json!(id));
    let events = message["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{message}");
    assert_eq!(events[0]["objectType"], "orders");
    assert_eq!(events[0]["objectId"], "820982911946154508");
    assert_eq!(events[0]["eventType"], "CREATED");
    assert_eq!(events[0]["date"], "2022-01-01T00:00:00Z");
    assert_eq!(events[0]["hubKey"], "ecommerce");
    let raw: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(message["raw"], raw);
    assert_eq!(
        got.header("elements-webhook-signature").unwrap(),
        format!("sha256={}", hmac_b64(b"abcd1234efgh5678", &got.body))
    );

    // Shopify's retry of the delivery: the same X-Shopify-Webhook-Id, here with other bytes
    // (the payload read and written again), is recognized by the id and not notified again.
    let again = serde_json::to_vec(&raw).unwrap();
    assert_ne!(again, body);
    let retried = post(shopify_headers("orders/create", &again, SECRET), again).await;
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(retried.json()["duplicate"], true, "{}", retried.text());

    // A deletion (another delivery id) carries only the order's id; its date is when
    // Shopify triggered the webhook.
    let deleted = br#"{"id":820982911946154508}"#.to_vec();
    let mut headers = shopify_headers("orders/delete", &deleted, SECRET);
    headers.retain(|(k, _)| k != "x-shopify-webhook-id");
    headers.push(("x-shopify-webhook-id".into(), "1b7f9c2e-delete".into()));
    let answer = post(headers, deleted).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Delivery keeps an instance's order: once the deletion has arrived, anything the
    // refused or the repeated webhook had queued would have arrived before it.
    let all = eventually(WITHIN, "the deletion", || async {
        let all = callback.delivered();
        (all.len() >= 2).then_some(all)
    })
    .await;
    assert_eq!(all.len(), 2, "one notification per accepted delivery");
    let event = &all[1].json()["message"]["events"][0];
    assert_eq!(event["eventType"], "DELETED");
    assert_eq!(event["objectId"], "820982911946154508");
    assert_eq!(event["date"], "2023-03-29T18:00:27.877041Z");
}

/// `connector-host connectors check FILE ARGS...`: (success, stdout, stderr).
fn check(file: &Path, args: &[String]) -> (bool, String, String) {
    let out = Command::new(host_binary())
        .args(["connectors", "check"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn connectors_check_accepts_the_python_example_and_refuses_a_bad_signature() {
    let wasm = python::shopify_example();
    let fixture = python::root().join("connectors/shopify-py/fixtures/orders-create.json");
    let body = order_fixture();
    let mut args: Vec<String> = vec![
        "--config".into(),
        format!("shopify.shop.domain={SHOP}"),
        "--config".into(),
        format!("shopify.client.secret={SECRET}"),
        "--webhook".into(),
        fixture.display().to_string(),
    ];
    for (k, v) in shopify_headers("orders/create", &body, SECRET) {
        args.extend(["--header".into(), format!("{k}: {v}")]);
    }
    let (ok, stdout, stderr) = check(wasm, &args);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["element"]["key"], "shopify");
    assert_eq!(report["config"], "valid");
    assert_eq!(report["events"][0]["objectType"], "orders");
    assert_eq!(report["events"][0]["objectId"], "820982911946154508");
    assert_eq!(report["events"][0]["eventType"], "CREATED");

    let signed_by_another = shopify_headers("orders/create", &body, "another secret");
    let mut bad = args[..6].to_vec();
    for (k, v) in signed_by_another {
        bad.extend(["--header".into(), format!("{k}: {v}")]);
    }
    let (ok, _, stderr) = check(wasm, &bad);
    assert!(!ok);
    assert!(stderr.contains("unauthorized"), "{stderr}");
}

#[test]
fn a_python_skeleton_builds_with_its_one_command_passes_its_tests_and_checks() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("demo-py");
    let out = Command::new(host_binary())
        .args(["connectors", "new", "demo-py", "--lang", "python", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "connectors new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    let command = "componentize-py -d wit -w connector componentize app -o demo-py.wasm";
    assert!(said.contains(command), "{said}");

    // Its unit tests, against the stub bindings, as its README says.
    let bindings = dir.join("bindings");
    python::bindings(&dir.join("wit"), &bindings);
    let report = python::unit_tests(&dir, &[&bindings, &dir]);
    assert!(report.trim_end().ends_with("OK"), "{report}");

    // The one build command, run in its folder.
    let mut words = command.split(' ');
    words.next();
    python::run(
        Command::new(python::componentize_py())
            .current_dir(&dir)
            .arg("-q")
            .args(words),
    );
    let fixture = dir.join("fixtures/webhook.json");
    let body = std::fs::read(&fixture).unwrap();
    let signature = format!("X-Signature: {}", hmac_b64(b"s3cret", &body));
    let (ok, stdout, stderr) = check(
        &dir.join("demo-py.wasm"),
        &[
            "--config".into(),
            "demo-py.webhook.secret=s3cret".into(),
            "--webhook".into(),
            fixture.display().to_string(),
            "--header".into(),
            signature,
        ],
    );
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["element"]["key"], "demo-py");
    assert_eq!(report["element"]["name"], "Demo Py");
    assert_eq!(report["element"]["contractVersion"], "0.2.0");
    assert_eq!(report["events"][0]["objectType"], "orders");
    assert_eq!(report["events"][0]["objectId"], "1001");
    assert_eq!(report["events"][0]["eventType"], "CREATED");
}

/// With spare instances on (`Runtime::set_spare_instances`), a heavy connector's calls are
/// served by spares made in the background, each used once: the answers are those of fresh
/// instances (a verified webhook's events, then a refusal of a bad signature, then the
/// events again), whether a spare was ready or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_instances_answer_python_calls_as_fresh_instances_do() {
    use runtime::types::{Context, WebhookRequest};
    let runtime = runtime::Runtime::new(runtime::Limits::default(), None).unwrap();
    runtime.set_spare_instances(true);
    let bytes = std::fs::read(python::shopify_example()).unwrap();
    let shopify = runtime.load("shopify.wasm", &bytes).await.unwrap();
    let ctx = Context {
        config: vec![
            ("shopify.shop.domain".into(), SHOP.into()),
            ("shopify.client.secret".into(), SECRET.into()),
        ],
        credentials: None,
    };
    let body = order_fixture();
    let request = |secret: &str| WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/shopify".into(),
        query: String::new(),
        headers: shopify_headers("orders/create", &body, secret),
        body: body.clone(),
    };
    for (i, secret) in [SECRET, SECRET, "wrong", SECRET, SECRET].iter().enumerate() {
        let answer = shopify
            .verify_and_parse_webhook(&ctx, &request(secret))
            .await;
        if *secret == SECRET {
            let events = answer.unwrap().unwrap();
            assert_eq!(events.len(), 1, "call {i}");
        } else {
            let e = answer.unwrap_err();
            assert!(
                matches!(
                    e,
                    runtime::CallError::Connector(runtime::types::ConnectorError::Unauthorized(_))
                ),
                "call {i}: {e:?}"
            );
        }
        shopify.validate_config(&ctx.config).await.unwrap();
        // Time for the background to make the next spare (some calls find none ready).
        if i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
