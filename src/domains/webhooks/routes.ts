import { domainRoutes } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import { listDeliveries, queuePing, retryDelivery } from './deliveries.ts';
import type { Resolver } from './destinations.ts';
import {
  createdWebhook,
  createWebhookBody,
  delivery,
  deliveryPage,
  deliveryParams,
  listDeliveriesQuery,
  listWebhooksQuery,
  rotatedSecret,
  updateWebhookBody,
  webhook,
  webhookApi,
  webhookPage,
} from './schemas.ts';
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listWebhooks,
  rotateWebhookSecret,
  updateWebhook,
} from './service.ts';

const whereItMayPoint =
  'The URL must be https on a public address: a host that is, or resolves to, a loopback, private, ' +
  'carrier-grade NAT, link-local (cloud metadata), unique-local, IPv4-mapped, unspecified or multicast ' +
  'address is 400 `validation-failed` (unless the server runs with `WEBHOOK_ALLOW_PRIVATE=true`).';

/** API.md §10: webhook subscriptions, for admins. `resolveHost` is the DNS (tests give their own). */
export const webhookRoutes = domainRoutes<'webhook', { resolveHost: Resolver }>(
  webhookApi,
  (route, app, { resolveHost }) => {
    const destinations = { allowPrivate: app.config.WEBHOOK_ALLOW_PRIVATE, resolve: resolveHost };

    route.create({
      url: '/webhooks',
      auth: 'admin',
      operationId: 'createWebhook',
      summary: 'Subscribe an endpoint to events',
      description: `The answer carries the signing \`secret\`, shown this once. ${whereItMayPoint}`,
      body: createWebhookBody,
      answer: createdWebhook,
      run: (tx, principal, body) => createWebhook(tx, principal, body, destinations),
    });

    route.get({
      url: '/webhooks',
      auth: 'admin',
      operationId: 'listWebhooks',
      summary: 'List webhooks',
      description: 'Oldest first; never a secret.',
      querystring: listWebhooksQuery,
      answer: webhookPage,
      run: (db, principal, query) => listWebhooks(db, principal.orgId, query),
    });

    route.read({
      url: '/webhooks/:id',
      auth: 'admin',
      operationId: 'getWebhook',
      summary: 'Read a webhook',
      description: 'The `ETag` header is the `If-Match` value for PATCH.',
      params: idParams,
      answer: webhook,
      run: (db, principal, id) => getWebhook(db, principal.orgId, id),
    });

    route.update({
      url: '/webhooks/:id',
      auth: 'admin',
      operationId: 'updateWebhook',
      summary: 'Update or re-enable a webhook',
      description: `Send \`If-Match\` with the ETag you read. \`enabled: true\` re-enables a disabled endpoint and clears \`disabledReason\`. ${whereItMayPoint}`,
      params: idParams,
      body: updateWebhookBody,
      answer: webhook,
      refusals: { 412: 'precondition-failed' },
      run: (tx, principal, id, body, ifMatch) =>
        updateWebhook(tx, principal, id, body, ifMatch, destinations),
    });

    route.empty({
      method: 'DELETE',
      url: '/webhooks/:id',
      auth: 'admin',
      operationId: 'deleteWebhook',
      summary: 'Delete a webhook',
      description: 'Its secrets go with it.',
      params: idParams,
      run: deleteWebhook,
    });

    route.write({
      url: '/webhooks/:id/rotate-secret',
      auth: 'admin',
      operationId: 'rotateWebhookSecret',
      summary: "Replace a webhook's signing secret",
      description:
        'The new secret is shown this once. For 24 hours the previous secret signs every delivery too (two ' +
        'space-separated `v1,` signatures, as Standard Webhooks allows); a second rotation within 24 h leaves ' +
        'only the two newest.',
      params: idParams,
      answer: rotatedSecret,
      status: 200,
      sends: [],
      run: async (tx, principal, request) => ({
        body: await rotateWebhookSecret(tx, principal, request.params.id),
      }),
    });

    route.write({
      url: '/webhooks/:id/test',
      auth: 'admin',
      operationId: 'testWebhook',
      summary: 'Send a ping to a webhook',
      description:
        'Queues a message of type `ping` (`data: { webhookId }`), signed like every other; the answer is its ' +
        'pending delivery, sent within about a second. A disabled webhook is 409 `invalid-state`.',
      params: idParams,
      answer: delivery,
      status: 202,
      sends: [],
      refusals: { 409: 'invalid-state' },
      run: async (tx, principal, request) => ({ body: await queuePing(tx, principal, request.params.id) }),
    });

    route.get({
      url: '/webhooks/:id/deliveries',
      auth: 'admin',
      operationId: 'listWebhookDeliveries',
      summary: "List a webhook's delivery attempts",
      description:
        'Newest first, each attempt of each message, the next one included while it is `pending`. ' +
        'Delivered and given-up messages are kept 30 days.',
      params: idParams,
      querystring: listDeliveriesQuery,
      answer: deliveryPage,
      run: (db, principal, query, request) => listDeliveries(db, principal.orgId, request.params.id, query),
    });

    route.write({
      url: '/webhooks/:id/deliveries/:deliveryId/retry',
      auth: 'admin',
      operationId: 'retryWebhookDelivery',
      summary: "Send a delivery's message again now",
      description:
        'With the same `webhook-id`; the answer is its pending attempt. A disabled webhook is 409 `invalid-state`.',
      params: deliveryParams,
      answer: delivery,
      status: 202,
      sends: [],
      refusals: { 409: 'invalid-state' },
      run: async (tx, principal, request) => ({
        body: await retryDelivery(tx, principal, request.params.id, request.params.deliveryId),
      }),
    });
  },
);
