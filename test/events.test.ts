import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import { bearer, uniqueSlug } from './support/app.ts';
import {
  type Auth,
  databaseNow,
  type EventBody,
  fixtures,
  ids,
  sleep,
  useTestApp,
} from './support/fixtures.ts';

const suite = useTestApp();
const { setupOrg, createEvent, createShift, createVolunteer, volunteerToken, insertSignup, rows } =
  fixtures(suite);

async function listAll(auth: Auth, query: Record<string, string | number> = {}) {
  const response = await suite.http.get('/v1/events').query(query).set(auth).expect(200);
  return response.body.data as EventBody[];
}

describe('POST /v1/events', () => {
  it("creates with the organisation's time zone, public and draft; Location and ETag", async () => {
    const slug = uniqueSlug();
    const created = await suite.http
      .post('/v1/organizations')
      .send({ name: 'Tokyo org', slug, timezone: 'Asia/Tokyo', contactEmail: `${slug}@example.org` })
      .expect(201);
    const admin = bearer(created.body.apiKey.token);
    const response = await suite.http
      .post('/v1/events')
      .set(admin)
      .send({ title: 'Beach clean' })
      .expect(201);
    expect(response.headers.location).toBe(`/v1/events/${response.body.id}`);
    expect(response.headers.etag).toMatch(/^(W\/)?"[^"]+"$/);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      title: 'Beach clean',
      description: null,
      timezone: 'Asia/Tokyo',
      location: null,
      visibility: 'public',
      status: 'draft',
      tags: [],
      startsAt: null,
      endsAt: null,
      shiftCount: 0,
      capacity: 0,
      confirmedCount: 0,
      createdAt: expect.stringMatching(/Z$/),
      updatedAt: expect.stringMatching(/Z$/),
    });
    const [stored] = await rows<{ org_id: string; timezone: string; status: string; published_at: unknown }>(
      sql`select org_id, timezone, status::text, published_at from events where id = ${response.body.id}`,
    );
    expect(stored).toEqual({
      org_id: created.body.organization.id,
      timezone: 'Asia/Tokyo',
      status: 'draft',
      published_at: null,
    });
    const read = await suite.http.get(`/v1/events/${response.body.id}`).set(admin).expect(200);
    expect(read.headers.etag).toBe(response.headers.etag);
    expect(read.body).toEqual(response.body);
  });

  it('takes every field, canonicalises the time zone, de-duplicates tags', async () => {
    const org = await setupOrg();
    const body = {
      title: 'Harvest festival',
      description: 'All hands',
      timezone: 'america/new_york',
      location: { name: 'Town square', address: '1 Main St', latitude: 40.7, longitude: -74 },
      visibility: 'unlisted',
      status: 'published',
      tags: ['food', 'weekend', 'food'],
    };
    const response = await suite.http.post('/v1/events').set(org.organiser).send(body).expect(201);
    expect(response.body).toMatchObject({
      ...body,
      timezone: 'America/New_York',
      tags: ['food', 'weekend'],
    });
    const [stored] = await rows<{ published: boolean }>(
      sql`select published_at is not null as published from events where id = ${response.body.id}`,
    );
    expect(stored?.published).toBe(true);
  });

  it('rejects unknown fields, bad time zones and bad values with 400 naming the field', async () => {
    const org = await setupOrg();
    const cases: [Record<string, unknown>, string][] = [
      [{ title: 'x', colour: 'red' }, 'body'],
      [{ title: 'x', timezone: 'Mars/Olympus' }, 'body.timezone'],
      [{ title: 'x', timezone: '+01:00' }, 'body.timezone'],
      [{ title: '' }, 'body.title'],
      [{}, 'body.title'],
      [{ title: 'x', visibility: 'secret' }, 'body.visibility'],
      [{ title: 'x', status: 'cancelled' }, 'body.status'],
      [{ title: 'x', location: { address: 'no name' } }, 'body.location.name'],
      [{ title: 'x', location: { name: 'x', latitude: 91 } }, 'body.location.latitude'],
      [{ title: 'x', tags: 'food' }, 'body.tags'],
    ];
    for (const [body, path] of cases) {
      const response = await suite.http.post('/v1/events').set(org.organiser).send(body).expect(400);
      expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(response.body.code).toBe('validation-failed');
      expect(response.body.errors.map((error: { path: string }) => error.path)).toContain(path);
    }
    const count = await rows<{ n: number }>(
      sql`select count(*)::int as n from events where org_id = ${org.id}`,
    );
    expect(count[0]?.n).toBe(0);
  });
});

describe('event aggregates', () => {
  it('span the shifts and sum the non-cancelled ones; adding a shift leaves updatedAt alone', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    expect(event).toMatchObject({
      startsAt: null,
      endsAt: null,
      shiftCount: 0,
      capacity: 0,
      confirmedCount: 0,
    });
    await sleep(5);
    const late = await createShift(org.organiser, event.id, {
      startsAt: '2031-05-02T14:00:00+02:00',
      endsAt: '2031-05-02T18:00:00+02:00',
      capacity: 4,
    });
    const early = await createShift(org.organiser, event.id, {
      startsAt: '2031-05-01T09:00:00+02:00',
      endsAt: '2031-05-01T12:00:00+02:00',
      capacity: 3,
    });
    const volunteer = await createVolunteer(org.organiser);
    const other = await createVolunteer(org.organiser);
    await insertSignup(org.id, early.id, volunteer);
    await insertSignup(org.id, late.id, volunteer);
    await insertSignup(org.id, late.id, other);
    let read = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(read.body).toMatchObject({
      startsAt: '2031-05-01T07:00:00.000Z',
      endsAt: '2031-05-02T16:00:00.000Z',
      shiftCount: 2,
      capacity: 7,
      confirmedCount: 3,
      updatedAt: event.updatedAt,
    });

    await suite.http.post(`/v1/shifts/${late.id}/cancel`).set(org.organiser).expect(200);
    read = await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    expect(read.body).toMatchObject({
      shiftCount: 1,
      capacity: 3,
      confirmedCount: 1,
      updatedAt: event.updatedAt,
    });
    // the list carries the same aggregates
    const [listed] = await listAll(org.viewer);
    expect(listed).toEqual(read.body);
  });
});

describe('GET /v1/events', () => {
  it('orders by startsAt then id, events without shifts last, and pages with limit=2 without gaps', async () => {
    const org = await setupOrg();
    const noShiftsA = await createEvent(org.organiser, { title: 'No shifts A' });
    const third = await createEvent(org.organiser, { title: 'Third' });
    const first = await createEvent(org.organiser, { title: 'First' });
    const tieA = await createEvent(org.organiser, { title: 'Tie A' });
    const tieB = await createEvent(org.organiser, { title: 'Tie B' });
    const noShiftsB = await createEvent(org.organiser, { title: 'No shifts B' });
    const noShiftsC = await createEvent(org.organiser, { title: 'No shifts C' });
    const times = (day: number) => ({
      startsAt: `2031-06-${String(day).padStart(2, '0')}T08:00:00Z`,
      endsAt: `2031-06-${String(day).padStart(2, '0')}T10:00:00Z`,
    });
    await createShift(org.organiser, third.id, times(20));
    await createShift(org.organiser, first.id, times(10));
    await createShift(org.organiser, first.id, times(25)); // the span starts at its first shift
    await createShift(org.organiser, tieA.id, times(15));
    await createShift(org.organiser, tieB.id, times(15));
    const ties = [tieA.id, tieB.id].sort();
    const noShifts = [noShiftsA.id, noShiftsB.id, noShiftsC.id].sort();
    const expected = [first.id, ...ties, third.id, ...noShifts];

    expect(ids(await listAll(org.viewer))).toEqual(expected);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: Record<string, string | number> = { limit: 2, ...(cursor ? { cursor } : {}) };
      const response = await suite.http.get('/v1/events').query(query).set(org.viewer).expect(200);
      expect(response.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...ids(response.body.data));
      cursor = response.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(expected);
  });

  it('filters by status, q (case-insensitive title), tag and updatedSince', async () => {
    const org = await setupOrg();
    const draft = await createEvent(org.organiser, { title: 'Saturday FOOD sort', tags: ['food'] });
    const published = await createEvent(org.organiser, {
      title: 'Park cleanup',
      status: 'published',
      tags: ['outdoor', 'weekend'],
    });
    const percent = await createEvent(org.organiser, {
      title: '50% off the bake sale',
      tags: ['food', 'sale'],
    });
    const cancelled = await createEvent(org.organiser, { title: 'Food drive', status: 'published' });
    await suite.http.post(`/v1/events/${cancelled.id}/cancel`).set(org.organiser).expect(200);

    expect(ids(await listAll(org.viewer, { status: 'draft' })).sort()).toEqual([draft.id, percent.id].sort());
    expect(ids(await listAll(org.viewer, { status: 'published' }))).toEqual([published.id]);
    expect(ids(await listAll(org.viewer, { status: 'cancelled' }))).toEqual([cancelled.id]);

    expect(ids(await listAll(org.viewer, { q: 'food' })).sort()).toEqual([draft.id, cancelled.id].sort());
    expect(ids(await listAll(org.viewer, { q: 'FoOd S' }))).toEqual([draft.id]);
    expect(ids(await listAll(org.viewer, { q: '50%' }))).toEqual([percent.id]);
    expect(ids(await listAll(org.viewer, { q: '5_%' }))).toEqual([]);
    expect(ids(await listAll(org.viewer, { q: 'nothing like it' }))).toEqual([]);

    expect(ids(await listAll(org.viewer, { tag: 'food' })).sort()).toEqual([draft.id, percent.id].sort());
    expect(ids(await listAll(org.viewer, { tag: 'weekend' }))).toEqual([published.id]);
    expect(ids(await listAll(org.viewer, { tag: 'foo' }))).toEqual([]);
    expect(ids(await listAll(org.viewer, { tag: 'food', q: 'bake' }))).toEqual([percent.id]);

    await sleep(20);
    const since = new Date(await databaseNow(suite.database));
    await sleep(20);
    expect(await listAll(org.viewer, { updatedSince: since.toISOString() })).toEqual([]);
    const patched = await suite.http
      .patch(`/v1/events/${published.id}`)
      .set(org.organiser)
      .send({ title: 'Park cleanup (moved)' })
      .expect(200);
    expect(new Date(patched.body.updatedAt).getTime()).toBeGreaterThan(since.getTime());
    expect(ids(await listAll(org.viewer, { updatedSince: since.toISOString() }))).toEqual([published.id]);
    // exactly its updatedAt is included (≥)
    expect(ids(await listAll(org.viewer, { updatedSince: patched.body.updatedAt }))).toEqual([published.id]);
    // adding a shift does not move the event's updatedAt, so a sync does not see it as changed
    await createShift(org.organiser, draft.id, {
      startsAt: '2031-01-01T10:00:00Z',
      endsAt: '2031-01-01T12:00:00Z',
    });
    expect(ids(await listAll(org.viewer, { updatedSince: since.toISOString() }))).toEqual([published.id]);
  });

  it('from/to select events with a shift overlapping [from, to), exactly at the boundaries', async () => {
    const org = await setupOrg();
    // shift [10:00, 12:00)
    const morning = await createEvent(org.organiser, { title: 'Morning' });
    await createShift(org.organiser, morning.id, {
      startsAt: '2031-07-01T10:00:00Z',
      endsAt: '2031-07-01T12:00:00Z',
    });
    // shifts [08:00, 09:00) and [15:00, 16:00): the span covers 10–14 but no shift does
    const gap = await createEvent(org.organiser, { title: 'Gap' });
    await createShift(org.organiser, gap.id, {
      startsAt: '2031-07-01T08:00:00Z',
      endsAt: '2031-07-01T09:00:00Z',
    });
    await createShift(org.organiser, gap.id, {
      startsAt: '2031-07-01T15:00:00Z',
      endsAt: '2031-07-01T16:00:00Z',
    });
    await createEvent(org.organiser, { title: 'No shifts' });

    const select = async (from?: string, to?: string) =>
      ids(await listAll(org.viewer, { ...(from ? { from } : {}), ...(to ? { to } : {}) }));

    // a shift ending exactly at `from` is out; one ending 1 ms after it is in
    expect(await select('2031-07-01T12:00:00Z', '2031-07-01T13:00:00Z')).toEqual([]);
    expect(await select('2031-07-01T11:59:59.999Z', '2031-07-01T13:00:00Z')).toEqual([morning.id]);
    // a shift starting exactly at `to` is out; `to` 1 ms later takes it in
    expect(await select('2031-07-01T09:00:00Z', '2031-07-01T10:00:00Z')).toEqual([]);
    expect(await select('2031-07-01T09:00:00Z', '2031-07-01T10:00:00.001Z')).toEqual([morning.id]);
    // offsets are honoured: 12:00+02:00 is 10:00Z
    expect(await select('2031-07-01T11:00:00+02:00', '2031-07-01T12:00:00+02:00')).toEqual([]);
    expect(await select('2031-07-01T11:00:00+02:00', '2031-07-01T12:00:00.001+02:00')).toEqual([morning.id]);
    // inside the span of "Gap" but between its shifts
    expect(await select('2031-07-01T12:30:00Z', '2031-07-01T14:30:00Z')).toEqual([]);
    expect(await select('2031-07-01T08:30:00Z', '2031-07-01T10:30:00Z')).toEqual([gap.id, morning.id]);
    // one side only
    expect(await select('2031-07-01T13:00:00Z')).toEqual([gap.id]);
    expect(await select(undefined, '2031-07-01T09:00:00Z')).toEqual([gap.id]);
    expect(await select(undefined, '2031-07-01T08:00:00Z')).toEqual([]);
    expect(await select('2031-07-01T16:00:00Z')).toEqual([]);
  });

  it('from/to find an event by a long shift from its middle, and by a shift moved later', async () => {
    const org = await setupOrg();
    const long = await createEvent(org.organiser, { title: 'Camp' });
    await createShift(org.organiser, long.id, {
      startsAt: '2031-08-01T08:00:00Z',
      endsAt: '2031-08-08T08:00:00Z',
    });
    const moved = await createEvent(org.organiser, { title: 'Moved' });
    const shift = await createShift(org.organiser, moved.id, {
      startsAt: '2031-08-01T08:00:00Z',
      endsAt: '2031-08-01T09:00:00Z',
    });
    const select = async (from: string, to: string) => ids(await listAll(org.viewer, { from, to }));
    expect(await select('2031-08-05T00:00:00Z', '2031-08-05T01:00:00Z')).toEqual([long.id]);
    expect(await select('2031-08-08T07:59:59.999Z', '2031-08-09T00:00:00Z')).toEqual([long.id]);
    expect(await select('2031-08-08T08:00:00Z', '2031-08-09T00:00:00Z')).toEqual([]);
    await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ startsAt: '2031-09-01T08:00:00Z', endsAt: '2031-09-01T09:00:00Z' })
      .expect(200);
    expect(await select('2031-08-01T08:00:00Z', '2031-08-01T09:00:00Z')).toEqual([long.id]);
    expect(await select('2031-09-01T08:30:00Z', '2031-09-01T08:31:00Z')).toEqual([moved.id]);
  });

  it('rejects a garbage cursor, limits outside 1–200, bad filters and unknown parameters', async () => {
    const org = await setupOrg();
    for (const cursor of ['garbage', Buffer.from('["x","y"]').toString('base64url')]) {
      const response = await suite.http.get('/v1/events').query({ cursor }).set(org.viewer).expect(400);
      expect(response.body.code).toBe('invalid-cursor');
    }
    for (const query of [
      { limit: '0' },
      { limit: '201' },
      { limit: 'x' },
      { status: 'archived' },
      { from: 'yesterday' },
      { from: '2031-07-01T10:00:00' }, // no offset
      { updatedSince: 'soon' },
      { colour: 'red' },
    ]) {
      const response = await suite.http.get('/v1/events').query(query).set(org.viewer).expect(400);
      expect(response.body.code).toBe('validation-failed');
    }
    await suite.http.get('/v1/events').query({ limit: 200 }).set(org.viewer).expect(200);
    await suite.http.get('/v1/events').query({ limit: 1 }).set(org.viewer).expect(200);
  });
});

describe('PATCH /v1/events/{id}', () => {
  it('honours If-Match: the current ETag updates, a stale one is 412 and changes nothing', async () => {
    const org = await setupOrg();
    const created = await suite.http
      .post('/v1/events')
      .set(org.organiser)
      .send({ title: 'Old title' })
      .expect(201);
    const etag = created.headers.etag as string;
    const updated = await suite.http
      .patch(`/v1/events/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', etag)
      .send({ title: 'New title', description: 'Bring gloves', tags: ['outdoor'] })
      .expect(200);
    expect(updated.body).toMatchObject({
      id: created.body.id,
      title: 'New title',
      description: 'Bring gloves',
      tags: ['outdoor'],
      status: 'draft',
    });
    expect(updated.headers.etag).toBeDefined();
    expect(updated.headers.etag).not.toBe(etag);
    expect(new Date(updated.body.updatedAt).getTime()).toBeGreaterThan(
      new Date(created.body.updatedAt).getTime(),
    );

    const stale = await suite.http
      .patch(`/v1/events/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', etag)
      .send({ title: 'Lost update' })
      .expect(412);
    expect(stale.body.code).toBe('precondition-failed');
    const garbage = await suite.http
      .patch(`/v1/events/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', '"nonsense"')
      .send({ title: 'Lost update' })
      .expect(412);
    expect(garbage.body.code).toBe('precondition-failed');
    const [stored] = await rows<{ title: string }>(
      sql`select title from events where id = ${created.body.id}`,
    );
    expect(stored?.title).toBe('New title');

    // the new ETag works, and GET returns the same one
    const read = await suite.http.get(`/v1/events/${created.body.id}`).set(org.viewer).expect(200);
    expect(read.headers.etag).toBe(updated.headers.etag);
    await suite.http
      .patch(`/v1/events/${created.body.id}`)
      .set(org.organiser)
      .set('if-match', read.headers.etag as string)
      .send({ description: null, location: { name: 'Hall' } })
      .expect(200)
      .expect((response) => {
        expect(response.body).toMatchObject({ description: null, location: { name: 'Hall' } });
      });
  });

  it('publishes through status, and validates the body', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const published = await suite.http
      .patch(`/v1/events/${event.id}`)
      .set(org.organiser)
      .send({ status: 'published' })
      .expect(200);
    expect(published.body.status).toBe('published');
    const [stored] = await rows<{ status: string; published: boolean }>(
      sql`select status::text, published_at is not null as published from events where id = ${event.id}`,
    );
    expect(stored).toEqual({ status: 'published', published: true });
    const outbox = await rows<{ type: string }>(
      sql`select type from outbox where org_id = ${org.id} and resource_id = ${event.id} and type = 'event.published'`,
    );
    expect(outbox).toHaveLength(1);

    for (const [body, path] of [
      [{ status: 'cancelled' }, 'body.status'],
      [{ timezone: 'Nowhere/Land' }, 'body.timezone'],
      [{ title: 'x', extra: true }, 'body'],
    ] as const) {
      const response = await suite.http
        .patch(`/v1/events/${event.id}`)
        .set(org.organiser)
        .send(body)
        .expect(400);
      expect(response.body.code).toBe('validation-failed');
      expect(response.body.errors.map((error: { path: string }) => error.path)).toContain(path);
    }
    await suite.http.patch(`/v1/events/${uuidv7()}`).set(org.organiser).send({ title: 'x' }).expect(404);
    const badId = await suite.http.get('/v1/events/not-a-uuid').set(org.viewer).expect(400);
    expect(badId.body.errors[0].path).toBe('params.id');
  });
});

describe('POST /v1/events/{id}/cancel', () => {
  it('cancels the event, its shifts and their active signups; counts go to 0', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const shiftA = await createShift(org.organiser, event.id, {
      startsAt: '2031-08-01T08:00:00Z',
      endsAt: '2031-08-01T10:00:00Z',
      capacity: 1,
    });
    const shiftB = await createShift(org.organiser, event.id, {
      startsAt: '2031-08-02T08:00:00Z',
      endsAt: '2031-08-02T10:00:00Z',
      capacity: 2,
    });
    const v1 = await createVolunteer(org.organiser);
    const v2 = await createVolunteer(org.organiser);
    const v3 = await createVolunteer(org.organiser);
    const confirmedA = await insertSignup(org.id, shiftA.id, v1, 'confirmed');
    const waitlistedA = await insertSignup(org.id, shiftA.id, v2, 'waitlisted');
    const confirmedB = await insertSignup(org.id, shiftB.id, v3, 'confirmed');
    const earlierCancelled = await insertSignup(org.id, shiftB.id, v1, 'cancelled');
    const [before] = await rows<{ cancelled_at: string }>(
      sql`select cancelled_at::text from signups where id = ${earlierCancelled}`,
    );

    const response = await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(200);
    expect(response.body).toMatchObject({
      id: event.id,
      status: 'cancelled',
      shiftCount: 0,
      capacity: 0,
      confirmedCount: 0,
    });
    expect(response.headers.etag).toBeDefined();

    const shiftRows = await rows<{
      id: string;
      cancelled: boolean;
      confirmed_count: number;
      waitlist_count: number;
    }>(sql`select id, cancelled_at is not null as cancelled, confirmed_count, waitlist_count
           from shifts where org_id = ${org.id} order by starts_at`);
    expect(shiftRows).toEqual([
      { id: shiftA.id, cancelled: true, confirmed_count: 0, waitlist_count: 0 },
      { id: shiftB.id, cancelled: true, confirmed_count: 0, waitlist_count: 0 },
    ]);
    const signupRows = await rows<{ id: string; status: string; cancelled: boolean }>(
      sql`select id, status::text, cancelled_at is not null as cancelled from signups where org_id = ${org.id}`,
    );
    const byId = new Map(signupRows.map((row) => [row.id, row]));
    for (const id of [confirmedA, waitlistedA, confirmedB, earlierCancelled]) {
      expect(byId.get(id)).toMatchObject({ status: 'cancelled', cancelled: true });
    }
    const [after] = await rows<{ cancelled_at: string }>(
      sql`select cancelled_at::text from signups where id = ${earlierCancelled}`,
    );
    expect(after?.cancelled_at).toBe(before?.cancelled_at);

    const shiftRead = await suite.http.get(`/v1/shifts/${shiftA.id}`).set(org.viewer).expect(200);
    expect(shiftRead.body).toMatchObject({
      status: 'cancelled',
      confirmedCount: 0,
      waitlistCount: 0,
      available: 1,
    });

    const again = await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(409);
    expect(again.body.code).toBe('invalid-state');
    const patch = await suite.http
      .patch(`/v1/events/${event.id}`)
      .set(org.organiser)
      .send({ title: 'Back on' })
      .expect(409);
    expect(patch.body.code).toBe('invalid-state');
    const [stored] = await rows<{ title: string; status: string }>(
      sql`select title, status::text from events where id = ${event.id}`,
    );
    expect(stored).toEqual({ title: 'Food sort', status: 'cancelled' });
    // no shift can be added to it
    const shift = await suite.http
      .post(`/v1/events/${event.id}/shifts`)
      .set(org.organiser)
      .send({ startsAt: '2031-08-03T08:00:00Z', endsAt: '2031-08-03T10:00:00Z', capacity: 1 })
      .expect(409);
    expect(shift.body.code).toBe('invalid-state');
  });

  it('cancels a draft without shifts; 404 for an unknown id', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const response = await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).expect(200);
    expect(response.body.status).toBe('cancelled');
    await suite.http.post(`/v1/events/${uuidv7()}/cancel`).set(org.organiser).expect(404);
  });
});

describe('DELETE /v1/events/{id}', () => {
  it('deletes a draft without signups (and its shifts)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, {
      startsAt: '2031-09-01T08:00:00Z',
      endsAt: '2031-09-01T10:00:00Z',
    });
    const response = await suite.http.delete(`/v1/events/${event.id}`).set(org.organiser).expect(204);
    expect(response.text).toBe('');
    expect(await rows(sql`select id from events where id = ${event.id}`)).toEqual([]);
    expect(await rows(sql`select id from shifts where id = ${shift.id}`)).toEqual([]);
    await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(404);
    await suite.http.delete(`/v1/events/${event.id}`).set(org.organiser).expect(404);
  });

  it('refuses a published or cancelled event with invalid-state (checked before signups)', async () => {
    const org = await setupOrg();
    const published = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, published.id, {
      startsAt: '2031-09-01T08:00:00Z',
      endsAt: '2031-09-01T10:00:00Z',
    });
    await insertSignup(org.id, shift.id, await createVolunteer(org.organiser));
    const refused = await suite.http.delete(`/v1/events/${published.id}`).set(org.organiser).expect(409);
    expect(refused.body.code).toBe('invalid-state');
    const plain = await createEvent(org.organiser, { status: 'published' });
    expect((await suite.http.delete(`/v1/events/${plain.id}`).set(org.organiser).expect(409)).body.code).toBe(
      'invalid-state',
    );
    const cancelled = await createEvent(org.organiser);
    await suite.http.post(`/v1/events/${cancelled.id}/cancel`).set(org.organiser).expect(200);
    expect(
      (await suite.http.delete(`/v1/events/${cancelled.id}`).set(org.organiser).expect(409)).body.code,
    ).toBe('invalid-state');
    const left = await rows<{ n: number }>(
      sql`select count(*)::int as n from events where org_id = ${org.id}`,
    );
    expect(left[0]?.n).toBe(3);
  });

  it('refuses a draft with a signup (even a cancelled one) with event-has-signups', async () => {
    const org = await setupOrg();
    const volunteer = await createVolunteer(org.organiser);
    for (const status of ['confirmed', 'cancelled'] as const) {
      const event = await createEvent(org.organiser);
      const shift = await createShift(org.organiser, event.id, {
        startsAt: '2031-09-01T08:00:00Z',
        endsAt: '2031-09-01T10:00:00Z',
      });
      await insertSignup(org.id, shift.id, volunteer, status);
      const response = await suite.http.delete(`/v1/events/${event.id}`).set(org.organiser).expect(409);
      expect(response.body.code).toBe('event-has-signups');
      expect(await rows(sql`select id from events where id = ${event.id}`)).toHaveLength(1);
      expect(await rows(sql`select id from shifts where id = ${shift.id}`)).toHaveLength(1);
    }
  });
});

describe('roles on events', () => {
  it('viewers read but cannot write; organisers and admins write; volunteers are forbidden', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const attempts = (auth: Auth) => [
      suite.http.post('/v1/events').set(auth).send({ title: 'x' }),
      suite.http.patch(`/v1/events/${event.id}`).set(auth).send({ title: 'x' }),
      suite.http.post(`/v1/events/${event.id}/cancel`).set(auth),
      suite.http.delete(`/v1/events/${event.id}`).set(auth),
    ];
    await suite.http.get('/v1/events').set(org.viewer).expect(200);
    await suite.http.get(`/v1/events/${event.id}`).set(org.viewer).expect(200);
    for (const attempt of attempts(org.viewer)) {
      const response = await attempt.expect(403);
      expect(response.body.code).toBe('forbidden');
    }
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    for (const attempt of [
      suite.http.get('/v1/events').set(volunteer),
      suite.http.get(`/v1/events/${event.id}`).set(volunteer),
      ...attempts(volunteer),
    ]) {
      const response = await attempt.expect(403);
      expect(response.body.code).toBe('forbidden');
    }
    await suite.http.get('/v1/events').expect(401);
    await suite.http.post('/v1/events').send({ title: 'x' }).expect(401);
    const [stored] = await rows<{ title: string; status: string }>(
      sql`select title, status::text from events where id = ${event.id}`,
    );
    expect(stored).toEqual({ title: 'Food sort', status: 'draft' });
    expect((await rows(sql`select id from events where org_id = ${org.id}`)).length).toBe(1);

    await suite.http.post('/v1/events').set(org.admin).send({ title: 'By admin' }).expect(201);
    await suite.http.patch(`/v1/events/${event.id}`).set(org.admin).send({ title: 'Admin edit' }).expect(200);
  });
});

describe('tenant isolation', () => {
  it("org B gets 404 on every id-route of org A's event, and A's rows stay unchanged", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const event = await createEvent(a.organiser, { title: 'A event' });
    const shift = await createShift(a.organiser, event.id, {
      startsAt: '2031-10-01T08:00:00Z',
      endsAt: '2031-10-01T10:00:00Z',
    });
    const snapshot = () =>
      rows(sql`select e.*, (select json_agg(s.*) from shifts s where s.org_id = e.org_id and s.event_id = e.id) as shifts
               from events e where e.org_id = ${a.id} order by e.id`);
    const before = await snapshot();
    for (const attempt of [
      suite.http.get(`/v1/events/${event.id}`).set(b.admin),
      suite.http.get(`/v1/shifts/${shift.id}`).set(b.viewer),
      suite.http.patch(`/v1/events/${event.id}`).set(b.admin).send({ title: 'Hijacked' }),
      suite.http.patch(`/v1/events/${event.id}`).set(b.admin).send({}),
      suite.http.post(`/v1/events/${event.id}/cancel`).set(b.admin),
      suite.http.delete(`/v1/events/${event.id}`).set(b.admin),
      suite.http.get(`/v1/events/${event.id}/shifts`).set(b.viewer),
      suite.http
        .post(`/v1/events/${event.id}/shifts`)
        .set(b.organiser)
        .send({ startsAt: '2031-10-02T08:00:00Z', endsAt: '2031-10-02T10:00:00Z', capacity: 1 }),
      suite.http
        .post(`/v1/events/${event.id}/shifts/bulk`)
        .set(b.organiser)
        .send({
          shifts: [{ startsAt: '2031-10-02T08:00:00Z', endsAt: '2031-10-02T10:00:00Z', capacity: 1 }],
        }),
    ]) {
      const response = await attempt.expect(404);
      expect(response.body.code).toBe('not-found');
    }
    expect(await listAll(b.viewer)).toEqual([]);
    expect(await snapshot()).toEqual(before);
    await suite.http.get(`/v1/events/${event.id}`).set(a.viewer).expect(200);
  });
});
