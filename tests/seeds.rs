//! The seeds' instance JSON (the Open Connectors docs), with the placeholders filled in,
//! and vendor payloads shaped like the vendors' docs.

use serde_json::{Value, json};

/// The seeds' Ecwid instance JSON as is, placeholders filled in.
pub fn ecwid_instance(callback_url: &str) -> Value {
    json!({
        "element": {"key": "ecwid"},
        "configuration": {
            "ecwid.order.key": "order-secret-123",
            "ecwid.product.key": "product-key-456",
            "ecwid.store.id": "1003",
            "event.notification.enabled": "true",
            "event.notification.callback.url": callback_url
        },
        "tags": ["shop"],
        "name": "My Ecwid"
    })
}

/// An Ecwid order webhook body (FACTS.md's shape).
pub fn ecwid_order(event_type: &str, order_id: &str, store_id: u64) -> Value {
    json!({
        "eventId": format!("evt-{order_id}"),
        "eventCreated": 1234567,
        "storeId": store_id,
        "entityId": 103878161,
        "eventType": event_type,
        "data": {
            "orderId": order_id,
            "oldPaymentStatus": "AWAITING_PAYMENT",
            "newPaymentStatus": "PAID"
        }
    })
}

/// An echo-connector instance (webhooks; found by `Element-Instances`).
pub fn echo_instance(callback_url: &str) -> Value {
    json!({
        "element": {"key": "echo"},
        "configuration": {
            "event.notification.enabled": true,
            "event.vendor.type": "webhooks",
            "event.notification.callback.url": callback_url
        },
        "name": "echo"
    })
}
