/**
 * Places and the waitlist: cancelling active signups (freeing their places) and promoting the
 * waitlist into free places, first come first served.
 *
 * Locking order, everywhere: the shift row first, then its signups. Claims take the shift with a
 * guarded UPDATE; cancellations and promotions lock the affected shifts (in id order) before
 * touching signups, so that the two never wait on each other in opposite orders.
 */
import { type SQL, sql } from 'drizzle-orm';
import { AppError } from '../../core/errors.ts';
import { type Actor, recordEvent } from '../../core/outbox.ts';
import { type DbOrTx, queryRows, uuidArray } from '../../db/client.ts';
import { driverErrorOf } from '../../db/errors.ts';

// ── Cancellation and promotion ───────────────────────────────────────────────────────────────

/** Whose signups a cascade cancels: a volunteer's (on shifts not yet started), a shift's, an event's. */
export type CancellationScope = { volunteerId: string } | { shiftId: string } | { eventId: string };

function scopeCondition(scope: CancellationScope) {
  if ('volunteerId' in scope) return sql`s.volunteer_id = ${scope.volunteerId} and sh.starts_at > now()`;
  if ('shiftId' in scope) return sql`s.shift_id = ${scope.shiftId}`;
  return sql`sh.event_id = ${scope.eventId}`;
}

/**
 * Shifts with a free place where a volunteer whose confirmed signups (`signupCondition`, over
 * signups `s` joined to their shifts `sh`) are about to be cancelled waits on the waitlist at an
 * overlapping time. Such a signup may be what kept them waiting while a place stood free (they
 * were skipped, invariant 4); once it is cancelled, they can be promoted there.
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

/** Offers the free places of each shift to its waitlist, in id order; the caller holds their locks. */
export async function promoteEach(
  tx: DbOrTx,
  orgId: string,
  shiftIds: string[],
  actor: Actor,
): Promise<void> {
  for (const shiftId of [...shiftIds].sort()) await promoteWaitlisted(tx, orgId, shiftId, actor);
}

/**
 * After `awaiting` (from shiftsAwaitingFreedVolunteers, read while the signups were confirmed) lost
 * what kept their volunteers waiting: offers their free places, taking only the shifts no other
 * request holds (the caller holds shift locks already; waiting out of id order could deadlock).
 * One busy now is being changed by another request, which takes its place (as if it came first).
 */
export async function promoteWhereFreed(
  tx: DbOrTx,
  orgId: string,
  awaiting: string[],
  actor: Actor,
): Promise<void> {
  await promoteEach(tx, orgId, await lockShiftsIfFree(tx, orgId, awaiting), actor);
}

/** Locks those of the shifts that no other transaction holds, without waiting; returns them. */
async function lockShiftsIfFree(tx: DbOrTx, orgId: string, shiftIds: string[]): Promise<string[]> {
  if (shiftIds.length === 0) return [];
  const locked = await queryRows<{ id: string }>(
    tx,
    sql`select id from shifts where org_id = ${orgId} and id = any(${uuidArray(shiftIds)})
        order by id for update skip locked`,
  );
  return locked.map((row) => row.id);
}

/** Locks shift rows in id order: the first step of every write that touches their signups. */
export async function lockShifts(tx: DbOrTx, orgId: string, shiftIds: string[]): Promise<void> {
  if (shiftIds.length === 0) return;
  await tx.execute(
    sql`select id from shifts where org_id = ${orgId} and id = any(${uuidArray(shiftIds)}) order by id for update`,
  );
}

/**
 * Cancels every active signup in `scope`, frees their places and writes a `signup.cancelled`
 * event for each. Volunteers whose time this frees are promoted where they were waiting for a free
 * place. Returns the shifts that lost a confirmed volunteer (for promotion by the caller, where the
 * shift stays open).
 */
export async function cancelActiveSignups(
  tx: DbOrTx,
  orgId: string,
  actor: Actor,
  scope: CancellationScope,
): Promise<{ shiftsWithFreedPlaces: string[] }> {
  const affected = await queryRows<{ shift_id: string }>(
    tx,
    sql`select distinct s.shift_id from signups s
        join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        where s.org_id = ${orgId} and s.status in ('confirmed', 'waitlisted') and ${scopeCondition(scope)}`,
  );
  const shiftIds = affected.map((row) => row.shift_id);
  if (shiftIds.length === 0) return { shiftsWithFreedPlaces: [] };
  await lockShifts(tx, orgId, shiftIds);
  // Where a volunteer freed here waits at an overlapping time (read before their signups change).
  // The caller may hold shift locks already (a shift's or an event's cancellation), so these are
  // promoted only where free to lock: promoteWhereFreed.
  const awaiting = (await shiftsAwaitingFreedVolunteers(tx, orgId, scopeCondition(scope))).filter(
    (shiftId) => !shiftIds.includes(shiftId),
  );
  const cancelled = await queryRows<{
    id: string;
    shift_id: string;
    volunteer_id: string;
    previous_status: string;
  }>(
    tx,
    sql`
      with target as (
        select s.id, s.status from signups s
        join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        where s.org_id = ${orgId} and s.shift_id = any(${uuidArray(shiftIds)})
          and s.status in ('confirmed', 'waitlisted') and ${scopeCondition(scope)}
        for update of s
      )
      update signups set status = 'cancelled', cancelled_at = now(), updated_at = now(), version = version + 1
      from target
      where signups.org_id = ${orgId} and signups.id = target.id
      returning signups.id, signups.shift_id, signups.volunteer_id, target.status::text as previous_status`,
  );
  await tx.execute(sql`
    update shifts set
      confirmed_count = confirmed_count - counts.confirmed,
      waitlist_count = waitlist_count - counts.waitlisted,
      updated_at = now(),
      version = version + 1
    from (
      select shift_id,
        count(*) filter (where previous_status = 'confirmed')::int as confirmed,
        count(*) filter (where previous_status = 'waitlisted')::int as waitlisted
      from jsonb_to_recordset(${JSON.stringify(cancelled)}::jsonb) as c(shift_id uuid, previous_status text)
      group by shift_id
    ) counts
    where shifts.org_id = ${orgId} and shifts.id = counts.shift_id`);
  for (const signup of cancelled) {
    await recordEvent(tx, {
      orgId,
      type: 'signup.cancelled',
      resourceType: 'signup',
      resourceId: signup.id,
      actor,
      payload: { signupId: signup.id, shiftId: signup.shift_id, previousStatus: signup.previous_status },
    });
  }
  await promoteWhereFreed(tx, orgId, awaiting, actor);
  const freed = new Set(
    cancelled.filter((signup) => signup.previous_status === 'confirmed').map((s) => s.shift_id),
  );
  return { shiftsWithFreedPlaces: [...freed] };
}

/**
 * Fills free places from the waitlist, first come first served (invariant 4): each candidate is
 * confirmed inside a savepoint, and one whose confirmation would overlap another of their
 * confirmed signups (the exclusion constraint says so) is skipped and stays waitlisted. The caller
 * holds the shift's row lock. Returns the promoted signup ids.
 */
export async function promoteWaitlisted(
  tx: DbOrTx,
  orgId: string,
  shiftId: string,
  actor: Actor,
): Promise<string[]> {
  const promoted: string[] = [];
  const skipped: string[] = [];
  for (;;) {
    const [shift] = await queryRows<{ free: number; cancelled: boolean; started: boolean }>(
      tx,
      sql`select capacity - confirmed_count as free, cancelled_at is not null as cancelled, starts_at <= now() as started
          from shifts where org_id = ${orgId} and id = ${shiftId}`,
    );
    // Nobody is promoted into a shift that is cancelled, full, or already under way.
    if (!shift || shift.cancelled || shift.started || shift.free <= 0) break;
    const candidates = await queryRows<{ id: string; volunteer_id: string }>(
      tx,
      sql`select s.id, s.volunteer_id from signups s
          join volunteers v on v.org_id = s.org_id and v.id = s.volunteer_id and v.erased_at is null
          where s.org_id = ${orgId} and s.shift_id = ${shiftId} and s.status = 'waitlisted'
            and not (s.id = any(${uuidArray(skipped)}))
          order by s.created_at, s.id
          limit ${Math.min(shift.free + 10, 100)}`,
    );
    if (candidates.length === 0) break;
    for (const candidate of candidates) {
      const confirmed = await confirmWaitlisted(tx, orgId, shiftId, candidate.id);
      if (!confirmed) {
        skipped.push(candidate.id);
        continue;
      }
      promoted.push(candidate.id);
      await recordEvent(tx, {
        orgId,
        type: 'signup.promoted',
        resourceType: 'signup',
        resourceId: candidate.id,
        actor,
        payload: { signupId: candidate.id, shiftId },
      });
      break; // re-read the free places before the next one
    }
    // When every candidate of this batch was skipped, the next batch (after them) is read.
  }
  return promoted;
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
        sql`update shifts set confirmed_count = confirmed_count + 1, waitlist_count = waitlist_count - 1,
              updated_at = now(), version = version + 1
            where org_id = ${orgId} and id = ${shiftId} and confirmed_count < capacity
            returning id`,
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
