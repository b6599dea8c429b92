import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { bearer, createKey, createOrg } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp();

describe('POST /v1/api-keys', () => {
  it('creates a key of each role, shows its token once, stores only its hash', async () => {
    const org = await createOrg(suite.http);
    for (const role of ['admin', 'organiser', 'viewer'] as const) {
      const response = await suite.http
        .post('/v1/api-keys')
        .set(bearer(org.adminToken))
        .send({ name: `${role} key`, role })
        .expect(201);
      expect(response.headers.location).toBe(`/v1/api-keys/${response.body.id}`);
      expect(response.body).toMatchObject({
        name: `${role} key`,
        role,
        token: expect.stringMatching(/^tg_key_/),
      });
      const stored = await queryRows<{ token_hash: string }>(
        suite.database.db,
        sql`select token_hash from api_keys where id = ${response.body.id}`,
      );
      expect(stored[0]?.token_hash).toBe(createHash('sha256').update(response.body.token).digest('hex'));
      const everything = await queryRows<Record<string, unknown>>(
        suite.database.db,
        sql`select * from api_keys where id = ${response.body.id}`,
      );
      expect(JSON.stringify(everything)).not.toContain(response.body.token);
      await suite.http.get('/v1/organization').set(bearer(response.body.token)).expect(200);
    }
  });

  it('validates the body', async () => {
    const org = await createOrg(suite.http);
    const badRole = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .send({ name: 'x', role: 'owner' })
      .expect(400);
    expect(badRole.body.errors[0].path).toBe('body.role');
    await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .send({ name: '', role: 'viewer' })
      .expect(400);
    await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .send({ name: 'x'.repeat(101), role: 'viewer' })
      .expect(400);
  });

  it('is for admins only', async () => {
    const org = await createOrg(suite.http);
    for (const role of ['organiser', 'viewer'] as const) {
      const key = await createKey(suite.http, org.adminToken, role);
      const create = await suite.http
        .post('/v1/api-keys')
        .set(bearer(key.token))
        .send({ name: 'x', role: 'viewer' })
        .expect(403);
      expect(create.body.code).toBe('forbidden');
      await suite.http.get('/v1/api-keys').set(bearer(key.token)).expect(403);
      await suite.http.delete(`/v1/api-keys/${org.adminKeyId}`).set(bearer(key.token)).expect(403);
    }
  });
});

describe('GET /v1/api-keys', () => {
  it('pages through active keys in creation order with no duplicates or gaps', async () => {
    const org = await createOrg(suite.http);
    const created = [org.adminKeyId];
    for (let i = 0; i < 6; i++) created.push((await createKey(suite.http, org.adminToken, 'viewer')).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: Record<string, string | number> = { limit: 2, ...(cursor ? { cursor } : {}) };
      const response = await suite.http
        .get('/v1/api-keys')
        .query(query)
        .set(bearer(org.adminToken))
        .expect(200);
      expect(response.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...response.body.data.map((key: { id: string }) => key.id));
      cursor = response.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(created);
  });

  it('rejects a garbage cursor and limits outside 1–200', async () => {
    const org = await createOrg(suite.http);
    for (const cursor of [
      'garbage',
      Buffer.from('["x","y"]').toString('base64url'),
      Buffer.from('[1]').toString('base64url'),
    ]) {
      const response = await suite.http
        .get('/v1/api-keys')
        .query({ cursor })
        .set(bearer(org.adminToken))
        .expect(400);
      expect(response.body.code).toBe('invalid-cursor');
    }
    for (const limit of ['0', '201', 'ten', '1.5']) {
      const response = await suite.http
        .get('/v1/api-keys')
        .query({ limit })
        .set(bearer(org.adminToken))
        .expect(400);
      expect(response.body.code).toBe('validation-failed');
    }
    await suite.http.get('/v1/api-keys').query({ limit: 200 }).set(bearer(org.adminToken)).expect(200);
    await suite.http.get('/v1/api-keys').query({ limit: 1 }).set(bearer(org.adminToken)).expect(200);
  });
});

describe('DELETE /v1/api-keys/{id}', () => {
  it('revokes at once: the key gets 401 and leaves the list', async () => {
    const org = await createOrg(suite.http);
    const organiser = await createKey(suite.http, org.adminToken, 'organiser');
    await suite.http.get('/v1/organization').set(bearer(organiser.token)).expect(200);
    await suite.http.delete(`/v1/api-keys/${organiser.id}`).set(bearer(org.adminToken)).expect(204);
    const revoked = await suite.http.get('/v1/organization').set(bearer(organiser.token)).expect(401);
    expect(revoked.body.code).toBe('unauthenticated');
    const list = await suite.http.get('/v1/api-keys').set(bearer(org.adminToken)).expect(200);
    expect(list.body.data.map((key: { id: string }) => key.id)).toEqual([org.adminKeyId]);
    const again = await suite.http
      .delete(`/v1/api-keys/${organiser.id}`)
      .set(bearer(org.adminToken))
      .expect(404);
    expect(again.body.code).toBe('not-found');
  });

  it('refuses to revoke the last admin key, allows it when another admin exists', async () => {
    const org = await createOrg(suite.http);
    const last = await suite.http
      .delete(`/v1/api-keys/${org.adminKeyId}`)
      .set(bearer(org.adminToken))
      .expect(409);
    expect(last.body.code).toBe('invalid-state');
    await suite.http.get('/v1/organization').set(bearer(org.adminToken)).expect(200);
    const second = await createKey(suite.http, org.adminToken, 'admin');
    await suite.http.delete(`/v1/api-keys/${org.adminKeyId}`).set(bearer(second.token)).expect(204);
    await suite.http.get('/v1/organization').set(bearer(org.adminToken)).expect(401);
  });

  it('validates the id', async () => {
    const org = await createOrg(suite.http);
    const response = await suite.http
      .delete('/v1/api-keys/not-a-uuid')
      .set(bearer(org.adminToken))
      .expect(400);
    expect(response.body.errors[0].path).toBe('params.id');
    await suite.http.delete(`/v1/api-keys/${uuidv7()}`).set(bearer(org.adminToken)).expect(404);
  });
});

describe('tenant isolation', () => {
  it("org B's key gets 404 for org A's key id, and A's key keeps working", async () => {
    const a = await createOrg(suite.http);
    const b = await createOrg(suite.http);
    const aViewer = await createKey(suite.http, a.adminToken, 'viewer');
    const response = await suite.http
      .delete(`/v1/api-keys/${aViewer.id}`)
      .set(bearer(b.adminToken))
      .expect(404);
    expect(response.body.code).toBe('not-found');
    await suite.http.get('/v1/organization').set(bearer(aViewer.token)).expect(200);
    const bList = await suite.http.get('/v1/api-keys').set(bearer(b.adminToken)).expect(200);
    expect(bList.body.data.map((key: { id: string }) => key.id)).toEqual([b.adminKeyId]);
    const bOrg = await suite.http.get('/v1/organization').set(bearer(b.adminToken)).expect(200);
    expect(bOrg.body.id).toBe(b.id);
  });
});

describe('volunteer tokens on key routes', () => {
  it('are authenticated but forbidden', async () => {
    const org = await createOrg(suite.http);
    const volunteerId = uuidv7();
    const token = `tg_vol_${'V'.repeat(43)}`;
    await suite.database.db.execute(
      sql`insert into volunteers (org_id, id, name, email) values (${org.id}, ${volunteerId}, 'Vee', 'vee@example.org')`,
    );
    await suite.database.db.execute(
      sql`insert into volunteer_tokens (org_id, id, volunteer_id, kind, token_hash)
          values (${org.id}, ${uuidv7()}, ${volunteerId}, 'app', ${createHash('sha256').update(token).digest('hex')})`,
    );
    const response = await suite.http.get('/v1/organization').set(bearer(token)).expect(403);
    expect(response.body.code).toBe('forbidden');
    await suite.http.get('/v1/api-keys').set(bearer(token)).expect(403);
  });
});
