/**
 * Shifts (API.md §6): creation one by one or in bulk (with recurrence), lists, reads with the
 * caller's eligibility, updates under If-Match, cancellation and deletion. The span of each event
 * (`events.starts_at`/`ends_at`) is kept here, by the writes that change it.
 */
import { and, eq, gt, inArray, isNull, lt, type SQL, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound, refusals } from '../../core/errors.ts';
import { assertVersion } from '../../core/http-cache.ts';
import { type Actor, actorOf, recordEvent } from '../../core/outbox.ts';
import { cursorTime, keysetPage, type Page, thenById } from '../../core/pagination.ts';
import { type DbOrTx, queryRows } from '../../db/client.ts';
import { columnsExcept, type RowOf } from '../../db/columns.ts';
import { constraintOf } from '../../db/errors.ts';
import { events, organizations, roles, shifts, signups } from '../../db/schema.ts';
import { cancelSignups, lockShifts, placesFreed, shiftsAwaitingFreedVolunteers } from '../signups/places.ts';
import { eligibilityOf, loadClaimFacts } from '../signups/rules.ts';
import { expandRecurrence, type RecurrenceInput } from './recurrence.ts';
import {
  type CreateShiftInput,
  type shift as shiftSchema,
  shiftTimeProblems,
  type UpdateShiftInput,
} from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

/** A shift as the API describes it (its response schema, decoded: timestamps as Dates). */
export type Shift = z.output<typeof shiftSchema>;
export type ShiftStatus = Shift['status'];

/**
 * A shift's updatedAt (API.md §1): the later of its own change and its counts' (migration 0017
 * keeps them apart, so that a claim touches no indexed column).
 */
export const shiftUpdatedAt = sql<Date>`greatest(${shifts.updatedAt}, ${shifts.countedAt})`.mapWith(
  shifts.updatedAt,
);

export const shiftColumns = {
  // `signupClosesAt` as stored: null means "until the start" (toShift gives the effective time).
  ...columnsExcept(shifts, ['orgId', 'period', 'countedAt']),
  updatedAt: shiftUpdatedAt,
  startsAtText: cursorTime(shifts.startsAt),
};

type ShiftRow = RowOf<typeof shiftColumns>;

export function shiftStatusOf(
  row: Pick<ShiftRow, 'cancelledAt' | 'signupOpensAt' | 'confirmedCount' | 'capacity'> & {
    signupClosesAt: Date;
  },
  now: Date,
): ShiftStatus {
  if (row.cancelledAt) return 'cancelled';
  if ((row.signupOpensAt && now < row.signupOpensAt) || now >= row.signupClosesAt) return 'closed';
  if (row.confirmedCount >= row.capacity) return 'full';
  return 'open';
}

export function toShift(row: ShiftRow, now: Date): Shift {
  const signupClosesAt = row.signupClosesAt ?? row.startsAt;
  return {
    id: row.id,
    eventId: row.eventId,
    roleId: row.roleId,
    title: row.title,
    description: row.description,
    location: row.location,
    startsAt: row.startsAt,
    endsAt: row.endsAt,
    capacity: row.capacity,
    confirmedCount: row.confirmedCount,
    waitlistCount: row.waitlistCount,
    available: row.capacity - row.confirmedCount,
    waitlist: row.waitlist,
    signupOpensAt: row.signupOpensAt,
    signupClosesAt,
    cancelUntil: row.cancelUntil,
    minAge: row.minAge,
    status: shiftStatusOf({ ...row, signupClosesAt }, now),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Adds `eligibility` to each shift when the caller is a volunteer (one query for the page). */
async function withEligibility(db: DbOrTx, principal: Principal, list: Shift[], now: Date): Promise<Shift[]> {
  if (principal.kind !== 'volunteer') return list;
  const facts = await loadClaimFacts(
    db,
    principal.orgId,
    principal.volunteerId,
    list.map((item) => item.id),
  );
  return list.map((item) => {
    const itemFacts = facts.get(item.id);
    return itemFacts ? { ...item, eligibility: eligibilityOf(itemFacts, now) } : item;
  });
}

/** Volunteers see only the shifts of published events. */
function visibleTo(principal: Principal): SQL | undefined {
  if (principal.kind !== 'volunteer') return undefined;
  return sql`exists (select 1 from ${events} where ${events.orgId} = ${shifts.orgId}
    and ${events.id} = ${shifts.eventId} and ${events.status} = 'published')`;
}

async function readShiftRow(db: DbOrTx, principal: Principal, id: string, lock = false): Promise<ShiftRow> {
  const query = db
    .select(shiftColumns)
    .from(shifts)
    .where(and(eq(shifts.orgId, principal.orgId), eq(shifts.id, id), visibleTo(principal)));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw notFound('The shift');
  return row;
}

export async function getShift(db: DbOrTx, principal: Principal, id: string) {
  const now = new Date();
  const row = await readShiftRow(db, principal, id);
  const [shift] = await withEligibility(db, principal, [toShift(row, now)], now);
  return { shift: shift as Shift, version: row.version };
}

/** 404 unless the event exists and the caller may see its shifts (volunteers: published only). */
export async function assertEventVisible(db: DbOrTx, principal: Principal, eventId: string): Promise<void> {
  const [event] = await db
    .select({ status: events.status })
    .from(events)
    .where(and(eq(events.orgId, principal.orgId), eq(events.id, eventId)));
  if (!event || (principal.kind === 'volunteer' && event.status !== 'published')) throw notFound('The event');
}

export interface ShiftFilters {
  limit: number;
  cursor?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  roleId?: string | undefined;
  available?: boolean | undefined;
  updatedSince?: Date | undefined;
  eventId?: string | undefined;
}

/**
 * `shifts.starts_at > from - longest`: a shift overlapping `from` started at most the organisation's
 * longest shift before it. It turns the overlap into a range on the start-ordered indexes.
 */
export function startsAfterBoundFor(orgId: string, from: Date): SQL {
  return sql`${shifts.startsAt} > ${from}::timestamptz - (select ${organizations.longestShift} from ${organizations} where ${organizations.id} = ${orgId})`;
}

/** Keeps `organizations.longest_shift` an upper bound of its shifts' durations. */
async function recordShiftDurations(tx: DbOrTx, orgId: string, durationsMs: number[]): Promise<void> {
  const longestSeconds = Math.max(0, ...durationsMs) / 1000;
  await tx.execute(sql`update ${organizations} set longest_shift = make_interval(secs => ${longestSeconds})
    where id = ${orgId} and longest_shift < make_interval(secs => ${longestSeconds})`);
}

/**
 * Shifts whose updatedAt (`shiftUpdatedAt`) is at or after `since`: changed themselves
 * (shifts_by_update), or counted since, which only a signup's change does, and the signup's
 * updated_at moves with it (the trigger of migration 0017 refuses a status change that leaves it
 * behind). The shifts of the signups changed since come from signups_by_update, so that both
 * halves can be index scans bounded by what changed; the planner's choice on a large organisation
 * with few changes is still to be checked (docs/performance.md).
 */
function changedSince(orgId: string, since: Date): SQL {
  const at = sql`${since.toISOString()}::timestamptz`;
  return sql`(${shifts.updatedAt} >= ${at} or (${shifts.countedAt} >= ${at} and ${shifts.id} = any(array(
    select distinct ${signups.shiftId} from ${signups} where ${signups.orgId} = ${orgId} and ${signups.updatedAt} >= ${at}))))`;
}

/** Shifts ordered by startsAt, then id, as the caller sees them; with `eventId`, one event's. */
export async function listShifts(
  db: DbOrTx,
  principal: Principal,
  filters: ShiftFilters,
): Promise<Page<Shift>> {
  const now = new Date();
  const page = await shiftPage(db, principal.orgId, filters, { visible: visibleTo(principal), now });
  return { ...page, data: await withEligibility(db, principal, page.data, now) };
}

/**
 * A page of the organisation's shifts ordered by startsAt, then id, their status as of `now`:
 * the list every reader of shifts uses (the caller's view adds to it; the public domain too).
 */
export async function shiftPage(
  db: DbOrTx,
  orgId: string,
  filters: ShiftFilters,
  view: { visible?: SQL | undefined; now: Date },
): Promise<Page<Shift>> {
  const conditions: (SQL | undefined)[] = [eq(shifts.orgId, orgId), view.visible];
  if (filters.eventId) conditions.push(eq(shifts.eventId, filters.eventId));
  if (filters.to) conditions.push(lt(shifts.startsAt, filters.to));
  if (filters.from)
    conditions.push(gt(shifts.endsAt, filters.from), startsAfterBoundFor(orgId, filters.from));
  if (filters.roleId) conditions.push(eq(shifts.roleId, filters.roleId));
  if (filters.available === true) {
    conditions.push(isNull(shifts.cancelledAt), sql`${shifts.confirmedCount} < ${shifts.capacity}`);
  } else if (filters.available === false) {
    conditions.push(
      sql`(${shifts.cancelledAt} is not null or ${shifts.confirmedCount} >= ${shifts.capacity})`,
    );
  }
  if (filters.updatedSince) conditions.push(changedSince(orgId, filters.updatedSince));
  return keysetPage(db.select(shiftColumns).from(shifts).$dynamic(), conditions, {
    orderBy: thenById([shifts.startsAt, 'timestamptz'], shifts.id),
    page: filters,
    keyOf: (row) => [row.startsAtText, row.id],
    toItem: (row) => toShift(row, view.now),
  });
}

// ── Writes ───────────────────────────────────────────────────────────────────────────────────

interface EventForShifts {
  id: string;
  status: 'draft' | 'published' | 'cancelled';
  timezone: string;
}

/** The event a shift write belongs to, locked so that a concurrent cancel cannot interleave. */
async function lockEventForShiftWrite(tx: DbOrTx, orgId: string, eventId: string): Promise<EventForShifts> {
  const [event] = await tx
    .select({ id: events.id, status: events.status, timezone: events.timezone })
    .from(events)
    .where(and(eq(events.orgId, orgId), eq(events.id, eventId)))
    .for('update');
  if (!event) throw notFound('The event');
  if (event.status === 'cancelled')
    throw new AppError('invalid-state', 'The event is cancelled; its shifts cannot change.');
  return event;
}

async function assertRolesExist(
  tx: DbOrTx,
  orgId: string,
  roleIds: (string | null | undefined)[],
  path: (index: number) => string,
) {
  const wanted = [...new Set(roleIds.filter((id): id is string => typeof id === 'string'))];
  if (wanted.length === 0) return;
  const found = await tx
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), inArray(roles.id, wanted)));
  const known = new Set(found.map((role) => role.id));
  const errors = roleIds.flatMap((id, index) =>
    typeof id === 'string' && !known.has(id)
      ? [{ path: path(index), message: 'no role of this organisation has this id' }]
      : [],
  );
  if (errors.length > 0) {
    throw new AppError('validation-failed', `${errors[0]?.path}: ${errors[0]?.message}`, { errors });
  }
}

/** Recomputes the event's span from its shifts; not a change of the event itself (no updatedAt). */
export async function refreshEventSpan(tx: DbOrTx, orgId: string, eventId: string): Promise<void> {
  await tx.execute(sql`
    update events set
      starts_at = (select min(starts_at) from shifts where org_id = ${orgId} and event_id = ${eventId}),
      ends_at = (select max(ends_at) from shifts where org_id = ${orgId} and event_id = ${eventId})
    where org_id = ${orgId} and id = ${eventId}`);
}

function insertValues(orgId: string, eventId: string, input: CreateShiftInput) {
  return {
    orgId,
    id: uuidv7(),
    eventId,
    roleId: input.roleId ?? null,
    title: input.title ?? null,
    description: input.description ?? null,
    location: input.location ?? null,
    startsAt: input.startsAt,
    endsAt: input.endsAt,
    capacity: input.capacity,
    waitlist: input.waitlist ?? true,
    signupOpensAt: input.signupOpensAt ?? null,
    signupClosesAt: input.signupClosesAt ?? null,
    cancelUntil: input.cancelUntil ?? null,
    minAge: input.minAge ?? null,
  };
}

/** Creates shifts in one statement: all or nothing. Returned in start order. */
export async function createShifts(
  tx: DbOrTx,
  principal: KeyPrincipal,
  eventId: string,
  inputs: CreateShiftInput[],
  rolePath: (index: number) => string,
): Promise<Shift[]> {
  await lockEventForShiftWrite(tx, principal.orgId, eventId);
  await assertRolesExist(
    tx,
    principal.orgId,
    inputs.map((input) => input.roleId),
    rolePath,
  );
  const values = inputs.map((input) => insertValues(principal.orgId, eventId, input));
  const rows = await tx.insert(shifts).values(values).returning(shiftColumns);
  await recordShiftDurations(
    tx,
    principal.orgId,
    inputs.map((input) => input.endsAt.getTime() - input.startsAt.getTime()),
  );
  await refreshEventSpan(tx, principal.orgId, eventId);
  const actor = actorOf(principal);
  for (const row of rows) {
    await recordEvent(tx, principal.orgId, actor, 'shift.created', row.id, { shiftId: row.id, eventId });
  }
  const now = new Date();
  return rows
    .map((row) => toShift(row, now))
    .sort((a, b) => a.startsAt.getTime() - b.startsAt.getTime() || (a.id < b.id ? -1 : 1));
}

export async function createShift(
  tx: DbOrTx,
  principal: KeyPrincipal,
  eventId: string,
  input: CreateShiftInput,
) {
  const [created] = await createShifts(tx, principal, eventId, [input], () => 'body.roleId');
  const { shift, version } = await getShift(tx, principal, (created as Shift).id);
  return { shift, version };
}

/** The recurrence form of bulk creation: the template at each occurrence, in the event's zone. */
export async function createRecurringShifts(
  tx: DbOrTx,
  principal: KeyPrincipal,
  eventId: string,
  template: Omit<
    CreateShiftInput,
    'startsAt' | 'endsAt' | 'signupOpensAt' | 'signupClosesAt' | 'cancelUntil'
  >,
  recurrence: RecurrenceInput,
): Promise<Shift[]> {
  const [event] = await tx
    .select({ timezone: events.timezone })
    .from(events)
    .where(and(eq(events.orgId, principal.orgId), eq(events.id, eventId)));
  if (!event) throw notFound('The event');
  const occurrences = expandRecurrence(recurrence, event.timezone);
  return createShifts(
    tx,
    principal,
    eventId,
    occurrences.map((times) => ({ ...template, ...times })),
    () => 'body.template.roleId',
  );
}

/**
 * Locks the shift's event, then the shift (with `alsoLock`, in one id order), and reads it: the
 * order that event cancellation uses too, so a shift write and an event cancel never wait on each
 * other crosswise.
 */
async function lockShiftAndEvent(tx: DbOrTx, principal: KeyPrincipal, id: string, alsoLock: string[] = []) {
  const { eventId } = await readShiftRow(tx, principal, id);
  await tx
    .select({ id: events.id })
    .from(events)
    .where(and(eq(events.orgId, principal.orgId), eq(events.id, eventId)))
    .for('update');
  await lockShifts(tx, principal.orgId, [id, ...alsoLock]);
  return readShiftRow(tx, principal, id, true);
}

export async function updateShift(
  tx: DbOrTx,
  principal: KeyPrincipal,
  id: string,
  changes: UpdateShiftInput,
  expectedVersions: number[] | null,
) {
  // New times free this shift's volunteers at the old ones: where they wait for a free place at an
  // overlapping time, they may be promoted after the move. Those shifts are locked with this one.
  const awaiting =
    changes.startsAt || changes.endsAt
      ? await shiftsAwaitingFreedVolunteers(tx, principal.orgId, sql`s.shift_id = ${id}`)
      : [];
  const current = await lockShiftAndEvent(tx, principal, id, awaiting);
  assertVersion(expectedVersions, current.version, 'The shift');
  if (Object.keys(changes).length === 0) return getShift(tx, principal, id);
  if (current.cancelledAt) throw new AppError('invalid-state', 'The shift is cancelled; it cannot change.');

  const merged = {
    startsAt: changes.startsAt ?? current.startsAt,
    endsAt: changes.endsAt ?? current.endsAt,
    signupOpensAt: changes.signupOpensAt === undefined ? current.signupOpensAt : changes.signupOpensAt,
    signupClosesAt: changes.signupClosesAt === undefined ? current.signupClosesAt : changes.signupClosesAt,
    cancelUntil: changes.cancelUntil === undefined ? current.cancelUntil : changes.cancelUntil,
  };
  const problems = shiftTimeProblems(merged);
  if (problems.length > 0) {
    const errors = problems.map((problem) => ({ path: `body.${problem.path}`, message: problem.message }));
    throw new AppError('validation-failed', `${errors[0]?.path}: ${errors[0]?.message}`, { errors });
  }
  if (changes.capacity !== undefined && changes.capacity < current.confirmedCount) {
    throw refusals.capacityBelowConfirmed(current.confirmedCount);
  }
  if (changes.waitlist === false && current.waitlistCount > 0) {
    throw refusals.waitlistKept(current.waitlistCount);
  }
  if (changes.roleId) await assertRolesExist(tx, principal.orgId, [changes.roleId], () => 'body.roleId');

  const timesChanged =
    merged.startsAt.getTime() !== current.startsAt.getTime() ||
    merged.endsAt.getTime() !== current.endsAt.getTime();
  // The friendly reason, naming the signup in the way; the exclusion constraint is the guard.
  const signupInTheWay = async () => {
    const [conflict] = await queryRows<{ id: string }>(
      tx,
      sql`select o.id from signups s
          join signups o on o.org_id = s.org_id and o.volunteer_id = s.volunteer_id and o.status = 'confirmed'
            and o.shift_id <> s.shift_id
            and o.period && tstzrange(${merged.startsAt}::timestamptz, ${merged.endsAt}::timestamptz, '[)')
          where s.org_id = ${principal.orgId} and s.shift_id = ${id} and s.status = 'confirmed'
          limit 1`,
    );
    return conflict?.id;
  };
  if (timesChanged) {
    const conflict = await signupInTheWay();
    if (conflict) throw refusals.overlappingMove(conflict);
  }
  const update = (handle: DbOrTx) =>
    handle
      .update(shifts)
      .set({
        ...changes,
        ...(timesChanged ? { timesRevision: sql`${shifts.timesRevision} + 1` } : {}),
        version: sql`${shifts.version} + 1`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(shifts.orgId, principal.orgId), eq(shifts.id, id)));
  if (!timesChanged) await update(tx);
  else {
    // Signups' copies of the interval follow through their foreign key (ON UPDATE CASCADE), and
    // the exclusion constraint refuses an overlap that a concurrent claim made after the check
    // above: in a savepoint, so that the signup in the way can still be named, as the check does.
    try {
      await tx.transaction(async (savepoint) => {
        await update(savepoint);
      });
    } catch (error) {
      if (constraintOf(error) !== 'signups_no_overlap') throw error;
      throw refusals.overlappingMove(await signupInTheWay());
    }
  }
  if (timesChanged) {
    await recordShiftDurations(tx, principal.orgId, [merged.endsAt.getTime() - merged.startsAt.getTime()]);
    await refreshEventSpan(tx, principal.orgId, current.eventId);
  }
  const actor = actorOf(principal);
  // More places, or new times (a waitlisted volunteer skipped for an overlap may fit now, and this
  // shift's volunteers are free at the old ones): the waitlists are offered the free places at once.
  const morePlaces = changes.capacity !== undefined && changes.capacity > current.capacity;
  await placesFreed(tx, principal.orgId, actor, [
    ...(morePlaces || timesChanged ? [id] : []),
    ...(timesChanged ? awaiting : []),
  ]);
  await recordEvent(tx, principal.orgId, actor, 'shift.updated', id, {
    shiftId: id,
    eventId: current.eventId,
    changed: Object.keys(changes),
  });
  return getShift(tx, principal, id);
}

/** Cancels shifts and their active signups; returns the ids it cancelled. */
export async function cancelShiftsWhere(
  tx: DbOrTx,
  orgId: string,
  actor: Actor,
  scope: { shiftId: string } | { eventId: string },
): Promise<string[]> {
  const scopeCondition =
    'shiftId' in scope ? eq(shifts.id, scope.shiftId) : eq(shifts.eventId, scope.eventId);
  // Lock every shift in scope (in id order, as every signup write does) and mark it cancelled
  // first: a claim racing this cancel then finds `cancelled_at` set and takes no place, so no
  // confirmed signup can slip onto a cancelled shift between the two steps.
  await tx
    .select({ id: shifts.id })
    .from(shifts)
    .where(and(eq(shifts.orgId, orgId), scopeCondition))
    .orderBy(shifts.id)
    .for('update');
  const cancelled = await tx
    .update(shifts)
    .set({ cancelledAt: sql`now()`, version: sql`${shifts.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(shifts.orgId, orgId), scopeCondition, isNull(shifts.cancelledAt)))
    .returning({ id: shifts.id, eventId: shifts.eventId });
  await cancelSignups(tx, orgId, actor, scope, { countLate: false });
  for (const row of cancelled) {
    await recordEvent(tx, orgId, actor, 'shift.cancelled', row.id, { shiftId: row.id, eventId: row.eventId });
  }
  return cancelled.map((row) => row.id);
}

export async function cancelShift(tx: DbOrTx, principal: KeyPrincipal, id: string) {
  const current = await readShiftRow(tx, principal, id, true);
  if (current.cancelledAt) throw new AppError('invalid-state', 'The shift is already cancelled.');
  await cancelShiftsWhere(tx, principal.orgId, actorOf(principal), { shiftId: id });
  return getShift(tx, principal, id);
}

export async function deleteShift(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<void> {
  const current = await lockShiftAndEvent(tx, principal, id);
  const [signup] = await tx
    .select({ id: signups.id })
    .from(signups)
    .where(and(eq(signups.orgId, principal.orgId), eq(signups.shiftId, id)))
    .limit(1);
  if (signup) {
    throw refusals.shiftHasSignups();
  }
  await tx.delete(shifts).where(and(eq(shifts.orgId, principal.orgId), eq(shifts.id, id)));
  await refreshEventSpan(tx, principal.orgId, current.eventId);
  await recordEvent(tx, principal.orgId, actorOf(principal), 'shift.deleted', id, {
    shiftId: id,
    eventId: current.eventId,
  });
}
