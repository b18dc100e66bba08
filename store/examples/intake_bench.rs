//! Durable webhook intake through the store alone: `CONCURRENCY` tasks store one-notification
//! webhooks, each with a unique body, for `SECONDS`; prints webhooks per second, the
//! process's CPU per webhook and the writes per commit.
//!
//!   cargo run --release -p store --example intake_bench -- [webhook|plain|off] [SECONDS] [CONCURRENCY]
//!
//! `webhook` is `Store::enqueue_webhook` with a 24 h dedupe window, `off` the same with the
//! check off, `plain` is `Store::enqueue` of the same envelopes (the path before idempotent
//! intake).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use store::sqlite::SqliteStore;
use store::{NewInstance, NewNotification, SecretHashes, Store, WebhookIntake};

/// User plus system CPU time of this process, in clock ticks (100 per second).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// 32 pseudo-random bytes from `n` (splitmix64).
fn digest(n: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut x = n;
    for chunk in out.chunks_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_else(|| "webhook".into());
    let seconds: u64 = args.get(2).map_or(10, |s| s.parse().unwrap());
    let concurrency: usize = args.get(3).map_or(128, |s| s.parse().unwrap());
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let org = store
        .create_org(
            "bench",
            &SecretHashes {
                user: "u".into(),
                org: "o".into(),
            },
            0,
        )
        .await
        .unwrap();
    let instance = store
        .create_instance(NewInstance {
            org_id: org.id,
            element_key: "ecwid".into(),
            name: "load".into(),
            token_sha256: "t".into(),
            tags: vec![],
            config: vec![],
            provider_data: serde_json::json!({}),
            disabled: false,
            created_ms: 0,
        })
        .await
        .unwrap();
    let store: Arc<SqliteStore> = Arc::new(store);
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let head = "{\"id\":\"x\",\"message\":{\"elementKey\":\"ecwid\",\"hub\":\"ecommerce\",\
        \"instanceId\":1,\"instanceName\":\"load\",\"instanceTags\":[],\"events\":[{\
        \"objectType\":\"orders\",\"objectId\":\"103878161\",\"eventType\":\"CREATED\",\
        \"date\":\"2024-01-01T00:00:00.000Z\",\"elementKey\":\"ecwid\"}],\"raw\":"
        .repeat(3);
    let mut tasks = Vec::new();
    let (c0, t0) = (cpu_ticks(), Instant::now());
    for _ in 0..concurrency {
        let (store, counter, stop, mode, head) = (
            store.clone(),
            counter.clone(),
            stop.clone(),
            mode.clone(),
            head.clone(),
        );
        let instance_id = instance.id;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let raw = format!(
                    "{{\"eventId\":\"evt-{n}\",\"eventCreated\":1234567,\"storeId\":2000,\
                     \"entityId\":103878161,\"eventType\":\"order.created\",\"data\":{{\
                     \"orderId\":\"{n}\",\"oldPaymentStatus\":\"AWAITING_PAYMENT\",\
                     \"newPaymentStatus\":\"PAID\"}}}}"
                )
                .into_bytes();
                let mut body = head.clone().into_bytes();
                let at = body.len();
                body.extend_from_slice(&raw);
                body.extend_from_slice(b"}}");
                let now = 1_700_000_000_000 + n as i64;
                let note = NewNotification {
                    id: format!("{:020}", n).into(),
                    instance_id,
                    endpoint: "http://127.0.0.1:18081/silent".into(),
                    body,
                    raw_at: Some(at),
                    event_count: 1,
                    created_ms: now,
                };
                if mode == "plain" {
                    store.enqueue(vec![note]).await.unwrap();
                } else {
                    let intake = WebhookIntake {
                        digest: digest(n),
                        raw,
                        dedupe_since: (mode != "off").then_some(now - 86_400_000),
                    };
                    store.enqueue_webhook(intake, vec![note]).await.unwrap();
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (c1, elapsed) = (cpu_ticks(), t0.elapsed());
    let n = counter.load(Ordering::Relaxed);
    println!(
        "{mode}: {:.0} webhooks/s, {:.1} µs CPU per webhook, {:.1} writes per commit, {} MB file+wal",
        n as f64 / elapsed.as_secs_f64(),
        (c1 - c0) as f64 * 10_000.0 / n as f64,
        store.write_ops() as f64 / store.commits() as f64,
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum::<u64>()
            / 1_000_000
    );
}
