import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import {
  type Auth,
  databaseNow,
  type Eligibility,
  expectProblem,
  fixtures,
  ids,
  type ShiftBody,
  sleep,
  useTestApp,
} from './support/fixtures.ts';

const suite = useTestApp();
const {
  setupOrg,
  createEvent,
  createShift,
  createVolunteer,
  volunteerToken,
  createRole,
  insertSignup,
  rows,
  pageThrough,
} = fixtures(suite);

/** `[start, start + hours)` on 2032-05-<day> (UTC), as request fields. */
function at(day: number, startHour: number, hours = 2) {
  const start = Date.UTC(2032, 4, day) + startHour * 3_600_000;
  return {
    startsAt: new Date(start).toISOString(),
    endsAt: new Date(start + hours * 3_600_000).toISOString(),
  };
}

async function countShifts(eventId: string) {
  const [row] = await rows<{ n: number }>(
    sql`select count(*)::int as n from shifts where event_id = ${eventId}`,
  );
  return row?.n ?? -1;
}

async function signupStatuses(orgId: string) {
  const list = await rows<{ id: string; status: string }>(
    sql`select id, status::text from signups where org_id = ${orgId}`,
  );
  return Object.fromEntries(list.map((row) => [row.id, row.status]));
}

const byStart = (a: ShiftBody, b: ShiftBody) =>
  a.startsAt < b.startsAt ? -1 : a.startsAt > b.startsAt ? 1 : a.id < b.id ? -1 : 1;

async function list(auth: Auth, path: string, query: Record<string, string | number> = {}) {
  const response = await suite.http.get(path).query(query).set(auth);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.data as ShiftBody[];
}

// ── Creation ─────────────────────────────────────────────────────────────────────────────────

describe('POST /v1/events/{eventId}/shifts', () => {
  it('creates with the defaults and derived fields; Location and ETag', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts`)
      .set(org.organiser)
      .send({ startsAt: '2032-03-20T09:00:00+01:00', endsAt: '2032-03-20T12:00:00+01:00', capacity: 8 })
      .expect(201);
    expect(response.headers.location).toBe(`/v1/shifts/${response.body.id}`);
    expect(response.headers.etag).toMatch(/^(W\/)?"[^"]+"$/);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      eventId: event.id,
      roleId: null,
      title: null,
      description: null,
      location: null,
      startsAt: '2032-03-20T08:00:00.000Z',
      endsAt: '2032-03-20T11:00:00.000Z',
      capacity: 8,
      confirmedCount: 0,
      waitlistCount: 0,
      available: 8,
      waitlist: true,
      signupOpensAt: null,
      signupClosesAt: '2032-03-20T08:00:00.000Z',
      cancelUntil: null,
      minAge: null,
      status: 'open',
      createdAt: expect.stringMatching(/Z$/),
      updatedAt: expect.stringMatching(/Z$/),
    });
    const [stored] = await rows<{ org_id: string; event_id: string; capacity: number; waitlist: boolean }>(
      sql`select org_id, event_id, capacity, waitlist from shifts where id = ${response.body.id}`,
    );
    expect(stored).toEqual({ org_id: org.id, event_id: event.id, capacity: 8, waitlist: true });
    const read = await suite.http.get(`/v1/shifts/${response.body.id}`).set(org.viewer).expect(200);
    expect(read.body).toEqual(response.body);
    expect(read.headers.etag).toBe(response.headers.etag);
  });

  it('takes every field', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const roleId = await createRole(org.organiser, false);
    const body = {
      title: 'Kitchen',
      description: 'Chop onions',
      roleId,
      startsAt: '2032-03-20T08:00:00.000Z',
      endsAt: '2032-03-20T11:00:00.000Z',
      capacity: 3,
      waitlist: false,
      signupOpensAt: '2026-01-01T00:00:00.000Z',
      signupClosesAt: '2032-03-19T18:00:00.000Z',
      cancelUntil: '2032-03-18T18:00:00.000Z',
      minAge: 16,
      location: { name: 'Back door', address: 'Yard 2' },
    };
    const shift = await createShift(org.organiser, event.id, body);
    expect(shift).toMatchObject({
      ...body,
      available: 3,
      status: 'open',
      confirmedCount: 0,
      waitlistCount: 0,
    });
  });

  it('validates every rule of the contract, with the field in errors[].path, and creates nothing then', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const other = await setupOrg();
    const foreignRole = await createRole(other.organiser, false);
    const base = { startsAt: '2032-03-20T08:00:00Z', endsAt: '2032-03-20T11:00:00Z', capacity: 4 };
    const refused: [Record<string, unknown>, string][] = [
      [{ ...base, endsAt: base.startsAt }, 'body.endsAt'],
      [{ ...base, endsAt: '2032-03-20T07:59:59Z' }, 'body.endsAt'],
      [{ ...base, endsAt: '2032-03-27T08:01:00Z' }, 'body.endsAt'], // 7 days + 1 minute
      [{ ...base, endsAt: '2032-03-27T08:00:00.001Z' }, 'body.endsAt'],
      [{ ...base, capacity: 0 }, 'body.capacity'],
      [{ ...base, capacity: 10001 }, 'body.capacity'],
      [{ ...base, capacity: 1.5 }, 'body.capacity'],
      [{ ...base, capacity: '5' }, 'body.capacity'],
      [{ ...base, capacity: undefined }, 'body.capacity'],
      [
        { ...base, signupOpensAt: '2032-03-10T00:00:00Z', signupClosesAt: '2032-03-10T00:00:00Z' },
        'body.signupOpensAt',
      ],
      [
        { ...base, signupOpensAt: '2032-03-11T00:00:00Z', signupClosesAt: '2032-03-10T00:00:00Z' },
        'body.signupOpensAt',
      ],
      [{ ...base, signupOpensAt: '2032-03-20T08:00:00Z' }, 'body.signupOpensAt'], // default close = startsAt
      [{ ...base, roleId: uuidv7() }, 'body.roleId'],
      [{ ...base, roleId: foreignRole }, 'body.roleId'],
      [{ ...base, roleId: 'kitchen' }, 'body.roleId'],
      [{ ...base, minAge: -1 }, 'body.minAge'],
      [{ ...base, startsAt: '2032-03-20T08:00:00' }, 'body.startsAt'],
      [{ ...base, startsAt: 'tomorrow' }, 'body.startsAt'],
      [{ ...base, waitlist: 'yes' }, 'body.waitlist'],
      [{ ...base, location: { address: 'no name' } }, 'body.location.name'],
      [{ ...base, colour: 'red' }, 'body'],
    ];
    for (const [body, path] of refused) {
      const response = await suite.http.post(`/v1/events/${event.id}/shifts`).set(org.organiser).send(body);
      expectProblem(response, 400, 'validation-failed', path);
    }
    expect(await countShifts(event.id)).toBe(0);

    // the boundaries themselves are allowed
    const sevenDays = await createShift(org.organiser, event.id, { ...base, endsAt: '2032-03-27T08:00:00Z' });
    expect(sevenDays.endsAt).toBe('2032-03-27T08:00:00.000Z');
    await createShift(org.organiser, event.id, { ...base, capacity: 1 });
    await createShift(org.organiser, event.id, { ...base, capacity: 10000 });
    await createShift(org.organiser, event.id, {
      ...base,
      signupOpensAt: '2032-03-10T00:00:00Z',
      signupClosesAt: '2032-03-10T00:00:00.001Z',
    });
    expect(await countShifts(event.id)).toBe(4);
  });

  it('refuses a shift on a cancelled event (409 invalid-state) and on an unknown event (404)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(200);
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts`)
      .set(org.organiser)
      .send({ ...at(1, 8), capacity: 1 });
    expectProblem(response, 409, 'invalid-state');
    expect(await countShifts(event.id)).toBe(0);
    const unknown = await suite.http
      .post(`/v1/events/${uuidv7()}/shifts`)
      .set(org.organiser)
      .send({ ...at(1, 8), capacity: 1 });
    expectProblem(unknown, 404, 'not-found');
    const badId = await suite.http
      .post('/v1/events/not-a-uuid/shifts')
      .set(org.organiser)
      .send({ ...at(1, 8), capacity: 1 });
    expectProblem(badId, 400, 'validation-failed', 'params.eventId');
  });

  it('derives available and status: open, full, closed (outside the signup window), cancelled', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const open = await createShift(org.organiser, event.id, { ...at(2, 8), capacity: 2 });
    expect(open).toMatchObject({ status: 'open', available: 2 });

    await insertSignup(org.id, open.id, await createVolunteer(org.organiser));
    let read = await suite.http.get(`/v1/shifts/${open.id}`).set(org.viewer).expect(200);
    expect(read.body).toMatchObject({ status: 'open', confirmedCount: 1, available: 1 });
    await insertSignup(org.id, open.id, await createVolunteer(org.organiser));
    await insertSignup(org.id, open.id, await createVolunteer(org.organiser), 'waitlisted');
    read = await suite.http.get(`/v1/shifts/${open.id}`).set(org.viewer).expect(200);
    expect(read.body).toMatchObject({ status: 'full', confirmedCount: 2, waitlistCount: 1, available: 0 });

    const notYet = await createShift(org.organiser, event.id, {
      ...at(2, 12),
      signupOpensAt: '2032-01-01T00:00:00Z',
    });
    expect(notYet.status).toBe('closed');
    const closedEarly = await createShift(org.organiser, event.id, {
      ...at(2, 14),
      signupClosesAt: '2026-01-01T00:00:00Z',
    });
    expect(closedEarly.status).toBe('closed');
    const past = await createShift(org.organiser, event.id, {
      startsAt: '2025-01-01T08:00:00Z',
      endsAt: '2025-01-01T10:00:00Z',
    });
    expect(past.status).toBe('closed');
    const openWindow = await createShift(org.organiser, event.id, {
      ...at(2, 16),
      signupOpensAt: '2026-01-01T00:00:00Z',
      signupClosesAt: '2032-05-01T00:00:00Z',
    });
    expect(openWindow.status).toBe('open');

    const cancelled = await suite.http
      .post(`/v1/shifts/${openWindow.id}/cancel`)
      .set(org.organiser)
      .expect(200);
    expect(cancelled.body.status).toBe('cancelled');
  });
});

// ── Lists ────────────────────────────────────────────────────────────────────────────────────

describe('shift lists', () => {
  it("GET /v1/events/{eventId}/shifts: that event's shifts by startsAt then id, paged without gaps", async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const otherEvent = await createEvent(org.organiser);
    const created: ShiftBody[] = [];
    for (const [day, hour] of [
      [3, 14],
      [3, 8],
      [4, 8],
      [3, 8],
      [1, 20],
      [3, 8],
      [2, 9],
    ] as const) {
      created.push(await createShift(org.organiser, event.id, at(day, hour)));
    }
    await createShift(org.organiser, otherEvent.id, at(3, 9));
    const expected = ids([...created].sort(byStart));
    expect(ids(await list(org.viewer, `/v1/events/${event.id}/shifts`))).toEqual(expected);
    const { seen, pages } = await pageThrough(org.viewer, `/v1/events/${event.id}/shifts`);
    expect(seen).toEqual(expected);
    expect(pages).toBe(4);

    const notFound = await suite.http.get(`/v1/events/${uuidv7()}/shifts`).set(org.viewer);
    expectProblem(notFound, 404, 'not-found');
    for (const cursor of ['garbage', Buffer.from('["x",1]').toString('base64url')]) {
      const response = await suite.http
        .get(`/v1/events/${event.id}/shifts`)
        .query({ cursor })
        .set(org.viewer);
      expectProblem(response, 400, 'invalid-cursor');
    }
    for (const limit of ['0', '201', 'many']) {
      const response = await suite.http.get(`/v1/events/${event.id}/shifts`).query({ limit }).set(org.viewer);
      expectProblem(response, 400, 'validation-failed');
    }
    expect(await list(org.viewer, `/v1/events/${event.id}/shifts`, { limit: 1 })).toHaveLength(1);
    expect(await list(org.viewer, `/v1/events/${event.id}/shifts`, { limit: 200 })).toHaveLength(7);
  });

  it('GET /v1/shifts: across events, ordered, paged, filtered by eventId, roleId and available', async () => {
    const org = await setupOrg();
    const eventA = await createEvent(org.organiser);
    const eventB = await createEvent(org.organiser, { status: 'published' });
    const kitchen = await createRole(org.organiser, false);
    const driver = await createRole(org.organiser, false);
    const a1 = await createShift(org.organiser, eventA.id, { ...at(5, 8), roleId: kitchen, capacity: 1 });
    const b1 = await createShift(org.organiser, eventB.id, { ...at(5, 8), roleId: driver, capacity: 1 });
    const a2 = await createShift(org.organiser, eventA.id, { ...at(6, 8), capacity: 2 });
    const b2 = await createShift(org.organiser, eventB.id, { ...at(4, 8), roleId: kitchen, capacity: 3 });
    const b3 = await createShift(org.organiser, eventB.id, { ...at(7, 8), capacity: 1 });
    const all = [a1, b1, a2, b2, b3];
    expect(ids(await list(org.viewer, '/v1/shifts'))).toEqual(ids([...all].sort(byStart)));
    const { seen } = await pageThrough(org.viewer, '/v1/shifts');
    expect(seen).toEqual(ids([...all].sort(byStart)));

    expect(ids(await list(org.viewer, '/v1/shifts', { eventId: eventA.id }))).toEqual([a1.id, a2.id]);
    expect(ids(await list(org.viewer, '/v1/shifts', { eventId: uuidv7() }))).toEqual([]);
    expect(ids(await list(org.viewer, '/v1/shifts', { roleId: kitchen }))).toEqual([b2.id, a1.id]);
    expect(ids(await list(org.viewer, '/v1/shifts', { roleId: driver, eventId: eventA.id }))).toEqual([]);
    expect(ids(await list(org.viewer, `/v1/events/${eventB.id}/shifts`, { roleId: kitchen }))).toEqual([
      b2.id,
    ]);

    // a1 full (no waitlist needed for that), a2 has a waitlisted volunteer but places, b3 cancelled
    await insertSignup(org.id, a1.id, await createVolunteer(org.organiser));
    await insertSignup(org.id, a2.id, await createVolunteer(org.organiser));
    await insertSignup(org.id, a2.id, await createVolunteer(org.organiser), 'waitlisted');
    await suite.http.post(`/v1/shifts/${b3.id}/cancel`).set(org.organiser).expect(200);
    const available = await list(org.viewer, '/v1/shifts', { available: 'true' });
    expect(ids(available)).toEqual([b2.id, b1.id, a2.id]);
    expect(available.every((shift) => shift.available > 0 && shift.status !== 'cancelled')).toBe(true);
    // available=false: the complement (full or cancelled)
    expect(new Set(ids(await list(org.viewer, '/v1/shifts', { available: 'false' })))).toEqual(
      new Set([a1.id, b3.id]),
    );
    expect(ids(await list(org.viewer, `/v1/events/${eventA.id}/shifts`, { available: 'true' }))).toEqual([
      a2.id,
    ]);
    // cancelled shifts stay listed without the filter, with their status
    const everything = await list(org.viewer, '/v1/shifts');
    expect(everything.find((shift) => shift.id === b3.id)?.status).toBe('cancelled');

    for (const query of [{ available: 'yes' }, { roleId: 'kitchen' }, { eventId: '1' }, { colour: 'red' }]) {
      expectProblem(
        await suite.http.get('/v1/shifts').query(query).set(org.viewer),
        400,
        'validation-failed',
      );
    }
    for (const limit of ['0', '201']) {
      expectProblem(
        await suite.http.get('/v1/shifts').query({ limit }).set(org.viewer),
        400,
        'validation-failed',
      );
    }
    expectProblem(
      await suite.http.get('/v1/shifts').query({ cursor: 'garbage' }).set(org.viewer),
      400,
      'invalid-cursor',
    );
  });

  it('from/to select shifts overlapping [from, to), exactly at the boundaries, on both lists', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, {
      startsAt: '2032-06-01T10:00:00Z',
      endsAt: '2032-06-01T12:00:00Z',
    });
    const week = await createShift(org.organiser, event.id, {
      startsAt: '2032-05-25T12:00:00Z',
      endsAt: '2032-06-01T12:00:00Z', // 7 days: ends exactly with `shift`
    });
    for (const path of ['/v1/shifts', `/v1/events/${event.id}/shifts`]) {
      const select = async (query: Record<string, string>) => ids(await list(org.viewer, path, query));
      // ending exactly at `from`: out; ending 1 ms after `from`: in
      expect(await select({ from: '2032-06-01T12:00:00Z' })).toEqual([]);
      expect(await select({ from: '2032-06-01T11:59:59.999Z' })).toEqual([week.id, shift.id]);
      // starting exactly at `to`: out; `to` 1 ms later: in
      expect(await select({ to: '2032-06-01T10:00:00Z' })).toEqual([week.id]);
      expect(await select({ to: '2032-06-01T10:00:00.001Z' })).toEqual([week.id, shift.id]);
      expect(await select({ from: '2032-06-01T09:00:00Z', to: '2032-06-01T10:00:00Z' })).toEqual([week.id]);
      expect(await select({ from: '2032-06-01T12:00:00Z', to: '2032-06-02T00:00:00Z' })).toEqual([]);
      // offsets: 12:00+02:00 = 10:00Z
      expect(await select({ from: '2032-06-01T11:00:00+02:00', to: '2032-06-01T12:00:00+02:00' })).toEqual([
        week.id,
      ]);
      // the 7-day shift is found from its last day
      expect(await select({ from: '2032-06-01T11:00:00Z', to: '2032-06-01T11:30:00Z' })).toEqual([
        week.id,
        shift.id,
      ]);
      expect(await select({ from: '2032-05-25T11:00:00Z', to: '2032-05-25T12:00:00Z' })).toEqual([]);
      expect(await select({ from: '2032-05-25T11:00:00Z', to: '2032-05-25T12:00:00.001Z' })).toEqual([
        week.id,
      ]);
      expectProblem(
        await suite.http.get(path).query({ from: '2032-06-01' }).set(org.viewer),
        400,
        'validation-failed',
      );
    }
  });

  it('from finds a shift lengthened by PATCH, and one created in bulk, from their last hour', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, at(1, 8, 1));
    await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ endsAt: at(7, 8).startsAt })
      .expect(200);
    const query = { from: at(7, 7).startsAt, to: at(7, 8).startsAt };
    expect(ids(await list(org.viewer, '/v1/shifts', query))).toEqual([shift.id]);
    expect(ids(await list(org.viewer, `/v1/events/${event.id}/shifts`, query))).toEqual([shift.id]);
    const bulk = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ shifts: [{ startsAt: at(10, 8).startsAt, endsAt: at(17, 8).startsAt, capacity: 1 }] })
      .expect(201);
    expect(ids(await list(org.viewer, '/v1/shifts', { from: at(17, 7).startsAt }))).toEqual([
      bulk.body.data[0].id,
    ]);
  });

  it("updatedSince: a shift's updatedAt moves when its counts change (signups cancelled by an event cancel)", async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const other = await createEvent(org.organiser, { status: 'published' });
    const withSignups = await createShift(org.organiser, event.id, { ...at(8, 8), capacity: 1 });
    const untouched = await createShift(org.organiser, other.id, at(8, 9));
    await insertSignup(org.id, withSignups.id, await createVolunteer(org.organiser));
    await insertSignup(org.id, withSignups.id, await createVolunteer(org.organiser), 'waitlisted');
    await sleep(20);
    const since = await databaseNow(suite.database);
    await sleep(20);
    expect(await list(org.viewer, '/v1/shifts', { updatedSince: since })).toEqual([]);
    await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(200);
    const changed = await list(org.viewer, '/v1/shifts', { updatedSince: since });
    expect(ids(changed)).toEqual([withSignups.id]);
    expect(changed[0]).toMatchObject({ status: 'cancelled', confirmedCount: 0, waitlistCount: 0 });
    expect(changed[0]?.updatedAt && changed[0].updatedAt >= since).toBe(true);
    expect(ids(await list(org.viewer, '/v1/shifts', { updatedSince: changed[0]?.updatedAt ?? '' }))).toEqual([
      withSignups.id,
    ]);
    const read = await suite.http.get(`/v1/shifts/${untouched.id}`).set(org.viewer).expect(200);
    expect(read.body.updatedAt).toBe(untouched.updatedAt);
    expect(ids(await list(org.viewer, `/v1/events/${event.id}/shifts`, { updatedSince: since }))).toEqual([
      withSignups.id,
    ]);
  });

  it("updatedSince: a claim alone, and its cancellation, move the shift's updatedAt", async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const claimed = await createShift(org.organiser, event.id, { ...at(8, 8), capacity: 5 });
    const quiet = await createShift(org.organiser, event.id, at(8, 9));
    await sleep(20);
    const since = await databaseNow(suite.database);
    await sleep(20);
    expect(await list(org.viewer, '/v1/shifts', { updatedSince: since })).toEqual([]);
    const volunteerId = await createVolunteer(org.organiser);
    const signup = await suite.http
      .post(`/v1/shifts/${claimed.id}/signups`)
      .set(org.organiser)
      .send({ volunteerId })
      .expect(201);
    const changed = await list(org.viewer, '/v1/shifts', { updatedSince: since });
    expect(ids(changed)).toEqual([claimed.id]);
    expect(changed[0]).toMatchObject({ confirmedCount: 1, available: 4 });
    const claimedAt = changed[0]?.updatedAt ?? '';
    expect(claimedAt > claimed.updatedAt).toBe(true);
    expect(
      (await suite.http.get(`/v1/shifts/${claimed.id}`).set(org.viewer).expect(200)).body.updatedAt,
    ).toBe(claimedAt);
    await sleep(20);
    const afterClaim = await databaseNow(suite.database);
    await sleep(20);
    await suite.http.post(`/v1/signups/${signup.body.id}/cancel`).set(org.organiser).expect(200);
    const cancelled = await list(org.viewer, `/v1/events/${event.id}/shifts`, { updatedSince: afterClaim });
    expect(ids(cancelled)).toEqual([claimed.id]);
    expect(cancelled[0]).toMatchObject({ confirmedCount: 0, available: 5 });
    expect((await suite.http.get(`/v1/shifts/${quiet.id}`).set(org.viewer).expect(200)).body.updatedAt).toBe(
      quiet.updatedAt,
    );
  });

  it("volunteers see only published events' shifts; viewers see all", async () => {
    const org = await setupOrg();
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    const draft = await createEvent(org.organiser);
    const published = await createEvent(org.organiser, { status: 'published' });
    const cancelled = await createEvent(org.organiser, { status: 'published' });
    const draftShift = await createShift(org.organiser, draft.id, at(9, 8));
    const publishedShift = await createShift(org.organiser, published.id, at(9, 9));
    const cancelledShift = await createShift(org.organiser, cancelled.id, at(9, 10));
    await suite.http.post(`/v1/events/${cancelled.id}/cancel`).set(org.organiser).expect(200);

    expect(ids(await list(volunteer, '/v1/shifts'))).toEqual([publishedShift.id]);
    expect(ids(await list(volunteer, '/v1/shifts', { eventId: draft.id }))).toEqual([]);
    expect(ids(await list(volunteer, `/v1/events/${published.id}/shifts`))).toEqual([publishedShift.id]);
    for (const path of [
      `/v1/events/${draft.id}/shifts`,
      `/v1/shifts/${draftShift.id}`,
      `/v1/events/${cancelled.id}/shifts`,
      `/v1/shifts/${cancelledShift.id}`,
    ]) {
      expectProblem(await suite.http.get(path).set(volunteer), 404, 'not-found');
    }
    await suite.http.get(`/v1/shifts/${publishedShift.id}`).set(volunteer).expect(200);

    expect(ids(await list(org.viewer, '/v1/shifts'))).toEqual([
      draftShift.id,
      publishedShift.id,
      cancelledShift.id,
    ]);
    expect(ids(await list(org.viewer, `/v1/events/${draft.id}/shifts`))).toEqual([draftShift.id]);
    await suite.http.get(`/v1/shifts/${draftShift.id}`).set(org.viewer).expect(200);

    // publishing makes them visible
    await suite.http
      .patch(`/v1/events/${draft.id}`)
      .set(org.organiser)
      .send({ status: 'published' })
      .expect(200);
    await suite.http.get(`/v1/shifts/${draftShift.id}`).set(volunteer).expect(200);
    expect(ids(await list(volunteer, '/v1/shifts'))).toEqual([draftShift.id, publishedShift.id]);
  });
});

// ── Eligibility ──────────────────────────────────────────────────────────────────────────────

describe('eligibility', () => {
  async function eligibilityOf(auth: Auth, shiftId: string, eventId: string): Promise<Eligibility> {
    const single = await suite.http.get(`/v1/shifts/${shiftId}`).set(auth).expect(200);
    // lists carry the same answer
    const inEvent = await list(auth, `/v1/events/${eventId}/shifts`);
    const across = await list(auth, '/v1/shifts', { eventId });
    expect(inEvent.find((shift) => shift.id === shiftId)?.eligibility).toEqual(single.body.eligibility);
    expect(across.find((shift) => shift.id === shiftId)?.eligibility).toEqual(single.body.eligibility);
    return single.body.eligibility as Eligibility;
  }
  const can = { canClaim: true, reason: null, signupId: null, signupStatus: null };
  const cannot = (reason: string) => ({ canClaim: false, reason, signupId: null, signupStatus: null });

  it('is present for volunteers only: open shift → canClaim true', async () => {
    const org = await setupOrg();
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    const event = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, event.id, at(10, 8));
    expect(shift).not.toHaveProperty('eligibility');
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(can);
    const viewed = await suite.http.get(`/v1/shifts/${shift.id}`).set(org.viewer).expect(200);
    expect(viewed.body).not.toHaveProperty('eligibility');
    const listed = await list(org.viewer, '/v1/shifts');
    expect(listed[0]).not.toHaveProperty('eligibility');
  });

  it('gives the first failing rule in the order of API.md §7', async () => {
    const org = await setupOrg();
    const volunteerId = await createVolunteer(org.organiser, { birthDate: '2000-01-01' });
    const volunteer = await volunteerToken(org.organiser, volunteerId);
    const firstAid = await createRole(org.organiser, true);
    const event = await createEvent(org.organiser, { status: 'published' });
    // not open yet AND restricted AND too old a minimum age: the window comes first
    const shift = await createShift(org.organiser, event.id, {
      ...at(11, 8),
      roleId: firstAid,
      minAge: 60,
      capacity: 1,
      waitlist: false,
      signupOpensAt: '2032-01-01T00:00:00Z',
    });
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('signup-closed'));
    const opened = await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ signupOpensAt: null })
      .expect(200);
    expect(opened.body.status).toBe('open');
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('not-qualified'));
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${firstAid}`)
      .set(org.organiser)
      .expect(204);
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('too-young'));
    await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ minAge: 18 }).expect(200);
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(can);
    // full without a waitlist
    await insertSignup(org.id, shift.id, await createVolunteer(org.organiser));
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('shift-full'));
    // an overlapping confirmed signup comes before shift-full
    const clash = await createShift(org.organiser, event.id, at(11, 9));
    const clashSignup = await insertSignup(org.id, clash.id, volunteerId);
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('overlapping-signup'));
    // the volunteer's own signup on the clashing shift: already-signed-up there
    expect(await eligibilityOf(volunteer, clash.id, event.id)).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: clashSignup,
      signupStatus: 'confirmed',
    });
    // a cancelled shift says so first
    await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.organiser).expect(200);
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('shift-cancelled'));
  });

  it('not-qualified turns into canClaim once the qualification is granted', async () => {
    const org = await setupOrg();
    const volunteerId = await createVolunteer(org.organiser);
    const volunteer = await volunteerToken(org.organiser, volunteerId);
    const restricted = await createRole(org.organiser, true);
    const open = await createRole(org.organiser, false);
    const event = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, event.id, { ...at(12, 8), roleId: restricted });
    const unrestricted = await createShift(org.organiser, event.id, { ...at(12, 12), roleId: open });
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('not-qualified'));
    expect(await eligibilityOf(volunteer, unrestricted.id, event.id)).toEqual(can);
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${restricted}`)
      .set(org.organiser)
      .expect(204);
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(can);
    await suite.http
      .delete(`/v1/volunteers/${volunteerId}/qualifications/${restricted}`)
      .set(org.organiser)
      .expect(204);
    expect(await eligibilityOf(volunteer, shift.id, event.id)).toEqual(cannot('not-qualified'));
  });

  it("too-young judges the age on the shift's local date in the event's time zone", async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published', timezone: 'Europe/Berlin' });
    // 2035-06-14T22:30Z is 2035-06-15 00:30 in Berlin
    const shift = await createShift(org.organiser, event.id, {
      startsAt: '2035-06-14T22:30:00Z',
      endsAt: '2035-06-15T02:30:00Z',
      minAge: 18,
    });
    const cases: [string | undefined, Eligibility][] = [
      ['2017-06-15', can], // turns 18 on the shift's local date
      ['2017-06-14', can],
      ['2017-06-16', cannot('too-young')],
      [undefined, cannot('too-young')], // no birth date known
    ];
    for (const [birthDate, expected] of cases) {
      const volunteerId = await createVolunteer(org.organiser, birthDate ? { birthDate } : {});
      const volunteer = await volunteerToken(org.organiser, volunteerId);
      expect(await eligibilityOf(volunteer, shift.id, event.id), String(birthDate)).toEqual(expected);
    }
  });

  it('already-signed-up carries the signup; waitlisted signups count as active', async () => {
    const org = await setupOrg();
    const volunteerId = await createVolunteer(org.organiser);
    const volunteer = await volunteerToken(org.organiser, volunteerId);
    const event = await createEvent(org.organiser, { status: 'published' });
    const confirmedShift = await createShift(org.organiser, event.id, at(13, 8));
    const waitlistedShift = await createShift(org.organiser, event.id, at(14, 8));
    const cancelledShift = await createShift(org.organiser, event.id, at(15, 8));
    const confirmed = await insertSignup(org.id, confirmedShift.id, volunteerId, 'confirmed');
    const waitlisted = await insertSignup(org.id, waitlistedShift.id, volunteerId, 'waitlisted');
    await insertSignup(org.id, cancelledShift.id, volunteerId, 'cancelled');
    expect(await eligibilityOf(volunteer, confirmedShift.id, event.id)).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: confirmed,
      signupStatus: 'confirmed',
    });
    expect(await eligibilityOf(volunteer, waitlistedShift.id, event.id)).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: waitlisted,
      signupStatus: 'waitlisted',
    });
    // a cancelled signup is not active: the volunteer may claim again
    expect(await eligibilityOf(volunteer, cancelledShift.id, event.id)).toEqual(can);
    // another volunteer sees none of it
    const other = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    expect(await eligibilityOf(other, confirmedShift.id, event.id)).toEqual(can);
  });

  it('already-signed-up precedes overlapping-signup; too-young precedes already-signed-up', async () => {
    const org = await setupOrg();
    const volunteerId = await createVolunteer(org.organiser, { birthDate: '2015-01-01' });
    const volunteer = await volunteerToken(org.organiser, volunteerId);
    const event = await createEvent(org.organiser, { status: 'published' });
    const waitlistedHere = await createShift(org.organiser, event.id, { ...at(20, 8), capacity: 1 });
    const confirmedThere = await createShift(org.organiser, event.id, at(20, 9));
    const waitlisted = await insertSignup(org.id, waitlistedHere.id, volunteerId, 'waitlisted');
    await insertSignup(org.id, confirmedThere.id, volunteerId, 'confirmed');
    expect(await eligibilityOf(volunteer, waitlistedHere.id, event.id)).toEqual({
      canClaim: false,
      reason: 'already-signed-up',
      signupId: waitlisted,
      signupStatus: 'waitlisted',
    });
    await suite.http
      .patch(`/v1/shifts/${waitlistedHere.id}`)
      .set(org.organiser)
      .send({ minAge: 21 })
      .expect(200);
    expect(await eligibilityOf(volunteer, waitlistedHere.id, event.id)).toEqual({
      canClaim: false,
      reason: 'too-young',
      signupId: waitlisted,
      signupStatus: 'waitlisted',
    });
  });

  it('overlapping-signup: a confirmed signup overlapping in time; touching intervals do not overlap', async () => {
    const org = await setupOrg();
    const volunteerId = await createVolunteer(org.organiser);
    const volunteer = await volunteerToken(org.organiser, volunteerId);
    const event = await createEvent(org.organiser, { status: 'published' });
    const otherEvent = await createEvent(org.organiser, { status: 'published' });
    const booked = await createShift(org.organiser, event.id, at(16, 10, 2)); // [10, 12)
    await insertSignup(org.id, booked.id, volunteerId, 'confirmed');
    const overlapping = await createShift(org.organiser, otherEvent.id, at(16, 11, 2)); // [11, 13)
    const inside = await createShift(org.organiser, event.id, at(16, 10.5, 1)); // [10:30, 11:30)
    const touchingAfter = await createShift(org.organiser, event.id, at(16, 12, 2)); // [12, 14)
    const touchingBefore = await createShift(org.organiser, event.id, at(16, 8, 2)); // [8, 10)
    expect(await eligibilityOf(volunteer, overlapping.id, otherEvent.id)).toEqual(
      cannot('overlapping-signup'),
    );
    expect(await eligibilityOf(volunteer, inside.id, event.id)).toEqual(cannot('overlapping-signup'));
    expect(await eligibilityOf(volunteer, touchingAfter.id, event.id)).toEqual(can);
    expect(await eligibilityOf(volunteer, touchingBefore.id, event.id)).toEqual(can);

    // a waitlisted signup does not block an overlapping claim
    const waitlistedOnly = await createShift(org.organiser, event.id, at(17, 10, 2));
    await insertSignup(org.id, waitlistedOnly.id, volunteerId, 'waitlisted');
    const overlapsWaitlisted = await createShift(org.organiser, event.id, at(17, 11, 2));
    expect(await eligibilityOf(volunteer, overlapsWaitlisted.id, event.id)).toEqual(can);
  });

  it('shift-full only without a waitlist; with one, canClaim stays true', async () => {
    const org = await setupOrg();
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    const event = await createEvent(org.organiser, { status: 'published' });
    const noWaitlist = await createShift(org.organiser, event.id, {
      ...at(18, 8),
      capacity: 1,
      waitlist: false,
    });
    const withWaitlist = await createShift(org.organiser, event.id, { ...at(18, 12), capacity: 1 });
    await insertSignup(org.id, noWaitlist.id, await createVolunteer(org.organiser));
    await insertSignup(org.id, withWaitlist.id, await createVolunteer(org.organiser));
    expect(await eligibilityOf(volunteer, noWaitlist.id, event.id)).toEqual(cannot('shift-full'));
    expect(await eligibilityOf(volunteer, withWaitlist.id, event.id)).toEqual(can);
    const read = await suite.http.get(`/v1/shifts/${withWaitlist.id}`).set(volunteer).expect(200);
    expect(read.body.status).toBe('full');
  });

  it('signup-closed before the window opens and after it closes', async () => {
    const org = await setupOrg();
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    const event = await createEvent(org.organiser, { status: 'published' });
    const notYet = await createShift(org.organiser, event.id, {
      ...at(19, 8),
      signupOpensAt: '2032-05-01T00:00:00Z',
    });
    const closed = await createShift(org.organiser, event.id, {
      ...at(19, 12),
      signupClosesAt: '2026-01-01T00:00:00Z',
    });
    expect(await eligibilityOf(volunteer, notYet.id, event.id)).toEqual(cannot('signup-closed'));
    expect(await eligibilityOf(volunteer, closed.id, event.id)).toEqual(cannot('signup-closed'));
  });
});

// ── Updates ──────────────────────────────────────────────────────────────────────────────────

describe('PATCH /v1/shifts/{id}', () => {
  it('honours If-Match: the current ETag updates, a stale one is 412 and changes nothing', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const created = await suite.http
      .post(`/v1/events/${event.id}/shifts`)
      .set(org.organiser)
      .send({ ...at(20, 8), capacity: 3, title: 'Before' })
      .expect(201);
    const etag = created.headers.etag as string;
    const updated = await suite.http
      .patch(`/v1/shifts/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', etag)
      .send({ title: 'After', description: 'More detail', waitlist: false, minAge: 16 })
      .expect(200);
    expect(updated.body).toMatchObject({
      title: 'After',
      description: 'More detail',
      waitlist: false,
      minAge: 16,
    });
    expect(updated.headers.etag).toBeDefined();
    expect(updated.headers.etag).not.toBe(etag);
    const [before] = await rows<{ version: number; title: string }>(
      sql`select version, title from shifts where id = ${created.body.id}`,
    );
    const stale = await suite.http
      .patch(`/v1/shifts/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', etag)
      .send({ title: 'Lost', capacity: 9 });
    expectProblem(stale, 412, 'precondition-failed');
    const [after] = await rows<{ version: number; title: string; capacity: number }>(
      sql`select version, title, capacity from shifts where id = ${created.body.id}`,
    );
    expect(after).toEqual({ ...before, capacity: 3 });
    const read = await suite.http.get(`/v1/shifts/${created.body.id}`).set(org.viewer).expect(200);
    expect(read.headers.etag).toBe(updated.headers.etag);
    await suite.http
      .patch(`/v1/shifts/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', read.headers.etag as string)
      .send({ title: null })
      .expect(200)
      .expect((response) => expect(response.body.title).toBeNull());
  });

  it('raising capacity promotes waitlisted volunteers at once, first come first served', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, event.id, { ...at(21, 10), capacity: 1 });
    const elsewhere = await createShift(org.organiser, event.id, at(21, 11));
    const [v1, v2, v3, v4, v5] = [
      await createVolunteer(org.organiser),
      await createVolunteer(org.organiser),
      await createVolunteer(org.organiser),
      await createVolunteer(org.organiser),
      await createVolunteer(org.organiser),
    ] as [string, string, string, string, string];
    await insertSignup(org.id, shift.id, v1, 'confirmed', '2026-01-01T00:00:00Z');
    // created order differs from id order on purpose
    const s4 = await insertSignup(org.id, shift.id, v4, 'waitlisted', '2026-01-01T00:00:04Z');
    const s2 = await insertSignup(org.id, shift.id, v2, 'waitlisted', '2026-01-01T00:00:02Z');
    const s3 = await insertSignup(org.id, shift.id, v3, 'waitlisted', '2026-01-01T00:00:01Z');
    // the earliest in the queue holds an overlapping confirmed signup: skipped, stays waitlisted
    const s5 = await insertSignup(org.id, shift.id, v5, 'waitlisted', '2026-01-01T00:00:00.5Z');
    await insertSignup(org.id, elsewhere.id, v5, 'confirmed');

    const response = await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ capacity: 3 })
      .expect(200);
    expect(response.body).toMatchObject({
      capacity: 3,
      confirmedCount: 3,
      waitlistCount: 2,
      available: 0,
      status: 'full',
    });
    const statuses = await signupStatuses(org.id);
    expect([statuses[s3], statuses[s2], statuses[s4], statuses[s5]]).toEqual([
      'confirmed',
      'confirmed',
      'waitlisted',
      'waitlisted',
    ]);
    const [counts] = await rows<{ confirmed_count: number; waitlist_count: number }>(
      sql`select confirmed_count, waitlist_count from shifts where id = ${shift.id}`,
    );
    expect(counts).toEqual({ confirmed_count: 3, waitlist_count: 2 });

    await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ capacity: 10 }).expect(200);
    const later = await signupStatuses(org.id);
    expect([later[s4], later[s5]]).toEqual(['confirmed', 'waitlisted']);
    const event2 = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(event2.body).toMatchObject({ capacity: 15, confirmedCount: 5 });
  });

  it('refuses a capacity below confirmedCount with capacity-below-confirmed; equal is fine', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, { ...at(22, 8), capacity: 4 });
    await insertSignup(org.id, shift.id, await createVolunteer(org.organiser));
    await insertSignup(org.id, shift.id, await createVolunteer(org.organiser));
    const refused = await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ capacity: 1 });
    expectProblem(refused, 409, 'capacity-below-confirmed');
    const [stored] = await rows<{ capacity: number }>(
      sql`select capacity from shifts where id = ${shift.id}`,
    );
    expect(stored?.capacity).toBe(4);
    const equal = await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ capacity: 2 })
      .expect(200);
    expect(equal.body).toMatchObject({ capacity: 2, confirmedCount: 2, available: 0, status: 'full' });
    const invalid = await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ capacity: 0 });
    expectProblem(invalid, 400, 'validation-failed', 'body.capacity');
  });

  it('moving a shift into an overlap of a confirmed volunteer is 409 overlapping-signup; nothing changes', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const morning = await createShift(org.organiser, event.id, at(23, 8, 2)); // [8, 10)
    const noon = await createShift(org.organiser, event.id, at(23, 11, 2)); // [11, 13)
    const volunteer = await createVolunteer(org.organiser);
    await insertSignup(org.id, morning.id, volunteer);
    const noonSignup = await insertSignup(org.id, noon.id, volunteer);
    const snapshot = () =>
      rows(sql`select s.id, s.starts_at, s.ends_at, s.version, s.updated_at,
                 (select array_agg(g.period::text order by g.id) from signups g where g.shift_id = s.id) as periods,
                 e.starts_at as event_starts_at, e.ends_at as event_ends_at
               from shifts s join events e on e.org_id = s.org_id and e.id = s.event_id
               where s.org_id = ${org.id} order by s.id`);
    const before = await snapshot();
    const response = await suite.http
      .patch(`/v1/shifts/${noon.id}`)
      .set(org.organiser)
      .send({ startsAt: at(23, 9).startsAt, endsAt: at(23, 11).startsAt });
    expectProblem(response, 409, 'overlapping-signup');
    const [morningSignup] = await rows<{ id: string }>(
      sql`select id from signups where org_id = ${org.id} and shift_id = ${morning.id}`,
    );
    expect(response.body.conflictingSignupId).toBe(morningSignup?.id);
    expect(await snapshot()).toEqual(before);
    expect((await signupStatuses(org.id))[noonSignup]).toBe('confirmed');
    // a waitlisted volunteer does not block a move
    const other = await createVolunteer(org.organiser);
    await insertSignup(org.id, morning.id, other, 'waitlisted');
    await insertSignup(org.id, noon.id, other, 'confirmed');
    // touching is not overlapping
    await suite.http
      .patch(`/v1/shifts/${noon.id}`)
      .set(org.organiser)
      .send({ startsAt: at(23, 10).startsAt, endsAt: at(23, 12).startsAt })
      .expect(200);
  });

  it("moving a shift moves its signups' period, the event's span and a default signupClosesAt", async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const first = await createShift(org.organiser, event.id, at(24, 8, 2));
    const second = await createShift(org.organiser, event.id, at(24, 12, 2));
    const explicitClose = await createShift(org.organiser, event.id, {
      ...at(24, 14, 2),
      signupClosesAt: at(24, 10).startsAt,
    });
    const volunteer = await createVolunteer(org.organiser);
    const confirmed = await insertSignup(org.id, second.id, volunteer);
    const waitlisted = await insertSignup(
      org.id,
      second.id,
      await createVolunteer(org.organiser),
      'waitlisted',
    );
    const cancelled = await insertSignup(
      org.id,
      second.id,
      await createVolunteer(org.organiser),
      'cancelled',
    );
    const eventBefore = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(eventBefore.body).toMatchObject({ startsAt: first.startsAt, endsAt: explicitClose.endsAt });

    const moved = { startsAt: '2032-05-25T18:00:00.000Z', endsAt: '2032-05-25T21:00:00.000Z' };
    const response = await suite.http
      .patch(`/v1/shifts/${second.id}`)
      .set(org.organiser)
      .send(moved)
      .expect(200);
    expect(response.body).toMatchObject({ ...moved, signupClosesAt: moved.startsAt });
    const periods = await rows<{ id: string; same: boolean }>(
      sql`select id, period = tstzrange(${moved.startsAt}::timestamptz, ${moved.endsAt}::timestamptz, '[)') as same
          from signups where shift_id = ${second.id}`,
    );
    expect(Object.fromEntries(periods.map((row) => [row.id, row.same]))).toEqual({
      [confirmed]: true,
      [waitlisted]: true,
      [cancelled]: true,
    });
    const eventAfter = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(eventAfter.body).toMatchObject({
      startsAt: first.startsAt,
      endsAt: moved.endsAt,
      updatedAt: eventBefore.body.updatedAt,
    });
    // moving the first shift later moves the event's start
    await suite.http
      .patch(`/v1/shifts/${first.id}`)
      .set(org.organiser)
      .send({ startsAt: at(24, 9).startsAt })
      .expect(200);
    const eventLater = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(eventLater.body.startsAt).toBe(at(24, 9).startsAt);

    // an explicit signupClosesAt stays; one after the new end is refused
    const keep = await suite.http
      .patch(`/v1/shifts/${explicitClose.id}`)
      .set(org.organiser)
      .send({ startsAt: at(24, 15).startsAt, endsAt: at(24, 17).startsAt })
      .expect(200);
    expect(keep.body.signupClosesAt).toBe(at(24, 10).startsAt);
    const closesAfterEnd = await suite.http
      .patch(`/v1/shifts/${explicitClose.id}`)
      .set(org.organiser)
      .send({ startsAt: at(24, 7).startsAt, endsAt: at(24, 9).startsAt });
    expectProblem(closesAfterEnd, 400, 'validation-failed', 'body.signupClosesAt');
  });

  it('validates the merged times, the role, and refuses to change a cancelled shift', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, at(25, 8, 2));
    const cases: [Record<string, unknown>, string][] = [
      [{ endsAt: at(25, 7).startsAt }, 'body.endsAt'],
      [{ startsAt: at(25, 10).startsAt }, 'body.endsAt'],
      [{ endsAt: '2032-06-01T08:01:00Z' }, 'body.endsAt'], // 7 days + 1 minute
      [{ signupOpensAt: at(25, 8).startsAt }, 'body.signupOpensAt'],
      [{ roleId: uuidv7() }, 'body.roleId'],
      [{ capacity: 10001 }, 'body.capacity'],
      [{ eventId: uuidv7() }, 'body'],
    ];
    for (const [body, path] of cases) {
      const response = await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send(body);
      expectProblem(response, 400, 'validation-failed', path);
    }
    const [stored] = await rows<{ version: number }>(sql`select version from shifts where id = ${shift.id}`);
    expect(stored?.version).toBe(1);
    await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ endsAt: '2032-06-01T08:00:00Z' })
      .expect(200);

    await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.organiser).expect(200);
    const refused = await suite.http.patch(`/v1/shifts/${shift.id}`).set(org.organiser).send({ capacity: 9 });
    expectProblem(refused, 409, 'invalid-state');
    expectProblem(
      await suite.http.patch(`/v1/shifts/${uuidv7()}`).set(org.organiser).send({ capacity: 9 }),
      404,
      'not-found',
    );
  });
});

// ── Cancel and delete ────────────────────────────────────────────────────────────────────────

describe('POST /v1/shifts/{id}/cancel', () => {
  it('cancels the shift and its active signups; again is 409 invalid-state', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, event.id, { ...at(26, 8), capacity: 1 });
    const sibling = await createShift(org.organiser, event.id, { ...at(26, 12), capacity: 2 });
    const confirmed = await insertSignup(org.id, shift.id, await createVolunteer(org.organiser));
    const waitlisted = await insertSignup(
      org.id,
      shift.id,
      await createVolunteer(org.organiser),
      'waitlisted',
    );
    const siblingSignup = await insertSignup(org.id, sibling.id, await createVolunteer(org.organiser));
    const response = await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.organiser).expect(200);
    expect(response.body).toMatchObject({
      id: shift.id,
      status: 'cancelled',
      confirmedCount: 0,
      waitlistCount: 0,
    });
    expect(response.headers.etag).toBeDefined();
    const statuses = await signupStatuses(org.id);
    expect([statuses[confirmed], statuses[waitlisted], statuses[siblingSignup]]).toEqual([
      'cancelled',
      'cancelled',
      'confirmed',
    ]);
    const [stored] = await rows<{ cancelled: boolean; confirmed_count: number; waitlist_count: number }>(
      sql`select cancelled_at is not null as cancelled, confirmed_count, waitlist_count from shifts where id = ${shift.id}`,
    );
    expect(stored).toEqual({ cancelled: true, confirmed_count: 0, waitlist_count: 0 });
    const eventRead = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(eventRead.body).toMatchObject({
      status: 'published',
      shiftCount: 1,
      capacity: 2,
      confirmedCount: 1,
    });

    expectProblem(
      await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.organiser),
      409,
      'invalid-state',
    );
    expectProblem(
      await suite.http.post(`/v1/shifts/${uuidv7()}/cancel`).set(org.organiser),
      404,
      'not-found',
    );
  });
});

describe('DELETE /v1/shifts/{id}', () => {
  it('deletes a shift that never had a signup (204) and refreshes the event span', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, at(27, 8));
    const response = await suite.http.delete(`/v1/shifts/${shift.id}`).set(org.organiser).expect(204);
    expect(response.text).toBe('');
    expect(await countShifts(event.id)).toBe(0);
    expectProblem(await suite.http.get(`/v1/shifts/${shift.id}`).set(org.viewer), 404, 'not-found');
    const eventRead = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(eventRead.body).toMatchObject({ startsAt: null, endsAt: null, shiftCount: 0 });
    expectProblem(await suite.http.delete(`/v1/shifts/${shift.id}`).set(org.organiser), 404, 'not-found');
  });

  it('refuses with shift-has-signups when it has any signup, even a cancelled one', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    for (const status of ['confirmed', 'waitlisted', 'cancelled'] as const) {
      const shift = await createShift(org.organiser, event.id, at(28, 8));
      await insertSignup(org.id, shift.id, await createVolunteer(org.organiser), status);
      expectProblem(
        await suite.http.delete(`/v1/shifts/${shift.id}`).set(org.organiser),
        409,
        'shift-has-signups',
      );
      expect(await rows(sql`select id from shifts where id = ${shift.id}`)).toHaveLength(1);
    }
    // a cancelled shift with cancelled signups still cannot be deleted
    const cancelledShift = await createShift(org.organiser, event.id, at(28, 12));
    await insertSignup(org.id, cancelledShift.id, await createVolunteer(org.organiser));
    await suite.http.post(`/v1/shifts/${cancelledShift.id}/cancel`).set(org.organiser).expect(200);
    expectProblem(
      await suite.http.delete(`/v1/shifts/${cancelledShift.id}`).set(org.organiser),
      409,
      'shift-has-signups',
    );
    expect(await countShifts(event.id)).toBe(4);
  });
});

// ── Bulk ─────────────────────────────────────────────────────────────────────────────────────

describe('POST /v1/events/{eventId}/shifts/bulk', () => {
  it('{ shifts } creates all, returned in start order', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const roleId = await createRole(org.organiser, false);
    const items = [
      { ...at(10, 14), capacity: 2, title: 'Afternoon' },
      { ...at(10, 8), capacity: 3, title: 'Morning', roleId },
      { ...at(9, 8), capacity: 1, title: 'Day before', waitlist: false },
    ];
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ shifts: items })
      .expect(201);
    expect(Object.keys(response.body)).toEqual(['data']);
    const data = response.body.data as ShiftBody[];
    expect(data.map((shift) => shift.title)).toEqual(['Day before', 'Morning', 'Afternoon']);
    expect(data[1]).toMatchObject({ roleId, capacity: 3, available: 3, waitlist: true, eventId: event.id });
    expect(data[0]).toMatchObject({ waitlist: false, signupClosesAt: at(9, 8).startsAt, status: 'open' });
    expect(await countShifts(event.id)).toBe(3);
    const listed = await list(org.viewer, `/v1/events/${event.id}/shifts`);
    expect(ids(listed)).toEqual(ids(data));
    const eventRead = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(eventRead.body).toMatchObject({
      startsAt: at(9, 8).startsAt,
      endsAt: at(10, 16).startsAt,
      shiftCount: 3,
      capacity: 6,
    });
  });

  it('one invalid item refuses the whole request, naming body.shifts.<index>.<field>', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const good = { ...at(11, 8), capacity: 2 };
    const cases: [Record<string, unknown>[], string][] = [
      [[good, good, { ...good, endsAt: at(11, 7).startsAt }], 'body.shifts.2.endsAt'],
      [[good, { ...good, capacity: 0 }, good], 'body.shifts.1.capacity'],
      [[good, { ...good, roleId: uuidv7() }], 'body.shifts.1.roleId'],
      [[good, { ...good, startsAt: 'soon' }], 'body.shifts.1.startsAt'],
      [[{ ...good, extra: 1 }], 'body.shifts.0'],
    ];
    for (const [shifts, path] of cases) {
      const response = await suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(org.organiser)
        .send({ shifts });
      expectProblem(response, 400, 'validation-failed', path);
    }
    for (const body of [{ shifts: [] }, {}, { shifts: 'all' }]) {
      const response = await suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(org.organiser)
        .send(body);
      expectProblem(response, 400, 'validation-failed');
    }
    expect(await countShifts(event.id)).toBe(0);
  });

  it('takes up to 500 items; 501 is 400 and creates nothing', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const items = (n: number) =>
      Array.from({ length: n }, (_, index) => ({
        startsAt: new Date(Date.UTC(2033, 0, 1) + index * 3_600_000).toISOString(),
        endsAt: new Date(Date.UTC(2033, 0, 1) + (index + 1) * 3_600_000).toISOString(),
        capacity: 1,
      }));
    const tooMany = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ shifts: items(501) });
    expectProblem(tooMany, 400, 'validation-failed', 'body.shifts');
    expect(await countShifts(event.id)).toBe(0);
    const created = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ shifts: items(500) })
      .expect(201);
    expect(created.body.data).toHaveLength(500);
    expect(await countShifts(event.id)).toBe(500);
  });

  it('recurrence in Europe/Berlin keeps 09:00 local across the March 2027 change', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { timezone: 'Europe/Berlin' });
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({
        template: { title: 'Saturday sort', capacity: 6 },
        startDate: '2027-03-20',
        startTime: '09:00',
        durationMinutes: 180,
        recurrence: 'FREQ=WEEKLY;BYDAY=SA;COUNT=4',
      })
      .expect(201);
    const data = response.body.data as ShiftBody[];
    expect(data.map((shift) => shift.startsAt)).toEqual([
      '2027-03-20T08:00:00.000Z',
      '2027-03-27T08:00:00.000Z',
      '2027-04-03T07:00:00.000Z',
      '2027-04-10T07:00:00.000Z',
    ]);
    expect(data.map((shift) => shift.endsAt)).toEqual([
      '2027-03-20T11:00:00.000Z',
      '2027-03-27T11:00:00.000Z',
      '2027-04-03T10:00:00.000Z',
      '2027-04-10T10:00:00.000Z',
    ]);
    for (const shift of data)
      expect(shift).toMatchObject({ title: 'Saturday sort', capacity: 6, eventId: event.id });
    const stored = await rows<{ starts_at: string }>(
      sql`select to_char(starts_at at time zone 'Europe/Berlin', 'YYYY-MM-DD HH24:MI') as starts_at
          from shifts where event_id = ${event.id} order by starts_at`,
    );
    expect(stored.map((row) => row.starts_at)).toEqual([
      '2027-03-20 09:00',
      '2027-03-27 09:00',
      '2027-04-03 09:00',
      '2027-04-10 09:00',
    ]);
  });

  it('recurrence in America/New_York keeps 09:00 local across the November 2027 change', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { timezone: 'America/New_York' });
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({
        template: { capacity: 2 },
        startDate: '2027-10-23',
        startTime: '09:00',
        durationMinutes: 60,
        recurrence: 'FREQ=WEEKLY;BYDAY=SA;COUNT=4',
      })
      .expect(201);
    expect((response.body.data as ShiftBody[]).map((shift) => shift.startsAt)).toEqual([
      '2027-10-23T13:00:00.000Z',
      '2027-10-30T13:00:00.000Z',
      '2027-11-06T13:00:00.000Z',
      '2027-11-13T14:00:00.000Z',
    ]);
  });

  it('the first occurrence is startDate at startTime, even when the rule does not match it', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { timezone: 'Europe/Berlin' });
    // 2027-03-19 is a Friday; COUNT counts the start (RFC 5545 §3.3.10)
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({
        template: { capacity: 1 },
        startDate: '2027-03-19',
        startTime: '09:00',
        durationMinutes: 60,
        recurrence: 'FREQ=WEEKLY;BYDAY=SA;COUNT=3',
      })
      .expect(201);
    expect((response.body.data as ShiftBody[]).map((shift) => shift.startsAt)).toEqual([
      '2027-03-19T08:00:00.000Z',
      '2027-03-20T08:00:00.000Z',
      '2027-03-27T08:00:00.000Z',
    ]);
  });

  it('UNTIL in its UTC form bounds the series at that instant', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { timezone: 'Europe/Berlin' });
    const series = (recurrence: string) =>
      suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(org.organiser)
        .send({
          template: { capacity: 1 },
          startDate: '2027-03-20',
          startTime: '09:00',
          durationMinutes: 60,
          recurrence,
        });
    // 2027-04-10 09:00 in Berlin is 07:00Z: an UNTIL at that instant includes it, a second earlier does not
    const inclusive = await series('FREQ=WEEKLY;BYDAY=SA;UNTIL=20270410T070000Z').expect(201);
    expect((inclusive.body.data as ShiftBody[]).map((shift) => shift.startsAt)).toEqual([
      '2027-03-20T08:00:00.000Z',
      '2027-03-27T08:00:00.000Z',
      '2027-04-03T07:00:00.000Z',
      '2027-04-10T07:00:00.000Z',
    ]);
    const exclusive = await series('FREQ=WEEKLY;BYDAY=SA;UNTIL=20270410T065959Z').expect(201);
    expect((exclusive.body.data as ShiftBody[]).map((shift) => shift.startsAt)).toEqual([
      '2027-03-20T08:00:00.000Z',
      '2027-03-27T08:00:00.000Z',
      '2027-04-03T07:00:00.000Z',
    ]);
    const daily = await series('FREQ=DAILY;UNTIL=20270322T080000Z').expect(201);
    expect(daily.body.data).toHaveLength(3);
    expect(await countShifts(event.id)).toBe(10);
  });

  it('places a wall-clock time that occurs twice at its first occurrence, and one that does not exist after the gap', async () => {
    const org = await setupOrg();
    const newYork = await createEvent(org.organiser, { timezone: 'America/New_York' });
    const autumn = await suite.http
      .post(`/v1/events/${newYork.id}/shifts/bulk`)
      .set(org.organiser)
      .send({
        template: { capacity: 1 },
        startDate: '2027-11-07',
        startTime: '01:30',
        durationMinutes: 60,
        recurrence: 'FREQ=DAILY;COUNT=2',
      })
      .expect(201);
    // 01:30 EDT (UTC-4), not 01:30 EST; the next day at 01:30 EST.
    expect(autumn.body.data.map((shift: { startsAt: string }) => shift.startsAt)).toEqual([
      '2027-11-07T05:30:00.000Z',
      '2027-11-08T06:30:00.000Z',
    ]);
    const berlin = await createEvent(org.organiser, { timezone: 'Europe/Berlin' });
    const spring = await suite.http
      .post(`/v1/events/${berlin.id}/shifts/bulk`)
      .set(org.organiser)
      .send({
        template: { capacity: 1 },
        startDate: '2027-03-28',
        startTime: '02:30',
        durationMinutes: 60,
        recurrence: 'FREQ=DAILY;COUNT=2',
      })
      .expect(201);
    // 02:30 does not exist on 28 March in Berlin: 03:30 CEST; then 02:30 CEST.
    expect(spring.body.data.map((shift: { startsAt: string }) => shift.startsAt)).toEqual([
      '2027-03-28T01:30:00.000Z',
      '2027-03-29T00:30:00.000Z',
    ]);
  });

  it('refuses bad recurrences and mixed forms with 400, creating nothing', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { timezone: 'Europe/Berlin' });
    const form = {
      template: { capacity: 1 },
      startDate: '2027-03-20',
      startTime: '09:00',
      durationMinutes: 60,
    };
    const cases: Record<string, unknown>[] = [
      { ...form, recurrence: 'FREQ=WEEKLY;BYDAY=SA' }, // endless
      { ...form, recurrence: 'FREQ=DAILY;COUNT=501' },
      { ...form, recurrence: 'FREQ=DAILY;UNTIL=20290101T000000Z' }, // > 500 occurrences
      { ...form, recurrence: 'DTSTART:20270320T090000Z\nRRULE:FREQ=WEEKLY;COUNT=2' },
      { ...form, recurrence: 'FREQ=WEEKLY;COUNT=2;DTSTART=20270320T090000Z' },
      { ...form, recurrence: 'this is not a rule' },
      { ...form, recurrence: 'COUNT=3' }, // no FREQ
      { ...form, recurrence: '' },
      { ...form, recurrence: 'FREQ=SECONDLY;COUNT=3' }, // finer than minutes
      { ...form, recurrence: 'FREQ=DAILY;UNTIL=20270325' }, // a date UNTIL with a timed start
      { ...form, recurrence: 'FREQ=WEEKLY;COUNT=2', shifts: [{ ...at(1, 8), capacity: 1 }] },
      { ...form, recurrence: 'FREQ=WEEKLY;COUNT=2', startsAt: at(1, 8).startsAt },
      {
        template: form.template,
        startDate: form.startDate,
        durationMinutes: 60,
        recurrence: 'FREQ=DAILY;COUNT=2',
      },
      { ...form, startTime: '25:00', recurrence: 'FREQ=DAILY;COUNT=2' },
      { ...form, startDate: '2027-02-30', recurrence: 'FREQ=DAILY;COUNT=2' },
      { ...form, durationMinutes: 0, recurrence: 'FREQ=DAILY;COUNT=2' },
      { ...form, durationMinutes: 10081, recurrence: 'FREQ=DAILY;COUNT=2' },
      { ...form, template: { capacity: 0 }, recurrence: 'FREQ=DAILY;COUNT=2' },
      { ...form, template: { capacity: 1, startsAt: at(1, 8).startsAt }, recurrence: 'FREQ=DAILY;COUNT=2' },
    ];
    for (const body of cases) {
      const response = await suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(org.organiser)
        .send(body);
      expectProblem(response, 400, 'validation-failed');
    }
    const unknownRole = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ ...form, template: { capacity: 1, roleId: uuidv7() }, recurrence: 'FREQ=DAILY;COUNT=2' });
    expectProblem(unknownRole, 400, 'validation-failed', 'body.template.roleId');
    expect(await countShifts(event.id)).toBe(0);
    // COUNT=500 is the most allowed
    const most = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ ...form, recurrence: 'FREQ=DAILY;COUNT=500' })
      .expect(201);
    expect(most.body.data).toHaveLength(500);
  });

  it('refuses both forms on a cancelled event (409 invalid-state) and on an unknown one (404)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(200);
    const recurring = {
      template: { capacity: 1 },
      startDate: '2027-03-20',
      startTime: '09:00',
      durationMinutes: 60,
      recurrence: 'FREQ=DAILY;COUNT=2',
    };
    for (const body of [{ shifts: [{ ...at(1, 8), capacity: 1 }] }, recurring]) {
      const response = await suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(org.organiser)
        .send(body);
      expectProblem(response, 409, 'invalid-state');
      const unknown = await suite.http
        .post(`/v1/events/${uuidv7()}/shifts/bulk`)
        .set(org.organiser)
        .send(body);
      expectProblem(unknown, 404, 'not-found');
    }
    expect(await countShifts(event.id)).toBe(0);
  });
});

// ── Roles and tenants ────────────────────────────────────────────────────────────────────────

describe('roles on shift routes', () => {
  it('viewers and volunteers read only; organisers and admins write', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, event.id, at(2, 8));
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    const snapshot = () => rows(sql`select * from shifts where org_id = ${org.id} order by id`);
    const before = await snapshot();
    const writes = (auth: Auth) => [
      suite.http
        .post(`/v1/events/${event.id}/shifts`)
        .set(auth)
        .send({ ...at(3, 8), capacity: 1 }),
      suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(auth)
        .send({ shifts: [{ ...at(3, 8), capacity: 1 }] }),
      suite.http.patch(`/v1/shifts/${shift.id}`).set(auth).send({ capacity: 9 }),
      suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(auth),
      suite.http.delete(`/v1/shifts/${shift.id}`).set(auth),
    ];
    for (const auth of [org.viewer, volunteer]) {
      await suite.http.get(`/v1/events/${event.id}/shifts`).set(auth).expect(200);
      await suite.http.get('/v1/shifts').set(auth).expect(200);
      await suite.http.get(`/v1/shifts/${shift.id}`).set(auth).expect(200);
      for (const attempt of writes(auth)) expectProblem(await attempt, 403, 'forbidden');
    }
    for (const attempt of [
      suite.http.get('/v1/shifts'),
      suite.http.get(`/v1/shifts/${shift.id}`),
      suite.http.get(`/v1/events/${event.id}/shifts`),
      ...writes({}),
    ]) {
      expectProblem(await attempt, 401, 'unauthenticated');
    }
    expect(await snapshot()).toEqual(before);

    for (const auth of [org.organiser, org.admin]) {
      const created = await createShift(auth, event.id, at(4, 8));
      await suite.http.patch(`/v1/shifts/${created.id}`).set(auth).send({ capacity: 9 }).expect(200);
      await suite.http.post(`/v1/shifts/${created.id}/cancel`).set(auth).expect(200);
      const other = await createShift(auth, event.id, at(4, 12));
      await suite.http.delete(`/v1/shifts/${other.id}`).set(auth).expect(204);
      await suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(auth)
        .send({ shifts: [{ ...at(5, 8), capacity: 1 }] })
        .expect(201);
    }
  });
});

describe('tenant isolation', () => {
  it("org B gets 404 on every id-route of org A's shifts, and A's rows stay unchanged", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const event = await createEvent(a.organiser, { status: 'published' });
    const shift = await createShift(a.organiser, event.id, { ...at(6, 8), capacity: 1 });
    const empty = await createShift(a.organiser, event.id, at(6, 12));
    await insertSignup(a.id, shift.id, await createVolunteer(a.organiser));
    const bVolunteer = await volunteerToken(b.organiser, await createVolunteer(b.organiser));
    const snapshot = async () => ({
      events: await rows(sql`select * from events where org_id = ${a.id} order by id`),
      shifts: await rows(sql`select * from shifts where org_id = ${a.id} order by id`),
      signups: await rows(sql`select * from signups where org_id = ${a.id} order by id`),
    });
    const before = await snapshot();
    for (const id of [shift.id, empty.id]) {
      for (const attempt of [
        suite.http.get(`/v1/shifts/${id}`).set(b.viewer),
        suite.http.get(`/v1/shifts/${id}`).set(bVolunteer),
        suite.http.patch(`/v1/shifts/${id}`).set(b.organiser).send({ capacity: 9 }),
        suite.http.patch(`/v1/shifts/${id}`).set(b.organiser).send({}),
        suite.http.post(`/v1/shifts/${id}/cancel`).set(b.organiser),
        suite.http.delete(`/v1/shifts/${id}`).set(b.admin),
      ]) {
        expectProblem(await attempt, 404, 'not-found');
      }
    }
    for (const attempt of [
      suite.http.get(`/v1/events/${event.id}/shifts`).set(b.viewer),
      suite.http.get(`/v1/events/${event.id}/shifts`).set(bVolunteer),
      suite.http
        .post(`/v1/events/${event.id}/shifts`)
        .set(b.organiser)
        .send({ ...at(7, 8), capacity: 1 }),
      suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(b.organiser)
        .send({ shifts: [{ ...at(7, 8), capacity: 1 }] }),
      suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(b.organiser)
        .send({
          template: { capacity: 1 },
          startDate: '2027-03-20',
          startTime: '09:00',
          durationMinutes: 60,
          recurrence: 'FREQ=DAILY;COUNT=2',
        }),
    ]) {
      expectProblem(await attempt, 404, 'not-found');
    }
    expect(await list(b.viewer, '/v1/shifts')).toEqual([]);
    expect(await list(b.viewer, '/v1/shifts', { eventId: event.id })).toEqual([]);
    expect(await list(bVolunteer, '/v1/shifts')).toEqual([]);
    // A's role id is unknown to B
    const aRole = await createRole(a.organiser, false);
    const bEvent = await createEvent(b.organiser);
    const foreignRole = await suite.http
      .post(`/v1/events/${bEvent.id}/shifts`)
      .set(b.organiser)
      .send({ ...at(7, 8), capacity: 1, roleId: aRole });
    expectProblem(foreignRole, 400, 'validation-failed', 'body.roleId');
    expect(await list(b.viewer, '/v1/shifts', { roleId: aRole })).toEqual([]);

    expect(await snapshot()).toEqual(before);
    await suite.http.get(`/v1/shifts/${shift.id}`).set(a.viewer).expect(200);
  });
});
