//! `connector-host connectors check`: one connector, offline, no server, no database.

use std::process::Command;

use tests::{guest, host_binary};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/ecwid/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn check(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(host_binary())
        .args(["connectors", "check"])
        .arg(guest("ecwid"))
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
fn check_prints_info_validates_and_parses_a_signed_fixture() {
    let (ok, stdout, stderr) = check(&[
        "--config",
        "ecwid.store.id=1003",
        "--config",
        "ecwid.client.secret=abcde123456789",
        "--webhook",
        &fixture("order-created.json"),
        "--header",
        "X-Ecwid-Webhook-Signature: lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["element"]["key"], "ecwid");
    assert_eq!(report["element"]["hub"], "ecommerce");
    assert_eq!(report["config"], "valid");
    assert_eq!(report["events"][0]["eventType"], "CREATED");
    assert_eq!(report["events"][0]["objectType"], "orders");
    assert_eq!(report["events"][0]["objectId"], "XJ12H");
}

#[test]
fn check_refuses_a_tampered_signature_and_a_bad_config() {
    let (ok, _, stderr) = check(&[
        "--config",
        "ecwid.store.id=1003",
        "--config",
        "ecwid.client.secret=abcde123456789",
        "--webhook",
        &fixture("order-created.json"),
        "--header",
        "X-Ecwid-Webhook-Signature: lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X359=",
    ]);
    assert!(!ok);
    assert!(stderr.contains("unauthorized"), "{stderr}");

    let (ok, _, stderr) = check(&["--config", "ecwid.store.id=abc"]);
    assert!(!ok);
    assert!(stderr.contains("ecwid.store.id"), "{stderr}");
}
