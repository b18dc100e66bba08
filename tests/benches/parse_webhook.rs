//! parse-webhook through a fresh sandboxed instance per call, against a native Rust parse
//! of the same payload in the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use guest_sdk::Connector as _;
use host::runtime::types::{Context, WebhookRequest};
use host::runtime::{Limits, Runtime};

const BODY: &str = r#"{"eventId":"80aece08-40e8-4145-8764-6c2f0d38678","eventCreated":1234567,"storeId":1003,"entityId":103878161,"eventType":"order.created","data":{"orderId":"XJ12H","oldPaymentStatus":"AWAITING_PAYMENT","newPaymentStatus":"PAID"}}"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let bytes = std::fs::read(tests::guest("ecwid")).unwrap();
    let ecwid = rt.block_on(runtime.load("ecwid.wasm", &bytes)).unwrap();

    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let request = WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/ecwid".into(),
        query: String::new(),
        headers: headers.clone(),
        body: BODY.as_bytes().to_vec(),
    };
    let ctx = Context {
        config: vec![("ecwid.store.id".into(), "1003".into())],
        credentials: None,
    };
    let mut group = c.benchmark_group("parse_webhook");
    group.bench_function("sandboxed (fresh instance per call)", |b| {
        b.iter(|| {
            let events = rt.block_on(ecwid.parse_webhook(&ctx, &request)).unwrap();
            black_box(events)
        })
    });

    // The same call in a pool slot whose memory a 2 MiB webhook grew two calls before (the
    // call in between pays the shrink and the cold caches): the slot must be back to its
    // small size, not scanned and reset at the size of the large call on every later call.
    let big = "x".repeat(2 << 20);
    let large = WebhookRequest {
        body: BODY
            .replace(r#""PAID"}"#, &format!(r#""PAID","note":"{big}"}}"#))
            .into_bytes(),
        ..request.clone()
    };
    group.bench_function(
        "sandboxed, two calls after a 2 MiB webhook in its slot",
        |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    rt.block_on(ecwid.parse_webhook(&ctx, &large)).unwrap();
                    rt.block_on(ecwid.parse_webhook(&ctx, &request)).unwrap();
                    let start = std::time::Instant::now();
                    let events = rt.block_on(ecwid.parse_webhook(&ctx, &request)).unwrap();
                    total += start.elapsed();
                    black_box(events);
                }
                total
            })
        },
    );

    // The fixed cost of a call: a fresh store and instance, a trivial export.
    let config = vec![("ecwid.store.id".to_string(), "1003".to_string())];
    group.bench_function("sandboxed validate_config (instance cost)", |b| {
        b.iter(|| rt.block_on(ecwid.validate_config(&config)).unwrap())
    });

    let native_request = guest_sdk::WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/ecwid".into(),
        query: String::new(),
        headers,
        body: BODY.as_bytes().to_vec(),
    };
    let native_ctx = guest_sdk::Context::new(guest_sdk::Config::new([("ecwid.store.id", "1003")]));
    group.bench_function("native", |b| {
        b.iter(|| black_box(ecwid::Ecwid::parse_webhook(&native_ctx, &native_request).unwrap()))
    });
    group.finish();
}

mod group {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
