//! The OpenAPI document against the live host: schemathesis (PyPI; `./dev.sh test`
//! installs it under `target/tools/schemathesis` and exports `SCHEMATHESIS`) reads
//! `GET /elements/api-v2/openapi.json` from a host seeded with the seeds' instance JSON (an
//! Ecwid instance with a notification delivered to a receiver, a Pardot instance polling a
//! stand-in) and calls every documented operation with generated requests: no answer may
//! be a server error, nor have a status, content type or body outside the document.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order, pardot_instance};
use tests::standin::{StandIn, VendorAnswer, futures_answer};
use tests::{TestHost, create_instance, eventually, get, webhook};

/// Examples per operation and phase: enough to reach each status, few enough that the run
/// takes about a minute on two cores.
const MAX_EXAMPLES: &str = "50";

/// The schemathesis program: `SCHEMATHESIS`, else the virtual environment `./dev.sh test`
/// makes.
fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools/schemathesis/bin/schemathesis");
    assert!(
        venv.exists(),
        "schemathesis is not installed ({} is missing and SCHEMATHESIS is unset): \
         run ./dev.sh test (it installs schemathesis)",
        venv.display()
    );
    venv
}

/// A Pardot stand-in: a login, then empty queries.
async fn pardot() -> StandIn {
    let logins = Arc::new(AtomicU32::new(0));
    StandIn::start(move |req| {
        let answer = if req.path == "/api/login/version/4" {
            let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
            json!({"@attributes": {"stat": "ok", "version": 4}, "api_key": format!("api-key-{n}")})
        } else {
            json!({"@attributes": {"stat": "ok", "version": 4}, "result": {"total_results": 0}})
        };
        futures_answer::now(VendorAnswer::json(answer))
    })
    .await
}

#[tokio::test]
async fn schemathesis_finds_every_answer_within_the_document() {
    let program = schemathesis();
    // Manual polls unpaced: schemathesis polls many times (the 429 is documented and
    // tested in poll_budget.rs).
    let host = TestHost::start_with(&["ecwid", "pardot"], &["--poll-now-interval-ms", "0"]);
    let callback = Receiver::start().await;
    let vendor = pardot().await;

    let ecwid = create_instance(&host, &ecwid_instance(&callback.url("/ecwid"))).await;
    let id = ecwid["id"].as_i64().expect("an id");
    let pardot = create_instance(
        &host,
        &pardot_instance(&callback.url("/pardot"), &vendor.url("")),
    )
    .await;
    // The instance `DELETE` gets, so the others stay for the other operations.
    let mut doomed = ecwid_instance(&callback.url("/doomed"));
    doomed["configuration"]["ecwid.store.id"] = json!("1004");
    let doomed = create_instance(&host, &doomed).await;
    let order = ecwid_order("order.created", "XJ12H", 1003);
    let answer = webhook(&host, "ecwid", &[], order.to_string().as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    eventually(Duration::from_secs(10), "the notification", || async {
        (!callback.delivered().is_empty()).then_some(())
    })
    .await;
    let events = host
        .call("GET", &format!("/instances/{id}/events"), None)
        .await;
    let eid = events.json()[0]["id"]
        .as_str()
        .expect("a notification")
        .to_string();
    let entries = host
        .call("GET", &format!("/instances/{id}/configuration"), None)
        .await;
    let cid = entries
        .json()
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["key"] == "ecwid.store.id")
        .expect("the store id")["id"]
        .clone();
    // The seeded ids for the path parameters: without them nearly every call is a 404.
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"[parameters]
"path.id" = {id}
"path.eid" = "{eid}"
"path.cid" = {cid}
"path.key" = "ecwid"
"path.suffix" = "{suffix}"

[[operations]]
include-method = "DELETE"
parameters = {{ "path.id" = {doomed} }}

[[operations]]
include-path-regex = "/events/poll$"
parameters = {{ "path.id" = {pardot} }}
"#,
            suffix = STANDARD.encode(id.to_string()),
            doomed = doomed["id"],
            pardot = pardot["id"],
        ),
    )
    .expect("write the config");
    let doc = get(&host.url("/openapi.json")).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json()["openapi"], "3.1.0");

    let url = host.url("/openapi.json");
    let authorization = format!("Authorization: {}", host.authorization());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&program)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &url, "--header", &authorization])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "23",
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    })
    .await
    .expect("the run ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "schemathesis ran for {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    // Every documented operation was called (schemathesis leaves out the one that serves
    // the document it was given).
    let doc = doc.json();
    let operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(path, _)| !path.ends_with("/openapi.json"))
        .map(|(_, item)| {
            let methods = ["get", "put", "post", "delete", "patch"];
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|k| methods.contains(&k.as_str()))
                .count()
        })
        .sum();
    assert!(
        text.contains(&format!("Tested: {operations}\n")),
        "not every one of the {operations} operations was tested:\n{text}"
    );
}
