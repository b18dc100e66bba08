//! `connector-host connectors new`: a skeleton in each language, built with its one build
//! command, is a connector `connectors check` accepts, and its own unit tests pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use tests::host_binary;

/// Runs `connectors new NAME --lang LANG --dir DIR` and returns the directory.
fn new_skeleton(name: &str, lang: &str, parent: &Path) -> PathBuf {
    let dir = parent.join(name);
    let out = Command::new(host_binary())
        .args(["connectors", "new", name, "--lang", lang, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "connectors new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Runs `connectors check` on `file` with the skeleton's fixture, signed with `secret`
/// (the value of `NAME.webhook.secret`) in `header` (base64 HMAC-SHA256 of the body), with
/// the `config` pairs; returns the report.
fn check_signed(
    file: &Path,
    name: &str,
    dir: &Path,
    header: &str,
    secret: &str,
    config: &[&str],
) -> serde_json::Value {
    let fixture = dir.join("fixtures/webhook.json");
    let body = std::fs::read(&fixture).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&body);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let out = Command::new(host_binary())
        .args(["connectors", "check"])
        .arg(file)
        .args(["--config", &format!("{name}.webhook.secret={secret}")])
        .args(config.iter().flat_map(|c| ["--config", c]))
        .arg("--webhook")
        .arg(&fixture)
        .args(["--header", &format!("{header}: {signature}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "connectors check refused the skeleton: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A cargo command for a skeleton, without the outer build's settings.
fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir).args(args);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
    ] {
        cmd.env_remove(var);
    }
    // One target folder for every run, so a second run builds only the skeleton.
    cmd.env(
        "CARGO_TARGET_DIR",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/skeletons"),
    );
    cmd
}

#[test]
fn a_rust_skeleton_builds_with_one_command_passes_its_tests_and_checks() {
    let parent = tempfile::tempdir().unwrap();
    let dir = new_skeleton("demo-shop", "rust", parent.path());
    let status = cargo(
        &dir,
        &["build", "--release", "--target", "wasm32-unknown-unknown"],
    )
    .status()
    .unwrap();
    assert!(status.success(), "the skeleton's build failed");
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/skeletons/wasm32-unknown-unknown/release/demo_shop.wasm");
    let report = check_signed(
        &file,
        "demo-shop",
        &dir,
        "X-Demo-Shop-Signature",
        "s3cret",
        &[],
    );
    assert_eq!(report["element"]["key"], "demo-shop");
    assert_eq!(report["element"]["contractVersion"], "0.2.0");
    assert_eq!(report["events"][0]["objectType"], "orders");
    assert_eq!(report["events"][0]["objectId"], "1001");
    assert_eq!(report["events"][0]["eventType"], "CREATED");

    let tests = cargo(&dir, &["test", "--quiet"]).output().unwrap();
    assert!(
        tests.status.success(),
        "the skeleton's unit tests failed: {}{}",
        String::from_utf8_lossy(&tests.stdout),
        String::from_utf8_lossy(&tests.stderr)
    );
    let out = String::from_utf8_lossy(&tests.stdout);
    assert!(out.contains("2 passed"), "{out}");
}

#[test]
fn a_javascript_skeleton_builds_with_one_command_passes_its_tests_and_checks() {
    let parent = tempfile::tempdir().unwrap();
    let dir = new_skeleton("demo-js", "js", parent.path());
    // The build of `npm install && npm run build`, with the tools the tests installed
    // (`./dev.sh test`) instead of a download per run.
    let tools = tests::js::tools();
    let build = Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(&dir)
        .env("COMPONENTIZE_JS_HOME", &tools)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "npm run build: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let report = check_signed(
        &dir.join("demo-js.wasm"),
        "demo-js",
        &dir,
        "X-Webhook-Signature",
        "s3cret",
        &["demo-js.account.id=7"],
    );
    assert_eq!(report["element"]["key"], "demo-js");
    assert_eq!(report["element"]["contractVersion"], "0.2.0");
    assert_eq!(report["events"][0]["objectType"], "orders");
    assert_eq!(report["events"][0]["objectId"], "42");
    assert_eq!(report["events"][0]["eventType"], "CREATED");

    let tests = Command::new("node")
        .args(["--test"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&tests.stdout);
    assert!(
        tests.status.success(),
        "the skeleton's unit tests failed: {out}"
    );
    assert!(out.contains("# fail 0"), "{out}");
}
