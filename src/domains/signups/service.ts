/**
 * Signups (API.md §7): claims, cancellations, attendance and the signup lists.
 *
 * A claim checks the rules in JavaScript for the friendly reason (rules.ts), then takes its place
 * with one guarded statement: the shift's count goes up only while `confirmed_count < capacity`
 * (else the waitlist's, when the shift keeps one), and the signup row is inserted in the same
 * statement. The database guarantees the invariants: the guard and a CHECK for capacity, a partial
 * unique index for one active signup per volunteer and shift, an exclusion constraint for
 * overlapping confirmed signups. Places and the waitlist are in places.ts.
 */
import { type SQL, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound, refusals } from '../../core/errors.ts';
import { assertVersion } from '../../core/http-cache.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import {
  after,
  type CursorField,
  cursorTime,
  decodeCursor,
  type Page,
  pageOfRows,
} from '../../core/pagination.ts';
import {
  asDate,
  asDateOrNull,
  type DbOrTx,
  isDatabaseHandle,
  preparedRows,
  queryRows,
} from '../../db/client.ts';
import { constraintOf, driverErrorOf } from '../../db/errors.ts';
import type { Location } from '../../db/schema.ts';
import { type Shift, shiftStatusOf } from '../shifts/service.ts';
import {
  lockShifts,
  promoteEach,
  promoteWaitlisted,
  promoteWhereFreed,
  shiftsAwaitingFreedVolunteers,
} from './places.ts';
import { claimRefusal, loadClaimFacts } from './rules.ts';
import type { signup as signupSchema } from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;
/** A signup as the API describes it (its response schema, decoded: timestamps as Dates). */
export type Signup = z.output<typeof signupSchema>;
export type SignupStatus = Signup['status'];

type SignupRow = {
  id: string;
  shift_id: string;
  volunteer_id: string;
  status: SignupStatus;
  waitlist_position: number | null;
  note: string | null;
  late_cancellation: boolean;
  checked_in_at: string | null;
  checked_out_at: string | null;
  hours: number | null;
  created_at: string;
  updated_at: string;
  cancelled_at: string | null;
  version: number;
};

/** The columns of a signup as `s`, with its rank among the shift's waitlisted signups. */
const signupColumns = sql`s.id, s.shift_id, s.volunteer_id, s.status, s.note, s.late_cancellation,
  s.checked_in_at, s.checked_out_at, s.hours::float8 as hours, s.created_at, s.updated_at, s.cancelled_at,
  s.version, case when s.status = 'waitlisted' then (
    select count(*)::int from signups w
    where w.org_id = s.org_id and w.shift_id = s.shift_id and w.status = 'waitlisted'
      and (w.created_at, w.id) <= (s.created_at, s.id)
  ) end as waitlist_position`;

function toSignup(row: SignupRow): Signup {
  return {
    id: row.id,
    shiftId: row.shift_id,
    volunteerId: row.volunteer_id,
    status: row.status,
    waitlistPosition: row.waitlist_position,
    note: row.note,
    lateCancellation: row.late_cancellation,
    checkedInAt: asDateOrNull(row.checked_in_at),
    checkedOutAt: asDateOrNull(row.checked_out_at),
    hours: row.hours === null ? null : Number(row.hours),
    createdAt: asDate(row.created_at),
    updatedAt: asDate(row.updated_at),
    cancelledAt: asDateOrNull(row.cancelled_at),
  };
}

/** Volunteers see their own signups only; every other signup is 404 to them. */
function ownedBy(principal: Principal): SQL {
  return principal.kind === 'volunteer' ? sql`and s.volunteer_id = ${principal.volunteerId}` : sql``;
}

/** A signup with its `version`, the ETag of API.md §1. */
export interface VersionedSignup {
  signup: Signup;
  version: number;
}

export async function readSignup(db: DbOrTx, principal: Principal, id: string): Promise<VersionedSignup> {
  const [row] = await queryRows<SignupRow>(
    db,
    sql`select ${signupColumns} from signups s where s.org_id = ${principal.orgId} and s.id = ${id} ${ownedBy(principal)}`,
  );
  if (!row) throw notFound('The signup');
  return { signup: toSignup(row), version: Number(row.version) };
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
  if (principal.role === 'viewer')
    throw new AppError('forbidden', 'Assigning volunteers needs the organiser role.');
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

/**
 * Takes a place (or a waitlist place), inserts the signup and writes its outbox events, all in one
 * statement: atomic without a transaction, and one round trip. The shift's row lock, taken by the
 * guarded UPDATE, orders concurrent claims on one shift; `clock_timestamp()` stamps each signup
 * after that lock, so `created_at` order is the order places were taken (the waitlist is first
 * come, first served by it), and the new waitlist count is the new signup's position.
 */
async function takePlace(
  db: DbOrTx,
  principal: Principal,
  shiftId: string,
  volunteerId: string,
  note: string | null,
): Promise<SignupRow | undefined> {
  const actor = JSON.stringify(actorOf(principal));
  const [row] = await preparedRows<SignupRow>(
    db,
    'claim-take-place',
    sql`
      with taken as (
        update shifts set confirmed_count = confirmed_count + 1, updated_at = now(), version = version + 1
        where org_id = ${principal.orgId} and id = ${shiftId} and cancelled_at is null and confirmed_count < capacity
        returning period, confirmed_count = capacity as filled
      ), queued as (
        update shifts set waitlist_count = waitlist_count + 1, updated_at = now(), version = version + 1
        where org_id = ${principal.orgId} and id = ${shiftId} and cancelled_at is null and waitlist
          and not exists (select 1 from taken)
        returning period, waitlist_count
      ), place as (
        select period, 'confirmed'::signup_status as status, filled, null::int as position from taken
        union all
        select period, 'waitlisted'::signup_status, false, waitlist_count from queued
      ), inserted as (
        insert into signups (org_id, id, shift_id, volunteer_id, status, period, note, created_at, updated_at)
        select ${principal.orgId}::uuid, ${uuidv7()}::uuid, ${shiftId}::uuid, ${volunteerId}::uuid, place.status,
               place.period, ${note}::text, clock_timestamp(), clock_timestamp()
        from place
        returning *
      ), events as (
        insert into outbox (org_id, id, type, resource_type, resource_id, actor, payload)
        select ${principal.orgId}::uuid, ${uuidv7()}::uuid, 'signup.' || i.status::text, 'signup', i.id, ${actor}::jsonb,
               jsonb_build_object('signupId', i.id, 'shiftId', i.shift_id, 'volunteerId', i.volunteer_id)
        from inserted i
        union all
        select ${principal.orgId}::uuid, ${uuidv7()}::uuid, 'shift.filled', 'shift', ${shiftId}::uuid, ${actor}::jsonb,
               jsonb_build_object('shiftId', ${shiftId}::uuid)
        from place where place.filled
      )
      select i.id, i.shift_id, i.volunteer_id, i.status, i.note, i.late_cancellation, i.checked_in_at,
             i.checked_out_at, i.hours::float8 as hours, i.created_at, i.updated_at, i.cancelled_at,
             (select position from place) as waitlist_position
      from inserted i`,
  );
  return row;
}

/** The confirmed signup of `volunteerId` that overlaps the shift, if any. */
/** The volunteer's active signup on the shift, for the already-signed-up refusal. */
async function activeSignupOf(db: DbOrTx, orgId: string, shiftId: string, volunteerId: string) {
  const [row] = await queryRows<{ id: string; status: string }>(
    db,
    sql`select id, status::text as status from signups
        where org_id = ${orgId} and shift_id = ${shiftId} and volunteer_id = ${volunteerId}
          and status <> 'cancelled'
        limit 1`,
  );
  return row;
}

async function overlappingSignupOf(db: DbOrTx, orgId: string, shiftId: string, volunteerId: string) {
  const [row] = await queryRows<{ id: string }>(
    db,
    sql`select o.id from signups o join shifts sh on sh.org_id = o.org_id and sh.id = ${shiftId}
        where o.org_id = ${orgId} and o.volunteer_id = ${volunteerId} and o.status = 'confirmed'
          and o.shift_id <> sh.id and o.period && sh.period
        limit 1`,
  );
  return row?.id ?? null;
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

  let placed: SignupRow | undefined;
  try {
    try {
      placed = await takePlace(db, principal, shiftId, volunteerId, input.note ?? null);
    } catch (error) {
      // Two concurrent inserts of overlapping confirmed signups can deadlock inside the exclusion
      // check (each waits for the other's row); PostgreSQL aborts one. The statement is atomic, so
      // it is simply tried again: the winner has committed by then, and this becomes 23P01.
      // (Inside a transaction, with an Idempotency-Key, the transaction is aborted: no retry there.)
      if (driverErrorOf(error)?.code !== '40P01' || !isDatabaseHandle(db)) throw error;
      placed = await takePlace(db, principal, shiftId, volunteerId, input.note ?? null);
    }
  } catch (error) {
    // A concurrent claim won after the facts were read: the same refusal the rules would have
    // given, naming the signup in the way, looked up outside the aborted statement.
    const constraint = constraintOf(error);
    if (constraint !== 'signups_no_overlap' && constraint !== 'signups_one_active_per_volunteer') throw error;
    const conflictingSignupId =
      constraint === 'signups_no_overlap'
        ? await overlappingSignupOf(reader, principal.orgId, shiftId, volunteerId)
        : null;
    if (conflictingSignupId) throw refusals.overlappingClaim(conflictingSignupId);
    // The exclusion constraint can fire before the unique index: a double claim of this very shift.
    throw refusals.alreadySignedUp(await activeSignupOf(reader, principal.orgId, shiftId, volunteerId));
  }
  if (!placed) {
    // The shift changed since the facts were read: deleted, cancelled, or its last place taken.
    const [shift] = await queryRows<{ cancelled: boolean }>(
      db,
      sql`select cancelled_at is not null as cancelled from shifts where org_id = ${principal.orgId} and id = ${shiftId}`,
    );
    if (!shift) throw notFound('The shift');
    throw shift.cancelled ? refusals.shiftCancelled() : refusals.shiftFull();
  }
  return toSignup(placed);
}

// ── Cancellation ─────────────────────────────────────────────────────────────────────────────

const lateCancellationWindowMs = 24 * 60 * 60 * 1000;

/** A locked signup with its shift's times, as the raw query returns it (timestamps as text). */
interface LockedSignupRow {
  id: string;
  shift_id: string;
  volunteer_id: string;
  status: SignupStatus;
  checked_in_at: string | null;
  checked_out_at: string | null;
  starts_at: string;
  ends_at: string;
  cancel_until: string | null;
  version: number;
}

type LockedSignup = Omit<
  LockedSignupRow,
  'checked_in_at' | 'checked_out_at' | 'starts_at' | 'ends_at' | 'cancel_until'
> & {
  checked_in_at: Date | null;
  checked_out_at: Date | null;
  starts_at: Date;
  ends_at: Date;
  cancel_until: Date | null;
};

/**
 * Locks the signup's shift (with `alsoLock`, in one id order), then reads the signup: the order
 * every signup write uses.
 */
async function lockSignup(
  tx: DbOrTx,
  principal: Principal,
  id: string,
  alsoLock: string[] = [],
): Promise<LockedSignup> {
  const [found] = await queryRows<{ shift_id: string }>(
    tx,
    sql`select s.shift_id from signups s where s.org_id = ${principal.orgId} and s.id = ${id} ${ownedBy(principal)}`,
  );
  if (!found) throw notFound('The signup');
  await lockShifts(tx, principal.orgId, [found.shift_id, ...alsoLock]);
  const [signup] = await queryRows<LockedSignupRow>(
    tx,
    sql`select s.id, s.shift_id, s.volunteer_id, s.status, s.checked_in_at, s.checked_out_at, s.version,
               sh.starts_at, sh.ends_at, sh.cancel_until
        from signups s join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        where s.org_id = ${principal.orgId} and s.id = ${id}
        for update of s`,
  );
  if (!signup) throw notFound('The signup');
  return {
    ...signup,
    checked_in_at: asDateOrNull(signup.checked_in_at),
    checked_out_at: asDateOrNull(signup.checked_out_at),
    starts_at: asDate(signup.starts_at),
    ends_at: asDate(signup.ends_at),
    cancel_until: asDateOrNull(signup.cancel_until),
  };
}

export async function cancelSignup(tx: DbOrTx, principal: Principal, id: string): Promise<VersionedSignup> {
  if (principal.kind === 'key' && principal.role === 'viewer') {
    throw new AppError('forbidden', 'Cancelling needs the organiser role.');
  }
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
  if (signup.checked_in_at) {
    throw new AppError(
      'invalid-state',
      'The volunteer has checked in; record attendance instead of cancelling.',
    );
  }
  const now = Date.now();
  if (principal.kind === 'volunteer') {
    const closesAt = (signup.cancel_until ?? signup.starts_at).getTime();
    if (now >= closesAt) {
      throw new AppError(
        'cancellation-closed',
        `Cancellation closed at ${new Date(closesAt).toISOString()}; ask the organisers.`,
      );
    }
  }
  const wasConfirmed = signup.status === 'confirmed';
  // Only giving up a confirmed place late is a late cancellation (leaving a waitlist is not).
  const late = wasConfirmed && signup.starts_at.getTime() - now < lateCancellationWindowMs;
  await tx.execute(sql`
    update signups set status = 'cancelled', cancelled_at = now(), updated_at = now(), version = version + 1,
      late_cancellation = ${late}
    where org_id = ${principal.orgId} and id = ${id}`);
  await tx.execute(sql`
    update shifts set
      confirmed_count = confirmed_count - ${wasConfirmed ? 1 : 0},
      waitlist_count = waitlist_count - ${wasConfirmed ? 0 : 1},
      updated_at = now(), version = version + 1
    where org_id = ${principal.orgId} and id = ${signup.shift_id}`);
  const actor = actorOf(principal);
  await recordEvent(tx, {
    orgId: principal.orgId,
    type: 'signup.cancelled',
    resourceType: 'signup',
    resourceId: id,
    actor,
    payload: {
      signupId: id,
      shiftId: signup.shift_id,
      volunteerId: signup.volunteer_id,
      lateCancellation: late,
    },
  });
  if (wasConfirmed) {
    await promoteWaitlisted(tx, principal.orgId, signup.shift_id, actor);
    await promoteEach(tx, principal.orgId, awaiting, actor);
  }
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
  if (signup.checked_in_at) throw new AppError('invalid-state', 'The volunteer has already checked in.');
  const opensAt = signup.starts_at.getTime() - checkInOpensBeforeMs;
  if (Date.now() < opensAt) {
    throw new AppError(
      'invalid-state',
      `Check-in opens at ${new Date(opensAt).toISOString()}, 2 hours before the start.`,
    );
  }
  await tx.execute(sql`update signups set checked_in_at = now(), updated_at = now(), version = version + 1
    where org_id = ${principal.orgId} and id = ${id}`);
  await recordEvent(tx, {
    orgId: principal.orgId,
    type: 'signup.checked_in',
    resourceType: 'signup',
    resourceId: id,
    actor: actorOf(principal),
    payload: { signupId: id, shiftId: signup.shift_id },
  });
  return readSignup(tx, principal, id);
}

/** Check-out: needs a check-in and a started shift; marks the signup attended with its hours. */
export async function checkOut(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<VersionedSignup> {
  const signup = await lockSignup(tx, principal, id);
  if (!signup.checked_in_at) throw new AppError('invalid-state', 'Check-out needs a check-in first.');
  if (signup.checked_out_at) throw new AppError('invalid-state', 'The volunteer has already checked out.');
  if (signup.status !== 'confirmed' && signup.status !== 'attended') {
    throw new AppError('invalid-state', `A ${signup.status} signup cannot check out.`);
  }
  if (Date.now() < signup.starts_at.getTime())
    throw new AppError('invalid-state', 'The shift has not started yet.');
  const checkedOutAt = new Date();
  const hours = quarterHours(checkedOutAt.getTime() - signup.checked_in_at.getTime());
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
  await recordEvent(tx, {
    orgId: principal.orgId,
    type: `signup.${status}`,
    resourceType: 'signup',
    resourceId: signup.id,
    actor: actorOf(principal),
    payload: { signupId: signup.id, shiftId: signup.shift_id },
  });
  await promoteWhereFreed(tx, principal.orgId, awaiting, actorOf(principal));
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
  assertVersion(expectedVersions, Number(signup.version), 'The signup');
  const attendance = ['attended', 'no_show'];
  // The status it has already is no change: its hours (perhaps corrected by hand) stay, and no
  // second attendance event is written.
  if (changes.status && changes.status !== signup.status) {
    if (signup.status !== 'confirmed' && !attendance.includes(signup.status)) {
      throw new AppError('invalid-state', `A ${signup.status} signup cannot be marked ${changes.status}.`);
    }
    if (Date.now() < signup.starts_at.getTime()) {
      throw new AppError('invalid-state', 'Attendance can be recorded once the shift has started.');
    }
    const shiftLength = quarterHours(signup.ends_at.getTime() - signup.starts_at.getTime());
    const checkedInHours =
      signup.checked_in_at && signup.checked_out_at
        ? quarterHours(signup.checked_out_at.getTime() - signup.checked_in_at.getTime())
        : null;
    const hours =
      changes.status === 'no_show' ? (changes.hours ?? 0) : (changes.hours ?? checkedInHours ?? shiftLength);
    await markAttendance(tx, principal, signup, changes.status, { hours });
  } else if (changes.hours !== undefined) {
    const started = Date.now() >= signup.starts_at.getTime();
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

function commonFilters(query: ListQuery): SQL {
  const parts: SQL[] = [];
  if (query.status) parts.push(sql`and s.status = ${query.status}::signup_status`);
  if (query.updatedSince) parts.push(sql`and s.updated_at >= ${query.updatedSince}`);
  if (query.from || query.to) {
    parts.push(
      sql`and s.period && tstzrange(${query.from ?? null}::timestamptz, ${query.to ?? null}::timestamptz, '[)')`,
    );
  }
  return sql.join(parts, sql` `);
}

/** Keyset on (created_at, id): the order of rosters and of /v1/signups. */
const keyFields: CursorField[] = ['timestamptz', 'uuid'];

function createdAfter(cursor: string | undefined): SQL {
  const position = decodeCursor(cursor, keyFields);
  return position ? sql`and ${after([sql`s.created_at`, sql`s.id`], position, keyFields)}` : sql``;
}

/** Rows carry their sort key as `cursor_key` (text) and `id`. */
const cursorOf = (row: { cursor_key: string; id: string }) => [row.cursor_key, row.id];

/** A shift's roster with each volunteer's contact, ordered by signup time, then id. */
export async function listRoster(
  db: DbOrTx,
  principal: KeyPrincipal,
  shiftId: string,
  query: ListQuery,
): Promise<Page<RosterEntry>> {
  const [shift] = await queryRows<{ id: string }>(
    db,
    sql`select id from shifts where org_id = ${principal.orgId} and id = ${shiftId}`,
  );
  if (!shift) throw notFound('The shift');
  const rows = await queryRows<
    SignupRow & {
      cursor_key: string;
      volunteer_name: string | null;
      volunteer_email: string | null;
      volunteer_phone: string | null;
    }
  >(
    db,
    sql`select ${signupColumns}, ${cursorTime(sql`s.created_at`)} as cursor_key,
          v.name as volunteer_name, v.email as volunteer_email, v.phone as volunteer_phone
        from signups s join volunteers v on v.org_id = s.org_id and v.id = s.volunteer_id
        where s.org_id = ${principal.orgId} and s.shift_id = ${shiftId} ${commonFilters(query)} ${createdAfter(query.cursor)}
        order by s.created_at, s.id
        limit ${query.limit + 1}`,
  );
  return pageOfRows(rows, query.limit, cursorOf, (row) => ({
    ...toSignup(row),
    volunteer: {
      id: row.volunteer_id,
      name: row.volunteer_name,
      email: row.volunteer_email,
      phone: row.volunteer_phone,
    },
  }));
}

/** Signups across shifts, ordered by signup time, then id. */
export async function listSignups(
  db: DbOrTx,
  principal: KeyPrincipal,
  query: ListQuery & { volunteerId?: string | undefined; eventId?: string | undefined },
): Promise<Page<Signup>> {
  const byVolunteer = query.volunteerId ? sql`and s.volunteer_id = ${query.volunteerId}` : sql``;
  const byEvent = query.eventId
    ? sql`and exists (select 1 from shifts sh where sh.org_id = s.org_id and sh.id = s.shift_id and sh.event_id = ${query.eventId})`
    : sql``;
  const rows = await queryRows<SignupRow & { cursor_key: string }>(
    db,
    sql`select ${signupColumns}, ${cursorTime(sql`s.created_at`)} as cursor_key
        from signups s
        where s.org_id = ${principal.orgId} ${byVolunteer} ${byEvent} ${commonFilters(query)} ${createdAfter(query.cursor)}
        order by s.created_at, s.id
        limit ${query.limit + 1}`,
  );
  return pageOfRows(rows, query.limit, cursorOf, toSignup);
}

export type MySignup = Signup & {
  shift: Omit<Shift, 'eligibility'> & { event: { id: string; title: string } };
};

type MySignupRow = SignupRow & {
  cursor_key: string;
  sh_event_id: string;
  sh_role_id: string | null;
  sh_title: string | null;
  sh_description: string | null;
  sh_location: Location | null;
  sh_starts_at: string;
  sh_ends_at: string;
  sh_capacity: number;
  sh_confirmed_count: number;
  sh_waitlist_count: number;
  sh_waitlist: boolean;
  sh_signup_opens_at: string | null;
  sh_signup_closes_at: string;
  sh_cancel_until: string | null;
  sh_min_age: number | null;
  sh_cancelled_at: string | null;
  sh_created_at: string;
  sh_updated_at: string;
  event_title: string;
};

/** The volunteer's own signups with their shifts, ordered by the shift's start, then signup id. */
export async function listMySignups(
  db: DbOrTx,
  principal: Extract<Principal, { kind: 'volunteer' }>,
  query: ListQuery,
): Promise<Page<MySignup>> {
  const position = decodeCursor(query.cursor, keyFields);
  const afterCursor = position
    ? sql`and ${after([sql`lower(s.period)`, sql`s.id`], position, keyFields)}`
    : sql``;
  const rows = await queryRows<MySignupRow>(
    db,
    sql`select ${signupColumns}, ${cursorTime(sql`lower(s.period)`)} as cursor_key,
          sh.event_id as sh_event_id, sh.role_id as sh_role_id, sh.title as sh_title, sh.description as sh_description,
          sh.location as sh_location, sh.starts_at as sh_starts_at, sh.ends_at as sh_ends_at, sh.capacity as sh_capacity,
          sh.confirmed_count as sh_confirmed_count, sh.waitlist_count as sh_waitlist_count, sh.waitlist as sh_waitlist,
          sh.signup_opens_at as sh_signup_opens_at, coalesce(sh.signup_closes_at, sh.starts_at) as sh_signup_closes_at,
          sh.cancel_until as sh_cancel_until, sh.min_age as sh_min_age, sh.cancelled_at as sh_cancelled_at,
          sh.created_at as sh_created_at, sh.updated_at as sh_updated_at, e.title as event_title
        from signups s
        join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        join events e on e.org_id = sh.org_id and e.id = sh.event_id
        where s.org_id = ${principal.orgId} and s.volunteer_id = ${principal.volunteerId}
          ${commonFilters(query)} ${afterCursor}
        order by lower(s.period), s.id
        limit ${query.limit + 1}`,
  );
  const now = new Date();
  return pageOfRows(rows, query.limit, cursorOf, (row) => {
    const shiftRow = {
      cancelledAt: asDateOrNull(row.sh_cancelled_at),
      signupOpensAt: asDateOrNull(row.sh_signup_opens_at),
      signupClosesAt: asDate(row.sh_signup_closes_at),
      confirmedCount: row.sh_confirmed_count,
      capacity: row.sh_capacity,
    };
    return {
      ...toSignup(row),
      shift: {
        id: row.shift_id,
        eventId: row.sh_event_id,
        roleId: row.sh_role_id,
        title: row.sh_title,
        description: row.sh_description,
        location: row.sh_location,
        startsAt: asDate(row.sh_starts_at),
        endsAt: asDate(row.sh_ends_at),
        capacity: row.sh_capacity,
        confirmedCount: row.sh_confirmed_count,
        waitlistCount: row.sh_waitlist_count,
        available: row.sh_capacity - row.sh_confirmed_count,
        waitlist: row.sh_waitlist,
        signupOpensAt: asDateOrNull(row.sh_signup_opens_at),
        signupClosesAt: asDate(row.sh_signup_closes_at),
        cancelUntil: asDateOrNull(row.sh_cancel_until),
        minAge: row.sh_min_age,
        status: shiftStatusOf(shiftRow, now),
        createdAt: asDate(row.sh_created_at),
        updatedAt: asDate(row.sh_updated_at),
        event: { id: row.sh_event_id, title: row.event_title },
      },
    };
  });
}
