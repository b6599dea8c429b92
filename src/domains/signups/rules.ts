/**
 * The claim rules of API.md §7, in their order, and the facts they judge: shared by the claim
 * itself and by the shifts domain's `eligibility`, so that the two can never disagree.
 */

import { type SQL, sql } from 'drizzle-orm';
import { DateTime } from 'luxon';
import { AppError, type ProblemCode, refusals } from '../../core/errors.ts';
import { batchLoader, loaderPerHandle } from '../../db/batch.ts';
import { type Db, type DbOrTx, isDatabaseHandle, preparedRows, uuidArray } from '../../db/client.ts';
import { decodeRows, type RowOf, selectList } from '../../db/columns.ts';
import { shifts } from '../../db/schema.ts';

/**
 * What the claim rules need to know about one shift `sh`, from one volunteer's point of view: the
 * column object of `factsQuery` (its event `e`, the volunteer `v`, the shift's role `r`, the
 * volunteer's active signup there `a`). `volunteer` is SQL: a parameter for one volunteer, a
 * batch's column for many.
 */
function factsColumns(volunteer: SQL) {
  return {
    shiftId: sql<string>`sh.id`,
    cancelled: sql<boolean>`sh.cancelled_at is not null`,
    eventStatus: sql<'draft' | 'published' | 'cancelled'>`e.status`,
    timezone: sql<string>`e.timezone`,
    startsAt: sql`sh.starts_at`.mapWith(shifts.startsAt),
    signupOpensAt: sql`sh.signup_opens_at`.mapWith(shifts.signupOpensAt) as SQL<Date | null>,
    signupClosesAt: sql`coalesce(sh.signup_closes_at, sh.starts_at)`.mapWith(shifts.startsAt),
    capacity: sql<number>`sh.capacity`,
    confirmedCount: sql<number>`sh.confirmed_count`,
    waitlist: sql<boolean>`sh.waitlist`,
    minAge: sql<number | null>`sh.min_age`,
    roleRestricted: sql<boolean>`coalesce(r.restricted, false)`,
    qualified: sql<boolean>`exists (select 1 from qualifications q
      where q.org_id = sh.org_id and q.volunteer_id = ${volunteer} and q.role_id = sh.role_id)`,
    birthDate: sql<string | null>`v.birth_date::text`,
    activeSignupId: sql<string | null>`a.id`,
    activeSignupStatus: sql<'confirmed' | 'waitlisted' | 'attended' | 'no_show' | null>`a.status`,
    overlappingSignupId: sql<string | null>`(select o.id from signups o
      where o.org_id = sh.org_id and o.volunteer_id = ${volunteer} and o.status = 'confirmed'
        and o.shift_id <> sh.id and o.period && sh.period
      limit 1)`,
  };
}

export type ClaimFacts = RowOf<ReturnType<typeof factsColumns>>;

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
): AppError | null {
  if (facts.cancelled || facts.eventStatus === 'cancelled') {
    return refusals.shiftCancelled();
  }
  if (!options.byOrganiser) {
    if (facts.eventStatus !== 'published') {
      return new AppError('event-not-published', 'The event is not published yet.');
    }
    if ((facts.signupOpensAt && now < facts.signupOpensAt) || now >= facts.signupClosesAt) {
      const when =
        facts.signupOpensAt && now < facts.signupOpensAt
          ? `Signup opens at ${facts.signupOpensAt.toISOString()}.`
          : `Signup closed at ${facts.signupClosesAt.toISOString()}.`;
      return new AppError('signup-closed', when);
    }
  }
  if (facts.roleRestricted && !facts.qualified) {
    return new AppError(
      'not-qualified',
      "The shift's role needs a qualification the volunteer does not hold.",
    );
  }
  if (facts.minAge !== null) {
    if (facts.birthDate === null) {
      return new AppError(
        'too-young',
        `The shift needs a minimum age of ${facts.minAge}; the birth date is unknown.`,
      );
    }
    if (ageAt(facts.birthDate, facts.startsAt, facts.timezone) < facts.minAge) {
      return new AppError('too-young', `The shift needs a minimum age of ${facts.minAge} at its start.`);
    }
  }
  if (facts.activeSignupId) {
    return refusals.alreadySignedUp({ id: facts.activeSignupId, status: String(facts.activeSignupStatus) });
  }
  if (facts.overlappingSignupId) return refusals.overlappingClaim(facts.overlappingSignupId);
  if (facts.confirmedCount >= facts.capacity && !facts.waitlist) return refusals.shiftFull();
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

/**
 * The facts of the shifts matching `shiftCondition` (on `sh`), for one volunteer. The organisation
 * and volunteer are SQL too: parameters for one volunteer, the columns of a batch for many.
 */
function factsQuery(org: SQL, volunteer: SQL, shiftCondition: SQL): SQL {
  return sql`
    select ${selectList(factsColumns(volunteer))}
    from shifts sh
    join events e on e.org_id = sh.org_id and e.id = sh.event_id
    join volunteers v on v.org_id = sh.org_id and v.id = ${volunteer} and v.erased_at is null
    left join roles r on r.org_id = sh.org_id and r.id = sh.role_id
    left join signups a on a.org_id = sh.org_id and a.shift_id = sh.id and a.volunteer_id = ${volunteer}
      and a.status <> 'cancelled'
    where sh.org_id = ${org} and ${shiftCondition}`;
}

/** The shape of every facts row, whichever volunteer SQL selected it. */
const factsDecoding = factsColumns(sql`null`);

/** One (organisation, volunteer, shift) whose facts a request needs. */
interface FactsKey {
  orgId: string;
  volunteerId: string;
  shiftId: string;
}

/**
 * The facts of many (volunteer, shift) pairs in one statement, for the requests of one turn of the
 * event loop (db/batch.ts). Each pair is one row of `unnest(…) with ordinality`; a missing shift
 * or volunteer gives no row, hence undefined.
 */
const factsLoader = loaderPerHandle((handle) =>
  batchLoader<FactsKey, ClaimFacts | undefined>(async (keys) => {
    const rows = await preparedRows<{ request_index: number }>(
      handle as Db,
      'claim-facts-batch',
      sql`
        select q.i::int as request_index, f.*
        from unnest(${uuidArray(keys.map((key) => key.orgId))}, ${uuidArray(keys.map((key) => key.volunteerId))},
                    ${uuidArray(keys.map((key) => key.shiftId))}) with ordinality as q(org_id, volunteer_id, shift_id, i)
        cross join lateral (${factsQuery(sql`q.org_id`, sql`q.volunteer_id`, sql`sh.id = q.shift_id`)}) f`,
    );
    const facts = decodeRows(factsDecoding, rows);
    const byIndex = new Map(rows.map((row, index) => [row.request_index, facts[index]]));
    return keys.map((_, index) => byIndex.get(index + 1));
  }),
);

/**
 * The claim facts of several shifts for one volunteer (one query for a list's page, no N+1).
 *
 * On the database handle, the lookup joins the batch of its turn of the event loop (the hot path of
 * every claim, see db/batch.ts). Inside a transaction it runs alone: one shift has its own statement
 * with `sh.id = $n`, because with `= any($n)` PostgreSQL judged the cached generic plan dearer than
 * a plan for the actual one-element array and planned the query afresh on every execution
 * (≈ 0.7 ms per claim, measured with pg_stat_statements under the claim benchmark).
 */
export async function loadClaimFacts(
  db: DbOrTx,
  orgId: string,
  volunteerId: string,
  shiftIds: string[],
): Promise<Map<string, ClaimFacts>> {
  if (shiftIds.length === 0) return new Map();
  const [onlyShift] = shiftIds;
  let found: (ClaimFacts | undefined)[];
  if (isDatabaseHandle(db)) {
    const results = await factsLoader(db).loadMany(
      shiftIds.map((shiftId) => ({ orgId, volunteerId, shiftId })),
    );
    for (const result of results) if (result instanceof Error) throw result;
    found = results as (ClaimFacts | undefined)[];
  } else {
    // One shift has its own statement: see above.
    const shiftCondition =
      shiftIds.length === 1 && onlyShift !== undefined
        ? sql`sh.id = ${onlyShift}`
        : sql`sh.id = any(${uuidArray(shiftIds)})`;
    const name = shiftIds.length === 1 ? 'claim-facts-one' : 'claim-facts';
    const rows = await preparedRows<Record<string, unknown>>(
      db,
      name,
      factsQuery(sql`${orgId}`, sql`${volunteerId}`, shiftCondition),
    );
    found = decodeRows(factsDecoding, rows);
  }
  return new Map(found.flatMap((facts) => (facts ? [[facts.shiftId, facts] as const] : [])));
}
