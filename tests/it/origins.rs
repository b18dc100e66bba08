//! Secrets follow their origin: moving `base.url` or the callback URL to another origin
//! needs the secrets the old origin received given again (a 400 naming them), and drops
//! the vendor tokens the host obtained there, so a caller who only sees `********` cannot
//! send them to a server of their choosing.

use serde_json::json;
use tests::receiver::Receiver;
use tests::seeds::{echo_instance, infusionsoft_instance};
use tests::standin::{StandIn, VendorAnswer, futures_answer};
use tests::{TestHost, create_instance, webhook};

/// A Keap stand-in: `/token` issues `at-<port>` / `rt-<port>`, every other path is an
/// empty page of appointments.
async fn keap() -> StandIn {
    let port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let p = port.clone();
    let standin = StandIn::start(move |req| {
        let n = p.get().copied().unwrap_or(0);
        futures_answer::now(if req.path == "/token" {
            VendorAnswer::json(json!({
                "access_token": format!("at-{n}"),
                "refresh_token": format!("rt-{n}"),
                "expires_in": 86400,
                "token_type": "bearer"
            }))
        } else {
            VendorAnswer::json(json!({"appointments": [], "count": 0}))
        })
    })
    .await;
    port.set(standin.addr().port()).unwrap();
    standin
}

fn field_and_message(answer: &tests::Answer) -> (String, String) {
    let body = answer.json();
    (
        body["field"].as_str().unwrap_or_default().to_string(),
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn moving_base_url_needs_the_vendor_secrets_again_and_drops_the_vendor_tokens() {
    let host = TestHost::start_with(&["infusionsoftrest"], &["--poll-now-interval-ms", "0"]);
    let callback = Receiver::start().await;
    let (old, new) = (keap().await, keap().await);
    let created = create_instance(
        &host,
        &infusionsoft_instance(&callback.url("/"), &old.url("/crm/rest/v1")),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let old_token = format!("Bearer at-{}", old.addr().port());
    assert_eq!(old.requests_to("/token").len(), 1, "the code exchange");
    let path = format!("/instances/{id}");
    let old_credentials: (
        i64,
        String,
        Option<String>,
        Option<i64>,
        i64,
        Option<String>,
    ) = rusqlite::Connection::open(host.data.join("store.sqlite"))
        .unwrap()
        .query_row(
            "SELECT instance_id, access_token, refresh_token, expires_at_ms, obtained_ms,
                        origin FROM credentials",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(old_credentials.1, format!("at-{}", old.addr().port()));
    let old_credentials = (
        old_credentials.1,
        old_credentials.2,
        old_credentials.3,
        old_credentials.4,
        old_credentials.5,
    );
    let moved = json!({"configuration": {"base.url": new.url("/crm/rest/v1")}});

    // Moved alone, or with the secrets sent back masked: refused, naming them.
    let refused = host.call("PATCH", &path, Some(&moved)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let (field, message) = field_and_message(&refused);
    assert_eq!(field, "configuration.oauth.api.secret", "{message}");
    assert!(message.contains("`configuration.base.url`"), "{message}");
    let mut masked = moved.clone();
    masked["configuration"]["oauth.api.secret"] = json!("********");
    let refused = host.call("PATCH", &path, Some(&masked)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    // A path on the same origin is no move.
    let same = json!({"configuration": {"base.url": old.url("/crm/rest/v2")}});
    let answer = host.call("PATCH", &path, Some(&same)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(new.requests().is_empty());

    // Given again: accepted, and the old origin's tokens are gone.
    let mut again = moved.clone();
    again["configuration"]["oauth.api.secret"] = json!("new-secret");
    let answer = host.call("PATCH", &path, Some(&again)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let _ = host
        .call("POST", &format!("{path}/events/poll"), None)
        .await;
    // A poll that was refreshing at the old origin when the instance moved writes its
    // tokens back after they were dropped: they still never go to the new origin.
    let store = rusqlite::Connection::open(host.data.join("store.sqlite")).unwrap();
    store
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    store
        .execute(
            "INSERT OR REPLACE INTO credentials VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                id,
                old_credentials.0,
                old_credentials.1,
                old_credentials.2,
                old_credentials.3,
                old_credentials.4
            ],
        )
        .unwrap();
    let _ = host
        .call("POST", &format!("{path}/events/poll"), None)
        .await;
    for r in new.requests() {
        assert_ne!(
            r.header("authorization"),
            Some(old_token.as_str()),
            "the old origin's access token went to the new origin: {r:?}"
        );
        let form = r.form();
        assert!(
            !form
                .iter()
                .any(|(_, v)| v.ends_with(&old.addr().port().to_string())),
            "the old origin's refresh token went to the new origin: {r:?}"
        );
    }
}

#[tokio::test]
async fn setting_an_unset_vendor_url_or_unsetting_one_is_a_move() {
    let host = TestHost::start(&["infusionsoftrest"]);
    let callback = Receiver::start().await;
    let keap = keap().await;
    // Without `base.url` the connector calls its default origin; events stay off, so the
    // host never polls it (tests connect to loopback only).
    let mut instance = infusionsoft_instance(&callback.url("/"), "unused");
    let config = instance["configuration"].as_object_mut().unwrap();
    config.remove("base.url");
    config.insert("event.notification.enabled".into(), json!(false));
    instance.as_object_mut().unwrap().remove("providerData");
    let created = create_instance(&host, &instance).await;
    let path = format!("/instances/{}", created["id"].as_i64().unwrap());

    let set = json!({"configuration": {"base.url": keap.url("/crm/rest/v1")}});
    let refused = host.call("PATCH", &path, Some(&set)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        field_and_message(&refused).0,
        "configuration.oauth.api.secret"
    );

    let mut with_secret = set.clone();
    with_secret["configuration"]["oauth.api.secret"] = json!("given-again");
    let answer = host.call("PATCH", &path, Some(&with_secret)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    // Cleared again (back to the default origin): a move as well.
    let clear = json!({"configuration": {"base.url": ""}});
    let refused = host.call("PATCH", &path, Some(&clear)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        field_and_message(&refused).0,
        "configuration.oauth.api.secret"
    );
    assert!(keap.requests().is_empty());
}

#[tokio::test]
async fn moving_the_callback_url_needs_its_basic_auth_and_headers_again() {
    let host = TestHost::start(&["echo"]);
    let (old, new) = (Receiver::start().await, Receiver::start().await);
    let mut instance = echo_instance(&old.url("/in"));
    let config = instance["configuration"].as_object_mut().unwrap();
    config.insert("event.notification.basic.username".into(), json!("me"));
    config.insert(
        "event.notification.basic.password".into(),
        json!("old-pass"),
    );
    config.insert(
        "event.notification.callback.headers".into(),
        json!({"x-token": "old-header-token"}),
    );
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/instances/{id}");

    let moved = json!({"configuration": {"event.notification.callback.url": new.url("/in")}});
    let refused = host.call("PATCH", &path, Some(&moved)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let (field, message) = field_and_message(&refused);
    assert!(
        field == "configuration.event.notification.basic.password"
            || field == "configuration.event.notification.callback.headers",
        "{field}"
    );
    assert!(
        message.contains("basic.password") && message.contains("callback.headers"),
        "{message}"
    );
    // Same origin, another path: no secrets needed.
    let same = json!({"configuration": {"event.notification.callback.url": old.url("/other")}});
    let answer = host.call("PATCH", &path, Some(&same)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let mut again = moved.clone();
    again["configuration"]["event.notification.basic.password"] = json!("new-pass");
    again["configuration"]["event.notification.callback.headers"] =
        json!({"x-token": "new-header-token"});
    let answer = host.call("PATCH", &path, Some(&again)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let sent = webhook(
        &host,
        "echo",
        &[("Element-Instances", &id.to_string())],
        br#"{"id":"moved"}"#,
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let got = tests::eventually(
        std::time::Duration::from_secs(10),
        "the delivery",
        || async {
            let got = new.received();
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(got[0].header("x-token"), Some("new-header-token"));
    let basic = got[0]
        .header("authorization")
        .unwrap_or_default()
        .to_string();
    assert!(basic.starts_with("Basic "), "{basic}");
    assert!(old.received().is_empty(), "{:?}", old.received());
}
