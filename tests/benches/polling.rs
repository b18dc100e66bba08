//! Polling at scale: `POLL_INSTANCES` (10,000) Infusionsoft instances (the seeds' JSON) on
//! one host, each polling a stand-in Keap every `POLL_INTERVAL_MIN` minutes (0.5), for
//! `POLL_ROUNDS` intervals (2). Reports how late polls start after their slots (from the
//! host's `poll_drift_*` metrics), the polls done, CPU time and peak RSS of this process
//! (host, stand-in vendor and load generator together: an upper bound for the host).
//!
//! Run: `cargo bench -p tests --bench polling`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tests::bench::{env_or, proc_stat};
use tests::receiver::Receiver;
use tests::seeds::infusionsoft_instance;
use tests::standin::{StandIn, VendorAnswer, futures_answer};

/// A line of `/proc/self/status` in MiB.
fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let instances = env_or("POLL_INSTANCES", 10_000.0) as usize;
    let interval_min = env_or("POLL_INTERVAL_MIN", 0.5);
    let rounds = env_or("POLL_ROUNDS", 2.0);

    let dirs = tempfile::tempdir().unwrap();
    let connectors = dirs.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::copy(
        tests::guest("infusionsoftrest"),
        connectors.join("infusionsoftrest.wasm"),
    )
    .unwrap();
    let data = dirs.path().join("data");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = host::start(tests::loopback_config(connectors, data.clone()), listener)
            .await
            .unwrap();
        let base = format!("http://{}", host.local_addr());
        let auth = std::fs::read_to_string(data.join("authorization"))
            .unwrap()
            .trim()
            .to_string();
        let callback = Receiver::start().await;
        // Keap: tokens for the code exchange, and empty appointment pages.
        let keap = StandIn::start(|req| {
            let answer = if req.path == "/token" {
                VendorAnswer::json(json!({"access_token": "at", "refresh_token": "rt", "expires_in": 86400}))
            } else {
                VendorAnswer::json(json!({"appointments": [], "count": 0, "next": null}))
            };
            futures_answer::now(answer)
        })
        .await;

        println!(
            "RSS with the host started and no instance: {:.0} MiB",
            status_mib("VmRSS:")
        );
        let mut body = infusionsoft_instance(&callback.url("/"), &keap.url("/crm/rest/v1"));
        body["configuration"]["event.poller.refresh_interval"] = json!(interval_min);
        let body = Arc::new(body.to_string());
        let created = Instant::now();
        let mut tasks = Vec::new();
        let per = instances.div_ceil(32);
        for w in 0..32 {
            let (base, auth, body) = (base.clone(), auth.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..per.min(instances.saturating_sub(w * per)) {
                    let a = tests::send(
                        "POST",
                        &format!("{base}/elements/api-v2/instances"),
                        &[("authorization", &auth), ("content-type", "application/json")],
                        body.as_bytes(),
                    )
                    .await;
                    assert_eq!(a.status, 200, "{:?}", a.body);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "created {instances} polling instances in {:.1?}",
            created.elapsed()
        );

        let metrics = || {
            let url = format!("{base}/metrics");
            async move { String::from_utf8(tests::get(&url).await.body.to_vec()).unwrap() }
        };
        let m0 = metrics().await;
        let (cpu0, t0) = (proc_stat("self").map_or(0.0, |s| s.own().as_secs_f64()), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(interval_min * 60.0 * rounds)).await;
        let m1 = metrics().await;
        let (cpu1, wall) = (proc_stat("self").map_or(0.0, |s| s.own().as_secs_f64()), t0.elapsed());
        let polls = metric(&m1, "polls_total{outcome=\"ok\"}") - metric(&m0, "polls_total{outcome=\"ok\"}");
        let failed = metric(&m1, "polls_total{outcome=\"error\"}");
        let drift_count = metric(&m1, "poll_drift_seconds_count");
        let within = |le: &str| metric(&m1, &format!("poll_drift_seconds_bucket{{le=\"{le}\"}}"));
        println!(
            "{polls:.0} polls in {wall:.1?} ({:.0}/s; expected {:.0}/s), {failed:.0} failed; scheduled {:.0}",
            polls / wall.as_secs_f64(),
            instances as f64 / (interval_min * 60.0),
            metric(&m1, "polling_instances"),
        );
        println!(
            "drift from slot: {:.1}% within 10 ms, {:.1}% within 100 ms, {:.1}% within 1 s; max {:.3} s",
            100.0 * within("0.01") / drift_count,
            100.0 * within("0.1") / drift_count,
            100.0 * within("1.0") / drift_count,
            metric(&m1, "poll_drift_max_seconds"),
        );
        println!(
            "CPU {:.1} s over {:.1?} ({:.0}% of one core); RSS now {:.0} MiB, peak {:.0} MiB (this process: host + stand-in + load)",
            cpu1 - cpu0,
            wall,
            100.0 * (cpu1 - cpu0) / wall.as_secs_f64(),
            status_mib("VmRSS:"),
            status_mib("VmHWM:"),
        );
        host.shutdown().await;
    });
}

/// A metric's value in `/metrics` text, 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    tests::bench::metric(text, name).unwrap_or(0.0)
}
