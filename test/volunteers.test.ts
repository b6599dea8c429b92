import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Response } from 'supertest';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { bearer, type CreatedOrg, createKey, createOrg, startTestApp } from './support/app.ts';
import { signupInsert, useTestApp } from './support/fixtures.ts';

/** The volunteer's private feed, as GET /v1/me shows it (public.test.ts reads the feed). */
const calendarUrlPattern = /^http:\/\/127\.0\.0\.1:\d+\/v1\/calendar\/[\w-]{43}\.ics$/;
const suite = useTestApp();

// ── Helpers ──────────────────────────────────────────────────────────────────────────────────

interface Volunteer {
  id: string;
  name: string;
  email: string;
  phone: string | null;
  birthDate: string | null;
  notes?: string | null;
  qualifications: string[];
  createdAt: string;
  updatedAt: string;
}

interface Setup {
  org: CreatedOrg;
  organiser: string;
  viewer: string;
}

async function setupOrg(): Promise<Setup> {
  const org = await createOrg(suite.http);
  const organiser = await createKey(suite.http, org.adminToken, 'organiser');
  const viewer = await createKey(suite.http, org.adminToken, 'viewer');
  return { org, organiser: organiser.token, viewer: viewer.token };
}

async function addVolunteer(token: string, body: Record<string, unknown>): Promise<Volunteer> {
  const response = await suite.http.post('/v1/volunteers').set(bearer(token)).send(body).expect(201);
  return response.body as Volunteer;
}

async function issueToken(token: string, volunteerId: string): Promise<string> {
  const response = await suite.http
    .post(`/v1/volunteers/${volunteerId}/tokens`)
    .set(bearer(token))
    .send({})
    .expect(201);
  return response.body.token as string;
}

async function register(slug: string, body: { name: string; email: string; password: string }) {
  const response = await suite.http.post(`/v1/public/${slug}/volunteers`).send(body).expect(201);
  return response.body as { volunteer: Volunteer; token: string };
}

async function createRole(token: string, name: string, restricted = false): Promise<string> {
  const response = await suite.http
    .post('/v1/roles')
    .set(bearer(token))
    .send({ name, restricted })
    .expect(201);
  return response.body.id as string;
}

async function listAll(token: string, query: Record<string, string | number> = {}): Promise<Volunteer[]> {
  const seen: Volunteer[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const response: Response = await suite.http
      .get('/v1/volunteers')
      .query({ ...query, ...(cursor ? { cursor } : {}) })
      .set(bearer(token))
      .expect(200);
    seen.push(...(response.body.data as Volunteer[]));
    cursor = response.body.nextCursor;
    pages += 1;
  } while (cursor && pages < 100);
  return seen;
}

const ids = (list: { id: string }[]) => list.map((item) => item.id);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

type VolunteerDbRow = {
  name: string | null;
  email: string | null;
  phone: string | null;
  birth_date: string | null;
  notes: string | null;
  password_hash: string | null;
  calendar_token_hash: string | null;
  erased_at: Date | string | null;
  version: number;
};

async function volunteerRow(id: string): Promise<VolunteerDbRow | undefined> {
  const [row] = await queryRows<VolunteerDbRow>(
    suite.database.db,
    sql`select name, email, phone, birth_date::text as birth_date, notes, password_hash, calendar_token_hash,
          erased_at, version
        from volunteers where id = ${id}`,
  );
  return row;
}

/** Everything stored about a volunteer, for "nothing changed" checks. */
async function volunteerSnapshot(orgId: string, id: string) {
  const [volunteer] = await queryRows<Record<string, unknown>>(
    suite.database.db,
    sql`select * from volunteers where org_id = ${orgId} and id = ${id}`,
  );
  const tokens = await queryRows<Record<string, unknown>>(
    suite.database.db,
    sql`select * from volunteer_tokens where org_id = ${orgId} and volunteer_id = ${id} order by id`,
  );
  const held = await queryRows<Record<string, unknown>>(
    suite.database.db,
    sql`select * from qualifications where org_id = ${orgId} and volunteer_id = ${id} order by role_id`,
  );
  return JSON.stringify({ volunteer, tokens, held });
}

function withoutRequestSpecifics(body: Record<string, unknown>) {
  const { requestId: _requestId, instance: _instance, ...rest } = body;
  return rest;
}

// ── POST /v1/volunteers ──────────────────────────────────────────────────────────────────────

describe('POST /v1/volunteers', () => {
  it('creates a volunteer: 201, Location, ETag, the whole resource, the row in the database', async () => {
    const { organiser } = await setupOrg();
    const response = await suite.http
      .post('/v1/volunteers')
      .set(bearer(organiser))
      .send({
        name: 'Sam Rivera',
        email: 'Sam.Rivera@Example.org',
        phone: '+49 30 1234567',
        birthDate: '1990-04-12',
        notes: 'Prefers mornings.',
      })
      .expect(201);
    const body = response.body as Volunteer;
    expect(response.headers.location).toBe(`/v1/volunteers/${body.id}`);
    expect(response.headers.etag).toMatch(/^(W\/)?"[^"]+"$/);
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      name: 'Sam Rivera',
      email: 'Sam.Rivera@Example.org',
      phone: '+49 30 1234567',
      birthDate: '1990-04-12',
      notes: 'Prefers mornings.',
      qualifications: [],
      createdAt: expect.stringMatching(/Z$/),
      updatedAt: expect.stringMatching(/Z$/),
    });
    const row = await volunteerRow(body.id);
    expect(row).toMatchObject({
      name: 'Sam Rivera',
      email: 'Sam.Rivera@Example.org',
      phone: '+49 30 1234567',
      birth_date: '1990-04-12',
      notes: 'Prefers mornings.',
      password_hash: null,
      erased_at: null,
    });
    // The ETag is the one GET returns.
    const read = await suite.http.get(`/v1/volunteers/${body.id}`).set(bearer(organiser)).expect(200);
    expect(read.headers.etag).toBe(response.headers.etag);
    expect(read.body).toEqual(body);
  });

  it('needs only name and email; the optional fields are null', async () => {
    const { organiser } = await setupOrg();
    const created = await addVolunteer(organiser, { name: 'Min Imal', email: 'min@example.org' });
    expect(created).toMatchObject({ phone: null, birthDate: null, notes: null, qualifications: [] });
  });

  it('rejects invalid fields with 400 validation-failed and the path of each', async () => {
    const { org, organiser } = await setupOrg();
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'No Email' }, 'body.email'],
      [{ email: 'noname@example.org' }, 'body.name'],
      [{ name: 'Bad Email', email: 'not-an-email' }, 'body.email'],
      [{ name: '   ', email: 'blank@example.org' }, 'body.name'],
      [{ name: 'x'.repeat(201), email: 'long@example.org' }, 'body.name'],
      [{ name: 'Bad Date', email: 'date@example.org', birthDate: '1990-13-45' }, 'body.birthDate'],
      [{ name: 'Future', email: 'future@example.org', birthDate: '2999-01-01' }, 'body.birthDate'],
      [{ name: 'Typed', email: 'typed@example.org', phone: 12345 }, 'body.phone'],
      [{ name: 'Notes', email: 'notes@example.org', notes: 'x'.repeat(5001) }, 'body.notes'],
    ];
    for (const [body, path] of cases) {
      const response = await suite.http.post('/v1/volunteers').set(bearer(organiser)).send(body).expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({
        code: 'validation-failed',
        status: 400,
        type: '/problems/validation-failed',
      });
      expect(response.body.errors.map((error: { path: string }) => error.path)).toContain(path);
    }
    const count = await queryRows<{ n: number }>(
      suite.database.db,
      sql`select count(*)::int as n from volunteers where org_id = ${org.id}`,
    );
    expect(count[0]?.n).toBe(0);
  });

  it('rejects unknown fields, malformed JSON and other content types', async () => {
    const { organiser } = await setupOrg();
    const unknown = await suite.http
      .post('/v1/volunteers')
      .set(bearer(organiser))
      .send({ name: 'Extra', email: 'extra@example.org', role: 'admin' })
      .expect(400);
    expect(unknown.body.code).toBe('validation-failed');
    const malformed = await suite.http
      .post('/v1/volunteers')
      .set(bearer(organiser))
      .set('content-type', 'application/json')
      .send('{"name": "Broken"')
      .expect(400);
    expect(malformed.body.code).toBe('validation-failed');
    const text = await suite.http
      .post('/v1/volunteers')
      .set(bearer(organiser))
      .set('content-type', 'text/plain')
      .send('name=Text')
      .expect(415);
    expect(text.body.code).toBe('unsupported-media-type');
    const list = await suite.http.get('/v1/volunteers').set(bearer(organiser)).expect(200);
    expect(list.body.data).toEqual([]);
  });

  it('keeps emails unique per organisation whatever their case (409 email-taken), not across organisations', async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const first = await addVolunteer(a.organiser, { name: 'First', email: 'dup@example.org' });
    const duplicate = await suite.http
      .post('/v1/volunteers')
      .set(bearer(a.organiser))
      .send({ name: 'Second', email: 'DUP@Example.ORG' })
      .expect(409);
    expect(duplicate.body).toMatchObject({ code: 'email-taken', status: 409, type: '/problems/email-taken' });
    expect(JSON.stringify(duplicate.body)).not.toMatch(/constraint|duplicate key|volunteers_email/i);
    const inA = await listAll(a.organiser);
    expect(ids(inA)).toEqual([first.id]);
    const other = await addVolunteer(b.organiser, { name: 'Same Email', email: 'dup@example.org' });
    expect(other.id).not.toBe(first.id);
  });

  it('is for organisers and admins: viewer and volunteer tokens get 403, no token 401', async () => {
    const { org, organiser, viewer } = await setupOrg();
    await addVolunteer(org.adminToken, { name: 'By Admin', email: 'admin-made@example.org' });
    const body = { name: 'Nope', email: 'nope@example.org' };
    const asViewer = await suite.http.post('/v1/volunteers').set(bearer(viewer)).send(body).expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    const someone = await addVolunteer(organiser, { name: 'Someone', email: 'someone@example.org' });
    const volunteerToken = await issueToken(organiser, someone.id);
    const asVolunteer = await suite.http
      .post('/v1/volunteers')
      .set(bearer(volunteerToken))
      .send(body)
      .expect(403);
    expect(asVolunteer.body.code).toBe('forbidden');
    const anonymous = await suite.http.post('/v1/volunteers').send(body).expect(401);
    expect(anonymous.body.code).toBe('unauthenticated');
    const rows = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from volunteers where email = 'nope@example.org'`,
    );
    expect(rows).toEqual([]);
  });
});

// ── GET /v1/volunteers/{id} ──────────────────────────────────────────────────────────────────

describe('GET /v1/volunteers/{id}', () => {
  it('reads a volunteer for organisers and admins; viewers get 403 (API.md §3)', async () => {
    const { org, organiser, viewer } = await setupOrg();
    const created = await addVolunteer(organiser, { name: 'Readable', email: 'read@example.org' });
    const asOrganiser = await suite.http
      .get(`/v1/volunteers/${created.id}`)
      .set(bearer(organiser))
      .expect(200);
    expect(asOrganiser.body).toEqual(created);
    expect(asOrganiser.headers.etag).toBeTruthy();
    await suite.http.get(`/v1/volunteers/${created.id}`).set(bearer(org.adminToken)).expect(200);
    const asViewer = await suite.http.get(`/v1/volunteers/${created.id}`).set(bearer(viewer)).expect(403);
    expect(asViewer.body.code).toBe('forbidden');
  });

  it('is 404 for an unknown id and 400 for a malformed one', async () => {
    const { organiser } = await setupOrg();
    const unknown = await suite.http.get(`/v1/volunteers/${uuidv7()}`).set(bearer(organiser)).expect(404);
    expect(unknown.body.code).toBe('not-found');
    const malformed = await suite.http.get('/v1/volunteers/not-a-uuid').set(bearer(organiser)).expect(400);
    expect(malformed.body.errors[0].path).toBe('params.id');
  });
});

// ── PATCH /v1/volunteers/{id} ────────────────────────────────────────────────────────────────

describe('PATCH /v1/volunteers/{id}', () => {
  it('updates with If-Match: 200, the whole resource, a new ETag; null clears phone', async () => {
    const { organiser } = await setupOrg();
    const created = await suite.http
      .post('/v1/volunteers')
      .set(bearer(organiser))
      .send({ name: 'Pat Old', email: 'pat@example.org', phone: '+1 555 0100', notes: 'old note' })
      .expect(201);
    const etag = created.headers.etag as string;
    const updated = await suite.http
      .patch(`/v1/volunteers/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', etag)
      .send({ name: 'Pat New', phone: null, notes: 'new note' })
      .expect(200);
    expect(updated.body).toMatchObject({
      id: created.body.id,
      name: 'Pat New',
      email: 'pat@example.org',
      phone: null,
      notes: 'new note',
      createdAt: created.body.createdAt,
    });
    expect(new Date(updated.body.updatedAt).getTime()).toBeGreaterThan(
      new Date(created.body.updatedAt).getTime(),
    );
    expect(updated.headers.etag).toBeTruthy();
    expect(updated.headers.etag).not.toBe(etag);
    const row = await volunteerRow(created.body.id);
    expect(row).toMatchObject({ name: 'Pat New', phone: null, notes: 'new note' });
    const read = await suite.http.get(`/v1/volunteers/${created.body.id}`).set(bearer(organiser)).expect(200);
    expect(read.headers.etag).toBe(updated.headers.etag);
    expect(read.body).toEqual(updated.body);
  });

  it('answers a stale If-Match with 412 precondition-failed and changes nothing', async () => {
    const { organiser } = await setupOrg();
    const created = await suite.http
      .post('/v1/volunteers')
      .set(bearer(organiser))
      .send({ name: 'Stale', email: 'stale@example.org' })
      .expect(201);
    const first = created.headers.etag as string;
    await suite.http
      .patch(`/v1/volunteers/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', first)
      .send({ phone: '123' })
      .expect(200);
    const before = await volunteerRow(created.body.id);
    const stale = await suite.http
      .patch(`/v1/volunteers/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', first)
      .send({ name: 'Lost Update' })
      .expect(412);
    expect(stale.body).toMatchObject({ code: 'precondition-failed', status: 412 });
    const emptyStale = await suite.http
      .patch(`/v1/volunteers/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', first)
      .send({})
      .expect(412);
    expect(emptyStale.body.code).toBe('precondition-failed');
    const garbage = await suite.http
      .patch(`/v1/volunteers/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', '"something-else"')
      .send({ name: 'Lost Update' })
      .expect(412);
    expect(garbage.body.code).toBe('precondition-failed');
    expect(await volunteerRow(created.body.id)).toEqual(before);
  });

  it('without If-Match applies the change (no precondition)', async () => {
    const { organiser } = await setupOrg();
    const created = await addVolunteer(organiser, { name: 'Free', email: 'free@example.org' });
    const updated = await suite.http
      .patch(`/v1/volunteers/${created.id}`)
      .set(bearer(organiser))
      .send({ birthDate: '2001-02-03' })
      .expect(200);
    expect(updated.body.birthDate).toBe('2001-02-03');
    expect((await volunteerRow(created.id))?.birth_date).toBe('2001-02-03');
  });

  it('keeps emails unique on update (409 email-taken), validates and rejects unknown fields', async () => {
    const { organiser } = await setupOrg();
    await addVolunteer(organiser, { name: 'Holder', email: 'holder@example.org' });
    const other = await addVolunteer(organiser, { name: 'Other', email: 'other@example.org' });
    const taken = await suite.http
      .patch(`/v1/volunteers/${other.id}`)
      .set(bearer(organiser))
      .send({ email: 'HOLDER@example.org' })
      .expect(409);
    expect(taken.body.code).toBe('email-taken');
    const invalid = await suite.http
      .patch(`/v1/volunteers/${other.id}`)
      .set(bearer(organiser))
      .send({ email: 'nope' })
      .expect(400);
    expect(invalid.body.errors[0].path).toBe('body.email');
    const unknown = await suite.http
      .patch(`/v1/volunteers/${other.id}`)
      .set(bearer(organiser))
      .send({ passwordHash: 'x' })
      .expect(400);
    expect(unknown.body.code).toBe('validation-failed');
    const nullName = await suite.http
      .patch(`/v1/volunteers/${other.id}`)
      .set(bearer(organiser))
      .send({ name: null })
      .expect(400);
    expect(nullName.body.errors[0].path).toBe('body.name');
    expect(await volunteerRow(other.id)).toMatchObject({ name: 'Other', email: 'other@example.org' });
    // Changing the letter case of one's own email is not a conflict.
    const own = await suite.http
      .patch(`/v1/volunteers/${other.id}`)
      .set(bearer(organiser))
      .send({ email: 'Other@Example.org' })
      .expect(200);
    expect(own.body.email).toBe('Other@Example.org');
  });

  it('is 404 for an unknown id and 403 for viewers', async () => {
    const { organiser, viewer } = await setupOrg();
    const created = await addVolunteer(organiser, { name: 'Guarded', email: 'guarded@example.org' });
    const unknown = await suite.http
      .patch(`/v1/volunteers/${uuidv7()}`)
      .set(bearer(organiser))
      .send({ name: 'X' })
      .expect(404);
    expect(unknown.body.code).toBe('not-found');
    const asViewer = await suite.http
      .patch(`/v1/volunteers/${created.id}`)
      .set(bearer(viewer))
      .send({ name: 'X' })
      .expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    expect((await volunteerRow(created.id))?.name).toBe('Guarded');
  });
});

// ── GET /v1/volunteers ───────────────────────────────────────────────────────────────────────

describe('GET /v1/volunteers', () => {
  it('orders by name then id and pages with limit=2 without duplicates or gaps', async () => {
    const { organiser, viewer } = await setupOrg();
    const names = ['Ezra', 'Bea', 'Alma', 'Dina', 'Bea', 'Cleo', 'Bea'];
    const created: Volunteer[] = [];
    for (const [index, name] of names.entries()) {
      created.push(await addVolunteer(organiser, { name, email: `person${index}@example.org` }));
    }
    const expected = [...created].sort((x, y) =>
      x.name < y.name ? -1 : x.name > y.name ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0,
    );
    // All at once, as a viewer (viewers may list).
    const all = await suite.http.get('/v1/volunteers').query({ limit: 200 }).set(bearer(viewer)).expect(200);
    expect(ids(all.body.data)).toEqual(ids(expected));
    expect(all.body.nextCursor).toBeNull();
    // Page by page.
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: Response = await suite.http
        .get('/v1/volunteers')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(bearer(viewer))
        .expect(200);
      expect(response.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...ids(response.body.data));
      cursor = response.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(pages).toBe(4);
    expect(seen).toEqual(ids(expected));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('lists the whole resource, notes included, with the default limit', async () => {
    const { organiser } = await setupOrg();
    const created = await addVolunteer(organiser, {
      name: 'Full',
      email: 'full@example.org',
      phone: '1',
      notes: 'n',
    });
    const response = await suite.http.get('/v1/volunteers').set(bearer(organiser)).expect(200);
    expect(response.body).toEqual({ data: [created], nextCursor: null });
  });

  it('filters by q: a case-insensitive substring of the name or the email', async () => {
    const { organiser } = await setupOrg();
    const maria = await addVolunteer(organiser, { name: 'Maria Lopez', email: 'mlo@alpha.test' });
    const jo = await addVolunteer(organiser, { name: 'Jo Smith', email: 'JO.LOPEZ@beta.test' });
    const kim = await addVolunteer(organiser, { name: 'Kim Park', email: 'kim@gamma.test' });
    expect(ids(await listAll(organiser, { q: 'lopez' }))).toEqual([jo.id, maria.id]);
    expect(ids(await listAll(organiser, { q: 'LOPEZ' }))).toEqual([jo.id, maria.id]);
    expect(ids(await listAll(organiser, { q: 'Gamma' }))).toEqual([kim.id]);
    expect(ids(await listAll(organiser, { q: 'ria lo' }))).toEqual([maria.id]);
    expect(ids(await listAll(organiser, { q: 'nobody' }))).toEqual([]);
    // q combines with pagination.
    const first = await suite.http
      .get('/v1/volunteers')
      .query({ q: 'lopez', limit: 1 })
      .set(bearer(organiser))
      .expect(200);
    expect(ids(first.body.data)).toEqual([jo.id]);
    const second = await suite.http
      .get('/v1/volunteers')
      .query({ q: 'lopez', limit: 1, cursor: first.body.nextCursor })
      .set(bearer(organiser))
      .expect(200);
    expect(ids(second.body.data)).toEqual([maria.id]);
    expect(second.body.nextCursor).toBeNull();
  });

  it('takes % and _ in q literally', async () => {
    const { organiser } = await setupOrg();
    const percent = await addVolunteer(organiser, { name: 'Hundred % Hal', email: 'hal@example.org' });
    const underscore = await addVolunteer(organiser, { name: 'Under_Score', email: 'under@example.org' });
    const backslash = await addVolunteer(organiser, { name: 'Back\\Slash', email: 'back@example.org' });
    await addVolunteer(organiser, { name: 'Plain Person', email: 'plain@example.org' });
    expect(ids(await listAll(organiser, { q: '%' }))).toEqual([percent.id]);
    expect(ids(await listAll(organiser, { q: '_' }))).toEqual([underscore.id]);
    expect(ids(await listAll(organiser, { q: 'r_s' }))).toEqual([underscore.id]);
    expect(ids(await listAll(organiser, { q: 'd % h' }))).toEqual([percent.id]);
    expect(ids(await listAll(organiser, { q: '\\' }))).toEqual([backslash.id]);
    expect(ids(await listAll(organiser, { q: 'P%n' }))).toEqual([]);
  });

  it('filters by qualification (a role id)', async () => {
    const { organiser } = await setupOrg();
    const driver = await createRole(organiser, 'Driver');
    const cook = await createRole(organiser, 'Cook');
    const a = await addVolunteer(organiser, { name: 'Avery', email: 'avery@example.org' });
    const b = await addVolunteer(organiser, { name: 'Blake', email: 'blake@example.org' });
    await addVolunteer(organiser, { name: 'Casey', email: 'casey@example.org' });
    await suite.http
      .put(`/v1/volunteers/${b.id}/qualifications/${driver}`)
      .set(bearer(organiser))
      .expect(204);
    await suite.http
      .put(`/v1/volunteers/${a.id}/qualifications/${driver}`)
      .set(bearer(organiser))
      .expect(204);
    await suite.http.put(`/v1/volunteers/${a.id}/qualifications/${cook}`).set(bearer(organiser)).expect(204);
    const drivers = await listAll(organiser, { qualification: driver });
    expect(ids(drivers)).toEqual([a.id, b.id]);
    expect(drivers[0]?.qualifications.sort()).toEqual([driver, cook].sort());
    expect(drivers[1]?.qualifications).toEqual([driver]);
    expect(ids(await listAll(organiser, { qualification: cook }))).toEqual([a.id]);
    expect(ids(await listAll(organiser, { qualification: uuidv7() }))).toEqual([]);
    expect(ids(await listAll(organiser, { qualification: driver, q: 'blake' }))).toEqual([b.id]);
    const malformed = await suite.http
      .get('/v1/volunteers')
      .query({ qualification: 'driver' })
      .set(bearer(organiser))
      .expect(400);
    expect(malformed.body.errors[0].path).toBe('querystring.qualification');
  });

  it('filters by updatedSince (updatedAt ≥ updatedSince), in any offset', async () => {
    const { organiser } = await setupOrg();
    const old = await addVolunteer(organiser, { name: 'Old', email: 'old@example.org' });
    const touched = await addVolunteer(organiser, { name: 'Touched', email: 'touched@example.org' });
    // Make "old" unambiguously older than anything that follows.
    await suite.database.db.execute(
      sql`update volunteers set updated_at = now() - interval '1 hour' where id = ${old.id}`,
    );
    const patched = await suite.http
      .patch(`/v1/volunteers/${touched.id}`)
      .set(bearer(organiser))
      .send({ phone: '42' })
      .expect(200);
    const since = patched.body.updatedAt as string;
    expect(ids(await listAll(organiser, { updatedSince: since }))).toEqual([touched.id]);
    // The same instant written with an offset.
    const sinceDate = new Date(since);
    const plusOne = new Date(sinceDate.getTime() + 3_600_000)
      .toISOString()
      .replace(/\.(\d{3})Z$/, '.$1+01:00');
    expect(ids(await listAll(organiser, { updatedSince: plusOne }))).toEqual([touched.id]);
    const earlier = new Date(sinceDate.getTime() - 2 * 3_600_000).toISOString();
    expect(ids(await listAll(organiser, { updatedSince: earlier }))).toEqual([old.id, touched.id]);
    const later = new Date(sinceDate.getTime() + 60_000).toISOString();
    expect(ids(await listAll(organiser, { updatedSince: later }))).toEqual([]);
    for (const bad of ['yesterday', '2026-12-05T09:00:00', '2026-12-05']) {
      const response = await suite.http
        .get('/v1/volunteers')
        .query({ updatedSince: bad })
        .set(bearer(organiser))
        .expect(400);
      expect(response.body.code).toBe('validation-failed');
    }
  });

  it('rejects limits outside 1–200, garbage cursors and unknown parameters', async () => {
    const { organiser } = await setupOrg();
    await addVolunteer(organiser, { name: 'One', email: 'one@example.org' });
    for (const limit of ['0', '201', '-1', 'ten', '2.5']) {
      const response = await suite.http
        .get('/v1/volunteers')
        .query({ limit })
        .set(bearer(organiser))
        .expect(400);
      expect(response.body.code).toBe('validation-failed');
      expect(response.body.errors[0].path).toBe('querystring.limit');
    }
    await suite.http.get('/v1/volunteers').query({ limit: 1 }).set(bearer(organiser)).expect(200);
    await suite.http.get('/v1/volunteers').query({ limit: 200 }).set(bearer(organiser)).expect(200);
    for (const cursor of [
      'garbage',
      '!!!',
      Buffer.from('["Alma"]').toString('base64url'),
      Buffer.from('["Alma","not-a-uuid"]').toString('base64url'),
      Buffer.from('[1,2]').toString('base64url'),
      Buffer.from('{"name":"Alma"}').toString('base64url'),
    ]) {
      const response = await suite.http
        .get('/v1/volunteers')
        .query({ cursor })
        .set(bearer(organiser))
        .expect(400);
      expect(response.body.code).toBe('invalid-cursor');
    }
    const unknown = await suite.http
      .get('/v1/volunteers')
      .query({ sort: 'email' })
      .set(bearer(organiser))
      .expect(400);
    expect(unknown.body.code).toBe('validation-failed');
  });

  it('is for keys: a volunteer token gets 403, no token 401', async () => {
    const { organiser } = await setupOrg();
    const someone = await addVolunteer(organiser, { name: 'Someone', email: 'someone@example.org' });
    const token = await issueToken(organiser, someone.id);
    const asVolunteer = await suite.http.get('/v1/volunteers').set(bearer(token)).expect(403);
    expect(asVolunteer.body.code).toBe('forbidden');
    await suite.http.get('/v1/volunteers').expect(401);
  });
});

// ── DELETE /v1/volunteers/{id} (erasure) ─────────────────────────────────────────────────────

async function createEvent(token: string): Promise<string> {
  const response = await suite.http
    .post('/v1/events')
    .set(bearer(token))
    .send({ title: 'Erasure test event', status: 'published' })
    .expect(201);
  return response.body.id as string;
}

async function createShift(
  token: string,
  eventId: string,
  startsAt: string,
  endsAt: string,
  capacity: number,
): Promise<string> {
  const response = await suite.http
    .post(`/v1/events/${eventId}/shifts`)
    .set(bearer(token))
    .send({ startsAt, endsAt, capacity })
    .expect(201);
  return response.body.id as string;
}

/** A signup written directly (the claim endpoint is another domain's), with consistent counts. */
async function insertSignup(
  orgId: string,
  shiftId: string,
  volunteerId: string,
  status: 'confirmed' | 'waitlisted' | 'attended',
  hours: number | null = null,
): Promise<string> {
  const id = uuidv7();
  await suite.database.db.execute(signupInsert({ orgId, id, shiftId, volunteerId, status, hours }));
  return id;
}

type SignupRow = {
  id: string;
  status: string;
  volunteer_id: string;
  hours: string | null;
  cancelled_at: unknown;
};

async function signupRow(id: string): Promise<SignupRow | undefined> {
  const [row] = await queryRows<SignupRow>(
    suite.database.db,
    sql`select id, status::text as status, volunteer_id, hours::text as hours, cancelled_at from signups where id = ${id}`,
  );
  return row;
}

async function shiftCounts(id: string) {
  const [row] = await queryRows<{ confirmed_count: number; waitlist_count: number }>(
    suite.database.db,
    sql`select confirmed_count, waitlist_count from shifts where id = ${id}`,
  );
  return row;
}

describe('DELETE /v1/volunteers/{id} (erasure)', () => {
  it('erases personal data: 204, then 404, absent from lists, columns null, tokens revoked', async () => {
    const { org, organiser, viewer } = await setupOrg();
    const role = await createRole(organiser, 'Kitchen');
    const registered = await register(org.slug, {
      name: 'Erin Erased',
      email: 'erin@example.org',
      password: 'a long enough password',
    });
    const id = registered.volunteer.id;
    await suite.http
      .patch(`/v1/volunteers/${id}`)
      .set(bearer(organiser))
      .send({ phone: '+44 20 7946 0000', birthDate: '1985-06-07', notes: 'Allergic to nuts' })
      .expect(200);
    await suite.http.put(`/v1/volunteers/${id}/qualifications/${role}`).set(bearer(organiser)).expect(204);
    const appToken = await issueToken(organiser, id);
    await suite.http.get('/v1/me').set(bearer(appToken)).expect(200);
    await suite.http.get('/v1/me').set(bearer(registered.token)).expect(200);
    const keeper = await addVolunteer(organiser, { name: 'Keeper', email: 'keeper@example.org' });
    expect(ids(await listAll(viewer))).toEqual([id, keeper.id]);

    const erased = await suite.http.delete(`/v1/volunteers/${id}`).set(bearer(organiser)).expect(204);
    expect(erased.text).toBe('');

    const gone = await suite.http.get(`/v1/volunteers/${id}`).set(bearer(organiser)).expect(404);
    expect(gone.body.code).toBe('not-found');
    expect(ids(await listAll(viewer))).toEqual([keeper.id]);
    expect(await listAll(viewer, { q: 'erin' })).toEqual([]);
    expect(await listAll(viewer, { qualification: role })).toEqual([]);

    const row = await volunteerRow(id);
    expect(row).toMatchObject({
      name: null,
      email: null,
      phone: null,
      birth_date: null,
      notes: null,
      password_hash: null,
      calendar_token_hash: null,
    });
    expect(row?.erased_at).not.toBeNull();
    const everything = await queryRows<Record<string, unknown>>(
      suite.database.db,
      sql`select * from volunteers where id = ${id}`,
    );
    const dump = JSON.stringify(everything);
    for (const secret of ['Erin', 'erin@example.org', '7946', '1985-06-07', 'nuts', 'argon2']) {
      expect(dump).not.toContain(secret);
    }
    const heldAfter = await queryRows<{ role_id: string }>(
      suite.database.db,
      sql`select role_id from qualifications where volunteer_id = ${id}`,
    );
    expect(heldAfter).toEqual([]);

    for (const token of [appToken, registered.token]) {
      const response = await suite.http.get('/v1/me').set(bearer(token)).expect(401);
      expect(response.body.code).toBe('unauthenticated');
    }
    const activeTokens = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from volunteer_tokens where volunteer_id = ${id} and revoked_at is null`,
    );
    expect(activeTokens).toEqual([]);
    // An erased volunteer cannot sign in any more.
    const signIn = await suite.http
      .post(`/v1/public/${org.slug}/sessions`)
      .send({ email: 'erin@example.org', password: 'a long enough password' })
      .expect(401);
    expect(signIn.body.code).toBe('invalid-credentials');

    // Every id-route is 404 from then on.
    await suite.http.delete(`/v1/volunteers/${id}`).set(bearer(organiser)).expect(404);
    await suite.http.patch(`/v1/volunteers/${id}`).set(bearer(organiser)).send({ name: 'Back' }).expect(404);
    await suite.http.post(`/v1/volunteers/${id}/tokens`).set(bearer(organiser)).send({}).expect(404);
    await suite.http.put(`/v1/volunteers/${id}/qualifications/${role}`).set(bearer(organiser)).expect(404);
    expect((await volunteerRow(id))?.name).toBeNull();
  });

  it('frees the email for a new volunteer, organiser-made or self-registered', async () => {
    const { org, organiser } = await setupOrg();
    const first = await addVolunteer(organiser, { name: 'Reuse', email: 'reuse@example.org' });
    await suite.http.delete(`/v1/volunteers/${first.id}`).set(bearer(organiser)).expect(204);
    const second = await addVolunteer(organiser, { name: 'Reuse Again', email: 'REUSE@example.org' });
    expect(second.id).not.toBe(first.id);
    await suite.http.delete(`/v1/volunteers/${second.id}`).set(bearer(organiser)).expect(204);
    const third = await register(org.slug, {
      name: 'Reuse Third',
      email: 'reuse@example.org',
      password: 'password-123456',
    });
    expect(third.volunteer.email).toBe('reuse@example.org');
  });

  it('cancels future signups (freeing their places) and keeps past ones', async () => {
    const { org, organiser } = await setupOrg();
    const eventId = await createEvent(organiser);
    const future = await createShift(
      organiser,
      eventId,
      '2040-05-01T09:00:00+02:00',
      '2040-05-01T12:00:00+02:00',
      3,
    );
    const futureFull = await createShift(
      organiser,
      eventId,
      '2040-05-02T09:00:00+02:00',
      '2040-05-02T12:00:00+02:00',
      1,
    );
    const past = await createShift(
      organiser,
      eventId,
      '2020-05-01T09:00:00+02:00',
      '2020-05-01T12:00:00+02:00',
      2,
    );
    const pastConfirmed = await createShift(
      organiser,
      eventId,
      '2020-06-01T09:00:00+02:00',
      '2020-06-01T12:00:00+02:00',
      2,
    );
    const leaving = await addVolunteer(organiser, { name: 'Leaving', email: 'leaving@example.org' });
    const staying = await addVolunteer(organiser, { name: 'Staying', email: 'staying@example.org' });

    const futureSignup = await insertSignup(org.id, future, leaving.id, 'confirmed');
    const othersFuture = await insertSignup(org.id, future, staying.id, 'confirmed');
    await insertSignup(org.id, futureFull, staying.id, 'confirmed');
    const waitlisted = await insertSignup(org.id, futureFull, leaving.id, 'waitlisted');
    const attended = await insertSignup(org.id, past, leaving.id, 'attended', 3);
    const confirmedPast = await insertSignup(org.id, pastConfirmed, leaving.id, 'confirmed');
    expect(await shiftCounts(future)).toEqual({ confirmed_count: 2, waitlist_count: 0 });
    expect(await shiftCounts(futureFull)).toEqual({ confirmed_count: 1, waitlist_count: 1 });

    await suite.http.delete(`/v1/volunteers/${leaving.id}`).set(bearer(organiser)).expect(204);

    expect(await signupRow(futureSignup)).toMatchObject({ status: 'cancelled', volunteer_id: leaving.id });
    expect((await signupRow(futureSignup))?.cancelled_at).not.toBeNull();
    expect(await signupRow(waitlisted)).toMatchObject({ status: 'cancelled' });
    expect(await signupRow(othersFuture)).toMatchObject({ status: 'confirmed', cancelled_at: null });
    expect(await shiftCounts(future)).toEqual({ confirmed_count: 1, waitlist_count: 0 });
    expect(await shiftCounts(futureFull)).toEqual({ confirmed_count: 1, waitlist_count: 0 });
    // Past hours stay, attached to the anonymous row.
    expect(await signupRow(attended)).toMatchObject({
      status: 'attended',
      volunteer_id: leaving.id,
      hours: '3.00',
      cancelled_at: null,
    });
    expect(await signupRow(confirmedPast)).toMatchObject({ status: 'confirmed', cancelled_at: null });
    // An attended signup still holds its place (API.md §7 counts it as confirmed).
    expect(await shiftCounts(past)).toEqual({ confirmed_count: 1, waitlist_count: 0 });
    expect(await shiftCounts(pastConfirmed)).toEqual({ confirmed_count: 1, waitlist_count: 0 });
    // The shift's counts as the API shows them.
    const shift = await suite.http.get(`/v1/shifts/${future}`).set(bearer(organiser)).expect(200);
    expect(shift.body).toMatchObject({ confirmedCount: 1, available: 2 });
  });

  it('promotes the first waitlisted volunteer into the place it frees', async () => {
    const { org, organiser } = await setupOrg();
    const eventId = await createEvent(organiser);
    const shiftId = await createShift(
      organiser,
      eventId,
      '2040-07-01T09:00:00+02:00',
      '2040-07-01T12:00:00+02:00',
      1,
    );
    const leaving = await addVolunteer(organiser, { name: 'Leaving', email: 'leaving@example.org' });
    const waiting = await addVolunteer(organiser, { name: 'Waiting', email: 'waiting@example.org' });
    const confirmed = await insertSignup(org.id, shiftId, leaving.id, 'confirmed');
    const waitlisted = await insertSignup(org.id, shiftId, waiting.id, 'waitlisted');

    await suite.http.delete(`/v1/volunteers/${leaving.id}`).set(bearer(organiser)).expect(204);

    expect(await signupRow(confirmed)).toMatchObject({ status: 'cancelled' });
    expect(await signupRow(waitlisted)).toMatchObject({ status: 'confirmed' });
    expect(await shiftCounts(shiftId)).toEqual({ confirmed_count: 1, waitlist_count: 0 });
  });

  it('is for organisers: viewers get 403 and nothing is erased; unknown ids are 404', async () => {
    const { organiser, viewer } = await setupOrg();
    const kept = await addVolunteer(organiser, { name: 'Kept', email: 'kept@example.org' });
    const asViewer = await suite.http.delete(`/v1/volunteers/${kept.id}`).set(bearer(viewer)).expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    expect(await volunteerRow(kept.id)).toMatchObject({ name: 'Kept', erased_at: null });
    const unknown = await suite.http.delete(`/v1/volunteers/${uuidv7()}`).set(bearer(organiser)).expect(404);
    expect(unknown.body.code).toBe('not-found');
  });
});

// ── POST /v1/volunteers/{id}/tokens ──────────────────────────────────────────────────────────

describe('POST /v1/volunteers/{id}/tokens', () => {
  it('issues a tg_vol_ token that works on /v1/me and is stored only as its SHA-256 hash', async () => {
    const { organiser } = await setupOrg();
    const created = await addVolunteer(organiser, {
      name: 'App User',
      email: 'app@example.org',
      notes: 'secret organiser note',
    });
    const response = await suite.http
      .post(`/v1/volunteers/${created.id}/tokens`)
      .set(bearer(organiser))
      .send({})
      .expect(201);
    expect(response.body).toEqual({
      id: expect.any(String),
      token: expect.stringMatching(/^tg_vol_[A-Za-z0-9_-]{43}$/),
      createdAt: expect.stringMatching(/Z$/),
    });
    const token = response.body.token as string;
    const me = await suite.http.get('/v1/me').set(bearer(token)).expect(200);
    expect(me.body).toMatchObject({ id: created.id, name: 'App User', email: 'app@example.org' });
    expect(me.body).not.toHaveProperty('notes');

    const stored = await queryRows<{ token_hash: string; volunteer_id: string; revoked_at: unknown }>(
      suite.database.db,
      sql`select token_hash, volunteer_id, revoked_at from volunteer_tokens where id = ${response.body.id}`,
    );
    expect(stored).toEqual([{ token_hash: sha256(token), volunteer_id: created.id, revoked_at: null }]);
    const everything = await queryRows<Record<string, unknown>>(
      suite.database.db,
      sql`select * from volunteer_tokens where volunteer_id = ${created.id}`,
    );
    expect(JSON.stringify(everything)).not.toContain(token);
    expect(JSON.stringify(everything)).not.toContain(token.slice(7));

    // A second token is different, and both work.
    const second = await issueToken(organiser, created.id);
    expect(second).not.toBe(token);
    await suite.http.get('/v1/me').set(bearer(second)).expect(200);
    await suite.http.get('/v1/me').set(bearer(token)).expect(200);
  });

  it('is 404 for an unknown volunteer, 403 for viewers', async () => {
    const { organiser, viewer } = await setupOrg();
    const unknown = await suite.http
      .post(`/v1/volunteers/${uuidv7()}/tokens`)
      .set(bearer(organiser))
      .send({})
      .expect(404);
    expect(unknown.body.code).toBe('not-found');
    const created = await addVolunteer(organiser, { name: 'No Token', email: 'notoken@example.org' });
    const asViewer = await suite.http
      .post(`/v1/volunteers/${created.id}/tokens`)
      .set(bearer(viewer))
      .send({})
      .expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    const tokens = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from volunteer_tokens where volunteer_id = ${created.id}`,
    );
    expect(tokens).toEqual([]);
  });
});

// ── Self-registration ────────────────────────────────────────────────────────────────────────

describe('POST /v1/public/{orgSlug}/volunteers', () => {
  it('registers: 201 { volunteer, token }, argon2id hash, the token works', async () => {
    const { org, organiser } = await setupOrg();
    const password = 'correct horse battery';
    const response = await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Self Made', email: 'Self@Example.org', password })
      .expect(201);
    expect(response.body).toEqual({
      volunteer: {
        id: expect.any(String),
        name: 'Self Made',
        email: 'Self@Example.org',
        phone: null,
        birthDate: null,
        qualifications: [],
        createdAt: expect.stringMatching(/Z$/),
        updatedAt: expect.stringMatching(/Z$/),
      },
      token: expect.stringMatching(/^tg_vol_[A-Za-z0-9_-]{43}$/),
    });
    const id = response.body.volunteer.id as string;
    const row = await volunteerRow(id);
    expect(row?.password_hash).toMatch(/^\$argon2id\$/);
    expect(row?.password_hash).not.toContain(password);
    const tokenRows = await queryRows<{ token_hash: string }>(
      suite.database.db,
      sql`select token_hash from volunteer_tokens where volunteer_id = ${id}`,
    );
    expect(tokenRows).toEqual([{ token_hash: sha256(response.body.token) }]);
    const me = await suite.http.get('/v1/me').set(bearer(response.body.token)).expect(200);
    expect(me.body).toEqual({
      ...response.body.volunteer,
      calendarUrl: expect.stringMatching(calendarUrlPattern),
    });
    // The organisation sees them.
    const listed = await listAll(organiser);
    expect(ids(listed)).toEqual([id]);
    expect(listed[0]?.notes).toBeNull();
  });

  it('needs a password of at least 10 characters and a valid body', async () => {
    const { org } = await setupOrg();
    const short = await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Short', email: 'short@example.org', password: '123456789' })
      .expect(400);
    expect(short.body.code).toBe('validation-failed');
    expect(short.body.errors.map((error: { path: string }) => error.path)).toContain('body.password');
    const badEmail = await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Bad', email: 'bad', password: '1234567890' })
      .expect(400);
    expect(badEmail.body.errors.map((error: { path: string }) => error.path)).toContain('body.email');
    const extra = await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Extra', email: 'extra@example.org', password: '1234567890', notes: 'x' })
      .expect(400);
    expect(extra.body.code).toBe('validation-failed');
    const rows = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from volunteers where email in ('short@example.org', 'bad', 'extra@example.org')`,
    );
    expect(rows).toEqual([]);
    // Exactly ten characters is enough.
    await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Ten', email: 'ten@example.org', password: '1234567890' })
      .expect(201);
  });

  it('refuses a taken email, whatever its case (409 email-taken)', async () => {
    const { org, organiser } = await setupOrg();
    await addVolunteer(organiser, { name: 'Existing', email: 'existing@example.org' });
    const response = await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Copycat', email: 'EXISTING@example.org', password: 'a password long' })
      .expect(409);
    expect(response.body.code).toBe('email-taken');
    await register(org.slug, { name: 'Self', email: 'self@example.org', password: 'a password long' });
    const again = await suite.http
      .post(`/v1/public/${org.slug}/volunteers`)
      .send({ name: 'Self Again', email: 'self@example.org', password: 'another password' })
      .expect(409);
    expect(again.body.code).toBe('email-taken');
    const rows = await queryRows<{ n: number }>(
      suite.database.db,
      sql`select count(*)::int as n from volunteers where org_id = ${org.id}`,
    );
    expect(rows[0]?.n).toBe(2);
  });

  it('is 404 for an unknown organisation', async () => {
    const response = await suite.http
      .post('/v1/public/no-such-org-here/volunteers')
      .send({ name: 'Lost', email: 'lost@example.org', password: '1234567890' })
      .expect(404);
    expect(response.body.code).toBe('not-found');
    const rows = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from volunteers where email = 'lost@example.org'`,
    );
    expect(rows).toEqual([]);
  });
});

// ── Sign-in ──────────────────────────────────────────────────────────────────────────────────

describe('POST /v1/public/{orgSlug}/sessions', () => {
  it('signs in: 201 { volunteer, token } with a new token; the email is case-insensitive', async () => {
    const { org } = await setupOrg();
    const registered = await register(org.slug, {
      name: 'Signer',
      email: 'signer@example.org',
      password: 'sign me in please',
    });
    const response = await suite.http
      .post(`/v1/public/${org.slug}/sessions`)
      .send({ email: 'Signer@Example.org', password: 'sign me in please' })
      .expect(201);
    expect(response.body.volunteer).toEqual(registered.volunteer);
    expect(response.body.volunteer).not.toHaveProperty('notes');
    expect(response.body.token).toMatch(/^tg_vol_[A-Za-z0-9_-]{43}$/);
    expect(response.body.token).not.toBe(registered.token);
    const me = await suite.http.get('/v1/me').set(bearer(response.body.token)).expect(200);
    expect(me.body.id).toBe(registered.volunteer.id);
    await suite.http.get('/v1/me').set(bearer(registered.token)).expect(200);
    const tokens = await queryRows<{ token_hash: string }>(
      suite.database.db,
      sql`select token_hash from volunteer_tokens where volunteer_id = ${registered.volunteer.id} order by id`,
    );
    expect(tokens.map((row) => row.token_hash).sort()).toEqual(
      [sha256(registered.token), sha256(response.body.token)].sort(),
    );
  });

  it('answers a wrong password, an unknown email and a passwordless volunteer identically (401)', async () => {
    const { org, organiser } = await setupOrg();
    await register(org.slug, { name: 'Known', email: 'known@example.org', password: 'the right password' });
    await addVolunteer(organiser, { name: 'No Password', email: 'nopass@example.org' });
    const attempts = [
      { email: 'known@example.org', password: 'the wrong password' },
      { email: 'unknown@example.org', password: 'the right password' },
      { email: 'nopass@example.org', password: 'the right password' },
    ];
    const bodies: Record<string, unknown>[] = [];
    for (const attempt of attempts) {
      const response = await suite.http.post(`/v1/public/${org.slug}/sessions`).send(attempt).expect(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ code: 'invalid-credentials', status: 401 });
      bodies.push(withoutRequestSpecifics(response.body));
    }
    expect(bodies[1]).toEqual(bodies[0]);
    expect(bodies[2]).toEqual(bodies[0]);
    const tokens = await queryRows<{ n: number }>(
      suite.database.db,
      sql`select count(*)::int as n from volunteer_tokens where org_id = ${org.id}`,
    );
    expect(tokens[0]?.n).toBe(1); // the registration's only
  });

  it("does not sign in to another organisation with this one's credentials; unknown slug is 404", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    await register(a.org.slug, { name: 'Only A', email: 'onlya@example.org', password: 'password for a' });
    const wrongOrg = await suite.http
      .post(`/v1/public/${b.org.slug}/sessions`)
      .send({ email: 'onlya@example.org', password: 'password for a' })
      .expect(401);
    expect(wrongOrg.body.code).toBe('invalid-credentials');
    const unknownOrg = await suite.http
      .post('/v1/public/no-such-org-here/sessions')
      .send({ email: 'onlya@example.org', password: 'password for a' })
      .expect(404);
    expect(unknownOrg.body.code).toBe('not-found');
    const invalid = await suite.http
      .post(`/v1/public/${a.org.slug}/sessions`)
      .send({ email: 'onlya@example.org' })
      .expect(400);
    expect(invalid.body.errors[0].path).toBe('body.password');
  });

  it('limits attempts per email: the 4th for one email is 429, another email still gets its answer', async () => {
    const limited = await startTestApp(suite.database, { LOGIN_ATTEMPTS_PER_15_MINUTES: 3 });
    try {
      const org = await createOrg(limited.http);
      const signUp = await limited.http
        .post(`/v1/public/${org.slug}/volunteers`)
        .send({ name: 'Target', email: 'target@example.org', password: 'the real password' })
        .expect(201);
      const other = await limited.http
        .post(`/v1/public/${org.slug}/volunteers`)
        .send({ name: 'Other', email: 'other@example.org', password: 'other real password' })
        .expect(201);
      expect(other.body.token).toBeTruthy();
      for (let attempt = 0; attempt < 3; attempt++) {
        const response = await limited.http
          .post(`/v1/public/${org.slug}/sessions`)
          .send({ email: 'target@example.org', password: `wrong password ${attempt}` })
          .expect(401);
        expect(response.body.code).toBe('invalid-credentials');
      }
      // The 4th, even with the right password and another letter case, is refused.
      const blocked = await limited.http
        .post(`/v1/public/${org.slug}/sessions`)
        .send({ email: 'TARGET@example.org', password: 'the real password' })
        .expect(429);
      expect(blocked.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(blocked.body).toMatchObject({ code: 'rate-limited', status: 429 });
      expect(blocked.headers['retry-after']).toBeTruthy();
      const tokens = await queryRows<{ n: number }>(
        suite.database.db,
        sql`select count(*)::int as n from volunteer_tokens where volunteer_id = ${signUp.body.volunteer.id}`,
      );
      expect(tokens[0]?.n).toBe(1);
      // Another email, from the same address, still gets its own answer.
      const wrong = await limited.http
        .post(`/v1/public/${org.slug}/sessions`)
        .send({ email: 'other@example.org', password: 'not the password' })
        .expect(401);
      expect(wrong.body.code).toBe('invalid-credentials');
      const right = await limited.http
        .post(`/v1/public/${org.slug}/sessions`)
        .send({ email: 'other@example.org', password: 'other real password' })
        .expect(201);
      expect(right.body.volunteer.email).toBe('other@example.org');
    } finally {
      await limited.close();
    }
  });
});

// ── /v1/me ───────────────────────────────────────────────────────────────────────────────────

describe('GET/PATCH /v1/me, DELETE /v1/me/session', () => {
  it('reads the own profile with an ETag, without the organiser notes', async () => {
    const { organiser } = await setupOrg();
    const role = await createRole(organiser, 'Usher');
    const created = await addVolunteer(organiser, {
      name: 'Me Myself',
      email: 'me@example.org',
      phone: '555',
      birthDate: '1999-09-09',
      notes: 'Talks a lot',
    });
    await suite.http
      .put(`/v1/volunteers/${created.id}/qualifications/${role}`)
      .set(bearer(organiser))
      .expect(204);
    const token = await issueToken(organiser, created.id);
    const me = await suite.http.get('/v1/me').set(bearer(token)).expect(200);
    expect(me.headers.etag).toBeTruthy();
    expect(me.body).toEqual({
      calendarUrl: expect.stringMatching(calendarUrlPattern),
      id: created.id,
      name: 'Me Myself',
      email: 'me@example.org',
      phone: '555',
      birthDate: '1999-09-09',
      qualifications: [role],
      createdAt: created.createdAt,
      updatedAt: expect.stringMatching(/Z$/),
    });
    expect(JSON.stringify(me.body)).not.toContain('Talks a lot');
  });

  it('is for volunteer tokens only: an API key gets 403, no token 401', async () => {
    const { org, organiser } = await setupOrg();
    for (const key of [org.adminToken, organiser]) {
      const read = await suite.http.get('/v1/me').set(bearer(key)).expect(403);
      expect(read.body.code).toBe('forbidden');
      const write = await suite.http.patch('/v1/me').set(bearer(key)).send({ name: 'Key' }).expect(403);
      expect(write.body.code).toBe('forbidden');
      const signOut = await suite.http.delete('/v1/me/session').set(bearer(key)).expect(403);
      expect(signOut.body.code).toBe('forbidden');
    }
    const anonymous = await suite.http.get('/v1/me').expect(401);
    expect(anonymous.body.code).toBe('unauthenticated');
    const bogus = await suite.http
      .get('/v1/me')
      .set(bearer(`tg_vol_${'x'.repeat(43)}`))
      .expect(401);
    expect(bogus.body.code).toBe('unauthenticated');
  });

  it('updates the own profile with If-Match; stale is 412; notes cannot be sent', async () => {
    const { org, organiser } = await setupOrg();
    const registered = await register(org.slug, {
      name: 'Patch Me',
      email: 'patchme@example.org',
      password: 'patch me please',
    });
    await suite.http
      .patch(`/v1/volunteers/${registered.volunteer.id}`)
      .set(bearer(organiser))
      .send({ phone: '111', notes: 'organiser only' })
      .expect(200);
    const token = registered.token;
    const read = await suite.http.get('/v1/me').set(bearer(token)).expect(200);
    const etag = read.headers.etag as string;
    const updated = await suite.http
      .patch('/v1/me')
      .set(bearer(token))
      .set('if-match', etag)
      .send({ name: 'Patched', phone: null, birthDate: '1980-01-01' })
      .expect(200);
    expect(updated.body).toMatchObject({
      id: registered.volunteer.id,
      name: 'Patched',
      phone: null,
      birthDate: '1980-01-01',
    });
    expect(updated.body).not.toHaveProperty('notes');
    expect(updated.headers.etag).toBeTruthy();
    expect(updated.headers.etag).not.toBe(etag);
    expect(await volunteerRow(registered.volunteer.id)).toMatchObject({
      name: 'Patched',
      phone: null,
      birth_date: '1980-01-01',
      notes: 'organiser only',
    });

    const before = await volunteerRow(registered.volunteer.id);
    const stale = await suite.http
      .patch('/v1/me')
      .set(bearer(token))
      .set('if-match', etag)
      .send({ name: 'Too Late' })
      .expect(412);
    expect(stale.body.code).toBe('precondition-failed');
    const notes = await suite.http.patch('/v1/me').set(bearer(token)).send({ notes: 'mine now' }).expect(400);
    expect(notes.body.code).toBe('validation-failed');
    expect(await volunteerRow(registered.volunteer.id)).toEqual(before);

    // The organiser sees the new version too.
    const asOrganiser = await suite.http
      .get(`/v1/volunteers/${registered.volunteer.id}`)
      .set(bearer(organiser))
      .expect(200);
    expect(asOrganiser.headers.etag).toBe(updated.headers.etag);
  });

  it('keeps emails unique when a volunteer changes theirs (409 email-taken)', async () => {
    const { org, organiser } = await setupOrg();
    await addVolunteer(organiser, { name: 'Taken', email: 'taken@example.org' });
    const registered = await register(org.slug, {
      name: 'Changer',
      email: 'changer@example.org',
      password: 'change my email',
    });
    const response = await suite.http
      .patch('/v1/me')
      .set(bearer(registered.token))
      .send({ email: 'Taken@example.org' })
      .expect(409);
    expect(response.body.code).toBe('email-taken');
    expect((await volunteerRow(registered.volunteer.id))?.email).toBe('changer@example.org');
  });

  it('signs out: 204, that token is 401 at once, another token of the volunteer still works', async () => {
    const { org } = await setupOrg();
    const registered = await register(org.slug, {
      name: 'Two Devices',
      email: 'two@example.org',
      password: 'two devices here',
    });
    const second = await suite.http
      .post(`/v1/public/${org.slug}/sessions`)
      .send({ email: 'two@example.org', password: 'two devices here' })
      .expect(201);
    const signOut = await suite.http.delete('/v1/me/session').set(bearer(registered.token)).expect(204);
    expect(signOut.text).toBe('');
    const revoked = await suite.http.get('/v1/me').set(bearer(registered.token)).expect(401);
    expect(revoked.body.code).toBe('unauthenticated');
    await suite.http.delete('/v1/me/session').set(bearer(registered.token)).expect(401);
    const stillThere = await suite.http.get('/v1/me').set(bearer(second.body.token)).expect(200);
    expect(stillThere.body.id).toBe(registered.volunteer.id);
    const rows = await queryRows<{ token_hash: string; revoked: boolean }>(
      suite.database.db,
      sql`select token_hash, revoked_at is not null as revoked from volunteer_tokens
          where volunteer_id = ${registered.volunteer.id}`,
    );
    const byHash = new Map(rows.map((row) => [row.token_hash, row.revoked]));
    expect(byHash.get(sha256(registered.token))).toBe(true);
    expect(byHash.get(sha256(second.body.token))).toBe(false);
  });
});

// ── Tenant isolation ─────────────────────────────────────────────────────────────────────────

describe('tenant isolation', () => {
  it("org B's keys get 404 for every id-route of org A's volunteers, and A's rows stay unchanged", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const aRole = await createRole(a.organiser, 'Secret Role');
    const bRole = await createRole(b.organiser, 'B Role');
    const aVolunteer = await addVolunteer(a.organiser, {
      name: 'Alice A',
      email: 'alice@example.org',
      phone: '1',
      notes: 'A only',
    });
    await suite.http
      .put(`/v1/volunteers/${aVolunteer.id}/qualifications/${aRole}`)
      .set(bearer(a.organiser))
      .expect(204);
    const aToken = await issueToken(a.organiser, aVolunteer.id);
    const bVolunteer = await addVolunteer(b.organiser, { name: 'Bob B', email: 'bob@example.org' });
    const before = await volunteerSnapshot(a.org.id, aVolunteer.id);

    for (const key of [b.organiser, b.org.adminToken]) {
      const requests = [
        suite.http.get(`/v1/volunteers/${aVolunteer.id}`).set(bearer(key)),
        suite.http.patch(`/v1/volunteers/${aVolunteer.id}`).set(bearer(key)).send({ name: 'Hijacked' }),
        suite.http.post(`/v1/volunteers/${aVolunteer.id}/tokens`).set(bearer(key)).send({}),
        suite.http.put(`/v1/volunteers/${aVolunteer.id}/qualifications/${bRole}`).set(bearer(key)),
        suite.http.put(`/v1/volunteers/${aVolunteer.id}/qualifications/${aRole}`).set(bearer(key)),
        suite.http.put(`/v1/volunteers/${bVolunteer.id}/qualifications/${aRole}`).set(bearer(key)),
        suite.http.delete(`/v1/volunteers/${aVolunteer.id}/qualifications/${aRole}`).set(bearer(key)),
        suite.http.delete(`/v1/volunteers/${aVolunteer.id}`).set(bearer(key)),
      ];
      for (const pending of requests) {
        const response = await pending.expect(404);
        expect(response.body.code).toBe('not-found');
        expect(JSON.stringify(response.body)).not.toContain('Alice');
      }
      const list = await listAll(key);
      expect(ids(list)).toEqual([bVolunteer.id]);
      expect(await listAll(key, { q: 'alice' })).toEqual([]);
      expect(await listAll(key, { qualification: aRole })).toEqual([]);
    }
    // A's volunteer is exactly as it was, and still works for A.
    expect(await volunteerSnapshot(a.org.id, aVolunteer.id)).toBe(before);
    const stillThere = await suite.http
      .get(`/v1/volunteers/${aVolunteer.id}`)
      .set(bearer(a.organiser))
      .expect(200);
    expect(stillThere.body).toMatchObject({ name: 'Alice A', qualifications: [aRole] });
    await suite.http.get('/v1/me').set(bearer(aToken)).expect(200);
    // B's volunteer gained nothing from A's role.
    const bRead = await suite.http
      .get(`/v1/volunteers/${bVolunteer.id}`)
      .set(bearer(b.organiser))
      .expect(200);
    expect(bRead.body.qualifications).toEqual([]);
  });

  it("a volunteer token of org A sees only its own profile and cannot reach org B's volunteers", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const aVolunteer = await register(a.org.slug, {
      name: 'Vol A',
      email: 'vola@example.org',
      password: 'password of a',
    });
    const bVolunteer = await addVolunteer(b.organiser, { name: 'Vol B', email: 'volb@example.org' });
    const me = await suite.http.get('/v1/me').set(bearer(aVolunteer.token)).expect(200);
    expect(me.body.id).toBe(aVolunteer.volunteer.id);
    await suite.http.get(`/v1/volunteers/${bVolunteer.id}`).set(bearer(aVolunteer.token)).expect(403);
    expect((await volunteerRow(bVolunteer.id))?.name).toBe('Vol B');
  });
});
