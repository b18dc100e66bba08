//! Hostile guests: each call fails with a clear error within its deadline, and the same
//! runtime keeps serving other connectors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::types::{Context, WebhookRequest};
use runtime::{CallError, Limits, LoadedConnector, Runtime};

fn limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu_deadline: Duration::from_millis(300),
        call_timeout: Duration::from_secs(2),
        max_instances: 64,
    }
}

async fn load(runtime: &Arc<Runtime>, name: &str) -> Arc<LoadedConnector> {
    let bytes = std::fs::read(tests::guest(name)).unwrap();
    runtime.load(name, &bytes).await.unwrap()
}

fn request(query: &str, body: &str) -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/hostile".into(),
        query: query.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn ctx() -> Context {
    Context {
        config: vec![],
        credentials: None,
    }
}

async fn ecwid_still_answers(ecwid: &LoadedConnector) {
    let body = r#"{"eventId":"e1","eventCreated":1234567,"storeId":1003,"entityId":5,"eventType":"order.created","data":{"orderId":"XJ12H"}}"#;
    let events = ecwid
        .parse_webhook(&ctx(), &request("", body))
        .await
        .expect("ecwid keeps working next to a hostile guest");
    assert_eq!(events[0].object_id, "XJ12H");
}

async fn misbehave(hostile: &LoadedConnector, what: &str) -> (CallError, Duration) {
    let start = Instant::now();
    let err = hostile
        .parse_webhook(&ctx(), &request(&format!("do={what}"), "{}"))
        .await
        .expect_err("a hostile call must fail");
    (err, start.elapsed())
}

#[tokio::test]
async fn an_endless_loop_hits_the_cpu_deadline() {
    let runtime = Runtime::new(limits(), None).unwrap();
    let (hostile, ecwid) = (
        load(&runtime, "hostile").await,
        load(&runtime, "ecwid").await,
    );
    let (err, took) = misbehave(&hostile, "loop").await;
    assert!(matches!(err, CallError::CpuDeadline { .. }), "{err}");
    assert!(err.to_string().contains("CPU deadline"), "{err}");
    assert!(
        took < limits().call_timeout,
        "stopped by the CPU deadline, took {took:?}"
    );
    ecwid_still_answers(&ecwid).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let runtime = Runtime::new(limits(), None).unwrap();
    let (hostile, ecwid) = (
        load(&runtime, "hostile").await,
        load(&runtime, "ecwid").await,
    );
    let (err, took) = misbehave(&hostile, "alloc").await;
    assert!(matches!(err, CallError::OutOfMemory { .. }), "{err}");
    assert!(err.to_string().contains("memory limit"), "{err}");
    assert!(took < limits().call_timeout, "took {took:?}");
    ecwid_still_answers(&ecwid).await;
}

#[tokio::test]
async fn a_panic_is_a_clear_crash_of_that_call_only() {
    let runtime = Runtime::new(limits(), None).unwrap();
    let (hostile, ecwid) = (
        load(&runtime, "hostile").await,
        load(&runtime, "ecwid").await,
    );
    let (err, _) = misbehave(&hostile, "trap").await;
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("crashed"), "{err}");
    ecwid_still_answers(&ecwid).await;
    // The same connector serves the next call from a fresh instance.
    let fine = hostile
        .parse_webhook(&ctx(), &request("do=nothing", "{}"))
        .await
        .unwrap();
    assert_eq!(fine.len(), 1);
}

/// The guest reports what the sandbox let it do as a vendor error; anything else (a
/// successful read, a connection) comes back as an internal error and fails the test.
async fn denied(what: &str) -> String {
    let runtime = Runtime::new(limits(), None).unwrap();
    let (hostile, ecwid) = (
        load(&runtime, "hostile").await,
        load(&runtime, "ecwid").await,
    );
    let (err, took) = misbehave(&hostile, what).await;
    assert!(took < limits().call_timeout, "took {took:?}");
    ecwid_still_answers(&ecwid).await;
    match err {
        CallError::Connector(runtime::types::ConnectorError::VendorError(m)) => m,
        other => panic!("{what}: expected the guest to report a denial, got {other}"),
    }
}

#[tokio::test]
async fn reading_a_file_is_denied() {
    let m = denied("file").await;
    assert!(m.starts_with("file: "), "{m}");
    assert!(
        !m.contains("root:"),
        "the guest must not see /etc/passwd: {m}"
    );
}

#[tokio::test]
async fn the_environment_is_empty() {
    let m = denied("env").await;
    assert_eq!(m, "env: 0 vars, 0 args");
}

#[tokio::test]
async fn opening_a_socket_is_denied() {
    // A real listener: were sockets granted, the guest would connect and say so.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let m = denied(&format!("socket&port={port}")).await;
    assert!(m.starts_with("socket: "), "{m}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing may have connected");
}
