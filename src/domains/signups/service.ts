/**
 * Signups (API.md §7): claims, cancellations, attendance and the signup lists.
 *
 * A claim checks the rules in JavaScript for the friendly reason (rules.ts), then takes its place
 * with one guarded statement: it locks the shift only while `confirmed_count < capacity` (else for
 * its waitlist, when the shift keeps one) and inserts the signup row, which the database counts
 * (migration 0016). The database guarantees the invariants: the guard and a CHECK for capacity, a partial
 * unique index for one active signup per volunteer and shift, an exclusion constraint for
 * overlapping confirmed signups. Places and the waitlist are in places.ts.
 */
import { and, eq, type SQL, sql } from 'drizzle-orm';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound, refusals } from '../../core/errors.ts';
import { assertVersion } from '../../core/http-cache.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import { cursorTime, keysetPage, type Page, thenById } from '../../core/pagination.ts';
import { type DbOrTx, isDatabaseHandle, queryRows } from '../../db/client.ts';
import type { RowOf } from '../../db/columns.ts';
import { constraintOf, driverErrorOf } from '../../db/errors.ts';
import { events, shifts, signups, volunteers } from '../../db/schema.ts';
import { type Shift, shiftColumns, toShift } from '../shifts/service.ts';
import { type Signup, type SignupRow, type SignupStatus, signupColumns, toSignup } from './columns.ts';
import {
  cancelSignups,
  lockShifts,
  placesFreed,
  shiftsAwaitingFreedVolunteers,
  takePlace,
} from './places.ts';
import { claimRefusal, loadClaimFacts } from './rules.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

/** Volunteers see their own signups only; every other signup is 404 to them. */
function ownedBy(principal: Principal): SQL | undefined {
  return principal.kind === 'volunteer' ? eq(signups.volunteerId, principal.volunteerId) : undefined;
}

/** The signup `id` of the principal's organisation, if the principal may see it. */
function signupIdentifiedBy(principal: Principal, id: string): SQL | undefined {
  return and(eq(signups.orgId, principal.orgId), eq(signups.id, id), ownedBy(principal));
}

/** A signup with its `version`, the ETag of API.md §1. */
export interface VersionedSignup {
  signup: Signup;
  version: number;
}

export async function readSignup(db: DbOrTx, principal: Principal, id: string): Promise<VersionedSignup> {
  const [row] = await db.select(signupColumns).from(signups).where(signupIdentifiedBy(principal, id));
  if (!row) throw notFound('The signup');
  return { signup: toSignup(row), version: row.version };
}

// ── Claims ───────────────────────────────────────────────────────────────────────────────────

export interface ClaimInput {
  volunteerId?: string | undefined;
  note?: string | undefined;
}

function claimantOf(principal: Principal, input: ClaimInput): { volunteerId: string; byOrganiser: boolean } {
  if (principal.kind === 'volunteer') {
    if (input.volunteerId && input.volunteerId !== principal.volunteerId) {
      throw new AppError('forbidden', 'A volunteer token can only sign its own volunteer up.');
    }
    return { volunteerId: principal.volunteerId, byOrganiser: false };
  }
  if (!input.volunteerId) {
    throw new AppError('validation-failed', 'body.volunteerId: required when an organiser signs someone up', {
      errors: [{ path: 'body.volunteerId', message: 'required when an organiser signs someone up' }],
    });
  }
  return { volunteerId: input.volunteerId, byOrganiser: true };
}

async function assertClaimTargetsExist(db: DbOrTx, orgId: string, shiftId: string, volunteerId: string) {
  const [found] = await queryRows<{ shift: boolean; volunteer: boolean }>(
    db,
    sql`select exists (select 1 from shifts where org_id = ${orgId} and id = ${shiftId}) as shift,
               exists (select 1 from volunteers where org_id = ${orgId} and id = ${volunteerId} and erased_at is null) as volunteer`,
  );
  if (!found?.shift) throw notFound('The shift');
  if (!found.volunteer) throw notFound('The volunteer');
}

/** How often a claim's statement is tried when PostgreSQL aborts it to break a deadlock. */
const claimAttempts = 5;

/**
 * Two concurrent inserts of overlapping confirmed signups can deadlock inside the exclusion check
 * (each waits for the other's row), and PostgreSQL aborts one. The statement is atomic, so it is
 * simply tried again; with many overlapping claims at once (a double-tapping app, twenty of them
 * in the race suite) the retry can meet another loser, so a few tries are allowed. Once a winner
 * has committed, a retry becomes 23P01, the overlap refusal. Inside a transaction (with an
 * Idempotency-Key) the transaction is aborted: no retry there.
 */
async function takeRetryingDeadlocks<T>(db: DbOrTx, take: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await take();
    } catch (error) {
      if (driverErrorOf(error)?.code !== '40P01' || !isDatabaseHandle(db) || attempt >= claimAttempts)
        throw error;
    }
  }
}

/**
 * POST /v1/shifts/{id}/signups. Without an Idempotency-Key it runs outside a transaction: the rule
 * facts are a read for the friendly reason, and the claim itself is one atomic statement. `reader`
 * is a handle outside the caller's transaction (if any): when a concurrent claim wins an overlap
 * race, the exclusion constraint aborts the statement, and the conflicting signup is looked up there.
 */
export async function claimShift(
  db: DbOrTx,
  principal: Principal,
  shiftId: string,
  input: ClaimInput,
  reader: DbOrTx,
): Promise<Signup> {
  const { volunteerId, byOrganiser } = claimantOf(principal, input);
  const facts = (await loadClaimFacts(db, principal.orgId, volunteerId, [shiftId])).get(shiftId);
  if (!facts) {
    // No facts: the shift or the (unerased) volunteer is missing; say which.
    await assertClaimTargetsExist(db, principal.orgId, shiftId, volunteerId);
    throw notFound('The shift');
  }
  const refusal = claimRefusal(facts, new Date(), { byOrganiser });
  if (refusal) throw refusal;

  const claim = { shiftId, volunteerId, note: input.note ?? null };
  const take = () => takePlace(db, principal.orgId, actorOf(principal), claim);
  for (let attempt = 1; ; attempt++) {
    let placed: SignupRow | undefined;
    try {
      placed = await takeRetryingDeadlocks(db, take);
    } catch (error) {
      // A concurrent claim won after the facts were read. Read them again (outside the aborted
      // statement) and refuse as the rules do now: the body the pre-check would have sent, naming
      // the signup in the way. Should that signup be gone already, the constraint's own refusal.
      const constraint = constraintOf(error);
      if (constraint !== 'signups_no_overlap' && constraint !== 'signups_one_active_per_volunteer')
        throw error;
      const current = (await loadClaimFacts(reader, principal.orgId, volunteerId, [shiftId])).get(shiftId);
      throw (current && claimRefusal(current, new Date(), { byOrganiser })) || error;
    }
    if (placed) return toSignup(placed);
    // Neither a place nor the waitlist: the shift changed since the facts were read (deleted,
    // cancelled, its last place taken), or a place was freed while the claim waited for the
    // shift's lock to join the waitlist (takePlace). Unless it is gone, cancelled or full without
    // a waitlist, the statement runs again, on a new snapshot.
    const [shift] = await db
      .select({
        cancelledAt: shifts.cancelledAt,
        full: sql<boolean>`${shifts.confirmedCount} >= ${shifts.capacity}`,
        waitlist: shifts.waitlist,
      })
      .from(shifts)
      .where(and(eq(shifts.orgId, principal.orgId), eq(shifts.id, shiftId)));
    if (!shift) throw notFound('The shift');
    if (shift.cancelledAt) throw refusals.shiftCancelled();
    if (shift.full && !shift.waitlist) throw refusals.shiftFull();
    // Places freed and taken under it on every try: not a refusal of §7, so the client retries.
    if (attempt >= claimAttempts)
      throw new AppError('unavailable', 'The shift changed during the claim; retry it.', {
        headers: { 'retry-after': '1' },
      });
  }
}

// ── Cancellation ─────────────────────────────────────────────────────────────────────────────

/** A signup with its shift's times, as the writes on it (locked) judge them. */
const lockedSignupColumns = {
  id: signups.id,
  shiftId: signups.shiftId,
  volunteerId: signups.volunteerId,
  status: signups.status,
  checkedInAt: signups.checkedInAt,
  checkedOutAt: signups.checkedOutAt,
  version: signups.version,
  startsAt: shifts.startsAt,
  endsAt: shifts.endsAt,
  cancelUntil: shifts.cancelUntil,
};
type LockedSignup = RowOf<typeof lockedSignupColumns>;

/**
 * Locks the signup's shift (with `alsoLock`, in one id order), then reads the signup: the order
 * every signup write uses (places.ts).
 */
async function lockSignup(
  tx: DbOrTx,
  principal: Principal,
  id: string,
  alsoLock: string[] = [],
): Promise<LockedSignup> {
  const [found] = await tx
    .select({ shiftId: signups.shiftId })
    .from(signups)
    .where(signupIdentifiedBy(principal, id));
  if (!found) throw notFound('The signup');
  await lockShifts(tx, principal.orgId, [found.shiftId, ...alsoLock]);
  const [signup] = await tx
    .select(lockedSignupColumns)
    .from(signups)
    .innerJoin(shifts, and(eq(shifts.orgId, signups.orgId), eq(shifts.id, signups.shiftId)))
    .where(and(eq(signups.orgId, principal.orgId), eq(signups.id, id)))
    .for('update', { of: signups });
  if (!signup) throw notFound('The signup');
  return signup;
}

export async function cancelSignup(tx: DbOrTx, principal: Principal, id: string): Promise<VersionedSignup> {
  // Where this volunteer waits for a free place at an overlapping time, this signup may be what
  // kept them waiting: those shifts are locked now and offered to the waitlist after the cancel.
  const awaiting = await shiftsAwaitingFreedVolunteers(tx, principal.orgId, sql`s.id = ${id}`);
  const signup = await lockSignup(tx, principal, id, awaiting);
  if (signup.status !== 'confirmed' && signup.status !== 'waitlisted') {
    throw new AppError(
      'invalid-state',
      `The signup is ${signup.status}; only an active signup can be cancelled.`,
    );
  }
  if (signup.checkedInAt) {
    throw new AppError(
      'invalid-state',
      'The volunteer has checked in; record attendance instead of cancelling.',
    );
  }
  const now = Date.now();
  if (principal.kind === 'volunteer') {
    const closesAt = (signup.cancelUntil ?? signup.startsAt).getTime();
    if (now >= closesAt) {
      throw new AppError(
        'cancellation-closed',
        `Cancellation closed at ${new Date(closesAt).toISOString()}; ask the organisers.`,
      );
    }
  }
  await cancelSignups(
    tx,
    principal.orgId,
    actorOf(principal),
    { signupId: id },
    { countLate: true, awaiting },
  );
  return readSignup(tx, principal, id);
}

// ── Attendance ───────────────────────────────────────────────────────────────────────────────

const checkInOpensBeforeMs = 2 * 60 * 60 * 1000;

/** Rounds a duration to the nearest quarter hour, capped at 24 h. */
export function quarterHours(ms: number): number {
  return Math.min(24, Math.max(0, Math.round(ms / (15 * 60 * 1000)) / 4));
}

export async function checkIn(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<VersionedSignup> {
  const signup = await lockSignup(tx, principal, id);
  if (signup.status !== 'confirmed') {
    throw new AppError(
      'invalid-state',
      `Only a confirmed signup can check in; this one is ${signup.status}.`,
    );
  }
  if (signup.checkedInAt) throw new AppError('invalid-state', 'The volunteer has already checked in.');
  const opensAt = signup.startsAt.getTime() - checkInOpensBeforeMs;
  if (Date.now() < opensAt) {
    throw new AppError(
      'invalid-state',
      `Check-in opens at ${new Date(opensAt).toISOString()}, 2 hours before the start.`,
    );
  }
  await tx.execute(sql`update signups set checked_in_at = now(), updated_at = now(), version = version + 1
    where org_id = ${principal.orgId} and id = ${id}`);
  await recordEvent(tx, principal.orgId, actorOf(principal), 'signup.checked_in', id, {
    signupId: id,
    shiftId: signup.shiftId,
  });
  return readSignup(tx, principal, id);
}

/** Check-out: needs a check-in and a started shift; marks the signup attended with its hours. */
export async function checkOut(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<VersionedSignup> {
  const signup = await lockSignup(tx, principal, id);
  if (!signup.checkedInAt) throw new AppError('invalid-state', 'Check-out needs a check-in first.');
  if (signup.checkedOutAt) throw new AppError('invalid-state', 'The volunteer has already checked out.');
  if (signup.status !== 'confirmed' && signup.status !== 'attended') {
    throw new AppError('invalid-state', `A ${signup.status} signup cannot check out.`);
  }
  if (Date.now() < signup.startsAt.getTime())
    throw new AppError('invalid-state', 'The shift has not started yet.');
  const checkedOutAt = new Date();
  const hours = quarterHours(checkedOutAt.getTime() - signup.checkedInAt.getTime());
  if (signup.status === 'attended') {
    // Marked attended already (PATCH, before the check-out time was known): the hours become the
    // checked-in time, the default of API.md §7; PATCH corrects them. No state change, no event.
    await tx.execute(sql`update signups set checked_out_at = ${checkedOutAt}::timestamptz, hours = ${hours},
        updated_at = now(), version = version + 1
      where org_id = ${principal.orgId} and id = ${id}`);
    return readSignup(tx, principal, id);
  }
  await markAttendance(tx, principal, signup, 'attended', { hours, checkedOutAt });
  return readSignup(tx, principal, id);
}

/**
 * Leaves `confirmed` for `attended`/`no_show`: the place stays taken, the overlap rule stops
 * applying, so the volunteer may be promoted where they wait at an overlapping time.
 */
async function markAttendance(
  tx: DbOrTx,
  principal: KeyPrincipal,
  signup: LockedSignup,
  status: 'attended' | 'no_show',
  changes: { hours: number | null; checkedOutAt?: Date },
) {
  const awaiting =
    signup.status === 'confirmed'
      ? await shiftsAwaitingFreedVolunteers(tx, principal.orgId, sql`s.id = ${signup.id}`)
      : [];
  await tx.execute(sql`update signups set status = ${status}::signup_status, hours = ${changes.hours},
      checked_out_at = coalesce(${changes.checkedOutAt ?? null}::timestamptz, checked_out_at),
      updated_at = now(), version = version + 1
    where org_id = ${principal.orgId} and id = ${signup.id}`);
  await recordEvent(tx, principal.orgId, actorOf(principal), `signup.${status}`, signup.id, {
    signupId: signup.id,
    shiftId: signup.shiftId,
  });
  await placesFreed(tx, principal.orgId, actorOf(principal), awaiting);
}

export interface SignupChanges {
  status?: 'attended' | 'no_show' | undefined;
  hours?: number | undefined;
  note?: string | null | undefined;
}

/** PATCH /v1/signups/{id}: attendance, hours and the note. */
export async function updateSignup(
  tx: DbOrTx,
  principal: KeyPrincipal,
  id: string,
  changes: SignupChanges,
  expectedVersions: number[] | null = null,
): Promise<VersionedSignup> {
  const signup = await lockSignup(tx, principal, id);
  // The row is locked: comparing its version here is as good as `WHERE version = $n`.
  assertVersion(expectedVersions, signup.version, 'The signup');
  const attendance = ['attended', 'no_show'];
  // The status it has already is no change: its hours (perhaps corrected by hand) stay, and no
  // second attendance event is written.
  if (changes.status && changes.status !== signup.status) {
    if (signup.status !== 'confirmed' && !attendance.includes(signup.status)) {
      throw new AppError('invalid-state', `A ${signup.status} signup cannot be marked ${changes.status}.`);
    }
    if (Date.now() < signup.startsAt.getTime()) {
      throw new AppError('invalid-state', 'Attendance can be recorded once the shift has started.');
    }
    const shiftLength = quarterHours(signup.endsAt.getTime() - signup.startsAt.getTime());
    const checkedInHours =
      signup.checkedInAt && signup.checkedOutAt
        ? quarterHours(signup.checkedOutAt.getTime() - signup.checkedInAt.getTime())
        : null;
    const hours =
      changes.status === 'no_show' ? (changes.hours ?? 0) : (changes.hours ?? checkedInHours ?? shiftLength);
    await markAttendance(tx, principal, signup, changes.status, { hours });
  } else if (changes.hours !== undefined) {
    const started = Date.now() >= signup.startsAt.getTime();
    if (!attendance.includes(signup.status) && !(signup.status === 'confirmed' && started)) {
      throw new AppError(
        'invalid-state',
        'Hours are recorded for confirmed signups once the shift has started.',
      );
    }
    await tx.execute(sql`update signups set hours = ${changes.hours}, updated_at = now(), version = version + 1
      where org_id = ${principal.orgId} and id = ${id}`);
  }
  if (changes.note !== undefined) {
    await tx.execute(sql`update signups set note = ${changes.note}, updated_at = now(), version = version + 1
      where org_id = ${principal.orgId} and id = ${id}`);
  }
  // An attendance change has its own event (markAttendance); hours and the note are an update.
  const attendanceChanged = changes.status !== undefined && changes.status !== signup.status;
  const updated = [
    ...(changes.hours !== undefined && !attendanceChanged ? ['hours'] : []),
    ...(changes.note !== undefined ? ['note'] : []),
  ];
  if (updated.length > 0) {
    await recordEvent(tx, principal.orgId, actorOf(principal), 'signup.updated', id, {
      signupId: id,
      shiftId: signup.shiftId,
      changed: updated,
    });
  }
  return readSignup(tx, principal, id);
}

// ── Lists ────────────────────────────────────────────────────────────────────────────────────

export interface RosterEntry extends Signup {
  volunteer: { id: string; name: string | null; email: string | null; phone: string | null };
}

interface ListQuery {
  limit: number;
  cursor?: string | undefined;
  status?: SignupStatus | undefined;
  updatedSince?: Date | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

function commonFilters(query: ListQuery): (SQL | undefined)[] {
  return [
    query.status ? eq(signups.status, query.status) : undefined,
    query.updatedSince ? sql`${signups.updatedAt} >= ${query.updatedSince}` : undefined,
    query.from || query.to
      ? sql`${signups.period} && tstzrange(${query.from ?? null}::timestamptz, ${query.to ?? null}::timestamptz, '[)')`
      : undefined,
  ];
}

/** Keyset on (created_at, id): the order of rosters and of /v1/signups. */
const byCreation = thenById([signups.createdAt, 'timestamptz'], signups.id);

/** Rows carry their sort key as `cursorKey` (text) and `id`. */
const cursorOf = (row: { cursorKey: string; id: string }) => [row.cursorKey, row.id];

/** A shift's roster with each volunteer's contact, ordered by signup time, then id. */
export async function listRoster(
  db: DbOrTx,
  principal: KeyPrincipal,
  shiftId: string,
  query: ListQuery,
): Promise<Page<RosterEntry>> {
  const [shift] = await db
    .select({ id: shifts.id })
    .from(shifts)
    .where(and(eq(shifts.orgId, principal.orgId), eq(shifts.id, shiftId)));
  if (!shift) throw notFound('The shift');
  return keysetPage(
    db
      .select({
        ...signupColumns,
        cursorKey: cursorTime(signups.createdAt),
        volunteer: {
          id: volunteers.id,
          name: volunteers.name,
          email: volunteers.email,
          phone: volunteers.phone,
        },
      })
      .from(signups)
      .innerJoin(volunteers, and(eq(volunteers.orgId, signups.orgId), eq(volunteers.id, signups.volunteerId)))
      .$dynamic(),
    [eq(signups.orgId, principal.orgId), eq(signups.shiftId, shiftId), ...commonFilters(query)],
    {
      orderBy: byCreation,
      page: query,
      keyOf: cursorOf,
      toItem: ({ cursorKey: _, volunteer, ...row }) => ({ ...toSignup(row), volunteer }),
    },
  );
}

/** Signups across shifts, ordered by signup time, then id. */
export async function listSignups(
  db: DbOrTx,
  principal: KeyPrincipal,
  query: ListQuery & { volunteerId?: string | undefined; eventId?: string | undefined },
): Promise<Page<Signup>> {
  const byEvent = query.eventId
    ? sql`exists (select 1 from ${shifts} where ${shifts.orgId} = ${signups.orgId}
        and ${shifts.id} = ${signups.shiftId} and ${shifts.eventId} = ${query.eventId})`
    : undefined;
  return keysetPage(
    db
      .select({ ...signupColumns, cursorKey: cursorTime(signups.createdAt) })
      .from(signups)
      .$dynamic(),
    [
      eq(signups.orgId, principal.orgId),
      query.volunteerId ? eq(signups.volunteerId, query.volunteerId) : undefined,
      byEvent,
      ...commonFilters(query),
    ],
    {
      orderBy: byCreation,
      page: query,
      keyOf: cursorOf,
      toItem: ({ cursorKey: _, ...row }) => toSignup(row),
    },
  );
}

export type MySignup = Signup & {
  shift: Omit<Shift, 'eligibility'> & { event: { id: string; title: string } };
};

/** The volunteer's own signups with their shifts, ordered by the shift's start, then signup id. */
export async function listMySignups(
  db: DbOrTx,
  principal: Extract<Principal, { kind: 'volunteer' }>,
  query: ListQuery,
): Promise<Page<MySignup>> {
  const shiftStart = sql`lower(${signups.period})`;
  const now = new Date();
  return keysetPage(
    db
      .select({
        ...signupColumns,
        cursorKey: cursorTime(shiftStart),
        shift: shiftColumns,
        eventTitle: events.title,
      })
      .from(signups)
      .innerJoin(shifts, and(eq(shifts.orgId, signups.orgId), eq(shifts.id, signups.shiftId)))
      .innerJoin(events, and(eq(events.orgId, shifts.orgId), eq(events.id, shifts.eventId)))
      .$dynamic(),
    [
      eq(signups.orgId, principal.orgId),
      eq(signups.volunteerId, principal.volunteerId),
      ...commonFilters(query),
    ],
    {
      orderBy: thenById([shiftStart, 'timestamptz'], signups.id),
      page: query,
      keyOf: cursorOf,
      toItem: ({ cursorKey: _, shift, eventTitle, ...row }) => ({
        ...toSignup(row),
        shift: { ...toShift(shift, now), event: { id: shift.eventId, title: eventTitle } },
      }),
    },
  );
}
