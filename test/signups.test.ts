/**
 * API.md §7, signups, through the HTTP API: claims and their rules (in order, each its own 409),
 * the waitlist and its promotion, cancellation, the lists, attendance, the outbox and
 * Idempotency-Key. SQL only reads state, or moves a shift's times when a rule depends on the clock
 * (a signup's period follows its shift by a cascading foreign key).
 */
import { sql } from 'drizzle-orm';
import type { Test } from 'supertest';
import { uuidv7 } from 'uuidv7';
import { afterEach, describe, expect, it } from 'vitest';
import { quarterHours } from '../src/domains/signups/service.ts';
import { uniqueSlug } from './support/app.ts';
import {
  type Auth,
  databaseNow,
  expectProblem,
  fixtures,
  ids,
  type Org,
  type ShiftBody,
  sleep,
  useTestApp,
} from './support/fixtures.ts';

const suite = useTestApp();
const shared = fixtures(suite);
const { setupOrg, createShift, createRole, rows, pageThrough } = shared;

/** A published event (claims are taken on published events only), unless the body says otherwise. */
const createEvent = (auth: Auth, body: Record<string, unknown> = {}) =>
  shared.createEvent(auth, { status: 'published', ...body });

interface Volunteer {
  id: string;
  name: string;
  email: string;
  auth: Auth;
}

interface SignupBody {
  id: string;
  shiftId: string;
  volunteerId: string;
  status: string;
  waitlistPosition: number | null;
  note: string | null;
  lateCancellation: boolean;
  checkedInAt: string | null;
  checkedOutAt: string | null;
  hours: number | null;
  createdAt: string;
  updatedAt: string;
  cancelledAt: string | null;
}

const HOUR = 3_600_000;
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** `[start, start + hours)` on 2033-05-<day> (UTC), as request fields. */
function at(day: number, startHour: number, hours = 2) {
  const start = Date.UTC(2033, 4, day) + startHour * HOUR;
  return {
    startsAt: new Date(start).toISOString(),
    endsAt: new Date(start + hours * HOUR).toISOString(),
  };
}

/** A shift starting `inHours` from now (negative: started already), lasting `hours`. */
function fromNow(inHours: number, hours = 3) {
  const start = Date.now() + inHours * HOUR;
  return {
    startsAt: new Date(start).toISOString(),
    endsAt: new Date(start + hours * HOUR).toISOString(),
  };
}

async function createVolunteer(org: Org, extra: Record<string, unknown> = {}): Promise<Volunteer> {
  const name = `Vol ${uniqueSlug('name')}`;
  const email = `${uniqueSlug('v')}@example.org`;
  const id = await shared.createVolunteer(org.organiser, { name, email, ...extra });
  return { id, name, email, auth: await shared.volunteerToken(org.organiser, id) };
}

function claim(auth: Auth, shiftId: string, body: Record<string, unknown> = {}): Test {
  return suite.http.post(`/v1/shifts/${shiftId}/signups`).set(auth).send(body);
}

async function claimOk(
  auth: Auth,
  shiftId: string,
  body: Record<string, unknown> = {},
  status: 'confirmed' | 'waitlisted' = 'confirmed',
): Promise<SignupBody> {
  const response = await claim(auth, shiftId, body);
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  expect(response.body.status).toBe(status);
  expect(response.headers.location).toBe(`/v1/signups/${response.body.id}`);
  return response.body as SignupBody;
}

function cancel(auth: Auth, signupId: string): Test {
  return suite.http.post(`/v1/signups/${signupId}/cancel`).set(auth);
}

async function cancelOk(auth: Auth, signupId: string): Promise<SignupBody> {
  const response = await cancel(auth, signupId);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  expect(response.body.status).toBe('cancelled');
  return response.body as SignupBody;
}

async function readSignup(auth: Auth, signupId: string): Promise<SignupBody> {
  const response = await suite.http.get(`/v1/signups/${signupId}`).set(auth);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body as SignupBody;
}

async function readShift(auth: Auth, shiftId: string): Promise<ShiftBody> {
  const response = await suite.http.get(`/v1/shifts/${shiftId}`).set(auth);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body as ShiftBody;
}

async function signupCount(shiftId: string) {
  const [row] = await rows<{ n: number }>(
    sql`select count(*)::int as n from signups where shift_id = ${shiftId}`,
  );
  return row?.n ?? -1;
}

/** The outbox rows of one resource, oldest first. */
async function outboxOf(resourceId: string) {
  return rows<{ type: string; resource_type: string; payload: Record<string, unknown> }>(
    sql`select type, resource_type, payload from outbox where resource_id = ${resourceId} order by created_at, id`,
  );
}

/**
 * The counters of a shift agree with its rows (API.md §7): the shift's counts, the API's view of
 * them, and `available`/`status`.
 */
async function expectCounts(org: Org, shiftId: string, confirmed: number, waitlisted: number) {
  const [stored] = await rows<{
    confirmed_count: number;
    waitlist_count: number;
    confirmed_rows: number;
    waitlisted_rows: number;
    capacity: number;
  }>(
    sql`select sh.confirmed_count, sh.waitlist_count, sh.capacity,
          (select count(*)::int from signups s where s.shift_id = sh.id
             and s.status in ('confirmed', 'attended', 'no_show')) as confirmed_rows,
          (select count(*)::int from signups s where s.shift_id = sh.id and s.status = 'waitlisted') as waitlisted_rows
        from shifts sh where sh.id = ${shiftId}`,
  );
  expect(stored).toEqual({
    confirmed_count: confirmed,
    waitlist_count: waitlisted,
    confirmed_rows: confirmed,
    waitlisted_rows: waitlisted,
    capacity: stored?.capacity,
  });
  const shift = await readShift(org.viewer, shiftId);
  expect(shift).toMatchObject({
    confirmedCount: confirmed,
    waitlistCount: waitlisted,
    available: shift.capacity - confirmed,
  });
  if (shift.status !== 'cancelled' && shift.status !== 'closed') {
    expect(shift.status).toBe(confirmed >= shift.capacity ? 'full' : 'open');
  }
  return shift;
}

/** Invariants 1–3 of API.md §7 and the counters, over every shift of the database. */
async function expectInvariants() {
  const counters = await rows<{ id: string }>(
    sql`select sh.id from shifts sh
        where sh.confirmed_count <> (select count(*) from signups s where s.org_id = sh.org_id and s.shift_id = sh.id
                                       and s.status in ('confirmed', 'attended', 'no_show'))
           or sh.waitlist_count <> (select count(*) from signups s where s.org_id = sh.org_id and s.shift_id = sh.id
                                       and s.status = 'waitlisted')
           or sh.confirmed_count > sh.capacity`,
  );
  expect(counters, 'shifts whose counters disagree with their signups').toEqual([]);
  const doubles = await rows<{ shift_id: string }>(
    sql`select shift_id from signups where status in ('confirmed', 'waitlisted')
        group by org_id, shift_id, volunteer_id having count(*) > 1`,
  );
  expect(doubles, 'two active signups of one volunteer on one shift').toEqual([]);
  const overlaps = await rows<{ a: string }>(
    sql`select a.id as a from signups a join signups b
          on b.org_id = a.org_id and b.volunteer_id = a.volunteer_id and b.id > a.id and a.period && b.period
        where a.status = 'confirmed' and b.status = 'confirmed'`,
  );
  expect(overlaps, 'overlapping confirmed signups of one volunteer').toEqual([]);
  const periods = await rows<{ id: string }>(
    sql`select s.id from signups s join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
        where s.period <> sh.period`,
  );
  expect(periods, "signups whose period is not their shift's").toEqual([]);
}

// Invariants 1-3 of API.md §7 hold after every scenario in this file, whatever ran before it.
afterEach(() => expectInvariants());

async function list<T = SignupBody>(auth: Auth, path: string, query: Record<string, string | number> = {}) {
  const response = await suite.http.get(path).query(query).set(auth);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  expect(response.body).toHaveProperty('nextCursor');
  return response.body.data as T[];
}

/** A published event with one shift, and an organisation to go with it. */
async function scenario(shift: Record<string, unknown> = {}, event: Record<string, unknown> = {}) {
  const org = await setupOrg();
  const ev = await createEvent(org.organiser, event);
  const created = await createShift(org.organiser, ev.id, { ...at(1, 9, 3), ...shift });
  return { org, event: ev, shift: created };
}

/**
 * A 1-place shift on 2033-05-<day>, 10:00–13:00, whose place is free while `waiting` stays
 * waitlisted on it: skipped (invariant 4) for their confirmed signup `blocking` on `elsewhere`,
 * 12:00–14:00, which overlaps it.
 */
async function skippedForOverlap(day: number) {
  const org = await setupOrg();
  const event = await createEvent(org.organiser);
  const shift = await createShift(org.organiser, event.id, { ...at(day, 10, 3), capacity: 1 });
  const elsewhere = await createShift(org.organiser, event.id, at(day, 12, 2));
  const [holder, waiting] = await Promise.all([1, 2].map(() => createVolunteer(org)));
  if (!holder || !waiting) throw new Error('volunteers');
  const held = await claimOk(holder.auth, shift.id);
  const queued = await claimOk(waiting.auth, shift.id, {}, 'waitlisted');
  const blocking = await claimOk(waiting.auth, elsewhere.id);
  await cancelOk(org.organiser, held.id); // the place is free, but `waiting` overlaps: skipped
  expect((await readSignup(org.viewer, queued.id)).status).toBe('waitlisted');
  return { org, shift, elsewhere, waiting, queued, blocking };
}

/** Moves a shift's times (the clock-dependent rules); its signups' periods follow by the foreign key. */
async function moveShift(shiftId: string, startOffset: string, endOffset: string) {
  await suite.database.db.execute(sql`
    update shifts set starts_at = now() + ${startOffset}::interval, ends_at = now() + ${endOffset}::interval
    where id = ${shiftId}`);
}

// ── Claims ───────────────────────────────────────────────────────────────────────────────────

describe('POST /v1/shifts/{id}/signups', () => {
  it('a volunteer claims for itself with {} → 201 confirmed, Location, and the row behind it', async () => {
    const { org, shift } = await scenario({ capacity: 3 });
    const volunteer = await createVolunteer(org);
    const response = await claim(volunteer.auth, shift.id, {}).expect(201);
    expect(response.headers.location).toBe(`/v1/signups/${response.body.id}`);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      shiftId: shift.id,
      volunteerId: volunteer.id,
      status: 'confirmed',
      waitlistPosition: null,
      note: null,
      lateCancellation: false,
      checkedInAt: null,
      checkedOutAt: null,
      hours: null,
      createdAt: expect.stringMatching(isoTimestamp),
      updatedAt: expect.stringMatching(isoTimestamp),
      cancelledAt: null,
    });
    expect(await readSignup(volunteer.auth, response.body.id)).toEqual(response.body);
    expect(await readSignup(org.viewer, response.body.id)).toEqual(response.body);
    const [stored] = await rows<{
      org_id: string;
      status: string;
      same_period: boolean;
      volunteer_id: string;
    }>(
      sql`select s.org_id, s.status::text as status, s.volunteer_id, s.period = sh.period as same_period
          from signups s join shifts sh on sh.id = s.shift_id where s.id = ${response.body.id}`,
    );
    expect(stored).toEqual({
      org_id: org.id,
      status: 'confirmed',
      volunteer_id: volunteer.id,
      same_period: true,
    });
    const read = await expectCounts(org, shift.id, 1, 0);
    expect(read).toMatchObject({ available: 2, status: 'open' });
    expect(read.updatedAt > shift.updatedAt).toBe(true);
  });

  it('a volunteer claims with { note }; the note is kept', async () => {
    const { org, shift } = await scenario();
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(volunteer.auth, shift.id, { note: 'I can bring a van' });
    expect(signup.note).toBe('I can bring a van');
    expect((await readSignup(org.viewer, signup.id)).note).toBe('I can bring a van');
    // a volunteer naming itself is the same as naming nobody
    const other = await createVolunteer(org);
    const self = await claimOk(other.auth, shift.id, { volunteerId: other.id });
    expect(self.volunteerId).toBe(other.id);
  });

  it('an organiser (or admin) assigns a volunteer with { volunteerId, note? }', async () => {
    const { org, shift } = await scenario();
    const first = await createVolunteer(org);
    const second = await createVolunteer(org);
    const assigned = await claimOk(org.organiser, shift.id, {
      volunteerId: first.id,
      note: 'Assigned by phone',
    });
    expect(assigned).toMatchObject({ volunteerId: first.id, shiftId: shift.id, note: 'Assigned by phone' });
    const byAdmin = await claimOk(org.admin, shift.id, { volunteerId: second.id });
    expect(byAdmin.volunteerId).toBe(second.id);
    // the assigned volunteer sees it as their own
    expect((await readSignup(first.auth, assigned.id)).id).toBe(assigned.id);
    await expectCounts(org, shift.id, 2, 0);
  });

  it('who may claim: organiser needs volunteerId (400), viewer 403, a volunteer only for itself (403), no token 401', async () => {
    const { org, shift } = await scenario();
    const volunteer = await createVolunteer(org);
    const other = await createVolunteer(org);
    expectProblem(await claim(org.organiser, shift.id, {}), 400, 'validation-failed', 'body.volunteerId');
    expectProblem(await claim(org.organiser, shift.id, { note: 'x' }), 400, 'validation-failed');
    expectProblem(await claim(org.viewer, shift.id, { volunteerId: volunteer.id }), 403, 'forbidden');
    expectProblem(await claim(org.viewer, shift.id, {}), 403, 'forbidden');
    expectProblem(await claim(volunteer.auth, shift.id, { volunteerId: other.id }), 403, 'forbidden');
    expectProblem(await suite.http.post(`/v1/shifts/${shift.id}/signups`).send({}), 401, 'unauthenticated');
    expect(await signupCount(shift.id)).toBe(0);
  });

  it('validates the body and the id: unknown fields, long notes, bad ids → 400', async () => {
    const { org, shift } = await scenario();
    const volunteer = await createVolunteer(org);
    expectProblem(await claim(volunteer.auth, shift.id, { colour: 'red' }), 400, 'validation-failed');
    expectProblem(
      await claim(volunteer.auth, shift.id, { note: 'x'.repeat(1001) }),
      400,
      'validation-failed',
      'body.note',
    );
    expectProblem(await claim(volunteer.auth, shift.id, { note: 5 }), 400, 'validation-failed', 'body.note');
    expectProblem(
      await claim(org.organiser, shift.id, { volunteerId: 'someone' }),
      400,
      'validation-failed',
      'body.volunteerId',
    );
    expectProblem(await claim(volunteer.auth, 'not-a-uuid', {}), 400, 'validation-failed');
    expectProblem(
      await suite.http
        .post(`/v1/shifts/${shift.id}/signups`)
        .set(volunteer.auth)
        .set('content-type', 'application/json')
        .send('{'),
      400,
      'validation-failed',
    );
    expect(await signupCount(shift.id)).toBe(0);
    await claimOk(volunteer.auth, shift.id, { note: 'x'.repeat(1000) });
  });

  it('404: unknown shift, unknown or erased volunteer, and anything of another organisation', async () => {
    const { org, shift } = await scenario();
    const volunteer = await createVolunteer(org);
    expectProblem(await claim(volunteer.auth, uuidv7(), {}), 404, 'not-found');
    expectProblem(await claim(org.organiser, uuidv7(), { volunteerId: volunteer.id }), 404, 'not-found');
    expectProblem(await claim(org.organiser, shift.id, { volunteerId: uuidv7() }), 404, 'not-found');

    const other = await scenario();
    const otherVolunteer = await createVolunteer(other.org);
    // B's volunteer and B's organiser on A's shift
    expectProblem(await claim(otherVolunteer.auth, shift.id, {}), 404, 'not-found');
    expectProblem(
      await claim(other.org.organiser, shift.id, { volunteerId: otherVolunteer.id }),
      404,
      'not-found',
    );
    // A's organiser assigning B's volunteer to A's shift
    expectProblem(await claim(org.organiser, shift.id, { volunteerId: otherVolunteer.id }), 404, 'not-found');
    // an erased volunteer is 404 everywhere from then on
    const erased = await createVolunteer(org);
    await suite.http.delete(`/v1/volunteers/${erased.id}`).set(org.organiser).expect(204);
    expectProblem(await claim(org.organiser, shift.id, { volunteerId: erased.id }), 404, 'not-found');
    expectProblem(await claim(erased.auth, shift.id, {}), 401, 'unauthenticated');
    expect(await signupCount(shift.id)).toBe(0);
    expect(await signupCount(other.shift.id)).toBe(0);
  });
});

// ── The rules, each its own 409, in order ────────────────────────────────────────────────────

describe('claim rules (API.md §7), each its own 409', () => {
  it('shift-cancelled: a cancelled shift, or a shift of a cancelled event; organisers too', async () => {
    const { org, event, shift } = await scenario();
    const volunteer = await createVolunteer(org);
    await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.organiser).expect(200);
    expectProblem(await claim(volunteer.auth, shift.id), 409, 'shift-cancelled');
    expectProblem(
      await claim(org.organiser, shift.id, { volunteerId: volunteer.id }),
      409,
      'shift-cancelled',
    );

    const other = await createShift(org.organiser, event.id, at(2, 9));
    await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(200);
    expectProblem(await claim(volunteer.auth, other.id), 409, 'shift-cancelled');
    expectProblem(
      await claim(org.organiser, other.id, { volunteerId: volunteer.id }),
      409,
      'shift-cancelled',
    );
    expect(await signupCount(shift.id)).toBe(0);
    expect(await signupCount(other.id)).toBe(0);
  });

  it('event-not-published: a volunteer on a draft event; an organiser assigning skips the rule', async () => {
    const { org, shift } = await scenario({}, { status: 'draft' });
    const volunteer = await createVolunteer(org);
    expectProblem(await claim(volunteer.auth, shift.id), 409, 'event-not-published');
    expect(await signupCount(shift.id)).toBe(0);
    const assigned = await claimOk(org.organiser, shift.id, { volunteerId: volunteer.id });
    expect(assigned.status).toBe('confirmed');
  });

  it('signup-closed: before signupOpensAt and at/after signupClosesAt (or the start); organisers skip it', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const volunteer = await createVolunteer(org);
    const notYet = await createShift(org.organiser, event.id, {
      ...at(3, 9),
      signupOpensAt: new Date(Date.now() + 24 * HOUR).toISOString(),
    });
    const closed = await createShift(org.organiser, event.id, {
      ...at(3, 13),
      signupClosesAt: new Date(Date.now() - 60_000).toISOString(),
    });
    const started = await createShift(org.organiser, event.id, fromNow(-1, 3)); // closes at its start
    const open = await createShift(org.organiser, event.id, {
      ...at(3, 17),
      signupOpensAt: new Date(Date.now() - 60_000).toISOString(),
      signupClosesAt: new Date(Date.now() + 60 * 60_000).toISOString(),
    });
    for (const shift of [notYet, closed, started]) {
      const response = await claim(volunteer.auth, shift.id);
      expectProblem(response, 409, 'signup-closed');
      expect(await signupCount(shift.id)).toBe(0);
    }
    await claimOk(volunteer.auth, open.id);
    for (const shift of [notYet, closed, started]) {
      await claimOk(org.organiser, shift.id, { volunteerId: volunteer.id });
    }
  });

  it('not-qualified: a restricted role needs the qualification, for organisers too', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const firstAid = await createRole(org.organiser, true);
    const kitchen = await createRole(org.organiser, false);
    const restricted = await createShift(org.organiser, event.id, { ...at(4, 9), roleId: firstAid });
    const unrestricted = await createShift(org.organiser, event.id, { ...at(4, 13), roleId: kitchen });
    const volunteer = await createVolunteer(org);
    expectProblem(await claim(volunteer.auth, restricted.id), 409, 'not-qualified');
    expectProblem(
      await claim(org.organiser, restricted.id, { volunteerId: volunteer.id }),
      409,
      'not-qualified',
    );
    expect(await signupCount(restricted.id)).toBe(0);
    await claimOk(volunteer.auth, unrestricted.id);
    await suite.http
      .put(`/v1/volunteers/${volunteer.id}/qualifications/${firstAid}`)
      .set(org.organiser)
      .expect(204);
    await claimOk(volunteer.auth, restricted.id);
    const assignee = await createVolunteer(org);
    await suite.http
      .put(`/v1/volunteers/${assignee.id}/qualifications/${firstAid}`)
      .set(org.organiser)
      .expect(204);
    await claimOk(org.organiser, restricted.id, { volunteerId: assignee.id });
  });

  it("too-young: minAge against birthDate on the shift's local start date; unknown birth date too; organisers too", async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { timezone: 'Europe/Berlin' });
    // 2035-06-14T22:30Z is 2035-06-15 00:30 in Berlin
    const shift = await createShift(org.organiser, event.id, {
      startsAt: '2035-06-14T22:30:00Z',
      endsAt: '2035-06-15T02:30:00Z',
      minAge: 18,
      capacity: 10,
    });
    const cases: [string | undefined, boolean][] = [
      ['2017-06-15', true], // 18 on the shift's local date
      ['2000-01-01', true],
      ['2017-06-16', false], // one day short
      ['2020-01-01', false],
      [undefined, false], // unknown birth date
    ];
    for (const [birthDate, allowed] of cases) {
      const volunteer = await createVolunteer(org, birthDate ? { birthDate } : {});
      if (allowed) {
        await claimOk(volunteer.auth, shift.id);
      } else {
        expectProblem(await claim(volunteer.auth, shift.id), 409, 'too-young');
        expectProblem(await claim(org.organiser, shift.id, { volunteerId: volunteer.id }), 409, 'too-young');
      }
    }
    await expectCounts(org, shift.id, 2, 0);
  });

  it('already-signed-up: an active (confirmed or waitlisted) signup on this shift; a cancelled one is no obstacle', async () => {
    const { org, shift } = await scenario({ capacity: 1 });
    const confirmedVolunteer = await createVolunteer(org);
    const waitlistedVolunteer = await createVolunteer(org);
    const confirmed = await claimOk(confirmedVolunteer.auth, shift.id);
    const waitlisted = await claimOk(waitlistedVolunteer.auth, shift.id, {}, 'waitlisted');
    const again = await claim(confirmedVolunteer.auth, shift.id);
    expectProblem(again, 409, 'already-signed-up');
    expect(again.body.signupId).toBe(confirmed.id);
    expectProblem(await claim(waitlistedVolunteer.auth, shift.id), 409, 'already-signed-up');
    expectProblem(
      await claim(org.organiser, shift.id, { volunteerId: confirmedVolunteer.id }),
      409,
      'already-signed-up',
    );
    expectProblem(
      await claim(org.organiser, shift.id, { volunteerId: waitlistedVolunteer.id }),
      409,
      'already-signed-up',
    );
    await expectCounts(org, shift.id, 1, 1);
    // after cancelling, the waitlisted volunteer may claim again: a new signup, at the back of the queue
    await cancelOk(waitlistedVolunteer.auth, waitlisted.id);
    const reclaimed = await claimOk(waitlistedVolunteer.auth, shift.id, {}, 'waitlisted');
    expect(reclaimed.id).not.toBe(waitlisted.id);
    expect(reclaimed.waitlistPosition).toBe(1);
    await expectCounts(org, shift.id, 1, 1);
  });

  it('overlapping-signup: a confirmed overlap, with conflictingSignupId; touching intervals and waitlisted overlaps are fine', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const otherEvent = await createEvent(org.organiser);
    const volunteer = await createVolunteer(org);
    const booked = await createShift(org.organiser, event.id, at(5, 10, 2)); // [10, 12)
    const overlapping = await createShift(org.organiser, otherEvent.id, at(5, 11, 2)); // [11, 13)
    const inside = await createShift(org.organiser, event.id, at(5, 10.5, 1)); // [10:30, 11:30)
    const around = await createShift(org.organiser, event.id, at(5, 9, 4)); // [9, 13)
    const touchingAfter = await createShift(org.organiser, event.id, at(5, 12, 2)); // [12, 14)
    const touchingBefore = await createShift(org.organiser, event.id, at(5, 8, 2)); // [8, 10)
    const bookedSignup = await claimOk(volunteer.auth, booked.id);
    for (const shift of [overlapping, inside, around]) {
      const response = await claim(volunteer.auth, shift.id);
      expectProblem(response, 409, 'overlapping-signup');
      expect(response.body.conflictingSignupId).toBe(bookedSignup.id);
      const assigned = await claim(org.organiser, shift.id, { volunteerId: volunteer.id });
      expectProblem(assigned, 409, 'overlapping-signup');
      expect(assigned.body.conflictingSignupId).toBe(bookedSignup.id);
      expect(await signupCount(shift.id)).toBe(0);
    }
    await claimOk(volunteer.auth, touchingAfter.id);
    await claimOk(volunteer.auth, touchingBefore.id);

    // a waitlisted signup does not block an overlapping claim
    const fullShift = await createShift(org.organiser, event.id, { ...at(6, 10, 2), capacity: 1 });
    await claimOk((await createVolunteer(org)).auth, fullShift.id);
    await claimOk(volunteer.auth, fullShift.id, {}, 'waitlisted');
    const overlapsWaitlisted = await createShift(org.organiser, event.id, at(6, 11, 2));
    await claimOk(volunteer.auth, overlapsWaitlisted.id);
    // another volunteer is not blocked by this one's signups
    await claimOk((await createVolunteer(org)).auth, overlapping.id);
    // once the booked signup is cancelled, the overlap is gone
    await cancelOk(volunteer.auth, bookedSignup.id);
    await claimOk(volunteer.auth, inside.id);
    await expectInvariants();
  });

  it('shift-full: no place and no waitlist; nothing is written; organisers too', async () => {
    const { org, shift } = await scenario({ capacity: 2, waitlist: false });
    await claimOk((await createVolunteer(org)).auth, shift.id);
    await claimOk((await createVolunteer(org)).auth, shift.id);
    const late = await createVolunteer(org);
    expectProblem(await claim(late.auth, shift.id), 409, 'shift-full');
    expectProblem(await claim(org.organiser, shift.id, { volunteerId: late.id }), 409, 'shift-full');
    expect(await signupCount(shift.id)).toBe(2);
    const read = await expectCounts(org, shift.id, 2, 0);
    expect(read).toMatchObject({ available: 0, status: 'full' });
  });

  it('the order of the rules: the first one broken is the answer', async () => {
    const org = await setupOrg();
    const draft = await createEvent(org.organiser, { status: 'draft' });
    const published = await createEvent(org.organiser);
    const firstAid = await createRole(org.organiser, true);
    const volunteer = await createVolunteer(org, { birthDate: '2020-01-01' });
    const later = new Date(Date.now() + 24 * HOUR).toISOString();

    // shift-cancelled before event-not-published
    const cancelledOnDraft = await createShift(org.organiser, draft.id, at(7, 8));
    await suite.http.post(`/v1/shifts/${cancelledOnDraft.id}/cancel`).set(org.organiser).expect(200);
    expectProblem(await claim(volunteer.auth, cancelledOnDraft.id), 409, 'shift-cancelled');

    // event-not-published before signup-closed, not-qualified, too-young
    const everythingWrong = await createShift(org.organiser, draft.id, {
      ...at(7, 10),
      signupOpensAt: later,
      roleId: firstAid,
      minAge: 18,
    });
    expectProblem(await claim(volunteer.auth, everythingWrong.id), 409, 'event-not-published');
    // an organiser skips the first two, then meets not-qualified before too-young
    expectProblem(
      await claim(org.organiser, everythingWrong.id, { volunteerId: volunteer.id }),
      409,
      'not-qualified',
    );

    // signup-closed before not-qualified
    const closedRestricted = await createShift(org.organiser, published.id, {
      ...at(7, 12),
      signupOpensAt: later,
      roleId: firstAid,
    });
    expectProblem(await claim(volunteer.auth, closedRestricted.id), 409, 'signup-closed');

    // not-qualified before too-young
    const restrictedAdult = await createShift(org.organiser, published.id, {
      ...at(7, 14),
      roleId: firstAid,
      minAge: 18,
    });
    expectProblem(await claim(volunteer.auth, restrictedAdult.id), 409, 'not-qualified');
    await suite.http
      .put(`/v1/volunteers/${volunteer.id}/qualifications/${firstAid}`)
      .set(org.organiser)
      .expect(204);
    expectProblem(await claim(volunteer.auth, restrictedAdult.id), 409, 'too-young');

    // too-young before already-signed-up: the minimum age raised after the claim
    const raised = await createShift(org.organiser, published.id, at(7, 16));
    await claimOk(volunteer.auth, raised.id);
    await suite.http.patch(`/v1/shifts/${raised.id}`).set(org.organiser).send({ minAge: 18 }).expect(200);
    expectProblem(await claim(volunteer.auth, raised.id), 409, 'too-young');

    // already-signed-up before shift-full: a full shift without a waitlist that the volunteer holds
    const adult = await createVolunteer(org, { birthDate: '1990-01-01' });
    const held = await createShift(org.organiser, published.id, {
      ...at(8, 8),
      capacity: 1,
      waitlist: false,
    });
    await claimOk(adult.auth, held.id);
    expectProblem(await claim(adult.auth, held.id), 409, 'already-signed-up');

    // already-signed-up before overlapping-signup: waitlisted here, confirmed on an overlapping shift
    const queue = await createShift(org.organiser, published.id, { ...at(8, 12, 2), capacity: 1 });
    await claimOk((await createVolunteer(org)).auth, queue.id);
    await claimOk(adult.auth, queue.id, {}, 'waitlisted');
    const clash = await createShift(org.organiser, published.id, at(8, 13, 2));
    await claimOk(adult.auth, clash.id);
    expectProblem(await claim(adult.auth, queue.id), 409, 'already-signed-up');

    // overlapping-signup before shift-full
    const fullAndOverlapping = await createShift(org.organiser, published.id, {
      ...at(8, 13, 1),
      capacity: 1,
      waitlist: false,
    });
    await claimOk((await createVolunteer(org)).auth, fullAndOverlapping.id);
    const response = await claim(adult.auth, fullAndOverlapping.id);
    expectProblem(response, 409, 'overlapping-signup');
    expect(response.body.conflictingSignupId).toEqual(expect.any(String));
    await expectInvariants();
  });
});

// ── The waitlist ─────────────────────────────────────────────────────────────────────────────

describe('the waitlist', () => {
  it('when full with a waitlist: 201 waitlisted with positions 1, 2, 3; counts and status match', async () => {
    const { org, shift } = await scenario({ capacity: 2 });
    const volunteers = await Promise.all([1, 2, 3, 4, 5].map(() => createVolunteer(org)));
    const signups: SignupBody[] = [];
    for (const [index, volunteer] of volunteers.entries()) {
      signups.push(await claimOk(volunteer.auth, shift.id, {}, index < 2 ? 'confirmed' : 'waitlisted'));
    }
    expect(signups.map((signup) => signup.waitlistPosition)).toEqual([null, null, 1, 2, 3]);
    for (const [index, signup] of signups.entries()) {
      expect((await readSignup(org.viewer, signup.id)).waitlistPosition).toBe(signup.waitlistPosition);
      expect((await readSignup(volunteers[index]?.auth ?? {}, signup.id)).waitlistPosition).toBe(
        signup.waitlistPosition,
      );
    }
    const read = await expectCounts(org, shift.id, 2, 3);
    expect(read).toMatchObject({ available: 0, status: 'full', waitlistCount: 3 });
  });

  it('positions renumber when someone ahead leaves; cancelling a waitlisted signup promotes nobody', async () => {
    const { org, shift } = await scenario({ capacity: 1 });
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => createVolunteer(org)));
    if (!a || !b || !c || !d) throw new Error('volunteers');
    const sa = await claimOk(a.auth, shift.id);
    const sb = await claimOk(b.auth, shift.id, {}, 'waitlisted');
    const sc = await claimOk(c.auth, shift.id, {}, 'waitlisted');
    const sd = await claimOk(d.auth, shift.id, {}, 'waitlisted');
    expect([sb, sc, sd].map((s) => s.waitlistPosition)).toEqual([1, 2, 3]);

    const left = await cancelOk(b.auth, sb.id);
    expect(left).toMatchObject({ waitlistPosition: null, lateCancellation: false });
    expect((await readSignup(org.viewer, sc.id)).waitlistPosition).toBe(1);
    expect((await readSignup(d.auth, sd.id)).waitlistPosition).toBe(2);
    expect((await readSignup(org.viewer, sa.id)).status).toBe('confirmed');
    expect((await outboxOf(sc.id)).map((row) => row.type)).toEqual(['signup.waitlisted']);
    await expectCounts(org, shift.id, 1, 2);
  });

  it('cancelling a confirmed signup promotes the earliest waitlisted volunteer in the same request', async () => {
    const { org, shift } = await scenario({ capacity: 2 });
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => createVolunteer(org)));
    if (!a || !b || !c || !d) throw new Error('volunteers');
    const sa = await claimOk(a.auth, shift.id);
    await claimOk(b.auth, shift.id);
    const sc = await claimOk(c.auth, shift.id, {}, 'waitlisted');
    const sd = await claimOk(d.auth, shift.id, {}, 'waitlisted');
    const cancelled = await cancelOk(a.auth, sa.id);
    expect(cancelled.waitlistPosition).toBeNull();

    const promoted = await readSignup(c.auth, sc.id);
    expect(promoted).toMatchObject({ status: 'confirmed', waitlistPosition: null });
    expect(promoted.updatedAt >= sc.updatedAt).toBe(true);
    expect(await readSignup(d.auth, sd.id)).toMatchObject({ status: 'waitlisted', waitlistPosition: 1 });
    await expectCounts(org, shift.id, 2, 1);
    expect((await outboxOf(sc.id)).map((row) => row.type)).toEqual(['signup.waitlisted', 'signup.promoted']);
    expect((await outboxOf(sa.id)).map((row) => row.type)).toEqual(['signup.confirmed', 'signup.cancelled']);
    const eligibility = (await readShift(c.auth, shift.id)).eligibility;
    expect(eligibility).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: sc.id,
      signupStatus: 'confirmed',
    });
    await expectInvariants();
  });

  it('a waitlisted volunteer with an overlapping confirmed shift elsewhere is skipped and stays waitlisted', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, { ...at(9, 10, 3), capacity: 1 });
    const elsewhere = await createShift(org.organiser, event.id, at(9, 12, 2)); // overlaps [12, 13)
    const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(() => createVolunteer(org)));
    if (!a || !b || !c || !d) throw new Error('volunteers');
    const sa = await claimOk(a.auth, shift.id);
    const sb = await claimOk(b.auth, shift.id, {}, 'waitlisted');
    const sc = await claimOk(c.auth, shift.id, {}, 'waitlisted');
    const sd = await claimOk(d.auth, shift.id, {}, 'waitlisted');
    await claimOk(b.auth, elsewhere.id); // a waitlisted signup does not block it

    await cancelOk(org.organiser, sa.id);
    expect(await readSignup(org.viewer, sb.id)).toMatchObject({ status: 'waitlisted', waitlistPosition: 1 });
    expect(await readSignup(org.viewer, sc.id)).toMatchObject({
      status: 'confirmed',
      waitlistPosition: null,
    });
    expect(await readSignup(org.viewer, sd.id)).toMatchObject({ status: 'waitlisted', waitlistPosition: 2 });
    expect((await outboxOf(sb.id)).map((row) => row.type)).toEqual(['signup.waitlisted']);
    expect((await outboxOf(sc.id)).map((row) => row.type)).toEqual(['signup.waitlisted', 'signup.promoted']);
    await expectCounts(org, shift.id, 1, 2);
    await expectInvariants();
  });

  it('a skipped volunteer is promoted as soon as the signup that kept them waiting is cancelled', async () => {
    const { org, shift, waiting, queued, blocking } = await skippedForOverlap(10);
    expect(await readSignup(org.viewer, queued.id)).toMatchObject({
      status: 'waitlisted',
      waitlistPosition: 1,
    });
    await expectCounts(org, shift.id, 0, 1);

    // Their own cancellation elsewhere frees them: promoted in the same request, before anyone
    // arriving later can take the place.
    await cancelOk(waiting.auth, blocking.id);
    expect(await readSignup(org.viewer, queued.id)).toMatchObject({
      status: 'confirmed',
      waitlistPosition: null,
    });
    expect((await outboxOf(queued.id)).map((row) => row.type)).toEqual([
      'signup.waitlisted',
      'signup.promoted',
    ]);
    await expectCounts(org, shift.id, 1, 0);
    await claimOk((await createVolunteer(org)).auth, shift.id, {}, 'waitlisted'); // behind them, not ahead
    await expectInvariants();
  });

  it('cancelling the shift that kept someone waiting elsewhere promotes them there', async () => {
    const { org, shift, elsewhere, queued, blocking } = await skippedForOverlap(11);

    const response = await suite.http.post(`/v1/shifts/${elsewhere.id}/cancel`).set(org.organiser);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect((await readSignup(org.viewer, blocking.id)).status).toBe('cancelled');
    expect(await readSignup(org.viewer, queued.id)).toMatchObject({
      status: 'confirmed',
      waitlistPosition: null,
    });
    await expectCounts(org, shift.id, 1, 0);
    await expectInvariants();
  });

  it('raising capacity via PATCH /v1/shifts/{id} promotes waitlisted volunteers at once, in order', async () => {
    const { org, shift } = await scenario({ capacity: 1 });
    const volunteers = await Promise.all([1, 2, 3, 4].map(() => createVolunteer(org)));
    const signups: SignupBody[] = [];
    for (const [index, volunteer] of volunteers.entries()) {
      signups.push(await claimOk(volunteer.auth, shift.id, {}, index === 0 ? 'confirmed' : 'waitlisted'));
    }
    const patched = await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ capacity: 3 });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({
      capacity: 3,
      confirmedCount: 3,
      waitlistCount: 1,
      available: 0,
      status: 'full',
    });
    const statuses = await Promise.all(signups.map((signup) => readSignup(org.viewer, signup.id)));
    expect(statuses.map((s) => [s.status, s.waitlistPosition])).toEqual([
      ['confirmed', null],
      ['confirmed', null],
      ['confirmed', null],
      ['waitlisted', 1],
    ]);
    for (const signup of signups.slice(1, 3)) {
      expect((await outboxOf(signup.id)).map((row) => row.type)).toContain('signup.promoted');
    }
    expect((await outboxOf(signups[3]?.id ?? '')).map((row) => row.type)).toEqual(['signup.waitlisted']);
    await expectCounts(org, shift.id, 3, 1);
    // more places than waiting volunteers: everyone in, places left
    const wider = await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ capacity: 6 })
      .expect(200);
    expect(wider.body).toMatchObject({ confirmedCount: 4, waitlistCount: 0, available: 2, status: 'open' });
    expectProblem(
      await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ capacity: 3 }),
      409,
      'capacity-below-confirmed',
    );
    await expectCounts(org, shift.id, 4, 0);
  });
});

describe("a shift's times move its signups (API.md §6 PATCH)", () => {
  it('new times that would overlap a confirmed signup are 409 overlapping-signup; otherwise the signups follow', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const morning = await createShift(org.organiser, event.id, at(22, 8, 2)); // [8, 10)
    const noon = await createShift(org.organiser, event.id, at(22, 12, 2)); // [12, 14)
    const volunteer = await createVolunteer(org);
    const waiting = await createVolunteer(org);
    await claimOk(volunteer.auth, morning.id);
    const noonSignup = await claimOk(volunteer.auth, noon.id);
    const clash = await suite.http
      .patch(`/v1/shifts/${noon.id}`)
      .set(org.organiser)
      .send(at(22, 9, 2));
    expectProblem(clash, 409, 'overlapping-signup');
    expect((await readShift(org.viewer, noon.id)).startsAt).toBe(noon.startsAt);
    // touching is fine, and the signup's period follows the shift
    const moved = await suite.http
      .patch(`/v1/shifts/${noon.id}`)
      .set(org.organiser)
      .send(at(22, 10, 2));
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const mine = await list<SignupBody & { shift: ShiftBody }>(volunteer.auth, '/v1/me/signups', {
      from: at(22, 11, 1).startsAt,
      to: at(22, 11, 1).endsAt,
    });
    expect(mine.map((entry) => [entry.id, entry.shift.startsAt])).toEqual([
      [noonSignup.id, at(22, 10).startsAt],
    ]);
    expect(ids(await list(org.viewer, '/v1/signups', { from: at(22, 12, 1).startsAt }))).toEqual([]);
    // a waitlisted signup is not confirmed: it does not stop a move
    const small = await createShift(org.organiser, event.id, { ...at(22, 16, 2), capacity: 1 });
    await claimOk((await createVolunteer(org)).auth, small.id);
    await claimOk(volunteer.auth, small.id, {}, 'waitlisted');
    await claimOk(waiting.auth, small.id, {}, 'waitlisted');
    await suite.http
      .patch(`/v1/shifts/${small.id}`)
      .set(org.organiser)
      .send(at(22, 9, 2))
      .expect(200);
    await expectInvariants();
  });

  it('moving the shift that kept a volunteer waiting elsewhere promotes them there', async () => {
    const { org, shift, elsewhere, queued, blocking } = await skippedForOverlap(13);

    const moved = await suite.http
      .patch(`/v1/shifts/${elsewhere.id}`)
      .set(org.organiser)
      .send(at(13, 14, 2));
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect((await readSignup(org.viewer, blocking.id)).status).toBe('confirmed');
    expect(await readSignup(org.viewer, queued.id)).toMatchObject({
      status: 'confirmed',
      waitlistPosition: null,
    });
    await expectCounts(org, shift.id, 1, 0);
    await expectInvariants();
  });

  it('new times that end an overlap promote the volunteer it kept waiting', async () => {
    const { org, shift, queued } = await skippedForOverlap(12);

    const moved = await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send(at(12, 8, 3));
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body).toMatchObject({ confirmedCount: 1, waitlistCount: 0 });
    expect(await readSignup(org.viewer, queued.id)).toMatchObject({
      status: 'confirmed',
      waitlistPosition: null,
    });
    await expectInvariants();
  });
});

// ── Cancellation ─────────────────────────────────────────────────────────────────────────────

describe('POST /v1/signups/{id}/cancel', () => {
  it('by the owner → 200 cancelled with cancelledAt; the place is freed; twice → 409 invalid-state', async () => {
    const { org, shift } = await scenario({ capacity: 2 });
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(volunteer.auth, shift.id);
    await sleep(5);
    const response = await cancel(volunteer.auth, signup.id).expect(200);
    expect(response.body).toEqual({
      ...signup,
      status: 'cancelled',
      lateCancellation: false,
      cancelledAt: expect.stringMatching(isoTimestamp),
      updatedAt: expect.stringMatching(isoTimestamp),
    });
    expect(response.body.updatedAt > signup.updatedAt).toBe(true);
    expect(await readSignup(volunteer.auth, signup.id)).toEqual(response.body);
    const shiftAfter = await expectCounts(org, shift.id, 0, 0);
    expect(shiftAfter.updatedAt > shift.updatedAt).toBe(true);
    expectProblem(await cancel(volunteer.auth, signup.id), 409, 'invalid-state');
    expectProblem(await cancel(org.organiser, signup.id), 409, 'invalid-state');
    expect((await outboxOf(signup.id)).map((row) => row.type)).toEqual([
      'signup.confirmed',
      'signup.cancelled',
    ]);
  });

  it('lateCancellation: true within 24 h of the start, false otherwise', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const soon = await createShift(org.organiser, event.id, fromNow(10));
    const tomorrowish = await createShift(org.organiser, event.id, fromNow(30));
    const volunteer = await createVolunteer(org);
    const late = await cancelOk(volunteer.auth, (await claimOk(volunteer.auth, soon.id)).id);
    expect(late.lateCancellation).toBe(true);
    const early = await cancelOk(volunteer.auth, (await claimOk(volunteer.auth, tomorrowish.id)).id);
    expect(early.lateCancellation).toBe(false);
    const byOrganiser = await cancelOk(
      org.organiser,
      (await claimOk(org.organiser, soon.id, { volunteerId: volunteer.id })).id,
    );
    expect(byOrganiser.lateCancellation).toBe(true);
    const [stored] = await rows<{ n: number }>(
      sql`select count(*)::int as n from signups where shift_id = ${soon.id} and late_cancellation`,
    );
    expect(stored?.n).toBe(2);
  });

  it('only the owner or an organiser: another volunteer 404, a viewer 403, another organisation 404', async () => {
    const { org, shift } = await scenario();
    const owner = await createVolunteer(org);
    const stranger = await createVolunteer(org);
    const signup = await claimOk(owner.auth, shift.id);
    expectProblem(await cancel(stranger.auth, signup.id), 404, 'not-found');
    expectProblem(await cancel(org.viewer, signup.id), 403, 'forbidden');
    const other = await setupOrg();
    expectProblem(await cancel(other.organiser, signup.id), 404, 'not-found');
    expectProblem(await cancel(owner.auth, uuidv7()), 404, 'not-found');
    expectProblem(await cancel(owner.auth, 'nope'), 400, 'validation-failed');
    expect((await readSignup(org.viewer, signup.id)).status).toBe('confirmed');
    await expectCounts(org, shift.id, 1, 0);
    const byOrganiser = await cancelOk(org.organiser, signup.id);
    expect(byOrganiser.cancelledAt).toMatch(isoTimestamp);
  });

  it('after cancelUntil a volunteer gets 409 cancellation-closed; an organiser still cancels', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const past = new Date(Date.now() - HOUR).toISOString();
    const closed = await createShift(org.organiser, event.id, { ...fromNow(72), cancelUntil: past });
    const stillOpen = await createShift(org.organiser, event.id, {
      ...fromNow(96),
      cancelUntil: new Date(Date.now() + HOUR).toISOString(),
    });
    const volunteer = await createVolunteer(org);
    const locked = await claimOk(volunteer.auth, closed.id);
    const response = await cancel(volunteer.auth, locked.id);
    expectProblem(response, 409, 'cancellation-closed');
    expect((await readSignup(org.viewer, locked.id)).status).toBe('confirmed');
    await expectCounts(org, closed.id, 1, 0);
    const byOrganiser = await cancelOk(org.organiser, locked.id);
    expect(byOrganiser.lateCancellation).toBe(false);
    await expectCounts(org, closed.id, 0, 0);
    await cancelOk(volunteer.auth, (await claimOk(volunteer.auth, stillOpen.id)).id);
  });

  it('after the start a volunteer gets 409 cancellation-closed; an organiser still cancels (late)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, fromNow(-1, 3));
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, started.id, { volunteerId: volunteer.id });
    expectProblem(await cancel(volunteer.auth, signup.id), 409, 'cancellation-closed');
    expect((await readSignup(org.viewer, signup.id)).status).toBe('confirmed');
    const byOrganiser = await cancelOk(org.organiser, signup.id);
    expect(byOrganiser.lateCancellation).toBe(true);
    await expectCounts(org, started.id, 0, 0);
  });
});

// ── Reading one signup ───────────────────────────────────────────────────────────────────────

describe('GET /v1/signups/{id}', () => {
  it('viewer and owner read it; another volunteer, another organisation and unknown ids get 404', async () => {
    const { org, shift } = await scenario();
    const owner = await createVolunteer(org);
    const stranger = await createVolunteer(org);
    const signup = await claimOk(owner.auth, shift.id, { note: 'hi' });
    expect(await readSignup(org.viewer, signup.id)).toEqual(signup);
    expect(await readSignup(owner.auth, signup.id)).toEqual(signup);
    expect(await readSignup(org.organiser, signup.id)).toEqual(signup);
    expectProblem(await suite.http.get(`/v1/signups/${signup.id}`).set(stranger.auth), 404, 'not-found');
    const other = await setupOrg();
    const otherVolunteer = await createVolunteer(other);
    expectProblem(await suite.http.get(`/v1/signups/${signup.id}`).set(other.viewer), 404, 'not-found');
    expectProblem(
      await suite.http.get(`/v1/signups/${signup.id}`).set(otherVolunteer.auth),
      404,
      'not-found',
    );
    expectProblem(await suite.http.get(`/v1/signups/${uuidv7()}`).set(org.viewer), 404, 'not-found');
    expectProblem(await suite.http.get('/v1/signups/nope').set(org.viewer), 400, 'validation-failed');
    expectProblem(await suite.http.get(`/v1/signups/${signup.id}`), 401, 'unauthenticated');
  });
});

describe('ETag and If-Match on a signup (API.md §1 "concurrency")', () => {
  it('GET, PATCH and cancel return an ETag; PATCH honours If-Match, a stale one is 412 and changes nothing', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, fromNow(-1, 3));
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, started.id, { volunteerId: volunteer.id });
    const read = await suite.http.get(`/v1/signups/${signup.id}`).set(org.viewer).expect(200);
    const etag = read.headers.etag as string;
    expect(etag).toMatch(/^(W\/)?"[^"]+"$/);
    const own = await suite.http.get(`/v1/signups/${signup.id}`).set(volunteer.auth).expect(200);
    expect(own.headers.etag).toBe(etag);

    const updated = await suite.http
      .patch(`/v1/signups/${signup.id}`)
      .set(org.organiser)
      .set('if-match', etag)
      .send({ note: 'on time' });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body.note).toBe('on time');
    expect(updated.headers.etag).toMatch(/^(W\/)?"[^"]+"$/);
    expect(updated.headers.etag).not.toBe(etag);
    const reread = await suite.http.get(`/v1/signups/${signup.id}`).set(org.viewer).expect(200);
    expect(reread.headers.etag).toBe(updated.headers.etag);

    const stale = await suite.http
      .patch(`/v1/signups/${signup.id}`)
      .set(org.organiser)
      .set('if-match', etag)
      .send({ status: 'no_show' });
    expectProblem(stale, 412, 'precondition-failed');
    expect(await readSignup(org.viewer, signup.id)).toEqual(updated.body);
    // a PATCH without If-Match is unconditional
    await suite.http.patch(`/v1/signups/${signup.id}`).set(org.organiser).send({ note: null }).expect(200);

    const cancelled = await cancel(org.organiser, signup.id).expect(200);
    expect(cancelled.headers.etag).toMatch(/^(W\/)?"[^"]+"$/);
    const afterCancel = await suite.http.get(`/v1/signups/${signup.id}`).set(org.viewer).expect(200);
    expect(afterCancel.headers.etag).toBe(cancelled.headers.etag);
  });
});

// ── Lists ────────────────────────────────────────────────────────────────────────────────────

describe('signup lists', () => {
  it('GET /v1/shifts/{id}/signups: the roster with contact details, by createdAt then id, filtered, paged', async () => {
    const { org, shift } = await scenario({ capacity: 2 });
    const volunteers = [
      await createVolunteer(org, { phone: '+49 30 1234567' }),
      await createVolunteer(org),
      await createVolunteer(org, { phone: '+49 30 7654321' }),
      await createVolunteer(org),
      await createVolunteer(org),
    ];
    const signups: SignupBody[] = [];
    for (const [index, volunteer] of volunteers.entries()) {
      signups.push(await claimOk(volunteer.auth, shift.id, {}, index < 2 ? 'confirmed' : 'waitlisted'));
    }
    await cancelOk(volunteers[3]?.auth ?? {}, signups[3]?.id ?? '');
    const roster = await list<SignupBody & { volunteer: Record<string, unknown> }>(
      org.viewer,
      `/v1/shifts/${shift.id}/signups`,
    );
    expect(ids(roster)).toEqual(ids(signups));
    for (const [index, entry] of roster.entries()) {
      const volunteer = volunteers[index];
      expect(entry).toEqual({
        ...(await readSignup(org.viewer, entry.id)),
        volunteer: {
          id: volunteer?.id,
          name: volunteer?.name,
          email: volunteer?.email,
          phone: index === 0 ? '+49 30 1234567' : index === 2 ? '+49 30 7654321' : null,
        },
      });
    }
    expect(roster.map((entry) => [entry.status, entry.waitlistPosition])).toEqual([
      ['confirmed', null],
      ['confirmed', null],
      ['waitlisted', 1],
      ['cancelled', null],
      ['waitlisted', 2],
    ]);
    const sortedByCreation = [...roster].sort((a, b) =>
      a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1,
    );
    expect(ids(sortedByCreation)).toEqual(ids(roster));

    const path = `/v1/shifts/${shift.id}/signups`;
    expect(ids(await list(org.viewer, path, { status: 'waitlisted' }))).toEqual([
      signups[2]?.id,
      signups[4]?.id,
    ]);
    expect(ids(await list(org.viewer, path, { status: 'cancelled' }))).toEqual([signups[3]?.id]);
    expect(ids(await list(org.viewer, path, { status: 'attended' }))).toEqual([]);
    expect(ids(await list(org.viewer, path, { updatedSince: roster[3]?.updatedAt ?? '' }))).toEqual([
      signups[3]?.id,
    ]);
    const { seen, pages } = await pageThrough(org.viewer, path);
    expect(seen).toEqual(ids(signups));
    expect(pages).toBe(3);
    const waitlistedPages = await pageThrough(org.viewer, path, { status: 'waitlisted' });
    expect(waitlistedPages.seen).toEqual([signups[2]?.id, signups[4]?.id]);

    expectProblem(await suite.http.get(path).set(volunteers[0]?.auth ?? {}), 403, 'forbidden');
    expectProblem(
      await suite.http.get(path).query({ status: 'maybe' }).set(org.viewer),
      400,
      'validation-failed',
    );
    expectProblem(await suite.http.get(path).query({ limit: 0 }).set(org.viewer), 400, 'validation-failed');
    expectProblem(
      await suite.http.get(path).query({ cursor: 'garbage' }).set(org.viewer),
      400,
      'invalid-cursor',
    );
    expectProblem(await suite.http.get(`/v1/shifts/${uuidv7()}/signups`).set(org.viewer), 404, 'not-found');
    const other = await setupOrg();
    expectProblem(await suite.http.get(path).set(other.viewer), 404, 'not-found');
  });

  it('GET /v1/signups: across shifts, filtered by volunteerId, eventId, status, from/to, updatedSince; paged', async () => {
    const org = await setupOrg();
    const eventA = await createEvent(org.organiser);
    const eventB = await createEvent(org.organiser);
    const day1 = await createShift(org.organiser, eventA.id, { ...at(10, 10, 2), capacity: 1 }); // [10, 12)
    const day2 = await createShift(org.organiser, eventB.id, at(11, 10, 2));
    const [x, y, z] = await Promise.all([1, 2, 3].map(() => createVolunteer(org)));
    if (!x || !y || !z) throw new Error('volunteers');
    const x1 = await claimOk(x.auth, day1.id);
    const y1 = await claimOk(y.auth, day1.id, {}, 'waitlisted');
    const x2 = await claimOk(x.auth, day2.id);
    const z2 = await claimOk(z.auth, day2.id);
    const all = [x1, y1, x2, z2];
    const other = await scenario();
    await claimOk((await createVolunteer(other.org)).auth, other.shift.id);

    expect(ids(await list(org.viewer, '/v1/signups'))).toEqual(ids(all));
    expect((await pageThrough(org.viewer, '/v1/signups')).seen).toEqual(ids(all));
    expect(ids(await list(org.viewer, '/v1/signups', { volunteerId: x.id }))).toEqual([x1.id, x2.id]);
    expect(ids(await list(org.viewer, '/v1/signups', { eventId: eventA.id }))).toEqual([x1.id, y1.id]);
    expect(ids(await list(org.viewer, '/v1/signups', { eventId: eventB.id, volunteerId: z.id }))).toEqual([
      z2.id,
    ]);
    expect(ids(await list(org.viewer, '/v1/signups', { status: 'waitlisted' }))).toEqual([y1.id]);
    expect(ids(await list(org.viewer, '/v1/signups', { volunteerId: uuidv7() }))).toEqual([]);
    // from/to: the shift's interval overlaps [from, to)
    const d1 = at(10, 10, 2);
    const d2 = at(11, 10, 2);
    expect(ids(await list(org.viewer, '/v1/signups', { from: d1.endsAt }))).toEqual([x2.id, z2.id]);
    expect(ids(await list(org.viewer, '/v1/signups', { from: '2033-05-10T11:59:59.999Z' }))).toEqual(
      ids(all),
    );
    expect(ids(await list(org.viewer, '/v1/signups', { to: d2.startsAt }))).toEqual([x1.id, y1.id]);
    expect(ids(await list(org.viewer, '/v1/signups', { from: d1.startsAt, to: d1.endsAt }))).toEqual([
      x1.id,
      y1.id,
    ]);
    expect(ids(await list(org.viewer, '/v1/signups', { from: d1.endsAt, to: d2.startsAt }))).toEqual([]);
    // updatedSince: a cancel and the promotion it causes move updatedAt
    await sleep(20);
    const since = await databaseNow(suite.database);
    await sleep(20);
    expect(await list(org.viewer, '/v1/signups', { updatedSince: since })).toEqual([]);
    await cancelOk(x.auth, x1.id);
    const changed = await list(org.viewer, '/v1/signups', { updatedSince: since });
    expect(ids(changed)).toEqual([x1.id, y1.id]);
    expect(changed.map((signup) => signup.status)).toEqual(['cancelled', 'confirmed']);
    // cancelled rows stay listed, with their status
    expect(ids(await list(org.viewer, '/v1/signups', { status: 'cancelled' }))).toEqual([x1.id]);

    expectProblem(await suite.http.get('/v1/signups').set(x.auth), 403, 'forbidden');
    for (const query of [
      { status: 'gone' },
      { volunteerId: 'x' },
      { eventId: '1' },
      { from: '2033-05-10' },
      { limit: 201 },
    ]) {
      expectProblem(
        await suite.http.get('/v1/signups').query(query).set(org.viewer),
        400,
        'validation-failed',
      );
    }
  });

  it("GET /v1/me/signups: own signups by the shift's start, with the shift and its event; filters; API keys 403", async () => {
    const org = await setupOrg();
    const eventA = await createEvent(org.organiser, { title: 'Harvest' });
    const eventB = await createEvent(org.organiser, { title: 'Soup kitchen' });
    const late = await createShift(org.organiser, eventA.id, at(15, 9));
    const early = await createShift(org.organiser, eventB.id, at(13, 9));
    const middle = await createShift(org.organiser, eventA.id, { ...at(14, 9), capacity: 1 });
    const dropped = await createShift(org.organiser, eventB.id, at(16, 9));
    const me = await createVolunteer(org);
    const someoneElse = await createVolunteer(org);
    await claimOk(someoneElse.auth, middle.id);
    const sLate = await claimOk(me.auth, late.id);
    const sEarly = await claimOk(me.auth, early.id, { note: 'early bird' });
    const sMiddle = await claimOk(me.auth, middle.id, {}, 'waitlisted');
    const sDropped = await claimOk(me.auth, dropped.id);
    await cancelOk(me.auth, sDropped.id);

    const mine = await list<SignupBody & { shift: ShiftBody & { event: { id: string; title: string } } }>(
      me.auth,
      '/v1/me/signups',
    );
    expect(ids(mine)).toEqual([sEarly.id, sMiddle.id, sLate.id, sDropped.id]);
    for (const entry of mine) {
      const { shift, ...signup } = entry;
      expect(signup).toEqual(await readSignup(me.auth, entry.id));
      const viewed = await readShift(org.viewer, entry.shiftId);
      const event = entry.shiftId === early.id || entry.shiftId === dropped.id ? eventB : eventA;
      expect(shift).toEqual({ ...viewed, event: { id: event.id, title: event.title } });
      expect(shift).not.toHaveProperty('eligibility');
    }
    expect(mine[1]).toMatchObject({
      status: 'waitlisted',
      waitlistPosition: 1,
      shift: { confirmedCount: 1, status: 'full' },
    });
    expect((await pageThrough(me.auth, '/v1/me/signups')).seen).toEqual(ids(mine));
    expect(ids(await list(me.auth, '/v1/me/signups', { status: 'cancelled' }))).toEqual([sDropped.id]);
    expect(ids(await list(me.auth, '/v1/me/signups', { status: 'confirmed' }))).toEqual([
      sEarly.id,
      sLate.id,
    ]);
    expect(
      ids(await list(me.auth, '/v1/me/signups', { from: at(14, 0).startsAt, to: at(15, 9).startsAt })),
    ).toEqual([sMiddle.id]);
    expect(ids(await list(me.auth, '/v1/me/signups', { from: at(15, 10).startsAt }))).toEqual([
      sLate.id,
      sDropped.id,
    ]);
    expect(ids(await list(someoneElse.auth, '/v1/me/signups'))).toHaveLength(1);

    expectProblem(await suite.http.get('/v1/me/signups').set(org.viewer), 403, 'forbidden');
    expectProblem(await suite.http.get('/v1/me/signups').set(org.admin), 403, 'forbidden');
    expectProblem(await suite.http.get('/v1/me/signups'), 401, 'unauthenticated');
    expectProblem(
      await suite.http.get('/v1/me/signups').query({ status: 'x' }).set(me.auth),
      400,
      'validation-failed',
    );
    expectProblem(
      await suite.http.get('/v1/me/signups').query({ cursor: 'garbage' }).set(me.auth),
      400,
      'invalid-cursor',
    );
  });
});

// ── Eligibility reflects real signups ────────────────────────────────────────────────────────

describe('eligibility on GET /v1/shifts/{id}', () => {
  it('already-signed-up with the signup after a claim; overlapping-signup next to it; open again after cancel', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, { ...at(20, 9, 3), capacity: 1 });
    const overlapping = await createShift(org.organiser, event.id, at(20, 11, 2));
    const me = await createVolunteer(org);
    const can = { canClaim: true, reason: null, signupId: null, signupStatus: null };
    expect((await readShift(me.auth, shift.id)).eligibility).toEqual(can);
    const signup = await claimOk(me.auth, shift.id);
    expect((await readShift(me.auth, shift.id)).eligibility).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: signup.id,
      signupStatus: 'confirmed',
    });
    expect((await readShift(me.auth, overlapping.id)).eligibility).toEqual({
      canClaim: false,
      reason: 'overlapping-signup',
      signupId: null,
      signupStatus: null,
    });
    const listed = await list<ShiftBody>(me.auth, `/v1/events/${event.id}/shifts`);
    expect(listed.find((item) => item.id === shift.id)?.eligibility?.signupId).toBe(signup.id);
    // another volunteer: waitlisted on the full shift
    const other = await createVolunteer(org);
    const waiting = await claimOk(other.auth, shift.id, {}, 'waitlisted');
    expect((await readShift(other.auth, shift.id)).eligibility).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: waiting.id,
      signupStatus: 'waitlisted',
    });
    // a waitlisted signup does not make the other shift overlap
    expect((await readShift(other.auth, overlapping.id)).eligibility).toEqual(can);
    await cancelOk(me.auth, signup.id);
    expect((await readShift(me.auth, shift.id)).eligibility).toEqual(can);
    expect((await readShift(me.auth, overlapping.id)).eligibility).toEqual(can);
    expect((await readShift(other.auth, shift.id)).eligibility).toMatchObject({ signupStatus: 'confirmed' });
  });
});

// ── Attendance ───────────────────────────────────────────────────────────────────────────────

describe('attendance', () => {
  const checkIn = (auth: Auth, id: string) => suite.http.post(`/v1/signups/${id}/check-in`).set(auth);
  const checkOut = (auth: Auth, id: string) => suite.http.post(`/v1/signups/${id}/check-out`).set(auth);
  const patch = (auth: Auth, id: string, body: Record<string, unknown>) =>
    suite.http.patch(`/v1/signups/${id}`).set(auth).send(body);

  it('quarterHours rounds to the nearest quarter hour', () => {
    expect(quarterHours(0)).toBe(0);
    expect(quarterHours(7 * 60_000)).toBe(0);
    expect(quarterHours(8 * 60_000)).toBe(0.25);
    expect(quarterHours(HOUR + 22 * 60_000)).toBe(1.25);
    expect(quarterHours(HOUR + 23 * 60_000)).toBe(1.5);
    expect(quarterHours(3 * HOUR)).toBe(3);
  });

  it('check-in opens 2 h before the start of a confirmed signup; check-out needs a check-in and a started shift', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const inThreeHours = await createShift(org.organiser, event.id, { ...fromNow(3), capacity: 1 });
    const inOneHour = await createShift(org.organiser, event.id, { ...fromNow(1), capacity: 1 });
    const volunteer = await createVolunteer(org);
    const waiting = await createVolunteer(org);
    const tooEarly = await claimOk((await createVolunteer(org)).auth, inThreeHours.id);
    expectProblem(await checkIn(org.organiser, tooEarly.id), 409, 'invalid-state');
    expect((await readSignup(org.viewer, tooEarly.id)).checkedInAt).toBeNull();

    const signup = await claimOk(org.organiser, inOneHour.id, { volunteerId: volunteer.id });
    const waitlisted = await claimOk(org.organiser, inOneHour.id, { volunteerId: waiting.id }, 'waitlisted');
    expectProblem(await checkOut(org.organiser, signup.id), 409, 'invalid-state'); // not checked in
    expectProblem(await checkIn(org.viewer, signup.id), 403, 'forbidden');
    expectProblem(await checkIn(volunteer.auth, signup.id), 403, 'forbidden');
    expectProblem(await checkIn(org.organiser, waitlisted.id), 409, 'invalid-state');
    const checkedIn = await checkIn(org.organiser, signup.id);
    expect(checkedIn.status, JSON.stringify(checkedIn.body)).toBe(200);
    expect(checkedIn.body).toMatchObject({ id: signup.id, status: 'confirmed', checkedOutAt: null });
    expect(checkedIn.body.checkedInAt).toMatch(isoTimestamp);
    expectProblem(await checkOut(org.organiser, signup.id), 409, 'invalid-state'); // not started
    expectProblem(await checkOut(org.viewer, signup.id), 403, 'forbidden');

    await moveShift(inOneHour.id, '-1 hour', '2 hours');
    const checkedOut = await checkOut(org.organiser, signup.id);
    expect(checkedOut.status, JSON.stringify(checkedOut.body)).toBe(200);
    expect(checkedOut.body).toMatchObject({
      status: 'attended',
      checkedInAt: checkedIn.body.checkedInAt,
      hours: 0, // checked in moments ago, to the nearest quarter hour
    });
    expect(checkedOut.body.checkedOutAt).toMatch(isoTimestamp);
    expect(checkedOut.body.checkedOutAt >= checkedIn.body.checkedInAt).toBe(true);
    expect(Number.isInteger(checkedOut.body.hours * 4)).toBe(true);
    // the attended volunteer keeps the place; the waitlist does not move
    await expectCounts(org, inOneHour.id, 1, 1);
    expectProblem(await checkOut(org.organiser, signup.id), 409, 'invalid-state');
    expectProblem(await checkIn(org.organiser, signup.id), 409, 'invalid-state');
    const cancelled = await cancelOk(org.organiser, waitlisted.id);
    expectProblem(await checkIn(org.organiser, cancelled.id), 409, 'invalid-state');
    const other = await setupOrg();
    expectProblem(await checkIn(other.organiser, tooEarly.id), 404, 'not-found');
  });

  it('PATCH status attended/no_show only once started; hours default to the shift length; hours in quarters, 0–24', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const future = await createShift(org.organiser, event.id, fromNow(5, 3));
    const started = await createShift(org.organiser, event.id, { ...fromNow(-1, 3), capacity: 3 });
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => createVolunteer(org)));
    if (!a || !b || !c) throw new Error('volunteers');
    const notYet = await claimOk(a.auth, future.id);
    expectProblem(await patch(org.organiser, notYet.id, { status: 'attended' }), 409, 'invalid-state');
    expectProblem(await patch(org.organiser, notYet.id, { status: 'no_show' }), 409, 'invalid-state');
    expect((await readSignup(org.viewer, notYet.id)).status).toBe('confirmed');

    const attended = await claimOk(org.organiser, started.id, { volunteerId: a.id });
    const noShow = await claimOk(org.organiser, started.id, { volunteerId: b.id });
    const manual = await claimOk(org.organiser, started.id, { volunteerId: c.id });
    expectProblem(await patch(org.viewer, attended.id, { status: 'attended' }), 403, 'forbidden');
    expectProblem(await patch(a.auth, attended.id, { status: 'attended' }), 403, 'forbidden');

    const marked = await patch(org.organiser, attended.id, { status: 'attended' });
    expect(marked.status, JSON.stringify(marked.body)).toBe(200);
    expect(marked.body).toMatchObject({ id: attended.id, status: 'attended', hours: 3, checkedInAt: null });
    const missing = await patch(org.organiser, noShow.id, { status: 'no_show' });
    expect(missing.status, JSON.stringify(missing.body)).toBe(200);
    expect(missing.body.status).toBe('no_show');

    const withHours = await patch(org.organiser, manual.id, {
      status: 'attended',
      hours: 2.5,
      note: 'left early',
    });
    expect(withHours.status, JSON.stringify(withHours.body)).toBe(200);
    expect(withHours.body).toMatchObject({ status: 'attended', hours: 2.5, note: 'left early' });
    const corrected = await patch(org.organiser, attended.id, { hours: 2.5 });
    expect(corrected.status, JSON.stringify(corrected.body)).toBe(200);
    expect(corrected.body).toMatchObject({ status: 'attended', hours: 2.5 });
    expect(await readSignup(org.viewer, attended.id)).toEqual(corrected.body);
    const zero = await patch(org.organiser, attended.id, { hours: 0 });
    expect(zero.body.hours).toBe(0);
    const full = await patch(org.organiser, attended.id, { hours: 24 });
    expect(full.body.hours).toBe(24);

    for (const hours of [2.3, 25, -0.25, 24.25, '2']) {
      expectProblem(
        await patch(org.organiser, attended.id, { hours }),
        400,
        'validation-failed',
        'body.hours',
      );
    }
    for (const body of [{ status: 'cancelled' }, { status: 'confirmed' }, { colour: 'red' }]) {
      expectProblem(await patch(org.organiser, attended.id, body), 400, 'validation-failed');
    }
    expect((await readSignup(org.viewer, attended.id)).hours).toBe(24);
    // attended and no-show signups keep their places
    await expectCounts(org, started.id, 3, 0);
    const other = await setupOrg();
    expectProblem(await patch(other.organiser, attended.id, { hours: 1 }), 404, 'not-found');
    expectProblem(await patch(org.organiser, uuidv7(), { hours: 1 }), 404, 'not-found');
  });

  it('a waitlisted or cancelled signup cannot be marked attended (409 invalid-state)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, { ...fromNow(-1, 3), capacity: 1 });
    const [a, b] = await Promise.all([1, 2].map(() => createVolunteer(org)));
    if (!a || !b) throw new Error('volunteers');
    const confirmed = await claimOk(org.organiser, started.id, { volunteerId: a.id });
    const waitlisted = await claimOk(org.organiser, started.id, { volunteerId: b.id }, 'waitlisted');
    expectProblem(await patch(org.organiser, waitlisted.id, { status: 'attended' }), 409, 'invalid-state');
    await cancelOk(org.organiser, waitlisted.id);
    expectProblem(await patch(org.organiser, waitlisted.id, { status: 'no_show' }), 409, 'invalid-state');
    expect((await readSignup(org.viewer, waitlisted.id)).status).toBe('cancelled');
    expect((await readSignup(org.viewer, confirmed.id)).status).toBe('confirmed');
    await expectCounts(org, started.id, 1, 0);
  });

  it('marking a signup attended frees its volunteer where they wait at an overlapping time', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, fromNow(-1, 3)); // ends in 2 h
    const next = await createShift(org.organiser, event.id, { ...fromNow(1, 2), capacity: 1 });
    const [holder, volunteer] = await Promise.all([1, 2].map(() => createVolunteer(org)));
    if (!holder || !volunteer) throw new Error('volunteers');
    const held = await claimOk(holder.auth, next.id);
    const queued = await claimOk(volunteer.auth, next.id, {}, 'waitlisted');
    const working = await claimOk(org.organiser, started.id, { volunteerId: volunteer.id });
    await cancelOk(org.organiser, held.id); // skipped: confirmed on the overlapping shift
    expect((await readSignup(org.viewer, queued.id)).status).toBe('waitlisted');

    await patch(org.organiser, working.id, { status: 'attended' }).expect(200);
    expect(await readSignup(org.viewer, queued.id)).toMatchObject({
      status: 'confirmed',
      waitlistPosition: null,
    });
    await expectCounts(org, next.id, 1, 0);
    await expectInvariants();
  });

  it('PATCH with the status it already has keeps hours set by hand and writes no second event', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, fromNow(-1, 3));
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, started.id, { volunteerId: volunteer.id });
    expect((await patch(org.organiser, signup.id, { status: 'attended' }).expect(200)).body.hours).toBe(3);
    expect((await patch(org.organiser, signup.id, { hours: 1.5 }).expect(200)).body.hours).toBe(1.5);
    const resaved = await patch(org.organiser, signup.id, { status: 'attended', note: 'great help' });
    expect(resaved.status, JSON.stringify(resaved.body)).toBe(200);
    expect(resaved.body).toMatchObject({ status: 'attended', hours: 1.5, note: 'great help' });
    const withHours = await patch(org.organiser, signup.id, { status: 'attended', hours: 2 }).expect(200);
    expect(withHours.body.hours).toBe(2);
    const attendedEvents = (await outboxOf(signup.id)).filter((row) => row.type === 'signup.attended');
    expect(attendedEvents).toHaveLength(1);
    // A real change of status still takes its default: a no-show worked no hours.
    expect((await patch(org.organiser, signup.id, { status: 'no_show' }).expect(200)).body.hours).toBe(0);
  });

  it('checks out a checked-in signup already marked attended: the hours become the checked-in time', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, fromNow(-0.5, 3));
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, started.id, { volunteerId: volunteer.id });
    const checkedIn = await checkIn(org.organiser, signup.id).expect(200);
    // Marked attended before the check-out: the shift length (3 h) is the default until then.
    expect((await patch(org.organiser, signup.id, { status: 'attended' }).expect(200)).body.hours).toBe(3);
    const out = await checkOut(org.organiser, signup.id);
    expect(out.status, JSON.stringify(out.body)).toBe(200);
    // Checked in moments ago: the checked-in time, to the nearest quarter hour.
    expect(out.body).toMatchObject({
      status: 'attended',
      hours: 0,
      checkedInAt: checkedIn.body.checkedInAt,
    });
    expect(out.body.checkedOutAt).toMatch(isoTimestamp);
    expectProblem(await checkOut(org.organiser, signup.id), 409, 'invalid-state'); // already out
    // A no-show never checks out, even with a check-in on record.
    const other = await createVolunteer(org);
    const missing = await claimOk(org.organiser, started.id, { volunteerId: other.id });
    await checkIn(org.organiser, missing.id).expect(200);
    await patch(org.organiser, missing.id, { status: 'no_show' }).expect(200);
    expectProblem(await checkOut(org.organiser, missing.id), 409, 'invalid-state');
    await expectCounts(org, started.id, 2, 0);
  });

  it('after check-in and check-out, PATCH attended keeps the checked-in hours', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const started = await createShift(org.organiser, event.id, fromNow(-0.5, 3));
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, started.id, { volunteerId: volunteer.id });
    await checkIn(org.organiser, signup.id).expect(200);
    const out = await checkOut(org.organiser, signup.id).expect(200);
    expect(out.body).toMatchObject({ status: 'attended', hours: 0 });
    const again = await patch(org.organiser, signup.id, { status: 'attended' });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ status: 'attended', hours: 0, checkedOutAt: out.body.checkedOutAt });
  });
});

// ── Outbox ───────────────────────────────────────────────────────────────────────────────────

describe('outbox', () => {
  it('one row per change: confirmed, waitlisted, shift.filled on the last place, cancelled; no personal data', async () => {
    const { org, shift } = await scenario({ capacity: 2 });
    const volunteers = [
      await createVolunteer(org, { phone: '+49 170 5550001', birthDate: '1991-02-03' }),
      await createVolunteer(org, { phone: '+49 170 5550002', birthDate: '1992-03-04' }),
      await createVolunteer(org, { phone: '+49 170 5550003', birthDate: '1993-04-05' }),
    ];
    const first = await claimOk(volunteers[0]?.auth ?? {}, shift.id, { note: 'note-secret-41' });
    expect((await outboxOf(first.id)).map((row) => [row.type, row.resource_type])).toEqual([
      ['signup.confirmed', 'signup'],
    ]);
    const filledRows = async () => (await outboxOf(shift.id)).filter((row) => row.type === 'shift.filled');
    expect(await filledRows()).toHaveLength(0);
    const second = await claimOk(org.organiser, shift.id, { volunteerId: volunteers[1]?.id });
    expect((await outboxOf(second.id)).map((row) => row.type)).toEqual(['signup.confirmed']);
    expect(await filledRows()).toHaveLength(1);
    const third = await claimOk(volunteers[2]?.auth ?? {}, shift.id, {}, 'waitlisted');
    expect((await outboxOf(third.id)).map((row) => row.type)).toEqual(['signup.waitlisted']);
    expect(await filledRows()).toHaveLength(1);
    await cancelOk(volunteers[0]?.auth ?? {}, first.id);
    expect((await outboxOf(first.id)).map((row) => row.type)).toEqual([
      'signup.confirmed',
      'signup.cancelled',
    ]);
    expect((await outboxOf(third.id)).map((row) => row.type)).toEqual([
      'signup.waitlisted',
      'signup.promoted',
    ]);
    for (const signup of [first, second, third]) {
      for (const row of await outboxOf(signup.id)) {
        expect(row.payload).toMatchObject({ signupId: signup.id, shiftId: shift.id });
      }
    }
    // refusals write nothing
    const before = await rows<{ n: number }>(
      sql`select count(*)::int as n from outbox where org_id = ${org.id}`,
    );
    expectProblem(await claim(volunteers[1]?.auth ?? {}, shift.id), 409, 'already-signed-up');
    const after = await rows<{ n: number }>(
      sql`select count(*)::int as n from outbox where org_id = ${org.id}`,
    );
    expect(after).toEqual(before);

    const payloads = await rows<{ text: string }>(
      sql`select payload::text || actor::text as text from outbox where org_id = ${org.id}`,
    );
    expect(payloads.length).toBeGreaterThan(5);
    for (const volunteer of volunteers) {
      for (const secret of [volunteer.name, volunteer.email, volunteer.email.split('@')[0] ?? '']) {
        expect(payloads.filter((row) => row.text.includes(secret))).toEqual([]);
      }
    }
    for (const secret of [
      '5550001',
      '5550002',
      '5550003',
      '1991-02-03',
      '1992-03-04',
      '1993-04-05',
      'note-secret-41',
    ]) {
      expect(payloads.filter((row) => row.text.includes(secret))).toEqual([]);
    }
  });
});

// ── Idempotency ──────────────────────────────────────────────────────────────────────────────

describe('Idempotency-Key on claims', () => {
  it('the same key and body replays the same signup; a different body with the key → 422', async () => {
    const { org, shift } = await scenario({ capacity: 1 });
    const volunteer = await createVolunteer(org);
    const key = `claim-${uuidv7()}`;
    const first = await claim(volunteer.auth, shift.id, { note: 'once' }).set('idempotency-key', key);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const replay = await claim(volunteer.auth, shift.id, { note: 'once' }).set('idempotency-key', key);
    expect(replay.status).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect(replay.headers.location).toBe(first.headers.location);
    const [stored] = await rows<{ n: number }>(
      sql`select count(*)::int as n from signups where shift_id = ${shift.id} and volunteer_id = ${volunteer.id}`,
    );
    expect(stored?.n).toBe(1);
    expect((await outboxOf(first.body.id)).map((row) => row.type)).toEqual(['signup.confirmed']);
    await expectCounts(org, shift.id, 1, 0);

    expectProblem(
      await claim(volunteer.auth, shift.id, { note: 'twice' }).set('idempotency-key', key),
      422,
      'idempotency-key-reused',
    );
    // without the key, the second claim is a new request: already signed up
    expectProblem(await claim(volunteer.auth, shift.id, { note: 'once' }), 409, 'already-signed-up');
    // the replay stays the first answer, even after the signup was cancelled
    await cancelOk(volunteer.auth, first.body.id);
    const later = await claim(volunteer.auth, shift.id, { note: 'once' }).set('idempotency-key', key);
    expect(later.status).toBe(201);
    expect(later.body).toEqual(first.body);
    expect(await signupCount(shift.id)).toBe(1);

    // an organiser's key is the organiser's: replayed for them, a refusal replayed as a refusal
    const assignee = await createVolunteer(org);
    const orgKey = `assign-${uuidv7()}`;
    const assigned = await claim(org.organiser, shift.id, { volunteerId: assignee.id }).set(
      'idempotency-key',
      orgKey,
    );
    expect(assigned.status).toBe(201);
    const assignedAgain = await claim(org.organiser, shift.id, { volunteerId: assignee.id }).set(
      'idempotency-key',
      orgKey,
    );
    expect(assignedAgain.headers['idempotent-replayed']).toBe('true');
    expect(assignedAgain.body).toEqual(assigned.body);
    const full = await scenario({ capacity: 1, waitlist: false });
    await claimOk((await createVolunteer(full.org)).auth, full.shift.id);
    const refusedVolunteer = await createVolunteer(full.org);
    const refusedKey = `refused-${uuidv7()}`;
    const refused = await claim(refusedVolunteer.auth, full.shift.id).set('idempotency-key', refusedKey);
    expectProblem(refused, 409, 'shift-full');
    const refusedAgain = await claim(refusedVolunteer.auth, full.shift.id).set('idempotency-key', refusedKey);
    expectProblem(refusedAgain, 409, 'shift-full');
    expect(refusedAgain.headers['idempotent-replayed']).toBe('true');
    expect(await signupCount(full.shift.id)).toBe(1);
  });

  it('the same key from another volunteer is another request', async () => {
    const { org, shift } = await scenario();
    const [a, b] = await Promise.all([1, 2].map(() => createVolunteer(org)));
    if (!a || !b) throw new Error('volunteers');
    const key = `shared-${uuidv7()}`;
    const first = await claim(a.auth, shift.id).set('idempotency-key', key).expect(201);
    const second = await claim(b.auth, shift.id).set('idempotency-key', key).expect(201);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.body.volunteerId).toBe(b.id);
    await expectCounts(org, shift.id, 2, 0);
  });
});

// ── Invariants ───────────────────────────────────────────────────────────────────────────────

describe('edges found in review', () => {
  it('an attended or no-show signup still holds its place: assigning the volunteer again is already-signed-up', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, {
      ...fromNow(-1, 3),
      capacity: 2,
      signupOpensAt: undefined,
    });
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, shift.id, { volunteerId: volunteer.id });
    await suite.http
      .patch(`/v1/signups/${signup.id}`)
      .set(org.organiser)
      .send({ status: 'no_show' })
      .expect(200);
    expectProblem(
      await claim(org.organiser, shift.id, { volunteerId: volunteer.id }),
      409,
      'already-signed-up',
    );
    expect(await signupCount(shift.id)).toBe(1);
  });

  it('a checked-in signup cannot be cancelled', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, { ...fromNow(1, 3), signupClosesAt: undefined });
    const volunteer = await createVolunteer(org);
    const signup = await claimOk(org.organiser, shift.id, { volunteerId: volunteer.id });
    await suite.http.post(`/v1/signups/${signup.id}/check-in`).set(org.organiser).expect(200);
    expectProblem(await cancel(org.organiser, signup.id), 409, 'invalid-state');
    expect((await readSignup(org.viewer, signup.id)).status).toBe('confirmed');
  });

  it('leaving a waitlist is never a late cancellation', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, {
      ...fromNow(5, 2),
      capacity: 1,
      waitlist: true,
    });
    const first = await createVolunteer(org);
    const second = await createVolunteer(org);
    await claimOk(first.auth, shift.id);
    const waiting = await claimOk(second.auth, shift.id, {}, 'waitlisted');
    expect((await cancelOk(second.auth, waiting.id)).lateCancellation).toBe(false);
  });

  it('the waitlist cannot be turned off while volunteers are on it', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, { ...at(3, 9), capacity: 1, waitlist: true });
    await claimOk((await createVolunteer(org)).auth, shift.id);
    await claimOk((await createVolunteer(org)).auth, shift.id, {}, 'waitlisted');
    expectProblem(
      await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ waitlist: false }),
      409,
      'invalid-state',
    );
    expect((await readShift(org.viewer, shift.id)).waitlist).toBe(true);
  });
});
