//! The contract's types in their latest version, as the rest of the host uses them.

pub use super::bindings::v0_2::openconnectors::connector::types::{
    AuthStep, ConfigKey, ConnectorInfo, Context, Credentials, DatesConfiguration,
    Error as ConnectorError, EventObject, EventType, FieldError, HttpRequest, HttpResponse,
    InstanceFinder, Modes, PollPage, PollResource, PollTarget, PollWindow, ValueType,
    WebhookRequest,
};

impl ValueType {
    /// The name shown in the API: `text`, `boolean`, `integer`, `url`, `json`, `secret`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Boolean => "boolean",
            ValueType::Integer => "integer",
            ValueType::Url => "url",
            ValueType::Json => "json",
            ValueType::Secret => "secret",
        }
    }
}

impl ConfigKey {
    /// True when the host masks the value.
    pub fn is_secret(&self) -> bool {
        self.value_type == ValueType::Secret
    }
}

/// A connector error in words: `invalid configuration `key`: reason`, `unauthorized: …`.
pub fn describe(error: &ConnectorError) -> String {
    match error {
        ConnectorError::InvalidConfig(e) => {
            format!("invalid configuration `{}`: {}", e.key, e.reason)
        }
        ConnectorError::Unauthorized(m) => format!("unauthorized: {m}"),
        ConnectorError::BadRequest(m) => format!("bad request: {m}"),
        ConnectorError::VendorError(m) => format!("vendor error: {m}"),
        ConnectorError::Unsupported(m) => format!("unsupported: {m}"),
        ConnectorError::Internal(m) => format!("connector error: {m}"),
    }
}

impl EventType {
    /// The name used in notifications: `CREATED`, `UPDATED`, `DELETED`, `UNKNOWN`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::Created => "CREATED",
            EventType::Updated => "UPDATED",
            EventType::Deleted => "DELETED",
            EventType::Unknown => "UNKNOWN",
        }
    }
}

impl ConnectorInfo {
    /// The supported modes as words: `webhooks`, `polling`.
    pub fn mode_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.modes.contains(Modes::WEBHOOKS) {
            out.push("webhooks");
        }
        if self.modes.contains(Modes::POLLING) {
            out.push("polling");
        }
        out
    }
}

impl ConnectorInfo {
    /// The info of a connector that is not loaded: no modes, no keys.
    pub fn unknown() -> Self {
        ConnectorInfo {
            key: String::new(),
            display_name: String::new(),
            hub: String::new(),
            modes: Modes::empty(),
            config_keys: Vec::new(),
            poll_resources: Vec::new(),
            instance_finder: None,
        }
    }
}
