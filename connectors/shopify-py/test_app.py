"""Unit tests of the Shopify connector under plain CPython, through the export the host calls:

    componentize-py -d wit -w connector bindings /tmp/bindings
    PYTHONPATH=/tmp/bindings:guest-sdk/python python3 -m unittest discover -s connectors/shopify-py
"""

import pathlib
import unittest

import connector_sdk as sdk
from componentize_py_types import Err
from wit_world.imports import types

import app

FIXTURE = (pathlib.Path(__file__).parent / "fixtures" / "orders-create.json").read_bytes()
SECRET = "hush"
CONFIG = [("shopify.shop.domain", "jsmith.myshopify.com"), ("shopify.client.secret", SECRET)]


def webhook(topic, body=FIXTURE, signature=None, shop="jsmith.myshopify.com", extra=()):
    headers = [
        ("Content-Type", "application/json"),
        ("X-Shopify-Topic", topic),
        ("X-Shopify-Hmac-Sha256", signature or sdk.hmac_sha256_base64(SECRET, body)),
        ("X-Shopify-Shop-Domain", shop),
        ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        ("X-Shopify-Triggered-At", "2023-03-29T18:00:27.877041743Z"),
        *extra,
    ]
    return types.WebhookRequest("POST", "/elements/api-v2/events/shopify/MQ==", "", headers, body)


class Shopify(unittest.TestCase):
    def setUp(self):
        self.api = app.Api()
        self.ctx = types.Context(CONFIG, None)

    def refused(self, request):
        with self.assertRaises(Err) as refused:
            self.api.handle_webhook(self.ctx, request)
        return refused.exception.value

    def test_info(self):
        info = self.api.info()
        self.assertEqual((info.key, info.hub, info.modes), ("shopify", "ecommerce", types.Modes.WEBHOOKS))
        self.assertEqual(
            [(k.key, k.value_type, k.required) for k in info.config_keys],
            [
                ("shopify.shop.domain", types.ValueType.TEXT, True),
                ("shopify.client.secret", types.ValueType.SECRET, True),
            ],
        )

    def test_a_signed_order_becomes_a_created_event(self):
        [event] = self.api.handle_webhook(self.ctx, webhook("orders/create"))
        self.assertEqual(event.object_type, "orders")
        self.assertEqual(event.object_id, "820982911946154508")
        self.assertEqual(event.event_type, types.EventType.CREATED)
        self.assertEqual(event.date, "2022-01-01T00:00:00Z")
        self.assertEqual(event.event_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        self.assertEqual(event.fields, FIXTURE.decode())

    def test_topics_give_event_types(self):
        for topic, kind in [
            ("orders/updated", types.EventType.UPDATED),
            ("orders/paid", types.EventType.UPDATED),
            ("customers/update", types.EventType.UPDATED),
            ("app/uninstalled", types.EventType.UNKNOWN),
        ]:
            [event] = self.api.handle_webhook(self.ctx, webhook(topic))
            self.assertEqual((event.object_type, event.event_type), (topic.split("/")[0], kind))
        [updated] = self.api.handle_webhook(self.ctx, webhook("orders/updated"))
        self.assertEqual(updated.date, "2022-01-01T00:00:00Z")

    def test_a_deletion_carries_the_id_and_the_trigger_time(self):
        [event] = self.api.handle_webhook(self.ctx, webhook("orders/delete", b'{"id":820982911946154508}'))
        self.assertEqual(
            (event.object_id, event.event_type, event.date),
            ("820982911946154508", types.EventType.DELETED, "2023-03-29T18:00:27.877041Z"),
        )

    def test_customers(self):
        body = b'{"id":706405506930370084,"email":"bob@example.com","created_at":"2024-01-01T10:00:00+01:00"}'
        [event] = self.api.handle_webhook(self.ctx, webhook("customers/create", body))
        self.assertEqual(
            (event.object_type, event.object_id, event.event_type, event.date),
            ("customers", "706405506930370084", types.EventType.CREATED, "2024-01-01T09:00:00Z"),
        )

    def test_bad_or_missing_signatures_are_refused_first(self):
        tampered = webhook("orders/create", FIXTURE.replace(b"#9999", b"#9998"), signature=sdk.hmac_sha256_base64(SECRET, FIXTURE))
        self.assertEqual(self.refused(tampered), types.Error_Unauthorized("X-Shopify-Hmac-Sha256 does not match"))
        unsigned = webhook("orders/create")
        unsigned.headers = [h for h in unsigned.headers if h[0] != "X-Shopify-Hmac-Sha256"]
        self.assertEqual(self.refused(unsigned), types.Error_Unauthorized("X-Shopify-Hmac-Sha256 is missing"))
        # A bad signature on a malformed body is still a bad signature.
        self.assertIsInstance(self.refused(webhook("orders/create", b"{", signature="AAAA")), types.Error_Unauthorized)

    def test_another_shops_webhook_is_refused(self):
        refused = self.refused(webhook("orders/create", shop="other.myshopify.com"))
        self.assertIsInstance(refused, types.Error_Unauthorized)
        self.assertIn("other.myshopify.com", refused.value)
        # Domains compare without case.
        self.api.handle_webhook(self.ctx, webhook("orders/create", shop="JSmith.myshopify.com"))

    def test_malformed_webhooks_are_bad_requests(self):
        for request in [
            webhook("orders", b"{}"),
            webhook("orders/create", b"[1]"),
            webhook("orders/create", b'{"name":"#1"}'),
            webhook("orders/create", b"not json"),
            webhook("orders/create", b'{"id":1,"created_at":"soon"}'),
        ]:
            self.assertIsInstance(self.refused(request), types.Error_BadRequest)

    def test_configuration(self):
        self.api.validate_config(CONFIG)
        for domain in ["", "https://jsmith.myshopify.com", "jsmith", "a..b", "a b.com"]:
            with self.assertRaises(Err) as refused:
                self.api.validate_config([("shopify.shop.domain", domain), ("shopify.client.secret", "x")])
            self.assertEqual(refused.exception.value.value.key, "shopify.shop.domain")


if __name__ == "__main__":
    unittest.main()
