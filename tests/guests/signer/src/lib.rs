//! The signer test guest: a careless connector for testing how the host routes a webhook
//! that the instance finder matches in several organizations.
//!
//! Instances are found by `signer.account` = the body's `account`. Its signature check
//! refuses a webhook without an `X-Signer-Signature` header (as a bad request) whether or
//! not a secret is configured, and accepts any signature without checking it: refusing
//! the unsigned body alone must not make an instance count as checking. With
//! `signer.fail` = `true` the check panics (a trap). Each body `{"id": ...}` becomes one
//! `things` event, created.

use guest_sdk::prelude::*;

/// The signer connector.
pub struct Signer;

impl Connector for Signer {
    fn info() -> ConnectorInfo {
        ConnectorInfo::new("signer", "Signer", "test")
            .webhooks()
            .key(ConfigKey::required("signer.account", "Vendor account"))
            .key(ConfigKey::optional("signer.secret", "Webhook secret").secret())
            .key(ConfigKey::optional(
                "signer.fail",
                "Trap in the signature check",
            ))
            .instance_finder("signer.account", "account")
    }

    fn verify_webhook(ctx: &Context, req: &WebhookRequest) -> Result<(), Error> {
        if ctx.config.get("signer.fail") == Some("true") {
            panic!("told to fail");
        }
        match req.header("x-signer-signature") {
            Some(_) => Ok(()),
            None => Err(Error::bad_request("X-Signer-Signature is missing")),
        }
    }

    fn parse_webhook(_ctx: &Context, req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
        let body = req.json()?;
        let id = json::string_at(&body, "id").ok_or_else(|| Error::bad_request("id is missing"))?;
        Ok(vec![EventObject::new("things", id, EventType::Created)])
    }
}

guest_sdk::export_connector!(Signer);

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(headers: &[(&str, &str)]) -> WebhookRequest {
        WebhookRequest {
            method: "POST".into(),
            path: "/elements/api-v2/events/signer".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: br#"{"account": 7, "id": "w1"}"#.to_vec(),
        }
    }

    #[test]
    fn refuses_unsigned_and_accepts_any_signature() {
        let ctx = Context::default();
        assert!(matches!(
            Signer::verify_webhook(&ctx, &webhook(&[])),
            Err(Error::BadRequest(_))
        ));
        assert!(Signer::verify_webhook(&ctx, &webhook(&[("x-signer-signature", "x")])).is_ok());
        let events = Signer::parse_webhook(&ctx, &webhook(&[])).unwrap();
        assert_eq!(events[0].object_id, "w1");
    }
}
