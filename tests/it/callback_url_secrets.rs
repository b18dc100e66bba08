//! The callback URL's secrets (a userinfo password, a `?token=`) never come back in an API
//! answer, while deliveries still go to the real URL; sending back the masked URL GET
//! showed keeps the stored one.

use std::time::Duration;

use serde_json::{Value, json};
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::standin::{StandIn, VendorAnswer, VendorRequest, futures_answer};
use tests::{Answer, TestHost, create_instance, eventually, webhook};

const WITHIN: Duration = Duration::from_secs(10);
const CALLBACK_URL: &str = "event.notification.callback.url";
const PASSWORD: &str = "s3cr3tpass";
const TOKEN: &str = "t0k3nvalue";

/// A callback receiver that answers 200 and records the path, the decoded query and the
/// headers of every request (the stand-in records the query, `Receiver` only the path).
async fn receiver() -> StandIn {
    StandIn::start(|_| {
        futures_answer::now(VendorAnswer {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
        })
    })
    .await
}

/// Panics when `text` (what the API answered to `what`) holds a callback secret.
fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD) && !text.contains(TOKEN),
        "{what} shows a callback URL secret: {text}"
    );
}

/// The answer's JSON, after checking its status and that its bytes hold no secret.
fn checked(what: &str, answer: Answer) -> Value {
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 200, "{what}: {text}");
    assert_no_secret(what, &text);
    answer.json()
}

/// Posts an Ecwid order webhook and waits for the receiver's `n`th request.
async fn deliver(host: &TestHost, callback: &StandIn, order: &str, n: usize) -> VendorRequest {
    let body = ecwid_order("order.created", order, 1003).to_string();
    assert_eq!(
        webhook(host, "ecwid", &[], body.as_bytes()).await.status,
        200
    );
    eventually(WITHIN, "the callback", || async {
        callback.requests().get(n - 1).cloned()
    })
    .await
}

#[tokio::test]
async fn callback_url_secrets_are_masked_in_answers_and_used_for_delivery() {
    let host = TestHost::start(&["ecwid"]);
    let callback = receiver().await;
    let addr = callback.addr();
    let real = format!("http://user:{PASSWORD}@{addr}/hook?token={TOKEN}&shop=1");
    let masked = format!("http://user:********@{addr}/hook?token=********&shop=1");

    let created = create_instance(&host, &ecwid_instance(&real)).await;
    assert_no_secret("POST /instances", &created.to_string());
    assert_eq!(created["configuration"][CALLBACK_URL], masked.as_str());
    let id = created["id"].as_i64().unwrap();

    let shown = checked(
        "GET /instances/{id}",
        host.call("GET", &format!("/instances/{id}"), None).await,
    );
    assert_eq!(shown["configuration"][CALLBACK_URL], masked.as_str());
    checked("GET /instances", host.call("GET", "/instances", None).await);
    let entries = checked(
        "GET /instances/{id}/configuration",
        host.call("GET", &format!("/instances/{id}/configuration"), None)
            .await,
    );
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == CALLBACK_URL)
        .unwrap()
        .clone();
    assert_eq!(entry["propertyValue"], masked.as_str());

    // The notification goes to the real URL, token and all, the userinfo as Basic auth.
    let got = deliver(&host, &callback, "A1", 1).await;
    assert_eq!(got.path, "/hook");
    let basic = got
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    // base64("user:s3cr3tpass")
    assert_eq!(basic.as_deref(), Some("Basic dXNlcjpzM2NyM3RwYXNz"));
    assert_eq!(got.param("token"), Some(TOKEN));
    assert_eq!(got.param("shop"), Some("1"));
    assert_eq!(got.method, "POST");

    // Its event summary shows the URL masked, in every view of it.
    let events = eventually(WITHIN, "the event marked NOTIFIED", || async {
        let events = checked(
            "GET /instances/{id}/events",
            host.call("GET", &format!("/instances/{id}/events"), None)
                .await,
        );
        (events[0]["status"] == "NOTIFIED").then_some(events)
    })
    .await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["callbackUrl"], masked.as_str());
    let event_id = events[0]["id"].as_str().unwrap().to_string();
    let event = checked(
        "GET /instances/{id}/events/{eventId}",
        host.call("GET", &format!("/instances/{id}/events/{event_id}"), None)
            .await,
    );
    assert_eq!(event["callbackUrl"], masked.as_str());
    checked(
        "GET /instances/{id}/events/{eventId}/deliveries",
        host.call(
            "GET",
            &format!("/instances/{id}/events/{event_id}/deliveries"),
            None,
        )
        .await,
    );

    // Sending back what GET showed keeps the stored URL, in both PATCH forms.
    let patched = checked(
        "PATCH /instances/{id}/configuration/{entryId}",
        host.call(
            "PATCH",
            &format!("/instances/{id}/configuration/{}", entry["id"]),
            Some(&json!({"propertyValue": masked})),
        )
        .await,
    );
    assert_eq!(patched["propertyValue"], masked.as_str());
    let got = deliver(&host, &callback, "A2", 2).await;
    assert_eq!(got.path, "/hook");
    assert_eq!(got.param("token"), Some(TOKEN), "the stored token is kept");

    let patched = checked(
        "PATCH /instances/{id}",
        host.call(
            "PATCH",
            &format!("/instances/{id}"),
            Some(&json!({"name": "renamed", "configuration": {CALLBACK_URL: masked}})),
        )
        .await,
    );
    assert_eq!(patched["configuration"][CALLBACK_URL], masked.as_str());
    assert_eq!(patched["name"], "renamed");
    let got = deliver(&host, &callback, "A3", 3).await;
    assert_eq!(got.param("token"), Some(TOKEN), "the stored token is kept");

    // A genuinely new URL replaces it, and is masked in turn.
    let new = format!("http://{addr}/other?access_token=n3wt0k3n");
    let patched = host
        .call(
            "PATCH",
            &format!("/instances/{id}/configuration/{}", entry["id"]),
            Some(&json!({"propertyValue": new})),
        )
        .await;
    let text = String::from_utf8_lossy(&patched.body).into_owned();
    assert_eq!(patched.status, 200, "{text}");
    assert!(!text.contains("n3wt0k3n"), "{text}");
    assert_eq!(
        patched.json()["propertyValue"],
        format!("http://{addr}/other?access_token=********")
    );
    let got = deliver(&host, &callback, "A4", 4).await;
    assert_eq!(got.path, "/other");
    assert_eq!(got.param("access_token"), Some("n3wt0k3n"));
    assert_eq!(got.param("token"), None);
}
