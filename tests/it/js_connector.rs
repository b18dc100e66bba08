//! The JavaScript example connector (`connectors/github-js`, built with componentize-js):
//! its `node --test` unit tests and the helper module's, `connectors check` on the built
//! component with the example's fixture, and a running host driven from a signed GitHub
//! delivery to a signed callback.
//!
//! componentize-js comes from `target/tools/js` (`./dev.sh test` installs the pinned
//! version there with npm), or from `COMPONENTIZE_JS_HOME`. The component (about 12 MB) is
//! built once per run, and kept under `target/tools/js/built/` by the digest of its inputs,
//! so a run whose sources did not change builds nothing.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use tests::js::{component, example, repo};
use tests::receiver::Receiver;
use tests::{TestHost, create_instance, eventually, get, host_binary, webhook};

/// The webhook secret of the test instances.
const SECRET: &str = "It's a Secret to Everybody";
/// The repository of the fixture (`repository.full_name`).
const REPOSITORY: &str = "Codertocat/Hello-World";
/// A 12 MB component takes many seconds to compile on two busy cores.
const LOADED_WITHIN: Duration = Duration::from_secs(180);
const WITHIN: Duration = Duration::from_secs(20);

fn fixture() -> Vec<u8> {
    std::fs::read(example().join("fixtures/issues-opened.json")).unwrap()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256=<hex HMAC-SHA256 of body>`, GitHub's `X-Hub-Signature-256`.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", to_hex(&mac.finalize().into_bytes()))
}

#[test]
fn the_javascript_unit_tests_pass() {
    let run = Command::new("node")
        .args(["--test", "guest-sdk/js/", "connectors/github-js/"])
        .current_dir(repo())
        .output()
        .expect("node (20 or later) runs the JavaScript unit tests");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let count = |what: &str| -> usize {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("# {what} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `# {what}` line in:\n{out}"))
    };
    assert_eq!(count("fail"), 0, "{out}");
    assert!(count("pass") >= 15, "too few JavaScript tests ran:\n{out}");
}

fn check(signature: &str) -> (bool, String, String) {
    let fixture = example().join("fixtures/issues-opened.json");
    let out = Command::new(host_binary())
        .args(["connectors", "check"])
        .arg(component())
        .args(["--config", &format!("github.webhook.secret={SECRET}")])
        .args(["--config", &format!("github.repository={REPOSITORY}")])
        .arg("--webhook")
        .arg(&fixture)
        .args(["--header", "X-GitHub-Event: issues"])
        .args([
            "--header",
            "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ])
        .args(["--header", &format!("X-Hub-Signature-256: {signature}")])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn connectors_check_accepts_the_built_component_and_its_fixture() {
    let (ok, stdout, stderr) = check(&sign(SECRET, &fixture()));
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["element"]["key"], "github", "{report}");
    assert_eq!(report["config"], "valid", "{report}");
    let event = &report["events"][0];
    assert_eq!(event["objectType"], "issues", "{report}");
    assert_eq!(event["objectId"], "444500041", "{report}");
    assert_eq!(event["eventType"], "CREATED", "{report}");
}

/// A delivery to `POST /events/github`, as GitHub sends it.
async fn deliver(host: &TestHost, delivery: &str, body: &[u8], signature: &str) -> tests::Answer {
    webhook(
        host,
        "github",
        &[
            ("x-github-event", "issues"),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", signature),
            ("user-agent", "GitHub-Hookshot/044aadd"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn a_signed_github_delivery_reaches_the_callback_once() {
    let wasm = component();
    let host = TestHost::start(&[]);
    std::fs::copy(wasm, host.connectors.join("github.wasm")).unwrap();
    let element = eventually(LOADED_WITHIN, "the github component loaded", || async {
        let answer = get(&host.url("/elements/github")).await;
        (answer.status == 200).then(|| answer.json())
    })
    .await;
    assert_eq!(element["contractVersion"], "0.2.0", "{element}");

    let callback = Receiver::start().await;
    let key = "sign-me-0123456789";
    let instance = json!({
        "element": {"key": "github"},
        "configuration": {
            "github.webhook.secret": SECRET,
            "github.repository": REPOSITORY,
            "event.notification.enabled": "true",
            "event.notification.callback.url": callback.url("/github"),
            "event.notification.signature.key": key
        },
        "tags": ["dev"],
        "name": "Hello-World issues"
    });
    // The connector checks nothing itself (its `validate` is unset): the host's check of
    // the declared keys refuses a required key left out, and a value of the wrong type.
    let mut without = instance.clone();
    without["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("github.repository");
    let refused = host.call("POST", "/instances", Some(&without)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()["field"], "configuration.github.repository");
    let mut wrong = instance.clone();
    wrong["configuration"]["github.webhook.secret"] = json!(["not", "a", "string"]);
    let refused = host.call("POST", "/instances", Some(&wrong)).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        refused.json()["field"],
        "configuration.github.webhook.secret"
    );
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["configuration"]["github.webhook.secret"],
        "********"
    );

    // A wrongly signed delivery is refused, before anything is stored.
    let body = fixture();
    let forged = deliver(&host, "forged-1", &body, &sign("guess", &body)).await;
    assert_eq!(forged.status, 401, "{}", forged.text());
    assert!(!forged.text().contains(SECRET), "{}", forged.text());

    // The signed one: found by repository.full_name, delivered signed.
    let first = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let answer = deliver(&host, first, &body, &sign(SECRET, &body)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["notifications"], 1, "{}", answer.text());
    let got = eventually(WITHIN, "the notification", || async {
        callback.delivered().first().cloned()
    })
    .await;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(&got.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        got.header("elements-webhook-signature"),
        Some(format!("sha256={expected}").as_str())
    );
    let message = &got.json()["message"];
    assert_eq!(message["elementKey"], "github");
    assert_eq!(message["instanceId"], json!(id));
    let events = message["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{message}");
    assert_eq!(events[0]["objectType"], "issues");
    assert_eq!(events[0]["objectId"], "444500041");
    assert_eq!(events[0]["eventType"], "CREATED");

    // GitHub's redelivery: the same delivery id, here with other bytes (the payload read
    // and written again), is recognized by the id and not notified again.
    let again: Value = serde_json::from_slice(&body).unwrap();
    let again = serde_json::to_vec(&again).unwrap();
    assert_ne!(again, body);
    let redelivered = deliver(&host, first, &again, &sign(SECRET, &again)).await;
    assert_eq!(redelivered.status, 200, "{}", redelivered.text());
    assert_eq!(
        redelivered.json()["duplicate"],
        true,
        "{}",
        redelivered.text()
    );

    // A new delivery is notified; delivery keeps an instance's order, so when it has
    // arrived, anything the refused or the repeated one had queued would have too.
    let edited = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"opened\"", "\"edited\"");
    let next = deliver(
        &host,
        "8a7b1b40-cc78-11e3-8f9a-a1b7c0e0d1f2",
        edited.as_bytes(),
        &sign(SECRET, edited.as_bytes()),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.text());
    let all = eventually(WITHIN, "the second notification", || async {
        let all = callback.delivered();
        (all.len() >= 2).then_some(all)
    })
    .await;
    assert_eq!(all.len(), 2, "one notification per accepted delivery");
    assert_eq!(
        all[1].json()["message"]["events"][0]["eventType"],
        "UPDATED"
    );
}
