//! The web console at `/console`: its session and CSRF guard over plain HTTP, and the pages
//! in a real headless Chromium driven through WebDriver (chromedriver on loopback):
//! sign in, create an instance from the form (an error beside its field), watch events
//! arrive live, open attempts, a failed delivery redelivered, connectors dropped in live,
//! dead letters redelivered in bulk, the chart of deliveries, sign out; and a pass with the
//! keyboard only. Each page's screenshot goes to `target/console-screenshots/`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tests::receiver::Receiver;
use tests::seeds::{ecwid_instance, ecwid_order};
use tests::{TestHost, create_instance, eventually, send, webhook};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a step waits for (a loaded CI machine).
const WAIT: Duration = Duration::from_secs(15);

// ---------- plain HTTP: the session and its guards ----------

/// The `console_session=<id>` pair of a `Set-Cookie` answer, and the whole header.
fn session_cookie(answer: &tests::Answer) -> (String, String) {
    let header = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("console_session="))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", answer.headers));
    let pair = header.split(';').next().unwrap().to_string();
    (pair, header)
}

async fn sign_in_http(host: &TestHost, authorization: &str) -> tests::Answer {
    send(
        "POST",
        &host.root_url("/console/session"),
        &[("content-type", "application/json")],
        json!({ "authorization": authorization })
            .to_string()
            .as_bytes(),
    )
    .await
}

#[tokio::test]
async fn a_change_without_the_csrf_token_is_refused_and_the_session_holds_the_secret() {
    let host = TestHost::start(&["ecwid"]);
    let auth = host.authorization();
    let receiver = Receiver::start().await;

    // The page itself: no inline script allowed, no framing, no sniffing.
    let page = send("GET", &host.root_url("/console"), &[], b"").await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    for asset in ["/console/app.js", "/console/style.css"] {
        assert_eq!(
            send("GET", &host.root_url(asset), &[], b"").await.status,
            200
        );
    }

    // Wrong credentials, and a sign-in that is not JSON (a cross-site form), are refused.
    let wrong = sign_in_http(&host, "User nope, Organization nope").await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(wrong.headers.get("set-cookie").is_none());
    let form = send(
        "POST",
        &host.root_url("/console/session"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("authorization={auth}").as_bytes(),
    )
    .await;
    assert_eq!(form.status, 400, "{}", form.text());
    let missing = sign_in_http(&host, "").await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["field"], "authorization");

    let signed_in = sign_in_http(&host, &auth).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    assert_eq!(signed_in.headers["cache-control"], "no-store");
    assert!(!signed_in.text().contains(&auth));
    let (cookie, header) = session_cookie(&signed_in);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(header.contains(attribute), "{header}");
    }
    let csrf = signed_in.json()["csrf"].as_str().unwrap().to_string();
    assert!(csrf.len() >= 32);

    // A reload gets the token again with the cookie alone.
    let again = send(
        "GET",
        &host.root_url("/console/session"),
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["csrf"], json!(csrf));

    let instance = ecwid_instance(&receiver.url("/hook")).to_string();
    let create = |headers: Vec<(&'static str, String)>| {
        let url = host.root_url("/console/api/instances");
        let body = instance.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            send("POST", &url, &all, body.as_bytes()).await
        }
    };
    // Without the token, with a wrong one, without the cookie: refused, nothing created.
    let no_token = create(vec![("cookie", cookie.clone())]).await;
    assert_eq!(no_token.status, 403, "{}", no_token.text());
    assert_eq!(no_token.json()["field"], "X-CSRF-Token");
    let wrong_token = create(vec![
        ("cookie", cookie.clone()),
        ("x-csrf-token", "0".repeat(csrf.len())),
    ])
    .await;
    assert_eq!(wrong_token.status, 403);
    let no_cookie = create(vec![("x-csrf-token", csrf.clone())]).await;
    assert_eq!(no_cookie.status, 401);
    let listed = host.call("GET", "/instances", None).await.json();
    assert_eq!(listed, json!([]), "no refused change went through");

    // With both, the API's own route runs with the session's Authorization.
    let created = create(vec![
        ("cookie", cookie.clone()),
        ("x-csrf-token", csrf.clone()),
    ])
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.headers["cache-control"], "no-store");
    let created = created.json();
    assert_eq!(created["name"], "My Ecwid");
    assert!(created.get("token").is_none(), "the console shows no token");
    let list = send(
        "GET",
        &host.root_url("/console/api/instances"),
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()[0]["id"], created["id"]);
    assert!(!list.text().contains(&auth));
    // An API error comes through as the API answers it, field and all.
    let bad = send(
        "PATCH",
        &host.root_url(&format!("/console/api/instances/{}", created["id"])),
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("content-type", "application/json"),
        ],
        br#"{"configuration": {"ecwid.store.id": "abc"}}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["field"], "configuration.ecwid.store.id");

    // Sign-out needs the token too; then the cookie opens nothing.
    let out = send(
        "DELETE",
        &host.root_url("/console/session"),
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(out.status, 403);
    let out = send(
        "DELETE",
        &host.root_url("/console/session"),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        b"",
    )
    .await;
    assert_eq!(out.status, 200);
    assert!(session_cookie(&out).1.contains("Max-Age=0"));
    let after = send(
        "GET",
        &host.root_url("/console/api/instances"),
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(after.status, 401);
}

// ---------- the browser ----------

/// `chromedriver` on a free loopback port, in a process group of its own, which is killed
/// on drop: the Chromium it started goes too, even when a failed test never closed its
/// session (a browser left behind would go on polling a port another test may bind).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file())
}

async fn start_driver() -> Driver {
    let (Some(driver), true) = (chromedriver(), Path::new(CHROMIUM).is_file()) else {
        panic!(
            "the console's browser test needs {CHROMIUM} and chromedriver: run ./dev.sh test \
             (it installs chromium and chromium-driver)"
        );
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    let status = format!("http://127.0.0.1:{port}/status");
    eventually(WAIT, "chromedriver to answer", || async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let ok = client
            .get(status.parse().unwrap())
            .await
            .is_ok_and(|r| r.status() == 200);
        ok.then_some(())
    })
    .await;
    driver
}

/// A headless Chromium session, with a profile directory of its own.
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-default-apps".into(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=1280,900".into(),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session on chromedriver")
}

/// Where screenshots go: `<target>/console-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A page's screenshot, `NN-<page>.png`.
async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// The element of `data-testid` `id`, waited for.
async fn find(c: &Client, id: &str) -> fantoccini::elements::Element {
    let css = testid(id);
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&css))
        .await
        .unwrap_or_else(|e| panic!("no element {css} within {WAIT:?}: {e}"))
}

/// Waits until the element `id` shows text containing `needle`; its text.
async fn wait_text(c: &Client, id: &str, needle: &str) -> String {
    let css = testid(id);
    let start = Instant::now();
    let mut last = String::new();
    loop {
        if let Ok(el) = c.find(Locator::Css(&css)).await
            && let Ok(text) = el.text().await
        {
            if text.contains(needle) {
                return text;
            }
            last = text;
        }
        assert!(
            start.elapsed() < WAIT,
            "{css} did not show {needle:?} within {WAIT:?}; it shows {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails on any error the page recorded (uncaught errors, rejections, failed API calls).
async fn no_page_errors(c: &Client) {
    let errors = c
        .execute(
            "return window.__consoleErrors || ['app.js did not run'];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(errors, json!([]), "errors on the page");
}

/// The Authorization value is nowhere the page's script or its source could read it.
async fn no_secret_in_the_page(c: &Client, auth: &str) {
    let secrets: Vec<&str> = auth
        .split(',')
        .filter_map(|part| part.split_whitespace().nth(1))
        .collect();
    assert_eq!(secrets.len(), 2, "User and Organization secrets");
    let storage = c
        .execute(
            "const all = {}; for (const s of [localStorage, sessionStorage]) \
             for (let i = 0; i < s.length; i++) all[s.key(i)] = s.getItem(s.key(i)); \
             return JSON.stringify(all) + ' ' + document.cookie;",
            vec![],
        )
        .await
        .unwrap();
    let storage = storage.as_str().unwrap();
    assert!(
        !storage.contains("console_session"),
        "document.cookie shows the HttpOnly cookie: {storage}"
    );
    let source = c.source().await.unwrap();
    for secret in secrets {
        assert!(
            !storage.contains(secret),
            "a secret in the browser's storage"
        );
        assert!(!source.contains(secret), "a secret in the page source");
    }
}

/// The session cookie as WebDriver sees it: HttpOnly and SameSite=Strict.
async fn check_cookie(c: &Client) -> String {
    let cookie = c.get_named_cookie("console_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    format!("console_session={}", cookie.value())
}

#[tokio::test]
async fn the_console_creates_an_instance_shows_events_live_and_redelivers_a_dead_letter() {
    let host = TestHost::start_with(&["ecwid"], &["--retry-delays-ms", "100,200"]);
    let auth = host.authorization();
    let receiver = Receiver::start().await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    // Sign in: a wrong value is refused on the page, the right one opens the instances.
    c.goto(&host.root_url("/console")).await.unwrap();
    let input = find(&c, "sign-in-authorization").await;
    shot(&c, "01-sign-in").await;
    input
        .send_keys("User wrong, Organization wrong")
        .await
        .unwrap();
    find(&c, "sign-in-submit").await.click().await.unwrap();
    wait_text(&c, "sign-in-error", "not valid").await;
    find(&c, "sign-in-authorization")
        .await
        .send_keys(&auth)
        .await
        .unwrap();
    find(&c, "sign-in-submit").await.click().await.unwrap();
    find(&c, "instances-heading").await;
    wait_text(&c, "no-instances", "No instance yet").await;
    let cookie = check_cookie(&c).await;
    no_secret_in_the_page(&c, &auth).await;
    shot(&c, "02-instances").await;

    // Create from the form: a wrong store id is shown beside its field, then fixed.
    find(&c, "new-instance").await.click().await.unwrap();
    find(&c, "create-form").await;
    find(&c, "field-element.key")
        .await
        .select_by_value("ecwid")
        .await
        .unwrap();
    let store_id = find(&c, "field-ecwid.store.id").await;
    store_id.send_keys("not-a-number").await.unwrap();
    find(&c, "field-event.notification.callback.url")
        .await
        .send_keys(&receiver.url("/hook"))
        .await
        .unwrap();
    find(&c, "field-event.notification.enabled")
        .await
        .select_by_value("true")
        .await
        .unwrap();
    find(&c, "field-name")
        .await
        .send_keys("Console shop")
        .await
        .unwrap();
    find(&c, "create-submit").await.click().await.unwrap();
    let error = wait_text(&c, "error-ecwid.store.id", "ecwid.store.id").await;
    assert!(error.contains("whole number"), "{error}");
    assert_eq!(
        store_id.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    let described = store_id.attr("aria-describedby").await.unwrap().unwrap();
    let error_id = find(&c, "error-ecwid.store.id")
        .await
        .attr("id")
        .await
        .unwrap()
        .unwrap();
    assert!(described.contains(&error_id), "{described}");
    assert_eq!(
        c.find(Locator::Css(&testid("form-error")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "",
        "the error is beside its field, not at the top"
    );
    shot(&c, "03-new-instance-error").await;
    store_id.clear().await.unwrap();
    store_id.send_keys("1003").await.unwrap();
    find(&c, "create-submit").await.click().await.unwrap();
    wait_text(&c, "instance-heading", "Console shop").await;
    wait_text(&c, "instance-events-state", "on").await;
    let url = c.current_url().await.unwrap();
    let id: i64 = url
        .fragment()
        .and_then(|f| f.strip_prefix("/instances/"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the instance page's URL: {url}"));
    shot(&c, "04-instance").await;

    // The events page updates live: a webhook's notification appears without a reload.
    find(&c, "open-events").await.click().await.unwrap();
    find(&c, "events-heading").await;
    wait_text(&c, "no-events", "No notification").await;
    c.execute("window.__notReloaded = true;", vec![])
        .await
        .unwrap();
    let order = ecwid_order("order.created", "C1", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let first = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let sent = Instant::now();
    find(&c, &format!("event-row-{first}")).await;
    let shown_after = sent.elapsed();
    wait_text(&c, &format!("event-status-{first}"), "NOTIFIED").await;
    assert_eq!(
        c.execute("return window.__notReloaded === true;", vec![])
            .await
            .unwrap(),
        json!(true),
        "the page was not reloaded"
    );
    eprintln!("the notification appeared on the page {shown_after:?} after the webhook's answer");

    // Its attempts, envelope and raw body.
    find(&c, &format!("event-link-{first}"))
        .await
        .click()
        .await
        .unwrap();
    find(&c, "event-heading").await;
    wait_text(&c, "event-status", "NOTIFIED").await;
    let attempt = wait_text(&c, "attempt-1-1", "200").await;
    assert!(attempt.contains("ms"), "{attempt}");
    wait_text(&c, "event-envelope", &first).await;
    wait_text(&c, "event-raw", "C1").await;
    shot(&c, "05-event").await;

    // A delivery that fails is dead-lettered and shown FAILED; redelivered from the page
    // once the receiver is back, it is NOTIFIED and the receiver has it.
    receiver.set_status(500);
    find(&c, "back-to-events").await.click().await.unwrap();
    find(&c, "events-heading").await;
    let order = ecwid_order("order.created", "C2", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200);
    let second = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    wait_text(&c, &format!("event-status-{second}"), "FAILED").await;
    shot(&c, "06-events").await;
    // Filtered by status on the host: only the failed one shows, then every one again.
    find(&c, "filter-status")
        .await
        .select_by_value("FAILED")
        .await
        .unwrap();
    find(&c, "filter-apply").await.click().await.unwrap();
    wait_text(&c, "events-count", "1 shown").await;
    find(&c, &format!("event-row-{second}")).await;
    assert!(
        c.find(Locator::Css(&testid(&format!("event-row-{first}"))))
            .await
            .is_err(),
        "the filter shows a delivered notification as FAILED"
    );
    find(&c, "filter-status")
        .await
        .select_by_value("")
        .await
        .unwrap();
    find(&c, "filter-apply").await.click().await.unwrap();
    wait_text(&c, "events-count", "2 shown").await;
    receiver.set_status(200);
    find(&c, &format!("redeliver-{second}"))
        .await
        .click()
        .await
        .unwrap();
    wait_text(&c, "events-message", "Redelivery requested").await;
    wait_text(&c, &format!("event-status-{second}"), "NOTIFIED").await;
    eventually(WAIT, "the redelivered notification", || async {
        receiver
            .delivered()
            .iter()
            .any(|r| r.json()["message"]["eventId"] == json!(second))
            .then_some(())
    })
    .await;
    find(&c, &format!("event-link-{second}"))
        .await
        .click()
        .await
        .unwrap();
    wait_text(&c, "attempt-1-3", "500").await;
    wait_text(&c, "attempt-2-1", "200").await;
    shot(&c, "07-event-redelivered").await;

    // Connectors: a connector dropped into the directory, and a file that fails, appear
    // without a reload.
    find(&c, "nav-connectors").await.click().await.unwrap();
    wait_text(&c, "connector-hub-ecwid", "ecommerce").await;
    wait_text(&c, "connector-contract-ecwid", "0.2.0").await;
    wait_text(&c, "no-failures", "No file failed").await;
    std::fs::copy(tests::guest("echo"), host.connectors.join("echo.wasm")).unwrap();
    std::fs::write(host.connectors.join("broken.wasm"), b"not wasm").unwrap();
    find(&c, "connector-echo").await;
    find(&c, "failure-broken.wasm").await;
    shot(&c, "08-connectors").await;

    // Dead letters across instances: a third notification fails, shows on the page, and the
    // page's bulk redelivery of the instance sends it once the receiver is back.
    receiver.set_status(500);
    let order = ecwid_order("order.created", "C3", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    assert_eq!(answer.status, 200);
    let third = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    find(&c, "nav-dead-letters").await.click().await.unwrap();
    find(&c, "dead-letters-heading").await;
    find(&c, &format!("dl-row-{third}")).await;
    shot(&c, "09-dead-letters").await;
    receiver.set_status(200);
    find(&c, "dl-instance")
        .await
        .select_by_value(&id.to_string())
        .await
        .unwrap();
    find(&c, "dl-bulk").await.click().await.unwrap();
    wait_text(&c, "dl-message", "1 redelivered").await;
    eventually(WAIT, "the bulk-redelivered notification", || async {
        receiver
            .delivered()
            .iter()
            .any(|r| r.json()["message"]["eventId"] == json!(third))
            .then_some(())
    })
    .await;
    wait_text(&c, "dl-none", "No dead letter").await;

    // The instance page's chart counts every attempt so far: C1 once, C2 three times
    // failed and once redelivered, C3 three times failed and once redelivered.
    c.goto(&host.root_url(&format!("/console#/instances/{id}")))
        .await
        .unwrap();
    wait_text(&c, "instance-heading", "Console shop").await;
    wait_text(&c, "chart-total", "9 attempts").await;
    find(&c, "chart")
        .await
        .find(Locator::Css("svg rect"))
        .await
        .expect("the chart draws bars");
    shot(&c, "10-chart").await;

    // Edit: only the changed key is sent; a secret is an empty password field, not its value.
    let store_id = find(&c, "field-ecwid.store.id").await;
    assert_eq!(
        store_id.prop("value").await.unwrap().as_deref(),
        Some("1003")
    );
    let secret = find(&c, "field-ecwid.order.key").await;
    assert_eq!(
        secret.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    assert_eq!(secret.prop("value").await.unwrap().as_deref(), Some(""));
    store_id.clear().await.unwrap();
    store_id.send_keys("2002").await.unwrap();
    find(&c, "edit-submit").await.click().await.unwrap();
    eventually(WAIT, "the edited store id", || async {
        let shown = host
            .call("GET", &format!("/instances/{id}"), None)
            .await
            .json();
        (shown["configuration"]["ecwid.store.id"] == "2002").then_some(())
    })
    .await;
    // Events off and on again.
    wait_text(&c, "instance-events-state", "on").await;
    find(&c, "toggle-events").await.click().await.unwrap();
    wait_text(&c, "instance-events-state", "off").await;
    let shown = host
        .call("GET", &format!("/instances/{id}"), None)
        .await
        .json();
    assert_eq!(shown["eventsEnabled"], json!(false), "{shown}");
    find(&c, "toggle-events").await.click().await.unwrap();
    wait_text(&c, "instance-events-state", "on").await;
    // Delete, after a confirmation: the list is empty again and the API has no instance.
    find(&c, "delete-instance").await.click().await.unwrap();
    find(&c, "delete-confirm").await.click().await.unwrap();
    find(&c, "instances-heading").await;
    wait_text(&c, "no-instances", "No instance yet").await;
    let gone = host.call("GET", &format!("/instances/{id}"), None).await;
    assert_eq!(gone.status, 404, "{}", gone.text());

    no_secret_in_the_page(&c, &auth).await;
    no_page_errors(&c).await;

    // Sign out: the sign-in page again, and the old cookie opens nothing.
    find(&c, "sign-out").await.click().await.unwrap();
    find(&c, "sign-in-heading").await;
    wait_text(&c, "sign-in-message", "signed out").await;
    for hidden in ["nav-instances", "sign-out"] {
        let el = c.find(Locator::Css(&testid(hidden))).await.unwrap();
        assert!(
            !el.is_displayed().await.unwrap(),
            "{hidden} shows signed out"
        );
    }
    shot(&c, "11-signed-out").await;
    let after = send(
        "GET",
        &host.root_url("/console/api/instances"),
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(after.status, 401, "{}", after.text());
    no_page_errors(&c).await;
    c.close().await.unwrap();
}

/// Presses keys on whatever has the focus.
async fn press(c: &Client, keys: &str) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

/// The `data-testid` of the focused element.
async fn focused(c: &Client) -> String {
    c.execute(
        "const e = document.activeElement; return e && e.dataset ? (e.dataset.testid || e.tagName) : '';",
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or("")
    .to_string()
}

const TAB: &str = "\u{e004}";
const SHIFT_TAB: &str = "\u{e008}\u{e004}\u{e000}";
const ENTER: &str = "\u{e007}";

/// Presses Tab (or Shift+Tab) until the element `id` has the focus.
async fn tab_to(c: &Client, id: &str, keys: &str) {
    let mut seen = Vec::new();
    for _ in 0..60 {
        let now = focused(c).await;
        if now == id {
            return;
        }
        seen.push(now);
        press(c, keys).await;
    }
    panic!("Tab never reached {id}; the focus went through {seen:?}");
}

/// Waits until the page's heading has the focus (a page was rendered).
async fn heading_focused(c: &Client, id: &str) {
    find(c, id).await;
    let start = Instant::now();
    while focused(c).await != id {
        assert!(start.elapsed() < WAIT, "{id} never had the focus");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_main_flows_work_with_the_keyboard_alone() {
    let host = TestHost::start(&["ecwid"]);
    let auth = host.authorization();
    let receiver = Receiver::start().await;
    let created = create_instance(&host, &ecwid_instance(&receiver.url("/hook"))).await;
    let id = created["id"].as_i64().unwrap();
    let order = ecwid_order("order.created", "K1", 1003).to_string();
    let answer = webhook(&host, "ecwid", &[], order.as_bytes()).await;
    let event = answer.json()["instances"][0]["notifications"][0]
        .as_str()
        .unwrap()
        .to_string();
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    // The sign-in field has the focus; typing and Enter sign in.
    c.goto(&host.root_url("/console")).await.unwrap();
    find(&c, "sign-in-authorization").await;
    heading_focused(&c, "sign-in-authorization").await;
    // The skip link is the first stop.
    press(&c, SHIFT_TAB).await;
    assert_eq!(focused(&c).await, "skip-link");
    tab_to(&c, "sign-in-authorization", TAB).await;
    press(&c, &format!("{auth}{ENTER}")).await;
    heading_focused(&c, "instances-heading").await;

    // Instances → the instance → its events → one notification, by Tab and Enter.
    tab_to(&c, &format!("instance-link-{id}"), TAB).await;
    press(&c, ENTER).await;
    heading_focused(&c, "instance-heading").await;
    tab_to(&c, "open-events", TAB).await;
    press(&c, ENTER).await;
    heading_focused(&c, "events-heading").await;
    find(&c, &format!("event-row-{event}")).await;
    tab_to(&c, &format!("event-link-{event}"), TAB).await;
    press(&c, ENTER).await;
    heading_focused(&c, "event-heading").await;
    wait_text(&c, "event-status", "NOTIFIED").await;

    // Back up to the main navigation with Shift+Tab, to the connectors.
    tab_to(&c, "nav-connectors", SHIFT_TAB).await;
    let outline = c
        .execute(
            "return getComputedStyle(document.activeElement).outlineStyle;",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(outline, json!("none"), "the focus is visible");
    press(&c, ENTER).await;
    heading_focused(&c, "connectors-heading").await;
    wait_text(&c, "connector-hub-ecwid", "ecommerce").await;

    // And sign out from the keyboard.
    tab_to(&c, "sign-out", SHIFT_TAB).await;
    press(&c, ENTER).await;
    find(&c, "sign-in-heading").await;
    no_page_errors(&c).await;
    c.close().await.unwrap();
}
