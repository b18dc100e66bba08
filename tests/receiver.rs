//! A real HTTP callback receiver on loopback: records every request and answers with the
//! status a test sets (200 by default; 503 plays a callback that is down), or with the
//! status a rule picks per request ([`Receiver::start_answering`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpListener;

use crate::standin::{StandIn, VendorAnswer, VendorRequest, futures_answer};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
    /// The status it was answered with.
    pub answered: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("notification bodies are JSON")
    }
}

/// Picks the status of one request.
type Rule = Box<dyn Fn(&VendorRequest) -> u16 + Send + Sync>;

struct Shared {
    status: AtomicU16,
    rule: Option<Rule>,
    received: Mutex<Vec<Received>>,
}

/// The receiver. Stops when dropped.
pub struct Receiver {
    shared: Arc<Shared>,
    server: StandIn,
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, None)
    }

    /// Starts a receiver on a free loopback port that answers each request with the status
    /// `rule` picks (e.g. 503 for one tenant's notifications, 200 for the others').
    pub async fn start_answering(
        rule: impl Fn(&VendorRequest) -> u16 + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, Some(Box::new(rule)))
    }

    /// Starts a receiver on `addr` (e.g. a port a test reserved earlier).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = TcpListener::bind(addr).await.unwrap();
        Receiver::serve(listener, None)
    }

    fn serve(listener: TcpListener, rule: Option<Rule>) -> Receiver {
        let shared = Arc::new(Shared {
            status: AtomicU16::new(200),
            rule,
            received: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let server = StandIn::serve(listener, move |req| {
            let status = match &s.rule {
                Some(rule) => rule(req),
                None => s.status.load(Ordering::SeqCst),
            };
            s.received.lock().unwrap().push(Received {
                path: req.path.clone(),
                headers: req.headers.clone(),
                body: req.body.clone(),
                at: Instant::now(),
                answered: status,
            });
            futures_answer::now(VendorAnswer {
                status,
                headers: Vec::new(),
                body: String::new(),
            })
        });
        Receiver { shared, server }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Answers every later request with `status`.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// What was received and answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}
