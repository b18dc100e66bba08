//! Polling end to end: the seeds' instances against stand-in Keap and Pardot servers that
//! answer in the vendors' documented shapes, with a real callback server.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tests::receiver::{Received, Receiver};
use tests::seeds::{infusionsoft_instance, pardot_instance};
use tests::standin::{StandIn, VendorAnswer, futures_answer};
use tests::{TestHost, create_instance, eventually};

const WITHIN: Duration = Duration::from_secs(15);
/// These tests poll on demand many times in a row: no pause between manual polls
/// (`tests/it/poll_budget.rs` tests the pause).
const UNPACED: &[&str] = &["--poll-now-interval-ms", "0"];
const KEAP_BASE: &str = "/crm/rest/v1";

fn iso_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm), for test data only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
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

fn sql_datetime(ms: i64) -> String {
    iso_ms(ms)[..19].replace('T', " ")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn parse_iso_ms(s: &str) -> i64 {
    // Inverse of iso_ms for the dates this file writes (and Keap's `+0000` form).
    let y: i64 = s[0..4].parse().unwrap();
    let m: i64 = s[5..7].parse().unwrap();
    let d: i64 = s[8..10].parse().unwrap();
    let (hh, mm, ss): (i64, i64, i64) = (
        s[11..13].parse().unwrap(),
        s[14..16].parse().unwrap(),
        s[17..19].parse().unwrap(),
    );
    let ms: i64 = s.get(20..23).and_then(|f| f.parse().ok()).unwrap_or(0);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms
}

/// Keap's REST API v1, as much of it as polling appointments needs.
#[derive(Default)]
struct Keap {
    appointments: Mutex<Vec<Value>>,
    down: AtomicBool,
    throttled: AtomicBool,
    tokens_issued: AtomicU32,
    /// When set, a request for this offset waits until the flag is cleared.
    hold_offset: Mutex<Option<String>>,
    release: tokio::sync::Notify,
}

impl Keap {
    fn add(&self, id: i64, created: i64, modified: i64) {
        self.appointments.lock().unwrap().push(json!({
            "id": id,
            "title": format!("Appointment {id}"),
            "start_date": "2024-06-01T10:00:00.000Z",
            "creation_date": iso_ms(created),
            "modification_date": iso_ms(modified),
        }));
    }

    fn touch(&self, id: i64, modified: i64) {
        let mut list = self.appointments.lock().unwrap();
        let a = list.iter_mut().find(|a| a["id"] == json!(id)).unwrap();
        a["modification_date"] = json!(iso_ms(modified));
    }

    async fn answer(
        self: Arc<Self>,
        base: String,
        req: tests::standin::VendorRequest,
    ) -> VendorAnswer {
        if req.path == "/token" {
            let form = req.form();
            let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
            let ok = match field("grant_type").as_deref() {
                Some("authorization_code") => field("code").as_deref() == Some("the-grant-code"),
                Some("refresh_token") => field("refresh_token").is_some(),
                _ => false,
            };
            if !ok {
                return VendorAnswer::status(
                    400,
                    json!({"error": "invalid_grant", "error_description": "Invalid code"}),
                );
            }
            let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
            return VendorAnswer::json(json!({
                "access_token": format!("at-{n}"),
                "refresh_token": format!("rt-{n}"),
                "expires_in": 86400,
                "token_type": "bearer",
                "scope": "full"
            }));
        }
        if self.down.load(Ordering::SeqCst) {
            return VendorAnswer::status(503, json!({"message": "Service Unavailable"}));
        }
        if self.throttled.load(Ordering::SeqCst) {
            let mut a = VendorAnswer::status(429, json!({"message": "Too Many Requests"}));
            a.headers.push(("retry-after".into(), "120".into()));
            return a;
        }
        let expected = format!("Bearer at-{}", self.tokens_issued.load(Ordering::SeqCst));
        if req.header("authorization") != Some(expected.as_str()) {
            return VendorAnswer::status(401, json!({"message": "Invalid Access Token"}));
        }
        assert_eq!(
            req.path,
            format!("{KEAP_BASE}/appointments"),
            "only appointments are polled"
        );
        let offset: usize = req.param("offset").unwrap_or("0").parse().unwrap();
        let limit: usize = req.param("limit").unwrap_or("1000").parse().unwrap();
        let held = self.hold_offset.lock().unwrap().clone();
        if held.as_deref() == Some(req.param("offset").unwrap_or("0")) {
            self.release.notified().await;
        }
        let since = req.param("since").map(parse_iso_ms).unwrap_or(i64::MIN);
        let matching: Vec<Value> = self
            .appointments
            .lock()
            .unwrap()
            .iter()
            .filter(|a| parse_iso_ms(a["modification_date"].as_str().unwrap()) > since)
            .cloned()
            .collect();
        let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
        appointments_page(&req, &base, page, matching.len(), offset + limit)
    }
}

/// Keap's answer with one page of appointments, `count` in all, and the `next` link to
/// the same query at offset `next_offset`.
fn appointments_page(
    req: &tests::standin::VendorRequest,
    base: &str,
    page: Vec<Value>,
    count: usize,
    next_offset: usize,
) -> VendorAnswer {
    let mut next_query: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k != "offset")
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    next_query.push(format!("offset={next_offset}"));
    VendorAnswer::json(json!({
        "appointments": page,
        "count": count,
        "next": format!("{base}{}?{}", req.path, next_query.join("&")),
        "previous": null
    }))
}

async fn keap() -> (Arc<Keap>, StandIn) {
    let keap = Arc::new(Keap::default());
    let base = Arc::new(Mutex::new(String::new()));
    let (k, b) = (keap.clone(), base.clone());
    let standin = StandIn::start(move |req| {
        let (k, base) = (k.clone(), b.lock().unwrap().clone());
        let req = req.clone();
        Box::pin(async move { k.answer(base, req).await }) as futures_answer::Answer
    })
    .await;
    *base.lock().unwrap() = standin.url("");
    (keap, standin)
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

fn events_of(r: &Received) -> Vec<(String, String)> {
    r.json()["message"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["objectId"].as_str().unwrap().to_string(),
                e["eventType"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_seeds_infusionsoft_instance_notifies_created_then_updated_then_nothing() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (keap, standin) = keap().await;
    let created = create_instance(
        &host,
        &infusionsoft_instance(&callback.url("/keap"), &standin.url(KEAP_BASE)),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    // The grant code was exchanged at creation; the token is nowhere in the answer.
    assert_eq!(standin.requests_to("/token").len(), 1);
    assert!(!created.to_string().contains("at-1"));
    assert_eq!(created["configuration"]["oauth.api.secret"], "********");

    let t0 = now_ms();
    for i in 1..=25 {
        keap.add(i, t0 + i, t0 + i);
    }
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["outcome"], "ok", "{report}");
    assert_eq!(report["resources"][0]["events"], 25, "{report}");
    let got = eventually(WITHIN, "three notifications", || async {
        let d = callback.delivered();
        (d.len() >= 3).then_some(d)
    })
    .await;
    let sizes: Vec<usize> = got.iter().map(|r| events_of(r).len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    for r in &got {
        assert!(events_of(r).iter().all(|(_, t)| t == "CREATED"));
        let message = r.json()["message"].clone();
        assert_eq!(message["events"][0]["objectType"], "appointments");
        assert_eq!(message["events"][0]["elementKey"], "infusionsoftrest");
        assert_eq!(message["events"][0]["hubKey"], "crm");
        assert_eq!(message["raw"]["objectType"], "appointments");
        assert_eq!(message["raw"]["instance_id"], json!(id));
        assert_eq!(
            message["raw"]["appointments"].as_array().unwrap().len(),
            message["events"].as_array().unwrap().len()
        );
    }
    let mut ids: Vec<String> = got.iter().flat_map(events_of).map(|(i, _)| i).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25);

    // Three change (well after their creation): three UPDATED.
    for i in [3, 7, 11] {
        keap.touch(i, t0 + 60_000 + i);
    }
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["events"], 3, "{report}");
    let got = eventually(WITHIN, "the update", || async {
        let d = callback.delivered();
        (d.len() >= 4).then_some(d)
    })
    .await;
    let mut updated = events_of(&got[3]);
    updated.sort();
    assert_eq!(
        updated,
        [("11", "UPDATED"), ("3", "UPDATED"), ("7", "UPDATED")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // Nothing changed: nothing notified.
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["events"], 0, "{report}");
    assert_eq!(report["resources"][0]["outcome"], "ok");
    let shown = host
        .call("GET", &format!("/instances/{id}"), None)
        .await
        .json();
    let status = &shown["polling"]["appointments"];
    assert_eq!(status["outcome"], "ok", "{shown}");
    assert_eq!(status["lastEvents"], 0);
    assert!(status["lastSuccessDate"].as_str().is_some());
    // The list shows the same, read for every instance at once.
    let listed = host.call("GET", "/instances", None).await.json();
    assert_eq!(listed[0]["polling"], shown["polling"], "{listed}");
    // Every Keap call carried the exchanged token.
    for r in standin.requests_to(&format!("{KEAP_BASE}/appointments")) {
        assert_eq!(r.header("authorization"), Some("Bearer at-1"));
    }
    assert_eq!(callback.received().len(), 4);
}

#[tokio::test]
async fn a_vendor_outage_loses_nothing_and_notifies_nothing_twice() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (keap, standin) = keap().await;
    let created = create_instance(
        &host,
        &infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE)),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let t0 = now_ms();
    for i in 1..=5 {
        keap.add(i, t0 + i, t0 + i);
    }
    keap.down.store(true, Ordering::SeqCst);
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["outcome"], "error", "{report}");
    assert!(
        report["resources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{report}"
    );
    let shown = host
        .call("GET", &format!("/instances/{id}"), None)
        .await
        .json();
    assert_eq!(
        shown["polling"]["appointments"]["outcome"], "error",
        "{shown}"
    );
    assert_eq!(shown["polling"]["appointments"]["failures"], 1);
    assert!(
        shown["polling"]["appointments"]["error"]
            .as_str()
            .unwrap()
            .contains("503")
    );

    keap.down.store(false, Ordering::SeqCst);
    for i in 6..=8 {
        keap.add(i, t0 + i, t0 + i);
    }
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["events"], 8, "{report}");
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["events"], 0, "{report}");
    let got = eventually(WITHIN, "the notification", || async {
        let d = callback.delivered();
        (!d.is_empty()).then_some(d)
    })
    .await;
    let ids: Vec<(String, String)> = got.iter().flat_map(events_of).collect();
    assert_eq!(ids.len(), 8, "{ids:?}");
    assert_eq!(callback.received().len(), 1);

    // A 429 is honoured: the next scheduled poll waits for its Retry-After.
    keap.throttled.store(true, Ordering::SeqCst);
    let asked = now_ms();
    let report = poll(&host, id).await;
    assert!(
        report["resources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("429"),
        "{report}"
    );
    let shown = host
        .call("GET", &format!("/instances/{id}"), None)
        .await
        .json();
    let not_before = shown["polling"]["appointments"]["nextPollNotBefore"]
        .as_str()
        .expect("a Retry-After sets the next poll's earliest time")
        .to_string();
    let wait = parse_iso_ms(&not_before) - asked;
    assert!(
        (110_000..=130_000).contains(&wait),
        "{not_before}: {wait} ms"
    );
    keap.throttled.store(false, Ordering::SeqCst);

    // An expired token (401) is refreshed and the page asked again.
    keap.tokens_issued.fetch_add(1, Ordering::SeqCst);
    keap.touch(2, t0 + 120_000);
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["events"], 1, "{report}");
    assert_eq!(
        standin.requests_to("/token").len(),
        2,
        "one exchange, one refresh"
    );
}

#[tokio::test]
async fn a_gmt_date_template_reaches_the_vendor_rendered_with_the_previous_poll_time() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (_keap, standin) = keap().await;
    let mut instance = infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE));
    instance["configuration"]["event.poller.configuration"]["appointments"]["url"] =
        json!("/hubs/crm/appointments?where=modified>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'");
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    let created_at = created["createdDate"].as_str().unwrap().to_string();

    let before = now_ms();
    poll(&host, id).await;
    let after = now_ms();
    poll(&host, id).await;
    let wheres: Vec<String> = standin
        .requests_to(&format!("{KEAP_BASE}/appointments"))
        .iter()
        .map(|r| r.param("where").expect("the rendered template").to_string())
        .collect();
    assert_eq!(wheres.len(), 2);
    // First poll: the window starts at the instance's creation.
    assert_eq!(wheres[0], format!("modified>'{}Z'", &created_at[..19]));
    // Second: at the first poll's time, to the second.
    let second = wheres[1]
        .trim_start_matches("modified>'")
        .trim_end_matches('\'');
    assert!(second.ends_with('Z') && second.len() == 20, "{second}");
    let at = parse_iso_ms(second);
    assert!(
        at >= before / 1000 * 1000 && at <= after,
        "{second} is not between the first poll's start and end"
    );
}

/// Pardot's API v4: login, prospects and opportunities.
#[derive(Default)]
struct Pardot {
    prospects: Mutex<Vec<Value>>,
    opportunities: Mutex<Vec<Value>>,
    logins: AtomicU32,
    expire_key: AtomicBool,
}

impl Pardot {
    fn record(id: i64, created: i64, updated: i64) -> Value {
        json!({
            "id": id,
            "email": format!("p{id}@example.com"),
            "created_at": sql_datetime(created),
            "updated_at": sql_datetime(updated),
        })
    }

    fn answer(&self, req: &tests::standin::VendorRequest) -> VendorAnswer {
        if req.path == "/api/login/version/4" {
            let form = req.form();
            let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
            assert_eq!(field("email"), Some("marketing@example.com"));
            assert_eq!(field("password"), Some("pardot-password"));
            assert_eq!(field("user_key"), Some("pardot-user-key"));
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            return VendorAnswer::json(json!({
                "@attributes": {"stat": "ok", "version": 4},
                "api_key": format!("api-key-{n}")
            }));
        }
        let key = format!(
            "Pardot api_key=api-key-{}, user_key=pardot-user-key",
            self.logins.load(Ordering::SeqCst)
        );
        if self.expire_key.swap(false, Ordering::SeqCst)
            || req.header("authorization") != Some(key.as_str())
        {
            return VendorAnswer::json(json!({
                "@attributes": {"stat": "fail", "version": 4, "err_code": 1},
                "err": "Invalid API key or user key"
            }));
        }
        let (list, name) = match req.path.as_str() {
            "/api/prospect/version/4/do/query" => (&self.prospects, "prospect"),
            "/api/opportunity/version/4/do/query" => (&self.opportunities, "opportunity"),
            other => panic!("unexpected Pardot path {other}"),
        };
        assert_eq!(req.param("format"), Some("json"));
        assert_eq!(req.param("sort_by"), Some("updated_at"));
        let after = req
            .param("updated_after")
            .expect("updated_after")
            .to_string();
        let matching: Vec<Value> = list
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["updated_at"].as_str().unwrap() > after.as_str())
            .cloned()
            .collect();
        let records = match matching.len() {
            1 => matching[0].clone(),
            _ => Value::Array(matching.clone()),
        };
        let mut result = json!({"total_results": matching.len()});
        if !matching.is_empty() {
            result[name] = records;
        }
        VendorAnswer::json(json!({"@attributes": {"stat": "ok", "version": 4}, "result": result}))
    }
}

#[tokio::test]
async fn the_seeds_pardot_instance_polls_prospects_and_opportunities_with_one_login() {
    let host = TestHost::start_with(&["pardot"], UNPACED);
    let callback = Receiver::start().await;
    let pardot = Arc::new(Pardot::default());
    let p = pardot.clone();
    let standin = StandIn::start(move |req| futures_answer::now(p.answer(req))).await;
    let created = create_instance(
        &host,
        &pardot_instance(&callback.url("/p"), &standin.url("")),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["configuration"]["apikey.user.password"], "********");
    assert_eq!(created["configuration"]["apikey.user.key"], "********");

    // Pardot dates have whole seconds: date the records a second after the instance.
    let t = now_ms() + 1000;
    pardot
        .prospects
        .lock()
        .unwrap()
        .extend([Pardot::record(1, t, t), Pardot::record(2, t, t)]);
    pardot
        .opportunities
        .lock()
        .unwrap()
        .push(Pardot::record(50, t, t));
    let report = poll(&host, id).await;
    let by_name = |r: &Value, n: &str| {
        r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["resource"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name(&report, "contacts")["events"], 2, "{report}");
    assert_eq!(
        by_name(&report, "leads")["events"],
        1,
        "a single opportunity is an object: {report}"
    );

    // A second poll, one new prospect (an object again): the same api key.
    pardot
        .prospects
        .lock()
        .unwrap()
        .push(Pardot::record(3, t + 5000, t + 5000));
    let report = poll(&host, id).await;
    assert_eq!(by_name(&report, "contacts")["events"], 1, "{report}");
    assert_eq!(
        pardot.logins.load(Ordering::SeqCst),
        1,
        "one login serves many polls"
    );

    // Error code 1: log in again, ask again.
    pardot.expire_key.store(true, Ordering::SeqCst);
    pardot
        .prospects
        .lock()
        .unwrap()
        .push(Pardot::record(4, t + 9000, t + 9000));
    let report = poll(&host, id).await;
    assert_eq!(by_name(&report, "contacts")["outcome"], "ok", "{report}");
    assert_eq!(by_name(&report, "contacts")["events"], 1, "{report}");
    assert_eq!(pardot.logins.load(Ordering::SeqCst), 2);

    let got = eventually(WITHIN, "four notifications", || async {
        let d = callback.delivered();
        (d.len() >= 4).then_some(d)
    })
    .await;
    let mut seen: Vec<(String, String, String)> = got
        .iter()
        .flat_map(|r| {
            let m = r.json()["message"].clone();
            m["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["objectType"].as_str().unwrap().to_string(),
                        e["objectId"].as_str().unwrap().to_string(),
                        e["eventType"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, String, String)> = [
        ("contacts", "1"),
        ("contacts", "2"),
        ("contacts", "3"),
        ("contacts", "4"),
        ("leads", "50"),
    ]
    .iter()
    .map(|(t, i)| (t.to_string(), i.to_string(), "CREATED".to_string()))
    .collect();
    assert_eq!(seen, expected);
    // The api key and the password never show.
    let shown = host.call("GET", &format!("/instances/{id}"), None).await;
    let text = String::from_utf8_lossy(&shown.body);
    assert!(
        !text.contains("api-key-") && !text.contains("pardot-password"),
        "{text}"
    );
}

#[tokio::test]
async fn a_host_killed_mid_poll_loses_no_record() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (keap, standin) = keap().await;
    let mut instance = infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE));
    instance["configuration"]["event.poller.configuration"]["appointments"]["pageSize"] = json!(10);
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    let t0 = now_ms();
    for i in 1..=30 {
        keap.add(i, t0 + i, t0 + i);
    }
    // The second page hangs: the host dies while it waits for it.
    *keap.hold_offset.lock().unwrap() = Some("10".into());
    let auth = host.authorization();
    let url = host.url(&format!("/instances/{id}/events/poll"));
    let stuck = tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let req = hyper::Request::post(url)
            .header("authorization", auth)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let _ = client.request(req).await;
    });
    let path = format!("{KEAP_BASE}/appointments");
    eventually(WITHIN, "the second page asked", || async {
        standin
            .requests_to(&path)
            .iter()
            .any(|r| r.param("offset") == Some("10"))
            .then_some(())
    })
    .await;
    let (connectors, data, dirs) = host.kill();
    stuck.abort();
    *keap.hold_offset.lock().unwrap() = None;
    keap.release.notify_waiters();

    let mut host = TestHost::start_in_with(&connectors, &data, UNPACED);
    host.adopt(dirs);
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["outcome"], "ok", "{report}");
    let got = eventually(WITHIN, "all 30", || async {
        let d = callback.delivered();
        let n: usize = d.iter().map(|r| events_of(r).len()).sum();
        (n >= 30).then_some(d)
    })
    .await;
    let mut ids: Vec<String> = got.iter().flat_map(events_of).map(|(i, _)| i).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    let duplicates = total - ids.len();
    eprintln!(
        "killed mid-poll: {} records notified, {duplicates} duplicates",
        ids.len()
    );
    assert_eq!(ids.len(), 30);
    assert_eq!(duplicates, 0, "nothing was stored before the kill");
}

#[tokio::test]
async fn scheduled_polls_run_on_their_own_and_stop_when_disabled() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (keap, standin) = keap().await;
    let mut instance = infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE));
    instance["configuration"]["event.poller.refresh_interval"] = json!(0.01);
    let created = create_instance(&host, &instance).await;
    let id = created["id"].as_i64().unwrap();
    let t0 = now_ms();
    keap.add(1, t0 + 1, t0 + 1);
    let path = format!("{KEAP_BASE}/appointments");
    eventually(WITHIN, "a scheduled poll's notification", || async {
        (!callback.delivered().is_empty()).then_some(())
    })
    .await;
    eventually(WITHIN, "several scheduled polls", || async {
        (standin.requests_to(&path).len() >= 3).then_some(())
    })
    .await;
    let metrics = |host: &TestHost| {
        let url = host.root_url("/metrics");
        async move { String::from_utf8(tests::get(&url).await.body.to_vec()).unwrap() }
    };
    assert!(metrics(&host).await.contains("polling_instances 1"));
    let patched = host
        .call(
            "PATCH",
            &format!("/instances/{id}"),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert!(metrics(&host).await.contains("polling_instances 0"));
    assert_eq!(
        callback.delivered().len(),
        1,
        "the record was notified once"
    );
}

#[tokio::test]
async fn polling_starts_when_the_connector_is_dropped_in_after_start_and_stops_when_removed() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (keap, standin) = keap().await;
    let mut instance = infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE));
    instance["configuration"]["event.poller.refresh_interval"] = json!(0.01);
    create_instance(&host, &instance).await;

    // Restarted without the connector: the stored instance cannot be scheduled.
    let (connectors, data, dirs) = host.kill();
    let file = connectors.join("infusionsoftrest.wasm");
    let wasm = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let mut host = TestHost::start_in_with(&connectors, &data, UNPACED);
    host.adopt(dirs);
    let metrics = || {
        let url = host.root_url("/metrics");
        async move { String::from_utf8(tests::get(&url).await.body.to_vec()).unwrap() }
    };
    assert!(metrics().await.contains("polling_instances 0"));

    // Dropped in while the host runs: the instance's schedule starts and polls.
    keap.add(1, now_ms() + 1, now_ms() + 1);
    let tmp = connectors.join("infusionsoftrest.wasm.part");
    std::fs::write(&tmp, &wasm).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    eventually(WITHIN, "the instance scheduled", || async {
        metrics()
            .await
            .contains("polling_instances 1")
            .then_some(())
    })
    .await;
    eventually(WITHIN, "a scheduled poll's notification", || async {
        (!callback.delivered().is_empty()).then_some(())
    })
    .await;

    // Removed: the schedule stops.
    std::fs::remove_file(&file).unwrap();
    eventually(WITHIN, "the schedule stopped", || async {
        metrics()
            .await
            .contains("polling_instances 0")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_record_with_an_unreadable_date_does_not_hold_back_the_others() {
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let (keap, standin) = keap().await;
    let created = create_instance(
        &host,
        &infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE)),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let t0 = now_ms();
    keap.add(1, t0 + 1, t0 + 1);
    keap.add(2, t0 + 2, t0 + 2);
    keap.appointments.lock().unwrap()[1]["creation_date"] = json!("not a date");
    keap.add(3, t0 + 3, t0 + 3);
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["outcome"], "ok", "{report}");
    assert_eq!(report["resources"][0]["events"], 2, "{report}");
    let got = eventually(WITHIN, "the notification", || async {
        callback.delivered().first().cloned()
    })
    .await;
    let ids: Vec<String> = events_of(&got).into_iter().map(|(i, _)| i).collect();
    assert_eq!(ids, ["1", "3"]);
}

/// A Keap holding `total` appointments made up on demand, one a millisecond from `t0`
/// (the `Keap` stand-in filters its whole list on every request: too slow for this many
/// pages).
fn generated_appointments(
    req: &tests::standin::VendorRequest,
    base: &str,
    t0: i64,
    total: usize,
) -> VendorAnswer {
    if req.path == "/token" {
        return VendorAnswer::json(json!({
            "access_token": "at-1",
            "refresh_token": "rt-1",
            "expires_in": 86400,
            "token_type": "bearer",
            "scope": "full"
        }));
    }
    let offset: usize = req.param("offset").unwrap_or("0").parse().unwrap();
    let limit: usize = req.param("limit").unwrap_or("1000").parse().unwrap();
    let page: Vec<Value> = (offset..total.min(offset + limit))
        .map(|i| {
            let date = iso_ms(t0 + i as i64 + 1);
            json!({"id": i + 1, "creation_date": date, "modification_date": date})
        })
        .collect();
    appointments_page(req, base, page, total, offset + limit)
}

#[tokio::test]
async fn a_poll_cut_short_by_the_page_limit_fails_and_keeps_its_window() {
    // The host follows at most 10,000 pages a poll (`polling::cycle::MAX_PAGES`).
    const MAX_PAGES: usize = 10_000;
    let host = TestHost::start_with(&["infusionsoftrest"], UNPACED);
    let callback = Receiver::start().await;
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(MAX_PAGES + 1));
    let base = Arc::new(Mutex::new(String::new()));
    let t0 = now_ms() + 1000;
    let (n, b) = (total.clone(), base.clone());
    let standin = StandIn::start(move |req| {
        let base = b.lock().unwrap().clone();
        futures_answer::now(generated_appointments(
            req,
            &base,
            t0,
            n.load(Ordering::SeqCst),
        ))
    })
    .await;
    *base.lock().unwrap() = standin.url("");
    let mut instance = infusionsoft_instance(&callback.url("/"), &standin.url(KEAP_BASE));
    // One record a page: the vendor has one page more than a poll may follow.
    instance["configuration"]["event.poller.configuration"]["appointments"]["pageSize"] = json!(1);
    let id = create_instance(&host, &instance).await["id"]
        .as_i64()
        .unwrap();

    let path = format!("{KEAP_BASE}/appointments");
    let report = poll(&host, id).await;
    let resource = &report["resources"][0];
    assert_eq!(resource["outcome"], "error", "{report}");
    let error = resource["error"].as_str().unwrap();
    assert!(
        error.contains("appointments") && error.contains("10000"),
        "the error names the resource and the limit: {error}"
    );
    let asked = standin.requests_to(&path);
    assert_eq!(asked.len(), MAX_PAGES, "no page beyond the limit is asked");
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

    // The vendor now has few enough pages: the next poll asks the same window again and
    // notifies every record, none lost to the failed poll.
    total.store(3, Ordering::SeqCst);
    let report = poll(&host, id).await;
    assert_eq!(report["resources"][0]["outcome"], "ok", "{report}");
    assert_eq!(report["resources"][0]["events"], 3, "{report}");
    let asked = standin.requests_to(&path);
    assert_eq!(
        asked[MAX_PAGES].param("since"),
        Some(first_since.as_str()),
        "the failed poll did not move the window"
    );
    let got = eventually(WITHIN, "the three records", || async {
        let d = callback.delivered();
        (!d.is_empty()).then_some(d)
    })
    .await;
    let ids: Vec<String> = got.iter().flat_map(events_of).map(|(i, _)| i).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(
        callback.received().len(),
        1,
        "the failed poll notified nothing"
    );
}
