/**
 * A webhook's deliveries (API.md §10): the attempts of its messages as partners see them, the
 * `ping` a partner asks for, and the manual retry. The dispatcher (dispatcher.ts) sends them.
 */
import { and, eq, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound } from '../../core/errors.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import { keysetPage, type Page, type PageQuery } from '../../core/pagination.ts';
import { type DbOrTx, queryRows } from '../../db/client.ts';
import type { RowOf } from '../../db/columns.ts';
import { deleteInBatches } from '../../db/purge.ts';
import { webhookDeliveries, webhookMessages, webhooks } from '../../db/schema.ts';
import { queueMessages } from './fan-out.ts';
import type { delivery } from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;
export type Delivery = z.output<typeof delivery>;

const deliveryColumns = {
  id: webhookDeliveries.id,
  messageId: webhookDeliveries.messageId,
  type: webhookMessages.type,
  attempt: webhookDeliveries.attempt,
  status: webhookDeliveries.status,
  responseStatus: webhookDeliveries.responseStatus,
  durationMs: webhookDeliveries.durationMs,
  error: webhookDeliveries.error,
  createdAt: webhookDeliveries.createdAt,
  nextAttemptAt: webhookDeliveries.nextAttemptAt,
};
type DeliveryRow = RowOf<typeof deliveryColumns>;

/** Deliveries with their message's type. */
const selectDeliveries = (db: DbOrTx) =>
  db
    .select(deliveryColumns)
    .from(webhookDeliveries)
    .innerJoin(
      webhookMessages,
      and(
        eq(webhookMessages.orgId, webhookDeliveries.orgId),
        eq(webhookMessages.id, webhookDeliveries.messageId),
      ),
    );
const toDelivery = (row: DeliveryRow): Delivery => row;

/** The webhook, locked against a concurrent PATCH or rotation, or 404. */
async function lockedWebhook(tx: DbOrTx, orgId: string, id: string) {
  const [row] = await tx
    .select({ enabled: webhooks.enabled })
    .from(webhooks)
    .where(and(eq(webhooks.orgId, orgId), eq(webhooks.id, id)))
    .for('update');
  if (!row) throw notFound('The webhook');
  return row;
}

function refuseWhenDisabled(webhook: { enabled: boolean }) {
  if (!webhook.enabled)
    throw new AppError(
      'invalid-state',
      'The webhook is disabled and receives nothing; enable it (PATCH { "enabled": true }) first.',
    );
}

async function deliveryById(db: DbOrTx, orgId: string, webhookId: string, id: string): Promise<Delivery> {
  const [row] = await selectDeliveries(db).where(
    and(
      eq(webhookDeliveries.orgId, orgId),
      eq(webhookDeliveries.webhookId, webhookId),
      eq(webhookDeliveries.id, id),
    ),
  );
  if (!row) throw notFound('The delivery');
  return toDelivery(row);
}

/** The webhook's attempts, newest first, optionally of one status. */
export async function listDeliveries(
  db: DbOrTx,
  orgId: string,
  webhookId: string,
  query: PageQuery & { status?: Delivery['status'] | undefined },
): Promise<Page<Delivery>> {
  const [exists] = await db
    .select({ id: webhooks.id })
    .from(webhooks)
    .where(and(eq(webhooks.orgId, orgId), eq(webhooks.id, webhookId)));
  if (!exists) throw notFound('The webhook');
  const rows = selectDeliveries(db).$dynamic();
  return keysetPage(
    rows,
    [
      eq(webhookDeliveries.orgId, orgId),
      eq(webhookDeliveries.webhookId, webhookId),
      query.status ? eq(webhookDeliveries.status, query.status) : undefined,
    ],
    {
      orderBy: [[webhookDeliveries.id, 'uuid']],
      descending: true,
      page: query,
      keyOf: (row) => [row.id],
      toItem: toDelivery,
    },
  );
}

/** Queues a `ping` for the webhook, due now; its pending delivery is the answer. */
export async function queuePing(tx: DbOrTx, principal: KeyPrincipal, webhookId: string): Promise<Delivery> {
  const { orgId } = principal;
  refuseWhenDisabled(await lockedWebhook(tx, orgId, webhookId));
  const message = {
    org_id: orgId,
    id: uuidv7(),
    webhook_id: webhookId,
    outbox_id: null,
    type: 'ping',
    occurred_at: new Date().toISOString(),
    data: { webhookId },
    delivery_id: uuidv7(),
  };
  await queueMessages(tx, [message]);
  await recordEvent(tx, orgId, actorOf(principal), 'delivery.created', message.delivery_id, {});
  return deliveryById(tx, orgId, webhookId, message.delivery_id);
}

/**
 * Sends the delivery's message again now, with the same `webhook-id`: its pending attempt becomes
 * due now, or, when none is pending (delivered, given up), a new attempt is. The answer is that
 * pending attempt.
 */
export async function retryDelivery(
  tx: DbOrTx,
  principal: KeyPrincipal,
  webhookId: string,
  deliveryId: string,
): Promise<Delivery> {
  const { orgId } = principal;
  const webhook = await lockedWebhook(tx, orgId, webhookId);
  const { messageId } = await deliveryById(tx, orgId, webhookId, deliveryId);
  refuseWhenDisabled(webhook);
  const [rescheduled] = await queryRows<{ id: string }>(
    tx,
    sql`
      update webhook_deliveries set next_attempt_at = now()
      where org_id = ${orgId} and message_id = ${messageId} and status = 'pending'
      returning id`,
  );
  // The message's earlier failures say when it is tried again: now.
  await tx.execute(sql`
    update webhook_deliveries set next_attempt_at = now()
    where org_id = ${orgId} and message_id = ${messageId} and status = 'failed' and next_attempt_at is not null`);
  let pendingId = rescheduled?.id;
  if (pendingId) {
    await recordEvent(tx, orgId, actorOf(principal), 'delivery.updated', pendingId, {
      changed: ['nextAttemptAt'],
    });
  } else {
    pendingId = uuidv7();
    await tx.execute(sql`
      insert into webhook_deliveries (org_id, id, webhook_id, message_id, attempt, status, next_attempt_at)
      select ${orgId}, ${pendingId}, ${webhookId}, ${messageId}, max(attempt) + 1, 'pending', now()
      from webhook_deliveries where org_id = ${orgId} and message_id = ${messageId}`);
    await tx.execute(
      sql`update webhook_messages set finished_at = null where org_id = ${orgId} and id = ${messageId}`,
    );
    await recordEvent(tx, orgId, actorOf(principal), 'delivery.created', pendingId, {});
  }
  await tx.execute(sql`
    insert into webhook_queues (org_id, webhook_id, next_due_at) values (${orgId}, ${webhookId}, now())
    on conflict (org_id, webhook_id) do update set next_due_at = now()`);
  return deliveryById(tx, orgId, webhookId, pendingId);
}

/** Deletes the messages that stopped being pending more than 30 days ago, with their attempts. */
export async function purgeOldDeliveries(db: DbOrTx, batch = 5_000): Promise<number> {
  return deleteInBatches(
    db,
    'webhook_messages',
    sql`created_at < now() - interval '30 days' and finished_at < now() - interval '30 days'`,
    batch,
  );
}
