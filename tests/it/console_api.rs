//! The API a console reads: events filtered by status and time, dead letters across
//! instances and their redelivery in bulk, deliveries per minute, and each instance's
//! activity; each bad input a 400 naming its field.

use std::time::Duration;

use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{Answer, TestHost, create_instance, eventually, send, webhook};

/// An Ecwid instance (the seeds' JSON) for store `store_id`, named `name`.
fn ecwid(callback: &str, store_id: &str, name: &str) -> Value {
    let mut body = ecwid_instance(callback);
    body["configuration"]["ecwid.store.id"] = json!(store_id);
    body["name"] = json!(name);
    body
}

/// Sends an order webhook for store `store_id`; the id of the one notification it made.
async fn order(host: &TestHost, order_id: &str, store_id: u64) -> String {
    let body = ecwid_order("order.created", order_id, store_id).to_string();
    let answer = webhook(host, "ecwid", &[], body.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .expect("one notification")
        .to_string()
}

/// `GET path` with the first organization's credentials, expecting 200.
async fn get_ok(host: &TestHost, path: &str) -> Value {
    let answer = host.call("GET", path, None).await;
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.text());
    answer.json()
}

/// The `id`s of a list answer, in order.
fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["id"].as_str().expect("an id").to_string())
        .collect()
}

/// Asserts a 400 naming `field`.
fn names_field(answer: &Answer, field: &str) {
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["field"], field, "{}", answer.text());
}

/// Waits until the instance's events of `status` are exactly `ids` (in any order).
async fn wait_for_status(host: &TestHost, instance: i64, status: &str, ids: &[&String]) {
    let path = format!("/instances/{instance}/events?status={status}");
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    eventually(
        Duration::from_secs(20),
        &format!("{want:?} {status}"),
        || async {
            let mut got = ids_of(&get_ok(host, &path).await);
            got.sort();
            (got == want).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn filters_dead_letters_bulk_redelivery_stats_and_activity() {
    // One retry after 10 ms, then the dead letter.
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", "10"]);
    let callback = Receiver::start().await;
    callback.set_status(500);
    // A's callback URL carries credentials, which no answer shows.
    let a_url = callback
        .url("/a")
        .replace("http://", "http://user:cb-s3cret@");
    let a = create_instance(&host, &ecwid(&a_url, "1003", "Shop A")).await;
    let b = create_instance(&host, &ecwid(&callback.url("/b"), "2004", "Shop B")).await;
    let (a_id, b_id) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let a1 = order(&host, "A1", 1003).await;
    let a2 = order(&host, "A2", 1003).await;
    let b1 = order(&host, "B1", 2004).await;
    wait_for_status(&host, a_id, "FAILED", &[&a1, &a2]).await;
    wait_for_status(&host, b_id, "FAILED", &[&b1]).await;
    // The callback is back: the next one is delivered.
    callback.set_status(200);
    let a3 = order(&host, "A3", 1003).await;
    wait_for_status(&host, a_id, "NOTIFIED", &[&a3]).await;

    // Events by status: one, several (spaces and case forgiven), none; a wrong one is a 400.
    let events = |query: &str| format!("/instances/{a_id}/events?{query}");
    assert_eq!(
        ids_of(&get_ok(&host, &events("status=FAILED")).await),
        [a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        ids_of(&get_ok(&host, &events("status=NOTIFIED,%20failed")).await),
        [a3.as_str(), a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        ids_of(&get_ok(&host, &events("status=NEW,DISPATCHED")).await),
        Vec::<String>::new()
    );
    names_field(
        &host.call("GET", &events("status=FAILED,LOST"), None).await,
        "status",
    );
    // By time: `since` inclusive, `until` exclusive, percent-encoded or not.
    let all = get_ok(&host, &events("")).await;
    assert_eq!(ids_of(&all), [a3.as_str(), a2.as_str(), a1.as_str()]);
    let a3_date = all[0]["eventDate"].as_str().unwrap().to_string();
    let a2_date = all[1]["eventDate"].as_str().unwrap().to_string();
    assert_eq!(
        ids_of(&get_ok(&host, &events(&format!("since={a3_date}"))).await),
        [a3.as_str()]
    );
    let encoded = a3_date.replace(':', "%3A");
    assert_eq!(
        ids_of(&get_ok(&host, &events(&format!("until={encoded}"))).await),
        [a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        ids_of(
            &get_ok(
                &host,
                &events(&format!("status=FAILED&since={a2_date}&pageSize=1"))
            )
            .await
        ),
        [a2.as_str()]
    );
    for field in ["since", "until"] {
        for bad in ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00"] {
            let answer = host
                .call("GET", &events(&format!("{field}={bad}")), None)
                .await;
            names_field(&answer, field);
        }
    }

    // Dead letters across the organization's instances, newest first, with their instance.
    let dead = get_ok(&host, "/dead-letters").await;
    assert_eq!(ids_of(&dead), [b1.as_str(), a2.as_str(), a1.as_str()]);
    assert_eq!(dead[0]["instanceName"], "Shop B");
    assert_eq!(dead[0]["elementKey"], "ecwid");
    assert_eq!(dead[0]["instanceId"], b_id);
    assert_eq!(dead[1]["instanceName"], "Shop A");
    assert!(!dead.to_string().contains("cb-s3cret"), "{dead}");
    assert!(
        dead[1]["callbackUrl"]
            .as_str()
            .unwrap()
            .contains("user:********@"),
        "{dead}"
    );
    for d in dead.as_array().unwrap() {
        assert_eq!(d["status"], "FAILED");
        assert_eq!(d["deadLettered"], true);
        assert_eq!(d["attempts"], 2);
    }
    assert_eq!(
        ids_of(&get_ok(&host, &format!("/dead-letters?instanceId={b_id}")).await),
        [b1.as_str()]
    );
    assert_eq!(
        ids_of(&get_ok(&host, "/dead-letters?pageSize=1&page=2").await),
        [a2.as_str()]
    );
    assert_eq!(
        ids_of(&get_ok(&host, &format!("/dead-letters?since={a2_date}")).await),
        [b1.as_str(), a2.as_str()]
    );
    assert_eq!(
        host.call("GET", "/dead-letters?instanceId=987654", None)
            .await
            .status,
        404
    );
    names_field(
        &host.call("GET", "/dead-letters?since=soon", None).await,
        "since",
    );
    // An instance's token sees its own dead letters only, and not another's instance.
    let element = format!("Element {}", a["token"].as_str().unwrap());
    let as_element = |path: &str| {
        let url = host.url(path);
        let element = element.clone();
        async move { send("GET", &url, &[("authorization", &element)], b"").await }
    };
    let own = as_element("/dead-letters").await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(ids_of(&own.json()), [a2.as_str(), a1.as_str()]);
    assert_eq!(
        as_element(&format!("/dead-letters?instanceId={b_id}"))
            .await
            .status,
        404
    );
    // Another organization sees none of them.
    let other_org = host.add_organization("other");
    let theirs = send(
        "GET",
        &host.url("/dead-letters"),
        &[("authorization", &other_org)],
        b"",
    )
    .await;
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    assert_eq!(theirs.json(), json!([]));

    // Activity, in the list and on the instance.
    let list = get_ok(&host, "/instances").await;
    let activity_of = |id: i64| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .map(|i| i["activity"].clone())
            .unwrap()
    };
    assert_eq!(
        activity_of(a_id),
        json!({"lastEventDate": a3_date, "backlog": 0, "deadLetters": 2})
    );
    assert_eq!(activity_of(b_id)["deadLetters"], 1);
    assert_eq!(
        get_ok(&host, &format!("/instances/{a_id}")).await["activity"],
        activity_of(a_id)
    );

    // Deliveries per minute: five attempts (two per dead letter, one delivered), zero-filled.
    let stats = get_ok(&host, &format!("/instances/{a_id}/stats?minutes=5")).await;
    assert_eq!(
        (stats["instanceId"].clone(), stats["minutes"].clone()),
        (json!(a_id), json!(5))
    );
    let series = stats["series"].as_array().unwrap();
    assert_eq!(series.len(), 5);
    let sum = |key: &str| series.iter().map(|m| m[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (sum("attempts"), sum("delivered"), sum("failed")),
        (5, 1, 4)
    );
    for m in series {
        if m["attempts"] == 0 {
            assert_eq!(
                (&m["latencyMsAvg"], &m["latencyMsMax"]),
                (&Value::Null, &Value::Null)
            );
        } else {
            let (avg, max) = (
                m["latencyMsAvg"].as_f64().unwrap(),
                m["latencyMsMax"].as_f64().unwrap(),
            );
            assert!(avg > 0.0 && avg <= max, "{m}");
        }
    }
    // Oldest first, a minute apart, the last one now.
    let minutes: Vec<jiff::Timestamp> = series
        .iter()
        .map(|m| m["minute"].as_str().unwrap().parse().unwrap())
        .collect();
    for w in minutes.windows(2) {
        assert_eq!(w[1].as_millisecond() - w[0].as_millisecond(), 60_000);
    }
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(minutes[4].as_millisecond() <= now && now - minutes[4].as_millisecond() < 120_000);
    assert_eq!(
        get_ok(&host, &format!("/instances/{a_id}/stats")).await["series"]
            .as_array()
            .unwrap()
            .len(),
        60,
        "an hour by default"
    );
    for bad in ["0", "1441", "-1", "an-hour"] {
        names_field(
            &host
                .call(
                    "GET",
                    &format!("/instances/{a_id}/stats?minutes={bad}"),
                    None,
                )
                .await,
            "minutes",
        );
    }

    // Bulk redelivery: a bad `since` is refused; one in the future takes nothing.
    let redeliver = |id: i64, body: Option<Value>| {
        let path = format!("/instances/{id}/dead-letters/redeliver");
        let host = &host;
        async move { host.call("POST", &path, body.as_ref()).await }
    };
    names_field(
        &redeliver(a_id, Some(json!({"since": "later"}))).await,
        "since",
    );
    names_field(&redeliver(a_id, Some(json!({"since": 5}))).await, "since");
    let none = redeliver(b_id, Some(json!({"since": "2999-01-01T00:00:00Z"}))).await;
    assert_eq!(none.status, 202, "{}", none.text());
    assert_eq!(
        none.json(),
        json!({"instanceId": b_id, "redelivered": 0, "more": false, "events": []})
    );
    // With no body: every dead letter of A, oldest first; the callback gets them.
    let before = callback.delivered().len();
    let all = redeliver(a_id, None).await;
    assert_eq!(all.status, 202, "{}", all.text());
    assert_eq!(
        all.json(),
        json!({"instanceId": a_id, "redelivered": 2, "more": false, "events": [a1, a2]})
    );
    wait_for_status(&host, a_id, "NOTIFIED", &[&a1, &a2, &a3]).await;
    let got: Vec<String> = callback.delivered()[before..]
        .iter()
        .map(|r| r.json()["message"]["eventId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, [a1.clone(), a2.clone()]);
    assert_eq!(ids_of(&get_ok(&host, "/dead-letters").await), [b1.as_str()]);
    assert_eq!(
        get_ok(&host, &format!("/instances/{a_id}")).await["activity"]["deadLetters"],
        0
    );
    // B's, since a time before it: taken.
    let b_again = redeliver(b_id, Some(json!({"since": a2_date}))).await;
    assert_eq!(b_again.json()["events"], json!([b1]));
    wait_for_status(&host, b_id, "NOTIFIED", &[&b1]).await;
    assert_eq!(get_ok(&host, "/dead-letters").await, json!([]));
}
