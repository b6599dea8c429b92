import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createKey, createOrg, startTestApp, type TestApp, uniqueSlug } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp();

const validBody = () => {
  const slug = uniqueSlug('food');
  return {
    name: 'Riverside Food Bank',
    slug,
    timezone: 'Europe/Berlin',
    contactEmail: `${slug}@example.org`,
  };
};

describe('POST /v1/organizations', () => {
  it('creates an organisation with an admin key shown once, and Location', async () => {
    const body = validBody();
    const response = await suite.http.post('/v1/organizations').send(body).expect(201);
    expect(response.headers.location).toBe('/v1/organization');
    expect(response.body.organization).toMatchObject({
      name: body.name,
      slug: body.slug,
      timezone: 'Europe/Berlin',
      contactEmail: body.contactEmail,
    });
    expect(response.body.organization.createdAt).toMatch(/Z$/);
    expect(response.body.apiKey).toMatchObject({ role: 'admin', name: expect.any(String) });
    expect(response.body.apiKey.token).toMatch(/^tg_key_[A-Za-z0-9_-]{43}$/);

    const me = await suite.http.get('/v1/organization').set(bearer(response.body.apiKey.token)).expect(200);
    expect(me.body).toEqual(response.body.organization);
    const list = await suite.http.get('/v1/api-keys').set(bearer(response.body.apiKey.token)).expect(200);
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0]).not.toHaveProperty('token');
  });

  it('canonicalises the time zone and rejects unknown zones', async () => {
    const created = await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), timezone: 'america/new_york' })
      .expect(201);
    expect(created.body.organization.timezone).toBe('America/New_York');
    const rejected = await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), timezone: 'Mars/Olympus' })
      .expect(400);
    expect(rejected.body.errors).toEqual([
      { path: 'body.timezone', message: expect.stringContaining('IANA') },
    ]);
  });

  it.each([
    ['too short', 'ab'],
    ['uppercase', 'Riverside'],
    ['leading hyphen', '-riverside'],
    ['trailing hyphen', 'riverside-'],
    ['too long', 'a'.repeat(65)],
    ['underscore', 'river_side'],
  ])('rejects a slug that is %s', async (_, slug) => {
    const response = await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), slug })
      .expect(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({
      code: 'validation-failed',
      type: '/problems/validation-failed',
      status: 400,
    });
    expect(response.body.errors[0].path).toBe('body.slug');
  });

  it('accepts slugs at the length bounds', async () => {
    await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), slug: `a${uniqueSlug('b').replaceAll('-', '').slice(0, 1)}c` })
      .expect(201);
    const long = `x${uniqueSlug('y').replaceAll('-', '')}`.padEnd(64, 'z').slice(0, 64);
    await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), slug: long })
      .expect(201);
  });

  it('answers 409 slug-taken for a duplicate slug', async () => {
    const body = validBody();
    await suite.http.post('/v1/organizations').send(body).expect(201);
    const response = await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), slug: body.slug })
      .expect(409);
    expect(response.body.code).toBe('slug-taken');
  });

  it('rejects unknown fields and a bad email', async () => {
    const unknown = await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), plan: 'gold' })
      .expect(400);
    expect(unknown.body.code).toBe('validation-failed');
    expect(JSON.stringify(unknown.body.errors)).toContain('plan');
    const email = await suite.http
      .post('/v1/organizations')
      .send({ ...validBody(), contactEmail: 'nope' })
      .expect(400);
    expect(email.body.errors[0].path).toBe('body.contactEmail');
  });
});

describe('POST /v1/organizations with ADMIN_TOKEN', () => {
  const adminToken = 'platform-admin-token-0123456789';
  let guarded: TestApp;
  beforeAll(async () => {
    guarded = await startTestApp(suite.database, { ADMIN_TOKEN: adminToken });
  });
  afterAll(() => guarded.close());

  it('requires the admin token', async () => {
    const anonymous = await guarded.http.post('/v1/organizations').send(validBody()).expect(401);
    expect(anonymous.body.code).toBe('unauthenticated');
    const wrong = await guarded.http
      .post('/v1/organizations')
      .set(bearer('not-the-admin-token-at-all'))
      .send(validBody())
      .expect(401);
    expect(wrong.body.code).toBe('unauthenticated');
    await guarded.http.post('/v1/organizations').set(bearer(adminToken)).send(validBody()).expect(201);
  });

  it('does not accept an organisation key in place of the admin token', async () => {
    const org = await createOrg(guarded.http, bearer(adminToken));
    const response = await guarded.http
      .post('/v1/organizations')
      .set(bearer(org.adminToken))
      .send(validBody())
      .expect(401);
    expect(response.body.code).toBe('unauthenticated');
  });
});

describe('GET and PATCH /v1/organization', () => {
  it('returns the caller organisation with an ETag, to every key role', async () => {
    const org = await createOrg(suite.http);
    const viewer = await createKey(suite.http, org.adminToken, 'viewer');
    const response = await suite.http.get('/v1/organization').set(bearer(viewer.token)).expect(200);
    expect(response.body.id).toBe(org.id);
    expect(response.headers.etag).toBe('"v1"');
  });

  it('updates with If-Match and refuses a stale ETag with 412', async () => {
    const org = await createOrg(suite.http);
    const first = await suite.http.get('/v1/organization').set(bearer(org.adminToken)).expect(200);
    const updated = await suite.http
      .patch('/v1/organization')
      .set(bearer(org.adminToken))
      .set('if-match', String(first.headers.etag))
      .send({ name: 'Renamed', contactEmail: 'new@example.org' })
      .expect(200);
    expect(updated.body).toMatchObject({ name: 'Renamed', contactEmail: 'new@example.org', slug: org.slug });
    expect(updated.headers.etag).toBe('"v2"');
    expect(new Date(updated.body.updatedAt).getTime()).toBeGreaterThan(
      new Date(first.body.updatedAt).getTime(),
    );

    const stale = await suite.http
      .patch('/v1/organization')
      .set(bearer(org.adminToken))
      .set('if-match', String(first.headers.etag))
      .send({ name: 'Lost update' })
      .expect(412);
    expect(stale.body.code).toBe('precondition-failed');
    const garbage = await suite.http
      .patch('/v1/organization')
      .set(bearer(org.adminToken))
      .set('if-match', 'W/"whatever"')
      .send({ name: 'Lost update' })
      .expect(412);
    expect(garbage.body.code).toBe('precondition-failed');
    const after = await suite.http.get('/v1/organization').set(bearer(org.adminToken)).expect(200);
    expect(after.body.name).toBe('Renamed');
  });

  it('treats an empty patch as a no-op and accepts a weak ETag', async () => {
    const org = await createOrg(suite.http);
    const noop = await suite.http.patch('/v1/organization').set(bearer(org.adminToken)).send({}).expect(200);
    expect(noop.headers.etag).toBe('"v1"');
    const weak = await suite.http
      .patch('/v1/organization')
      .set(bearer(org.adminToken))
      .set('if-match', 'W/"v1"')
      .send({ name: 'Weakly matched' })
      .expect(200);
    expect(weak.headers.etag).toBe('"v2"');
    await suite.http
      .patch('/v1/organization')
      .set(bearer(org.adminToken))
      .set('if-match', '"v1"')
      .send({})
      .expect(412);
  });

  it('accepts application/merge-patch+json and rejects a taken slug', async () => {
    const a = await createOrg(suite.http);
    const b = await createOrg(suite.http);
    await suite.http
      .patch('/v1/organization')
      .set(bearer(a.adminToken))
      .set('content-type', 'application/merge-patch+json')
      .send(JSON.stringify({ timezone: 'Europe/London' }))
      .expect(200);
    const taken = await suite.http
      .patch('/v1/organization')
      .set(bearer(a.adminToken))
      .send({ slug: b.slug })
      .expect(409);
    expect(taken.body.code).toBe('slug-taken');
  });

  it('lets only admins change the organisation', async () => {
    const org = await createOrg(suite.http);
    for (const role of ['organiser', 'viewer'] as const) {
      const key = await createKey(suite.http, org.adminToken, role);
      const response = await suite.http
        .patch('/v1/organization')
        .set(bearer(key.token))
        .send({ name: 'No' })
        .expect(403);
      expect(response.body.code).toBe('forbidden');
    }
  });
});
