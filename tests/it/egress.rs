//! The outbound guard, proved with loopback forms only: a host started without
//! `--allow-network` refuses URLs with a literal loopback or unspecified address when they
//! are stored (a 400 naming the key), and refuses to connect to a name that resolves to
//! loopback, for callbacks and for vendor calls (a clear attempt or poll error; the server
//! behind it is never reached). Every other range is unit-tested in `host::egress` without
//! connecting.

use std::time::Duration;

use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::{echo_instance, infusionsoft_instance, pardot_instance};
use tests::standin::{StandIn, VendorAnswer, futures_answer};
use tests::{TestHost, create_instance, eventually, webhook};

const WITHIN: Duration = Duration::from_secs(10);

/// `http://127.0.0.1:PORT/path` spelled with another host.
fn respell(url: &str, host: &str) -> String {
    url.replacen("127.0.0.1", host, 1)
}

#[tokio::test]
async fn a_literal_refused_address_is_a_400_naming_its_key() {
    let host = TestHost::start_guarded(&["echo", "infusionsoftrest"], &[]);
    let callback = Receiver::start().await;
    let url = callback.url("/in");
    for spelled in [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
    ] {
        let answer = host
            .call(
                "POST",
                "/instances",
                Some(&echo_instance(&respell(&url, spelled))),
            )
            .await;
        assert_eq!(answer.status, 400, "{spelled}: {}", answer.text());
        let body = answer.json();
        assert_eq!(
            body["field"], "configuration.event.notification.callback.url",
            "{spelled}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("--allow-network"),
            "{body}"
        );
    }
    // A vendor URL too.
    let vendor = infusionsoft_instance(&respell(&url, "localhost"), "http://127.0.0.1:9/crm");
    let answer = host.call("POST", "/instances", Some(&vendor)).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["field"], "configuration.base.url");
    assert!(callback.received().is_empty());

    // The operator's allow-list opens a range, and only that range.
    let open = TestHost::start_guarded(&["echo"], &["--allow-network", "127.0.0.0/8"]);
    create_instance(&open, &echo_instance(&url)).await;
    let v6 = open
        .call(
            "POST",
            "/instances",
            Some(&echo_instance(&respell(&url, "[::1]"))),
        )
        .await;
    assert_eq!(v6.status, 400, "{}", v6.text());
}

#[tokio::test]
async fn a_callback_name_that_resolves_to_loopback_is_refused_when_connecting() {
    let host = TestHost::start_guarded(&["echo"], &["--retry-delays-ms", "50"]);
    let callback = Receiver::start().await;
    let created = create_instance(
        &host,
        &echo_instance(&respell(&callback.url("/in"), "localhost")),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let answer = webhook(
        &host,
        "echo",
        &[("Element-Instances", &id.to_string())],
        br#"{"id":"e1"}"#,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let event = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/instances/{id}/events/{event}");
    let failed = eventually(WITHIN, "the dead letter", || async {
        let e = host.call("GET", &path, None).await.json();
        (e["status"] == "FAILED").then_some(e)
    })
    .await;
    assert_eq!(failed["attempts"], 2, "{failed}");
    let deliveries = host
        .call("GET", &format!("{path}/deliveries"), None)
        .await
        .json();
    let attempts = deliveries["deliveries"][0]["attempts"].as_array().unwrap();
    for a in attempts {
        let error = a["error"].as_str().unwrap();
        assert!(error.contains("outbound guard"), "{error}");
        assert!(error.contains("loopback"), "{error}");
        assert_eq!(a["statusCode"], Value::Null);
    }
    assert!(
        callback.received().is_empty(),
        "the guard let a callback through"
    );
}

#[tokio::test]
async fn a_vendor_name_that_resolves_to_loopback_is_refused_for_oauth_and_polling() {
    let host = TestHost::start_guarded(&["infusionsoftrest", "pardot"], &[]);
    let callback = Receiver::start().await;
    let vendor = StandIn::start(|_req| {
        futures_answer::now(VendorAnswer::json(
            json!({"access_token": "t", "api_key": "k", "result": {}}),
        ))
    })
    .await;
    let base = respell(&vendor.url("/api"), "localhost");
    // The callback would be refused too, but nothing is notified: the vendor call fails
    // first.
    let callback_url = respell(&callback.url("/"), "localhost");

    // OAuth: the code exchange at creation.
    let answer = host
        .call(
            "POST",
            "/instances",
            Some(&infusionsoft_instance(&callback_url, &base)),
        )
        .await;
    assert_eq!(answer.status, 502, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("outbound guard") && message.contains("loopback"),
        "{message}"
    );

    // Polling: the login and the pages.
    let created = create_instance(&host, &pardot_instance(&callback_url, &base)).await;
    let id = created["id"].as_i64().unwrap();
    let answer = host
        .call("POST", &format!("/instances/{id}/events/poll"), None)
        .await;
    let report = answer.json();
    let error = report["resources"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("outbound guard") && error.contains("loopback"),
        "{}: {report}",
        answer.status
    );
    assert!(
        vendor.requests().is_empty(),
        "the guard let a vendor call through"
    );
    assert!(callback.received().is_empty());
}
