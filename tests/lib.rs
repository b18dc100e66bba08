//! Test support: the built guests, a host process on loopback, a small HTTP client, and
//! polling with a deadline instead of sleeps.

pub mod bench;
pub mod heavy;
pub mod js;
pub mod pg;
pub mod python;
pub mod receiver;
pub mod seeds;
pub mod standin;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The path of a guest component built by `build.rs` (`ecwid`, `hostile`, `echo-v2`, …).
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("GUESTS_DIR")).join(format!("{name}.wasm"))
}

/// The host binary: this package's `e2e-host` (the host's `main.rs`), which Cargo builds
/// before it runs this package's tests and benches, next to their binaries.
pub fn host_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = dir.join(format!("e2e-host{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: Cargo builds it for `cargo test -p tests` and `cargo bench -p tests`",
        bin.display()
    );
    bin
}

/// The `serve` arguments every test host gets but [`TestHost::start_guarded`]'s.
pub const LOOPBACK_ALLOWED: [&str; 4] = [
    "--allow-network",
    "127.0.0.0/8",
    "--allow-network",
    "::1/128",
];

/// A host configuration for an in-process host (the benches): loopback allowed by the
/// outbound guard, as callback receivers and vendor stand-ins listen there, and quotas
/// lifted for the load.
pub fn loopback_config(connectors: PathBuf, data: PathBuf) -> host::HostConfig {
    let mut config = host::HostConfig::new(connectors, data);
    config.egress = host::egress::Egress::allowing(vec![
        "127.0.0.0/8".parse().expect("a CIDR"),
        "::1/128".parse().expect("a CIDR"),
    ]);
    config.delivery.egress = config.egress.clone();
    config.quotas.instances_per_org = usize::MAX;
    config.quotas.min_poll_interval = Duration::from_millis(100);
    config.polling.min_interval = config.quotas.min_poll_interval;
    config.wait_for_connectors = true;
    config
}

/// A `connector-host serve` process on a free loopback port, with its own directories.
/// Killed on drop.
pub struct TestHost {
    child: Child,
    addr: SocketAddr,
    /// The connectors directory it watches.
    pub connectors: PathBuf,
    /// Its data directory.
    pub data: PathBuf,
    _dirs: Option<tempfile::TempDir>,
}

impl TestHost {
    /// Starts a host on a new connectors directory holding copies of `guests`.
    pub fn start(guests: &[&str]) -> TestHost {
        TestHost::start_with(guests, &[])
    }

    /// Like [`TestHost::start`], with extra `serve` arguments.
    pub fn start_with(guests: &[&str], args: &[&str]) -> TestHost {
        TestHost::in_temp_dirs(guests, |c, d| TestHost::start_in_with(c, d, args))
    }

    /// Runs `start` on a new temporary connectors directory holding copies of `guests`
    /// and a data directory beside it, which live as long as the host.
    fn in_temp_dirs(guests: &[&str], start: impl FnOnce(&Path, &Path) -> TestHost) -> TestHost {
        let dirs = tempfile::tempdir().expect("temp dir");
        let connectors = dirs.path().join("connectors");
        std::fs::create_dir_all(&connectors).unwrap();
        for g in guests {
            std::fs::copy(guest(g), connectors.join(format!("{g}.wasm"))).unwrap();
        }
        let mut host = start(&connectors, &dirs.path().join("data"));
        host._dirs = Some(dirs);
        host
    }

    /// Starts a host on existing directories.
    pub fn start_in(connectors: &Path, data: &Path) -> TestHost {
        TestHost::start_in_with(connectors, data, &[])
    }

    /// Starts a host on existing directories with extra `serve` arguments. The outbound
    /// guard allows loopback ([`LOOPBACK_ALLOWED`]): callback receivers and vendor
    /// stand-ins listen there. [`TestHost::start_guarded`] starts one without.
    pub fn start_in_with(connectors: &Path, data: &Path, args: &[&str]) -> TestHost {
        let mut all = LOOPBACK_ALLOWED.to_vec();
        all.extend_from_slice(args);
        TestHost::spawn(connectors, data, &all)
    }

    /// Like [`TestHost::start_in_with`], but answering before its connectors are loaded:
    /// files still compiling are listed as loading. (The other constructors pass
    /// `--wait-for-connectors`: their host answers once every file has loaded or failed.)
    pub fn start_in_background(connectors: &Path, data: &Path, args: &[&str]) -> TestHost {
        let mut all = LOOPBACK_ALLOWED.to_vec();
        all.extend_from_slice(args);
        TestHost::spawn_command(Command::new(host_binary()), connectors, data, &all, false)
    }

    /// Like [`TestHost::start_with`], with the outbound guard's defaults: loopback refused.
    pub fn start_guarded(guests: &[&str], args: &[&str]) -> TestHost {
        TestHost::in_temp_dirs(guests, |c, d| TestHost::spawn(c, d, args))
    }

    /// Like [`TestHost::start`], in a process that may open at most `limit` files
    /// (`ulimit -n`), to run it out of descriptors.
    pub fn start_with_fd_limit(guests: &[&str], limit: u32) -> TestHost {
        let mut shell = Command::new("sh");
        shell
            .args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
            .arg(host_binary());
        TestHost::in_temp_dirs(guests, |c, d| {
            TestHost::spawn_command(shell, c, d, &LOOPBACK_ALLOWED, true)
        })
    }

    /// The host process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(connectors: &Path, data: &Path, args: &[&str]) -> TestHost {
        TestHost::spawn_command(Command::new(host_binary()), connectors, data, args, true)
    }

    fn spawn_command(
        mut command: Command,
        connectors: &Path,
        data: &Path,
        args: &[&str],
        wait_for_connectors: bool,
    ) -> TestHost {
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--connectors"])
            .arg(connectors)
            .arg("--data")
            .arg(data)
            // Tests poll every few hundred milliseconds; a later flag overrides this one.
            .args(["--min-poll-interval-ms", "100"]);
        if wait_for_connectors {
            command.arg("--wait-for-connectors");
        }
        let mut child = command
            .args(args)
            .env("RUST_LOG", "warn")
            // Two runtime workers whatever the machine, as on CI's: a test that a busy
            // connector leaves the API answering must not pass on spare workers alone.
            .env("TOKIO_WORKER_THREADS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn connector-host");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the host: {line:?}"))
            .parse()
            .unwrap();
        TestHost {
            child,
            addr,
            connectors: connectors.to_path_buf(),
            data: data.to_path_buf(),
            _dirs: None,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`, outside the API prefix (e.g. `/metrics`).
    pub fn root_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/elements/api-v2` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/elements/api-v2{path}", self.addr)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `POST /instances` with another organization's `Authorization` value.
    pub async fn post_instance_as(
        &self,
        authorization: &str,
        instance: &serde_json::Value,
    ) -> Answer {
        send(
            "POST",
            &self.url("/instances"),
            &[
                ("authorization", authorization),
                ("content-type", "application/json"),
            ],
            instance.to_string().as_bytes(),
        )
        .await
    }

    /// Adds an organization with the CLI next to the running host; its `Authorization`
    /// header value.
    pub fn add_organization(&self, name: &str) -> String {
        let out = Command::new(host_binary())
            .args(["orgs", "add", name, "--data"])
            .arg(&self.data)
            .output()
            .expect("run connector-host orgs add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The `Authorization` value of the first organization, from `<data>/authorization`.
    pub fn authorization(&self) -> String {
        std::fs::read_to_string(self.data.join("authorization"))
            .expect("the host writes <data>/authorization on first start")
            .trim()
            .to_string()
    }

    /// Kills the process at once (SIGKILL), as a crash would, and waits for it.
    pub fn kill(mut self) -> (PathBuf, PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            self.connectors.clone(),
            self.data.clone(),
            self._dirs.take(),
        )
    }

    /// Keeps the directories of a killed host alive in a restarted one.
    pub fn adopt(&mut self, dirs: Option<tempfile::TempDir>) {
        self._dirs = dirs;
    }

    /// Sends a JSON request with this host's first organization's credentials.
    pub async fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Answer {
        let auth = self.authorization();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        send(
            method,
            &self.url(path),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Answer {
    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends a request; `body` is sent as is.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let resp = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// `GET url`.
pub async fn get(url: &str) -> Answer {
    send("GET", url, &[], b"").await
}

/// Polls `check` until it returns `Some` or `deadline` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates an instance with the host's first organization; returns its JSON (with `id`
/// and `token`). Panics with the answer when the host refuses it.
pub async fn create_instance(host: &TestHost, body: &serde_json::Value) -> serde_json::Value {
    let answer = host.call("POST", "/instances", Some(body)).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()
}

/// Posts a vendor webhook to `/events/{path}` with extra headers.
pub async fn webhook(host: &TestHost, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send("POST", &host.url(&format!("/events/{path}")), &all, body).await
}
