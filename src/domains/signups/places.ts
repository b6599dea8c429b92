/**
 * Places and the waitlist: the one owner of taking a place, freeing places and promotion
 * (invariants 1 and 4 of API.md §7). Every write that frees a place, or frees a volunteer who
 * waits elsewhere, ends in `placesFreed`; every cancellation is `cancelSignups`.
 *
 * The locking discipline, everywhere: shift rows before their signups, and shifts in id order.
 * Claims take the shift's lock with their guarded UPDATE. A write that frees places first locks
 * the shifts it changes (and, when it holds no shift lock yet, the shifts where its volunteers
 * wait: `shiftsAwaitingFreedVolunteers`, read before the change), in one id order. `placesFreed`
 * then promotes in every shift it names that this transaction holds or can take without waiting
 * (`SKIP LOCKED`): waiting for a lock out of id order could deadlock, and a shift that another
 * request holds is being changed by it, which takes that place as if it came first.
 */
import { type SQL, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { AppError } from '../../core/errors.ts';
import { type Actor, recordEvent } from '../../core/outbox.ts';
import { type DbOrTx, preparedRows, queryRows, uuidArray } from '../../db/client.ts';
import { decodeRows, selectList } from '../../db/columns.ts';
import { driverErrorOf } from '../../db/errors.ts';
import { type SignupRow, signupColumns } from './columns.ts';

// ── Taking a place ───────────────────────────────────────────────────────────────────────────

/**
 * Takes a place (or a waitlist place), inserts the signup and writes its outbox events, all in one
 * statement: atomic without a transaction, and one round trip. The guarded `SELECT … FOR UPDATE`
 * takes the shift's row lock only while a place is left (`confirmed_count < capacity`); the
 * signup's insert then counts it (the database keeps the counters, in O(1), under the capacity
 * CHECK, and moves the shift's counted_at and version with them: migrations 0016 and 0017), so a concurrent claim
 * waiting on the lock sees the new count. The lock orders concurrent claims on one shift; `clock_timestamp()` stamps each signup
 * after that lock, so `created_at` order is the order places were taken (the waitlist is first
 * come, first served by it), and the new waitlist count is the new signup's position. Undefined
 * when the shift is missing, cancelled, or full without a waitlist, and when a place was freed
 * while the statement waited for the shift's lock to join its waitlist: its snapshot saw the shift
 * full, the row it locked (the latest, as `FOR UPDATE` returns it) has a place free (`is_full` is
 * false), which the statement can no longer take; its caller tries again (claimShift) rather than
 * put a volunteer on the waitlist of a shift with a place free (invariant 4).
 */
export async function takePlace(
  db: DbOrTx,
  orgId: string,
  actor: Actor,
  claim: { shiftId: string; volunteerId: string; note: string | null },
): Promise<SignupRow | undefined> {
  const { shiftId, volunteerId, note } = claim;
  const actorJson = JSON.stringify(actor);
  const rows = await preparedRows<Record<string, unknown>>(
    db,
    'claim-take-place',
    sql`
      with taken as (
        select period, confirmed_count + 1 = capacity as filled from shifts
        where org_id = ${orgId} and id = ${shiftId} and cancelled_at is null and confirmed_count < capacity
        for update
      ), queued as (
        select period, waitlist_count + 1 as waitlist_count, confirmed_count >= capacity as is_full from shifts
        where org_id = ${orgId} and id = ${shiftId} and cancelled_at is null and waitlist
          and not exists (select 1 from taken)
        for update
      ), place as (
        select period, 'confirmed'::signup_status as status, filled, null::int as position from taken
        union all
        select period, 'waitlisted'::signup_status, false, waitlist_count from queued where is_full
      ), inserted as (
        insert into signups (org_id, id, shift_id, volunteer_id, status, period, note, created_at, updated_at)
        select ${orgId}::uuid, ${uuidv7()}::uuid, ${shiftId}::uuid, ${volunteerId}::uuid, place.status,
               place.period, ${note}::text, clock_timestamp(), clock_timestamp()
        from place
        returning *
      ), events as (
        insert into outbox (org_id, id, type, resource_type, resource_id, actor, payload)
        select ${orgId}::uuid, ${uuidv7()}::uuid, 'signup.' || i.status::text, 'signup', i.id, ${actorJson}::jsonb,
               jsonb_build_object('signupId', i.id, 'shiftId', i.shift_id, 'volunteerId', i.volunteer_id)
        from inserted i
        union all
        select ${orgId}::uuid, ${uuidv7()}::uuid, 'shift.filled', 'shift', ${shiftId}::uuid, ${actorJson}::jsonb,
               jsonb_build_object('shiftId', ${shiftId}::uuid)
        from place where place.filled
      )
      select ${selectList(signupColumns, { waitlistPosition: sql`(select position from place)` })}
      from inserted signups`,
  );
  return decodeRows(signupColumns, rows)[0];
}

// ── Freeing places ───────────────────────────────────────────────────────────────────────────

/**
 * Which active signups a cancellation takes: one signup; a volunteer's on shifts not yet started
 * (their erasure); a shift's; an event's.
 */
export type SignupScope =
  | { signupId: string }
  | { volunteerId: string }
  | { shiftId: string }
  | { eventId: string };

/** The scope over signups `s` joined to their shifts `sh`. */
function scopeCondition(scope: SignupScope): SQL {
  if ('signupId' in scope) return sql`s.id = ${scope.signupId}`;
  if ('volunteerId' in scope) return sql`s.volunteer_id = ${scope.volunteerId} and sh.starts_at > now()`;
  if ('shiftId' in scope) return sql`s.shift_id = ${scope.shiftId}`;
  return sql`sh.event_id = ${scope.eventId}`;
}

/**
 * Shifts with a free place where a volunteer whose confirmed signups (`signupCondition`, over
 * signups `s` joined to their shifts `sh`) are about to stop counting waits on the waitlist at an
 * overlapping time. Such a signup may be what kept them waiting while a place stood free (they
 * were skipped, invariant 4); once it no longer counts, they can be promoted there. Read it before
 * the change: afterwards the signups no longer match.
 */
export async function shiftsAwaitingFreedVolunteers(
  tx: DbOrTx,
  orgId: string,
  signupCondition: SQL,
): Promise<string[]> {
  const rows = await queryRows<{ shift_id: string }>(
    tx,
    sql`select distinct w.shift_id from signups s
        join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        join signups w on w.org_id = s.org_id and w.volunteer_id = s.volunteer_id and w.status = 'waitlisted'
          and w.shift_id <> s.shift_id and w.period && s.period
        join shifts wsh on wsh.org_id = w.org_id and wsh.id = w.shift_id
        where s.org_id = ${orgId} and s.status = 'confirmed' and ${signupCondition}
          and wsh.cancelled_at is null and wsh.starts_at > now() and wsh.confirmed_count < wsh.capacity`,
  );
  return rows.map((row) => row.shift_id);
}

/** Locks shift rows in id order: the first step of every write that touches their signups. */
export async function lockShifts(tx: DbOrTx, orgId: string, shiftIds: string[]): Promise<void> {
  if (shiftIds.length === 0) return;
  await tx.execute(
    sql`select id from shifts where org_id = ${orgId} and id = any(${uuidArray(shiftIds)}) order by id for update`,
  );
}

/**
 * Cancels every active signup in `scope` (the one cancellation routine): marks them cancelled,
 * frees their places and waitlist places, writes a `signup.cancelled` event for each, and offers
 * what it freed through `placesFreed`. With `countLate`, giving up a confirmed place within 24 h of
 * the start is a late cancellation (a volunteer's or an organiser's cancel); a cascade (the shift
 * or event cancelled, the volunteer erased) is nobody's late cancellation. A caller that holds
 * shift locks already holds them in id order. Returns the signups it cancelled.
 */
export async function cancelSignups(
  tx: DbOrTx,
  orgId: string,
  actor: Actor,
  scope: SignupScope,
  options: {
    countLate: boolean;
    /** `shiftsAwaitingFreedVolunteers` of this scope, when the caller read it already (to lock them first). */
    awaiting?: string[];
  },
): Promise<{ id: string; shiftId: string; previousStatus: 'confirmed' | 'waitlisted' }[]> {
  const affected = await queryRows<{ shift_id: string }>(
    tx,
    sql`select distinct s.shift_id from signups s
        join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        where s.org_id = ${orgId} and s.status in ('confirmed', 'waitlisted') and ${scopeCondition(scope)}`,
  );
  const shiftIds = affected.map((row) => row.shift_id);
  if (shiftIds.length === 0) return [];
  await lockShifts(tx, orgId, shiftIds);
  const awaiting =
    options.awaiting ?? (await shiftsAwaitingFreedVolunteers(tx, orgId, scopeCondition(scope)));
  const cancelled = await queryRows<{
    id: string;
    shift_id: string;
    volunteer_id: string;
    previous_status: 'confirmed' | 'waitlisted';
    late_cancellation: boolean;
  }>(
    tx,
    sql`
      with target as (
        select s.id, s.status, sh.starts_at from signups s
        join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        where s.org_id = ${orgId} and s.shift_id = any(${uuidArray(shiftIds)})
          and s.status in ('confirmed', 'waitlisted') and ${scopeCondition(scope)}
        for update of s
      )
      update signups set status = 'cancelled', cancelled_at = now(), updated_at = now(), version = version + 1,
        late_cancellation = ${options.countLate}::boolean and target.status = 'confirmed'
          and target.starts_at < now() + interval '24 hours'
      from target
      where signups.org_id = ${orgId} and signups.id = target.id
      returning signups.id, signups.shift_id, signups.volunteer_id, target.status::text as previous_status,
        signups.late_cancellation`,
  );
  // The shifts' counters, counted_at and version went with the signups (migrations 0016, 0017).
  for (const signup of cancelled) {
    await recordEvent(tx, orgId, actor, 'signup.cancelled', signup.id, {
      signupId: signup.id,
      shiftId: signup.shift_id,
      volunteerId: signup.volunteer_id,
      previousStatus: signup.previous_status,
      lateCancellation: signup.late_cancellation,
    });
  }
  const freedShifts = cancelled
    .filter((signup) => signup.previous_status === 'confirmed')
    .map((s) => s.shift_id);
  await placesFreed(tx, orgId, actor, [...new Set([...freedShifts, ...awaiting])]);
  return cancelled.map((signup) => ({
    id: signup.id,
    shiftId: signup.shift_id,
    previousStatus: signup.previous_status,
  }));
}

// ── Promotion ────────────────────────────────────────────────────────────────────────────────

/**
 * The one entry point for "places may have been freed in these shifts": a cancellation, a larger
 * capacity, a shift's new times, attendance recorded (a volunteer's confirmed signup stops
 * counting for overlaps). Offers the free places of each shift to its waitlist, in id order,
 * taking only the shifts this transaction holds already or can lock without waiting (see the
 * discipline above). Cancelled, started, full shifts and empty waitlists are passed over in the
 * same statement, so a cascade over many shifts costs one query here.
 */
export async function placesFreed(
  tx: DbOrTx,
  orgId: string,
  actor: Actor,
  shiftIds: string[],
): Promise<void> {
  if (shiftIds.length === 0) return;
  const open = await queryRows<{ id: string }>(
    tx,
    sql`select id from shifts
        where org_id = ${orgId} and id = any(${uuidArray(shiftIds)}) and cancelled_at is null
          and starts_at > now() and confirmed_count < capacity and waitlist_count > 0
        order by id for update skip locked`,
  );
  for (const { id } of open) await promoteWaitlisted(tx, orgId, id, actor);
}

/**
 * Fills free places from the waitlist, first come first served (invariant 4): each candidate is
 * confirmed inside a savepoint, and one whose confirmation would overlap another of their
 * confirmed signups (the exclusion constraint says so) is skipped and stays waitlisted. The caller
 * holds the shift's row lock.
 */
async function promoteWaitlisted(tx: DbOrTx, orgId: string, shiftId: string, actor: Actor): Promise<void> {
  const skipped: string[] = [];
  for (;;) {
    const [shift] = await queryRows<{ free: number; cancelled: boolean; started: boolean }>(
      tx,
      sql`select capacity - confirmed_count as free, cancelled_at is not null as cancelled, starts_at <= now() as started
          from shifts where org_id = ${orgId} and id = ${shiftId}`,
    );
    // Nobody is promoted into a shift that is cancelled, full, or already under way.
    if (!shift || shift.cancelled || shift.started || shift.free <= 0) return;
    const candidates = await queryRows<{ id: string }>(
      tx,
      sql`select s.id from signups s
          join volunteers v on v.org_id = s.org_id and v.id = s.volunteer_id and v.erased_at is null
          where s.org_id = ${orgId} and s.shift_id = ${shiftId} and s.status = 'waitlisted'
            and not (s.id = any(${uuidArray(skipped)}))
          order by s.created_at, s.id
          limit ${Math.min(shift.free + 10, 100)}`,
    );
    if (candidates.length === 0) return;
    for (const candidate of candidates) {
      if (!(await confirmWaitlisted(tx, orgId, shiftId, candidate.id))) {
        skipped.push(candidate.id);
        continue;
      }
      await recordEvent(tx, orgId, actor, 'signup.promoted', candidate.id, {
        signupId: candidate.id,
        shiftId,
      });
      break; // re-read the free places before the next one
    }
    // When every candidate of this batch was skipped, the next batch (after them) is read.
  }
}

/** One promotion in a savepoint: false when the database refuses it (overlap or capacity). */
async function confirmWaitlisted(
  tx: DbOrTx,
  orgId: string,
  shiftId: string,
  signupId: string,
): Promise<boolean> {
  try {
    await tx.transaction(async (savepoint) => {
      const taken = await queryRows<{ id: string }>(
        savepoint,
        sql`select id from shifts
            where org_id = ${orgId} and id = ${shiftId} and confirmed_count < capacity
            for update`,
      );
      if (taken.length === 0) throw new AppError('shift-full', 'No place left.');
      const changed = await queryRows<{ id: string }>(
        savepoint,
        sql`update signups set status = 'confirmed', updated_at = now(), version = version + 1
            where org_id = ${orgId} and id = ${signupId} and status = 'waitlisted'
            returning id`,
      );
      if (changed.length === 0) throw new AppError('invalid-state', 'No longer waitlisted.');
    });
    return true;
  } catch (error) {
    // 23P01: an overlap; 40P01: a deadlock with a concurrent overlapping insert (exclusion
    // constraints wait on each other's uncommitted rows). Either way this candidate cannot be
    // confirmed now: skip them, they stay waitlisted.
    const code = driverErrorOf(error)?.code;
    if (error instanceof AppError || code === '23P01' || code === '40P01') return false;
    throw error;
  }
}
