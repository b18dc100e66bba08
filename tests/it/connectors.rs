//! The bundled connectors through the real wasm components: Ecwid webhooks and signature,
//! Pardot and Infusionsoft poll requests and answers.

use std::sync::Arc;

use runtime::types::{
    AuthStep, ConnectorError, Context, Credentials, EventType, HttpResponse, PollTarget,
    PollWindow, WebhookRequest,
};
use runtime::{CallError, Limits, LoadedConnector, Runtime};
use serde_json::{Value, json};

async fn load(name: &str) -> Arc<LoadedConnector> {
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let bytes = std::fs::read(tests::guest(name)).unwrap();
    runtime.load(name, &bytes).await.unwrap()
}

fn ctx(config: &[(&str, &str)], token: Option<&str>) -> Context {
    Context {
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        credentials: token.map(|t| Credentials {
            access_token: t.into(),
            refresh_token: None,
            expires_in_secs: None,
        }),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/fixtures/ecwid/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn webhook(body: Vec<u8>, signature: Option<&str>) -> WebhookRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(s) = signature {
        headers.push(("X-Ecwid-Webhook-Signature".into(), s.into()));
    }
    WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/ecwid".into(),
        query: String::new(),
        headers,
        body,
    }
}

fn response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn window() -> PollWindow {
    // 2024-05-01T05:26:28.123Z .. one minute later
    PollWindow {
        since_ms: 1_714_541_188_123,
        until_ms: 1_714_541_248_123,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn ecwid_fixtures_give_standard_events() {
    let ecwid = load("ecwid").await;
    let c = ctx(&[("ecwid.store.id", "1003")], None);
    for (file, kind, id) in [
        ("order-created.json", EventType::Created, "XJ12H"),
        ("order-updated.json", EventType::Updated, "XJ12H"),
        ("order-deleted.json", EventType::Deleted, "XJ12H"),
        (
            "order-deleted-no-order-id.json",
            EventType::Deleted,
            "103878161",
        ),
    ] {
        let events = ecwid
            .parse_webhook(&c, &webhook(fixture(file), None))
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{file}");
        let e = &events[0];
        assert_eq!(
            (e.object_type.as_str(), e.object_id.as_str(), e.event_type),
            ("orders", id, kind),
            "{file}"
        );
        assert!(
            e.date.as_deref().unwrap().starts_with("1970-01-15T"),
            "{file}: eventCreated is unix seconds"
        );
        let fields: Value = serde_json::from_str(&e.fields).unwrap();
        assert_eq!(fields["storeId"], 1003, "{file}: vendor fields are carried");
    }
    let bad = ecwid
        .parse_webhook(&c, &webhook(b"{not json".to_vec(), None))
        .await;
    assert!(
        matches!(
            bad,
            Err(CallError::Connector(ConnectorError::BadRequest(_)))
        ),
        "{bad:?}"
    );
}

/// Guests run on a small (16 KiB) shadow stack: vendor fields nested far deeper than any
/// real payload still parse (unknown fields are skipped without recursion), never a trap.
#[tokio::test]
async fn ecwid_deeply_nested_bodies_parse_without_exhausting_the_guest_stack() {
    let ecwid = load("ecwid").await;
    let c = ctx(&[("ecwid.store.id", "1003")], None);
    for depth in [120, 5000] {
        let body = format!(
            r#"{{"eventId":"e1","eventCreated":1234567,"storeId":1003,"entityId":7,"eventType":"order.created","data":{{"orderId":"X","extra":{}{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let events = ecwid
            .parse_webhook(&c, &webhook(body.into_bytes(), None))
            .await
            .unwrap_or_else(|e| panic!("depth {depth}: {e:?}"));
        assert_eq!(events[0].object_id, "X", "depth {depth}");
    }
}

/// A call that needs more than the arena of the instance's initial memory falls back to
/// the standard allocator: a 2 MiB body parses, and its fields come back whole.
#[tokio::test]
async fn ecwid_large_bodies_outgrow_the_arena_and_still_parse() {
    let ecwid = load("ecwid").await;
    let c = ctx(&[("ecwid.store.id", "1003")], None);
    let big = "x".repeat(2 << 20);
    let body = format!(
        r#"{{"eventId":"e1","eventCreated":1234567,"storeId":1003,"entityId":7,"eventType":"order.updated","data":{{"orderId":"Y","note":"{big}"}}}}"#
    );
    let events = ecwid
        .parse_webhook(&c, &webhook(body.clone().into_bytes(), None))
        .await
        .unwrap();
    assert_eq!(events[0].object_id, "Y");
    assert_eq!(events[0].fields, body);
}

#[tokio::test]
async fn ecwid_signature_vector_verifies_and_tampering_is_refused() {
    let ecwid = load("ecwid").await;
    let c = ctx(
        &[
            ("ecwid.store.id", "1003"),
            ("ecwid.client.secret", "abcde123456789"),
        ],
        None,
    );
    let good = "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=";
    ecwid
        .verify_webhook(&c, &webhook(fixture("order-created.json"), Some(good)))
        .await
        .expect("the FACTS.md vector verifies");
    for tampered in [Some("lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X359="), None] {
        let r = ecwid
            .verify_webhook(&c, &webhook(fixture("order-created.json"), tampered))
            .await;
        assert!(
            matches!(
                r,
                Err(CallError::Connector(ConnectorError::Unauthorized(_)))
            ),
            "{r:?}"
        );
    }
    // A body whose eventId was changed no longer matches the signature.
    let mut body: Value = serde_json::from_slice(&fixture("order-created.json")).unwrap();
    body["eventId"] = json!("80aece08-40e8-4145-8764-6c2f0d38679");
    let r = ecwid
        .verify_webhook(&c, &webhook(body.to_string().into_bytes(), Some(good)))
        .await;
    assert!(
        matches!(
            r,
            Err(CallError::Connector(ConnectorError::Unauthorized(_)))
        ),
        "{r:?}"
    );
}

fn pardot_ctx(token: Option<&str>) -> Context {
    ctx(
        &[
            ("apikey.user.name", "ops@example.com"),
            ("apikey.user.password", "pw+secret"),
            ("apikey.user.key", "ukey123"),
            ("provider.version", "4"),
            ("base.url", "http://127.0.0.1:9"),
        ],
        token,
    )
}

fn target(name: &str, url: &str) -> PollTarget {
    PollTarget {
        name: name.into(),
        url: url.into(),
        page_size: None,
    }
}

#[tokio::test]
async fn pardot_login_and_poll_requests_are_the_vendor_requests() {
    let pardot = load("pardot").await;
    let login = pardot
        .build_auth_request(&pardot_ctx(None), &AuthStep::Login)
        .await
        .unwrap()
        .expect("pardot logs in");
    assert_eq!(
        (login.method.as_str(), login.url.as_str()),
        ("POST", "http://127.0.0.1:9/api/login/version/4")
    );
    let form = String::from_utf8(login.body.unwrap()).unwrap();
    assert_eq!(
        form,
        "email=ops%40example.com&password=pw%2Bsecret&user_key=ukey123&format=json"
    );

    let creds = pardot
        .parse_auth_response(
            &pardot_ctx(None),
            &AuthStep::Login,
            &response(
                200,
                &json!({"@attributes": {"stat": "ok", "version": 1}, "api_key": "c6ff8d"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(creds.access_token, "c6ff8d");

    // Without an api key the connector asks the host to log in.
    let no_key = pardot
        .build_poll_request(
            &pardot_ctx(None),
            &target("contacts", "/hubs/marketing/contacts"),
            window(),
            None,
        )
        .await;
    assert!(
        matches!(
            no_key,
            Err(CallError::Connector(ConnectorError::Unauthorized(_)))
        ),
        "{no_key:?}"
    );

    for (resource, object, cursor, offset) in [
        ("contacts", "prospect", None, "0"),
        ("leads", "opportunity", Some("200"), "200"),
    ] {
        let req = pardot
            .build_poll_request(
                &pardot_ctx(Some("c6ff8d")),
                &target(resource, "/hubs/marketing/x"),
                window(),
                cursor,
            )
            .await
            .unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.url,
            format!(
                "http://127.0.0.1:9/api/{object}/version/4/do/query?format=json&updated_after=2024-05-01%2005%3A26%3A28&sort_by=updated_at&sort_order=ascending&offset={offset}"
            )
        );
        assert_eq!(
            header(&req.headers, "authorization"),
            Some("Pardot api_key=c6ff8d, user_key=ukey123")
        );
    }
}

#[tokio::test]
async fn pardot_answers_many_one_none_and_next_page() {
    let pardot = load("pardot").await;
    let c = pardot_ctx(Some("c6ff8d"));
    let contacts = target("contacts", "/hubs/marketing/contacts");
    let prospect = |id: u32| {
        json!({"id": id, "email": format!("p{id}@example.com"), "first_name": "Pat",
        "created_at": "2024-05-01 05:26:28", "updated_at": "2024-05-01 06:00:00"})
    };
    let ok = |result: Value| json!({"@attributes": {"stat": "ok", "version": 1}, "result": result});

    let many =
        ok(json!({"total_results": 450, "prospect": (0..200).map(prospect).collect::<Vec<_>>()}));
    let page = pardot
        .parse_poll_response(&c, &contacts, None, &response(200, &many))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 200);
    assert_eq!(page.next_cursor.as_deref(), Some("200"));

    let last =
        ok(json!({"total_results": 450, "prospect": (400..450).map(prospect).collect::<Vec<_>>()}));
    let page = pardot
        .parse_poll_response(&c, &contacts, Some("400"), &response(200, &last))
        .await
        .unwrap();
    assert_eq!((page.records.len(), page.next_cursor), (50, None));

    let one = ok(json!({"total_results": 1, "prospect": prospect(7)}));
    let page = pardot
        .parse_poll_response(&c, &contacts, None, &response(200, &one))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1, "a single object is one record");
    assert_eq!(
        serde_json::from_str::<Value>(&page.records[0]).unwrap()["id"],
        7
    );

    let none = ok(json!({"total_results": 0}));
    let page = pardot
        .parse_poll_response(&c, &contacts, None, &response(200, &none))
        .await
        .unwrap();
    assert!(page.records.is_empty() && page.next_cursor.is_none());

    let expired = json!({"@attributes": {"stat": "fail", "version": 1, "err_code": 1}, "err": "Invalid API key or user key"});
    let r = pardot
        .parse_poll_response(&c, &contacts, None, &response(200, &expired))
        .await;
    assert!(
        matches!(
            r,
            Err(CallError::Connector(ConnectorError::Unauthorized(_)))
        ),
        "{r:?}"
    );
}

fn keap_ctx(token: Option<&str>) -> Context {
    ctx(
        &[
            ("oauth.api.key", "Rand0MAP1-key"),
            ("oauth.api.secret", "fak3AP1-s3Cr3t"),
            ("oauth.callback.url", "https://mycoolapp.com"),
            ("base.url", "http://127.0.0.1:9/crm/rest/v1"),
        ],
        token,
    )
}

#[tokio::test]
async fn infusionsoft_poll_requests_are_the_vendor_requests() {
    let keap = load("infusionsoftrest").await;
    let exchange = keap
        .build_auth_request(
            &keap_ctx(None),
            &AuthStep::ExchangeCode("grant-code".into()),
        )
        .await
        .unwrap()
        .expect("code exchange");
    assert_eq!(exchange.url, "http://127.0.0.1:9/token");
    let form = String::from_utf8(exchange.body.unwrap()).unwrap();
    assert!(
        form.contains("grant_type=authorization_code") && form.contains("code=grant-code"),
        "{form}"
    );

    let appointments = target("appointments", "/hubs/crm/appointments");
    let req = keap
        .build_poll_request(&keap_ctx(Some("tok")), &appointments, window(), None)
        .await
        .unwrap();
    assert_eq!(
        req.url,
        "http://127.0.0.1:9/crm/rest/v1/appointments?since=2024-05-01T05%3A26%3A28.123Z&until=2024-05-01T05%3A27%3A28.123Z&limit=1000&offset=0"
    );
    assert_eq!(header(&req.headers, "authorization"), Some("Bearer tok"));

    let next = "http://127.0.0.1:9/crm/rest/v1/appointments?since=2024-05-01T05%3A26%3A28.123Z&limit=1000&offset=1000";
    let req = keap
        .build_poll_request(&keap_ctx(Some("tok")), &appointments, window(), Some(next))
        .await
        .unwrap();
    assert_eq!(req.url, next, "the next page is Keap's own `next` URL");
}

#[tokio::test]
async fn infusionsoft_answers_many_none_and_next_page() {
    let keap = load("infusionsoftrest").await;
    let c = keap_ctx(Some("tok"));
    let appointments = target("appointments", "/hubs/crm/appointments");
    let appt = |id: u32| {
        json!({"id": id, "title": "Call", "contact_id": 9, "start_date": "2024-05-02T10:00:00.000Z",
        "end_date": "2024-05-02T10:30:00.000Z", "creation_date": "2024-05-01T05:30:00.000Z",
        "modification_date": "2024-05-01T05:30:00.000Z"})
    };
    let base = "http://127.0.0.1:9/crm/rest/v1/appointments";

    let full = json!({"appointments": (0..3).map(appt).collect::<Vec<_>>(), "count": 5,
        "next": format!("{base}?limit=3&offset=3"), "previous": format!("{base}?limit=3&offset=0")});
    let page = keap
        .parse_poll_response(&c, &appointments, None, &response(200, &full))
        .await
        .unwrap();
    assert_eq!(page.records.len(), 3);
    assert_eq!(
        page.next_cursor.as_deref(),
        Some(format!("{base}?limit=3&offset=3").as_str())
    );

    let last = json!({"appointments": (3..5).map(appt).collect::<Vec<_>>(), "count": 5,
        "next": format!("{base}?limit=3&offset=6")});
    let page = keap
        .parse_poll_response(
            &c,
            &appointments,
            Some(&format!("{base}?limit=3&offset=3")),
            &response(200, &last),
        )
        .await
        .unwrap();
    assert_eq!((page.records.len(), page.next_cursor), (2, None));

    let empty =
        json!({"appointments": [], "count": 0, "next": format!("{base}?limit=1000&offset=1000")});
    let page = keap
        .parse_poll_response(&c, &appointments, None, &response(200, &empty))
        .await
        .unwrap();
    assert!(page.records.is_empty() && page.next_cursor.is_none());

    let r = keap
        .parse_poll_response(
            &c,
            &appointments,
            None,
            &response(401, &json!({"message": "Unauthorized"})),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(CallError::Connector(ConnectorError::Unauthorized(_)))
        ),
        "{r:?}"
    );
}

/// `levels` nested arrays around `1`, as JSON text.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// A poll answer whose `DEEP` placeholder is replaced by `levels` nested arrays. Built as
/// text: 100,000 levels of `json!` values would overflow the test's own stack.
fn deep_answer(template: &str, levels: usize) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: template.replace("DEEP", &nested(levels)).into_bytes(),
    }
}

#[tokio::test]
async fn deeply_nested_answers_parse_up_to_the_sdk_limit_and_fail_cleanly_beyond() {
    // The SDK's connectors run on a 16 KiB shadow stack (`.cargo/config.toml`), on which a
    // serde_json `Value` overflows at about 40 levels. The SDK's `json::from_slice` reads
    // up to `MAX_DEPTH` (32) levels and refuses deeper JSON with an error: a clean vendor
    // error for the call, never a trap. Both answers below put the record's
    // `deep` field 3 levels down, so 29 arrays in it make 32 levels.
    let pardot = load("pardot").await;
    let pardot_answer = r#"{"@attributes":{"stat":"ok","version":1},"result":{"total_results":1,"prospect":{"id":7,"updated_at":"2024-05-01 06:00:00","deep":DEEP}}}"#;
    let keap = load("infusionsoftrest").await;
    let keap_answer = r#"{"appointments":[{"id":7,"modification_date":"2024-05-01T05:30:00.000Z","deep":DEEP}],"count":1}"#;
    let ecwid = load("ecwid").await;
    let ecwid_answer = r#"{"total":1,"count":1,"offset":0,"limit":100,"items":[{"id":7,"updateDate":"2024-05-01 06:00:00 +0000","deep":DEEP}]}"#;
    let ecwid_ctx = ctx(&[("ecwid.store.id", "1003")], Some("tok"));
    let cases = [
        (
            &pardot,
            pardot_ctx(Some("c6ff8d")),
            "contacts",
            pardot_answer,
        ),
        (&keap, keap_ctx(Some("tok")), "appointments", keap_answer),
        (&ecwid, ecwid_ctx, "orders", ecwid_answer),
    ];
    for (connector, c, resource, answer) in cases {
        let t = target(resource, "/x");
        let page = connector
            .parse_poll_response(&c, &t, None, &deep_answer(answer, 29))
            .await
            .unwrap_or_else(|e| panic!("{resource} at 32 levels: {e}"));
        assert_eq!(page.records.len(), 1, "{resource}");
        let record: Value = serde_json::from_str(&page.records[0]).unwrap();
        assert_eq!(record["id"], 7, "{resource}");

        for arrays in [30, 100_000] {
            let r = connector
                .parse_poll_response(&c, &t, None, &deep_answer(answer, arrays))
                .await;
            match r {
                Err(CallError::Connector(ConnectorError::VendorError(m))) => assert!(
                    m.contains("deeper than 32 levels"),
                    "{resource} with {arrays} arrays: {m}"
                ),
                other => {
                    panic!("{resource} with {arrays} arrays: want a vendor error, got {other:?}")
                }
            }
        }
    }
}

/// Vendor records are printed again inside the guest (serde_json with zmij, built at
/// opt-level "s" in the wasm profile so that its tables stay small): every kind of float
/// must come out as the host's own serde_json prints it.
#[tokio::test]
async fn floats_in_vendor_records_print_as_serde_json_prints_them() {
    let ecwid = load("ecwid").await;
    let c = ctx(&[("ecwid.store.id", "1003")], Some("tok"));
    let orders = target("orders", "/hubs/ecommerce/orders");
    let floats = [
        0.1,
        12.5,
        1234.5678,
        -0.0,
        1e-7,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        123456789012345680.0,
        9007199254740993.0,
        0.30000000000000004,
        1e21,
        1e15,
        std::f64::consts::PI,
    ];
    let items: Vec<Value> = floats
        .iter()
        .enumerate()
        .map(|(i, f)| json!({"id": i, "total": f, "tax": f / 3.0, "rate": [f * 7.0, -f]}))
        .collect();
    let answer = json!({"total": items.len(), "count": items.len(), "offset": 0, "items": items});
    let page = ecwid
        .parse_poll_response(&c, &orders, None, &response(200, &answer))
        .await
        .unwrap();
    let printed: Vec<String> = items.iter().map(Value::to_string).collect();
    assert_eq!(page.records, printed);
}
