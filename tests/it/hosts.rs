//! Hosts on PostgreSQL (`--database-url`): one host on the shared store behaves as on
//! SQLite; several hosts on one database share instances, delivery and polling.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use tests::pg::TestDatabase;
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order, infusionsoft_instance};
use tests::standin::{StandIn, VendorAnswer, futures_answer};
use tests::{TestHost, create_instance, eventually, webhook};

#[tokio::test]
async fn a_host_on_postgres_takes_a_webhook_delivers_it_and_keeps_it_across_a_restart() {
    let db = TestDatabase::create();
    let callback = Receiver::start().await;
    let host = TestHost::start_with(&["ecwid"], &["--database-url", db.url()]);
    let created = create_instance(&host, &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "P1", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let event_id = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let delivered = eventually(Duration::from_secs(10), "the delivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    assert_eq!(delivered.json()["message"]["eventId"], event_id.as_str());
    // Its attempt is recorded behind the send: wait for it before the kill.
    let path = format!("/instances/{id}/events/{event_id}");
    eventually(Duration::from_secs(10), "the recorded delivery", || async {
        (host.call("GET", &path, None).await.json()["status"] == "NOTIFIED").then_some(())
    })
    .await;

    // The data directory holds no store: a host on a new data directory and the same
    // database finds the instance and the notification.
    let sqlite = host.data.join("store.sqlite");
    assert!(!sqlite.exists(), "no SQLite store beside a database URL");
    let (connectors, _data, dirs) = host.kill();
    let fresh = tempfile::tempdir().unwrap();
    let mut again =
        TestHost::start_in_with(&connectors, fresh.path(), &["--database-url", db.url()]);
    again.adopt(dirs);
    let auth = std::fs::read_to_string(_data.join("authorization")).unwrap();
    let answer = tests::send(
        "GET",
        &again.url(&path),
        &[("authorization", auth.trim())],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["status"], "NOTIFIED", "delivered");
}

/// Starts `n` hosts on database `db` with the connectors `guests` and extra `args`: the
/// first makes the first organization, the others share its `authorization` file (and
/// its connectors directory).
fn cluster(db: &TestDatabase, n: usize, guests: &[&str], args: &[&str]) -> Vec<TestHost> {
    let mut all = vec!["--database-url", db.url()];
    all.extend_from_slice(args);
    let first = TestHost::start_with(guests, &all);
    let auth = first.authorization();
    let mut hosts = vec![first];
    for _ in 1..n {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("authorization"), &auth).unwrap();
        let mut host = TestHost::start_in_with(&hosts[0].connectors, &data, &all);
        host.adopt(Some(dir));
        hosts.push(host);
    }
    hosts
}

/// Waits until every host serves instance `id`.
async fn known_everywhere(hosts: &[TestHost], id: i64) {
    for host in hosts {
        eventually(
            Duration::from_secs(5),
            "the instance on every host",
            || async {
                (host
                    .call("GET", &format!("/instances/{id}"), None)
                    .await
                    .status
                    == 200)
                    .then_some(())
            },
        )
        .await;
    }
}

/// A host's `/metrics` gauge `name`.
async fn gauge(host: &TestHost, name: &str) -> u64 {
    let text = tests::get(&host.root_url("/metrics")).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn an_instance_made_on_one_host_is_in_effect_on_the_other_within_a_second() {
    let db = TestDatabase::create();
    let hosts = cluster(&db, 2, &["ecwid"], &[]);
    let (a, b) = (&hosts[0], &hosts[1]);
    let callback = Receiver::start().await;
    let created = create_instance(a, &ecwid_instance(&callback.url("/first"))).await;
    let id = created["id"].as_i64().unwrap();

    // Host B takes the instance's webhooks within a second of its creation on A.
    let order = |n: u32| ecwid_order("order.created", &format!("X{n}"), 1003).to_string();
    let took = eventually(
        Duration::from_secs(1),
        "host B to know the instance",
        || async {
            let answer = webhook(b, "ecwid", &[], order(1).as_bytes()).await;
            (answer.status == 200 && answer.json()["instances"][0]["instanceId"] == id)
                .then_some(answer)
        },
    )
    .await;
    let first_id = took.json()["instances"][0]["notifications"][0].clone();
    let got = eventually(Duration::from_secs(10), "the delivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    assert_eq!(got.path, "/first");
    assert_eq!(got.json()["message"]["eventId"], first_id);

    // A change made on B is in effect on A within a second: a webhook taken by A goes to
    // the new URL.
    let patched = b
        .call(
            "PATCH",
            &format!("/instances/{id}"),
            Some(&serde_json::json!({"configuration": {
                "event.notification.callback.url": callback.url("/second")
            }})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    eventually(
        Duration::from_secs(1),
        "host A to read the new URL",
        || async {
            let shown = a
                .call("GET", &format!("/instances/{id}"), None)
                .await
                .json();
            (shown["configuration"]["event.notification.callback.url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/second")))
            .then_some(())
        },
    )
    .await;
    let answer = webhook(a, "ecwid", &[], order(2).as_bytes()).await;
    assert_eq!(answer.status, 200);
    eventually(
        Duration::from_secs(10),
        "the delivery to the new URL",
        || async {
            callback
                .delivered()
                .iter()
                .any(|r| r.path == "/second")
                .then_some(())
        },
    )
    .await;

    // Deleted on A, it is gone on B within a second.
    let deleted = a.call("DELETE", &format!("/instances/{id}"), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    eventually(
        Duration::from_secs(1),
        "host B to forget the instance",
        || async {
            (b.call("GET", &format!("/instances/{id}"), None)
                .await
                .status
                == 404)
                .then_some(())
        },
    )
    .await;
}

/// Each instance's order ids in the order they first reached the callback, and how many
/// deliveries repeated one already delivered.
fn first_arrivals(callback: &Receiver) -> (HashMap<String, Vec<u32>>, usize) {
    let mut seen = HashSet::new();
    let mut order: HashMap<String, Vec<u32>> = HashMap::new();
    let mut repeats = 0;
    for r in callback.delivered() {
        let body = r.json();
        let event = body["message"]["eventId"].as_str().unwrap().to_string();
        if !seen.insert(event) {
            repeats += 1;
            continue;
        }
        for e in body["message"]["events"].as_array().unwrap() {
            let n: u32 = e["objectId"].as_str().unwrap()[1..].parse().unwrap();
            order.entry(r.path.clone()).or_default().push(n);
        }
    }
    (order, repeats)
}

#[tokio::test]
async fn a_thousand_webhooks_over_three_hosts_survive_one_killed() {
    const INSTANCES: u32 = 4;
    const PER_INSTANCE: u32 = 250;
    let db = TestDatabase::create();
    let retries = vec!["100"; 200].join(",");
    let mut hosts = cluster(
        &db,
        3,
        &["ecwid"],
        // No resync within the test: only the takeover can deliver the dead host's backlog.
        &[
            "--lease-ms",
            "2000",
            "--retry-delays-ms",
            &retries,
            "--resync-ms",
            "600000",
        ],
    );
    let callback = Receiver::start().await;
    callback.set_status(503);
    for i in 0..INSTANCES {
        let mut instance = ecwid_instance(&callback.url(&format!("/i{i}")));
        instance["configuration"]["ecwid.store.id"] = json!((2000 + i).to_string());
        create_instance(&hosts[0], &instance).await;
    }
    // Every host knows every instance before the webhooks come.
    for host in &hosts {
        eventually(
            Duration::from_secs(5),
            "the instances on every host",
            || async {
                let list = host.call("GET", "/instances", None).await.json();
                (list.as_array().map_or(0, Vec::len) == INSTANCES as usize).then_some(())
            },
        )
        .await;
    }

    // Each instance's webhooks are sent one after another (so their acceptance order is
    // known), spread over the three hosts; the instances' senders run at once.
    let senders = (0..INSTANCES).map(|i| {
        let urls: Vec<String> = hosts.iter().map(|h| h.url("/events/ecwid")).collect();
        tokio::spawn(async move {
            for n in 0..PER_INSTANCE {
                let body = ecwid_order("order.created", &format!("o{n}"), 2000 + u64::from(i));
                let url = &urls[((n + i) % 3) as usize];
                let answer = tests::send(
                    "POST",
                    url,
                    &[("content-type", "application/json")],
                    body.to_string().as_bytes(),
                )
                .await;
                assert_eq!(answer.status, 200, "{}", answer.text());
            }
        })
    });
    for sender in senders.collect::<Vec<_>>() {
        sender.await.unwrap();
    }

    // Host 0 (which holds leases on some instances, and attempts in flight to the down
    // callback) dies; the callback comes back.
    let owned_by_killed = gauge(&hosts[0], "cluster_owned_instances").await;
    // Its directories (the connectors directory is shared) stay.
    let _dirs = hosts.remove(0).kill();
    callback.set_status(200);

    let total = (INSTANCES * PER_INSTANCE) as usize;
    // With no resync running, only the takeover delivers the dead host's backlog: the
    // survivors load its pending notifications when they take its instances over (about
    // 6 s alone; the deadline leaves room for a loaded CI machine).
    eventually(
        Duration::from_secs(60),
        "every notification delivered",
        || async {
            let (order, _) = first_arrivals(&callback);
            (order.values().map(Vec::len).sum::<usize>() == total).then_some(())
        },
    )
    .await;
    let (order, repeats) = first_arrivals(&callback);
    eprintln!(
        "1,000 webhooks, 3 hosts, one killed (it owned {owned_by_killed} instances): {repeats} delivered twice"
    );
    assert!(
        repeats as u64 <= owned_by_killed,
        "a repeat only for an attempt in flight at the kill: {repeats}"
    );
    for (path, ids) in &order {
        let expected: Vec<u32> = (0..PER_INSTANCE).collect();
        assert_eq!(ids, &expected, "{path}: acceptance order kept");
    }
}

/// A stand-in Keap for many instances: instance `n` polls under `/v{n}`; every poll is
/// recorded with its instance and time, and answered with no appointment.
async fn keap_for_many() -> (Arc<Mutex<Vec<(u32, Instant)>>>, StandIn) {
    let polls = Arc::new(Mutex::new(Vec::new()));
    let recorded = polls.clone();
    let standin = StandIn::start(move |req| {
        if req.path == "/token" {
            return futures_answer::now(VendorAnswer::json(json!({
                "access_token": "at-1",
                "refresh_token": "rt-1",
                "expires_in": 86400,
                "token_type": "bearer",
                "scope": "full"
            })));
        }
        let n: u32 = req.path[2..].split('/').next().unwrap().parse().unwrap();
        recorded.lock().unwrap().push((n, Instant::now()));
        futures_answer::now(VendorAnswer::json(json!({
            "appointments": [], "count": 0, "next": null, "previous": null
        })))
    })
    .await;
    (polls, standin)
}

/// How many polls each of `n` instances had at or after `since`.
fn polls_since(polls: &Mutex<Vec<(u32, Instant)>>, n: u32, since: Instant) -> Vec<usize> {
    let mut count = vec![0; n as usize];
    for (i, at) in polls.lock().unwrap().iter() {
        if *at >= since {
            count[*i as usize] += 1;
        }
    }
    count
}

#[tokio::test]
async fn polling_instances_spread_over_two_hosts_and_move_when_one_dies() {
    const N: u32 = 100;
    const INTERVAL: Duration = Duration::from_millis(1200);
    const LEASE: Duration = Duration::from_secs(2);
    let db = TestDatabase::create();
    let mut hosts = cluster(&db, 2, &["infusionsoftrest"], &["--lease-ms", "2000"]);
    let callback = Receiver::start().await;
    let (polls, standin) = keap_for_many().await;
    for n in 0..N {
        let mut instance = infusionsoft_instance(
            &callback.url("/"),
            &standin.url(&format!("/v{n}/crm/rest/v1")),
        );
        instance["configuration"]["event.poller.refresh_interval"] =
            json!(INTERVAL.as_secs_f64() / 60.0);
        create_instance(&hosts[(n % 2) as usize], &instance).await;
    }
    // Both hosts poll, and between them every instance, once.
    let spread = eventually(Duration::from_secs(15), "the instances spread", || async {
        let (a, b) = (
            gauge(&hosts[0], "polling_instances").await,
            gauge(&hosts[1], "polling_instances").await,
        );
        (a + b == u64::from(N) && a > 0 && b > 0).then_some((a, b))
    })
    .await;
    let warm = Instant::now();
    eventually(
        Duration::from_secs(15),
        "every instance polled twice",
        || async {
            polls_since(&polls, N, warm)
                .iter()
                .all(|&c| c >= 2)
                .then_some(())
        },
    )
    .await;

    let killed_at = Instant::now();
    // Its directories (the connectors directory is shared) stay.
    let _dirs = hosts.remove(0).kill();
    eventually(
        Duration::from_secs(30),
        "the survivor polls them all",
        || async { (gauge(&hosts[0], "polling_instances").await == u64::from(N)).then_some(()) },
    )
    .await;
    let moved = Instant::now();
    eventually(
        Duration::from_secs(30),
        "every instance polled on",
        || async {
            polls_since(&polls, N, moved)
                .iter()
                .all(|&c| c >= 2)
                .then_some(())
        },
    )
    .await;

    // No instance was polled twice in one slot, except across the lease's expiry.
    let all = polls.lock().unwrap().clone();
    let expiry = killed_at..killed_at + LEASE + Duration::from_secs(2);
    let mut twice = 0;
    for n in 0..N {
        let times: Vec<Instant> = all.iter().filter(|(i, _)| *i == n).map(|p| p.1).collect();
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            if gap < INTERVAL / 2 {
                assert!(
                    expiry.contains(&w[1]),
                    "instance {n} polled twice {gap:?} apart outside the lease expiry"
                );
                twice += 1;
            }
        }
    }
    eprintln!(
        "{N} polling instances over 2 hosts ({} and {}), one killed: all polled on by the survivor, {twice} polled twice across the lease expiry",
        spread.0, spread.1
    );
}

#[tokio::test]
async fn retention_runs_on_one_host_at_a_time() {
    let db = TestDatabase::create();
    let hosts = cluster(
        &db,
        2,
        &["ecwid"],
        &[
            "--lease-ms",
            "1000",
            "--retention-ms",
            "1",
            "--prune-interval-ms",
            "50",
        ],
    );
    let callback = Receiver::start().await;
    let created = create_instance(&hosts[1], &ecwid_instance(&callback.url("/"))).await;
    known_everywhere(&hosts, created["id"].as_i64().unwrap()).await;
    for n in 0..20 {
        let order = ecwid_order("order.created", &format!("R{n}"), 1003).to_string();
        assert_eq!(
            webhook(&hosts[n % 2], "ecwid", &[], order.as_bytes())
                .await
                .status,
            200
        );
    }
    // Delivered, then pruned (by whichever host runs the pruner).
    eventually(
        Duration::from_secs(10),
        "the notifications pruned",
        || async {
            let mut pruned = 0;
            for host in &hosts {
                pruned += gauge(host, "notifications_pruned_total").await;
            }
            (pruned == 20).then_some(())
        },
    )
    .await;
    assert_eq!(callback.delivered().len(), 20);
    // Over a few seconds of settled leases, one host's pruner runs and the other's waits.
    let passes = || async {
        let mut each = Vec::new();
        for host in &hosts {
            each.push(gauge(host, "retention_passes_total").await);
        }
        each
    };
    let start = passes().await;
    eventually(Duration::from_secs(10), "twenty passes", || async {
        let now = passes().await;
        let ran: u64 = now.iter().zip(&start).map(|(n, s)| n - s).sum();
        (ran >= 20).then_some(())
    })
    .await;
    let before = passes().await;
    eventually(Duration::from_secs(10), "twenty more passes", || async {
        let now = passes().await;
        let ran: u64 = now.iter().zip(&before).map(|(n, s)| n - s).sum();
        (ran >= 20).then_some(())
    })
    .await;
    let after = passes().await;
    let ran: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(
        ran.iter().filter(|&&r| r > 0).count() == 1,
        "one host prunes at a time: {ran:?}"
    );
}

#[tokio::test]
async fn a_redeliver_call_to_a_host_that_does_not_deliver_the_instance_works() {
    let db = TestDatabase::create();
    let hosts = cluster(&db, 2, &["ecwid"], &["--retry-delays-ms", "50"]);
    let callback = Receiver::start().await;
    callback.set_status(503);
    let created = create_instance(&hosts[0], &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    known_everywhere(&hosts, id).await;
    // The host that holds the instance's lease, and the other.
    let owner = eventually(Duration::from_secs(10), "one host to own it", || async {
        let a = gauge(&hosts[0], "cluster_owned_instances").await;
        let b = gauge(&hosts[1], "cluster_owned_instances").await;
        match (a, b) {
            (1, 0) => Some(0),
            (0, 1) => Some(1),
            _ => None,
        }
    })
    .await;
    let other = &hosts[1 - owner];
    let order = ecwid_order("order.created", "D1", 1003).to_string();
    let answer = webhook(other, "ecwid", &[], order.as_bytes()).await;
    let event = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/instances/{id}/events/{event}");
    eventually(Duration::from_secs(10), "the dead letter", || async {
        (other.call("GET", &path, None).await.json()["status"] == "FAILED").then_some(())
    })
    .await;
    assert_eq!(callback.received().len(), 2, "one attempt and one retry");

    callback.set_status(200);
    let redeliver = other.call("POST", &format!("{path}/redeliver"), None).await;
    assert_eq!(redeliver.status, 202, "{}", redeliver.text());
    let delivered = eventually(Duration::from_secs(10), "the redelivery", || async {
        callback.delivered().first().cloned()
    })
    .await;
    assert_eq!(delivered.json()["message"]["eventId"], event.as_str());
    assert_eq!(callback.received().len(), 3);
}

#[tokio::test]
async fn a_host_stopped_gracefully_hands_its_instances_over_before_its_leases_expire() {
    let db = TestDatabase::create();
    // 12 s leases, renewed every 3 s: a host that just stopped renewing holds its
    // instances for 9 s or more.
    let mut hosts = cluster(&db, 2, &["ecwid"], &["--lease-ms", "12000"]);
    let callback = Receiver::start().await;
    for i in 0..8u32 {
        let mut instance = ecwid_instance(&callback.url("/"));
        instance["configuration"]["ecwid.store.id"] = json!((3000 + i).to_string());
        let created = create_instance(&hosts[0], &instance).await;
        known_everywhere(&hosts, created["id"].as_i64().unwrap()).await;
    }
    eventually(
        Duration::from_secs(30),
        "both hosts to own some",
        || async {
            let a = gauge(&hosts[0], "cluster_owned_instances").await;
            let b = gauge(&hosts[1], "cluster_owned_instances").await;
            (a + b == 8 && a > 0 && b > 0).then_some(())
        },
    )
    .await;

    let mut leaving = hosts.remove(0);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &leaving.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually(Duration::from_secs(10), "the host to exit", || {
        let running = leaving.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    let left = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the other host to own all",
        || async { (gauge(&hosts[0], "cluster_owned_instances").await == 8).then_some(()) },
    )
    .await;
    let took = left.elapsed();
    eprintln!("a graceful stop handed 8 instances over in {took:?}");
    assert!(
        took < Duration::from_secs(6),
        "taken over in {took:?}: the leases were given up, not left to expire"
    );
}

#[tokio::test]
async fn hosts_starting_together_on_an_empty_database_make_one_first_organization() {
    let db = TestDatabase::create();
    let url = db.url().to_string();
    let starting: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || TestHost::start_with(&["ecwid"], &["--database-url", &url]))
        })
        .collect();
    let hosts: Vec<TestHost> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    let files: Vec<&TestHost> = hosts
        .iter()
        .filter(|h| h.data.join("authorization").exists())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one host wrote the first organization's file"
    );
    let client = crate::store_suite::pg_client(&db).await;
    let orgs: i64 = client
        .query_one("SELECT COUNT(*) FROM orgs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orgs, 1);
    // Its value opens the API on every host.
    let auth = files[0].authorization();
    for host in &hosts {
        let answer = tests::send(
            "GET",
            &host.url("/instances"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(answer.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_bootstraps_at_once_on_a_shared_store_make_one_organization() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(Arc::new(
            store::postgres::PgStore::connect(db.url()).await.unwrap(),
        ));
    }
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let (store, file) = (store.clone(), dir.path().join(format!("auth-{i}")));
            tokio::spawn(async move { host::tenancy::bootstrap(&*store, &file, 1).await.unwrap() })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        made += usize::from(task.await.unwrap());
    }
    assert_eq!(made, 1, "one bootstrap made the first organization");
    use store::Store as _;
    assert_eq!(stores[0].count_orgs().await.unwrap(), 1);
}

#[tokio::test]
async fn a_host_refuses_a_database_of_a_newer_schema_and_never_shows_its_password() {
    let db = TestDatabase::create();
    drop(store::postgres::PgStore::connect(db.url()).await.unwrap());
    let client = crate::store_suite::pg_client(&db).await;
    client
        .execute("UPDATE schema_version SET version = 99", &[])
        .await
        .unwrap();
    // The private test server trusts loopback, so a password in the URL is not checked:
    // it is only there to be hidden.
    let url = db
        .url()
        .replacen("postgres://postgres@", "postgres://postgres:s3cret@", 1);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tests::host_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--connectors"])
        .arg(dir.path())
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema version 99, newer than this program's"),
        "{stderr}"
    );
    assert!(stderr.contains("postgres:***@"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

/// A callback that takes `delay` to answer each request, keeping, per path, the order ids
/// in arrival order and the most requests open at once.
#[derive(Default)]
struct SlowCallback {
    open: Mutex<HashMap<String, usize>>,
    most_open: Mutex<HashMap<String, usize>>,
    arrivals: Mutex<Vec<(String, String, u32)>>,
}

impl SlowCallback {
    async fn start(delay: Duration) -> (Arc<SlowCallback>, StandIn) {
        let state = Arc::new(SlowCallback::default());
        let s = state.clone();
        let standin = StandIn::start(move |req| {
            let (s, path) = (s.clone(), req.path.clone());
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            Box::pin(async move {
                {
                    let mut open = s.open.lock().unwrap();
                    let n = open.entry(path.clone()).or_default();
                    *n += 1;
                    let mut most = s.most_open.lock().unwrap();
                    let m = most.entry(path.clone()).or_default();
                    *m = (*m).max(*n);
                }
                let event = body["message"]["eventId"].as_str().unwrap().to_string();
                for e in body["message"]["events"].as_array().unwrap() {
                    let n: u32 = e["objectId"].as_str().unwrap()[1..].parse().unwrap();
                    s.arrivals
                        .lock()
                        .unwrap()
                        .push((path.clone(), event.clone(), n));
                }
                tokio::time::sleep(delay).await;
                *s.open.lock().unwrap().get_mut(&path).unwrap() -= 1;
                VendorAnswer::json(json!({}))
            }) as futures_answer::Answer
        })
        .await;
        (state, standin)
    }
}

#[tokio::test]
async fn instances_moving_to_a_joining_host_keep_their_order_and_never_overlap() {
    const INSTANCES: u32 = 8;
    const PER_INSTANCE: u32 = 12;
    let db = TestDatabase::create();
    let mut hosts = cluster(&db, 1, &["ecwid"], &["--lease-ms", "2000"]);
    // Each attempt takes longer than a lease renewal (500 ms): a host giving an instance
    // up mid-attempt would let the next one start while the attempt is in flight.
    let (callback, standin) = SlowCallback::start(Duration::from_millis(700)).await;
    for i in 0..INSTANCES {
        let mut instance = ecwid_instance(&standin.url(&format!("/i{i}")));
        instance["configuration"]["ecwid.store.id"] = json!((4000 + i).to_string());
        create_instance(&hosts[0], &instance).await;
    }
    // A backlog of 12 per instance at 700 ms each: 8 s of delivery per instance.
    let url = hosts[0].url("/events/ecwid");
    let senders: Vec<_> = (0..INSTANCES)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                for n in 0..PER_INSTANCE {
                    let body = ecwid_order("order.created", &format!("o{n}"), 4000 + u64::from(i));
                    let answer = tests::send(
                        "POST",
                        &url,
                        &[("content-type", "application/json")],
                        body.to_string().as_bytes(),
                    )
                    .await;
                    assert_eq!(answer.status, 200);
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    // A second host joins while the backlog drains: some instances move to it.
    let auth = hosts[0].authorization();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("authorization"), &auth).unwrap();
    let mut joining = TestHost::start_in_with(
        &hosts[0].connectors,
        &data,
        &["--database-url", db.url(), "--lease-ms", "2000"],
    );
    joining.adopt(Some(dir));
    hosts.push(joining);

    let total = (INSTANCES * PER_INSTANCE) as usize;
    eventually(
        Duration::from_secs(60),
        "every notification delivered",
        || async {
            let events: HashSet<String> = callback
                .arrivals
                .lock()
                .unwrap()
                .iter()
                .map(|a| a.1.clone())
                .collect();
            (events.len() == total).then_some(())
        },
    )
    .await;
    let moved = gauge(&hosts[1], "cluster_owned_instances").await;
    assert!(moved > 0, "some instances moved to the joining host");
    let most = callback.most_open.lock().unwrap().clone();
    assert!(
        most.values().all(|&m| m == 1),
        "one attempt at a time per instance, across hosts: {most:?}"
    );
    let arrivals = callback.arrivals.lock().unwrap().clone();
    let mut seen = HashSet::new();
    let mut order: HashMap<String, Vec<u32>> = HashMap::new();
    for (path, event, n) in &arrivals {
        if seen.insert(event.clone()) {
            order.entry(path.clone()).or_default().push(*n);
        }
    }
    let repeats = arrivals.len() - seen.len();
    for (path, ids) in &order {
        assert_eq!(
            ids,
            &(0..PER_INSTANCE).collect::<Vec<_>>(),
            "{path} in order"
        );
    }
    eprintln!("{moved} of {INSTANCES} instances moved mid-backlog; {repeats} sent twice");
    assert_eq!(
        repeats, 0,
        "a handover waits for the attempt in flight and its record"
    );
}

#[tokio::test]
async fn a_notification_whose_announcement_was_lost_is_delivered_after_a_resync() {
    let db = TestDatabase::create();
    let hosts = cluster(&db, 2, &["ecwid"], &["--resync-ms", "1000"]);
    let callback = Receiver::start().await;
    let created = create_instance(&hosts[0], &ecwid_instance(&callback.url("/"))).await;
    let id = created["id"].as_i64().unwrap();
    known_everywhere(&hosts, id).await;
    // A notification written as a host that died between its commit and its
    // announcement would leave it: in the outbox, announced to nobody.
    let client = crate::store_suite::pg_client(&db).await;
    client
        .execute(
            "INSERT INTO notifications (id, instance_id, endpoint, event_count, created_ms,
                 state, delivery, attempts, next_attempt_ms, body)
             VALUES ('lost-1', $1, 'orders', 1, 1, 'pending', 1, 0, 1, $2)",
            &[&id, &b"{\"lost\":true}".to_vec()],
        )
        .await
        .unwrap();
    let got = eventually(Duration::from_secs(10), "the resync to find it", || async {
        callback.delivered().first().cloned()
    })
    .await;
    assert_eq!(got.body.as_ref(), b"{\"lost\":true}");
    assert_eq!(callback.delivered().len(), 1, "delivered once");
}
