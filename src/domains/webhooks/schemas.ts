import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import { pageOf, pageQuery, responseTimestamp, uuid } from '../../core/schemas.ts';
import { webhookEventTypes } from '../../db/schema.ts';

export const webhookEventType = z.enum(webhookEventTypes);

const url = z
  .url({ protocol: /^https?$/ })
  .max(2000)
  .describe('Where deliveries are POSTed: https, on a public address (API.md §10).');
const events = z
  .array(webhookEventType)
  .min(1)
  .max(webhookEventTypes.length)
  .refine((list) => new Set(list).size === list.length, 'must not repeat an event type')
  .describe('The event types this endpoint receives.');
const description = z.string().trim().max(500);

export const webhook = z
  .object({
    id: uuid,
    url: z.string(),
    events: z.array(webhookEventType),
    description: z.string().nullable(),
    enabled: z.boolean(),
    disabledReason: z
      .enum(['gone', 'failing'])
      .nullable()
      .describe(
        '`gone`: the endpoint answered 410; `failing`: every attempt failed for 5 days; null otherwise.',
      ),
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
  })
  .meta({ id: 'Webhook' });

const secret = z.string().describe('`whsec_` and base64: the key of the signatures, shown this once.');

export const createdWebhook = webhook.extend({ secret }).meta({ id: 'CreatedWebhook' });
export const rotatedSecret = z.object({ secret }).meta({ id: 'RotatedWebhookSecret' });

export const createWebhookBody = z.strictObject({ url, events, description: description.optional() }).meta({
  examples: [{ url: 'https://partner.example/hooks/together', events: ['signup.confirmed', 'shift.filled'] }],
});

export const updateWebhookBody = z.strictObject({
  url: url.optional(),
  events: events.optional(),
  description: description.nullable().optional(),
  enabled: z
    .boolean()
    .optional()
    .describe('`true` re-enables a disabled endpoint and clears `disabledReason`; `false` disables it.'),
});

export const listWebhooksQuery = z.strictObject({ ...pageQuery });
export const webhookPage = pageOf(webhook).meta({ id: 'WebhookPage' });

const deliveryStatus = z.enum(['pending', 'succeeded', 'failed']);

export const delivery = z
  .object({
    id: uuid,
    messageId: uuid.describe('The `webhook-id` header: the same for every attempt of one message.'),
    type: z.string().describe('The event type, or `ping`.'),
    attempt: z.number().int().min(1).describe('Counts from 1.'),
    status: deliveryStatus.describe('`pending`: not sent yet, due at `nextAttemptAt`.'),
    responseStatus: z.number().int().nullable().describe("The receiver's status; null when none came."),
    durationMs: z.number().int().nullable(),
    error: z.string().nullable().describe('Why it failed, in a line.'),
    createdAt: responseTimestamp.describe(
      'When the attempt was queued: the first with its message, a retry when the attempt before it failed.',
    ),
    nextAttemptAt: responseTimestamp
      .nullable()
      .describe('When the message is tried (again); null when it will not be.'),
  })
  .meta({ id: 'WebhookDelivery' });

export const deliveryPage = pageOf(delivery).meta({ id: 'WebhookDeliveryPage' });

export const listDeliveriesQuery = z.strictObject({
  ...pageQuery,
  status: deliveryStatus.optional().describe('Only the attempts of this status.'),
});

export const deliveryParams = z.strictObject({
  id: z.uuid().describe('The webhook id.'),
  deliveryId: z.uuid().describe('The delivery (attempt) id.'),
});

/** How the webhook routes are tagged and answer (core/operations.ts). */
export const webhookApi = resourceApi({
  tags: ['webhooks'],
  resource: 'webhook',
  collection: '/v1/webhooks',
});
