/**
 * Signups (API.md §7): the claim rules (shared with the shifts domain's `eligibility`, so the two
 * can never disagree), cancellation, and waitlist promotion.
 *
 * Locking order, everywhere: the shift row first, then its signups. Claims take the shift with a
 * guarded UPDATE; cancellations and promotions lock the affected shifts (in id order) before
 * touching signups, so that the two never wait on each other in opposite orders.
 */

import { sql } from 'drizzle-orm';
import { DateTime } from 'luxon';
import { AppError, driverErrorOf, type ProblemCode } from '../../core/errors.ts';
import { type Actor, recordEvent } from '../../core/outbox.ts';
import { type DbOrTx, queryRows } from '../../db/client.ts';

/** What the claim rules need to know about one shift, from one volunteer's point of view. */
export interface ClaimFacts {
  shiftId: string;
  cancelled: boolean;
  eventStatus: 'draft' | 'published' | 'cancelled';
  timezone: string;
  startsAt: Date;
  signupOpensAt: Date | null;
  signupClosesAt: Date;
  capacity: number;
  confirmedCount: number;
  waitlist: boolean;
  minAge: number | null;
  roleRestricted: boolean;
  qualified: boolean;
  birthDate: string | null;
  activeSignupId: string | null;
  activeSignupStatus: 'confirmed' | 'waitlisted' | null;
  overlappingSignupId: string | null;
}

export interface ClaimRefusal {
  code: ProblemCode;
  detail: string;
  extensions?: Record<string, unknown>;
}

/** Age in whole years on the local date of `at` in `timezone`. */
function ageAt(birthDate: string, at: Date, timezone: string): number {
  const day = DateTime.fromJSDate(at, { zone: timezone });
  const born = DateTime.fromISO(birthDate, { zone: timezone });
  let age = day.year - born.year;
  if (day.month < born.month || (day.month === born.month && day.day < born.day)) age -= 1;
  return age;
}

/**
 * The first rule a claim breaks, in the order of API.md §7, or null when it may go ahead. An
 * organiser assigning someone skips the publication and signup-window rules.
 */
export function claimRefusal(
  facts: ClaimFacts,
  now: Date,
  options: { byOrganiser: boolean },
): ClaimRefusal | null {
  if (facts.cancelled || facts.eventStatus === 'cancelled') {
    return { code: 'shift-cancelled', detail: 'The shift is cancelled.' };
  }
  if (!options.byOrganiser) {
    if (facts.eventStatus !== 'published') {
      return { code: 'event-not-published', detail: 'The event is not published yet.' };
    }
    if ((facts.signupOpensAt && now < facts.signupOpensAt) || now >= facts.signupClosesAt) {
      const when =
        facts.signupOpensAt && now < facts.signupOpensAt
          ? `Signup opens at ${facts.signupOpensAt.toISOString()}.`
          : `Signup closed at ${facts.signupClosesAt.toISOString()}.`;
      return { code: 'signup-closed', detail: when };
    }
  }
  if (facts.roleRestricted && !facts.qualified) {
    return {
      code: 'not-qualified',
      detail: "The shift's role needs a qualification the volunteer does not hold.",
    };
  }
  if (facts.minAge !== null) {
    if (facts.birthDate === null) {
      return {
        code: 'too-young',
        detail: `The shift needs a minimum age of ${facts.minAge}; the birth date is unknown.`,
      };
    }
    if (ageAt(facts.birthDate, facts.startsAt, facts.timezone) < facts.minAge) {
      return { code: 'too-young', detail: `The shift needs a minimum age of ${facts.minAge} at its start.` };
    }
  }
  if (facts.activeSignupId) {
    return {
      code: 'already-signed-up',
      detail: `The volunteer is already ${facts.activeSignupStatus} on this shift.`,
      extensions: { signupId: facts.activeSignupId },
    };
  }
  if (facts.overlappingSignupId) {
    return {
      code: 'overlapping-signup',
      detail: 'The volunteer has a confirmed signup that overlaps this shift.',
      extensions: { conflictingSignupId: facts.overlappingSignupId },
    };
  }
  if (facts.confirmedCount >= facts.capacity && !facts.waitlist) {
    return { code: 'shift-full', detail: 'Every place is taken and the shift keeps no waitlist.' };
  }
  return null;
}

export interface Eligibility {
  canClaim: boolean;
  reason: ProblemCode | null;
  signupId: string | null;
  signupStatus: string | null;
}

export function eligibilityOf(facts: ClaimFacts, now: Date): Eligibility {
  const refusal = claimRefusal(facts, now, { byOrganiser: false });
  return {
    canClaim: refusal === null,
    reason: refusal?.code ?? null,
    signupId: facts.activeSignupId,
    signupStatus: facts.activeSignupStatus,
  };
}

type FactsRow = {
  shift_id: string;
  cancelled: boolean;
  event_status: ClaimFacts['eventStatus'];
  timezone: string;
  starts_at: Date | string;
  signup_opens_at: Date | string | null;
  signup_closes_at: Date | string;
  capacity: number;
  confirmed_count: number;
  waitlist: boolean;
  min_age: number | null;
  role_restricted: boolean | null;
  qualified: boolean;
  birth_date: string | null;
  active_signup_id: string | null;
  active_signup_status: ClaimFacts['activeSignupStatus'];
  overlapping_signup_id: string | null;
};

const asDate = (value: Date | string) => (value instanceof Date ? value : new Date(value));

/**
 * A uuid[] parameter. drizzle's `sql` spreads a JavaScript array into a list of parameters
 * (`($1, $2)`), which `::uuid[]` cannot cast (and `()` is a syntax error), so the array travels as
 * one text parameter in PostgreSQL's array syntax. The ids come from uuid columns or validated
 * input, so they hold no characters that array syntax would need quoted.
 */
const uuidArray = (ids: string[]) => sql`${`{${ids.join(',')}}`}::uuid[]`;

/** The claim facts of several shifts for one volunteer, in one query (no N+1 for lists). */
export async function loadClaimFacts(
  db: DbOrTx,
  orgId: string,
  volunteerId: string,
  shiftIds: string[],
): Promise<Map<string, ClaimFacts>> {
  if (shiftIds.length === 0) return new Map();
  const rows = await queryRows<FactsRow>(
    db,
    sql`
      select sh.id as shift_id,
        sh.cancelled_at is not null as cancelled,
        e.status as event_status,
        e.timezone,
        sh.starts_at,
        sh.signup_opens_at,
        coalesce(sh.signup_closes_at, sh.starts_at) as signup_closes_at,
        sh.capacity,
        sh.confirmed_count,
        sh.waitlist,
        sh.min_age,
        r.restricted as role_restricted,
        exists (select 1 from qualifications q
                where q.org_id = sh.org_id and q.volunteer_id = ${volunteerId} and q.role_id = sh.role_id) as qualified,
        v.birth_date::text as birth_date,
        a.id as active_signup_id,
        a.status as active_signup_status,
        (select o.id from signups o
          where o.org_id = sh.org_id and o.volunteer_id = ${volunteerId} and o.status = 'confirmed'
            and o.shift_id <> sh.id and o.period && sh.period
          order by o.id limit 1) as overlapping_signup_id
      from shifts sh
      join events e on e.org_id = sh.org_id and e.id = sh.event_id
      join volunteers v on v.org_id = sh.org_id and v.id = ${volunteerId}
      left join roles r on r.org_id = sh.org_id and r.id = sh.role_id
      left join signups a on a.org_id = sh.org_id and a.shift_id = sh.id and a.volunteer_id = ${volunteerId}
        and a.status in ('confirmed', 'waitlisted')
      where sh.org_id = ${orgId} and sh.id = any(${uuidArray(shiftIds)})`,
  );
  return new Map(
    rows.map((row) => [
      row.shift_id,
      {
        shiftId: row.shift_id,
        cancelled: row.cancelled,
        eventStatus: row.event_status,
        timezone: row.timezone,
        startsAt: asDate(row.starts_at),
        signupOpensAt: row.signup_opens_at === null ? null : asDate(row.signup_opens_at),
        signupClosesAt: asDate(row.signup_closes_at),
        capacity: row.capacity,
        confirmedCount: row.confirmed_count,
        waitlist: row.waitlist,
        minAge: row.min_age,
        roleRestricted: row.role_restricted === true,
        qualified: row.qualified,
        birthDate: row.birth_date,
        activeSignupId: row.active_signup_id,
        activeSignupStatus: row.active_signup_status,
        overlappingSignupId: row.overlapping_signup_id,
      },
    ]),
  );
}

// ── Cancellation and promotion ───────────────────────────────────────────────────────────────

export type CancellationScope =
  | { volunteerId: string; futureOnly: true }
  | { shiftId: string }
  | { eventId: string };

function scopeCondition(scope: CancellationScope) {
  if ('volunteerId' in scope) return sql`s.volunteer_id = ${scope.volunteerId} and sh.starts_at > now()`;
  if ('shiftId' in scope) return sql`s.shift_id = ${scope.shiftId}`;
  return sql`sh.event_id = ${scope.eventId}`;
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
 * event for each. Returns the shifts that lost a confirmed volunteer (for promotion by the caller,
 * where the shift stays open).
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
    const [shift] = await queryRows<{ free: number; cancelled: boolean }>(
      tx,
      sql`select capacity - confirmed_count as free, cancelled_at is not null as cancelled
          from shifts where org_id = ${orgId} and id = ${shiftId}`,
    );
    if (!shift || shift.cancelled || shift.free <= 0) break;
    const candidates = await queryRows<{ id: string; volunteer_id: string }>(
      tx,
      sql`select id, volunteer_id from signups
          where org_id = ${orgId} and shift_id = ${shiftId} and status = 'waitlisted'
            and not (id = any(${uuidArray(skipped)}))
          order by created_at, id
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
    if (error instanceof AppError || driverErrorOf(error)?.code === '23P01') return false;
    throw error;
  }
}
