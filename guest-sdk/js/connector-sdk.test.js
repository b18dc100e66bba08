// Unit tests of connector-sdk.js: `node --test guest-sdk/js/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import vm from 'node:vm';

import * as sdk from './connector-sdk.js';

const hex = (s) => Uint8Array.from(s.match(/../g).map((b) => parseInt(b, 16)));

test('HMAC-SHA256 matches RFC 4231', async () => {
  // Test case 1.
  assert.equal(
    await sdk.hmacSha256Hex(new Uint8Array(20).fill(0x0b), 'Hi There'),
    'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  );
  // Test case 2: a key shorter than the block.
  assert.equal(
    await sdk.hmacSha256Hex('Jefe', 'what do ya want for nothing?'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
  // Test case 6: a key longer than the block.
  assert.equal(
    await sdk.hmacSha256Hex(
      new Uint8Array(131).fill(0xaa),
      'Test Using Larger Than Block-Size Key - Hash Key First',
    ),
    '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  );
});

test('signatures verify in hex and base64, and refuse anything else', async () => {
  // GitHub's documented example ("Validating webhook deliveries").
  const key = "It's a Secret to Everybody";
  const sig = '757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
  assert.equal(await sdk.hmacSha256Hex(key, 'Hello, World!'), sig);
  assert.ok(await sdk.verifyHmacSha256Hex(key, 'Hello, World!', sig));
  assert.ok(await sdk.verifyHmacSha256Hex(key, sdk.bytesOf('Hello, World!'), sig.toUpperCase()));
  assert.ok(!(await sdk.verifyHmacSha256Hex(key, 'Hello, World?', sig)));
  assert.ok(!(await sdk.verifyHmacSha256Hex('other', 'Hello, World!', sig)));
  assert.ok(!(await sdk.verifyHmacSha256Hex(key, 'Hello, World!', sig.slice(0, 62))));
  assert.ok(!(await sdk.verifyHmacSha256Hex(key, 'Hello, World!', 'zz')));
  assert.ok(!(await sdk.verifyHmacSha256Hex(key, 'Hello, World!', undefined)));
  // The host's notification vector (the Rust SDK's test).
  const b64 = 'K85qmTIlvEkOr6S+WiOKj/yfELQSC8lsRD0RALn7fLE=';
  assert.equal(await sdk.hmacSha256Base64('abcd1234efgh5678', '{"message":{"eventId":"1"}}'), b64);
  assert.ok(await sdk.verifyHmacSha256Base64('abcd1234efgh5678', '{"message":{"eventId":"1"}}', b64));
  assert.ok(!(await sdk.verifyHmacSha256Base64('abcd1234efgh5678', '{}', b64)));
  assert.ok(!(await sdk.verifyHmacSha256Base64('k', '{}', 'not base64!')));
});

test('hex and base64 round-trip; equality needs equal lengths', () => {
  for (const n of [0, 1, 2, 3, 4, 31, 32]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
    assert.deepEqual(sdk.fromBase64(sdk.toBase64(bytes)), bytes);
    assert.deepEqual(sdk.fromHex(sdk.toHex(bytes)), bytes);
    assert.equal(sdk.toBase64(bytes), Buffer.from(bytes).toString('base64'));
  }
  assert.equal(sdk.fromHex('abc'), null);
  assert.equal(sdk.fromBase64('a'), null);
  assert.ok(sdk.timingSafeEqual(hex('00ff'), hex('00ff')));
  assert.ok(!sdk.timingSafeEqual(hex('00ff'), hex('00fe')));
  assert.ok(!sdk.timingSafeEqual(hex('00ff'), hex('00ff00')));
});

test('dotted paths reach nested values', () => {
  const v = { data: { orderId: 'XJ12H', n: 5, ok: true, items: [{ id: 7 }], nil: null, s: ' 42 ' } };
  assert.equal(sdk.stringAt(v, 'data.orderId'), 'XJ12H');
  assert.equal(sdk.stringAt(v, 'data.n'), '5');
  assert.equal(sdk.stringAt(v, 'data.ok'), 'true');
  assert.equal(sdk.stringAt(v, 'data.nil'), undefined);
  assert.equal(sdk.stringAt(v, 'data.items'), undefined);
  assert.equal(sdk.intAt(v, 'data.items.0.id'), 7);
  assert.equal(sdk.intAt(v, 'data.s'), 42);
  assert.equal(sdk.intAt(v, 'data.orderId'), undefined);
  assert.equal(sdk.at(v, 'data.missing'), undefined);
  assert.equal(sdk.at(v, 'data.items.x'), undefined);
  assert.equal(sdk.at(v, 'data.orderId.length'), undefined, 'no properties of strings');
  assert.equal(sdk.at(v, 'constructor'), undefined, 'no inherited properties');
  assert.equal(sdk.at(v, ''), v);
});

test('records accept an array, an object or nothing', () => {
  const v = { many: [{ id: 1 }, { id: 2 }], one: { id: 3 }, none: null };
  assert.equal(sdk.recordsAt(v, 'many').length, 2);
  assert.deepEqual(sdk.recordsAt(v, 'one'), [{ id: 3 }]);
  assert.deepEqual(sdk.recordsAt(v, 'none'), []);
  assert.deepEqual(sdk.recordsAt(v, 'absent'), []);
});

test('malformed JSON is a bad request', () => {
  assert.deepEqual(sdk.parseJson(sdk.bytesOf('{"a":[1]}')), { a: [1] });
  assert.throws(() => sdk.parseJson('{"a":'), (e) => e.payload.tag === 'bad-request');
});

test('form bodies round-trip reserved characters', () => {
  const encoded = sdk.encode([
    ['email', 'a+b@x.com'],
    ['q', 'x y&z=1'],
  ]);
  assert.equal(encoded, 'email=a%2Bb%40x.com&q=x%20y%26z%3D1');
  assert.deepEqual(sdk.parseForm(encoded), [
    ['email', 'a+b@x.com'],
    ['q', 'x y&z=1'],
  ]);
  assert.equal(sdk.withQuery('/a', { x: '1' }), '/a?x=1');
  assert.equal(sdk.withQuery('/a?y=2', [['x', '1']]), '/a?y=2&x=1');
  assert.equal(sdk.withQuery('/a', []), '/a');
  assert.equal(sdk.escape('aZ0-._~ *+/%é'), 'aZ0-._~%20%2A%2B%2F%25%C3%A9');
  assert.equal(sdk.unescape('a%20b+c%2Bd'), 'a b c+d');
  assert.equal(sdk.unescape('100%'), '100%');
  assert.equal(sdk.unescape('%zz%4'), '%zz%4');
  assert.equal(sdk.unescape('%e9'), '\u{fffd}');
  assert.equal(sdk.unescape('%C3%A9😀'), 'é😀');
  assert.deepEqual(sdk.parseForm('&&a&=b&c=%e9=x&'), [
    ['a', ''],
    ['', 'b'],
    ['c', '\u{fffd}=x'],
  ]);
});

test('vendor dates become RFC 3339 in UTC', () => {
  const ms = 1_483_309_079_039; // 2017-01-01T22:17:59.039Z
  assert.equal(sdk.isoMillisFromMs(ms), '2017-01-01T22:17:59.039Z');
  assert.equal(sdk.sqlDatetimeFromMs(ms), '2017-01-01 22:17:59');
  assert.equal(sdk.rfc3339FromUnixSeconds(1_234_567), '1970-01-15T06:56:07Z');
  assert.equal(sdk.rfc3339FromMs(ms), '2017-01-01T22:17:59.039Z');
  assert.equal(sdk.rfc3339FromMs(-1), '1969-12-31T23:59:59.999Z');
  assert.equal(sdk.isoMillisFromMs(-1_500), '1969-12-31T23:59:58.500Z');
  assert.throws(() => sdk.rfc3339FromMs(Number.MAX_SAFE_INTEGER), (e) => e.payload.tag === 'bad-request');
  assert.throws(
    () => sdk.rfc3339FromMs(-100_000_000_000_000),
    (e) => e.payload.val === 'timestamp -100000000000000 ms cannot be formatted',
  );
  assert.equal(sdk.rfc3339FromIso('2019-05-15T15:20:18Z'), '2019-05-15T15:20:18Z');
  assert.equal(sdk.rfc3339FromIso('2019-05-15T11:20:30-04:00'), '2019-05-15T15:20:30Z');
  assert.equal(sdk.rfc3339FromIso('2019-05-15T17:20:30.25+0200'), '2019-05-15T15:20:30.250Z');
  assert.equal(sdk.rfc3339FromIso('0050-01-01T00:00:00Z'), '0050-01-01T00:00:00Z');
  assert.throws(() => sdk.rfc3339FromIso('2019-05-15T15:20:18'), (e) => e.payload.tag === 'bad-request');
  assert.throws(() => sdk.rfc3339FromIso('2019-02-30T00:00:00Z'), (e) => e.payload.tag === 'bad-request');
});

test('errors carry the WIT variant as their payload', () => {
  assert.deepEqual(sdk.invalidConfig('a.b', 'is required').payload, {
    tag: 'invalid-config',
    val: { key: 'a.b', reason: 'is required' },
  });
  for (const [f, tag] of [
    [sdk.unauthorized, 'unauthorized'],
    [sdk.badRequest, 'bad-request'],
    [sdk.vendorError, 'vendor-error'],
    [sdk.unsupported, 'unsupported'],
    [sdk.internal, 'internal'],
  ]) {
    assert.deepEqual(f('m').payload, { tag, val: 'm' });
  }
  assert.deepEqual(sdk.asConnectorError(new TypeError('x is undefined')).payload, {
    tag: 'internal',
    val: 'TypeError: x is undefined',
  });
});

test('config reads values and names a missing key', () => {
  const c = new sdk.Config([
    ['a', 'x'],
    ['blank', '  '],
    ['base', 'https://api.example/v1//'],
  ]);
  assert.equal(c.get('a'), 'x');
  assert.equal(c.nonEmpty('blank'), undefined);
  assert.equal(c.baseUrl('base', 'https://d'), 'https://api.example/v1');
  assert.equal(c.baseUrl('none', 'https://d/'), 'https://d');
  assert.throws(() => c.require('blank'), (e) => e.payload.val.key === 'blank');
  assert.deepEqual(sdk.required('k', 'd', 'secret'), { key: 'k', description: 'd', valueType: 'secret', required: true });
  assert.equal(sdk.optional('k', 'd').valueType, 'text');
  assert.throws(() => sdk.optional('k', 'd', 'string'), TypeError);
});

test('defineConnector verifies before it parses and maps errors', async () => {
  const calls = [];
  const api = sdk.defineConnector({
    key: 'thing',
    displayName: 'Thing',
    hub: 'general',
    configKeys: [sdk.required('thing.secret', 'secret', 'secret')],
    instanceFinder: { configKey: 'thing.id', payloadPath: 'id' },
    verify(ctx, w) {
      calls.push('verify');
      if (w.header('X-Sig') !== ctx.config.get('thing.secret')) throw sdk.unauthorized('bad signature');
    },
    parse(ctx, w) {
      calls.push('parse');
      const body = w.json();
      return [sdk.event('things', body.id, 'created', { fields: body, eventId: w.header('x-id') })];
    },
  });
  const info = api.info();
  assert.deepEqual(info.modes, { webhooks: true, polling: false });
  assert.equal(info.configKeys[0].valueType, 'secret');
  const ctx = { config: [['thing.secret', 's']], credentials: undefined };
  const req = (sig, body) => ({
    method: 'POST',
    path: '/events/thing',
    query: '',
    headers: [
      ['x-sig', sig],
      ['x-id', 'd-1'],
    ],
    body: sdk.bytesOf(body),
  });
  const events = await api.handleWebhook(ctx, req('s', '{"id":7}'));
  assert.deepEqual(events, [
    { objectType: 'things', objectId: '7', eventType: 'created', date: undefined, fields: '{"id":7}', eventId: 'd-1' },
  ]);
  // A bad signature is unauthorized even when the body is malformed: verify runs first.
  calls.length = 0;
  await assert.rejects(api.handleWebhook(ctx, req('wrong', '{not json')), (e) => e.payload.tag === 'unauthorized');
  assert.deepEqual(calls, ['verify']);
  await assert.rejects(api.handleWebhook(ctx, req('s', '{not json')), (e) => e.payload.tag === 'bad-request');
  // Webhook-only: authentication and polling are unsupported.
  assert.throws(() => api.buildAuthRequest(ctx, { tag: 'login' }), (e) => e.payload.tag === 'unsupported');
  assert.throws(() => api.buildPollRequest(ctx, {}, {}, undefined), (e) => e.payload.tag === 'unsupported');
  assert.equal(api.validateConfig([]), undefined);
});

test('webhooks read headers, query and form bodies', () => {
  const w = new sdk.Webhook({
    query: 'a=1&b=x+y',
    headers: [['Content-Type', 'application/x-www-form-urlencoded']],
    body: 'k=v%21&n=2',
  });
  assert.equal(w.header('content-type'), 'application/x-www-form-urlencoded');
  assert.equal(w.queryParam('b'), 'x y');
  assert.deepEqual(w.json(), { k: 'v!', n: '2' });
});

test('bytes from another realm are read as bytes', () => {
  // The component's bindings hand `list<u8>` over as a Uint8Array of another realm, for
  // which `instanceof Uint8Array` is false.
  const foreign = vm.runInNewContext('new Uint8Array([104, 105])');
  assert.ok(!(foreign instanceof Uint8Array));
  assert.equal(sdk.textOf(foreign), 'hi');
  assert.equal(sdk.textOf(new Uint8Array([0, 104, 105]).subarray(1)), 'hi');
  assert.equal(sdk.textOf([104, 105]), 'hi');
});
