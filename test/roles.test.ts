import { sql } from 'drizzle-orm';
import type { Response } from 'supertest';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { bearer, type CreatedOrg, createKey, createOrg } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp();

// ── Helpers ──────────────────────────────────────────────────────────────────────────────────

interface Role {
  id: string;
  name: string;
  description: string | null;
  restricted: boolean;
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

async function addRole(token: string, body: Record<string, unknown>): Promise<Role> {
  const response = await suite.http.post('/v1/roles').set(bearer(token)).send(body).expect(201);
  return response.body as Role;
}

async function addVolunteer(token: string, name: string, email: string): Promise<string> {
  const response = await suite.http
    .post('/v1/volunteers')
    .set(bearer(token))
    .send({ name, email })
    .expect(201);
  return response.body.id as string;
}

async function readVolunteer(token: string, id: string) {
  const response = await suite.http.get(`/v1/volunteers/${id}`).set(bearer(token)).expect(200);
  return {
    etag: response.headers.etag as string,
    qualifications: response.body.qualifications as string[],
    updatedAt: response.body.updatedAt as string,
  };
}

async function listAllRoles(token: string): Promise<Role[]> {
  const seen: Role[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const response: Response = await suite.http
      .get('/v1/roles')
      .query(cursor ? { cursor } : {})
      .set(bearer(token))
      .expect(200);
    seen.push(...(response.body.data as Role[]));
    cursor = response.body.nextCursor;
    pages += 1;
  } while (cursor && pages < 100);
  return seen;
}

type RoleRow = { name: string; description: string | null; restricted: boolean; version: number };

async function roleRow(id: string): Promise<RoleRow | undefined> {
  const [row] = await queryRows<RoleRow>(
    suite.database.db,
    sql`select name, description, restricted, version from roles where id = ${id}`,
  );
  return row;
}

async function heldRoles(volunteerId: string): Promise<string[]> {
  const rows = await queryRows<{ role_id: string }>(
    suite.database.db,
    sql`select role_id from qualifications where volunteer_id = ${volunteerId} order by role_id`,
  );
  return rows.map((row) => row.role_id);
}

const ids = (list: { id: string }[]) => list.map((item) => item.id);

// ── POST /v1/roles ───────────────────────────────────────────────────────────────────────────

describe('POST /v1/roles', () => {
  it('creates a role: 201, Location, ETag, the whole resource, the row and its outbox event', async () => {
    const { org, organiser } = await setupOrg();
    const response = await suite.http
      .post('/v1/roles')
      .set(bearer(organiser))
      .send({ name: '  First aid  ', description: 'Holds a certificate.', restricted: true })
      .expect(201);
    expect(response.headers.location).toBe(`/v1/roles/${response.body.id}`);
    expect(response.headers.etag).toMatch(/^(W\/)?"[^"]+"$/);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      name: 'First aid',
      description: 'Holds a certificate.',
      restricted: true,
      createdAt: expect.stringMatching(/Z$/),
      updatedAt: expect.stringMatching(/Z$/),
    });
    expect(await roleRow(response.body.id)).toMatchObject({
      name: 'First aid',
      description: 'Holds a certificate.',
      restricted: true,
    });
    const events = await queryRows<{ type: string }>(
      suite.database.db,
      sql`select type from outbox where org_id = ${org.id} and resource_id = ${response.body.id}`,
    );
    expect(events.map((event) => event.type)).toEqual(['role.created']);
    const read = await suite.http.get(`/v1/roles/${response.body.id}`).set(bearer(organiser)).expect(200);
    expect(read.body).toEqual(response.body);
    expect(read.headers.etag).toBe(response.headers.etag);
  });

  it('has a null description when none is given', async () => {
    const { organiser } = await setupOrg();
    const role = await addRole(organiser, { name: 'Kitchen', restricted: false });
    expect(role).toMatchObject({ name: 'Kitchen', description: null, restricted: false });
  });

  it('rejects invalid bodies with 400 validation-failed and the path of each', async () => {
    const { org, organiser } = await setupOrg();
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'No flag' }, 'body.restricted'],
      [{ restricted: false }, 'body.name'],
      [{ name: '', restricted: false }, 'body.name'],
      [{ name: '   ', restricted: false }, 'body.name'],
      [{ name: 'x'.repeat(101), restricted: false }, 'body.name'],
      [{ name: 'Typed', restricted: 'yes' }, 'body.restricted'],
      [{ name: 'Long', restricted: false, description: 'x'.repeat(2001) }, 'body.description'],
    ];
    for (const [body, path] of cases) {
      const response = await suite.http.post('/v1/roles').set(bearer(organiser)).send(body).expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.code).toBe('validation-failed');
      expect(response.body.errors.map((error: { path: string }) => error.path)).toContain(path);
    }
    const unknown = await suite.http
      .post('/v1/roles')
      .set(bearer(organiser))
      .send({ name: 'Extra', restricted: false, colour: 'red' })
      .expect(400);
    expect(unknown.body.code).toBe('validation-failed');
    const rows = await queryRows<{ n: number }>(
      suite.database.db,
      sql`select count(*)::int as n from roles where org_id = ${org.id}`,
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('keeps names unique per organisation whatever their case (409 name-taken), not across organisations', async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const first = await addRole(a.organiser, { name: 'Driver', restricted: false });
    const duplicate = await suite.http
      .post('/v1/roles')
      .set(bearer(a.organiser))
      .send({ name: 'DRIVER', restricted: true })
      .expect(409);
    expect(duplicate.body).toMatchObject({ code: 'name-taken', status: 409, type: '/problems/name-taken' });
    expect(JSON.stringify(duplicate.body)).not.toMatch(/constraint|duplicate key|roles_name/i);
    expect(ids(await listAllRoles(a.organiser))).toEqual([first.id]);
    const inB = await addRole(b.organiser, { name: 'driver', restricted: false });
    expect(inB.id).not.toBe(first.id);
  });

  it('is for organisers: viewers and volunteer tokens get 403, no token 401', async () => {
    const { org, organiser, viewer } = await setupOrg();
    await addRole(org.adminToken, { name: 'By Admin', restricted: false });
    const asViewer = await suite.http
      .post('/v1/roles')
      .set(bearer(viewer))
      .send({ name: 'Nope', restricted: false })
      .expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    const volunteerId = await addVolunteer(organiser, 'Vol', 'vol@example.org');
    const token = await suite.http
      .post(`/v1/volunteers/${volunteerId}/tokens`)
      .set(bearer(organiser))
      .send({})
      .expect(201);
    const asVolunteer = await suite.http
      .post('/v1/roles')
      .set(bearer(token.body.token))
      .send({ name: 'Nope', restricted: false })
      .expect(403);
    expect(asVolunteer.body.code).toBe('forbidden');
    await suite.http.post('/v1/roles').send({ name: 'Nope', restricted: false }).expect(401);
    const rows = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from roles where org_id = ${org.id} and name = 'Nope'`,
    );
    expect(rows).toEqual([]);
  });
});

// ── GET /v1/roles ────────────────────────────────────────────────────────────────────────────

describe('GET /v1/roles', () => {
  it('orders by name then id and pages with limit=2 without duplicates or gaps; viewers may read', async () => {
    const { organiser, viewer } = await setupOrg();
    const created: Role[] = [];
    for (const name of ['Medic', 'Bar', 'Kitchen', 'Cashier', 'Driver']) {
      created.push(await addRole(organiser, { name, restricted: name === 'Medic' }));
    }
    const expected = [...created].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    const all = await suite.http.get('/v1/roles').set(bearer(viewer)).expect(200);
    expect(all.body).toEqual({ data: expected, nextCursor: null });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: Response = await suite.http
        .get('/v1/roles')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(bearer(viewer))
        .expect(200);
      expect(response.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...ids(response.body.data));
      cursor = response.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(pages).toBe(3);
    expect(seen).toEqual(ids(expected));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects limits outside 1–200 and garbage cursors', async () => {
    const { organiser } = await setupOrg();
    await addRole(organiser, { name: 'Only', restricted: false });
    for (const limit of ['0', '201', 'x']) {
      const response = await suite.http.get('/v1/roles').query({ limit }).set(bearer(organiser)).expect(400);
      expect(response.body.code).toBe('validation-failed');
    }
    for (const cursor of ['garbage', Buffer.from('["Only"]').toString('base64url')]) {
      const response = await suite.http.get('/v1/roles').query({ cursor }).set(bearer(organiser)).expect(400);
      expect(response.body.code).toBe('invalid-cursor');
    }
    const one = await suite.http.get('/v1/roles').query({ limit: 1 }).set(bearer(organiser)).expect(200);
    expect(one.body.data).toHaveLength(1);
  });
});

// ── GET/PATCH/DELETE /v1/roles/{id} ──────────────────────────────────────────────────────────

describe('GET /v1/roles/{id}', () => {
  it('reads a role with its ETag for viewers; 404 unknown, 400 malformed', async () => {
    const { viewer, organiser } = await setupOrg();
    const role = await addRole(organiser, { name: 'Usher', restricted: false });
    const read = await suite.http.get(`/v1/roles/${role.id}`).set(bearer(viewer)).expect(200);
    expect(read.body).toEqual(role);
    expect(read.headers.etag).toBeTruthy();
    const unknown = await suite.http.get(`/v1/roles/${uuidv7()}`).set(bearer(viewer)).expect(404);
    expect(unknown.body.code).toBe('not-found');
    const malformed = await suite.http.get('/v1/roles/kitchen').set(bearer(viewer)).expect(400);
    expect(malformed.body.errors[0].path).toBe('params.id');
  });
});

describe('PATCH /v1/roles/{id}', () => {
  it('updates with If-Match: 200, a new ETag; null clears the description', async () => {
    const { organiser } = await setupOrg();
    const created = await suite.http
      .post('/v1/roles')
      .set(bearer(organiser))
      .send({ name: 'Medic', description: 'First aiders', restricted: false })
      .expect(201);
    const etag = created.headers.etag as string;
    const updated = await suite.http
      .patch(`/v1/roles/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', etag)
      .send({ name: 'Paramedic', description: null, restricted: true })
      .expect(200);
    expect(updated.body).toEqual({
      ...created.body,
      name: 'Paramedic',
      description: null,
      restricted: true,
      updatedAt: expect.stringMatching(/Z$/),
    });
    expect(updated.headers.etag).toBeTruthy();
    expect(updated.headers.etag).not.toBe(etag);
    expect(await roleRow(created.body.id)).toMatchObject({
      name: 'Paramedic',
      description: null,
      restricted: true,
    });
    const read = await suite.http.get(`/v1/roles/${created.body.id}`).set(bearer(organiser)).expect(200);
    expect(read.headers.etag).toBe(updated.headers.etag);
    expect(read.body).toEqual(updated.body);
  });

  it('answers a stale If-Match with 412 precondition-failed and changes nothing', async () => {
    const { organiser } = await setupOrg();
    const created = await suite.http
      .post('/v1/roles')
      .set(bearer(organiser))
      .send({ name: 'Bar', restricted: false })
      .expect(201);
    const first = created.headers.etag as string;
    await suite.http
      .patch(`/v1/roles/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', first)
      .send({ description: 'Drinks' })
      .expect(200);
    const before = await roleRow(created.body.id);
    const stale = await suite.http
      .patch(`/v1/roles/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', first)
      .send({ restricted: true })
      .expect(412);
    expect(stale.body).toMatchObject({ code: 'precondition-failed', status: 412 });
    const emptyStale = await suite.http
      .patch(`/v1/roles/${created.body.id}`)
      .set(bearer(organiser))
      .set('if-match', first)
      .send({})
      .expect(412);
    expect(emptyStale.body.code).toBe('precondition-failed');
    expect(await roleRow(created.body.id)).toEqual(before);
  });

  it('keeps names unique on rename (409 name-taken), validates, 404 unknown, 403 viewer', async () => {
    const { organiser, viewer } = await setupOrg();
    await addRole(organiser, { name: 'Kitchen', restricted: false });
    const other = await addRole(organiser, { name: 'Cleaning', restricted: false });
    const taken = await suite.http
      .patch(`/v1/roles/${other.id}`)
      .set(bearer(organiser))
      .send({ name: 'kitchen' })
      .expect(409);
    expect(taken.body.code).toBe('name-taken');
    const invalid = await suite.http
      .patch(`/v1/roles/${other.id}`)
      .set(bearer(organiser))
      .send({ restricted: null })
      .expect(400);
    expect(invalid.body.errors[0].path).toBe('body.restricted');
    const unknownField = await suite.http
      .patch(`/v1/roles/${other.id}`)
      .set(bearer(organiser))
      .send({ id: uuidv7() })
      .expect(400);
    expect(unknownField.body.code).toBe('validation-failed');
    const asViewer = await suite.http
      .patch(`/v1/roles/${other.id}`)
      .set(bearer(viewer))
      .send({ name: 'Viewer was here' })
      .expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    const unknown = await suite.http
      .patch(`/v1/roles/${uuidv7()}`)
      .set(bearer(organiser))
      .send({ name: 'Ghost' })
      .expect(404);
    expect(unknown.body.code).toBe('not-found');
    expect(await roleRow(other.id)).toMatchObject({ name: 'Cleaning', restricted: false, version: 1 });
    // Its own name in another case is fine.
    const own = await suite.http
      .patch(`/v1/roles/${other.id}`)
      .set(bearer(organiser))
      .send({ name: 'CLEANING' })
      .expect(200);
    expect(own.body.name).toBe('CLEANING');
  });
});

async function createEventWithShift(token: string, roleId: string | undefined) {
  const event = await suite.http
    .post('/v1/events')
    .set(bearer(token))
    .send({ title: 'Role test event' })
    .expect(201);
  const shift = await suite.http
    .post(`/v1/events/${event.body.id}/shifts`)
    .set(bearer(token))
    .send({
      startsAt: '2040-03-01T09:00:00+01:00',
      endsAt: '2040-03-01T13:00:00+01:00',
      capacity: 4,
      ...(roleId ? { roleId } : {}),
    })
    .expect(201);
  return { eventId: event.body.id as string, shiftId: shift.body.id as string };
}

describe('DELETE /v1/roles/{id}', () => {
  it('deletes an unused role: 204, then 404 and absent from the list; again is 404', async () => {
    const { organiser } = await setupOrg();
    const keep = await addRole(organiser, { name: 'Keep', restricted: false });
    const role = await addRole(organiser, { name: 'Remove', restricted: false });
    const response = await suite.http.delete(`/v1/roles/${role.id}`).set(bearer(organiser)).expect(204);
    expect(response.text).toBe('');
    await suite.http.get(`/v1/roles/${role.id}`).set(bearer(organiser)).expect(404);
    expect(ids(await listAllRoles(organiser))).toEqual([keep.id]);
    expect(await roleRow(role.id)).toBeUndefined();
    const again = await suite.http.delete(`/v1/roles/${role.id}`).set(bearer(organiser)).expect(404);
    expect(again.body.code).toBe('not-found');
    // The name is free again.
    await addRole(organiser, { name: 'remove', restricted: true });
  });

  it('refuses a role a shift uses (409 invalid-state) and keeps it; a roleless shift blocks no role', async () => {
    const { organiser } = await setupOrg();
    const role = await addRole(organiser, { name: 'Driver', restricted: false });
    const { shiftId } = await createEventWithShift(organiser, role.id);
    const shift = await suite.http.get(`/v1/shifts/${shiftId}`).set(bearer(organiser)).expect(200);
    expect(shift.body.roleId).toBe(role.id);
    const refused = await suite.http.delete(`/v1/roles/${role.id}`).set(bearer(organiser)).expect(409);
    expect(refused.body).toMatchObject({ code: 'invalid-state', status: 409 });
    expect(await roleRow(role.id)).toMatchObject({ name: 'Driver' });
    await suite.http.get(`/v1/roles/${role.id}`).set(bearer(organiser)).expect(200);
    // A shift without a role does not hold another role.
    const free = await addRole(organiser, { name: 'Free', restricted: false });
    await createEventWithShift(organiser, undefined);
    await suite.http.delete(`/v1/roles/${free.id}`).set(bearer(organiser)).expect(204);
  });

  it('takes its qualifications with it and moves their volunteers’ ETag', async () => {
    const { organiser } = await setupOrg();
    const role = await addRole(organiser, { name: 'Lifeguard', restricted: true });
    const other = await addRole(organiser, { name: 'Cook', restricted: false });
    const volunteerId = await addVolunteer(organiser, 'Holder', 'holder@example.org');
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(204);
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${other.id}`)
      .set(bearer(organiser))
      .expect(204);
    const before = await readVolunteer(organiser, volunteerId);
    expect(before.qualifications.sort()).toEqual([role.id, other.id].sort());
    await suite.http.delete(`/v1/roles/${role.id}`).set(bearer(organiser)).expect(204);
    expect(await heldRoles(volunteerId)).toEqual([other.id]);
    const after = await readVolunteer(organiser, volunteerId);
    expect(after.qualifications).toEqual([other.id]);
    // The representation changed, so its ETag must too (a sync by updatedSince must see it).
    expect(after.etag).not.toBe(before.etag);
    expect(new Date(after.updatedAt).getTime()).toBeGreaterThan(new Date(before.updatedAt).getTime());
    const synced = await suite.http
      .get('/v1/volunteers')
      .query({ updatedSince: after.updatedAt })
      .set(bearer(organiser))
      .expect(200);
    expect(ids(synced.body.data)).toEqual([volunteerId]);
  });

  it('is for organisers: viewers get 403 and the role stays', async () => {
    const { organiser, viewer } = await setupOrg();
    const role = await addRole(organiser, { name: 'Stays', restricted: false });
    const response = await suite.http.delete(`/v1/roles/${role.id}`).set(bearer(viewer)).expect(403);
    expect(response.body.code).toBe('forbidden');
    expect(await roleRow(role.id)).toMatchObject({ name: 'Stays' });
  });
});

// ── Qualifications ───────────────────────────────────────────────────────────────────────────

describe('PUT/DELETE /v1/volunteers/{id}/qualifications/{roleId}', () => {
  it('grants (204, idempotent), shows it on the volunteer and moves its ETag; revokes (204, then 404)', async () => {
    const { org, organiser } = await setupOrg();
    const role = await addRole(organiser, { name: 'Forklift', restricted: true });
    const volunteerId = await addVolunteer(organiser, 'Fran', 'fran@example.org');
    const initial = await readVolunteer(organiser, volunteerId);
    expect(initial.qualifications).toEqual([]);

    const granted = await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(204);
    expect(granted.text).toBe('');
    const afterGrant = await readVolunteer(organiser, volunteerId);
    expect(afterGrant.qualifications).toEqual([role.id]);
    expect(afterGrant.etag).not.toBe(initial.etag);
    expect(new Date(afterGrant.updatedAt).getTime()).toBeGreaterThan(new Date(initial.updatedAt).getTime());
    const [moved] = await queryRows<{ moved: boolean }>(
      suite.database.db,
      sql`select updated_at > created_at as moved from volunteers where id = ${volunteerId}`,
    );
    expect(moved?.moved).toBe(true);
    expect(await heldRoles(volunteerId)).toEqual([role.id]);

    // Granting again changes nothing.
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(204);
    const afterSecondGrant = await readVolunteer(organiser, volunteerId);
    expect(afterSecondGrant).toEqual(afterGrant);
    expect(await heldRoles(volunteerId)).toEqual([role.id]);

    const events = await queryRows<{ type: string }>(
      suite.database.db,
      sql`select type from outbox where org_id = ${org.id} and resource_id = ${volunteerId} order by created_at, id`,
    );
    expect(events.map((event) => event.type).filter((type) => type.startsWith('qualification.'))).toEqual([
      'qualification.granted',
    ]);

    const revoked = await suite.http
      .delete(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(204);
    expect(revoked.text).toBe('');
    const afterRevoke = await readVolunteer(organiser, volunteerId);
    expect(afterRevoke.qualifications).toEqual([]);
    expect(afterRevoke.etag).not.toBe(afterGrant.etag);
    expect(await heldRoles(volunteerId)).toEqual([]);

    const again = await suite.http
      .delete(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(404);
    expect(again.body.code).toBe('not-found');
    expect((await readVolunteer(organiser, volunteerId)).etag).toBe(afterRevoke.etag);
  });

  it('shows up in the volunteer list, in /v1/me and in the qualification filter', async () => {
    const { organiser } = await setupOrg();
    const a = await addRole(organiser, { name: 'Alpha', restricted: false });
    const b = await addRole(organiser, { name: 'Beta', restricted: false });
    const volunteerId = await addVolunteer(organiser, 'Quinn', 'quinn@example.org');
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${b.id}`)
      .set(bearer(organiser))
      .expect(204);
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${a.id}`)
      .set(bearer(organiser))
      .expect(204);
    const list = await suite.http.get('/v1/volunteers').set(bearer(organiser)).expect(200);
    expect(list.body.data[0].qualifications.sort()).toEqual([a.id, b.id].sort());
    const token = await suite.http
      .post(`/v1/volunteers/${volunteerId}/tokens`)
      .set(bearer(organiser))
      .send({})
      .expect(201);
    const me = await suite.http.get('/v1/me').set(bearer(token.body.token)).expect(200);
    expect(me.body.qualifications.sort()).toEqual([a.id, b.id].sort());
    const filtered = await suite.http
      .get('/v1/volunteers')
      .query({ qualification: a.id })
      .set(bearer(organiser))
      .expect(200);
    expect(ids(filtered.body.data)).toEqual([volunteerId]);
  });

  it('is 404 for an unknown role or volunteer, 400 for malformed ids, 403 for viewers', async () => {
    const { organiser, viewer } = await setupOrg();
    const role = await addRole(organiser, { name: 'Real', restricted: false });
    const volunteerId = await addVolunteer(organiser, 'Real Person', 'real@example.org');
    const unknownRole = await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${uuidv7()}`)
      .set(bearer(organiser))
      .expect(404);
    expect(unknownRole.body.code).toBe('not-found');
    const unknownVolunteer = await suite.http
      .put(`/v1/volunteers/${uuidv7()}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(404);
    expect(unknownVolunteer.body.code).toBe('not-found');
    const revokeUnknownVolunteer = await suite.http
      .delete(`/v1/volunteers/${uuidv7()}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(404);
    expect(revokeUnknownVolunteer.body.code).toBe('not-found');
    const revokeUnknownRole = await suite.http
      .delete(`/v1/volunteers/${volunteerId}/qualifications/${uuidv7()}`)
      .set(bearer(organiser))
      .expect(404);
    expect(revokeUnknownRole.body.code).toBe('not-found');
    const malformed = await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/first-aid`)
      .set(bearer(organiser))
      .expect(400);
    expect(malformed.body.errors[0].path).toBe('params.roleId');
    const asViewer = await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(viewer))
      .expect(403);
    expect(asViewer.body.code).toBe('forbidden');
    expect(await heldRoles(volunteerId)).toEqual([]);
    await suite.http
      .put(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(organiser))
      .expect(204);
    const viewerRevoke = await suite.http
      .delete(`/v1/volunteers/${volunteerId}/qualifications/${role.id}`)
      .set(bearer(viewer))
      .expect(403);
    expect(viewerRevoke.body.code).toBe('forbidden');
    expect(await heldRoles(volunteerId)).toEqual([role.id]);
  });
});

// ── Tenant isolation ─────────────────────────────────────────────────────────────────────────

describe('tenant isolation', () => {
  it("org B's keys get 404 for org A's roles, and A's rows stay unchanged", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const aRole = await addRole(a.organiser, { name: 'Secret', description: 'A only', restricted: true });
    const aVolunteer = await addVolunteer(a.organiser, 'Alice', 'alice@example.org');
    await suite.http
      .put(`/v1/volunteers/${aVolunteer}/qualifications/${aRole.id}`)
      .set(bearer(a.organiser))
      .expect(204);
    const bRole = await addRole(b.organiser, { name: 'Open', restricted: false });
    const snapshot = async () =>
      JSON.stringify({
        role: await queryRows(suite.database.db, sql`select * from roles where id = ${aRole.id}`),
        held: await queryRows(
          suite.database.db,
          sql`select * from qualifications where role_id = ${aRole.id} order by volunteer_id`,
        ),
      });
    const before = await snapshot();

    for (const key of [b.viewer, b.organiser, b.org.adminToken]) {
      const read = await suite.http.get(`/v1/roles/${aRole.id}`).set(bearer(key)).expect(404);
      expect(read.body.code).toBe('not-found');
      expect(JSON.stringify(read.body)).not.toContain('Secret');
      const list = await listAllRoles(key);
      expect(ids(list)).toEqual([bRole.id]);
    }
    for (const key of [b.organiser, b.org.adminToken]) {
      const patch = await suite.http
        .patch(`/v1/roles/${aRole.id}`)
        .set(bearer(key))
        .send({ name: 'Hijacked', restricted: false })
        .expect(404);
      expect(patch.body.code).toBe('not-found');
      const remove = await suite.http.delete(`/v1/roles/${aRole.id}`).set(bearer(key)).expect(404);
      expect(remove.body.code).toBe('not-found');
      const revoke = await suite.http
        .delete(`/v1/volunteers/${aVolunteer}/qualifications/${aRole.id}`)
        .set(bearer(key))
        .expect(404);
      expect(revoke.body.code).toBe('not-found');
      // B may create a role with A's name: names are unique per organisation only.
    }
    await addRole(b.organiser, { name: 'Secret', restricted: false });
    expect(await snapshot()).toBe(before);
    const stillThere = await suite.http.get(`/v1/roles/${aRole.id}`).set(bearer(a.viewer)).expect(200);
    expect(stillThere.body).toEqual(aRole);
  });

  it("org B cannot create a shift with org A's role", async () => {
    const a = await setupOrg();
    const b = await setupOrg();
    const aRole = await addRole(a.organiser, { name: 'Foreign', restricted: false });
    const event = await suite.http
      .post('/v1/events')
      .set(bearer(b.organiser))
      .send({ title: 'B event' })
      .expect(201);
    const response = await suite.http
      .post(`/v1/events/${event.body.id}/shifts`)
      .set(bearer(b.organiser))
      .send({
        startsAt: '2040-03-01T09:00:00+01:00',
        endsAt: '2040-03-01T13:00:00+01:00',
        capacity: 2,
        roleId: aRole.id,
      });
    expect([400, 404]).toContain(response.status);
    const shifts = await queryRows<{ id: string }>(
      suite.database.db,
      sql`select id from shifts where role_id = ${aRole.id}`,
    );
    expect(shifts).toEqual([]);
    // A can still delete its role: no shift of any organisation uses it.
    await suite.http.delete(`/v1/roles/${aRole.id}`).set(bearer(a.organiser)).expect(204);
  });
});
