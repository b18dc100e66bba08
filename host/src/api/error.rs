//! API errors: each knows its HTTP status and renders as JSON naming the bad field.

use hyper::StatusCode;
use serde_json::json;

/// An error answer of the HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such route, connector or object.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is malformed; `field` names the bad input when there is one.
    #[error("{message}")]
    BadRequest {
        /// The bad field, e.g. `configuration.ecwid.store.id`.
        field: Option<String>,
        /// Why it is refused.
        message: String,
    },
    /// Something failed inside the host.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body: `{"status", "error", "message", "field"?}`.
    pub fn body(&self) -> serde_json::Value {
        let status = self.status();
        let mut body = json!({
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or(""),
            "message": self.to_string(),
        });
        if let ApiError::BadRequest { field: Some(f), .. } = self {
            body["field"] = json!(f);
        }
        body
    }
}
