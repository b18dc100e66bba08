// connector-sdk.js: the JavaScript helpers of a connector for contract
// `openconnectors:connector@0.2.0` (wit/connector.wit), built with componentize-js.
//
// It mirrors the Rust SDK (guest-sdk/src): JSON dotted paths, form bodies, HMAC-SHA256
// verification (hex and base64, constant time), vendor dates to RFC 3339 UTC, typed errors
// mapping to the WIT `error` variant, config keys and `defineConnector`, which turns an
// author's `verify` + `parse` into the `api` export.
//
// It imports nothing, so `node --test` runs it as is; the component's entry (main.js)
// hands it the host's `log` with `setLogger`. HMAC runs on Web Crypto (`crypto.subtle`),
// which both Node 20 and componentize-js's engine (StarlingMonkey) provide: the signature
// helpers return promises, and `handle-webhook` may be async (componentize-js runs the
// event loop inside the call).

// ---------------------------------------------------------------------------------------
// Errors: the WIT `error` variant.

/// A connector error: `tag` is the WIT case (`invalid-config`, `unauthorized`,
/// `bad-request`, `vendor-error`, `unsupported`, `internal`). componentize-js turns a
/// thrown value with a `payload` into the `err` of a `result`.
export class ConnectorError extends Error {
  constructor(tag, val) {
    super(typeof val === 'string' ? `${tag}: ${val}` : `${tag}: ${val.key}: ${val.reason}`);
    this.name = 'ConnectorError';
    this.tag = tag;
    this.payload = { tag, val };
  }
}

/// A configuration value is missing or bad (the host answers 400 naming `key`).
export const invalidConfig = (key, reason) =>
  new ConnectorError('invalid-config', { key, reason });
/// The signature does not verify, or the vendor refused the credentials.
export const unauthorized = (message) => new ConnectorError('unauthorized', message);
/// The input (webhook body, vendor answer) is malformed.
export const badRequest = (message) => new ConnectorError('bad-request', message);
/// The vendor answered with an error the connector recognised.
export const vendorError = (message) => new ConnectorError('vendor-error', message);
/// The connector does not offer this operation.
export const unsupported = (message) => new ConnectorError('unsupported', message);
/// A bug in the connector.
export const internal = (message) => new ConnectorError('internal', message);

/// Any thrown value as a ConnectorError: a ConnectorError as it is, anything else (a
/// TypeError of a bug) as `internal` with its message.
export function asConnectorError(e) {
  if (e instanceof ConnectorError) return e;
  return internal(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
}

// ---------------------------------------------------------------------------------------
// Logging: the host's `logging.log`, given by the entry module.

let sink = (level, message) => console.error(`[${level}] ${message}`);

/// Sends log lines to `log(level, message)` (main.js passes the WIT import).
export function setLogger(log) {
  sink = log;
}

/// Log lines; the host tags each with the connector key. Never log a secret.
export const log = {
  debug: (m) => sink('debug', String(m)),
  info: (m) => sink('info', String(m)),
  warn: (m) => sink('warn', String(m)),
  error: (m) => sink('error', String(m)),
};

// ---------------------------------------------------------------------------------------
// Bytes and text.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/// A string as UTF-8 bytes; bytes as they are.
export function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return Uint8Array.from(data);
  return encoder.encode(String(data));
}

/// UTF-8 bytes as a string (malformed sequences become U+FFFD).
export function textOf(bytes) {
  return typeof bytes === 'string' ? bytes : decoder.decode(bytesOf(bytes));
}

/// Lowercase hex of bytes.
export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/// Bytes of a hex string (either case), or null when it is not hex.
export function fromHex(text) {
  const s = String(text).trim();
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/// Standard base64 (with padding) of bytes.
export function toBase64(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return out;
}

/// Bytes of standard base64 (padding optional), or null when it is not base64.
export function fromBase64(text) {
  const s = String(text).trim().replace(/=+$/, '');
  if (s.length % 4 === 1 || !/^[A-Za-z0-9+/]*$/.test(s)) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (const c of s) {
    acc = (acc << 6) | B64.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/// True when two byte arrays are equal, in a time that depends on their length only.
export function timingSafeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// ---------------------------------------------------------------------------------------
// signature: HMAC-SHA256, as vendors sign their webhooks.

async function hmacKey(key) {
  return crypto.subtle.importKey('raw', bytesOf(key), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
}

/// HMAC-SHA256 of `data` under `key` (strings are UTF-8), as a Uint8Array of 32 bytes.
export async function hmacSha256(key, data) {
  return new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(key), bytesOf(data)));
}

/// Lowercase hex of HMAC-SHA256 of `data` under `key`.
export async function hmacSha256Hex(key, data) {
  return toHex(await hmacSha256(key, data));
}

/// Standard base64 of HMAC-SHA256 of `data` under `key`.
export async function hmacSha256Base64(key, data) {
  return toBase64(await hmacSha256(key, data));
}

/// True when `signature` (hex, either case) is HMAC-SHA256 of `data` under `key`; the
/// comparison takes the same time wherever the bytes differ.
export async function verifyHmacSha256Hex(key, data, signature) {
  const given = fromHex(signature ?? '');
  return given !== null && timingSafeEqual(await hmacSha256(key, data), given);
}

/// True when `signature` (standard base64) is HMAC-SHA256 of `data` under `key`;
/// constant-time comparison.
export async function verifyHmacSha256Base64(key, data, signature) {
  const given = fromBase64(signature ?? '');
  return given !== null && timingSafeEqual(await hmacSha256(key, data), given);
}

// ---------------------------------------------------------------------------------------
// json: dotted paths such as `data.orderId` or `items.0.id`.

/// The value at a dotted `path` (numeric segments index arrays); undefined when missing.
export function at(value, path) {
  if (path === '') return value;
  let v = value;
  for (const seg of path.split('.')) {
    if (Array.isArray(v)) {
      if (!/^\d+$/.test(seg)) return undefined;
      v = v[Number(seg)];
    } else if (v !== null && typeof v === 'object' && Object.hasOwn(v, seg)) {
      v = v[seg];
    } else {
      return undefined;
    }
  }
  return v;
}

/// The value at `path` as a string: strings as they are, numbers and booleans printed;
/// undefined for null, missing, objects and arrays.
export function stringAt(value, path) {
  const v = at(value, path);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return undefined;
}

/// The value at `path` as a whole number, from a JSON number or a numeric string.
export function intAt(value, path) {
  const v = at(value, path);
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) {
    const n = Number(v.trim());
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

/// The records at `path`: an array's items, a lone object as one record, nothing for
/// null or missing.
export function recordsAt(value, path) {
  const v = at(value, path);
  if (Array.isArray(v)) return v;
  if (v !== null && typeof v === 'object') return [v];
  return [];
}

/// Bytes or text parsed as JSON; a `bad-request` error when it is not JSON.
export function parseJson(data, what = 'the body') {
  try {
    return JSON.parse(textOf(data));
  } catch (e) {
    throw badRequest(`${what} is not JSON: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// form: query strings and application/x-www-form-urlencoded bodies.

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`), UTF-8.
export function escape(s) {
  let out = '';
  for (const b of bytesOf(String(s))) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/// Pairs (`[[k, v], …]` or an object) encoded as `a=1&b=x%20y`.
export function encode(pairs) {
  const list = Array.isArray(pairs) ? pairs : Object.entries(pairs);
  return list.map(([k, v]) => `${escape(k)}=${escape(v)}`).join('&');
}

/// `url` with encoded pairs appended after `?` or `&`.
export function withQuery(url, pairs) {
  const q = encode(pairs);
  if (q === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}${q}`;
}

/// Decodes `%XX` escapes and `+` (a space); invalid escapes are kept as written,
/// malformed UTF-8 becomes U+FFFD.
export function unescape(s) {
  const text = String(s).replace(/\+/g, ' ');
  const bytes = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '%' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const ch = String.fromCodePoint(text.codePointAt(i));
      bytes.push(...encoder.encode(ch));
      i += ch.length;
    }
  }
  return decoder.decode(Uint8Array.from(bytes));
}

/// `a=1&b=x+y` as decoded pairs `[[k, v], …]`, empty parts skipped.
export function parseForm(s) {
  return String(s)
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? [unescape(part), ''] : [unescape(part.slice(0, eq)), unescape(part.slice(eq + 1))];
    });
}

// ---------------------------------------------------------------------------------------
// dates: vendor dates as RFC 3339 in UTC. No clock: dates come from the payload.

const YEAR0_MS = -62167219200000; // 0000-01-01T00:00:00Z
const YEAR10000_MS = 253402300800000; // 10000-01-01T00:00:00Z

function utc(ms) {
  if (!Number.isFinite(ms) || !Number.isInteger(ms)) {
    throw badRequest(`timestamp ${ms} ms is not a whole number`);
  }
  if (ms < YEAR0_MS || ms >= YEAR10000_MS) {
    throw badRequest(`timestamp ${ms} ms cannot be formatted`);
  }
  return new Date(ms).toISOString(); // yyyy-MM-ddTHH:mm:ss.SSSZ for years 0..9999
}

/// RFC 3339 in UTC, e.g. `2024-01-01T00:00:00Z`, from unix milliseconds (milliseconds
/// written only when not zero).
export function rfc3339FromMs(ms) {
  return utc(ms).replace('.000Z', 'Z');
}

/// RFC 3339 in UTC from unix seconds.
export function rfc3339FromUnixSeconds(secs) {
  return rfc3339FromMs(secs * 1000);
}

/// `yyyy-MM-dd HH:mm:ss` in UTC.
export function sqlDatetimeFromMs(ms) {
  return utc(ms).slice(0, 19).replace('T', ' ');
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC.
export function isoMillisFromMs(ms) {
  return utc(ms);
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})$/;

/// An ISO 8601 / RFC 3339 date with an offset (`2019-05-15T15:20:33Z`,
/// `2019-05-15T11:20:33-04:00`, `…+0200`) as RFC 3339 in UTC; a `bad-request` error
/// for anything else (a date without an offset is ambiguous).
export function rfc3339FromIso(text) {
  const m = ISO.exec(String(text).trim());
  if (!m) throw badRequest(`\`${text}\` is not a date with an offset`);
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, Number(frac.padEnd(3, '0').slice(0, 3)));
  if (+y < 100) ms = new Date(ms).setUTCFullYear(+y);
  const check = new Date(ms);
  if (check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || +h > 23 || +mi > 59 || +s > 59) {
    throw badRequest(`\`${text}\` is not a valid date`);
  }
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60000;
  }
  return rfc3339FromMs(ms);
}

// ---------------------------------------------------------------------------------------
// Configuration.

/// An instance configuration (WIT `config`: a list of [key, value] string pairs).
export class Config {
  constructor(pairs = []) {
    this.pairs = Array.isArray(pairs) ? pairs.map(([k, v]) => [k, v]) : Object.entries(pairs);
  }
  /// The value of `key`, or undefined.
  get(key) {
    const found = this.pairs.find(([k]) => k === key);
    return found ? found[1] : undefined;
  }
  /// The value of `key` unless missing or blank.
  nonEmpty(key) {
    const v = this.get(key);
    return v !== undefined && v.trim() !== '' ? v : undefined;
  }
  /// The value of `key`, or an `invalid-config` error naming it.
  require(key) {
    const v = this.nonEmpty(key);
    if (v === undefined) throw invalidConfig(key, 'is required');
    return v;
  }
  /// A base URL without a trailing `/`, or `fallback`.
  baseUrl(key, fallback) {
    return (this.nonEmpty(key) ?? fallback).replace(/\/+$/, '');
  }
  /// The [key, value] pairs.
  entries() {
    return this.pairs;
  }
}

/// A configuration key: `required(key, description, type)` or `optional(…)`, where type
/// is one of `text` (default), `boolean`, `integer`, `url`, `json`, `secret`. The host
/// checks types and required keys before any call.
const VALUE_TYPES = ['text', 'boolean', 'integer', 'url', 'json', 'secret'];
function configKey(key, description, valueType, isRequired) {
  if (!VALUE_TYPES.includes(valueType)) {
    throw new TypeError(`config key ${key}: value type must be one of ${VALUE_TYPES.join(', ')}`);
  }
  return { key, description, valueType, required: isRequired };
}
export const required = (key, description, valueType = 'text') =>
  configKey(key, description, valueType, true);
export const optional = (key, description, valueType = 'text') =>
  configKey(key, description, valueType, false);

// ---------------------------------------------------------------------------------------
// Requests, responses, events.

/// What a call runs with: `config` (a Config) and the host-kept `credentials`, if any.
export class Context {
  constructor(config = [], credentials = undefined) {
    this.config = config instanceof Config ? config : new Config(config);
    this.credentials = credentials;
  }
  /// The access token, or `unauthorized` (which makes the host authenticate).
  accessToken() {
    if (!this.credentials) throw unauthorized('no access token yet');
    return this.credentials.accessToken;
  }
}

function headerOf(headers, name) {
  const lower = name.toLowerCase();
  const found = headers.find(([k]) => k.toLowerCase() === lower);
  return found ? found[1] : undefined;
}

/// A webhook as it reached the host: `method`, `path`, `query`, `headers` ([name, value]
/// pairs) and `body` (the exact bytes, a Uint8Array).
export class Webhook {
  constructor({ method = 'POST', path = '/', query = '', headers = [], body = new Uint8Array() }) {
    this.method = method;
    this.path = path;
    this.query = query;
    this.headers = Array.isArray(headers) ? headers : Object.entries(headers);
    this.body = bytesOf(body);
  }
  /// A header's value, by case-insensitive name.
  header(name) {
    return headerOf(this.headers, name);
  }
  /// A query parameter's decoded value.
  queryParam(name) {
    const found = parseForm(this.query).find(([k]) => k === name);
    return found ? found[1] : undefined;
  }
  /// The body as text.
  text() {
    return textOf(this.body);
  }
  /// The body as JSON; a form body (`application/x-www-form-urlencoded`) as an object.
  json() {
    const type = this.header('content-type') ?? '';
    if (type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return Object.fromEntries(parseForm(this.text()));
    }
    return parseJson(this.body);
  }
}

/// A vendor's answer to an HTTP request the host ran (`status`, `headers`, `body`).
export class HttpResponse {
  constructor({ status, headers = [], body = new Uint8Array() }) {
    this.status = status;
    this.headers = headers;
    this.body = bytesOf(body);
  }
  header(name) {
    return headerOf(this.headers, name);
  }
  text() {
    return textOf(this.body);
  }
  json() {
    return parseJson(this.body, 'the answer');
  }
}

/// An HTTP request for the host to run: `httpRequest('GET', url, {headers, body})`.
export function httpRequest(method, url, { headers = [], body = undefined } = {}) {
  return {
    method,
    url,
    headers: Array.isArray(headers) ? headers : Object.entries(headers),
    body: body === undefined ? undefined : bytesOf(body),
  };
}

const EVENT_TYPES = ['created', 'updated', 'deleted', 'unknown'];

/// A standardized event object. `eventType`: `created`, `updated`, `deleted` or `unknown`;
/// `fields`: the vendor object (any JSON value, or JSON text); `date`: RFC 3339 UTC;
/// `eventId`: the vendor's delivery/event id, for idempotent intake.
export function event(objectType, objectId, eventType, { fields = {}, date, eventId } = {}) {
  if (!EVENT_TYPES.includes(eventType)) {
    throw internal(`event type must be one of ${EVENT_TYPES.join(', ')}, not ${eventType}`);
  }
  if (objectId === undefined || objectId === null || objectId === '') {
    throw badRequest(`the ${objectType} object has no id`);
  }
  return {
    objectType,
    objectId: String(objectId),
    eventType,
    date: date ?? undefined,
    fields: typeof fields === 'string' ? fields : JSON.stringify(fields),
    eventId: eventId ?? undefined,
  };
}

// ---------------------------------------------------------------------------------------
// Warm-up: a sample call at build time.

/// Runs `validate-config` and `handle-webhook` once on a sample (`{ctx, request}`: a context
/// with a config, and a webhook request signed with the config's secret), and returns the
/// events. Await it at the top level of main.js: componentize-js snapshots the engine after
/// the top level ran (promises settle, Web Crypto works), so the functions a call runs, and
/// Web Crypto's set-up, are compiled and ready in the snapshot instead of in each fresh
/// instance: a call costs a half to a third. Throws when the sample does not verify and
/// parse (the build fails), so a stale sample is noticed. The sample is built into the
/// component: never a real secret or customer data.
export async function warmUp(api, { ctx, request }) {
  try {
    await api.validateConfig(ctx.config);
    return await api.handleWebhook(ctx, request);
  } catch (e) {
    throw new Error(`warm-up: the sample webhook failed: ${e?.message ?? e}`);
  }
}

// ---------------------------------------------------------------------------------------
// defineConnector: the `api` export from an author's definition.

/// The connector's `api` export (the WIT interface `api`, camelCase) from:
///
/// - `key`, `displayName`, `hub`, `webhooks` (default true), `polling` (default false),
///   `configKeys` (`required(…)`/`optional(…)`), `instanceFinder` (`{configKey,
///   payloadPath}`), `pollResources` (WIT `poll-resource` records);
/// - `verify(ctx, webhook)`: throws `unauthorized(…)` when the signature does not verify
///   (may be async); runs first, before anything else reads the body;
/// - `parse(ctx, webhook)`: returns the events (`event(…)`), may be async;
/// - optional `validate(config)`, `buildAuthRequest`, `parseAuthResponse`,
///   `buildPollRequest`, `parsePollResponse` (given a Context and, for answers, an
///   HttpResponse); those left out answer `unsupported`.
///
/// Anything thrown that is not a ConnectorError becomes `internal`.
export function defineConnector(def) {
  for (const f of ['key', 'displayName', 'hub']) {
    if (typeof def[f] !== 'string' || def[f] === '') throw new TypeError(`defineConnector: ${f} is required`);
  }
  const info = {
    key: def.key,
    displayName: def.displayName,
    hub: def.hub,
    modes: { webhooks: def.webhooks ?? true, polling: def.polling ?? false },
    configKeys: def.configKeys ?? [],
    pollResources: def.pollResources ?? [],
    instanceFinder: def.instanceFinder ?? undefined,
  };
  // Synchronous unless the author's function returns a promise (componentize-js then
  // runs the event loop inside the call).
  const guard = (f) => {
    let r;
    try {
      r = f();
    } catch (e) {
      throw asConnectorError(e);
    }
    if (r && typeof r.then === 'function') {
      return r.then(undefined, (e) => {
        throw asConnectorError(e);
      });
    }
    return r;
  };
  const absent = (name) => () => {
    throw unsupported(`${def.key} does not support ${name}`);
  };
  const ctxOf = (ctx) => new Context(ctx.config, ctx.credentials);
  return {
    info: () => info,
    validateConfig: (config) => guard(() => def.validate?.(new Config(config))),
    // Verify first: a signature that does not verify is `unauthorized` before any other
    // error (a bad body, a missing field).
    handleWebhook: (ctx, request) =>
      guard(async () => {
        const c = ctxOf(ctx);
        const w = new Webhook(request);
        if (!def.verify) throw internal(`${def.key} defines no verify`);
        await def.verify(c, w);
        if (!def.parse) throw unsupported(`${def.key} does not parse webhooks`);
        return await def.parse(c, w);
      }),
    buildAuthRequest: (ctx, step) =>
      guard(() => (def.buildAuthRequest ?? absent('authentication'))(ctxOf(ctx), step)),
    parseAuthResponse: (ctx, step, response) =>
      guard(() =>
        (def.parseAuthResponse ?? absent('authentication'))(ctxOf(ctx), step, new HttpResponse(response)),
      ),
    buildPollRequest: (ctx, target, window, cursor) =>
      guard(() => (def.buildPollRequest ?? absent('polling'))(ctxOf(ctx), target, window, cursor)),
    parsePollResponse: (ctx, target, cursor, response) =>
      guard(() =>
        (def.parsePollResponse ?? absent('polling'))(ctxOf(ctx), target, cursor, new HttpResponse(response)),
      ),
  };
}
