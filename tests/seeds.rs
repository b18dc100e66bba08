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

/// The seeds' Infusionsoft REST instance JSON as is (polling appointments), pointed at a
/// stand-in Keap through `base.url`.
pub fn infusionsoft_instance(callback_url: &str, keap_base: &str) -> Value {
    json!({
        "element": {"key": "infusionsoftrest"},
        "providerData": {"code": "the-grant-code"},
        "configuration": {
            "oauth.api.key": "Rand0MAP1-key",
            "oauth.api.secret": "fak3AP1-s3Cr3t",
            "oauth.callback.url": "https://mycoolapp.com",
            "event.notification.enabled": true,
            "event.vendor.type": "polling",
            "event.notification.callback.url": callback_url,
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": {
                "appointments": {
                    "url": "/hubs/crm/appointments",
                    "idField": "id",
                    "datesConfiguration": {
                        "updatedDateField": "modification_date",
                        "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
                        "updatedDateTimezone": "GMT",
                        "createdDateField": "creation_date",
                        "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
                        "createdDateTimezone": "GMT"
                    }
                }
            },
            "base.url": keap_base
        },
        "tags": ["Docs"],
        "name": "Infusionsoft appointments"
    })
}

/// The seeds' Pardot instance JSON as is (`contacts|leads`), pointed at a stand-in Pardot.
pub fn pardot_instance(callback_url: &str, pardot_base: &str) -> Value {
    json!({
        "element": {"key": "pardot"},
        "configuration": {
            "apikey.user.name": "marketing@example.com",
            "apikey.user.password": "pardot-password",
            "apikey.user.key": "pardot-user-key",
            "provider.version": "4",
            "event.notification.enabled": "true",
            "event.notification.callback.url": callback_url,
            "event.poller.urls": "contacts|leads",
            "base.url": pardot_base
        },
        "tags": ["marketing"],
        "name": "Pardot"
    })
}
