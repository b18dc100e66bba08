//! The contract's data types, with constructors that keep connectors short.

use crate::bindings::openconnectors::connector::types as wit;

pub use wit::{
    AuthStep, ConfigKey, ConnectorInfo, Credentials, DatesConfiguration, Error, EventObject,
    EventType, FieldError, HttpRequest, HttpResponse, InstanceFinder, Modes, PollPage,
    PollResource, PollTarget, PollWindow, ValueType, WebhookRequest,
};

impl ConnectorInfo {
    /// A connector with a key, a display name and a hub, supporting no mode yet.
    pub fn new(key: &str, display_name: &str, hub: &str) -> Self {
        ConnectorInfo {
            key: key.into(),
            display_name: display_name.into(),
            hub: hub.into(),
            modes: Modes::empty(),
            config_keys: Vec::new(),
            poll_resources: Vec::new(),
            instance_finder: None,
        }
    }

    /// Declares webhook support.
    pub fn webhooks(mut self) -> Self {
        self.modes |= Modes::WEBHOOKS;
        self
    }

    /// Declares polling support.
    pub fn polling(mut self) -> Self {
        self.modes |= Modes::POLLING;
        self
    }

    /// Adds a configuration key.
    pub fn key(mut self, key: ConfigKey) -> Self {
        self.config_keys.push(key);
        self
    }

    /// Adds a default poll resource.
    pub fn resource(mut self, resource: PollResource) -> Self {
        self.poll_resources.push(resource);
        self
    }

    /// Sets the instance finder: `config_key` in the configuration equals `payload_path` in
    /// the webhook body.
    pub fn instance_finder(mut self, config_key: &str, payload_path: &str) -> Self {
        self.instance_finder = Some(InstanceFinder {
            config_key: config_key.into(),
            payload_path: payload_path.into(),
        });
        self
    }
}

impl ConfigKey {
    /// An optional text key.
    pub fn optional(key: &str, description: &str) -> Self {
        ConfigKey {
            key: key.into(),
            description: description.into(),
            value_type: ValueType::Text,
            required: false,
        }
    }

    /// A required text key: the host refuses an instance without a value.
    pub fn required(key: &str, description: &str) -> Self {
        ConfigKey {
            required: true,
            ..Self::optional(key, description)
        }
    }

    /// Marks the key as secret: a non-empty string the host masks everywhere.
    pub fn secret(self) -> Self {
        self.typed(ValueType::Secret)
    }

    /// Sets the type the host checks values against (`ValueType::Url`, `Integer`, …).
    pub fn typed(mut self, value_type: ValueType) -> Self {
        self.value_type = value_type;
        self
    }
}

impl PollResource {
    /// A resource whose records carry an id at `id_field` and an updated date at
    /// `updated_field` written as `format` (a Java SimpleDateFormat pattern).
    pub fn new(name: &str, url: &str, id_field: &str, updated_field: &str, format: &str) -> Self {
        PollResource {
            name: name.into(),
            url: url.into(),
            id_field: id_field.into(),
            dates: DatesConfiguration {
                updated_date_field: updated_field.into(),
                updated_date_format: format.into(),
                updated_date_timezone: None,
                created_date_field: None,
                created_date_format: None,
                created_date_timezone: None,
            },
        }
    }

    /// Adds the creation date, written in the same format as the updated date.
    pub fn created(mut self, created_field: &str) -> Self {
        self.dates.created_date_field = Some(created_field.into());
        self.dates.created_date_format = Some(self.dates.updated_date_format.clone());
        self
    }

    /// Sets the time zone of dates written without an offset.
    pub fn timezone(mut self, zone: &str) -> Self {
        self.dates.updated_date_timezone = Some(zone.into());
        self.dates.created_date_timezone = Some(zone.into());
        self
    }
}

impl EventObject {
    /// An event about one object, without date or fields.
    pub fn new(object_type: &str, object_id: impl Into<String>, event_type: EventType) -> Self {
        EventObject {
            object_type: object_type.into(),
            object_id: object_id.into(),
            event_type,
            date: None,
            fields: "{}".into(),
            event_id: None,
        }
    }

    /// Sets the vendor's id of the event (a webhook delivery id): the host recognizes a
    /// webhook it already accepted by the ids of its events when every event has one.
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    /// Sets the event date (RFC 3339, UTC).
    pub fn with_date(mut self, date: impl Into<String>) -> Self {
        self.date = Some(date.into());
        self
    }

    /// Sets the vendor fields of the object.
    pub fn with_fields(mut self, fields: &serde_json::Value) -> Self {
        self.fields = fields.to_string();
        self
    }

    /// Sets the vendor fields from JSON text the connector already has (a webhook body as
    /// sent, say), which saves printing a parsed value again.
    pub fn with_fields_text(mut self, fields: impl Into<String>) -> Self {
        self.fields = fields.into();
        self
    }
}

impl Error {
    /// A configuration key is missing or bad.
    pub fn invalid_config(key: &str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig(FieldError {
            key: key.into(),
            reason: reason.into(),
        })
    }

    /// The credentials or a signature were refused.
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Error::Unauthorized(msg.into())
    }

    /// The input is malformed.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// The vendor answered with an error.
    pub fn vendor(msg: impl Into<String>) -> Self {
        Error::VendorError(msg.into())
    }

    /// A bug in the connector.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// The operation is not supported.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(msg.into())
    }
}

impl WebhookRequest {
    /// A `POST` webhook with this body and no header, as tests build one.
    pub fn post(body: impl Into<Vec<u8>>) -> Self {
        WebhookRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The request with a header added.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The first query parameter named `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::form::parse(&self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// True when the body is a form (`application/x-www-form-urlencoded`).
    pub fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    }

    /// The body read into `T` with serde: a JSON body directly, a form body through its
    /// fields as a JSON object of strings. Much faster than [`WebhookRequest::json`] when
    /// `T` names only the fields the connector needs.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        if self.is_form() {
            return serde_json::from_value(self.json()?)
                .map_err(|e| Error::bad_request(format!("form body: {e}")));
        }
        // One UTF-8 check of the whole body, then no check per string while parsing. A body
        // that is not all UTF-8 may still parse where the bad bytes sit in skipped fields.
        match std::str::from_utf8(&self.body) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(&self.body),
        }
        .map_err(|e| Error::bad_request(format!("body is not valid JSON: {e}")))
    }

    /// The body as vendor fields for [`EventObject::with_fields_text`]: a JSON body as
    /// sent, a form body as a JSON object of its fields.
    pub fn fields_text(&self) -> Result<String, Error> {
        if self.is_form() {
            return Ok(self.json()?.to_string());
        }
        String::from_utf8(self.body.clone()).map_err(|_| Error::bad_request("body is not UTF-8"))
    }

    /// The body parsed as JSON (nested at most [`crate::json::MAX_DEPTH`] levels), or the
    /// fields of a form body as a JSON object.
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        if self.is_form() {
            let text = std::str::from_utf8(&self.body)
                .map_err(|_| Error::bad_request("form body is not UTF-8"))?;
            let map = crate::form::parse(text)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            return Ok(serde_json::Value::Object(map));
        }
        crate::json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("body is not valid JSON: {e}")))
    }
}

impl HttpRequest {
    /// A `GET` of `url` without headers.
    pub fn get(url: impl Into<String>) -> Self {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A `POST` of a form body.
    pub fn post_form(url: impl Into<String>, fields: &[(&str, &str)]) -> Self {
        HttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Some(crate::form::encode(fields).into_bytes()),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body parsed as JSON (nested at most [`crate::json::MAX_DEPTH`] levels).
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        crate::json::from_slice(&self.body)
            .map_err(|e| Error::vendor(format!("vendor answer is not valid JSON: {e}")))
    }
}

impl PollPage {
    /// A page of records and the cursor of the next page.
    pub fn new(records: &[serde_json::Value], next_cursor: Option<String>) -> Self {
        PollPage {
            records: records.iter().map(|r| r.to_string()).collect(),
            next_cursor,
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &[u8]) -> WebhookRequest {
        WebhookRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
        }
    }

    #[derive(serde::Deserialize)]
    struct Named {
        id: String,
    }

    #[test]
    fn parse_reads_the_named_fields() {
        let named: Named = request(br#"{"id": "a\u0062", "other": [1, {"x": "y"}]}"#)
            .parse()
            .unwrap();
        assert_eq!(named.id, "ab");
        assert!(request(b"{\"id\": ").parse::<Named>().is_err());
    }

    #[test]
    fn parse_skips_bytes_that_are_not_utf8_in_fields_it_does_not_read() {
        let named: Named = request(b"{\"note\": \"caf\xe9\", \"id\": \"x\"}")
            .parse()
            .unwrap();
        assert_eq!(named.id, "x");
        let bad = request(b"{\"id\": \"caf\xe9\"}").parse::<Named>();
        assert!(bad.is_err());
    }
}
