//! A slow connector never stalls the API: connector calls yield the host's worker threads.

use std::time::{Duration, Instant};

use tests::seeds::echo_instance;
use tests::{TestHost, create_instance, get, webhook};

/// Webhooks whose connector call loops until the CPU deadline, all in flight at once: more
/// than the host's worker threads (`TestHost` runs every host with two).
const SLOW_CALLS: usize = 4;
/// The longest any `GET /elements` may take while they run.
const RESPONSIVE: Duration = Duration::from_millis(100);

#[tokio::test]
async fn the_api_answers_within_100_ms_while_four_connector_calls_loop_to_their_deadline() {
    let host = TestHost::start(&["echo"]);
    let created = create_instance(&host, &echo_instance("http://127.0.0.1:9/")).await;
    let id = created["id"].as_i64().unwrap().to_string();

    let sent = Instant::now();
    let slow: Vec<_> = (0..SLOW_CALLS)
        .map(|_| {
            let (url, id) = (host.url("/events/echo"), id.clone());
            tokio::spawn(async move {
                let answer = tests::send(
                    "POST",
                    &url,
                    &[
                        ("content-type", "application/json"),
                        ("element-instances", &id),
                    ],
                    br#"{"id": "$spin"}"#,
                )
                .await;
                (answer, Instant::now())
            })
        })
        .collect();

    // `GET /elements` again and again while every slow call is still in flight; only the
    // samples taken after the calls had time to reach their guests (50 ms) and before the
    // first of them answered count.
    let elements = host.url("/elements");
    let mut samples: Vec<(Instant, Duration)> = Vec::new();
    while !slow.iter().any(|s| s.is_finished()) {
        let start = Instant::now();
        let answer = get(&elements).await;
        assert_eq!(answer.status, 200);
        samples.push((start, start.elapsed()));
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "the slow calls never ended"
        );
    }
    let mut first_answer = None;
    for s in slow {
        let (answer, at) = s.await.unwrap();
        // The call fails at its CPU deadline or its call time-out: a connector failure.
        assert!(answer.status >= 500, "{}", answer.status);
        first_answer = Some(first_answer.map_or(at, |f: Instant| f.min(at)));
    }
    let first_answer = first_answer.unwrap();
    let during: Vec<Duration> = samples
        .iter()
        .filter(|(at, took)| *at >= sent + Duration::from_millis(50) && *at + *took <= first_answer)
        .map(|(_, took)| *took)
        .collect();
    assert!(
        during.len() >= 5,
        "only {} requests were answered while the slow calls ran: the API stalled ({samples:?})",
        during.len()
    );
    let slowest = during.iter().max().unwrap();
    assert!(
        *slowest < RESPONSIVE,
        "GET /elements took up to {slowest:?} while {SLOW_CALLS} connector calls looped ({during:?})"
    );

    // The webhook path still works for a well-behaved call afterwards.
    let ok = webhook(
        &host,
        "echo",
        &[("element-instances", &id)],
        br#"{"id": "after"}"#,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
}
