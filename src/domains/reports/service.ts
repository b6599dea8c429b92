/**
 * Reports (API.md §10): the hours each volunteer gave over a period, and an event's roster, the
 * tables an organiser opens in a spreadsheet. The CSV text is written by the routes (csv.ts); these
 * are the rows.
 */
import { and, eq, gte, lt, type SQL, sql } from 'drizzle-orm';
import type { z } from 'zod';
import type { Principal } from '../../core/auth.ts';
import { cursorTime, keysetPage } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import type { RowOf } from '../../db/columns.ts';
import { shifts, signups, volunteers } from '../../db/schema.ts';
import { assertEventVisible } from '../shifts/service.ts';
import type { hoursRow } from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

export type HoursRow = z.output<typeof hoursRow>;

/** The joins of both reports: each signup with its shift and its volunteer. */
const shiftOfSignup = and(eq(shifts.orgId, signups.orgId), eq(shifts.id, signups.shiftId));
const volunteerOfSignup = and(eq(volunteers.orgId, signups.orgId), eq(volunteers.id, signups.volunteerId));

const count = (condition: SQL) => sql<number>`count(*) filter (where ${condition})`.mapWith(Number);

/**
 * One row per volunteer with at least one signup, whatever its status, on a shift *starting* in
 * `[from, to)`, so that each shift's hours count in one period only. Erased volunteers keep their
 * row, without name and email. Ordered by name (erased ones last), then id.
 */
export async function hoursReport(
  db: DbOrTx,
  orgId: string,
  range: { from?: Date | undefined; to?: Date | undefined },
): Promise<HoursRow[]> {
  const attended = sql`${signups.status} = 'attended'`;
  return db
    .select({
      volunteerId: volunteers.id,
      name: volunteers.name,
      email: volunteers.email,
      shiftsAttended: count(attended),
      hours: sql<number>`coalesce(sum(${signups.hours}) filter (where ${attended}), 0)`.mapWith(Number),
      noShows: count(sql`${signups.status} = 'no_show'`),
      lateCancellations: count(sql`${signups.lateCancellation}`),
    })
    .from(signups)
    .innerJoin(shifts, shiftOfSignup)
    .innerJoin(volunteers, volunteerOfSignup)
    .where(
      and(
        eq(signups.orgId, orgId),
        range.from && gte(shifts.startsAt, range.from),
        range.to && lt(shifts.startsAt, range.to),
      ),
    )
    .groupBy(volunteers.orgId, volunteers.id)
    .orderBy(sql`${volunteers.name} asc nulls last`, volunteers.id);
}

/** A roster row as read, with the keyset's sort key (timestamps with their microseconds). */
const rosterSelection = {
  shiftId: shifts.id,
  shiftTitle: shifts.title,
  startsAt: shifts.startsAt,
  endsAt: shifts.endsAt,
  volunteerId: signups.volunteerId,
  name: volunteers.name,
  email: volunteers.email,
  phone: volunteers.phone,
  status: signups.status,
  checkedInAt: signups.checkedInAt,
  checkedOutAt: signups.checkedOutAt,
  hours: signups.hours,
  signupId: signups.id,
  startsAtKey: cursorTime(shifts.startsAt),
  createdAtKey: cursorTime(signups.createdAt),
};

export type RosterRow = Omit<RowOf<typeof rosterSelection>, 'signupId' | 'startsAtKey' | 'createdAtKey'>;

/** How many roster rows one query reads: the memory a roster needs, whatever the event's size. */
export const rosterBatch = 500;

/**
 * The event's roster, or 404 for an event the organisation does not have. Its first batch is read
 * before the answer starts, so that a failure there is a problem answer, not a broken download.
 */
export async function rosterOf(
  db: DbOrTx,
  principal: KeyPrincipal,
  eventId: string,
): Promise<AsyncIterable<RosterRow>> {
  await assertEventVisible(db, principal, eventId);
  const rows = rosterRows(db, principal.orgId, eventId);
  const first = await rows.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* rows;
  })();
}

/**
 * Every signup of the event, whatever its status, ordered by shift start then signup creation
 * (then ids, for a total order), read `rosterBatch` rows at a time by keyset. Each batch is read
 * as it is sent; a change made meanwhile shows in the batches read after it, and no row is read
 * twice.
 */
async function* rosterRows(db: DbOrTx, orgId: string, eventId: string): AsyncGenerator<RosterRow> {
  const query = db
    .select(rosterSelection)
    .from(signups)
    .innerJoin(shifts, shiftOfSignup)
    .innerJoin(volunteers, volunteerOfSignup)
    .$dynamic();
  let cursor: string | undefined;
  do {
    const page = await keysetPage(query, [eq(signups.orgId, orgId), eq(shifts.eventId, eventId)], {
      orderBy: [
        [shifts.startsAt, 'timestamptz'],
        [shifts.id, 'uuid'],
        [signups.createdAt, 'timestamptz'],
        [signups.id, 'uuid'],
      ],
      page: { cursor, limit: rosterBatch },
      keyOf: (row) => [row.startsAtKey, row.shiftId, row.createdAtKey, row.signupId],
      toItem: ({ signupId: _, startsAtKey: __, createdAtKey: ___, ...row }) => row,
    });
    yield* page.data;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}
