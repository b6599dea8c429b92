/**
 * The audit log (API.md §10): who did what to which resource, when. It is read from the outbox,
 * where every write records its domain event in the write's own transaction (core/outbox.ts), so
 * no write can commit without its audit event; outbox rows are kept for `auditRetentionDays`.
 */
import { and, eq, gte, lt, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { cursorTime, keysetPage, type Page } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import type { RowOf } from '../../db/columns.ts';
import { deleteInBatches } from '../../db/purge.ts';
import { apiKeys, outbox } from '../../db/schema.ts';
import type { auditEvent } from './schemas.ts';

export type AuditEvent = z.output<typeof auditEvent>;

/** How long audit events (outbox rows) are kept. */
export const auditRetentionDays = 400;

/** An outbox row as the audit log reads it, with the acting key's name and the keyset's key. */
const auditSelection = {
  id: outbox.id,
  type: outbox.type,
  resourceType: outbox.resourceType,
  resourceId: outbox.resourceId,
  actor: outbox.actor,
  keyName: apiKeys.name,
  payload: outbox.payload,
  at: outbox.createdAt,
  atKey: cursorTime(outbox.createdAt),
};
// The key is left-joined: no name for a volunteer's or the system's events.
type AuditRow = Omit<RowOf<typeof auditSelection>, 'keyName'> & { keyName: string | null };

/**
 * The actor as the audit log shows it. A key is named by its name; a volunteer only as
 * "volunteer" (their name is personal data); the platform administrator (ADMIN_TOKEN), an
 * anonymous caller and the system's own work are "system".
 */
function actorOf(row: AuditRow): AuditEvent['actor'] {
  if (row.actor.kind === 'key') return { kind: 'key', id: row.actor.id ?? null, name: row.keyName ?? 'key' };
  if (row.actor.kind === 'volunteer')
    return { kind: 'volunteer', id: row.actor.id ?? null, name: 'volunteer' };
  return { kind: 'system', id: null, name: 'system' };
}

/** The changed fields' names and nothing else of the payload, which may carry values. */
function dataOf(payload: Record<string, unknown>): AuditEvent['data'] {
  const changed = payload.changed;
  return Array.isArray(changed) ? { changed: changed.filter((name) => typeof name === 'string') } : {};
}

/** The organisation's audit events, newest first, keyset-paginated. */
export async function listAuditEvents(
  db: DbOrTx,
  orgId: string,
  query: {
    limit: number;
    cursor?: string | undefined;
    resourceId?: string | undefined;
    from?: Date | undefined;
    to?: Date | undefined;
  },
): Promise<Page<AuditEvent>> {
  const rows = db
    .select(auditSelection)
    .from(outbox)
    .leftJoin(
      apiKeys,
      and(
        eq(apiKeys.orgId, outbox.orgId),
        sql`${outbox.actor}->>'kind' = 'key'`,
        sql`${apiKeys.id}::text = ${outbox.actor}->>'id'`,
      ),
    )
    .$dynamic();
  return keysetPage(
    rows,
    [
      eq(outbox.orgId, orgId),
      query.resourceId ? eq(outbox.resourceId, query.resourceId) : undefined,
      query.from && gte(outbox.createdAt, query.from),
      query.to && lt(outbox.createdAt, query.to),
    ],
    {
      orderBy: [
        [outbox.createdAt, 'timestamptz'],
        [outbox.id, 'uuid'],
      ],
      descending: true,
      page: query,
      keyOf: (row) => [row.atKey, row.id],
      toItem: (row) => ({
        id: row.id,
        type: row.type,
        resourceType: row.resourceType,
        resourceId: row.resourceId,
        actor: actorOf(row),
        at: row.at,
        data: dataOf(row.payload),
      }),
    },
  );
}

/** Deletes audit events older than `auditRetentionDays`; returns how many went. */
export async function purgeOldAuditEvents(db: DbOrTx, batch = 5_000): Promise<number> {
  return deleteInBatches(
    db,
    'outbox',
    sql`created_at < now() - make_interval(days => ${auditRetentionDays})`,
    batch,
  );
}
