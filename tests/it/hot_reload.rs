//! The drop-in directory: files added, replaced and removed while the host runs take effect
//! within 2 s; bad files are listed with their reason and skipped.

use std::time::Duration;

use serde_json::Value;
use tests::{TestHost, eventually, get, guest};

const WITHIN: Duration = Duration::from_secs(2);

async fn element(host: &TestHost, key: &str) -> Option<Value> {
    let a = get(&host.url(&format!("/elements/{key}"))).await;
    (a.status == 200).then(|| a.json())
}

async fn failure(host: &TestHost, file: &str) -> Option<String> {
    let list = get(&host.url("/elements")).await.json();
    list["failures"]
        .as_array()?
        .iter()
        .find(|f| f["file"] == file)
        .map(|f| f["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn add_replace_remove_and_garbage() {
    let host = TestHost::start(&[]);
    assert_eq!(
        get(&host.url("/elements")).await.json()["elements"],
        serde_json::json!([])
    );

    std::fs::copy(guest("echo"), host.connectors.join("echo.wasm")).unwrap();
    eventually(WITHIN, "echo listed", || async {
        element(&host, "echo")
            .await
            .filter(|e| e["name"] == "Echo v1")
    })
    .await;

    // Replace with a changed build: the new version answers.
    let tmp = host.connectors.join("echo.wasm.part");
    std::fs::copy(guest("echo-v2"), &tmp).unwrap();
    std::fs::rename(&tmp, host.connectors.join("echo.wasm")).unwrap();
    eventually(WITHIN, "echo v2 answering", || async {
        element(&host, "echo")
            .await
            .filter(|e| e["name"] == "Echo v2")
    })
    .await;

    std::fs::remove_file(host.connectors.join("echo.wasm")).unwrap();
    eventually(WITHIN, "echo gone", || async {
        element(&host, "echo").await.is_none().then_some(())
    })
    .await;

    std::fs::write(
        host.connectors.join("garbage.wasm"),
        b"\0asm this is not wasm",
    )
    .unwrap();
    let reason = eventually(WITHIN, "garbage reported", || {
        failure(&host, "garbage.wasm")
    })
    .await;
    assert!(
        reason.contains("not a valid WebAssembly component"),
        "{reason}"
    );

    // The host still answers and still loads good files next to the bad one.
    std::fs::copy(guest("ecwid"), host.connectors.join("ecwid.wasm")).unwrap();
    eventually(WITHIN, "ecwid listed next to garbage", || {
        element(&host, "ecwid")
    })
    .await;
}

#[tokio::test]
async fn a_connector_for_an_unsupported_contract_is_skipped() {
    let host = TestHost::start(&["ecwid"]);
    std::fs::copy(guest("future"), host.connectors.join("future.wasm")).unwrap();
    let reason = eventually(WITHIN, "future reported", || failure(&host, "future.wasm")).await;
    assert!(reason.contains("contract version 9.0.0"), "{reason}");
    assert!(reason.contains("0.1.x"), "{reason}");
    assert!(element(&host, "ecwid").await.is_some());
}

#[tokio::test]
async fn two_files_with_one_key_keep_the_first() {
    let host = TestHost::start(&["echo"]);
    std::fs::copy(guest("echo-v2"), host.connectors.join("echo-copy.wasm")).unwrap();
    let reason = eventually(WITHIN, "duplicate reported", || {
        failure(&host, "echo-copy.wasm")
    })
    .await;
    assert!(reason.contains("already provided by echo.wasm"), "{reason}");
    assert_eq!(element(&host, "echo").await.unwrap()["name"], "Echo v1");
}

#[tokio::test]
async fn a_bad_replacement_is_listed_and_the_last_good_version_keeps_serving() {
    let host = TestHost::start(&["echo"]);
    let file = host.connectors.join("echo.wasm");
    let tmp = host.connectors.join("echo.wasm.part");
    std::fs::write(&tmp, b"\0asm half a file").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let reason = eventually(WITHIN, "bad replacement reported", || {
        failure(&host, "echo.wasm")
    })
    .await;
    assert!(
        reason.contains("the previous version of `echo` keeps serving"),
        "{reason}"
    );
    assert_eq!(element(&host, "echo").await.unwrap()["name"], "Echo v1");

    // A good build replaces it, and the failure is gone.
    std::fs::copy(guest("echo-v2"), &tmp).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    eventually(WITHIN, "echo v2 answering", || async {
        element(&host, "echo")
            .await
            .filter(|e| e["name"] == "Echo v2")
    })
    .await;
    assert_eq!(failure(&host, "echo.wasm").await, None);

    // Removing a file whose last content failed still unloads what it served.
    std::fs::write(&tmp, b"garbage").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    eventually(WITHIN, "second bad replacement reported", || {
        failure(&host, "echo.wasm")
    })
    .await;
    std::fs::remove_file(&file).unwrap();
    eventually(WITHIN, "echo gone", || async {
        element(&host, "echo").await.is_none().then_some(())
    })
    .await;
}

/// Starts a host serving `echo.wasm`, with `echo-copy.wasm` (Echo v2) refused for the
/// taken key; `free_the_key` then changes `echo.wasm`, and the copy must serve `echo`.
async fn a_refused_copy_loads_once(free_the_key: impl FnOnce(&TestHost)) -> TestHost {
    let host = TestHost::start(&["echo"]);
    std::fs::copy(guest("echo-v2"), host.connectors.join("echo-copy.wasm")).unwrap();
    eventually(WITHIN, "duplicate reported", || {
        failure(&host, "echo-copy.wasm")
    })
    .await;
    free_the_key(&host);
    eventually(WITHIN, "the copy serving echo", || async {
        element(&host, "echo")
            .await
            .filter(|e| e["name"] == "Echo v2")
    })
    .await;
    assert_eq!(failure(&host, "echo-copy.wasm").await, None);
    host
}

#[tokio::test]
async fn a_file_refused_for_a_taken_key_loads_once_the_owner_is_removed() {
    a_refused_copy_loads_once(|host| {
        std::fs::remove_file(host.connectors.join("echo.wasm")).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_file_refused_for_a_taken_key_loads_once_the_owner_serves_another_key() {
    // The owner's file now holds another connector: `echo` is free for the copy.
    let host = a_refused_copy_loads_once(|host| {
        let tmp = host.connectors.join("echo.wasm.part");
        std::fs::copy(guest("ecwid"), &tmp).unwrap();
        std::fs::rename(&tmp, host.connectors.join("echo.wasm")).unwrap();
    })
    .await;
    assert!(element(&host, "ecwid").await.is_some());
}
