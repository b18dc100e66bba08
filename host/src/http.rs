//! The outbound HTTP client the host uses for callbacks and vendor APIs: keep-alive,
//! HTTP/1.1, `http://` and `https://` (rustls with the Mozilla root certificates compiled in),
//! connecting only through the outbound guard ([`crate::egress`]).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::egress::{Egress, GuardedConnector};

/// The client type.
pub type HttpClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// A client whose connections time out after `connect_timeout` and go only where `egress`
/// allows.
pub fn client(connect_timeout: Duration, egress: Egress) -> HttpClient {
    let http = GuardedConnector::new(egress, connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("the ring provider supports the default protocol versions")
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// An error and its causes, joined by `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
