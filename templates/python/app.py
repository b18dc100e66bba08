"""{{display_name}}: webhooks as standardized events.

Build the component (one command, in this folder):

    componentize-py -d wit -w connector componentize app -o {{name}}.wasm

Import every module you use here, at the top: the component holds only the modules imported
at build time (see connector_sdk's docstring).
"""

import connector_sdk as sdk
from connector_sdk import EventType

SECRET = "{{name}}.webhook.secret"

EVENT_TYPES = {
    "order.created": EventType.CREATED,
    "order.updated": EventType.UPDATED,
    "order.deleted": EventType.DELETED,
}


class Connector(sdk.Connector):
    def info(self):
        return (
            sdk.ConnectorInfo("{{name}}", "{{display_name}}", "ecommerce")
            .webhooks()
            .key(sdk.ConfigKey.optional(SECRET, "Webhook signing secret; webhooks are verified when set").secret())
        )

    def verify_webhook(self, ctx, req):
        secret = ctx.config.non_empty(SECRET)
        if secret is None:
            return
        signature = req.header("x-signature")
        if signature is None:
            raise sdk.Unauthorized("X-Signature is missing")
        if not sdk.verify_hmac_sha256_base64(secret, req.body, signature):
            raise sdk.Unauthorized("X-Signature does not match")

    def parse_webhook(self, ctx, req):
        body = req.json()
        order_id = sdk.string_at(body, "order.id")
        if order_id is None:
            raise sdk.BadRequest("order.id is missing")
        sent_at = sdk.string_at(body, "sentAt")
        return [
            sdk.event(
                "orders",
                order_id,
                EVENT_TYPES.get(sdk.string_at(body, "event"), EventType.UNKNOWN),
                date=sdk.rfc3339_utc(sent_at) if sent_at else None,
                fields=sdk.at(body, "order"),
                event_id=sdk.string_at(body, "deliveryId"),
            )
        ]


Api = sdk.export(Connector)
