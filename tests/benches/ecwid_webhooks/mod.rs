//! The Ecwid webhooks the sandboxed-call benches send, shared by `parse_webhook` and
//! `pool_ab`.

use runtime::types::{Context, WebhookRequest};

/// An Ecwid `order.created` body, FACTS.md's shape.
pub const BODY: &str = r#"{"eventId":"80aece08-40e8-4145-8764-6c2f0d38678","eventCreated":1234567,"storeId":1003,"entityId":103878161,"eventType":"order.created","data":{"orderId":"XJ12H","oldPaymentStatus":"AWAITING_PAYMENT","newPaymentStatus":"PAID"}}"#;

/// The webhook request carrying [`BODY`].
pub fn request() -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        path: "/elements/api-v2/events/ecwid".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: BODY.as_bytes().to_vec(),
    }
}

/// The same order with a 2 MiB `note` field: a call that grows the instance's memory.
pub fn large_request() -> WebhookRequest {
    let big = "x".repeat(2 << 20);
    WebhookRequest {
        body: BODY
            .replace(r#""PAID"}"#, &format!(r#""PAID","note":"{big}"}}"#))
            .into_bytes(),
        ..request()
    }
}

/// The instance context the connector is called with (store 1003).
pub fn context() -> Context {
    Context {
        config: vec![("ecwid.store.id".into(), "1003".into())],
        credentials: None,
    }
}
