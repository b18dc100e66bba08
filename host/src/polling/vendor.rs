//! The host runs every vendor HTTP call a connector builds: with a time-out and a cap on
//! the answer's size.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;

use crate::http::{HttpClient, error_chain};
use runtime::types::{HttpRequest, HttpResponse};

/// Why a vendor call got no usable answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VendorError {
    /// The request the connector built is not valid HTTP.
    #[error("the connector built an invalid request: {0}")]
    BadRequest(String),
    /// The vendor could not be reached.
    #[error("cannot reach the vendor: {0}")]
    Unreachable(String),
    /// No answer within the time-out.
    #[error("the vendor did not answer within {0:?}")]
    Timeout(Duration),
    /// The answer is larger than the cap.
    #[error("the vendor's answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// A keep-alive HTTP client for vendor APIs.
#[derive(Clone)]
pub struct VendorClient {
    client: HttpClient,
    timeout: Duration,
    max_body: usize,
}

impl VendorClient {
    /// A client with a per-call time-out and answer cap, connecting where `egress` allows.
    pub fn new(timeout: Duration, max_body: usize, egress: crate::egress::Egress) -> Self {
        VendorClient {
            client: crate::http::client(timeout, egress),
            timeout,
            max_body,
        }
    }

    /// The time-out of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The largest answer read, in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Runs one request.
    pub async fn run(&self, req: &HttpRequest) -> Result<HttpResponse, VendorError> {
        self.run_within(req, self.timeout, self.max_body).await
    }

    /// Runs one request with a shorter time-out or a smaller answer cap than the client's
    /// (a poll's budget leaves less); the larger of each is the client's own.
    pub async fn run_within(
        &self,
        req: &HttpRequest,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, VendorError> {
        let (timeout, max_body) = (timeout.min(self.timeout), max_body.min(self.max_body));
        let mut builder = Request::builder().method(req.method.as_str()).uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let body = Full::new(Bytes::from(req.body.clone().unwrap_or_default()));
        let request = builder
            .body(body)
            .map_err(|e| VendorError::BadRequest(e.to_string()))?;
        let call = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| VendorError::Unreachable(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        VendorError::TooLarge(max_body)
                    } else {
                        VendorError::Unreachable(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(HttpResponse {
                status,
                headers,
                body: body.to_vec(),
            })
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or(Err(VendorError::Timeout(timeout)))
    }
}
