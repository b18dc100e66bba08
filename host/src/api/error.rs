//! API errors: each knows its HTTP status and renders as JSON naming the bad field.

use hyper::StatusCode;

use super::model::ErrorBody;

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
    /// Missing or wrong credentials, or a vendor signature that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// The request conflicts with the state of the host (an ambiguous webhook).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the configured limit.
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Too many requests of this kind, too soon; retry after the given number of seconds
    /// (sent as `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// What the limit is, naming its flag.
        message: String,
        /// Whole seconds until a retry is let through, at least 1.
        retry_after_secs: u64,
    },
    /// An organization's quota is spent: 403 for the number of instances, 400 naming the
    /// field for a configuration over a quota.
    #[error(transparent)]
    Quota(#[from] crate::quotas::QuotaError),
    /// The body did not arrive within the body time-out.
    #[error("the request body was not received within {} ms", .0.as_millis())]
    BodyTimeout(std::time::Duration),
    /// A connector failed while handling the request.
    #[error("{0}")]
    BadGateway(String),
    /// Not ready yet (a connector still loading): retry after the given number of
    /// seconds (sent as `Retry-After`).
    #[error("{message}")]
    Unavailable {
        /// What is not ready.
        message: String,
        /// Whole seconds until a retry may find it ready, at least 1.
        retry_after_secs: u64,
    },
    /// Something failed inside the host.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming the bad field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 400 without a field.
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: None,
            message: message.into(),
        }
    }
}

impl From<crate::instances::settings::FieldError> for ApiError {
    fn from(e: crate::instances::settings::FieldError) -> Self {
        let message = format!("`{}` {}", e.field, e.reason);
        ApiError::field(e.field, message)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Quota(crate::quotas::QuotaError::Instances { .. }) => StatusCode::FORBIDDEN,
            ApiError::Quota(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` this error is answered with, in seconds, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            }
            | ApiError::Unavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The JSON body: `{"status", "error", "message", "field"?, "retryAfter"?}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self.answer()).expect("an error body serializes")
    }

    /// The body as its type.
    pub fn answer(&self) -> ErrorBody {
        let status = self.status();
        let field = match self {
            ApiError::BadRequest { field, .. } => field.clone(),
            ApiError::Quota(q) => q.field(),
            _ => None,
        };
        ErrorBody {
            status: status.as_u16(),
            error: status.canonical_reason().unwrap_or("").to_string(),
            message: self.to_string(),
            field,
            retry_after: self.retry_after_secs(),
        }
    }
}
