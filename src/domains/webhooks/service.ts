/**
 * Webhook subscriptions (API.md §10): a partner's endpoint, the event types it receives and the
 * secrets that sign its deliveries. Where an endpoint may point is destinations.ts's rule.
 */
import { randomBytes } from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound } from '../../core/errors.ts';
import { assertVersion, versionIn } from '../../core/http-cache.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import { keysetPage, type Page, type PageQuery } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import { columnsExcept, type RowOf } from '../../db/columns.ts';
import { webhookSecrets, webhooks } from '../../db/schema.ts';
import { assertWebhookDestination, type Resolver } from './destinations.ts';
import type { webhook } from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

/** What the registration check needs: the `WEBHOOK_ALLOW_PRIVATE` setting and a DNS resolver. */
export interface Destinations {
  allowPrivate: boolean;
  resolve: Resolver;
}

const webhookColumns = columnsExcept(webhooks, ['orgId', 'enabledSince']);
type WebhookRow = RowOf<typeof webhookColumns>;
type EventType = (typeof webhooks.$inferSelect)['events'][number];
export type Webhook = z.output<typeof webhook>;

function toWebhook({ version: _, ...row }: WebhookRow): Webhook {
  return row;
}

/** The webhook `id` of the organisation. */
const webhookKey = (orgId: string, id: string) => and(eq(webhooks.orgId, orgId), eq(webhooks.id, id));

/** A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** How long the previous secret still signs after a rotation. */
const previousSecretHours = 24;

export async function getWebhook(db: DbOrTx, orgId: string, id: string) {
  const [row] = await db.select(webhookColumns).from(webhooks).where(webhookKey(orgId, id));
  if (!row) throw notFound('The webhook');
  return { webhook: toWebhook(row), version: row.version };
}

export async function createWebhook(
  tx: DbOrTx,
  principal: KeyPrincipal,
  input: { url: string; events: EventType[]; description?: string | undefined },
  destinations: Destinations,
) {
  await assertWebhookDestination(input.url, destinations);
  const id = uuidv7();
  const secret = newSecret();
  await tx.insert(webhooks).values({
    orgId: principal.orgId,
    id,
    url: input.url,
    events: input.events,
    description: input.description ?? null,
  });
  await tx.insert(webhookSecrets).values({ orgId: principal.orgId, id: uuidv7(), webhookId: id, secret });
  await recordEvent(tx, principal.orgId, actorOf(principal), 'webhook.created', id, {});
  const created = await getWebhook(tx, principal.orgId, id);
  return { webhook: { ...created.webhook, secret }, version: created.version };
}

/** The organisation's webhooks, oldest first (ids are time-ordered). */
export async function listWebhooks(db: DbOrTx, orgId: string, query: PageQuery): Promise<Page<Webhook>> {
  return keysetPage(db.select(webhookColumns).from(webhooks).$dynamic(), [eq(webhooks.orgId, orgId)], {
    orderBy: [[webhooks.id, 'uuid']],
    page: query,
    keyOf: (row) => [row.id],
    toItem: toWebhook,
  });
}

export async function updateWebhook(
  tx: DbOrTx,
  principal: KeyPrincipal,
  id: string,
  changes: {
    url?: string | undefined;
    events?: EventType[] | undefined;
    description?: string | null | undefined;
    enabled?: boolean | undefined;
  },
  expectedVersions: number[] | null,
  destinations: Destinations,
) {
  const current = await getWebhook(tx, principal.orgId, id);
  if (Object.keys(changes).length === 0) {
    assertVersion(expectedVersions, current.version, 'The webhook');
    return current;
  }
  // A stale version is a 412 before the URL is looked at (the UPDATE below guards it again).
  assertVersion(expectedVersions, current.version, 'The webhook');
  if (changes.url !== undefined) await assertWebhookDestination(changes.url, destinations);
  const [updated] = await tx
    .update(webhooks)
    .set({
      ...changes,
      // Enabling clears why it was disabled; disabling by hand gives no reason.
      ...(changes.enabled !== undefined && { disabledReason: null }),
      // Enabled again, it receives what is written from now on, nothing from while it was off.
      ...(changes.enabled === true && !current.webhook.enabled && { enabledSince: sql`now()` }),
      version: sql`${webhooks.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(and(webhookKey(principal.orgId, id), versionIn(webhooks.version, expectedVersions)))
    .returning({ id: webhooks.id });
  if (!updated)
    throw new AppError('precondition-failed', 'The webhook has changed since you read it; read it again.');
  if (changes.enabled === false) await dropPendingMessages(tx, principal.orgId, id);
  // Enabled again, it starts afresh: five days of failures count from its next failure.
  if (changes.enabled === true)
    await tx.execute(
      sql`update webhook_queues set failing_since = null where org_id = ${principal.orgId} and webhook_id = ${id}`,
    );
  await recordEvent(tx, principal.orgId, actorOf(principal), 'webhook.updated', id, {
    changed: Object.keys(changes),
  });
  return getWebhook(tx, principal.orgId, id);
}

export async function deleteWebhook(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<void> {
  const [deleted] = await tx
    .delete(webhooks)
    .where(webhookKey(principal.orgId, id))
    .returning({ id: webhooks.id });
  if (!deleted) throw notFound('The webhook');
  await recordEvent(tx, principal.orgId, actorOf(principal), 'webhook.deleted', id, {});
}

/**
 * A new secret: from now on it signs, and the one it replaces signs too for 24 hours; any older
 * one stops at once, so that after a second rotation within 24 h only the two newest sign.
 */
export async function rotateWebhookSecret(tx: DbOrTx, principal: KeyPrincipal, id: string) {
  const orgId = principal.orgId;
  // The webhook's row lock orders concurrent rotations of one webhook.
  const [locked] = await tx
    .select({ id: webhooks.id })
    .from(webhooks)
    .where(webhookKey(orgId, id))
    .for('update');
  if (!locked) throw notFound('The webhook');
  const ofWebhook = and(eq(webhookSecrets.orgId, orgId), eq(webhookSecrets.webhookId, id));
  await tx
    .update(webhookSecrets)
    .set({ expiresAt: sql`least(${webhookSecrets.expiresAt}, now())` })
    .where(and(ofWebhook, sql`${webhookSecrets.expiresAt} > now()`));
  await tx
    .update(webhookSecrets)
    .set({ expiresAt: sql`now() + make_interval(hours => ${previousSecretHours})` })
    .where(and(ofWebhook, isNull(webhookSecrets.expiresAt)));
  const secret = newSecret();
  await tx.insert(webhookSecrets).values({ orgId, id: uuidv7(), webhookId: id, secret });
  await recordEvent(tx, orgId, actorOf(principal), 'webhook.updated', id, { changed: ['secret'] });
  return { secret };
}

/** The secrets that sign a delivery now, newest first (the current one, and the previous for 24 h). */
export async function signingSecrets(db: DbOrTx, orgId: string, webhookId: string): Promise<string[]> {
  const rows = await db
    .select({ secret: webhookSecrets.secret })
    .from(webhookSecrets)
    .where(
      and(
        eq(webhookSecrets.orgId, orgId),
        eq(webhookSecrets.webhookId, webhookId),
        sql`(${webhookSecrets.expiresAt} is null or ${webhookSecrets.expiresAt} > now())`,
      ),
    )
    .orderBy(sql`${webhookSecrets.createdAt} desc`, sql`${webhookSecrets.id} desc`);
  return rows.map((row) => row.secret);
}

/**
 * Ends the pending messages of a disabled endpoint (API.md §10: a disabled endpoint receives
 * nothing, and re-enabling starts with the next new message): their pending attempts become
 * failed ones that say why, so the deliveries list still shows what was never sent, and no failed
 * attempt says any more that its message will be tried again.
 */
export async function dropPendingMessages(tx: DbOrTx, orgId: string, webhookId: string): Promise<void> {
  await tx.execute(sql`
    with dropped as (
      update webhook_deliveries
      set status = 'failed', next_attempt_at = null, error = 'not sent: the endpoint was disabled'
      where org_id = ${orgId} and webhook_id = ${webhookId} and status = 'pending'
      returning org_id, message_id
    )
    update webhook_messages m set finished_at = now()
    from dropped where m.org_id = dropped.org_id and m.id = dropped.message_id and m.finished_at is null`);
  await tx.execute(sql`
    update webhook_deliveries set next_attempt_at = null
    where org_id = ${orgId} and webhook_id = ${webhookId} and status = 'failed' and next_attempt_at is not null`);
  await tx.execute(
    sql`update webhook_queues set next_due_at = null where org_id = ${orgId} and webhook_id = ${webhookId}`,
  );
}

/**
 * The dispatcher disables an endpoint that answered `410 Gone` (`gone`) or has failed for five
 * days (`failing`), and drops its pending messages; the audit log shows it, done by the system.
 */
export async function disableWebhook(
  tx: DbOrTx,
  orgId: string,
  id: string,
  reason: 'gone' | 'failing',
): Promise<void> {
  const [disabled] = await tx
    .update(webhooks)
    .set({
      enabled: false,
      disabledReason: reason,
      version: sql`${webhooks.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(and(webhookKey(orgId, id), eq(webhooks.enabled, true)))
    .returning({ id: webhooks.id });
  await dropPendingMessages(tx, orgId, id);
  if (disabled)
    await recordEvent(tx, orgId, { kind: 'system' }, 'webhook.updated', id, {
      changed: ['enabled', 'disabledReason'],
    });
}
