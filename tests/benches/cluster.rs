//! Hosts on one store: SQLite with one host, or PostgreSQL with one or several hosts
//! sharing the database through leases. The hosts are processes (this package's
//! `e2e-host`, the host's `main.rs`, built in release by `cargo bench`), each with its own
//! data directory; the second and later ones share the first one's `authorization` file.
//! PostgreSQL is `tests/pg.rs`'s: a private cluster on loopback (durability off, as in the
//! tests), or `TEST_DATABASE_URL`'s server; a fresh database per phase.
//!
//! Phases (`CLUSTER_PHASES`, default `latency,polling`):
//!
//! - `latency`: one Ecwid instance, created on the first host; webhooks at a fixed rate
//!   (`CLUSTER_RATE`/s, 1,000, for `CLUSTER_SECONDS`, 10), sent round-robin over the
//!   hosts. Reports the time from sending a webhook to its notification reaching a real
//!   callback server (p50/p99/max), the webhook's answer alone (stored), and the CPU per
//!   webhook of the hosts and of the PostgreSQL server's processes, from `/proc`, over the
//!   run and until the last notification arrived.
//! - `polling`: `CLUSTER_POLL_INSTANCES` (10,000) Infusionsoft instances, created
//!   round-robin over the hosts, polling a stand-in Keap every `CLUSTER_POLL_INTERVAL_MIN`
//!   minutes (0.5) under a path of their own, so the stand-in counts each instance's
//!   polls. Once every instance has a schedule on some host and one interval has passed,
//!   measures `CLUSTER_POLL_ROUNDS` intervals (2): polls done against the slots expected,
//!   slots missed (a gap longer than 1.5 intervals between two polls of an instance, or
//!   since its last one at the end) and polled twice (a gap under half an interval), how
//!   the instances split between the hosts (`polling_instances`, `cluster_owned_instances`),
//!   each host's drift from its slots (`poll_drift_*`: the histogram's change over the
//!   window as bucket bounds, and the max since the host started), and the CPU per poll of
//!   the hosts and of PostgreSQL.
//!
//! The stand-in vendor, the callback receiver and the load generator run in this process,
//! whose CPU is not counted. On a 2-core machine all of them, the hosts and PostgreSQL
//! share the cores.
//!
//! Run (full size; each line is one quiet sitting of a few minutes):
//!
//! ```text
//! CLUSTER_BACKEND=sqlite   CLUSTER_HOSTS=1 CLUSTER_PHASES=latency cargo bench -p tests --bench cluster
//! CLUSTER_BACKEND=postgres CLUSTER_HOSTS=1 CLUSTER_PHASES=latency cargo bench -p tests --bench cluster
//! CLUSTER_BACKEND=postgres CLUSTER_HOSTS=2 CLUSTER_PHASES=latency cargo bench -p tests --bench cluster
//! CLUSTER_BACKEND=postgres CLUSTER_HOSTS=2 CLUSTER_PHASES=polling cargo bench -p tests --bench cluster
//! ```
//!
//! Env: `CLUSTER_BACKEND` (`sqlite` or `postgres`, default `postgres`), `CLUSTER_HOSTS`
//! (default 2 on PostgreSQL; SQLite takes 1), `CLUSTER_LEASE_MS` (the hosts'
//! `--lease-ms`, default theirs), `HOST_BIN` (another host binary), `RUST_LOG` (the hosts'
//! log filter, default `info` as in production; each host logs to a file in its
//! directory), and the phases' variables above.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tests::bench::{env_or, metric, percentile, proc_stat};
use tests::pg::TestDatabase;
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order, infusionsoft_instance};
use tests::standin::{StandIn, VendorAnswer, futures_answer};

/// The host binary's allocator, for the load generator too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Clock ticks per second of `/proc`'s CPU times.
const TICKS_PER_SECOND: f64 = 100.0;

/// Where the hosts keep their store.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A host process with its directories, killed on drop.
struct Host {
    child: Child,
    addr: String,
    auth: String,
    connectors: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// `http://ADDR` + `path`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADDR/elements/api-v2` + `path`.
    fn api(&self, path: &str) -> String {
        self.url(&format!("/elements/api-v2{path}"))
    }

    async fn metrics(&self) -> String {
        tests::get(&self.url("/metrics")).await.text()
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> tests::Answer {
        tests::send(
            "POST",
            &self.api(path),
            &[
                ("authorization", &self.auth),
                ("content-type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await
    }

    fn cpu_ticks(&self) -> u64 {
        proc_stat(&self.child.id().to_string()).map_or(0, |t| t.own_ticks)
    }
}

/// Starts `n` hosts on `database_url` (or each on its own SQLite file when `None`), the
/// first with a new connectors directory holding `guest`, the others on the same one and
/// with the first one's `authorization` file.
fn start_hosts(n: usize, database_url: Option<&str>, guest: &str) -> Vec<Host> {
    let bin = std::env::var_os("HOST_BIN").map_or_else(tests::host_binary, PathBuf::from);
    let lease = std::env::var("CLUSTER_LEASE_MS").ok();
    let mut hosts: Vec<Host> = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let connectors = match hosts.first() {
            Some(first) => first.connectors.clone(),
            None => {
                let c = dir.path().join("connectors");
                std::fs::create_dir_all(&c).unwrap();
                std::fs::copy(tests::guest(guest), c.join(format!("{guest}.wasm"))).unwrap();
                c
            }
        };
        let data = dir.path().join("data");
        if let Some(first) = hosts.first() {
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("authorization"), &first.auth).unwrap();
        }
        let log = std::fs::File::create(dir.path().join("host.log")).unwrap();
        let mut command = Command::new(&bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--connectors"])
            .arg(&connectors)
            .arg("--data")
            .arg(&data)
            .args(tests::LOOPBACK_ALLOWED)
            .args(["--max-instances-per-org", "1000000"])
            .args(["--min-poll-interval-ms", "100"]);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        if let Some(ms) = &lease {
            command.args(["--lease-ms", ms]);
        }
        let mut child = command
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default();
                panic!("host {i} did not start: {line:?}; its log: {log}")
            })
            .to_string();
        let auth = std::fs::read_to_string(data.join("authorization"))
            .unwrap()
            .trim()
            .to_string();
        hosts.push(Host {
            child,
            addr,
            auth,
            connectors,
            _dir: dir,
        });
    }
    hosts
}

/// The pids of the processes on this machine, from `/proc`.
fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// The pid of the PostgreSQL postmaster listening on `port` on this machine: a `postgres`
/// process started with `-D DIR` whose `DIR/postmaster.pid` names that port (its fourth
/// line). `None` when none is found (a server elsewhere, or not readable).
fn postmaster_on(port: u16) -> Option<u32> {
    for pid in pids() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if !args.first().is_some_and(|a| a.ends_with(b"postgres")) {
            continue;
        }
        let Some(dir) = args
            .windows(2)
            .find(|w| w[0] == b"-D")
            .and_then(|w| std::str::from_utf8(w[1]).ok())
        else {
            continue;
        };
        let pidfile = std::fs::read_to_string(Path::new(dir).join("postmaster.pid"));
        if pidfile.is_ok_and(|f| f.lines().nth(3).and_then(|p| p.trim().parse().ok()) == Some(port))
        {
            return Some(pid);
        }
    }
    None
}

/// All CPU ticks of a PostgreSQL server so far: the postmaster's own and its finished
/// children's (backends that exited and were waited for), plus its live children's.
fn postgres_ticks(postmaster: u32) -> u64 {
    let Some(top) = proc_stat(&postmaster.to_string()) else {
        return 0;
    };
    let mut total = top.own_ticks + top.children_ticks;
    for pid in pids() {
        if let Some(t) = proc_stat(&pid.to_string())
            && t.ppid == postmaster
        {
            total += t.own_ticks + t.children_ticks;
        }
    }
    total
}

/// The PostgreSQL server's CPU meter: its postmaster, found from the database URL's port.
struct PgMeter {
    /// Whether the hosts use PostgreSQL.
    used: bool,
    postmaster: Option<u32>,
}

impl PgMeter {
    fn find(db: Option<&TestDatabase>) -> PgMeter {
        let port = db
            .and_then(|d| url::Url::parse(d.url()).ok())
            .and_then(|u| u.port());
        let postmaster = port.and_then(postmaster_on);
        if db.is_some() && postmaster.is_none() {
            println!("(no local postgres process found for the database: its CPU is not counted)");
        }
        PgMeter {
            used: db.is_some(),
            postmaster,
        }
    }

    fn ticks(&self) -> Option<u64> {
        self.postmaster.map(postgres_ticks)
    }
}

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

/// Waits for `check` with a deadline, panicking with `what` past it.
async fn until<F, Fut>(deadline: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut check = check;
    tests::eventually(deadline, what, || {
        let f = check();
        async move { f.await.then_some(()) }
    })
    .await;
}

/// CPU of `hosts` and PostgreSQL between two readings, per unit of work.
struct CpuWindow {
    hosts: Vec<u64>,
    postgres: Option<u64>,
    at: Instant,
}

impl CpuWindow {
    fn start(hosts: &[Host], pg: &PgMeter) -> CpuWindow {
        CpuWindow {
            hosts: hosts.iter().map(Host::cpu_ticks).collect(),
            postgres: pg.ticks(),
            at: Instant::now(),
        }
    }

    /// Prints the hosts' and PostgreSQL's CPU since `start`, per one of `units` (`what`).
    fn report(&self, hosts: &[Host], pg: &PgMeter, units: f64, what: &str) {
        let wall = self.at.elapsed().as_secs_f64();
        let each: Vec<f64> = hosts
            .iter()
            .zip(&self.hosts)
            .map(|(h, before)| (h.cpu_ticks() - before) as f64 / TICKS_PER_SECOND)
            .collect();
        let sum: f64 = each.iter().sum();
        let shown: Vec<String> = each
            .iter()
            .map(|s| format!("{:.0}%", 100.0 * s / wall))
            .collect();
        println!(
            "  CPU over {wall:.1} s: hosts {sum:.2} s = {:.0} µs per {what} ({} of a core each)",
            1e6 * sum / units,
            shown.join(", "),
        );
        match (self.postgres, pg.ticks()) {
            (Some(before), Some(after)) => {
                let secs = (after - before) as f64 / TICKS_PER_SECOND;
                println!(
                    "  PostgreSQL {secs:.2} s = {:.0} µs per {what} ({:.0}% of a core); hosts + PostgreSQL {:.0} µs per {what}",
                    1e6 * secs / units,
                    100.0 * secs / wall,
                    1e6 * (sum + secs) / units,
                );
            }
            _ if pg.used => println!("  PostgreSQL: not measured"),
            _ => {}
        }
    }
}

/// Webhook → callback latency at a fixed rate, webhooks round-robin over `hosts`.
async fn latency(hosts: &[Host], pg: &PgMeter, rate: u64, seconds: u64) {
    let callback = Receiver::start().await;
    let created = hosts[0]
        .post("/instances", &ecwid_instance(&callback.url("/cb")))
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let urls: Vec<String> = hosts.iter().map(|h| h.api("/events/ecwid")).collect();
    // Every host takes the instance's webhooks, and their deliveries arrive: warm.
    for (i, url) in urls.iter().enumerate() {
        let (client, url) = (client.clone(), url.clone());
        until(
            Duration::from_secs(30),
            "every host to know the instance",
            || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let body = ecwid_order("order.created", &format!("warm{i}"), 1003).to_string();
                    post(&client, &url, body).await == 200
                }
            },
        )
        .await;
    }
    until(
        Duration::from_secs(30),
        "the warm-up deliveries",
        || async { callback.delivered().len() >= hosts.len() },
    )
    .await;
    let before = callback.received().len();

    let total = rate * seconds;
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let cpu = CpuWindow::start(hosts, pg);
    let mut inflight = Vec::new();
    for i in 0..total {
        ticker.tick().await;
        let id = format!("r{i}");
        sent.insert(id.clone(), Instant::now());
        let (client, url) = (client.clone(), urls[i as usize % urls.len()].clone());
        inflight.push(tokio::spawn(async move {
            let body = ecwid_order("order.created", &id, 1003).to_string();
            let start = Instant::now();
            assert_eq!(post(&client, &url, body).await, 200);
            start.elapsed()
        }));
    }
    let mut answers = Vec::with_capacity(inflight.len());
    for t in inflight {
        answers.push(t.await.unwrap());
    }
    answers.sort();
    let deadline = Instant::now() + Duration::from_secs(60);
    while callback.received().len() < before + total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // First arrivals only: an attempt that timed out at the host may arrive again.
    let mut seen = std::collections::HashSet::new();
    let received: Vec<_> = callback.received()[before..]
        .iter()
        .filter(|r| seen.insert(r.json()["message"]["eventId"].to_string()))
        .cloned()
        .collect();
    let mut e2e: Vec<Duration> = received
        .iter()
        .filter_map(|r| {
            let v = r.json();
            let id = v["message"]["events"][0]["objectId"].as_str()?.to_string();
            sent.get(&id).map(|t| r.at.saturating_duration_since(*t))
        })
        .collect();
    e2e.sort();
    println!(
        "webhook→callback at {rate}/s for {seconds} s over {} host(s): {} of {total} delivered; p50 {:.2?}, p99 {:.2?}, max {:.2?} (the webhook's answer alone: p50 {:.2?}, p99 {:.2?})",
        hosts.len(),
        e2e.len(),
        percentile(&e2e, 0.50),
        percentile(&e2e, 0.99),
        e2e.last().copied().unwrap_or_default(),
        percentile(&answers, 0.50),
        percentile(&answers, 0.99),
    );
    cpu.report(hosts, pg, total as f64, "webhook");
    if hosts.len() > 1 {
        // By the host the webhook went to: the lease holder delivers at once, the others
        // through the database.
        for (h, host) in hosts.iter().enumerate() {
            let mut each: Vec<Duration> = received
                .iter()
                .filter_map(|r| {
                    let v = r.json();
                    let id = v["message"]["events"][0]["objectId"].as_str()?;
                    let n: usize = id.strip_prefix('r')?.parse().ok()?;
                    (n % hosts.len() == h).then(|| r.at.saturating_duration_since(sent[id]))
                })
                .collect();
            each.sort();
            let leases = metric(&host.metrics().await, "cluster_owned_instances");
            println!(
                "  sent to host {h} ({} lease(s)): p50 {:.2?}, p99 {:.2?}",
                leases.map_or("-".into(), |v| v.to_string()),
                percentile(&each, 0.50),
                percentile(&each, 0.99),
            );
        }
    }
}

/// The bucket bound at or under which fraction `p` of the polls between metrics `m0` and
/// `m1` started (from the `poll_drift_seconds` histogram's change).
fn drift_percentile(m0: &str, m1: &str, p: f64) -> String {
    let delta = |name: &str| metric(m1, name).unwrap_or(0.0) - metric(m0, name).unwrap_or(0.0);
    let count = delta("poll_drift_seconds_count");
    if count == 0.0 {
        return "-".into();
    }
    let bounds = m1.lines().filter_map(|l| {
        let rest = l.strip_prefix("poll_drift_seconds_bucket{le=\"")?;
        Some(&rest[..rest.find('"')?])
    });
    for b in bounds {
        if delta(&format!("poll_drift_seconds_bucket{{le=\"{b}\"}}")) >= p * count {
            return format!("≤ {b} s");
        }
    }
    "?".into()
}

/// Per-instance poll times, recorded by the stand-in vendor.
type Polls = Arc<Mutex<Vec<Vec<Instant>>>>;

/// Polling: `n` instances spread over `hosts`, measured over `rounds` intervals.
async fn polling(hosts: &[Host], pg: &PgMeter, n: usize, interval_min: f64, rounds: f64) {
    let interval = Duration::from_secs_f64(interval_min * 60.0);
    let polls: Polls = Arc::new(Mutex::new(vec![Vec::new(); n]));
    let recorded = polls.clone();
    // Keap: tokens for the code exchange, and empty appointment pages; instance `i`
    // polls under `/v{i}`.
    let keap = StandIn::start(move |req| {
        if req.path == "/token" {
            return futures_answer::now(VendorAnswer::json(json!({
                "access_token": "at", "refresh_token": "rt", "expires_in": 86400
            })));
        }
        let i = req.path[2..]
            .split('/')
            .next()
            .and_then(|s| s.parse::<usize>().ok());
        if let Some(i) = i
            && let Some(times) = recorded.lock().unwrap().get_mut(i)
        {
            times.push(Instant::now());
        }
        futures_answer::now(VendorAnswer::json(
            json!({"appointments": [], "count": 0, "next": null}),
        ))
    })
    .await;
    let callback = Receiver::start().await;

    let created = Instant::now();
    let hosts_n = hosts.len();
    let bodies: Vec<(String, String)> = hosts
        .iter()
        .map(|h| (h.api("/instances"), h.auth.clone()))
        .collect();
    let bodies = Arc::new(bodies);
    let mut tasks = Vec::new();
    let workers = 32;
    for w in 0..workers {
        let (bodies, callback_url, keap_url) = (bodies.clone(), callback.url("/"), keap.url(""));
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                let mut body =
                    infusionsoft_instance(&callback_url, &format!("{keap_url}/v{i}/crm/rest/v1"));
                body["configuration"]["event.poller.refresh_interval"] = json!(interval_min);
                let (url, auth) = &bodies[i % hosts_n];
                let a = tests::send(
                    "POST",
                    url,
                    &[
                        ("authorization", auth),
                        ("content-type", "application/json"),
                    ],
                    body.to_string().as_bytes(),
                )
                .await;
                assert_eq!(a.status, 200, "{}", a.text());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "created {n} polling instances over {hosts_n} host(s) in {:.1?}",
        created.elapsed()
    );
    let scheduled = |hosts: &[Host]| {
        let urls: Vec<String> = hosts.iter().map(|h| h.url("/metrics")).collect();
        async move {
            let mut each = Vec::new();
            for url in urls {
                let text = tests::get(&url).await.text();
                each.push(metric(&text, "polling_instances").unwrap_or(0.0) as usize);
            }
            each
        }
    };
    until(
        Duration::from_secs(300),
        "every instance scheduled on one host",
        || async { scheduled(hosts).await.iter().sum::<usize>() == n },
    )
    .await;
    println!(
        "every instance scheduled {:.1?} after the first was created",
        created.elapsed()
    );
    // Every schedule has had its first slot.
    tokio::time::sleep(interval).await;

    let mut m0 = Vec::new();
    for h in hosts {
        m0.push(h.metrics().await);
    }
    let cpu = CpuWindow::start(hosts, pg);
    let t0 = Instant::now();
    tokio::time::sleep(interval.mul_f64(rounds)).await;
    let t1 = Instant::now();
    let mut m1 = Vec::new();
    for h in hosts {
        m1.push(h.metrics().await);
    }

    let all = polls.lock().unwrap().clone();
    let window = t1 - t0;
    let done: usize = all
        .iter()
        .map(|times| times.iter().filter(|t| (t0..t1).contains(t)).count())
        .sum();
    let expected = n as f64 * window.as_secs_f64() / interval.as_secs_f64();
    let (mut missed, mut twice, mut never) = (0usize, 0usize, 0usize);
    for times in &all {
        if times.is_empty() {
            never += 1;
            continue;
        }
        // From a poll before the window (every schedule has had one) to the window's end.
        let from = times.iter().rposition(|t| *t < t0).unwrap_or(0);
        let mut last = times[from];
        for t in times[from + 1..].iter().filter(|t| **t < t1) {
            let gap = *t - last;
            if gap > interval.mul_f64(1.5) {
                missed += (gap.as_secs_f64() / interval.as_secs_f64()).round() as usize - 1;
            } else if gap < interval / 2 {
                twice += 1;
            }
            last = *t;
        }
        let tail = t1 - last;
        if tail > interval.mul_f64(1.5) {
            missed += (tail.as_secs_f64() / interval.as_secs_f64()).floor() as usize;
        }
    }
    println!(
        "{done} polls in {window:.1?} against {expected:.0} slots ({:.0}/s); {missed} slots missed, {twice} polled twice in a slot, {never} instances never polled",
        done as f64 / window.as_secs_f64(),
    );
    for (i, (m0, m1)) in m0.iter().zip(&m1).enumerate() {
        let ok = |m: &str| metric(m, "polls_total{outcome=\"ok\"}").unwrap_or(0.0);
        let failed = |m: &str| metric(m, "polls_total{outcome=\"error\"}").unwrap_or(0.0);
        println!(
            "  host {i}: {} polling instances, {} leases; {:.0} polls ({:.0} failed); drift p50 {}, p99 {}, max since start {:.3} s",
            metric(m1, "polling_instances").unwrap_or(0.0),
            metric(m1, "cluster_owned_instances").map_or("-".into(), |v| v.to_string()),
            ok(m1) - ok(m0),
            failed(m1) - failed(m0),
            drift_percentile(m0, m1, 0.50),
            drift_percentile(m0, m1, 0.99),
            metric(m1, "poll_drift_max_seconds").unwrap_or(0.0),
        );
    }
    cpu.report(hosts, pg, done.max(1) as f64, "poll");
}

fn main() {
    let backend = match std::env::var("CLUSTER_BACKEND").as_deref() {
        Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") | Err(_) => Backend::Postgres,
        Ok(other) => panic!("CLUSTER_BACKEND must be sqlite or postgres, not {other:?}"),
    };
    let default_hosts = if backend == Backend::Sqlite { 1.0 } else { 2.0 };
    let n_hosts = env_or("CLUSTER_HOSTS", default_hosts) as usize;
    assert!(n_hosts >= 1, "CLUSTER_HOSTS must be at least 1");
    assert!(
        backend == Backend::Postgres || n_hosts == 1,
        "CLUSTER_HOSTS > 1 needs CLUSTER_BACKEND=postgres (a SQLite store is one host's)"
    );
    let phases = std::env::var("CLUSTER_PHASES").unwrap_or_else(|_| "latency,polling".into());
    let rate = env_or("CLUSTER_RATE", 1000.0) as u64;
    let seconds = env_or("CLUSTER_SECONDS", 10.0) as u64;
    let instances = env_or("CLUSTER_POLL_INSTANCES", 10_000.0) as usize;
    let interval_min = env_or("CLUSTER_POLL_INTERVAL_MIN", 0.5);
    let rounds = env_or("CLUSTER_POLL_ROUNDS", 2.0);
    let shown = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        for phase in phases.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let db = (backend == Backend::Postgres).then(TestDatabase::create);
            let pg = PgMeter::find(db.as_ref());
            let url = db.as_ref().map(TestDatabase::url);
            println!("== {phase}: {shown}, {n_hosts} host(s)");
            match phase {
                "latency" => {
                    let hosts = start_hosts(n_hosts, url, "ecwid");
                    latency(&hosts, &pg, rate, seconds).await;
                }
                "polling" => {
                    let hosts = start_hosts(n_hosts, url, "infusionsoftrest");
                    polling(&hosts, &pg, instances, interval_min, rounds).await;
                }
                other => panic!("CLUSTER_PHASES: no phase {other:?} (latency, polling)"),
            }
        }
    });
}
