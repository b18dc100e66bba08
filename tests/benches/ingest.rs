//! Load benchmark of the webhook path, against a host started in this process on loopback.
//!
//! 1. Durable ingest throughput: `CONCURRENCY` keep-alive clients post Ecwid order webhooks
//!    as fast as the host answers, for `SECONDS`; every 200 means the notification is
//!    committed to the SQLite outbox. Reports webhooks/s and p50/p99 answer latency. The
//!    instance of this phase (store 2000) has a callback that accepts and never answers,
//!    so the run measures intake alone (its deliveries queue behind the first attempt);
//!    then the same with a live callback (store 1003), intake and delivery sharing the
//!    two cores.
//! 2. Webhook→callback latency at a fixed rate (`RATE`/s for `SECONDS`): the time from
//!    sending a webhook to its notification reaching a real callback server. Reports p50/p99.
//!
//! Run: `cargo bench -p tests --bench ingest` (env `INGEST_SECONDS`, `INGEST_CONCURRENCY`,
//! `INGEST_RATE`, `INGEST_LATENCY_SECONDS` override the defaults).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tests::bench::{env_or, percentile};
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};

/// The host binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn post(client: &HttpClient, url: &str, body: String) -> u16 {
    let req = Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = client.request(req).await.expect("the host answers");
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

/// Posts webhooks for store `store` from `concurrency` clients for `seconds`; prints the
/// throughput and latency and returns how many were accepted.
async fn saturate(url: &str, store: u64, concurrency: usize, seconds: u64, what: &str) -> usize {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (url, stop) = (url.to_string(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body =
                    ecwid_order("order.created", &format!("s{store}-{w}-{i}"), store).to_string();
                let t = Instant::now();
                let status = post(&client, &url, body).await;
                assert_eq!(status, 200);
                latencies.push(t.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    println!(
        "ingest, {what}: {} webhooks in {:.1?} with {concurrency} connections = {:.0} webhooks/s durably accepted; answer p50 {:.2?}, p99 {:.2?}",
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    latencies.len()
}

fn main() {
    let seconds = env_or("INGEST_SECONDS", 10u64);
    let concurrency = env_or("INGEST_CONCURRENCY", 64usize);
    let rate = env_or("INGEST_RATE", 1000u64);
    let latency_seconds = env_or("INGEST_LATENCY_SECONDS", seconds);

    let dirs = tempfile::tempdir().unwrap();
    let connectors = dirs.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::copy(tests::guest("ecwid"), connectors.join("ecwid.wasm")).unwrap();
    let data = dirs.path().join("data");

    // The host gets its own runtime, as the binary would have.
    let host_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("host-worker")
        .enable_all()
        .build()
        .unwrap();
    let running = host_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        host::start(tests::loopback_config(connectors, data.clone()), listener)
            .await
            .unwrap()
    });
    let base = format!("http://{}/elements/api-v2", running.local_addr());
    let auth = std::fs::read_to_string(data.join("authorization"))
        .unwrap()
        .trim()
        .to_string();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-worker")
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let callback = Receiver::start().await;
        let created = tests::send(
            "POST",
            &format!("{base}/instances"),
            &[("authorization", &auth), ("content-type", "application/json")],
            ecwid_instance(&callback.url("/cb")).to_string().as_bytes(),
        )
        .await;
        assert_eq!(created.status, 200, "{:?}", created.body);
        let url = format!("{base}/events/ecwid");
        // A callback that accepts connections and never answers: its first delivery waits
        // out the attempt timeout and the rest queue behind it, so phase 1 is intake alone.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                held.push(conn);
            }
        });
        let mut parked = ecwid_instance(&format!("http://{silent_addr}/silent"));
        parked["configuration"]["ecwid.store.id"] = serde_json::json!("2000");
        let created = tests::send(
            "POST",
            &format!("{base}/instances"),
            &[("authorization", &auth), ("content-type", "application/json")],
            parked.to_string().as_bytes(),
        )
        .await;
        assert_eq!(created.status, 200, "{:?}", created.body);

        saturate(&url, 2000, concurrency, seconds, "intake alone (deliveries parked)").await;
        let live = saturate(&url, 1003, concurrency, seconds, "intake with live delivery").await;

        // Let the delivery backlog drain before measuring latency.
        let backlog = live;
        let drain = Instant::now();
        while callback.delivered().len() < backlog && drain.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "delivery: the {backlog} notifications of the live phase reached the callback {:.1?} after it ended",
            drain.elapsed()
        );
        let before = callback.received().len();

        // Phase 2: fixed rate, webhook → callback latency.
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let total = rate * latency_seconds;
        let mut sent: HashMap<String, Instant> = HashMap::new();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut inflight = Vec::new();
        for i in 0..total {
            ticker.tick().await;
            let id = format!("r{i}");
            sent.insert(id.clone(), Instant::now());
            let (client, url) = (client.clone(), url.clone());
            inflight.push(tokio::spawn(async move {
                let body = ecwid_order("order.created", &id, 1003).to_string();
                let start = Instant::now();
                assert_eq!(post(&client, &url, body).await, 200);
                start.elapsed()
            }));
        }
        // The answer (durably stored) apart from the whole way to the callback, to tell
        // intake's share of the latency from delivery's.
        let mut answers = Vec::with_capacity(inflight.len());
        for t in inflight {
            answers.push(t.await.unwrap());
        }
        answers.sort();
        let deadline = Instant::now() + Duration::from_secs(30);
        while callback.received().len() < before + total as usize && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut e2e: Vec<Duration> = callback.received()[before..]
            .iter()
            .filter_map(|r| {
                let v = r.json();
                let id = v["message"]["events"][0]["objectId"].as_str()?.to_string();
                sent.get(&id).map(|t| r.at.saturating_duration_since(*t))
            })
            .collect();
        e2e.sort();
        println!(
            "webhook→callback at {rate}/s for {latency_seconds} s: {} delivered; p50 {:.2?}, p99 {:.2?}, max {:.2?} (the webhook's answer alone: p50 {:.2?}, p99 {:.2?})",
            e2e.len(),
            percentile(&e2e, 0.50),
            percentile(&e2e, 0.99),
            e2e.last().copied().unwrap_or_default(),
            percentile(&answers, 0.50),
            percentile(&answers, 0.99),
        );
    });
    host_rt.block_on(running.shutdown());
}
