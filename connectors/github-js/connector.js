// GitHub webhooks as events: issues, pull requests, issue comments, releases and pushes.
//
// GitHub signs each delivery with the webhook's secret: `X-Hub-Signature-256:
// sha256=<hex HMAC-SHA256 of the raw body>`; `X-GitHub-Event` names the event (`issues`,
// `pull_request`, `push`, …), the payload's `action` says what happened (`opened`,
// `edited`, `closed`, `deleted`, …) and `X-GitHub-Delivery` is the delivery's GUID, kept as
// the event id so the host recognizes a redelivery. An instance is found by its
// `github.repository` (`owner/name`), the payload's `repository.full_name`.
import {
  at,
  badRequest,
  bytesOf,
  event,
  hmacSha256Hex,
  log,
  optional,
  required,
  rfc3339FromIso,
  stringAt,
  unauthorized,
  verifyHmacSha256Hex,
} from '../../guest-sdk/js/connector-sdk.js';

export const SECRET = 'github.webhook.secret';
export const REPOSITORY = 'github.repository';

/// Events whose payload carries one object: the event object type and the payload field.
const OBJECTS = {
  issues: ['issues', 'issue'],
  pull_request: ['pullRequests', 'pull_request'],
  issue_comment: ['issueComments', 'comment'],
  release: ['releases', 'release'],
};

/// The event type of a payload's `action`.
export function eventTypeOf(action) {
  switch (action) {
    case 'opened':
    case 'created':
    case 'published':
      return 'created';
    case 'deleted':
      return 'deleted';
    case undefined:
      return 'unknown';
    default:
      // edited, closed, reopened, labeled, assigned, synchronize, …: the object changed.
      return 'updated';
  }
}

/// RFC 3339 UTC of the date at `path`, if there is one.
function dateAt(payload, path) {
  const text = stringAt(payload, path);
  return text === undefined ? undefined : rfc3339FromIso(text);
}

export const github = {
  key: 'github',
  displayName: 'GitHub',
  hub: 'general',
  webhooks: true,
  polling: false,
  configKeys: [
    required(SECRET, 'The secret of the repository webhook (signs X-Hub-Signature-256)', 'secret'),
    required(REPOSITORY, 'The repository, owner/name (e.g. octo-org/octo-repo)'),
    optional('github.events', 'Informational: the events the webhook sends'),
  ],
  instanceFinder: { configKey: REPOSITORY, payloadPath: 'repository.full_name' },

  async verify(ctx, webhook) {
    const secret = ctx.config.require(SECRET);
    const header = webhook.header('x-hub-signature-256');
    if (header === undefined) throw unauthorized('X-Hub-Signature-256 is missing');
    if (!header.startsWith('sha256=')) throw unauthorized('X-Hub-Signature-256 is not sha256=<hex>');
    if (!(await verifyHmacSha256Hex(secret, webhook.body, header.slice('sha256='.length)))) {
      throw unauthorized('X-Hub-Signature-256 does not match');
    }
  },

  parse(ctx, webhook) {
    const kind = webhook.header('x-github-event');
    if (kind === undefined) throw badRequest('X-GitHub-Event is missing');
    const eventId = webhook.header('x-github-delivery');
    const payload = webhook.json();
    if (payload === null || typeof payload !== 'object') throw badRequest('the payload is not an object');

    if (kind === 'ping') return [];
    if (kind === 'push') {
      const deleted = at(payload, 'deleted') === true;
      const fields = {
        ref: payload.ref,
        before: payload.before,
        after: payload.after,
        repository: stringAt(payload, 'repository.full_name'),
        pusher: at(payload, 'pusher'),
        head_commit: at(payload, 'head_commit'),
        commits: at(payload, 'commits') ?? [],
      };
      return [
        event('pushes', payload.after, deleted ? 'deleted' : 'created', {
          fields,
          date: deleted ? undefined : dateAt(payload, 'head_commit.timestamp'),
          eventId,
        }),
      ];
    }
    const object = OBJECTS[kind];
    if (!object) {
      log.info(`github: event ${kind} is not translated`);
      return [];
    }
    const [objectType, field] = object;
    const value = at(payload, field);
    if (value === null || typeof value !== 'object') throw badRequest(`${kind}: ${field} is missing`);
    const action = stringAt(payload, 'action');
    return [
      event(objectType, stringAt(value, 'id'), eventTypeOf(action), {
        fields: value,
        date: dateAt(value, 'updated_at') ?? dateAt(value, 'created_at'),
        eventId,
      }),
    ];
  },
};

/// The warm-up sample (main.js runs it at build time, see `warmUp`): a small `issues`
/// delivery signed with a made-up secret, through the same code as a real one.
export async function sample() {
  const secret = 'warm-up secret';
  const body = JSON.stringify({
    action: 'opened',
    issue: { id: 1, number: 1, title: 'warm-up', created_at: '2019-05-15T15:20:18Z', updated_at: '2019-05-15T15:20:18Z' },
    repository: { id: 1, full_name: 'octo-org/octo-repo' },
  });
  return {
    ctx: { config: [[SECRET, secret], [REPOSITORY, 'octo-org/octo-repo']] },
    request: {
      method: 'POST',
      path: '/events/github',
      query: '',
      headers: [
        ['content-type', 'application/json'],
        ['x-github-event', 'issues'],
        ['x-github-delivery', '00000000-0000-0000-0000-000000000000'],
        ['x-hub-signature-256', `sha256=${await hmacSha256Hex(secret, body)}`],
      ],
      body: bytesOf(body),
    },
  };
}
