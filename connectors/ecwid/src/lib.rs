//! Ecwid: order webhooks (`order.created|updated|deleted`), signed with the app's client
//! secret, and order polling through the REST API v3.

use guest_sdk::prelude::*;
use serde::Deserialize;
use serde_json::Value;

/// The Ecwid connector.
pub struct Ecwid;

const DEFAULT_BASE_URL: &str = "https://app.ecwid.com/api/v3";
const CLIENT_SECRET: &str = "ecwid.client.secret";
const PAGE_SIZE: u32 = 100;

impl Connector for Ecwid {
    fn info() -> ConnectorInfo {
        ConnectorInfo::new("ecwid", "Ecwid", "ecommerce")
            .webhooks()
            .polling()
            .key(ConfigKey::required("ecwid.store.id", "Ecwid store id").typed(ValueType::Integer))
            .key(ConfigKey::optional("ecwid.order.key", "Legacy order API secret").secret())
            .key(ConfigKey::optional("ecwid.product.key", "Legacy product API secret").secret())
            .key(ConfigKey::optional("ecwid.access.token", "REST API access token").secret())
            .key(
                ConfigKey::optional(
                    CLIENT_SECRET,
                    "App client secret; webhooks are verified when set",
                )
                .secret(),
            )
            .key(ConfigKey::optional("base.url", "REST API base URL").typed(ValueType::Url))
            .resource(
                PollResource::new(
                    "orders",
                    "/hubs/ecommerce/orders",
                    "id",
                    "updateTimestamp",
                    "epoch:s",
                )
                .created("createTimestamp"),
            )
            .instance_finder("ecwid.store.id", "storeId")
    }

    fn validate_config(config: &Config) -> Result<(), Error> {
        let store = config.require("ecwid.store.id")?;
        if !store.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid_config("ecwid.store.id", "must be a number"));
        }
        Ok(())
    }

    fn verify_webhook(ctx: &Context, req: &WebhookRequest) -> Result<(), Error> {
        let Some(secret) = ctx.config.non_empty(CLIENT_SECRET) else {
            return Ok(());
        };
        let signature = req
            .header("x-ecwid-webhook-signature")
            .ok_or_else(|| Error::unauthorized("X-Ecwid-Webhook-Signature is missing"))?;
        let body: Body = req.parse()?;
        let created = body
            .event_created
            .ok_or_else(|| Error::bad_request("eventCreated is missing"))?;
        let event_id = body
            .event_id
            .ok_or_else(|| Error::bad_request("eventId is missing"))?;
        let signed = format!("{}.{}", created.0, event_id.0);
        if signature::verify_hmac_sha256_base64(secret.as_bytes(), signed.as_bytes(), signature) {
            Ok(())
        } else {
            Err(Error::unauthorized(
                "X-Ecwid-Webhook-Signature does not match",
            ))
        }
    }

    fn parse_webhook(_ctx: &Context, req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
        let body: Body = req.parse()?;
        let kind = match &body.event_type {
            Some(t) => t.0.clone(),
            None => req
                .query_param("eventtype")
                .ok_or_else(|| Error::bad_request("eventType is missing"))?,
        };
        Ok(vec![body.event(&kind, req.fields_text()?)?])
    }

    fn build_poll_request(
        ctx: &Context,
        target: &PollTarget,
        window: &PollWindow,
        cursor: Option<&str>,
    ) -> Result<HttpRequest, Error> {
        if target.name != "orders" {
            return Err(Error::unsupported(format!(
                "unknown resource {}",
                target.name
            )));
        }
        let base = ctx.config.base_url("base.url", DEFAULT_BASE_URL);
        let store = ctx.config.require("ecwid.store.id")?;
        let token = match ctx.config.non_empty("ecwid.access.token") {
            Some(t) => t,
            None => ctx.access_token()?,
        };
        let limit = target.page_size.unwrap_or(PAGE_SIZE).to_string();
        let from = (window.since_ms / 1000).to_string();
        let offset = cursor.unwrap_or("0");
        let url = form::with_query(
            &format!("{base}/{store}/orders"),
            &[
                ("updatedFrom", &from),
                ("offset", offset),
                ("limit", &limit),
            ],
        );
        Ok(HttpRequest::get(url).header("authorization", format!("Bearer {token}")))
    }

    fn parse_poll_response(
        _ctx: &Context,
        _target: &PollTarget,
        _cursor: Option<&str>,
        resp: &HttpResponse,
    ) -> Result<PollPage, Error> {
        match resp.status {
            200..=299 => {}
            401 | 403 => {
                return Err(Error::unauthorized(format!(
                    "Ecwid answered {}",
                    resp.status
                )));
            }
            s => return Err(Error::vendor(format!("Ecwid answered {s}"))),
        }
        let body = resp.json()?;
        let items = json::records_at(&body, "items");
        let offset = json::i64_at(&body, "offset").unwrap_or(0);
        let count = json::i64_at(&body, "count").unwrap_or(items.len() as i64);
        let total = json::i64_at(&body, "total").unwrap_or(0);
        let next = (count > 0 && offset + count < total).then(|| (offset + count).to_string());
        let records: Vec<Value> = items.into_iter().cloned().collect();
        Ok(PollPage::new(&records, next))
    }
}

/// The fields of an Ecwid webhook body the connector reads (the rest stays in the raw
/// body, which becomes the event's vendor fields).
#[derive(Deserialize)]
struct Body {
    #[serde(rename = "eventType")]
    event_type: Option<json::Text>,
    #[serde(rename = "eventCreated")]
    event_created: Option<json::Text>,
    #[serde(rename = "eventId")]
    event_id: Option<json::Text>,
    #[serde(rename = "entityId")]
    entity_id: Option<json::Text>,
    data: Option<Data>,
}

/// `data` of a webhook body.
#[derive(Deserialize)]
struct Data {
    #[serde(rename = "orderId")]
    order_id: Option<json::Text>,
}

impl Body {
    /// The standardized event of this body, of kind `kind` (e.g. `order.created`).
    fn event(self, kind: &str, fields: String) -> Result<EventObject, Error> {
        let (entity, action) = kind.rsplit_once('.').unwrap_or((kind, ""));
        let object_type = match entity {
            "order" | "unfinished_order" => "orders",
            "product" => "products",
            "customer" => "customers",
            other => other,
        };
        let event_type = match action {
            "created" => EventType::Created,
            "updated" => EventType::Updated,
            "deleted" => EventType::Deleted,
            _ => EventType::Unknown,
        };
        let id = self
            .data
            .and_then(|d| d.order_id)
            .or(self.entity_id)
            .ok_or_else(|| Error::bad_request("neither data.orderId nor entityId is present"))?;
        let mut event = EventObject::new(object_type, id.0, event_type).with_fields_text(fields);
        if let Some(created) = self.event_created.as_ref().and_then(json::Text::as_i64) {
            event = event.with_date(dates::rfc3339_from_unix_seconds(created)?);
        }
        Ok(event)
    }
}

guest_sdk::export_connector!(Ecwid);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webhook(body: &Value, headers: &[(&str, &str)]) -> WebhookRequest {
        WebhookRequest {
            method: "POST".into(),
            path: "/elements/api-v2/events/ecwid".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string().into_bytes(),
        }
    }

    fn order(kind: &str) -> Value {
        json!({"eventId": "80aece08-40e8-4145-8764-6c2f0d38678", "eventCreated": 1234567,
               "storeId": 1003, "entityId": 103878161, "eventType": kind,
               "data": {"orderId": "XJ12H", "newPaymentStatus": "PAID"}})
    }

    #[test]
    fn orders_map_to_standard_events() {
        let ctx = Context::default();
        for (kind, expected) in [
            ("order.created", EventType::Created),
            ("order.updated", EventType::Updated),
            ("order.deleted", EventType::Deleted),
        ] {
            let events = Ecwid::parse_webhook(&ctx, &webhook(&order(kind), &[])).unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].object_type, "orders");
            assert_eq!(events[0].object_id, "XJ12H");
            assert_eq!(events[0].event_type, expected);
            assert_eq!(events[0].date.as_deref(), Some("1970-01-15T06:56:07Z"));
        }
    }

    #[test]
    fn entity_id_is_the_fallback_id() {
        let mut body = order("order.deleted");
        body["data"] = json!({});
        let events = Ecwid::parse_webhook(&Context::default(), &webhook(&body, &[])).unwrap();
        assert_eq!(events[0].object_id, "103878161");
    }

    #[test]
    fn signature_vector_verifies_and_tampering_is_refused() {
        let ctx = Context::new(Config::new([(CLIENT_SECRET, "abcde123456789")]));
        let good = [(
            "X-Ecwid-Webhook-Signature",
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
        )];
        assert!(Ecwid::verify_webhook(&ctx, &webhook(&order("order.created"), &good)).is_ok());
        let bad = [(
            "X-Ecwid-Webhook-Signature",
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X359=",
        )];
        assert!(matches!(
            Ecwid::verify_webhook(&ctx, &webhook(&order("order.created"), &bad)),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            Ecwid::verify_webhook(&ctx, &webhook(&order("order.created"), &[])),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn polls_orders_by_update_time_and_offset() {
        let ctx = Context::new(Config::new([
            ("ecwid.store.id", "1003"),
            ("ecwid.access.token", "tok"),
            ("base.url", "http://127.0.0.1:9/api/v3/"),
        ]));
        let target = PollTarget {
            name: "orders".into(),
            url: "/hubs/ecommerce/orders".into(),
            page_size: Some(2),
        };
        let window = PollWindow {
            since_ms: 1_700_000_000_123,
            until_ms: 1_700_000_060_000,
        };
        let req = Ecwid::build_poll_request(&ctx, &target, &window, Some("2")).unwrap();
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/api/v3/1003/orders?updatedFrom=1700000000&offset=2&limit=2"
        );
        assert_eq!(
            req.headers,
            vec![("authorization".to_string(), "Bearer tok".to_string())]
        );
        let resp = HttpResponse {
            status: 200,
            headers: vec![],
            body: json!({"total": 5, "count": 2, "offset": 2, "limit": 2, "items": [{"id": 1}, {"id": 2}]})
                .to_string()
                .into_bytes(),
        };
        let page = Ecwid::parse_poll_response(&ctx, &target, Some("2"), &resp).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.next_cursor.as_deref(), Some("4"));
    }

    #[test]
    fn store_id_must_be_numeric() {
        let err = Ecwid::validate_config(&Config::new([("ecwid.store.id", "abc")])).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(f) if f.key == "ecwid.store.id"));
    }
}
