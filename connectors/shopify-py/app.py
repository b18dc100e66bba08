"""Shopify: signed webhooks (`orders/create`, `orders/updated`, `orders/delete`,
`customers/create`, ...) as standardized events. An example connector written in Python.

Shopify signs each webhook with the app's client secret: `X-Shopify-Hmac-Sha256` is the
standard base64 of HMAC-SHA256 over the raw body. `X-Shopify-Topic` names the resource and
what happened (`orders/create`); `X-Shopify-Webhook-Id` identifies the delivery (the same on
Shopify's retries), so it is the event's vendor id; `X-Shopify-Shop-Domain` names the shop.

Shopify's payloads carry no shop id, so the host cannot find the instance from the body:
register each instance's webhook URL as `/elements/api-v2/events/shopify/<base64 instance id>`
(or send `Element-Instances`).

Build (from the repository root):

    componentize-py -d wit -w connector componentize app \
        -p connectors/shopify-py -p guest-sdk/python -o shopify.wasm
"""

import connector_sdk as sdk
from connector_sdk import EventType

SHOP = "shopify.shop.domain"
SECRET = "shopify.client.secret"

# What a topic's action (after the `/`) says happened. Actions that change an existing
# object are updates; others (`app/uninstalled`, `customers/redact`, ...) are unknown.
ACTIONS = {
    "create": EventType.CREATED,
    "delete": EventType.DELETED,
    **{
        action: EventType.UPDATED
        for action in [
            "update",
            "updated",
            "edited",
            "paid",
            "cancelled",
            "fulfilled",
            "partially_fulfilled",
            "enable",
            "disable",
        ]
    },
}


def _is_shop_domain(domain):
    labels = domain.split(".")
    return len(labels) >= 2 and all(
        label and all(c.isascii() and (c.isalnum() or c == "-") for c in label) for label in labels
    )


class Shopify(sdk.Connector):
    def info(self):
        return (
            sdk.ConnectorInfo("shopify", "Shopify", "ecommerce")
            .webhooks()
            .key(sdk.ConfigKey.required(SHOP, "The shop's domain, e.g. example.myshopify.com"))
            .key(
                sdk.ConfigKey.required(
                    SECRET, "The app's client secret, which Shopify signs webhooks with"
                ).secret()
            )
        )

    def validate_config(self, config):
        super().validate_config(config)
        if not _is_shop_domain(config.require(SHOP)):
            raise sdk.InvalidConfig(SHOP, "must be a domain such as example.myshopify.com")

    def verify_webhook(self, ctx, req):
        signature = req.header("x-shopify-hmac-sha256")
        if signature is None:
            raise sdk.Unauthorized("X-Shopify-Hmac-Sha256 is missing")
        secret = ctx.config.require(SECRET)
        if not sdk.verify_hmac_sha256_base64(secret, req.body, signature):
            raise sdk.Unauthorized("X-Shopify-Hmac-Sha256 does not match")
        # One app secret signs every shop's webhooks: refuse another shop's.
        shop = req.header("x-shopify-shop-domain")
        if shop is not None and shop.strip().lower() != ctx.config.require(SHOP).lower():
            raise sdk.Unauthorized(f"the webhook is from {shop}, not from this instance's shop")

    def parse_webhook(self, ctx, req):
        topic = req.header("x-shopify-topic")
        if not topic or "/" not in topic:
            raise sdk.BadRequest("X-Shopify-Topic is missing or not `resource/action`")
        resource, _, action = topic.strip().partition("/")
        body = req.json()
        if not isinstance(body, dict):
            raise sdk.BadRequest("the body is not a JSON object")
        object_id = sdk.string_at(body, "id")
        if object_id is None:
            raise sdk.BadRequest("id is missing")
        kind = ACTIONS.get(action, EventType.UNKNOWN)
        return [
            sdk.event(
                resource,
                object_id,
                kind,
                date=self._date(body, kind, req),
                fields=req.fields_text(),
                event_id=req.header("x-shopify-webhook-id"),
            )
        ]

    @staticmethod
    def _date(body, kind, req):
        """When it happened: the object's own date for creations and updates, else when
        Shopify triggered the webhook (a deletion carries only the id)."""
        field = {EventType.CREATED: "created_at", EventType.UPDATED: "updated_at"}.get(kind)
        text = (field and sdk.string_at(body, field)) or req.header("x-shopify-triggered-at")
        return sdk.rfc3339_utc(text) if text else None


Api = sdk.export(Shopify)
