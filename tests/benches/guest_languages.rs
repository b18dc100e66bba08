//! The per-call cost of connectors written in each language: a signed webhook verified
//! and parsed (`handle-webhook`) in a fresh instance per call, as the host makes the call,
//! through the Rust Ecwid connector, the JavaScript GitHub example (componentize-js) and
//! the Python Shopify example (componentize-py).
//!
//! `cargo bench -p tests --bench guest_languages` (after `./dev.sh test` installed the
//! JavaScript and Python tools). The heavy components compile first (tens of seconds).

use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use hmac::{Hmac, Mac};
use runtime::types::{Context, WebhookRequest};
use runtime::{Limits, LoadedConnector, Runtime};
use sha2::Sha256;

/// The host binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn hmac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn request(headers: Vec<(&str, String)>, body: Vec<u8>) -> WebhookRequest {
    let mut all = vec![("content-type".to_string(), "application/json".to_string())];
    all.extend(headers.into_iter().map(|(k, v)| (k.to_string(), v)));
    WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/x".into(),
        query: String::new(),
        headers: all,
        body,
    }
}

fn context(config: &[(&str, &str)]) -> Context {
    Context {
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        credentials: None,
    }
}

/// One connector with a signed webhook for it.
struct Case {
    name: &'static str,
    connector: std::sync::Arc<LoadedConnector>,
    ctx: Context,
    request: WebhookRequest,
}

fn cases(rt: &tokio::runtime::Runtime, runtime: &std::sync::Arc<Runtime>) -> Vec<Case> {
    let load = |name: &str, path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        let started = std::time::Instant::now();
        let c = rt.block_on(runtime.load(name, &bytes)).unwrap();
        eprintln!(
            "{name}: {:.1} MB, loaded in {:.1} s",
            bytes.len() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        c
    };
    let root = tests::js::repo();

    // Rust: the Ecwid connector, its signed order webhook (FACTS.md's vector).
    let ecwid_body = std::fs::read(root.join("tests/fixtures/ecwid/order-created.json")).unwrap();
    let rust = Case {
        name: "rust (ecwid)",
        connector: load("ecwid.wasm", &tests::guest("ecwid")),
        ctx: context(&[
            ("ecwid.store.id", "1003"),
            ("ecwid.client.secret", "abcde123456789"),
        ]),
        request: request(
            vec![(
                "x-ecwid-webhook-signature",
                "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=".into(),
            )],
            ecwid_body,
        ),
    };

    // JavaScript: the GitHub example, an `issues` delivery signed with X-Hub-Signature-256.
    let secret = "It's a Secret to Everybody";
    let gh_body =
        std::fs::read(root.join("connectors/github-js/fixtures/issues-opened.json")).unwrap();
    let gh_sig = format!("sha256={}", hex(&hmac(secret, &gh_body)));
    let js = Case {
        name: "javascript (github-js)",
        connector: load("github.wasm", tests::js::component()),
        ctx: context(&[
            ("github.webhook.secret", secret),
            ("github.repository", "Codertocat/Hello-World"),
        ]),
        request: request(
            vec![
                ("x-github-event", "issues".into()),
                (
                    "x-github-delivery",
                    "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
                ),
                ("x-hub-signature-256", gh_sig),
            ],
            gh_body,
        ),
    };

    // Python: the Shopify example, an `orders/create` webhook signed with
    // X-Shopify-Hmac-Sha256 (base64).
    let shop_secret = "shpss_client_secret";
    let shop_body =
        std::fs::read(root.join("connectors/shopify-py/fixtures/orders-create.json")).unwrap();
    let shop_sig = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(hmac(shop_secret, &shop_body))
    };
    let py = Case {
        name: "python (shopify-py)",
        connector: load("shopify.wasm", tests::python::shopify_example()),
        ctx: context(&[
            ("shopify.shop.domain", "jsmith.myshopify.com"),
            ("shopify.client.secret", shop_secret),
        ]),
        request: request(
            vec![
                ("x-shopify-topic", "orders/create".into()),
                ("x-shopify-hmac-sha256", shop_sig),
                ("x-shopify-shop-domain", "jsmith.myshopify.com".into()),
                (
                    "x-shopify-webhook-id",
                    "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
                ),
            ],
            shop_body,
        ),
    };
    vec![rust, js, py]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let cases = cases(&rt, &runtime);
    let mut group = c.benchmark_group("handle_webhook");
    for case in &cases {
        // Each case must verify and parse, or the bench measures a refusal.
        let events = rt
            .block_on(
                case.connector
                    .verify_and_parse_webhook(&case.ctx, &case.request),
            )
            .unwrap()
            .unwrap();
        assert!(!events.is_empty(), "{}", case.name);
        group.bench_function(format!("{} (fresh instance per call)", case.name), |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    case.connector
                        .verify_and_parse_webhook(&case.ctx, &case.request)
                        .await
                        .unwrap()
                        .unwrap(),
                )
            })
        });
        group.bench_function(
            format!("{} validate_config (instance cost)", case.name),
            |b| {
                b.to_async(&rt).iter(|| async {
                    black_box(case.connector.validate_config(&case.ctx.config).await.ok())
                })
            },
        );
    }
    group.finish();
}

fn benches() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    bench(&mut c);
}

criterion_main!(benches);
