// Unit tests of the GitHub connector's logic: `node --test` (npm test).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesOf, defineConnector, hmacSha256Hex, warmUp } from '../../guest-sdk/js/connector-sdk.js';
import { REPOSITORY, SECRET, eventTypeOf, github, sample } from './connector.js';

const api = defineConnector(github);
const ctx = { config: [[SECRET, 'It is a secret'], [REPOSITORY, 'Codertocat/Hello-World']] };
const fixture = (name) => readFileSync(new URL(`fixtures/${name}`, import.meta.url));

/// A delivery as GitHub sends it: signed body, event name, delivery GUID.
async function delivery(event, body, { secret = 'It is a secret', id = '72d3162e-cc78-11e3-81ab-4c9367dc0958' } = {}) {
  return {
    method: 'POST',
    path: '/events/github',
    query: '',
    headers: [
      ['Content-Type', 'application/json'],
      ['X-GitHub-Event', event],
      ['X-GitHub-Delivery', id],
      ['X-Hub-Signature-256', `sha256=${await hmacSha256Hex(secret, body)}`],
    ],
    body: bytesOf(body),
  };
}

test('info declares the typed keys and the repository finder', () => {
  const info = api.info();
  assert.equal(info.key, 'github');
  const secret = info.configKeys.find((k) => k.key === SECRET);
  assert.deepEqual([secret.valueType, secret.required], ['secret', true]);
  assert.deepEqual(info.instanceFinder, { configKey: REPOSITORY, payloadPath: 'repository.full_name' });
});

test('a signed issues delivery is an issue created, with the delivery id', async () => {
  const events = await api.handleWebhook(ctx, await delivery('issues', fixture('issues-opened.json')));
  assert.equal(events.length, 1);
  const [e] = events;
  assert.deepEqual(
    [e.objectType, e.objectId, e.eventType, e.date, e.eventId],
    ['issues', '444500041', 'created', '2019-05-15T15:20:18Z', '72d3162e-cc78-11e3-81ab-4c9367dc0958'],
  );
  assert.equal(JSON.parse(e.fields).title, 'Spelling error in the README file');
});

test('actions map to event types', async () => {
  assert.deepEqual(
    ['opened', 'created', 'edited', 'closed', 'reopened', 'labeled', 'deleted', undefined].map(eventTypeOf),
    ['created', 'created', 'updated', 'updated', 'updated', 'updated', 'deleted', 'unknown'],
  );
  const closed = JSON.stringify({
    action: 'closed',
    pull_request: { id: 279147437, number: 1, updated_at: '2019-05-15T15:20:33Z' },
    repository: { full_name: 'Codertocat/Hello-World' },
  });
  const [e] = await api.handleWebhook(ctx, await delivery('pull_request', closed));
  assert.deepEqual([e.objectType, e.objectId, e.eventType], ['pullRequests', '279147437', 'updated']);
});

test('a push is one event; a deleted ref is deleted; ping and unknown events are none', async () => {
  const [e] = await api.handleWebhook(ctx, await delivery('push', fixture('push.json')));
  assert.deepEqual([e.objectType, e.eventType, e.date], ['pushes', 'deleted', undefined]);
  const pushed = JSON.stringify({
    ref: 'refs/heads/main',
    before: 'a',
    after: 'b1',
    deleted: false,
    head_commit: { id: 'b1', timestamp: '2019-05-15T11:20:30-04:00' },
    repository: { full_name: 'Codertocat/Hello-World' },
  });
  const [p] = await api.handleWebhook(ctx, await delivery('push', pushed));
  assert.deepEqual([p.objectId, p.eventType, p.date], ['b1', 'created', '2019-05-15T15:20:30Z']);
  assert.deepEqual(await api.handleWebhook(ctx, await delivery('ping', '{"zen":"Keep it logically awesome."}')), []);
  assert.deepEqual(await api.handleWebhook(ctx, await delivery('star', '{"action":"created"}')), []);
});

test('a wrong, missing or malformed signature is unauthorized, before the body is read', async () => {
  const body = fixture('issues-opened.json');
  const wrong = await delivery('issues', body, { secret: 'not the secret' });
  await assert.rejects(api.handleWebhook(ctx, wrong), (e) => e.payload.tag === 'unauthorized');
  const tampered = await delivery('issues', body);
  tampered.body = bytesOf(String(body).replace('opened', 'closed'));
  await assert.rejects(api.handleWebhook(ctx, tampered), (e) => e.payload.tag === 'unauthorized');
  const missing = await delivery('issues', '{not json');
  missing.headers = missing.headers.filter(([k]) => k !== 'X-Hub-Signature-256');
  await assert.rejects(api.handleWebhook(ctx, missing), (e) => e.payload.val === 'X-Hub-Signature-256 is missing');
  const sha1 = await delivery('issues', body);
  sha1.headers.push(['x-hub-signature-256', 'sha1=abc']);
  sha1.headers = sha1.headers.filter(([k]) => k !== 'X-Hub-Signature-256');
  await assert.rejects(api.handleWebhook(ctx, sha1), (e) => e.payload.tag === 'unauthorized');
});

test('a signed but malformed delivery is a bad request', async () => {
  await assert.rejects(api.handleWebhook(ctx, await delivery('issues', '{not json')), (e) => e.payload.tag === 'bad-request');
  await assert.rejects(api.handleWebhook(ctx, await delivery('issues', '{"action":"opened"}')), (e) =>
    /issue is missing/.test(e.payload.val),
  );
});

test('the warm-up sample verifies and parses (main.js runs it at build time)', async () => {
  const [e] = await warmUp(api, await sample());
  assert.deepEqual([e.objectType, e.objectId, e.eventType], ['issues', '1', 'created']);
});
