/** Idempotency-Key (API.md §1): replay, reuse with another body, 4xx replay, 5xx release, concurrency. */
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { respondToWrite } from '../src/core/idempotency.ts';
import { queryRows } from '../src/db/client.ts';
import { bearer, createOrg, startTestApp, uniqueSlug } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

let flakyCalls = 0;
let slowCalls = 0;
/** Resolves the effect of the /test/slow route currently waiting. */
let releaseSlow: () => void = () => {};
/** Resolves once a /test/slow effect runs, its idempotency key held by its transaction. */
let slowStarted: Promise<void> = Promise.resolve();
let markSlowStarted: () => void = () => {};
function expectSlowStart(): void {
  slowStarted = new Promise((resolve) => {
    markSlowStarted = resolve;
  });
}

const suite = useTestApp(
  {},
  {
    extend: (app) => {
      // Holds its transaction (and so its idempotency key) until the test releases it.
      app.post(
        '/test/slow',
        { config: { auth: 'public' }, schema: { body: z.strictObject({ note: z.string() }) } },
        (request, reply) =>
          respondToWrite(request, reply, app.db, async (tx) => {
            slowCalls += 1;
            await tx.execute(sql`select 1`);
            await new Promise<void>((resolve) => {
              releaseSlow = resolve;
              markSlowStarted();
            });
            return { status: 201, body: { calls: slowCalls } };
          }),
      );
      // Fails with a 500 on its first call, then succeeds: shows that a 5xx releases the key.
      app.post(
        '/test/flaky',
        { config: { auth: 'public' }, schema: { body: z.strictObject({ note: z.string() }) } },
        (request, reply) =>
          respondToWrite(request, reply, app.db, async (tx) => {
            flakyCalls += 1;
            await tx.execute(sql`select 1`);
            if (flakyCalls === 1) throw new Error('transient failure');
            return { status: 201, body: { calls: flakyCalls } };
          }),
      );
    },
  },
);

async function activeKeyCount(orgId: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    suite.database.db,
    sql`select count(*)::int as n from api_keys where org_id = ${orgId} and revoked_at is null`,
  );
  return Number(row?.n);
}

describe('Idempotency-Key', () => {
  it('replays the first response for the same key and body, and acts once', async () => {
    const org = await createOrg(suite.http);
    const send = () =>
      suite.http
        .post('/v1/api-keys')
        .set(bearer(org.adminToken))
        .set('idempotency-key', 'create-board-key')
        .send({ name: 'Board', role: 'viewer' });
    const first = await send().expect(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const second = await send().expect(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.text).toBe(first.text);
    expect(second.headers.location).toBe(first.headers.location);
    expect(await activeKeyCount(org.id)).toBe(2);
  });

  it('stores neither the key nor a replayable token in readable form', async () => {
    const org = await createOrg(suite.http);
    const created = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'secret-bearing-response')
      .send({ name: 'Sealed', role: 'viewer' })
      .expect(201);
    const stored = await queryRows<Record<string, unknown>>(
      suite.database.db,
      sql`select * from idempotency_keys where org_id = ${org.id}`,
    );
    expect(stored).toHaveLength(1);
    const dump = JSON.stringify(stored);
    expect(dump).not.toContain(created.body.token);
    expect(dump).not.toContain('secret-bearing-response');
    expect(dump).not.toContain('Sealed');
    const replay = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'secret-bearing-response')
      .send({ name: 'Sealed', role: 'viewer' })
      .expect(201);
    expect(replay.body.token).toBe(created.body.token);
  });

  it('treats the same body with keys in another order as the same request', async () => {
    const org = await createOrg(suite.http);
    const key = 'reordered';
    await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', key)
      .send({ name: 'A', role: 'viewer' })
      .expect(201);
    const replay = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', key)
      .set('content-type', 'application/json')
      .send('{"role":"viewer","name":"A"}')
      .expect(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });

  it('answers 422 idempotency-key-reused for the same key with another body', async () => {
    const org = await createOrg(suite.http);
    await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'k1')
      .send({ name: 'A', role: 'viewer' })
      .expect(201);
    const reused = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'k1')
      .send({ name: 'B', role: 'viewer' })
      .expect(422);
    expect(reused.body.code).toBe('idempotency-key-reused');
    expect(reused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(await activeKeyCount(org.id)).toBe(2);
  });

  it('scopes keys to the caller: two credentials may use the same key', async () => {
    const a = await createOrg(suite.http);
    const b = await createOrg(suite.http);
    for (const org of [a, b]) {
      const response = await suite.http
        .post('/v1/api-keys')
        .set(bearer(org.adminToken))
        .set('idempotency-key', 'shared-key')
        .send({ name: 'Same', role: 'viewer' })
        .expect(201);
      expect(response.headers['idempotent-replayed']).toBeUndefined();
    }
  });

  it('replays a 4xx outcome too', async () => {
    const taken = await createOrg(suite.http);
    const body = { name: 'Dup', slug: taken.slug, timezone: 'UTC', contactEmail: 'dup@example.org' };
    const first = await suite.http
      .post('/v1/organizations')
      .set('idempotency-key', `dup-${taken.slug}`)
      .send(body)
      .expect(409);
    expect(first.body.code).toBe('slug-taken');
    const replay = await suite.http
      .post('/v1/organizations')
      .set('idempotency-key', `dup-${taken.slug}`)
      .send(body)
      .expect(409);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(replay.body).toEqual(first.body);
  });

  it('releases the key after a 5xx, so a retry runs the effect', async () => {
    const failed = await suite.http
      .post('/test/flaky')
      .set('idempotency-key', 'flaky-1')
      .send({ note: 'x' })
      .expect(500);
    expect(failed.body.code).toBe('internal');
    const retried = await suite.http
      .post('/test/flaky')
      .set('idempotency-key', 'flaky-1')
      .send({ note: 'x' })
      .expect(201);
    expect(retried.body).toEqual({ calls: 2 });
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
    const replayed = await suite.http
      .post('/test/flaky')
      .set('idempotency-key', 'flaky-1')
      .send({ note: 'x' })
      .expect(201);
    expect(replayed.body).toEqual({ calls: 2 });
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(flakyCalls).toBe(2);
  });

  it('forgets a key after 24 hours', async () => {
    const org = await createOrg(suite.http);
    await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'old')
      .send({ name: 'A', role: 'viewer' })
      .expect(201);
    await suite.database.db.execute(
      sql`update idempotency_keys set expires_at = now() - interval '1 second', created_at = now() - interval '25 hours'
          where key_hash = encode(sha256('old'), 'hex') and org_id = ${org.id}`,
    );
    const fresh = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'old')
      .send({ name: 'B', role: 'viewer' })
      .expect(201);
    expect(fresh.body.name).toBe('B');
    expect(fresh.headers['idempotent-replayed']).toBeUndefined();
  });

  it('rejects a key longer than 255 characters', async () => {
    const org = await createOrg(suite.http);
    const response = await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'k'.repeat(256))
      .send({ name: 'A', role: 'viewer' })
      .expect(400);
    expect(response.body.code).toBe('validation-failed');
    await suite.http
      .post('/v1/api-keys')
      .set(bearer(org.adminToken))
      .set('idempotency-key', 'k'.repeat(255))
      .send({ name: 'A', role: 'viewer' })
      .expect(201);
  });

  it('answers 422, not 500, when the stored response cannot be opened by this credential', async () => {
    // The platform admin is one caller whatever ADMIN_TOKEN says; a rotated token cannot open
    // what the old one sealed, so the retry is treated as another request.
    const before = await startTestApp(suite.database, { ADMIN_TOKEN: 'first-admin-token-0123456789' });
    const after = await startTestApp(suite.database, { ADMIN_TOKEN: 'second-admin-token-0123456789' });
    try {
      const slug = uniqueSlug('rotated');
      const body = { name: 'Rotated', slug, timezone: 'UTC', contactEmail: 'r@example.org' };
      await before.http
        .post('/v1/organizations')
        .set(bearer('first-admin-token-0123456789'))
        .set('idempotency-key', slug)
        .send(body)
        .expect(201);
      const retried = await after.http
        .post('/v1/organizations')
        .set(bearer('second-admin-token-0123456789'))
        .set('idempotency-key', slug)
        .send(body)
        .expect(422);
      expect(retried.body.code).toBe('idempotency-key-reused');
    } finally {
      await before.close();
      await after.close();
    }
  });

  it('works for anonymous organisation sign-up', async () => {
    const slug = uniqueSlug('anon');
    const body = { name: 'Anon', slug, timezone: 'UTC', contactEmail: 'anon@example.org' };
    const first = await suite.http
      .post('/v1/organizations')
      .set('idempotency-key', slug)
      .send(body)
      .expect(201);
    const replay = await suite.http
      .post('/v1/organizations')
      .set('idempotency-key', slug)
      .send(body)
      .expect(201);
    expect(replay.body.apiKey.token).toBe(first.body.apiKey.token);
  });
});

describe('a duplicate that arrives while the first is still running', () => {
  it('gets 409 idempotency-key-in-use with Retry-After once the wait is too long, and never a second effect', async () => {
    expectSlowStart();
    const first = suite.http
      .post('/test/slow')
      .set('idempotency-key', 'slow-1')
      .send({ note: 'x' })
      .then((r) => r);
    await slowStarted;
    const duplicate = await suite.http
      .post('/test/slow')
      .set('idempotency-key', 'slow-1')
      .send({ note: 'x' });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe('idempotency-key-in-use');
    expect(Number(duplicate.headers['retry-after'])).toBeGreaterThan(0);
    releaseSlow();
    expect((await first).status).toBe(201);
    const after = await suite.http
      .post('/test/slow')
      .set('idempotency-key', 'slow-1')
      .send({ note: 'x' })
      .expect(201);
    expect(after.headers['idempotent-replayed']).toBe('true');
    expect(after.body).toEqual({ calls: 1 });
    expect(slowCalls).toBe(1);
  });
});

describe('concurrent duplicates', () => {
  it('10 concurrent POST /v1/api-keys with one key and body create one key', async () => {
    for (let round = 0; round < 3; round++) {
      const org = await createOrg(suite.http);
      const responses = await Promise.all(
        Array.from({ length: 10 }, () =>
          suite.http
            .post('/v1/api-keys')
            .set(bearer(org.adminToken))
            .set('idempotency-key', `race-${round}`)
            .send({ name: 'Raced', role: 'organiser' }),
        ),
      );
      const statuses = responses.map((response) => response.status);
      expect(statuses.every((status) => status === 201 || status === 409)).toBe(true);
      const created = responses.filter((response) => response.status === 201);
      expect(created.length).toBeGreaterThan(0);
      expect(new Set(created.map((response) => response.body.id)).size).toBe(1);
      expect(created.filter((response) => response.headers['idempotent-replayed'] !== 'true')).toHaveLength(
        1,
      );
      for (const response of responses.filter((r) => r.status === 409)) {
        expect(response.body.code).toBe('idempotency-key-in-use');
        expect(response.headers['retry-after']).toBeDefined();
      }
      expect(await activeKeyCount(org.id)).toBe(2);
    }
  });
});
