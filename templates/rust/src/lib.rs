//! {{display_name}}: signed webhooks, each turned into one standardized event.
//!
//! Replace the vendor details (the header, the payload paths, the event names) with your
//! vendor's; the host does everything else (finding the instance, dedupe, signing and
//! delivering the notification, retries).

use guest_sdk::prelude::*;

/// The {{display_name}} connector.
pub struct {{type_name}};

/// The webhook signing secret's configuration key.
const SECRET: &str = "{{name}}.webhook.secret";

/// The header carrying the base64 HMAC-SHA256 of the body.
const SIGNATURE: &str = "x-{{name}}-signature";

impl Connector for {{type_name}} {
    fn info() -> ConnectorInfo {
        ConnectorInfo::new("{{name}}", "{{display_name}}", "general")
            .webhooks()
            // Typed keys: the host checks them before any call and masks secrets.
            .key(ConfigKey::required(SECRET, "Webhook signing secret").secret())
    }

    fn verify_webhook(ctx: &Context, req: &WebhookRequest) -> Result<(), Error> {
        let secret = ctx.config.require(SECRET)?;
        let signature = req
            .header(SIGNATURE)
            .ok_or_else(|| Error::unauthorized("the signature header is missing"))?;
        if signature::verify_hmac_sha256_base64(secret.as_bytes(), &req.body, signature) {
            Ok(())
        } else {
            Err(Error::unauthorized("the signature does not match"))
        }
    }

    fn parse_webhook(_ctx: &Context, req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
        let body = req.json()?;
        let id = json::string_at(&body, "data.id")
            .ok_or_else(|| Error::bad_request("data.id is missing"))?;
        let kind = match json::string_at(&body, "type").as_deref() {
            Some("order.created") => EventType::Created,
            Some("order.updated") => EventType::Updated,
            Some("order.deleted") => EventType::Deleted,
            _ => EventType::Unknown,
        };
        let mut event = EventObject::new("orders", id, kind).with_fields(&body["data"]);
        if let Some(event_id) = json::string_at(&body, "id") {
            // The vendor's delivery id: the host recognizes a retried webhook by it.
            event = event.with_event_id(event_id);
        }
        Ok(vec![event])
    }
}

guest_sdk::export_connector!({{type_name}});

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../fixtures/webhook.json");

    fn webhook(signature: Option<&str>) -> WebhookRequest {
        let req = WebhookRequest::post(FIXTURE);
        match signature {
            Some(signature) => req.with_header(SIGNATURE, signature),
            None => req,
        }
    }

    fn ctx() -> Context {
        Context::new(Config::new([(SECRET, "s3cret")]))
    }

    #[test]
    fn a_signed_webhook_verifies_and_an_unsigned_or_tampered_one_does_not() {
        let good = signature::hmac_sha256_base64(b"s3cret", FIXTURE);
        assert!({{type_name}}::verify_webhook(&ctx(), &webhook(Some(&good))).is_ok());
        assert!({{type_name}}::verify_webhook(&ctx(), &webhook(None)).is_err());
        assert!({{type_name}}::verify_webhook(&ctx(), &webhook(Some("AAAA"))).is_err());
    }

    #[test]
    fn the_fixture_becomes_one_created_order_with_the_vendor_event_id() {
        let events = {{type_name}}::parse_webhook(&ctx(), &webhook(None)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].object_type, "orders");
        assert_eq!(events[0].object_id, "1001");
        assert_eq!(events[0].event_type, EventType::Created);
        assert_eq!(events[0].event_id.as_deref(), Some("evt_1001"));
    }
}
