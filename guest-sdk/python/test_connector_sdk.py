"""Unit tests of connector_sdk under plain CPython, against componentize-py's stub bindings:

    componentize-py -d wit -w connector bindings /tmp/bindings
    PYTHONPATH=/tmp/bindings python3 -m unittest discover -s guest-sdk/python

The vectors are the Rust guest-sdk's, so both SDKs answer alike.
"""

import unittest

import connector_sdk as sdk
from componentize_py_types import Err
from wit_world.imports import types


class JsonPaths(unittest.TestCase):
    def test_dotted_paths_reach_nested_values(self):
        v = {"data": {"orderId": "XJ12H", "n": 5, "items": [{"id": 7}], "t": True, "x": None}}
        self.assertEqual(sdk.string_at(v, "data.orderId"), "XJ12H")
        self.assertEqual(sdk.string_at(v, "data.n"), "5")
        self.assertEqual(sdk.string_at(v, "data.t"), "true")
        self.assertIsNone(sdk.string_at(v, "data.x"))
        self.assertIsNone(sdk.string_at(v, "data.items"))
        self.assertEqual(sdk.int_at(v, "data.items.0.id"), 7)
        self.assertIsNone(sdk.at(v, "data.missing"))
        self.assertIsNone(sdk.at(v, "data.items.1.id"))
        self.assertIsNone(sdk.at(v, "data.orderId.deeper"))
        self.assertIs(sdk.at(v, ""), v)

    def test_integers_from_numbers_or_numeric_strings(self):
        v = {"a": " 42 ", "b": 3.0, "c": 3.5, "d": "x", "e": True, "f": 820982911946154508}
        self.assertEqual(sdk.int_at(v, "a"), 42)
        self.assertEqual(sdk.int_at(v, "b"), 3)
        self.assertIsNone(sdk.int_at(v, "c"))
        self.assertIsNone(sdk.int_at(v, "d"))
        self.assertIsNone(sdk.int_at(v, "e"))
        # Large ids (Shopify's) stay exact, as strings too.
        self.assertEqual(sdk.int_at(v, "f"), 820982911946154508)
        self.assertEqual(sdk.string_at(v, "f"), "820982911946154508")

    def test_records_accept_list_object_or_nothing(self):
        v = {"many": [{"id": 1}, {"id": 2}], "one": {"id": 3}, "none": None}
        self.assertEqual(len(sdk.records_at(v, "many")), 2)
        self.assertEqual(sdk.records_at(v, "one"), [{"id": 3}])
        self.assertEqual(sdk.records_at(v, "none"), [])
        self.assertEqual(sdk.records_at(v, "absent"), [])

    def test_deep_or_malformed_json_is_a_bad_request(self):
        with self.assertRaises(sdk.BadRequest):
            sdk.loads(b'{"a":')
        with self.assertRaises(sdk.BadRequest):
            sdk.loads(b"[" * 100_000 + b"]" * 100_000)
        with self.assertRaises(sdk.VendorError):
            sdk.HttpResponse(200, [], b"<html>").json()


class Forms(unittest.TestCase):
    def test_round_trips_reserved_characters(self):
        pairs = [("email", "a+b@x.com"), ("q", "x y&z=1")]
        encoded = sdk.form_encode(pairs)
        self.assertEqual(encoded, "email=a%2Bb%40x.com&q=x%20y%26z%3D1")
        self.assertEqual(sdk.form_parse(encoded), pairs)
        self.assertEqual(sdk.form_encode({"a": 1}), "a=1")

    def test_appends_to_urls_with_or_without_query(self):
        self.assertEqual(sdk.with_query("/a", [("x", "1")]), "/a?x=1")
        self.assertEqual(sdk.with_query("/a?y=2", [("x", "1")]), "/a?y=2&x=1")
        self.assertEqual(sdk.with_query("/a", []), "/a")
        self.assertEqual(sdk.form_parse("a=%zz&b=1+2"), [("a", "%zz"), ("b", "1 2")])

    def test_escapes_all_but_unreserved_characters(self):
        self.assertEqual(sdk.escape("aZ0-._~ *+/%é"), "aZ0-._~%20%2A%2B%2F%25%C3%A9")

    def test_decodes_plus_as_space_and_keeps_malformed_escapes(self):
        self.assertEqual(sdk.unescape("a%20b+c%2Bd"), "a b c+d")
        self.assertEqual(sdk.unescape("100%"), "100%")
        self.assertEqual(sdk.unescape("%zz%4"), "%zz%4")
        self.assertEqual(sdk.unescape("%e9"), "\ufffd")
        self.assertEqual(sdk.unescape("%41"), "A")
        self.assertEqual(
            sdk.form_parse("&&a&=b&c=%e9=x&"), [("a", ""), ("", "b"), ("c", "\ufffd=x")]
        )


class Signatures(unittest.TestCase):
    def test_matches_the_notification_vector(self):
        # FACTS.md: the callback signature vector.
        body = b'{"message":{"eventId":"1"}}'
        sig = sdk.hmac_sha256_base64("abcd1234efgh5678", body)
        self.assertEqual(sig, "K85qmTIlvEkOr6S+WiOKj/yfELQSC8lsRD0RALn7fLE=")
        self.assertTrue(sdk.verify_hmac_sha256_base64(b"abcd1234efgh5678", body, sig))
        self.assertTrue(sdk.verify_hmac_sha256_base64(b"abcd1234efgh5678", body, f" {sig}\n"))
        self.assertFalse(sdk.verify_hmac_sha256_base64(b"abcd1234efgh5678", b"{}", sig))
        self.assertFalse(sdk.verify_hmac_sha256_base64(b"k", b"{}", "not base64!"))
        self.assertFalse(sdk.verify_hmac_sha256_base64(b"k", b"{}", None))
        self.assertEqual(len(sdk.hmac_sha256(b"k", "text")), 32)

    def test_hex_signatures(self):
        body = b'{"message":{"eventId":"1"}}'
        hexsig = sdk.hmac_sha256_hex("abcd1234efgh5678", body)
        self.assertEqual(hexsig, "2bce6a993225bc490eafa4be5a238a8ffc9f10b4120bc96c443d1100b9fb7cb1")
        self.assertTrue(sdk.verify_hmac_sha256_hex("abcd1234efgh5678", body, hexsig.upper()))
        self.assertFalse(sdk.verify_hmac_sha256_hex("abcd1234efgh5678", b"{}", hexsig))
        self.assertFalse(sdk.verify_hmac_sha256_hex("k", body, "sha256=" + hexsig))
        self.assertFalse(sdk.verify_hmac_sha256_hex("k", body, None))

    def test_matches_the_ecwid_vector(self):
        signed = "1234567.80aece08-40e8-4145-8764-6c2f0d38678"
        self.assertEqual(
            sdk.hmac_sha256_base64("abcde123456789", signed),
            "lidx/4J5L2Pp4auvwGBp6DwPkpPmyVLI3oLB440X358=",
        )


class Dates(unittest.TestCase):
    def test_formats_vendor_dates(self):
        ms = 1_483_309_079_039  # 2017-01-01T22:17:59.039Z
        self.assertEqual(sdk.iso_millis_from_ms(ms), "2017-01-01T22:17:59.039Z")
        self.assertEqual(sdk.sql_datetime_from_ms(ms), "2017-01-01 22:17:59")
        self.assertEqual(sdk.rfc3339_from_unix_seconds(1_234_567), "1970-01-15T06:56:07Z")
        self.assertEqual(sdk.rfc3339_from_ms(ms), "2017-01-01T22:17:59.039Z")
        self.assertEqual(sdk.rfc3339_from_ms(500), "1970-01-01T00:00:00.5Z")
        # Before 1970 the milliseconds still count forward from the whole second.
        self.assertEqual(sdk.rfc3339_from_ms(-1), "1969-12-31T23:59:59.999Z")
        self.assertEqual(sdk.iso_millis_from_ms(-1_500), "1969-12-31T23:59:58.500Z")
        with self.assertRaises(sdk.BadRequest):
            sdk.rfc3339_from_ms(2**63 - 1)

    def test_reads_iso_dates_with_offsets_as_utc(self):
        self.assertEqual(sdk.rfc3339_utc("2021-12-31T19:00:00-05:00"), "2022-01-01T00:00:00Z")
        self.assertEqual(sdk.rfc3339_utc("2024-05-01T05:26:28Z"), "2024-05-01T05:26:28Z")
        self.assertEqual(sdk.rfc3339_utc("2024-05-01T05:26:28"), "2024-05-01T05:26:28Z")
        self.assertEqual(
            sdk.rfc3339_utc("2023-03-29T18:00:27.877041743Z"), "2023-03-29T18:00:27.877041Z"
        )
        self.assertEqual(sdk.rfc3339_utc("2024-01-01T01:00:00.500+01:00"), "2024-01-01T00:00:00.5Z")
        for bad in ["yesterday", "", None, 12]:
            with self.assertRaises(sdk.BadRequest):
                sdk.rfc3339_utc(bad)


class Requests(unittest.TestCase):
    def test_headers_are_case_insensitive_and_queries_decoded(self):
        req = sdk.WebhookRequest(
            headers=[("X-Thing", "a"), ("x-thing", "b")], query="eventtype=order.created&x=a%20b"
        )
        self.assertEqual(req.header("x-THING"), "a")
        self.assertIsNone(req.header("missing"))
        self.assertEqual(req.query_param("eventtype"), "order.created")
        self.assertEqual(req.query_param("x"), "a b")
        self.assertIsNone(req.query_param("y"))

    def test_json_and_form_bodies(self):
        form = sdk.WebhookRequest(
            headers=[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body=b"a=1&b=x+y",
        )
        self.assertEqual(form.json(), {"a": "1", "b": "x y"})
        self.assertEqual(form.fields_text(), '{"a":"1","b":"x y"}')
        plain = sdk.WebhookRequest(body=b'{"id": 5}')
        self.assertEqual(plain.json(), {"id": 5})
        self.assertEqual(plain.fields_text(), '{"id": 5}')
        with self.assertRaises(sdk.BadRequest):
            sdk.WebhookRequest(body=b"\xff").text()
        with self.assertRaises(sdk.BadRequest):
            sdk.WebhookRequest(body=b"not json").json()

    def test_http_request_builders(self):
        get = sdk.HttpRequest.get("https://x.example/a").header("authorization", "Bearer t")
        self.assertEqual(
            get.to_wit(),
            types.HttpRequest("GET", "https://x.example/a", [("authorization", "Bearer t")], None),
        )
        post = sdk.HttpRequest.post_form("https://x.example/login", [("email", "a+b@x.com")]).to_wit()
        self.assertEqual(post.method, "POST")
        self.assertEqual(post.headers, [("content-type", "application/x-www-form-urlencoded")])
        self.assertEqual(post.body, b"email=a%2Bb%40x.com")

    def test_events_and_pages_carry_json_text(self):
        e = sdk.event("orders", 42, sdk.EventType.CREATED, fields={"id": 42, "name": "é"})
        self.assertEqual(
            e, types.EventObject("orders", "42", types.EventType.CREATED, None, '{"id":42,"name":"é"}', None)
        )
        self.assertEqual(sdk.event("orders", "1", sdk.EventType.DELETED).fields, "{}")
        self.assertEqual(sdk.event("orders", "1", sdk.EventType.UPDATED, fields='{"a": 1}').fields, '{"a": 1}')
        page = sdk.poll_page([{"id": 1}, {"id": 2}], "2")
        self.assertEqual(page, types.PollPage(['{"id":1}', '{"id":2}'], "2"))


class Configuration(unittest.TestCase):
    def test_reads_values(self):
        config = sdk.Config([("a", " x "), ("blank", "  "), ("base.url", "https://h.example/v1/")])
        self.assertEqual(config.get("a"), " x ")
        self.assertEqual(config.non_empty("a"), "x")
        self.assertIsNone(config.non_empty("blank"))
        self.assertEqual(config.base_url("base.url", "https://d.example"), "https://h.example/v1")
        self.assertEqual(config.base_url("other", "https://d.example/"), "https://d.example")
        self.assertIn("a", config)
        self.assertNotIn("b", config)
        with self.assertRaises(sdk.InvalidConfig) as refused:
            config.require("blank")
        self.assertEqual(refused.exception.key, "blank")
        self.assertNotIn("x", repr(sdk.Config({"secret": "hunter2x"})).replace("secret", ""))

    def test_access_token(self):
        with self.assertRaises(sdk.Unauthorized):
            sdk.Context().access_token()
        self.assertEqual(sdk.Context({"a": "1"}).with_token("t").access_token(), "t")


class Shop(sdk.Connector):
    """A small connector driven through the export, as the host drives it."""

    def info(self):
        return (
            sdk.ConnectorInfo("shop", "Shop", "ecommerce")
            .webhooks()
            .polling()
            .key(sdk.ConfigKey.required("shop.id", "Shop id").integer())
            .key(sdk.ConfigKey.optional("shop.secret", "Signing secret").secret())
            .key(sdk.ConfigKey.optional("shop.sandbox", "Sandbox").boolean())
            .key(sdk.ConfigKey.optional("base.url", "API base URL").url())
            .key(sdk.ConfigKey.optional("shop.extra", "Extra").json())
            .resource(
                sdk.PollResource("orders", "/hubs/ecommerce/orders", "id", "updated", "epoch:s")
                .created("created")
                .timezone("GMT")
            )
            .instance_finder("shop.id", "shopId")
        )

    def verify_webhook(self, ctx, req):
        secret = ctx.config.non_empty("shop.secret")
        if secret and not sdk.verify_hmac_sha256_base64(secret, req.body, req.header("x-sig")):
            raise sdk.Unauthorized("X-Sig does not match")

    def parse_webhook(self, ctx, req):
        body = req.json()
        if body.get("boom"):
            raise KeyError("boom")
        sdk.log.info(f"order {body['id']}")
        return [sdk.event("orders", body["id"], sdk.EventType.CREATED, fields=body, event_id="e1")]

    def build_poll_request(self, ctx, target, window, cursor):
        return sdk.HttpRequest.get(
            sdk.with_query(f"https://shop.example/{target.name}", [("since", window.since_ms)])
        ).header("authorization", f"Bearer {ctx.access_token()}")

    def parse_poll_response(self, ctx, target, cursor, resp):
        return sdk.poll_page(sdk.records_at(resp.json(), "items"))


Api = sdk.export(Shop)


class Export(unittest.TestCase):
    def setUp(self):
        self.api = Api()

    def test_info_in_contract_types(self):
        info = self.api.info()
        self.assertEqual((info.key, info.display_name, info.hub), ("shop", "Shop", "ecommerce"))
        self.assertEqual(info.modes, types.Modes.WEBHOOKS | types.Modes.POLLING)
        self.assertEqual(
            [(k.key, k.value_type, k.required) for k in info.config_keys],
            [
                ("shop.id", types.ValueType.INTEGER, True),
                ("shop.secret", types.ValueType.SECRET, False),
                ("shop.sandbox", types.ValueType.BOOLEAN, False),
                ("base.url", types.ValueType.URL, False),
                ("shop.extra", types.ValueType.JSON, False),
            ],
        )
        self.assertEqual(
            info.poll_resources,
            [
                types.PollResource(
                    "orders",
                    "/hubs/ecommerce/orders",
                    "id",
                    types.DatesConfiguration("updated", "epoch:s", "GMT", "created", "epoch:s", "GMT"),
                )
            ],
        )
        self.assertEqual(info.instance_finder, types.InstanceFinder("shop.id", "shopId"))
        self.assertEqual(sdk.ConnectorInfo("k", "K", "crm").to_wit().modes, types.Modes(0))

    def test_validate_config_requires_required_keys(self):
        self.assertIsNone(self.api.validate_config([("shop.id", "7")]))
        with self.assertRaises(Err) as refused:
            self.api.validate_config([("shop.id", " ")])
        self.assertEqual(
            refused.exception.value, types.Error_InvalidConfig(types.FieldError("shop.id", "is required"))
        )

    def webhook(self, body, headers=()):
        return types.WebhookRequest("POST", "/events/shop", "", list(headers), body)

    def test_handle_webhook_verifies_then_parses(self):
        ctx = types.Context([("shop.id", "7"), ("shop.secret", "s3cret")], None)
        body = b'{"id": 42, "shopId": 7}'
        sig = sdk.hmac_sha256_base64("s3cret", body)
        events = self.api.handle_webhook(ctx, self.webhook(body, [("X-Sig", sig)]))
        self.assertEqual(
            events,
            [types.EventObject("orders", "42", types.EventType.CREATED, None, '{"id":42,"shopId":7}', "e1")],
        )
        # A bad signature is refused before the body is read.
        with self.assertRaises(Err) as refused:
            self.api.handle_webhook(ctx, self.webhook(b"not json", [("X-Sig", sig)]))
        self.assertEqual(refused.exception.value, types.Error_Unauthorized("X-Sig does not match"))

    def test_errors_become_contract_errors(self):
        ctx = types.Context([("shop.id", "7")], None)
        with self.assertRaises(Err) as refused:
            self.api.handle_webhook(ctx, self.webhook(b"{"))
        self.assertIsInstance(refused.exception.value, types.Error_BadRequest)
        with self.assertRaises(Err) as bug:
            self.api.handle_webhook(ctx, self.webhook(b'{"boom": true}'))
        self.assertEqual(bug.exception.value, types.Error_Internal("KeyError: 'boom'"))

    def test_polling_through_the_export(self):
        target = types.PollTarget("orders", "/hubs/ecommerce/orders", None)
        window = types.PollWindow(1000, 2000)
        with self.assertRaises(Err) as refused:
            self.api.build_poll_request(types.Context([], None), target, window, None)
        self.assertEqual(refused.exception.value, types.Error_Unauthorized("no access token yet"))
        ctx = types.Context([], types.Credentials("tok", None, None))
        req = self.api.build_poll_request(ctx, target, window, None)
        self.assertEqual(req.url, "https://shop.example/orders?since=1000")
        self.assertEqual(req.headers, [("authorization", "Bearer tok")])
        page = self.api.parse_poll_response(
            ctx, target, None, types.HttpResponse(200, [], b'{"items": {"id": 1}}')
        )
        self.assertEqual(page, types.PollPage(['{"id":1}'], None))

    def test_defaults(self):
        ctx = types.Context([], None)
        self.assertIsNone(self.api.build_auth_request(ctx, types.AuthStep_Login()))
        with self.assertRaises(Err) as refused:
            self.api.parse_auth_response(ctx, types.AuthStep_Login(), types.HttpResponse(200, [], b""))
        self.assertIsInstance(refused.exception.value, types.Error_Unsupported)

        class Bare(sdk.Connector):
            def info(self):
                return sdk.ConnectorInfo("bare", "Bare", "crm")

        bare = sdk.export(Bare)()
        with self.assertRaises(Err) as refused:
            bare.handle_webhook(ctx, self.webhook(b"{}"))
        self.assertEqual(
            refused.exception.value, types.Error_Unsupported("this connector does not receive webhooks")
        )
        with self.assertRaises(Err):
            bare.build_poll_request(ctx, types.PollTarget("x", "/x", None), types.PollWindow(0, 1), None)


if __name__ == "__main__":
    unittest.main()
