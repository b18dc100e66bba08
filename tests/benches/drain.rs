//! Delivery throughput: how fast a host drains a backlog of notifications to its callback
//! URLs, against a host process (this package's `e2e-host`, or `HOST_BIN`, e.g. a build of
//! another commit for a before/after comparison) on loopback.
//!
//! For each case (`URLS` instances, each its own callback URL, with
//! `event.notification.max.in.flight` = `K`): the receiver holds every request it gets
//! (so the backlog builds up behind the first attempts), the bench posts Ecwid order
//! webhooks for one store, which every instance takes (fan-out: one webhook, `URLS`
//! notifications), until `DRAIN_NOTIFICATIONS` are stored; then the receiver opens and
//! answers 200 at once. Reported: notifications/s from the opening to the last one
//! received, the best one-second window, the most requests the receiver had open at
//! once, the connections it accepted, and the CPU time per notification of the host
//! process and of this bench process (receiver and timer) during the drain, read from
//! `/proc` (Linux), so the host's cost can be told from the bench's on shared cores.
//!
//! Run: `cargo bench -p tests --bench drain` (env `DRAIN_NOTIFICATIONS`, default 60,000;
//! `DRAIN_CASES`, default `1x1,1x16,50x1,50x16` as `URLSxK`; `DRAIN_RUNS`, default 1;
//! `HOST_BIN`, the host binary; `RUST_LOG`, the host's log filter, default `info` as in
//! production; `DRAIN_PERF`, a path prefix: `perf record` samples the host during each
//! drain into `<prefix>-<URLS>x<K>.data`, with `DRAIN_PERF_ARGS`, default `-F 999`). The
//! host's log goes to a file beside its data, as `serve` writes it.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tests::bench::{env_or, proc_stat};
use tests::seeds::{ecwid_instance, ecwid_order};

/// The host binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The callback receiver: counts requests, holds them while closed, and keeps the most
/// open at once.
#[derive(Default)]
struct Counts {
    open: AtomicBool,
    gate: tokio::sync::Notify,
    received: AtomicUsize,
    connections: AtomicUsize,
    current: AtomicUsize,
    most: AtomicUsize,
}

async fn receiver(counts: Arc<Counts>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let counts = counts.clone();
                    async move {
                        let now = counts.current.fetch_add(1, Ordering::SeqCst) + 1;
                        counts.most.fetch_max(now, Ordering::SeqCst);
                        let _ = req.into_body().collect().await;
                        while !counts.open.load(Ordering::SeqCst) {
                            let opened = counts.gate.notified();
                            if counts.open.load(Ordering::SeqCst) {
                                break;
                            }
                            opened.await;
                        }
                        counts.current.fetch_sub(1, Ordering::SeqCst);
                        counts.received.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

struct Host {
    child: Child,
    base: String,
    auth: String,
    _dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_host(bin: &PathBuf) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let connectors = dir.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::copy(tests::guest("ecwid"), connectors.join("ecwid.wasm")).unwrap();
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("host.log")).unwrap();
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--connectors"])
        .arg(&connectors)
        .arg("--data")
        .arg(&data)
        .args(tests::LOOPBACK_ALLOWED)
        .args(["--delivery-timeout-ms", "600000"])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn the host");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let auth = std::fs::read_to_string(data.join("authorization"))
        .unwrap()
        .trim()
        .to_string();
    Host {
        child,
        base: format!("http://{addr}/elements/api-v2"),
        auth,
        _dir: dir,
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One case: returns (notifications/s, best 1-s window, most open at the receiver).
async fn case(bin: &PathBuf, urls: usize, k: usize, total: usize) -> (f64, usize, usize) {
    let host = start_host(bin);
    let counts = Arc::new(Counts::default());
    let addr = receiver(counts.clone()).await;
    for i in 0..urls {
        let mut instance = ecwid_instance(&format!("http://{addr}/cb/{i}"));
        if k != 1 {
            instance["configuration"]["event.notification.max.in.flight"] =
                serde_json::json!(k.to_string());
        }
        instance["configuration"]["ecwid.store.id"] = serde_json::json!("4000");
        let created = tests::send(
            "POST",
            &format!("{}/instances", host.base),
            &[
                ("authorization", &host.auth),
                ("content-type", "application/json"),
            ],
            instance.to_string().as_bytes(),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.text());
    }
    // The backlog: webhooks from 32 clients until `total` notifications are stored.
    let webhooks = total.div_ceil(urls);
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/events/ecwid", host.base);
    let filled = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (next, url) = (next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= webhooks {
                    break;
                }
                let body = ecwid_order("order.created", &format!("o{i}"), 4000).to_string();
                let req = Request::post(url.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let resp = client.request(req).await.expect("the host answers");
                assert_eq!(resp.status(), 200);
                let _ = resp.into_body().collect().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = webhooks * urls;
    let stored_in = filled.elapsed();
    let held = counts.current.load(Ordering::SeqCst);
    let connections = counts.connections.load(Ordering::SeqCst);
    let host_pid = host.child.id().to_string();
    let (host_cpu, bench_cpu) = (cpu_time(&host_pid), cpu_time("self"));
    let perf = std::env::var("DRAIN_PERF").ok().map(|prefix| {
        let args = std::env::var("DRAIN_PERF_ARGS").unwrap_or_else(|_| "-F 999".into());
        let perf = Command::new("perf")
            .arg("record")
            .args(args.split_whitespace())
            .args(["-p", &host_pid, "-o", &format!("{prefix}-{urls}x{k}.data")])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn perf");
        // perf prints nothing when it is attached: give it time to start sampling.
        std::thread::sleep(Duration::from_millis(500));
        perf
    });
    // Open the receiver; count until everything arrived.
    let start = Instant::now();
    counts.open.store(true, Ordering::SeqCst);
    counts.gate.notify_waiters();
    let mut best = 0;
    let mut last = (start, 0usize);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let got = counts.received.load(Ordering::SeqCst);
        if last.0.elapsed() >= Duration::from_secs(1) {
            best = best.max(got - last.1);
            last = (Instant::now(), got);
        }
        if got >= total {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "only {got} of {total} arrived"
        );
    }
    let took = start.elapsed();
    if let Some(mut perf) = perf {
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
    let host_cpu = cpu_time(&host_pid).saturating_sub(host_cpu);
    let bench_cpu = cpu_time("self").saturating_sub(bench_cpu);
    let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / total as f64;
    let connections = counts.connections.load(Ordering::SeqCst) - connections;
    let rate = total as f64 / took.as_secs_f64();
    let most = counts.most.load(Ordering::SeqCst);
    let best_text = if best == 0 {
        "none (drained within 1 s)".to_string()
    } else {
        format!("{best}/s")
    };
    println!(
        "{urls} URL(s), K={k}: {total} notifications (stored in {stored_in:.1?}, {held} held at the receiver) drained in {took:.2?} = {rate:.0}/s; best 1 s window {best_text}; at most {most} open at the receiver, {connections} connections opened while draining; CPU per notification: host {:.1} µs, bench {:.1} µs",
        per(host_cpu),
        per(bench_cpu),
    );
    (rate, best, most)
}

fn main() {
    let total = env_or("DRAIN_NOTIFICATIONS", 60_000usize);
    let runs = env_or("DRAIN_RUNS", 1u64);
    let cases = std::env::var("DRAIN_CASES").unwrap_or_else(|_| "1x1,1x16,50x1,50x16".into());
    let bin = std::env::var_os("HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(tests::host_binary);
    println!("host: {}", bin.display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..runs {
            for c in cases.split(',') {
                let (urls, k) = c.split_once('x').expect("cases are URLSxK");
                case(&bin, urls.parse().unwrap(), k.parse().unwrap(), total).await;
            }
        }
    });
}

/// The CPU time of process `pid` (or `self`) so far; zero when it cannot be read.
fn cpu_time(pid: &str) -> Duration {
    proc_stat(pid).map_or(Duration::ZERO, |s| s.own())
}
