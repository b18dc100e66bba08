// Unit tests: `npm test` (node --test).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesOf, defineConnector, hmacSha256Base64, warmUp } from './connector-sdk.js';
import { ACCOUNT, SECRET, connector, sample } from './connector.js';

const api = defineConnector(connector);
const ctx = { config: [[SECRET, 's3cret'], [ACCOUNT, '7']] };
const body = readFileSync(new URL('fixtures/webhook.json', import.meta.url));

async function request(secret) {
  return {
    method: 'POST',
    path: '/events/{{name}}',
    query: '',
    headers: [['X-Webhook-Signature', await hmacSha256Base64(secret, body)]],
    body: bytesOf(body),
  };
}

test('a signed webhook is an event', async () => {
  const [e] = await api.handleWebhook(ctx, await request('s3cret'));
  assert.deepEqual(
    [e.objectType, e.objectId, e.eventType, e.date, e.eventId],
    ['orders', '42', 'created', '2024-05-01T10:30:00Z', 'dlv-0001'],
  );
});

test('a wrongly signed webhook is unauthorized', async () => {
  await assert.rejects(api.handleWebhook(ctx, await request('guess')), (e) => e.payload.tag === 'unauthorized');
});

test('the warm-up sample verifies and parses (main.js runs it at build time)', async () => {
  const [e] = await warmUp(api, await sample());
  assert.deepEqual([e.objectType, e.objectId, e.eventType], ['orders', '1', 'created']);
});
