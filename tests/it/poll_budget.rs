//! A poll's budget and the pace of manual polls, end to end: a stand-in Keap that always has
//! a next page (or large pages, or one that never comes) cannot keep a poll reading; the
//! poll fails naming the budget, notifies nothing and keeps its cursor, and the next poll
//! asks for the same window again. Manual polls of one instance are paced.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::infusionsoft_instance;
use tests::standin::{StandIn, VendorAnswer, VendorRequest, futures_answer};
use tests::{TestHost, create_instance, eventually};

const WITHIN: Duration = Duration::from_secs(15);
const KEAP_BASE: &str = "/crm/rest/v1";
const APPOINTMENTS: &str = "/crm/rest/v1/appointments";

/// How the stand-in Keap pages its appointments.
#[derive(Debug, Clone, Copy)]
enum Paging {
    /// Every page is full and has a next one.
    Endless,
    /// The first page as `Endless`; every later page never comes.
    StallsAfterFirst,
    /// This many appointments in all.
    Finite(usize),
}

/// A stand-in Keap: `/token` grants any code; appointments are made up on demand, each
/// dated `t0` and carrying `padding` bytes of notes.
struct Keap {
    paging: Mutex<Paging>,
    t0: i64,
    padding: usize,
}

impl Keap {
    fn answer(&self, req: &VendorRequest) -> futures_answer::Answer {
        if req.path == "/token" {
            return futures_answer::now(VendorAnswer::json(json!({
                "access_token": "at-1",
                "refresh_token": "rt-1",
                "expires_in": 86400,
                "token_type": "bearer",
                "scope": "full"
            })));
        }
        assert_eq!(req.path, APPOINTMENTS, "only appointments are polled");
        let offset: usize = req.param("offset").unwrap_or("0").parse().unwrap();
        let limit: usize = req.param("limit").unwrap_or("1000").parse().unwrap();
        let total = match *self.paging.lock().unwrap() {
            Paging::Endless => usize::MAX / 2,
            Paging::StallsAfterFirst if offset > 0 => return Box::pin(std::future::pending()),
            Paging::StallsAfterFirst => usize::MAX / 2,
            Paging::Finite(n) => n,
        };
        let date = host::notify::rfc3339_ms(self.t0);
        let page: Vec<Value> = (offset..total.min(offset + limit))
            .map(|i| {
                json!({
                    "id": i + 1,
                    "creation_date": date,
                    "modification_date": date,
                    "notes": "n".repeat(self.padding),
                })
            })
            .collect();
        let mut next: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "offset")
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        next.push(format!("offset={}", offset + limit));
        let origin = req.header("host").expect("a Host header");
        futures_answer::now(VendorAnswer::json(json!({
            "appointments": page,
            "count": total,
            "next": format!("http://{origin}{}?{}", req.path, next.join("&")),
            "previous": null
        })))
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn poll(host: &TestHost, id: i64) -> Value {
    let answer = host
        .call("POST", &format!("/instances/{id}/events/poll"), None)
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

/// A host with `args`, a callback, a stand-in Keap paging as `paging` with `padding` bytes
/// a record, and an instance polling it `page_size` records a page.
struct Setup {
    host: TestHost,
    callback: Receiver,
    keap: Arc<Keap>,
    standin: StandIn,
    id: i64,
}

async fn setup(args: &[&str], paging: Paging, padding: usize, page_size: usize) -> Setup {
    let host = TestHost::start_with(&["infusionsoftrest"], args);
    let callback = Receiver::start().await;
    let keap = Arc::new(Keap {
        paging: Mutex::new(paging),
        // After the instance's creation, so inside its first window, and before any poll.
        t0: now_ms() + 500,
        padding,
    });
    let k = keap.clone();
    let standin = StandIn::start(move |req| k.answer(req)).await;
    let mut instance = infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE));
    instance["configuration"]["event.poller.configuration"]["appointments"]["pageSize"] =
        json!(page_size);
    let id = create_instance(&host, &instance).await["id"]
        .as_i64()
        .unwrap();
    // The records must be older than the poll that reads them.
    eventually(WITHIN, "the records' date to pass", || async {
        (now_ms() > keap.t0).then_some(())
    })
    .await;
    Setup {
        host,
        callback,
        keap,
        standin,
        id,
    }
}

impl Setup {
    /// Polls once, expecting the budget to stop the poll after `pages` page requests with
    /// an error containing each of `names`; then checks that nothing was notified or
    /// stored, that the poll shows as failed, and that once the vendor has three records
    /// the next poll asks for the same window and notifies exactly those.
    async fn fails_on_budget_then_recovers(&self, pages: usize, names: &[&str]) {
        let Setup {
            host,
            callback,
            keap,
            standin,
            id,
        } = self;
        let report = poll(host, *id).await;
        let resource = &report["resources"][0];
        assert_eq!(resource["outcome"], "error", "{report}");
        let error = resource["error"].as_str().unwrap();
        for name in ["`appointments`", "poll budget"].iter().chain(names) {
            assert!(error.contains(name), "the error names {name}: {error}");
        }
        let asked = standin.requests_to(APPOINTMENTS);
        assert_eq!(asked.len(), pages, "pages asked: {error}");
        let first_since = asked[0].param("since").unwrap().to_string();

        let shown = host
            .call("GET", &format!("/instances/{id}"), None)
            .await
            .json();
        let status = &shown["polling"]["appointments"];
        assert_eq!(status["outcome"], "error", "{shown}");
        assert_eq!(status["error"], error, "{shown}");
        assert_eq!(status["lastSuccessDate"], Value::Null, "{shown}");
        assert_eq!(status["failures"], 1, "{shown}");
        let events = host
            .call("GET", &format!("/instances/{id}/events"), None)
            .await
            .json();
        assert_eq!(events, json!([]), "the failed poll stored nothing");

        // The vendor now ends: the next poll asks the same window again and notifies its
        // three records, the only notification the callback ever gets.
        *keap.paging.lock().unwrap() = Paging::Finite(3);
        let report = poll(host, *id).await;
        assert_eq!(report["resources"][0]["outcome"], "ok", "{report}");
        assert_eq!(report["resources"][0]["events"], 3, "{report}");
        let asked = standin.requests_to(APPOINTMENTS);
        assert_eq!(
            asked[pages].param("since"),
            Some(first_since.as_str()),
            "the failed poll did not move the window"
        );
        let got = eventually(WITHIN, "the three records", || async {
            callback.delivered().first().cloned()
        })
        .await;
        let ids: Vec<Value> = got.json()["message"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["objectId"].clone())
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(
            callback.received().len(),
            1,
            "the failed poll notified nothing"
        );
        let metrics = tests::get(&host.root_url("/metrics")).await;
        let metrics = String::from_utf8_lossy(&metrics.body);
        assert!(
            metrics.contains("polls_total{outcome=\"error\"} 1")
                && metrics.contains("polls_total{outcome=\"ok\"} 1"),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn an_endless_vendor_runs_a_poll_out_of_records_and_it_keeps_its_cursor() {
    let args = ["--poll-max-records", "50", "--poll-now-interval-ms", "0"];
    let s = setup(&args, Paging::Endless, 0, 10).await;
    // Five pages make the 50 records allowed; the sixth would make 60.
    s.fails_on_budget_then_recovers(6, &["more than 50 records", "--poll-max-records"])
        .await;
}

#[tokio::test]
async fn an_endless_vendor_runs_a_poll_out_of_bytes_and_it_keeps_its_cursor() {
    let args = ["--poll-max-bytes", "20000", "--poll-now-interval-ms", "0"];
    // Pages of five records of over 1,000 bytes: the fourth page passes 20,000 bytes.
    let s = setup(&args, Paging::Endless, 1000, 5).await;
    s.fails_on_budget_then_recovers(
        4,
        &[
            "more than 20000 bytes read from the vendor",
            "--poll-max-bytes",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_vendor_that_stops_answering_runs_a_poll_out_of_time_and_it_keeps_its_cursor() {
    let args = ["--poll-max-ms", "1500", "--poll-now-interval-ms", "0"];
    let s = setup(&args, Paging::StallsAfterFirst, 0, 10).await;
    let started = Instant::now();
    // The second page never comes: the poll ends at its budget, not at the vendor
    // time-out of 30 s.
    s.fails_on_budget_then_recovers(2, &["longer than 1500 ms", "--poll-max-ms"])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn manual_polls_of_one_instance_are_paced_and_others_are_not_held_back() {
    let args = ["--poll-now-interval-ms", "1500"];
    let s = setup(&args, Paging::Finite(0), 0, 10).await;
    let (host, a) = (&s.host, s.id);
    let instance = infusionsoft_instance(&s.callback.url("/"), &s.standin.url(KEAP_BASE));
    let b = create_instance(host, &instance).await["id"]
        .as_i64()
        .unwrap();
    let polls = || s.standin.requests_to(APPOINTMENTS).len();

    assert_eq!(poll(host, a).await["resources"][0]["outcome"], "ok");
    let asked = polls();
    let again = host
        .call("POST", &format!("/instances/{a}/events/poll"), None)
        .await;
    assert_eq!(
        again.status,
        429,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    let retry_after: u64 = again
        .headers
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    let body = again.json();
    assert_eq!(body["status"], 429, "{body}");
    assert_eq!(body["retryAfter"], retry_after, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("instance {a}")) && message.contains("--poll-now-interval-ms"),
        "the error names the instance and the limit: {message}"
    );
    assert_eq!(
        polls(),
        asked,
        "a refused manual poll asks the vendor nothing"
    );

    // Another instance is not held back by the first one's pace.
    assert_eq!(poll(host, b).await["resources"][0]["outcome"], "ok");

    // After the interval, the first instance is polled on demand again.
    let accepted = eventually(WITHIN, "a manual poll let through again", || async {
        let answer = host
            .call("POST", &format!("/instances/{a}/events/poll"), None)
            .await;
        match answer.status {
            200 => Some(answer.json()),
            429 => None,
            other => panic!("{other}: {}", String::from_utf8_lossy(&answer.body)),
        }
    })
    .await;
    assert_eq!(accepted["resources"][0]["outcome"], "ok", "{accepted}");
}
