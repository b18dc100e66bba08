//! A stand-in vendor API on loopback: a real HTTP server whose answers a test scripts with
//! a closure, and which records every request it gets.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request the stand-in got.
#[derive(Debug, Clone)]
pub struct VendorRequest {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl VendorRequest {
    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as form fields.
    pub fn form(&self) -> Vec<(String, String)> {
        decode_pairs(&String::from_utf8_lossy(&self.body))
    }
}

/// What the stand-in answers.
#[derive(Debug, Clone)]
pub struct VendorAnswer {
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl VendorAnswer {
    /// 200 with a JSON body.
    pub fn json(v: serde_json::Value) -> Self {
        VendorAnswer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string(),
        }
    }

    /// `status` with a JSON body.
    pub fn status(status: u16, v: serde_json::Value) -> Self {
        VendorAnswer {
            status,
            ..VendorAnswer::json(v)
        }
    }
}

/// Percent-decodes `a=1&b=x%20y` pairs (`+` is a space).
pub fn decode_pairs(s: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

type Handler = dyn Fn(&VendorRequest) -> futures_answer::Answer + Send + Sync;

/// Answers may be immediate or wait on something the test controls.
pub mod futures_answer {
    use super::VendorAnswer;
    use std::future::Future;
    use std::pin::Pin;

    /// A possibly delayed answer.
    pub type Answer = Pin<Box<dyn Future<Output = VendorAnswer> + Send>>;

    /// An answer ready now.
    pub fn now(a: VendorAnswer) -> Answer {
        Box::pin(async move { a })
    }
}

/// The stand-in server. Stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<VendorRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Starts a stand-in on a free loopback port, answering with `handler`.
    pub async fn start(
        handler: impl Fn(&VendorRequest) -> futures_answer::Answer + Send + Sync + 'static,
    ) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        StandIn::serve(listener, handler)
    }

    /// Serves `listener`, answering with `handler`.
    pub fn serve(
        listener: TcpListener,
        handler: impl Fn(&VendorRequest) -> futures_answer::Answer + Send + Sync + 'static,
    ) -> StandIn {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (handler, recorded) = (handler.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (handler, recorded) = (handler.clone(), recorded.clone());
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let query = decode_pairs(req.uri().query().unwrap_or(""));
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let request = VendorRequest {
                                method,
                                path,
                                query,
                                headers,
                                body,
                            };
                            recorded.lock().unwrap().push(request.clone());
                            let answer = handler(&request).await;
                            let mut resp = Response::builder().status(answer.status);
                            for (k, v) in &answer.headers {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, Infallible>(
                                resp.body(Full::new(Bytes::from(answer.body))).unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        StandIn {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<VendorRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<VendorRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
