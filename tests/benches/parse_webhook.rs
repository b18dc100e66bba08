//! parse-webhook through a fresh sandboxed instance per call, against a native Rust parse
//! of the same payload in the same run.

use std::hint::black_box;

mod ecwid_webhooks;

use criterion::{Criterion, criterion_main};
use ecwid_webhooks::BODY;
use guest_sdk::Connector as _;
use runtime::{Limits, Runtime};

/// The host binary's allocator, so the numbers are the binary's (its calls allocate the
/// store, the instance's bookkeeping and the lifted results).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let bytes = std::fs::read(tests::guest("ecwid")).unwrap();
    let ecwid = rt.block_on(runtime.load("ecwid.wasm", &bytes)).unwrap();

    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let request = ecwid_webhooks::request();
    let ctx = ecwid_webhooks::context();
    let mut group = c.benchmark_group("parse_webhook");
    // The sandboxed calls run inside the runtime, as the host's handlers make them: all of a
    // sample's iterations in one `block_on`. Entering the runtime for each call is harness
    // that neither the host nor the native side pays: an empty `block_on` is ~0.25 µs, and
    // a call entering it measured 1.3–2.7 µs slower than this in the same run.
    group.bench_function("sandboxed (fresh instance per call)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(ecwid.parse_webhook(&ctx, &request).await.unwrap()) })
    });

    // The same call in a pool slot whose memory a 2 MiB webhook grew two calls before (the
    // call in between pays the shrink and the cold caches): the slot must be back to its
    // small size, not scanned and reset at the size of the large call on every later call.
    let large = ecwid_webhooks::large_request();
    group.bench_function(
        "sandboxed, two calls after a 2 MiB webhook in its slot",
        |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (ecwid, ctx, request, large) = (&ecwid, &ctx, &request, &large);
                async move {
                    let mut total = std::time::Duration::ZERO;
                    for _ in 0..iters {
                        ecwid.parse_webhook(ctx, large).await.unwrap();
                        ecwid.parse_webhook(ctx, request).await.unwrap();
                        let start = std::time::Instant::now();
                        let events = ecwid.parse_webhook(ctx, request).await.unwrap();
                        total += start.elapsed();
                        black_box(events);
                    }
                    total
                }
            })
        },
    );

    // The fixed cost of a call: a fresh store and instance, a trivial export.
    let config = vec![("ecwid.store.id".to_string(), "1003".to_string())];
    group.bench_function("sandboxed validate_config (instance cost)", |b| {
        b.to_async(&rt)
            .iter(|| async { ecwid.validate_config(&config).await.unwrap() })
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
