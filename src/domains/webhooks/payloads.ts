/**
 * What each webhook message carries (API.md §10): `{ type, timestamp, data }`, where `data` holds
 * ids and the public fields of events and shifts, never a volunteer's personal data. `data` is the
 * payload the change wrote to the outbox in its transaction; these schemas describe it, and
 * test/webhook-payloads.test.ts parses what every event type really writes with them. The OpenAPI
 * document's top-level `webhooks` section is made from them, so partners can generate types.
 */
import { z } from 'zod';
import { uuid } from '../../core/schemas.ts';
import { webhookEventTypes } from '../../db/schema.ts';

type EventType = (typeof webhookEventTypes)[number];

const changed = z.array(z.string()).describe('The names of the fields that changed.');
const signupIds = {
  signupId: uuid,
  shiftId: uuid,
  volunteerId: uuid.describe("The volunteer's id: never their name or contact."),
};

/** Each event type's `data`, with what it means. */
export const webhookData: Record<EventType, { summary: string; data: z.ZodObject }> = {
  'event.published': { summary: 'An event was published', data: z.strictObject({ eventId: uuid }) },
  'event.cancelled': {
    summary: 'An event was cancelled, with all its shifts and their signups',
    data: z.strictObject({ eventId: uuid }),
  },
  'shift.created': { summary: 'A shift was created', data: z.strictObject({ shiftId: uuid, eventId: uuid }) },
  'shift.updated': {
    summary: 'A shift changed',
    data: z.strictObject({ shiftId: uuid, eventId: uuid, changed }),
  },
  'shift.cancelled': {
    summary: 'A shift was cancelled, with its signups',
    data: z.strictObject({ shiftId: uuid, eventId: uuid }),
  },
  'shift.filled': {
    summary: 'A claim took the last place of a shift',
    data: z.strictObject({ shiftId: uuid }),
  },
  'signup.confirmed': { summary: 'A volunteer took a place', data: z.strictObject(signupIds) },
  'signup.waitlisted': { summary: 'A volunteer joined the waitlist', data: z.strictObject(signupIds) },
  'signup.promoted': {
    summary: 'A waitlisted volunteer got a place that was freed',
    data: z.strictObject({ signupId: uuid, shiftId: uuid }),
  },
  'signup.cancelled': {
    summary: 'A signup was cancelled',
    data: z.strictObject({
      ...signupIds,
      previousStatus: z.enum(['confirmed', 'waitlisted']),
      lateCancellation: z.boolean().describe('Within 24 hours of the start.'),
    }),
  },
};

/** The test message a partner asks for (`POST /v1/webhooks/{id}/test`); no one subscribes to it. */
const pingData = {
  summary: 'A test message, sent when asked for by POST /v1/webhooks/{id}/test',
  data: z.strictObject({ webhookId: uuid }),
};

/** What a message of each type carries, the ping included. */
const messageData = (type: EventType | 'ping') => (type === 'ping' ? pingData : webhookData[type]);

/** A whole message of `type`, as its body is sent. */
export function webhookMessage(type: EventType | 'ping') {
  return z.strictObject({
    type: z.literal(type),
    timestamp: z.iso.datetime().describe('When the change happened (RFC 3339).'),
    data: messageData(type).data,
  });
}

const componentName = (type: string) =>
  `Webhook${type
    .split(/[._]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('')}`;

/** The Standard Webhooks headers every delivery carries. */
const deliveryHeaders = [
  ['webhook-id', 'The message id: the same for every attempt of one message (deduplicate by it).'],
  ['webhook-timestamp', 'When this attempt was signed, in Unix seconds.'],
  [
    'webhook-signature',
    'Space-separated `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per current secret.',
  ],
] as const;

/** The OpenAPI 3.1 `webhooks` section and the schemas it refers to. */
export function webhookDocs(): { webhooks: Record<string, unknown>; schemas: Record<string, unknown> } {
  const webhooks: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const type of [...webhookEventTypes, 'ping'] as const) {
    const name = componentName(type);
    const { $schema: _, ...schema } = z.toJSONSchema(webhookMessage(type), { io: 'input' }) as Record<
      string,
      unknown
    >;
    schemas[name] = schema;
    webhooks[type] = {
      post: {
        operationId: `receive${name}`,
        tags: ['webhooks'],
        summary: messageData(type).summary,
        description:
          (type === 'ping'
            ? 'Sent to the one webhook that asked for it. '
            : 'Sent to every enabled webhook subscribed to this type, in the order written, at least once. ') +
          'Verify the signature with a Standard Webhooks library and the secret, and deduplicate by `webhook-id`.',
        parameters: deliveryHeaders.map(([header, description]) => ({
          name: header,
          in: 'header',
          required: true,
          description,
          schema: { type: 'string' },
        })),
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
        },
        responses: {
          '200': {
            description:
              'Any 2xx within 15 s acknowledges the message. Anything else is retried (5 s, 5 min, 30 min, 2 h, 5 h, ' +
              '10 h, 14 h, 20 h, 24 h, ±20 %; a Retry-After of up to an hour on a 429 or 503 instead); a 410 ' +
              'disables the webhook.',
          },
        },
      },
    };
  }
  return { webhooks, schemas };
}
