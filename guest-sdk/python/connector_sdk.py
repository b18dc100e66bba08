"""connector_sdk: write an event connector for connector-host in Python.

A connector is a WebAssembly component that translates between one vendor and the host. It
parses webhooks, builds poll requests and reads poll answers; it never does I/O (the host runs
every HTTP call and keeps every credential). This module is the Python side of the Rust
guest-sdk: subclass `Connector`, then export it from your app module::

    import connector_sdk as sdk

    class Shop(sdk.Connector):
        def info(self):
            return sdk.ConnectorInfo("shop", "Shop", "ecommerce").webhooks()

        def parse_webhook(self, ctx, req):
            body = req.json()
            order_id = sdk.string_at(body, "order.id")
            if order_id is None:
                raise sdk.BadRequest("order.id is missing")
            return [sdk.event("orders", order_id, sdk.EventType.CREATED, fields=body)]

    Api = sdk.export(Shop)

and build it with componentize-py against the contract (`wit/connector.wit`)::

    componentize-py -d wit -w connector componentize app -p . -o shop.wasm

The same code runs under plain CPython for unit tests, against the stub bindings that
`componentize-py -d wit -w connector bindings <dir>` writes (put `<dir>` on `sys.path`);
there `log` lines go to standard error.

The standard-library trap: componentize-py snapshots the interpreter after importing the app
at build time, and the component holds only the standard modules imported by then. A module
first imported inside a function at call time fails with `ModuleNotFoundError`, and so does a
standard module that imports another lazily: `hmac.new` needs `warnings`, which nothing
imports until then, so a connector that calls it fails with `No module named 'warnings'`.
This module imports at its top what its helpers need (`hmac`, `hashlib`, `warnings`, ...);
import every other module your connector uses at the top of your app module, never inside a
function.
"""

# Every import here runs at build time, so the component holds these modules (see above).
# `warnings` is imported for `hmac`, which imports it only when first called.
import base64
import binascii
import datetime
import hashlib
import hmac
import json as _json
import sys
import urllib.parse
import warnings  # noqa: F401  (for hmac, see above)

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import logging as _logging
from wit_world.imports import types

__all__ = [
    # The connector and its export.
    "Connector", "export",
    # Data.
    "Config", "Context", "ConnectorInfo", "ConfigKey", "PollResource", "EventType",
    "WebhookRequest", "HttpRequest", "HttpResponse", "event", "poll_page", "credentials",
    # Errors.
    "ConnectorError", "InvalidConfig", "Unauthorized", "BadRequest", "VendorError",
    "Unsupported", "Internal",
    # JSON paths.
    "at", "string_at", "int_at", "records_at", "loads", "dumps",
    # Forms and query strings.
    "form_encode", "escape", "with_query", "form_parse", "unescape",
    # Signatures.
    "hmac_sha256", "hmac_sha256_base64", "verify_hmac_sha256_base64", "hmac_sha256_hex",
    "verify_hmac_sha256_hex",
    # Dates.
    "rfc3339_from_unix_seconds", "rfc3339_from_ms", "sql_datetime_from_ms",
    "iso_millis_from_ms", "rfc3339_utc",
    # Logging.
    "log",
]

EventType = types.EventType
"""`EventType.CREATED`, `UPDATED`, `DELETED` or `UNKNOWN`."""


# ---------------------------------------------------------------------------------------------
# Errors


class ConnectorError(Exception):
    """A connector's own error; each subclass is one case of the contract's `error`.

    Raise one from any method. Any other exception is a bug in the connector and reaches the
    host as `internal` with the exception's type and message.
    """

    def to_wit(self):
        """The contract's `error` value."""
        raise NotImplementedError


class InvalidConfig(ConnectorError):
    """A configuration value is missing or bad: the host answers 400 naming `key`."""

    def __init__(self, key, reason):
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason

    def to_wit(self):
        return types.Error_InvalidConfig(types.FieldError(self.key, self.reason))


class _Message(ConnectorError):
    _case = None

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def to_wit(self):
        return self._case(self.message)


class Unauthorized(_Message):
    """The vendor refused the credentials, or a webhook's signature does not verify.

    For vendor calls the host authenticates again and retries once; a webhook is refused.
    """

    _case = types.Error_Unauthorized


class BadRequest(_Message):
    """The input (webhook body, vendor answer) is malformed."""

    _case = types.Error_BadRequest


class VendorError(_Message):
    """The vendor answered with an error the connector recognised."""

    _case = types.Error_VendorError


class Unsupported(_Message):
    """The connector does not offer this operation."""

    _case = types.Error_Unsupported


class Internal(_Message):
    """A bug in the connector."""

    _case = types.Error_Internal


# ---------------------------------------------------------------------------------------------
# Configuration and context


class Config:
    """An instance's configuration: string values by key (typed keys still arrive as text:
    `"true"`, `"15"`, JSON text)."""

    def __init__(self, pairs=()):
        if isinstance(pairs, dict):
            pairs = pairs.items()
        self._entries = [(str(k), str(v)) for k, v in pairs]

    def get(self, key, default=None):
        """The value of `key`, or `default` when absent."""
        for k, v in self._entries:
            if k == key:
                return v
        return default

    def non_empty(self, key):
        """The value of `key` without surrounding blanks, or None when absent or blank."""
        value = self.get(key)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def require(self, key):
        """The value of `key`; `InvalidConfig` naming it when absent or blank."""
        value = self.non_empty(key)
        if value is None:
            raise InvalidConfig(key, "is required")
        return value

    def base_url(self, key, default):
        """The value of `key` (or `default`) without trailing `/`. Used for `base.url`."""
        return (self.non_empty(key) or default).rstrip("/")

    def entries(self):
        """All entries, as (key, value) pairs."""
        return list(self._entries)

    def __contains__(self, key):
        return self.get(key) is not None

    def __repr__(self):
        return f"Config({[k for k, _ in self._entries]!r})"  # keys only: values may be secret


class Context:
    """What a call runs with: the configuration and the credentials the host keeps."""

    def __init__(self, config=None, credentials=None):
        self.config = config if isinstance(config, Config) else Config(config or ())
        self.credentials = credentials

    def with_token(self, access_token):
        """This context with credentials holding `access_token` (for tests)."""
        return Context(self.config, credentials(access_token))

    def access_token(self):
        """The access token; `Unauthorized` (the host then authenticates) when there is none."""
        token = self.credentials.access_token if self.credentials else ""
        if not token:
            raise Unauthorized("no access token yet")
        return token


def credentials(access_token, refresh_token=None, expires_in_secs=None):
    """Vendor credentials, as `parse_auth_response` returns them."""
    return types.Credentials(access_token, refresh_token, expires_in_secs)


# ---------------------------------------------------------------------------------------------
# What a connector is


class ConfigKey:
    """A configuration key the connector reads: `ConfigKey.required(key, description)` or
    `ConfigKey.optional(...)`, text unless a type method says otherwise. The host checks the
    type and presence before any call and answers 400 naming the key, so a connector need not
    check them again; values still arrive as text."""

    def __init__(self, key, description, required):
        self._wit = types.ConfigKey(key, description, types.ValueType.TEXT, required)

    @classmethod
    def required(cls, key, description):
        """A key an instance cannot work without."""
        return cls(key, description, True)

    @classmethod
    def optional(cls, key, description):
        """A key an instance may leave out."""
        return cls(key, description, False)

    def _typed(self, value_type):
        self._wit.value_type = value_type
        return self

    def secret(self):
        """A non-empty string the host masks in every answer and log."""
        return self._typed(types.ValueType.SECRET)

    def boolean(self):
        """`true` or `false`."""
        return self._typed(types.ValueType.BOOLEAN)

    def integer(self):
        """A whole number within a signed 64-bit integer."""
        return self._typed(types.ValueType.INTEGER)

    def url(self):
        """An absolute `http` or `https` URL with a host."""
        return self._typed(types.ValueType.URL)

    def json(self):
        """Any JSON value; it reaches the connector as JSON text."""
        return self._typed(types.ValueType.JSON)

    def to_wit(self):
        """The contract's `config-key`."""
        return self._wit


class PollResource:
    """A default poll resource: records with an id at `id_field` and an updated date at
    `updated_field` written as `date_format` (Java SimpleDateFormat, `epoch` or `epoch:s`)."""

    def __init__(self, name, url, id_field, updated_field, date_format):
        dates = types.DatesConfiguration(updated_field, date_format, None, None, None, None)
        self._wit = types.PollResource(name, url, id_field, dates)

    def created(self, created_field):
        """Adds the creation date, written in the same format as the updated date."""
        dates = self._wit.dates
        dates.created_date_field = created_field
        dates.created_date_format = dates.updated_date_format
        return self

    def timezone(self, zone):
        """Sets the time zone of dates written without an offset."""
        self._wit.dates.updated_date_timezone = zone
        self._wit.dates.created_date_timezone = zone
        return self

    def to_wit(self):
        """The contract's `poll-resource`."""
        return self._wit


class ConnectorInfo:
    """What a connector is and needs: `ConnectorInfo(key, display_name, hub)`, then the
    builder methods."""

    def __init__(self, key, display_name, hub):
        self._wit = types.ConnectorInfo(key, display_name, hub, types.Modes(0), [], [], None)

    def webhooks(self):
        """Declares webhook support."""
        self._wit.modes |= types.Modes.WEBHOOKS
        return self

    def polling(self):
        """Declares polling support."""
        self._wit.modes |= types.Modes.POLLING
        return self

    def key(self, config_key):
        """Adds a `ConfigKey`."""
        self._wit.config_keys.append(config_key.to_wit())
        return self

    def resource(self, resource):
        """Adds a default `PollResource`."""
        self._wit.poll_resources.append(resource.to_wit())
        return self

    def instance_finder(self, config_key, payload_path):
        """Finds a webhook's instance: `config_key` in the configuration equals the value at
        `payload_path` (dotted) in the webhook body."""
        self._wit.instance_finder = types.InstanceFinder(config_key, payload_path)
        return self

    def to_wit(self):
        """The contract's `connector-info`."""
        return self._wit


# ---------------------------------------------------------------------------------------------
# Requests, answers, events


def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class WebhookRequest:
    """A webhook as it reached the host: `method`, `path`, `query` (without `?`), `headers`
    (name/value pairs without hop-by-hop ones) and the exact `body` bytes."""

    def __init__(self, method="POST", path="/", query="", headers=(), body=b""):
        self.method = method
        self.path = path
        self.query = query
        self.headers = list(headers)
        self.body = bytes(body)

    @classmethod
    def from_wit(cls, req):
        return cls(req.method, req.path, req.query, req.headers, req.body)

    def header(self, name):
        """The first header named `name` (case-insensitive), or None."""
        return _header(self.headers, name)

    def query_param(self, name):
        """The first query parameter named `name`, percent-decoded, or None."""
        for k, v in form_parse(self.query):
            if k == name:
                return v
        return None

    def is_form(self):
        """True when the body is `application/x-www-form-urlencoded`."""
        return (self.header("content-type") or "").startswith("application/x-www-form-urlencoded")

    def text(self):
        """The body as text; `BadRequest` when it is not UTF-8."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("body is not UTF-8") from None

    def json(self):
        """The body parsed as JSON, or a form body's fields as a dict of strings;
        `BadRequest` when it is neither."""
        if self.is_form():
            return dict(form_parse(self.text()))
        return loads(self.body, BadRequest, "body")

    def fields_text(self):
        """The body as vendor fields for `event(fields=...)`: a JSON body as sent, a form
        body as a JSON object of its fields."""
        if self.is_form():
            return dumps(self.json())
        return self.text()


class HttpRequest:
    """An HTTP request the host runs for the connector."""

    def __init__(self, method, url, headers=(), body=None):
        self.method = method
        self.url = url
        self.headers = list(headers)
        self.body = body

    @classmethod
    def get(cls, url):
        """A `GET` of `url` without headers."""
        return cls("GET", url)

    @classmethod
    def post_form(cls, url, fields):
        """A `POST` of a form body made of `fields` (pairs or a dict)."""
        return cls(
            "POST",
            url,
            [("content-type", "application/x-www-form-urlencoded")],
            form_encode(fields).encode(),
        )

    def header(self, name, value):
        """Adds a header; returns the request."""
        self.headers.append((name, value))
        return self

    def to_wit(self):
        return types.HttpRequest(self.method, self.url, self.headers, self.body)


class HttpResponse:
    """The vendor's answer: `status`, `headers`, `body` bytes."""

    def __init__(self, status, headers=(), body=b""):
        self.status = status
        self.headers = list(headers)
        self.body = bytes(body)

    @classmethod
    def from_wit(cls, resp):
        return cls(resp.status, resp.headers, resp.body)

    def header(self, name):
        """The first header named `name` (case-insensitive), or None."""
        return _header(self.headers, name)

    def json(self):
        """The body parsed as JSON; `VendorError` when it is not JSON."""
        return loads(self.body, VendorError, "vendor answer")


def event(object_type, object_id, event_type, date=None, fields=None, event_id=None):
    """A standardized event object.

    `date` is RFC 3339 in UTC (see `rfc3339_utc`); `fields` the object's vendor fields, as a
    JSON value or as JSON text you already have (the body as sent, say); `event_id` the
    vendor's id of this event, when it gives one (the host then recognizes a webhook it
    already accepted by these ids).
    """
    if fields is None:
        fields = "{}"
    elif not isinstance(fields, str):
        fields = dumps(fields)
    return types.EventObject(object_type, str(object_id), event_type, date, fields, event_id)


def poll_page(records, next_cursor=None):
    """One page of poll results: the vendor's records (JSON values) and the next page's cursor
    (None on the last page)."""
    return types.PollPage([dumps(r) for r in records], next_cursor)


# ---------------------------------------------------------------------------------------------
# JSON by dotted paths


def loads(data, error=BadRequest, what="body"):
    """`data` (bytes or text) parsed as JSON; `error(...)` naming `what` when it is not."""
    try:
        return _json.loads(data)
    except (ValueError, RecursionError) as e:
        raise error(f"{what} is not valid JSON: {e}") from None


def dumps(value):
    """`value` as compact JSON text."""
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def at(value, path):
    """The value at a dotted `path` (`a.b.0.c`: numeric segments index lists), or None."""
    if path == "":
        return value
    for seg in path.split("."):
        if isinstance(value, dict):
            value = value.get(seg)
        elif isinstance(value, list) and seg.isdigit():
            i = int(seg)
            value = value[i] if i < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def string_at(value, path):
    """The value at `path` as a string: strings as they are, numbers and booleans printed
    (as JSON prints them: `true`, `12`); None for null, missing, objects and lists."""
    v = at(value, path)
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, int, float)):
        return _json.dumps(v)
    return None


def int_at(value, path):
    """The value at `path` as an integer, from a whole JSON number or a numeric string."""
    v = at(value, path)
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def records_at(value, path):
    """The records at `path`: a list's items, a lone object as one record (as Pardot answers
    when one record matches), nothing for null or missing."""
    v = at(value, path)
    if isinstance(v, list):
        return v
    if isinstance(v, dict):
        return [v]
    return []


# ---------------------------------------------------------------------------------------------
# Query strings and form bodies


def escape(s):
    """Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`)."""
    return urllib.parse.quote(s, safe="-._~")


def form_encode(pairs):
    """Encodes pairs (or a dict) as `a=1&b=x%20y` (spaces as `%20`)."""
    if isinstance(pairs, dict):
        pairs = pairs.items()
    return "&".join(f"{escape(str(k))}={escape(str(v))}" for k, v in pairs)


def with_query(url, pairs):
    """`url` with encoded pairs appended after `?` or `&`."""
    encoded = form_encode(pairs)
    if not encoded:
        return url
    return f"{url}{'&' if '?' in url else '?'}{encoded}"


def form_parse(s):
    """Decoded pairs of `a=1&b=x+y` (`+` is a space; empty parts skipped)."""
    return urllib.parse.parse_qsl(s, keep_blank_values=True, errors="replace")


def unescape(s):
    """Decodes `%XX` escapes and `+`; invalid escapes are kept as written."""
    return urllib.parse.unquote_plus(s, errors="replace")


# ---------------------------------------------------------------------------------------------
# Signatures


def _bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def hmac_sha256(key, data):
    """HMAC-SHA256 of `data` under `key` (bytes or text, text as UTF-8): 32 bytes."""
    return hmac.new(_bytes(key), _bytes(data), hashlib.sha256).digest()


def hmac_sha256_base64(key, data):
    """Standard base64 of HMAC-SHA256 of `data` under `key`."""
    return base64.b64encode(hmac_sha256(key, data)).decode("ascii")


def verify_hmac_sha256_base64(key, data, signature):
    """True when `signature` (standard base64) is the HMAC-SHA256 of `data` under `key`; the
    comparison takes the same time wherever the bytes differ."""
    if signature is None:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, hmac_sha256(key, data))


def hmac_sha256_hex(key, data):
    """Lowercase hex of HMAC-SHA256 of `data` under `key`."""
    return hmac_sha256(key, data).hex()


def verify_hmac_sha256_hex(key, data, signature):
    """True when `signature` (hex, either case) is the HMAC-SHA256 of `data` under `key`; the
    comparison takes the same time wherever the bytes differ. Strip a vendor's prefix (such
    as GitHub's `sha256=`) first."""
    if signature is None:
        return False
    try:
        given = bytes.fromhex(signature.strip())
    except ValueError:
        return False
    return hmac.compare_digest(given, hmac_sha256(key, data))


# ---------------------------------------------------------------------------------------------
# Dates (all UTC; never read the clock: take time from the poll window or the payload)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _from_ms(ms):
    try:
        return _EPOCH + datetime.timedelta(milliseconds=ms)
    except OverflowError:
        raise BadRequest(f"timestamp {ms} ms is out of range") from None


def _rfc3339(t):
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def rfc3339_from_unix_seconds(secs):
    """RFC 3339 in UTC, e.g. `2024-01-01T00:00:00Z`, from unix seconds."""
    return rfc3339_from_ms(secs * 1000)


def rfc3339_from_ms(ms):
    """RFC 3339 in UTC from unix milliseconds (a fraction only when there is one)."""
    return _rfc3339(_from_ms(ms))


def sql_datetime_from_ms(ms):
    """`yyyy-MM-dd HH:mm:ss` in UTC, as Pardot's `updated_after` takes it."""
    return _from_ms(ms).strftime("%Y-%m-%d %H:%M:%S")


def iso_millis_from_ms(ms):
    """`yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC, as Keap's `since` takes it."""
    t = _from_ms(ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond // 1000:03d}Z"


def rfc3339_utc(text):
    """A vendor's ISO 8601 date with an offset (`2024-01-01T12:00:00-05:00`, `...Z`, with or
    without a fraction) as RFC 3339 in UTC (`2024-01-01T17:00:00Z`). A date without an offset
    is read as UTC. Fractions past microseconds are cut. `BadRequest` when it is no date."""
    if not isinstance(text, str):
        raise BadRequest(f"{text!r} is not a date")
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # Python reads at most 6 fractional digits; vendors send up to 9 (nanoseconds).
    dot = s.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(s) and s[end].isdigit():
            end += 1
        s = s[: dot + 1] + s[dot + 1 : end][:6] + s[end:]
    try:
        t = datetime.datetime.fromisoformat(s)
    except ValueError:
        raise BadRequest(f"{text!r} is not an ISO 8601 date") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return _rfc3339(t.astimezone(datetime.timezone.utc))


# ---------------------------------------------------------------------------------------------
# Logging


class log:
    """Lines for the host's log, tagged there with the connector key; under plain CPython
    (unit tests) they go to standard error. Never log secrets."""

    @staticmethod
    def _write(level, message):
        try:
            _logging.log(level, message)
        except NotImplementedError:  # the stub bindings: not inside a component
            print(f"[{level.name}] {message}", file=sys.stderr)

    @staticmethod
    def debug(message):
        log._write(_logging.Level.DEBUG, message)

    @staticmethod
    def info(message):
        log._write(_logging.Level.INFO, message)

    @staticmethod
    def warn(message):
        log._write(_logging.Level.WARN, message)

    @staticmethod
    def error(message):
        log._write(_logging.Level.ERROR, message)


# ---------------------------------------------------------------------------------------------
# The connector


class Connector:
    """Subclass and override. Every method but `info` has a default; `ctx` is a `Context`,
    `req` a `WebhookRequest`, `resp` an `HttpResponse`, `target` the contract's `poll-target`
    (`name`, `url` with templates rendered, `page_size`), `window` its `poll-window`
    (`since_ms`, `until_ms`), `step` its `auth-step` (`types.AuthStep_Login()`,
    `AuthStep_ExchangeCode(code)`, `AuthStep_Refresh(token)`). Raise a `ConnectorError` to
    fail a call. The host gives every call a fresh instance: keep nothing between calls.
    """

    def info(self):
        """A `ConnectorInfo`: key, display name, hub, modes, keys, resources."""
        raise NotImplementedError("a connector must describe itself in info()")

    def validate_config(self, config):
        """Checks a `Config`. The default checks that every required key is present and
        not blank (the host checks types)."""
        for key in _wit(self.info()).config_keys:
            if key.required:
                config.require(key.key)

    def verify_webhook(self, ctx, req):
        """Verifies a webhook's vendor signature; raise `Unauthorized` when it does not.
        The default accepts every webhook."""

    def parse_webhook(self, ctx, req):
        """A verified webhook as a list of `event(...)` objects."""
        raise Unsupported("this connector does not receive webhooks")

    def handle_webhook(self, ctx, req):
        """`verify_webhook`, then `parse_webhook`: what the host calls for each webhook."""
        self.verify_webhook(ctx, req)
        return self.parse_webhook(ctx, req)

    def build_auth_request(self, ctx, step):
        """The vendor request of an authentication step (an `HttpRequest`), or None when
        the connector needs no such step (the default)."""
        return None

    def parse_auth_response(self, ctx, step, resp):
        """The vendor's answer to an authentication step, as `credentials(...)`."""
        raise Unsupported("this connector has no authentication step")

    def build_poll_request(self, ctx, target, window, cursor):
        """The vendor request (an `HttpRequest`) for one page of a poll; `cursor` is None
        for the first page."""
        raise Unsupported("this connector does not poll")

    def parse_poll_response(self, ctx, target, cursor, resp):
        """One page of a poll answer, as `poll_page(records, next_cursor)`."""
        raise Unsupported("this connector does not poll")


def _call(method, *args):
    """Runs a connector method for the host: its errors become the contract's `error`."""
    try:
        return method(*args)
    except ConnectorError as e:
        raise Err(e.to_wit()) from None
    except Err:
        raise
    except Exception as e:  # a bug in the connector: say which, without a traceback
        raise Err(types.Error_Internal(f"{type(e).__name__}: {e}")) from None


def _wit(value):
    return value.to_wit() if hasattr(value, "to_wit") else value


def _context(ctx):
    return Context(Config(ctx.config), ctx.credentials)


def export(connector_class):
    """The class componentize-py exports as the contract's `api`, from a `Connector`
    subclass. Bind it to the name `Api` at the top of the app module:
    `Api = connector_sdk.export(MyConnector)`."""
    connector = connector_class()

    class Api(_exports.Api):
        def info(self):
            return _call(lambda: _wit(connector.info()))

        def validate_config(self, config):
            _call(connector.validate_config, Config(config))

        def handle_webhook(self, ctx, request):
            return _call(connector.handle_webhook, _context(ctx), WebhookRequest.from_wit(request))

        def build_auth_request(self, ctx, step):
            return _call(lambda: _wit(connector.build_auth_request(_context(ctx), step)))

        def parse_auth_response(self, ctx, step, response):
            return _call(
                connector.parse_auth_response, _context(ctx), step, HttpResponse.from_wit(response)
            )

        def build_poll_request(self, ctx, target, window, cursor):
            return _call(lambda: _wit(connector.build_poll_request(_context(ctx), target, window, cursor)))

        def parse_poll_response(self, ctx, target, cursor, response):
            return _call(
                connector.parse_poll_response,
                _context(ctx),
                target,
                cursor,
                HttpResponse.from_wit(response),
            )

    Api.__qualname__ = Api.__name__ = "Api"
    return Api
