/**
 * Events (API.md §5): creation with the organisation's defaults, lists with their filters, reads
 * with aggregates over the shifts (one lateral join, no N+1), updates under If-Match, cancellation
 * cascading to shifts and signups, and deletion of drafts.
 */
import { and, eq, gte, inArray, type SQL, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound, refusals } from '../../core/errors.ts';
import { assertVersion, versionIn } from '../../core/http-cache.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import { cursorTime, keysetPage, type Page, thenById } from '../../core/pagination.ts';
import { containsPattern, type DbOrTx } from '../../db/client.ts';
import { constraintOf } from '../../db/errors.ts';
import { events, organizations, shifts, signups } from '../../db/schema.ts';
import { cancelShiftsWhere, startsAfterBoundFor } from '../shifts/service.ts';
import type { createEventBody, event as eventSchema, updateEventBody } from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

/** An event as the API describes it (its response schema, decoded: timestamps as Dates). */
export type Event = z.output<typeof eventSchema>;

export type EventInput = z.output<typeof createEventBody>;

/** The sort key of event lists: events without shifts come last. */
const startKey = sql<Date>`coalesce(${events.startsAt}, 'infinity'::timestamptz)`;

function totalsOf(db: DbOrTx) {
  return db
    .select({
      shiftCount: sql<number>`count(*)::int`.as('shift_count'),
      capacity: sql<number>`coalesce(sum(${shifts.capacity}), 0)::int`.as('capacity_total'),
      confirmedCount: sql<number>`coalesce(sum(${shifts.confirmedCount}), 0)::int`.as('confirmed_total'),
    })
    .from(shifts)
    .where(
      and(eq(shifts.orgId, events.orgId), eq(shifts.eventId, events.id), sql`${shifts.cancelledAt} is null`),
    )
    .as('totals');
}

function selectEvents(db: DbOrTx) {
  const totals = totalsOf(db);
  return db
    .select({
      id: events.id,
      title: events.title,
      description: events.description,
      timezone: events.timezone,
      location: events.location,
      visibility: events.visibility,
      status: events.status,
      tags: events.tags,
      startsAt: events.startsAt,
      endsAt: events.endsAt,
      shiftCount: totals.shiftCount,
      capacity: totals.capacity,
      confirmedCount: totals.confirmedCount,
      createdAt: events.createdAt,
      updatedAt: events.updatedAt,
      version: events.version,
      startKeyText: cursorTime(events.startsAt),
    })
    .from(events)
    .leftJoinLateral(totals, sql`true`);
}

type EventRow = Awaited<ReturnType<ReturnType<typeof selectEvents>['execute']>>[number];

function toEvent(row: EventRow): Event {
  const { version: _version, startKeyText: _key, ...event } = row;
  return {
    ...event,
    shiftCount: Number(event.shiftCount ?? 0),
    capacity: Number(event.capacity ?? 0),
    confirmedCount: Number(event.confirmedCount ?? 0),
  };
}

export async function getEvent(db: DbOrTx, orgId: string, id: string) {
  const [row] = await selectEvents(db).where(and(eq(events.orgId, orgId), eq(events.id, id)));
  if (!row) throw notFound('The event');
  return { event: toEvent(row), version: row.version };
}

export async function createEvent(tx: DbOrTx, principal: KeyPrincipal, input: EventInput) {
  let timezone = input.timezone;
  if (!timezone) {
    const [organization] = await tx
      .select({ timezone: organizations.timezone })
      .from(organizations)
      .where(eq(organizations.id, principal.orgId));
    timezone = organization?.timezone ?? 'UTC';
  }
  const id = uuidv7();
  const status = input.status ?? 'draft';
  await tx.insert(events).values({
    orgId: principal.orgId,
    id,
    title: input.title,
    description: input.description ?? null,
    timezone,
    location: input.location ?? null,
    visibility: input.visibility ?? 'public',
    status,
    tags: input.tags ?? [],
    publishedAt: status === 'published' ? sql`now()` : null,
  });
  const actor = actorOf(principal);
  await recordEvent(tx, principal.orgId, actor, 'event.created', id, { eventId: id });
  if (status === 'published') {
    await recordEvent(tx, principal.orgId, actor, 'event.published', id, { eventId: id });
  }
  return getEvent(tx, principal.orgId, id);
}

export interface EventFilters {
  limit: number;
  cursor?: string | undefined;
  status?: Event['status'] | undefined;
  visibility?: Event['visibility'] | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  q?: string | undefined;
  tag?: string | undefined;
  updatedSince?: Date | undefined;
}

/** Events ordered by startsAt (those without shifts last), then id. */
export async function listEvents(db: DbOrTx, orgId: string, filters: EventFilters): Promise<Page<Event>> {
  const conditions: (SQL | undefined)[] = [eq(events.orgId, orgId)];
  if (filters.status) conditions.push(eq(events.status, filters.status));
  if (filters.visibility) conditions.push(eq(events.visibility, filters.visibility));
  if (filters.from || filters.to) {
    const { from, to } = filters;
    // The event's span must overlap (a missing bound is unbounded; the span columns filter, no
    // index of their own); then one of its shifts must, found on the start-ordered index of the event's shifts.
    if (to) conditions.push(sql`${events.startsAt} < ${to}`);
    if (from) conditions.push(sql`${events.endsAt} > ${from}`);
    const shiftOverlap: SQL[] = [
      sql`${shifts.orgId} = ${events.orgId}`,
      sql`${shifts.eventId} = ${events.id}`,
    ];
    if (to) shiftOverlap.push(sql`${shifts.startsAt} < ${to}`);
    if (from) shiftOverlap.push(sql`${shifts.endsAt} > ${from}`, startsAfterBoundFor(orgId, from));
    conditions.push(sql`exists (select 1 from ${shifts} where ${sql.join(shiftOverlap, sql` and `)})`);
  }
  if (filters.q) conditions.push(sql`${events.title} ilike ${containsPattern(filters.q)}`);
  if (filters.tag) conditions.push(sql`${events.tags} @> array[${filters.tag}]::text[]`);
  if (filters.updatedSince) conditions.push(gte(events.updatedAt, filters.updatedSince));
  // The page's ids first (ordered, limited, and the next cursor), then the aggregates for those
  // rows only: computing them before the LIMIT would cost one aggregate per matching event.
  const ids = await keysetPage(
    db
      .select({ id: events.id, startKeyText: cursorTime(events.startsAt) })
      .from(events)
      .$dynamic(),
    conditions,
    {
      orderBy: thenById([startKey, 'timestamptz'], events.id),
      page: filters,
      keyOf: (key) => [key.startKeyText, key.id],
      toItem: (key) => key.id,
    },
  );
  const rows =
    ids.data.length === 0
      ? []
      : await selectEvents(db).where(and(eq(events.orgId, orgId), inArray(events.id, ids.data)));
  const byId = new Map(rows.map((row) => [row.id, row]));
  return { data: ids.data.flatMap((id) => byId.get(id) ?? []).map(toEvent), nextCursor: ids.nextCursor };
}

export async function updateEvent(
  tx: DbOrTx,
  principal: KeyPrincipal,
  id: string,
  changes: z.output<typeof updateEventBody>,
  expectedVersions: number[] | null,
) {
  const { event: current, version } = await getEvent(tx, principal.orgId, id);
  if (Object.keys(changes).length === 0) {
    assertVersion(expectedVersions, version, 'The event');
    return { event: current, version };
  }
  if (current.status === 'cancelled')
    throw new AppError('invalid-state', 'The event is cancelled; it cannot change.');
  const publishing = changes.status === 'published' && current.status !== 'published';
  const [updated] = await tx
    .update(events)
    .set({
      ...changes,
      ...(publishing ? { publishedAt: sql`now()` } : {}),
      version: sql`${events.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(
      and(
        eq(events.orgId, principal.orgId),
        eq(events.id, id),
        sql`${events.status} <> 'cancelled'`,
        versionIn(events.version, expectedVersions),
      ),
    )
    .returning({ id: events.id });
  if (!updated)
    throw new AppError('precondition-failed', 'The event has changed since you read it; read it again.');
  const actor = actorOf(principal);
  await recordEvent(tx, principal.orgId, actor, 'event.updated', id, {
    eventId: id,
    changed: Object.keys(changes),
  });
  if (publishing) {
    await recordEvent(tx, principal.orgId, actor, 'event.published', id, { eventId: id });
  }
  return getEvent(tx, principal.orgId, id);
}

/** Locks the event for a write that depends on its status; 404 when it does not exist. */
async function lockEvent(tx: DbOrTx, orgId: string, id: string) {
  const [locked] = await tx
    .select({ status: events.status })
    .from(events)
    .where(and(eq(events.orgId, orgId), eq(events.id, id)))
    .for('update');
  if (!locked) throw notFound('The event');
  return locked;
}

/** Cancels the event, all its shifts and all their active signups, in one transaction. */
export async function cancelEvent(tx: DbOrTx, principal: KeyPrincipal, id: string) {
  const locked = await lockEvent(tx, principal.orgId, id);
  if (locked.status === 'cancelled') throw new AppError('invalid-state', 'The event is already cancelled.');
  const actor = actorOf(principal);
  await cancelShiftsWhere(tx, principal.orgId, actor, { eventId: id });
  await tx
    .update(events)
    .set({
      status: 'cancelled',
      cancelledAt: sql`now()`,
      version: sql`${events.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(and(eq(events.orgId, principal.orgId), eq(events.id, id)));
  await recordEvent(tx, principal.orgId, actor, 'event.cancelled', id, { eventId: id });
  return getEvent(tx, principal.orgId, id);
}

/** Deletes a draft that never had a signup; anything else is cancelled instead. */
export async function deleteEvent(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<void> {
  const locked = await lockEvent(tx, principal.orgId, id);
  if (locked.status !== 'draft') {
    throw new AppError(
      'invalid-state',
      `Only a draft can be deleted; this event is ${locked.status}. Cancel it instead.`,
    );
  }
  const [signup] = await tx
    .select({ id: signups.id })
    .from(signups)
    .innerJoin(shifts, and(eq(shifts.orgId, signups.orgId), eq(shifts.id, signups.shiftId)))
    .where(and(eq(signups.orgId, principal.orgId), eq(shifts.eventId, id)))
    .limit(1);
  if (signup) throw refusals.eventHasSignups();
  try {
    await tx.delete(events).where(and(eq(events.orgId, principal.orgId), eq(events.id, id)));
  } catch (error) {
    // A signup made meanwhile blocks the cascade to the event's shifts: the event's refusal, not
    // the shift's that the foreign key alone would name.
    if (constraintOf(error) === 'signups_shift_fk') throw refusals.eventHasSignups();
    throw error;
  }
  await recordEvent(tx, principal.orgId, actorOf(principal), 'event.deleted', id, { eventId: id });
}
