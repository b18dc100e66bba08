//! The echo test guest: a well-behaved webhook connector used to test hot reload.
//!
//! Built plain it is `Echo v1`; built with the `v2` feature it is `Echo v2`. Each webhook
//! body `{"id": ...}` becomes one `things` event, created, whose fields are
//! `{"version": 1}` or `{"version": 2}`, so a test can tell which build answered. A body
//! `{"id": ..., "count": n}` becomes n such events, ids `{id}-0` … `{id}-{n-1}`. The id
//! `$config-keys` is replaced by the configuration keys the connector was called with,
//! joined by commas, so a test can see what reaches a connector; the id `$headers` by the
//! request's header names, lowercased and joined by commas. A request header
//! `X-Echo-Event-Id` becomes the events' vendor event id. The id `$spin` makes the
//! call loop until the host's CPU deadline stops it: a slow connector that imports only
//! `logging`. Its `validate-config` and
//! its `build-auth-request` (run for an OAuth2 code at creation) refuse any
//! `event.notification.*` key, which the host must never give a connector.

use guest_sdk::prelude::*;
use serde_json::json;

/// The echo connector.
pub struct Echo;

/// The version this build reports.
#[cfg(not(feature = "v2"))]
pub const VERSION: u32 = 1;

/// The version this build reports.
#[cfg(feature = "v2")]
pub const VERSION: u32 = 2;

impl Connector for Echo {
    fn info() -> ConnectorInfo {
        ConnectorInfo::new("echo", &format!("Echo v{VERSION}"), "test").webhooks()
    }

    fn validate_config(config: &Config) -> Result<(), Error> {
        match config
            .entries()
            .iter()
            .find(|(k, _)| k.starts_with("event.notification."))
        {
            Some((k, _)) => Err(Error::invalid_config(
                k,
                "is the host's own key and reached the connector",
            )),
            None => Ok(()),
        }
    }

    /// Checks, as `validate-config` does, that no host key reached it (an OAuth2 code given
    /// at creation runs this step); needs no vendor call.
    fn build_auth_request(ctx: &Context, _step: &AuthStep) -> Result<Option<HttpRequest>, Error> {
        Self::validate_config(&ctx.config)?;
        Ok(None)
    }

    fn parse_webhook(ctx: &Context, req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
        let body = req.json()?;
        let mut id =
            json::string_at(&body, "id").ok_or_else(|| Error::bad_request("id is missing"))?;
        if id == "$spin" {
            spin_forever();
        }
        if id == "$config-keys" {
            let keys: Vec<&str> = ctx
                .config
                .entries()
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            id = keys.join(",");
        }
        if id == "$headers" {
            let names: Vec<String> = req
                .headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            id = names.join(",");
        }
        let event_id = req.header("x-echo-event-id").map(str::to_string);
        let event = |id: String| {
            let event = EventObject::new("things", id, EventType::Created)
                .with_fields(&json!({ "version": VERSION }));
            match &event_id {
                Some(e) => event.with_event_id(e.clone()),
                None => event,
            }
        };
        match json::i64_at(&body, "count") {
            Some(n) => Ok((0..n).map(|k| event(format!("{id}-{k}"))).collect()),
            None => Ok(vec![event(id)]),
        }
    }
}

/// Loops until the host interrupts the call; `black_box` keeps the loop in.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

guest_sdk::export_connector!(Echo);

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(body: &str) -> WebhookRequest {
        WebhookRequest {
            method: "POST".into(),
            path: "/elements/api-v2/events/echo".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn echoes_the_id_and_the_version() {
        let events = Echo::parse_webhook(&Context::default(), &webhook(r#"{"id": 42}"#)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].object_type, "things");
        assert_eq!(events[0].object_id, "42");
        assert_eq!(events[0].event_type, EventType::Created);
        let fields: serde_json::Value = serde_json::from_str(&events[0].fields).unwrap();
        assert_eq!(fields, json!({ "version": VERSION }));
        assert_eq!(Echo::info().display_name, format!("Echo v{VERSION}"));
    }

    #[test]
    fn a_count_gives_that_many_events() {
        let events =
            Echo::parse_webhook(&Context::default(), &webhook(r#"{"id": "a", "count": 3}"#))
                .unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.object_id.as_str()).collect();
        assert_eq!(ids, ["a-0", "a-1", "a-2"]);
    }

    #[test]
    fn refuses_the_hosts_notification_keys() {
        assert!(Echo::validate_config(&Config::new([("echo.setting", "x")])).is_ok());
        let err = Echo::validate_config(&Config::new([
            ("echo.setting", "x"),
            ("event.notification.signature.key", "s"),
        ]))
        .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    }

    #[test]
    fn refuses_a_body_without_id() {
        let err = Echo::parse_webhook(&Context::default(), &webhook("{}")).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)));
    }
}
