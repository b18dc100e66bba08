//! A heavy component compiling in a running host: the latency of `GET /elements` and of a
//! light connector's (Ecwid) webhook while it compiles, beside the same with nothing
//! compiling, and the time a restart takes to serve it from the compile cache.
//!
//! The host is the `e2e-host` binary on loopback with two runtime workers (as the tests
//! run it); the heavy component is `tests::heavy`'s echo with `HEAVY_FUNCTIONS` (600)
//! functions of `HEAVY_OPS` (3000) operations. Requests are sequential, alternating
//! `GET /elements` and an unsigned Ecwid webhook (a new order id each, dedupe off), each on
//! a new connection. `RESTARTS` (5) restarts on the same directories are timed from the
//! process start to `GET /elements/echo` answering with `fromCache: true`.
//!
//! `HEAVY=python` compiles the Python example (`connectors/shopify-py`, 19 MB, built with
//! componentize-py) instead, `HEAVY=js` the JavaScript one (12 MB).
//!
//! Run: `cargo bench -p tests --bench background_load`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::bench::{env_or, percentile};
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, get, webhook};

const WITHIN: Duration = Duration::from_secs(600);

/// The latencies of one kind of request.
#[derive(Default)]
struct Latencies {
    elements: Vec<Duration>,
    webhooks: Vec<Duration>,
}

impl Latencies {
    fn report(&mut self, what: &str) {
        for (name, list) in [
            ("GET /elements", &mut self.elements),
            ("ecwid webhook", &mut self.webhooks),
        ] {
            list.sort();
            println!(
                "{what:<24} {name:<14} n={:<5} p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
                list.len(),
                percentile(list, 0.5),
                percentile(list, 0.99),
                list.last().copied().unwrap_or_default(),
            );
        }
    }
}

/// The heavy component's file name in the connectors folder, and its element key.
struct Heavy {
    file: &'static str,
    key: &'static str,
}

async fn heavy_loading(host: &TestHost, heavy: &Heavy) -> bool {
    let list = get(&host.url("/elements")).await.json();
    list["loading"]
        .as_array()
        .is_some_and(|l| l.iter().any(|f| f["file"] == heavy.file))
}

/// One `GET /elements` and one webhook, timed.
async fn round(host: &TestHost, n: &mut u64, into: &mut Latencies) {
    let t = Instant::now();
    let list = get(&host.url("/elements")).await;
    into.elements.push(t.elapsed());
    assert_eq!(list.status, 200);
    *n += 1;
    let order = ecwid_order("order.created", &format!("bench-{n}"), 1003).to_string();
    let t = Instant::now();
    let answer = webhook(host, "ecwid", &[], order.as_bytes()).await;
    into.webhooks.push(t.elapsed());
    assert_eq!(answer.status, 200, "{}", answer.text());
}

async fn loaded(host: &TestHost, heavy: &Heavy) -> Option<Value> {
    let a = get(&host.url(&format!("/elements/{}", heavy.key))).await;
    (a.status == 200).then(|| a.json())
}

fn main() {
    let functions = env_or("HEAVY_FUNCTIONS", 600);
    let ops = env_or("HEAVY_OPS", 3000);
    let restarts = env_or("RESTARTS", 5);

    let dirs = tempfile::tempdir().unwrap();
    let connectors = dirs.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::copy(tests::guest("ecwid"), connectors.join("ecwid.wasm")).unwrap();
    let (heavy, bytes) = match std::env::var("HEAVY").as_deref() {
        Ok("python") => (
            Heavy {
                file: "shopify-heavy.wasm",
                key: "shopify",
            },
            std::fs::read(tests::python::shopify_example()).unwrap(),
        ),
        Ok("js") => (
            Heavy {
                file: "github-heavy.wasm",
                key: "github",
            },
            std::fs::read(tests::js::component()).unwrap(),
        ),
        _ => (
            Heavy {
                file: "echo-heavy.wasm",
                key: "echo",
            },
            tests::heavy::heavy_echo(functions, ops),
        ),
    };
    println!(
        "heavy component: {} ({}), {:.1} MB",
        heavy.file,
        heavy.key,
        bytes.len() as f64 / 1e6
    );
    std::fs::write(connectors.join(heavy.file), bytes).unwrap();
    let data = dirs.path().join("data");
    let args = ["--dedupe-window-ms", "0"];

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let started = Instant::now();
        let host = TestHost::start_in_background(&connectors, &data, &args);
        println!("listening after {:.2?}", started.elapsed());
        eventually(WITHIN, "ecwid loaded", || async {
            (get(&host.url("/elements/ecwid")).await.status == 200).then_some(())
        })
        .await;
        println!("ecwid loaded after {:.2?}", started.elapsed());
        let callback = Receiver::start().await;
        create_instance(&host, &ecwid_instance(&callback.url("/"))).await;

        let mut n = 0;
        let mut during = Latencies::default();
        while heavy_loading(&host, &heavy).await {
            round(&host, &mut n, &mut during).await;
        }
        let compiled = started.elapsed();
        let first = loaded(&host, &heavy).await.expect("the heavy component loaded");
        assert_eq!(first["fromCache"], false);
        println!("heavy component compiled and loaded after {compiled:.2?}");

        let mut idle = Latencies::default();
        let rounds = during.elements.len().max(200);
        for _ in 0..rounds {
            round(&host, &mut n, &mut idle).await;
        }
        during.report("while compiling");
        idle.report("nothing compiling");
        drop(host);

        let mut times = Vec::new();
        for _ in 0..restarts {
            let started = Instant::now();
            let host = TestHost::start_in_background(&connectors, &data, &args);
            let again = eventually(WITHIN, "the heavy component from the cache", || {
                loaded(&host, &heavy)
            })
            .await;
            times.push(started.elapsed());
            assert_eq!(again["fromCache"], true, "{again}");
        }
        times.sort();
        println!(
            "restart to the heavy component served from the cache ({restarts} runs): min={:.2?} median={:.2?} max={:.2?}",
            times[0],
            percentile(&times, 0.5),
            times[times.len() - 1]
        );
    });
}
