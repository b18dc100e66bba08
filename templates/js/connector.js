// {{display_name}}: signed webhooks as events.
//
// The vendor signs each webhook with the instance's secret: `X-Webhook-Signature:
// base64(HMAC-SHA256(secret, raw body))`. Adapt the header, the payload paths and the
// event types to the vendor's docs.
import {
  bytesOf,
  event,
  hmacSha256Base64,
  optional,
  required,
  rfc3339FromIso,
  stringAt,
  unauthorized,
  badRequest,
  verifyHmacSha256Base64,
} from './connector-sdk.js';

export const SECRET = '{{name}}.webhook.secret';
export const ACCOUNT = '{{name}}.account.id';

const EVENT_TYPES = { 'order.created': 'created', 'order.updated': 'updated', 'order.deleted': 'deleted' };

export const connector = {
  key: '{{name}}',
  displayName: '{{display_name}}',
  hub: 'general',
  webhooks: true,
  polling: false,
  configKeys: [
    required(SECRET, 'The webhook signing secret', 'secret'),
    required(ACCOUNT, 'The account id, as webhooks carry it'),
    optional('{{name}}.note', 'A free note'),
  ],
  // The instance of a webhook is the one whose account id is the payload's `accountId`.
  instanceFinder: { configKey: ACCOUNT, payloadPath: 'accountId' },

  // Runs first: a webhook whose signature does not verify is refused (401) before anything
  // reads its body.
  async verify(ctx, webhook) {
    const signature = webhook.header('x-webhook-signature');
    if (signature === undefined) throw unauthorized('X-Webhook-Signature is missing');
    if (!(await verifyHmacSha256Base64(ctx.config.require(SECRET), webhook.body, signature))) {
      throw unauthorized('X-Webhook-Signature does not match');
    }
  },

  parse(ctx, webhook) {
    const body = webhook.json();
    const id = stringAt(body, 'data.id');
    if (id === undefined) throw badRequest('data.id is missing');
    const date = stringAt(body, 'occurredAt');
    return [
      event('orders', id, EVENT_TYPES[stringAt(body, 'event')] ?? 'unknown', {
        fields: body.data,
        date: date === undefined ? undefined : rfc3339FromIso(date),
        // The vendor's delivery id: a redelivery is recognized and not notified twice.
        eventId: stringAt(body, 'deliveryId'),
      }),
    ];
  },
};

/// The warm-up sample: main.js runs it through `handle-webhook` at build time, so that what
/// a call runs is compiled in the component's snapshot rather than in every fresh instance
/// (a call costs a half to a third). A small webhook as the vendor sends it, signed with a
/// made-up secret (it is built into the component: never a real secret or real data).
/// Keep it in step with `verify` and `parse`: the build fails when it does not pass.
export async function sample() {
  const secret = 'warm-up secret';
  const body = JSON.stringify({
    event: 'order.created',
    deliveryId: 'warm-up',
    accountId: '1',
    occurredAt: '2024-05-01T12:30:00+02:00',
    data: { id: '1', total: 1.5, currency: 'EUR' },
  });
  return {
    ctx: { config: [[SECRET, secret], [ACCOUNT, '1']] },
    request: {
      method: 'POST',
      path: '/events/{{name}}',
      query: '',
      headers: [
        ['content-type', 'application/json'],
        ['x-webhook-signature', await hmacSha256Base64(secret, body)],
      ],
      body: bytesOf(body),
    },
  };
}
