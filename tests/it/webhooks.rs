//! Vendor webhooks in, signed notifications out: over real HTTP, with a real callback
//! server.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tests::receiver::Receiver;
use tests::seeds::{echo_instance, ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, get, webhook};

const WITHIN: Duration = Duration::from_secs(10);

fn hmac_b64(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn an_ecwid_order_reaches_the_callback_signed_both_ways() {
    let host = TestHost::start(&["ecwid"]);
    let callback = Receiver::start().await;
    let key = "abcd1234efgh5678";
    let mut instance = ecwid_instance(&callback.url("/events"));
    instance["configuration"]["event.notification.signature.key"] = json!(key);
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["configuration"]["event.notification.signature.key"],
        "********"
    );

    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ecwid/order-created.json"),
    )
    .unwrap();
    let answer = webhook(&host, "ecwid?eventtype=order.created", &[], &body).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["notifications"], 1);

    let got = eventually(WITHIN, "the notification", || async {
        callback.delivered().first().cloned()
    })
    .await;
    let n = got.json();
    let message = &n["message"];
    assert_eq!(message["elementKey"], "ecwid");
    assert_eq!(message["instanceId"], json!(id));
    assert_eq!(message["instance_id"], json!(id));
    assert_eq!(message["instanceName"], "My Ecwid");
    assert_eq!(message["instanceTags"], json!(["shop"]));
    let events = message["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["eventType"], "CREATED");
    assert_eq!(events[0]["objectType"], "orders");
    assert_eq!(events[0]["objectId"], "XJ12H");
    assert_eq!(events[0]["hubKey"], "ecommerce");
    let raw: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(message["raw"], raw);

    // Elements-Webhook-Signature: HMAC-SHA256 over the exact body bytes.
    assert_eq!(
        got.header("elements-webhook-signature").unwrap(),
        format!("sha256={}", hmac_b64(key.as_bytes(), &got.body))
    );
    let event_id = message["eventId"].as_str().unwrap();
    assert_eq!(got.header("elements-webhook-id"), Some(event_id));

    // Standard Webhooks: secret `whsec_` + base64(key); signed "id.timestamp.body".
    let secret = format!("whsec_{}", STANDARD.encode(key));
    let key_bytes = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let wid = got.header("webhook-id").unwrap();
    let ts = got.header("webhook-timestamp").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - ts.parse::<i64>().unwrap()).abs() < 300,
        "timestamp {ts}"
    );
    let mut signed = format!("{wid}.{ts}.").into_bytes();
    signed.extend_from_slice(&got.body);
    let expected = format!("v1,{}", hmac_b64(&key_bytes, &signed));
    let offered: Vec<&str> = got
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert!(
        offered.contains(&expected.as_str()),
        "{offered:?} vs {expected}"
    );

    // The event is listed as NOTIFIED with its attempt.
    let listed = eventually(WITHIN, "status NOTIFIED", || async {
        let list = host
            .call("GET", &format!("/instances/{id}/events"), None)
            .await
            .json();
        (list[0]["status"] == "NOTIFIED").then_some(list)
    })
    .await;
    assert_eq!(listed[0]["id"], event_id);
    let one = host
        .call("GET", &format!("/instances/{id}/events/{event_id}"), None)
        .await
        .json();
    assert_eq!(one["providerData"], raw);
}

#[tokio::test]
async fn forty_five_events_make_three_notifications_each_with_the_whole_raw_body() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let created = create_instance(&host, &echo_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap().to_string();
    let body = json!({"id": "batch", "count": 45, "padding": "x".repeat(100)});
    let answer = webhook(
        &host,
        "echo",
        &[("element-instances", &id)],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let got = eventually(WITHIN, "three notifications", || async {
        let d = callback.delivered();
        (d.len() >= 3).then_some(d)
    })
    .await;
    assert_eq!(got.len(), 3);
    let sizes: Vec<usize> = got
        .iter()
        .map(|r| r.json()["message"]["events"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [20, 20, 5], "in acceptance order");
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.json()["message"]["eventId"].as_str().unwrap().to_string())
        .collect();
    for r in &got {
        assert_eq!(r.json()["message"]["raw"], body);
    }
    let objects: Vec<String> = got
        .iter()
        .flat_map(|r| {
            r.json()["message"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["objectId"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(objects.len(), 45);
    assert_eq!(objects[44], "batch-44");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each notification has its own eventId");
}

#[tokio::test]
async fn element_instances_lists_each_instance_once_and_at_most_sixteen_ids() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let created = create_instance(&host, &echo_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap().to_string();
    let body = br#"{"id": "amplified"}"#;

    // The amplification probe: one webhook naming the same instance 500 times (17 is
    // already too many) is refused whole, naming the header, and stores nothing.
    for times in [500, 17] {
        let listed = vec![id.as_str(); times].join(",");
        let refused = webhook(&host, "echo", &[("element-instances", &listed)], body).await;
        assert_eq!(
            refused.status,
            400,
            "{times}: {}",
            String::from_utf8_lossy(&refused.body)
        );
        let message = refused.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("Element-Instances") && message.contains("16"),
            "{message}"
        );
    }
    let events = host
        .call("GET", &format!("/instances/{id}/events"), None)
        .await;
    assert_eq!(events.json(), json!([]));

    // Sixteen ids, all the same: one notification, once.
    let listed = vec![id.as_str(); 16].join(", ");
    let once = webhook(&host, "echo", &[("element-instances", &listed)], body).await;
    assert_eq!(once.status, 200, "{}", String::from_utf8_lossy(&once.body));
    let events = host
        .call("GET", &format!("/instances/{id}/events"), None)
        .await;
    assert_eq!(
        events.json().as_array().unwrap().len(),
        1,
        "{}",
        events.json()
    );
    eventually(WITHIN, "the one delivery", || async {
        (!callback.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(callback.delivered().len(), 1);
}

#[tokio::test]
async fn instances_are_found_by_header_by_path_suffix_and_by_the_payload() {
    let host = TestHost::start(&["ecwid"]);
    let callback = Receiver::start().await;
    let created = create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    let body = |order: &str| ecwid_order("order.updated", order, 1003).to_string();
    // By the payload (ecwid.store.id = storeId).
    assert_eq!(
        webhook(&host, "ecwid", &[], body("P").as_bytes())
            .await
            .status,
        200
    );
    // By the header.
    let header = id.to_string();
    let by_header = webhook(
        &host,
        "ecwid",
        &[("element-instances", &header)],
        body("H").as_bytes(),
    )
    .await;
    assert_eq!(by_header.status, 200);
    // By the path suffix.
    let suffix = STANDARD.encode(id.to_string());
    let by_path = webhook(&host, &format!("ecwid/{suffix}"), &[], body("S").as_bytes()).await;
    assert_eq!(by_path.status, 200);
    let got = eventually(WITHIN, "three notifications", || async {
        let d = callback.delivered();
        (d.len() == 3).then_some(d)
    })
    .await;
    let order_ids: Vec<Value> = got
        .iter()
        .map(|r| r.json()["message"]["events"][0]["objectId"].clone())
        .collect();
    assert_eq!(order_ids, [json!("P"), json!("H"), json!("S")]);
    // Form bodies are accepted too (the raw body becomes an object of the fields).
    let form = webhook(
        &host,
        &format!("ecwid/{suffix}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"storeId=1003&eventType=order.deleted&entityId=77",
    )
    .await;
    // Ecwid's connector reads JSON only: a clear 400, not a crash.
    assert_eq!(form.status, 400, "{}", String::from_utf8_lossy(&form.body));
}

#[tokio::test]
async fn bad_webhooks_get_the_right_4xx_and_store_nothing() {
    let host = TestHost::start_with(&["ecwid"], &["--body-limit", "4096"]);
    let callback = Receiver::start().await;
    let mut instance = ecwid_instance(&callback.url("/"));
    instance["configuration"]["ecwid.client.secret"] = json!("abcde123456789");
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "XJ12H", 1003).to_string();

    let malformed = webhook(&host, "ecwid", &[], b"{\"storeId\": 1003,").await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.json()["message"]
            .as_str()
            .unwrap()
            .contains("JSON"),
        "{}",
        malformed.json()
    );

    let unknown_connector = webhook(&host, "shopify", &[], order.as_bytes()).await;
    assert_eq!(unknown_connector.status, 404);
    assert!(
        unknown_connector.json()["message"]
            .as_str()
            .unwrap()
            .contains("shopify")
    );

    let unknown_instance = webhook(
        &host,
        "ecwid",
        &[("element-instances", "999999")],
        order.as_bytes(),
    )
    .await;
    assert_eq!(unknown_instance.status, 404);
    let unknown_store = ecwid_order("order.created", "XJ12H", 4242).to_string();
    let unmatched = webhook(&host, "ecwid", &[], unknown_store.as_bytes()).await;
    assert_eq!(unmatched.status, 404);
    assert!(
        unmatched.json()["message"]
            .as_str()
            .unwrap()
            .contains("4242")
    );

    let unsigned = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(unsigned.status, 401);
    let forged = webhook(
        &host,
        "ecwid",
        &[(
            "x-ecwid-webhook-signature",
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
        )],
        order.as_bytes(),
    )
    .await;
    assert_eq!(
        forged.status, 401,
        "a signature for another event does not verify"
    );
    assert!(
        forged.json()["message"]
            .as_str()
            .unwrap()
            .contains("does not")
    );

    let big = json!({"storeId": 1003, "pad": "x".repeat(8192)}).to_string();
    let oversized = webhook(&host, "ecwid", &[], big.as_bytes()).await;
    assert_eq!(oversized.status, 413);
    assert!(
        oversized.json()["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );

    // Nothing was stored, nothing was sent, and the host still answers.
    let events = host
        .call("GET", &format!("/instances/{id}/events"), None)
        .await;
    assert_eq!(events.json(), json!([]));
    assert!(callback.received().is_empty());
    assert_eq!(get(&host.url("/elements")).await.status, 200);

    // The right signature is accepted.
    let signed_body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ecwid/order-created.json"),
    )
    .unwrap();
    let ok = webhook(
        &host,
        "ecwid",
        &[(
            "x-ecwid-webhook-signature",
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
        )],
        &signed_body,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let metrics = String::from_utf8(get(&host.root_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(metrics.contains("webhooks_accepted_total 1"), "{metrics}");
    assert!(
        metrics.contains("webhooks_refused_total{reason=\"unauthorized\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("webhooks_refused_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_webhook_for_an_instance_with_events_off_is_accepted_and_dropped() {
    let host = TestHost::start(&["ecwid"]);
    let callback = Receiver::start().await;
    let mut instance = ecwid_instance(&callback.url("/"));
    instance["configuration"]["event.notification.enabled"] = json!(false);
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "XJ12H", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200);
    let a = answer.json();
    assert_eq!(a["accepted"], false);
    assert!(
        a["instances"][0]["dropped"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{a}"
    );
    let events = host
        .call("GET", &format!("/instances/{id}/events"), None)
        .await;
    assert_eq!(events.json(), json!([]));
}

#[tokio::test]
async fn another_organizations_instance_cannot_block_or_read_signed_webhooks() {
    let host = TestHost::start(&["ecwid"]);
    let (ours, theirs) = (Receiver::start().await, Receiver::start().await);
    let mut instance = ecwid_instance(&ours.url("/ours"));
    instance["configuration"]["ecwid.client.secret"] = json!("abcde123456789");
    create_instance(&host, &instance).await;

    // Another organization claims the same store id with a secret of its own.
    let mut intruder = ecwid_instance(&theirs.url("/theirs"));
    intruder["configuration"]["ecwid.client.secret"] = json!("not-the-real-secret");
    create_instance_in_another_org(&host, &intruder).await;

    let answer = signed_order_created(&host).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["instances"].as_array().unwrap().len(), 1);
    eventually(WITHIN, "our notification", || async {
        (!ours.delivered().is_empty()).then_some(())
    })
    .await;
    assert!(
        theirs.received().is_empty(),
        "the other organization got nothing"
    );
}

#[tokio::test]
async fn connectors_are_not_given_the_hosts_own_notification_keys() {
    let host = TestHost::start(&["echo"]);
    let callback = Receiver::start().await;
    let mut instance = echo_instance(&callback.url("/"));
    let config = &mut instance["configuration"];
    config["event.notification.signature.key"] = json!("sign-me-0123456789");
    config["event.notification.basic.username"] = json!("hook");
    config["event.notification.basic.password"] = json!("basic-pass-0123");
    config["event.notification.callback.headers"] = json!({"x-api-key": "header-secret-0123"});
    config["echo.setting"] = json!("plain");
    // An OAuth2 code: the code exchange step sees the configuration too.
    instance["providerData"] = json!({"code": "code-0123"});
    let id = create_instance(&host, &instance).await["id"]
        .as_i64()
        .unwrap();

    let answer = webhook(
        &host,
        "echo",
        &[("element-instances", &id.to_string())],
        br#"{"id": "$config-keys"}"#,
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let delivered = eventually(WITHIN, "the notification", || async {
        callback.delivered().into_iter().next()
    })
    .await;
    let body: Value = serde_json::from_slice(&delivered.body).unwrap();
    let keys = body["message"]["events"][0]["objectId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(keys.split(',').any(|k| k == "echo.setting"), "{keys}");
    assert!(
        !keys.contains("event.notification."),
        "the connector saw the host's keys: {keys}"
    );

    // `validate-config` does not see them either: the echo guest refuses any it is given,
    // so the creation above and this change would be 400s.
    let change =
        json!({"configuration": {"event.notification.signature.key": "sign-me-9876543210"}});
    let answer = host
        .call("PATCH", &format!("/instances/{id}"), Some(&change))
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

/// Adds an organization with the CLI next to the running host and creates `instance` in
/// it; returns the instance's id.
async fn create_instance_in_another_org(host: &TestHost, instance: &Value) -> i64 {
    let other = host.add_organization("other");
    let answer = host.post_instance_as(&other, instance).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["id"].as_i64().unwrap()
}

/// Posts the FACTS.md Ecwid fixture (store 1003) with its signature for the secret
/// `abcde123456789`, found by the instance finder.
async fn signed_order_created(host: &TestHost) -> tests::Answer {
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ecwid/order-created.json"),
    )
    .unwrap();
    webhook(
        host,
        "ecwid",
        &[(
            "x-ecwid-webhook-signature",
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
        )],
        &body,
    )
    .await
}

#[tokio::test]
async fn another_organizations_instance_without_a_secret_cannot_read_our_webhooks() {
    let host = TestHost::start(&["ecwid"]);
    let (ours, theirs) = (Receiver::start().await, Receiver::start().await);
    let mut instance = ecwid_instance(&ours.url("/ours"));
    instance["configuration"]["ecwid.client.secret"] = json!("abcde123456789");
    let our_id = create_instance(&host, &instance).await["id"]
        .as_i64()
        .unwrap();

    // Another organization names the same store and sets no secret: its instance would
    // take any webhook for store 1003, ours included.
    let intruder_id =
        create_instance_in_another_org(&host, &ecwid_instance(&theirs.url("/theirs"))).await;

    let answer = signed_order_created(&host).await;
    accepted_for_ours_alone(&answer, our_id, &ours).await;

    // An unsigned webhook for the store verifies with nobody's secret: refused, and the
    // intruder does not get it either.
    let forged = ecwid_order("order.created", "FORGED", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], forged.as_bytes()).await;
    assert_eq!(
        answer.status,
        401,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    // Sent to the intruder's own instance by id, a webhook is theirs to read.
    let answer = webhook(
        &host,
        "ecwid",
        &[("element-instances", &intruder_id.to_string())],
        forged.as_bytes(),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    eventually(WITHIN, "their own notification", || async {
        (!theirs.received().is_empty()).then_some(())
    })
    .await;
    let received = theirs.received();
    assert_eq!(received.len(), 1, "only the webhook sent to their instance");
    assert!(
        !String::from_utf8_lossy(&received[0].body).contains("XJ12H"),
        "the intruder never saw our order"
    );
}

#[tokio::test]
async fn a_webhook_the_finder_matches_in_several_organizations_without_secrets_is_refused() {
    let host = TestHost::start(&["ecwid"]);
    let (ours, theirs) = (Receiver::start().await, Receiver::start().await);
    let our_id = create_instance(&host, &ecwid_instance(&ours.url("/ours"))).await["id"]
        .as_i64()
        .unwrap();
    create_instance_in_another_org(&host, &ecwid_instance(&theirs.url("/theirs"))).await;

    let order = ecwid_order("order.created", "XJ12H", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(
        answer.status,
        409,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let message = answer.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("ecwid.store.id = 1003"), "{message}");
    assert!(
        message.contains("/events/ecwid/<base64 instance id>"),
        "{message}"
    );
    let events = host
        .call("GET", &format!("/instances/{our_id}/events"), None)
        .await;
    assert_eq!(events.json(), json!([]), "nothing stored");
    let metrics = String::from_utf8(get(&host.root_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("webhooks_refused_total{reason=\"conflict\"} 1"),
        "{metrics}"
    );
}

/// The value of an unlabelled Prometheus sample in `text`.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

#[tokio::test]
async fn concurrent_webhooks_show_in_the_group_commit_metrics() {
    let host = TestHost::start(&["ecwid"]);
    // Deliveries write too (their attempts), so the webhooks' writes are a lower bound.
    let callback = Receiver::start().await;
    create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let before = String::from_utf8(get(&host.root_url("/metrics")).await.body.to_vec()).unwrap();
    let (commits0, writes0) = (
        sample(&before, "store_commits_total"),
        sample(&before, "store_writes_total"),
    );
    assert!(commits0 >= 1 && writes0 >= commits0, "{before}");

    const N: usize = 32;
    let orders: Vec<String> = (0..N)
        .map(|i| ecwid_order("order.created", &format!("G{i}"), 1003).to_string())
        .collect();
    let answers = futures_util::future::join_all(
        orders
            .iter()
            .map(|o| webhook(&host, "ecwid", &[], o.as_bytes())),
    )
    .await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }

    let after = String::from_utf8(get(&host.root_url("/metrics")).await.body.to_vec()).unwrap();
    assert_eq!(
        sample(&after, "webhooks_accepted_total"),
        N as u64,
        "{after}"
    );
    let (commits, writes) = (
        sample(&after, "store_commits_total") - commits0,
        sample(&after, "store_writes_total") - writes0,
    );
    // Every accepted webhook is at least one committed write, and no transaction is empty.
    // (That concurrent writes share transactions is shown by the store's own tests, where
    // the burst is controlled; here it depends on timing.)
    assert!(
        writes >= N as u64,
        "{writes} writes for {N} webhooks\n{after}"
    );
    assert!(
        commits >= 1 && commits <= writes,
        "{commits} commits, {writes} writes"
    );
}

/// Checks that `answer` accepted a webhook for instance `id` alone, and waits until `ours`
/// (its callback) has the notification.
async fn accepted_for_ours_alone(answer: &tests::Answer, id: i64, ours: &Receiver) {
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let instances = answer.json()["instances"].clone();
    assert_eq!(instances.as_array().unwrap().len(), 1, "{instances}");
    assert_eq!(instances[0]["instanceId"], id, "{instances}");
    eventually(WITHIN, "our notification", || async {
        (!ours.delivered().is_empty()).then_some(())
    })
    .await;
}

/// A `signer` instance (found by `signer.account`) with `extra` configuration.
fn signer_instance(callback_url: &str, extra: Value) -> Value {
    let mut config = json!({
        "event.notification.enabled": true,
        "event.vendor.type": "webhooks",
        "event.notification.callback.url": callback_url,
        "signer.account": "7"
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({"element": {"key": "signer"}, "configuration": config, "name": "signer"})
}

#[tokio::test]
async fn a_shared_finder_match_goes_only_to_instances_with_a_secret_whose_check_works() {
    let host = TestHost::start(&["signer"]);
    let (ours, careless, broken) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let id = create_instance(
        &host,
        &signer_instance(&ours.url("/"), json!({"signer.secret": "s3cret-ours"})),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // Another organization's instance has no secret, but its connector refuses the
    // unsigned body anyway: that alone must not let it read our webhooks.
    create_instance_in_another_org(&host, &signer_instance(&careless.url("/"), json!({}))).await;
    // A third one's signature check traps: it is left out, and does not fail ours.
    create_instance_in_another_org(
        &host,
        &signer_instance(
            &broken.url("/"),
            json!({"signer.secret": "s3cret-theirs", "signer.fail": "true"}),
        ),
    )
    .await;

    let answer = webhook(
        &host,
        "signer",
        &[("x-signer-signature", "anything")],
        br#"{"account": 7, "id": "w1"}"#,
    )
    .await;
    accepted_for_ours_alone(&answer, id, &ours).await;
    assert!(careless.received().is_empty() && broken.received().is_empty());
}
