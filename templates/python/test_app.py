"""Unit tests, under plain CPython, against the stub bindings (in this folder):

    rm -rf bindings && componentize-py -d wit -w connector bindings bindings
    PYTHONPATH=bindings python3 -m unittest
"""

import pathlib
import unittest

import connector_sdk as sdk
from componentize_py_types import Err
from wit_world.imports import types

import app

BODY = (pathlib.Path(__file__).parent / "fixtures" / "webhook.json").read_bytes()


def request(body=BODY, headers=()):
    return types.WebhookRequest("POST", "/elements/api-v2/events/{{name}}", "", list(headers), body)


class Webhooks(unittest.TestCase):
    def setUp(self):
        self.api = app.Api()

    def test_an_order_becomes_an_event(self):
        [event] = self.api.handle_webhook(types.Context([], None), request())
        self.assertEqual(event.object_type, "orders")
        self.assertEqual(event.object_id, "1001")
        self.assertEqual(event.event_type, types.EventType.CREATED)
        self.assertEqual(event.date, "2024-01-01T11:00:00Z")
        self.assertEqual(event.event_id, "d-0001")

    def test_signatures_are_checked_when_a_secret_is_set(self):
        ctx = types.Context([(app.SECRET, "s3cret")], None)
        signed = request(headers=[("X-Signature", sdk.hmac_sha256_base64("s3cret", BODY))])
        self.assertEqual(len(self.api.handle_webhook(ctx, signed)), 1)
        with self.assertRaises(Err) as refused:
            self.api.handle_webhook(ctx, request(headers=[("X-Signature", "AAAA")]))
        self.assertIsInstance(refused.exception.value, types.Error_Unauthorized)


if __name__ == "__main__":
    unittest.main()
