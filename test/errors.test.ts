/**
 * The error model (API.md §1 "errors", §9): every problem code this part of the API can produce,
 * with its exact status and code, as problem+json, and never a stack trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/core/errors.ts';
import { createDatabase } from '../src/db/client.ts';
import { bearer, createKey, createOrg, startTestApp, type TestApp } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp(
  {},
  {
    extend: (app) => {
      app.get('/test/boom', { config: { auth: 'public' } }, async () => {
        const error = new Error('secret internal detail: password=hunter2');
        error.stack = 'Error: secret internal detail\n    at handler (/srv/app.js:1:1)';
        throw error;
      });
      app.get('/test/refused', { config: { auth: 'public' } }, async () => {
        throw new AppError('invalid-state', 'Refused on purpose.', {
          extensions: { hint: 'extra member' },
        });
      });
    },
  },
);

function expectProblem(
  response: { status: number; headers: Record<string, string>; body: Record<string, unknown> },
  status: number,
  code: string,
) {
  expect(response.status).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({
    type: `/problems/${code}`,
    status,
    code,
    title: expect.any(String),
    detail: expect.any(String),
  });
  const text = JSON.stringify(response.body);
  expect(text).not.toMatch(/\n\s+at |stack|node_modules/);
}

describe('validation', () => {
  it('400 validation-failed lists each invalid field', async () => {
    const response = await suite.http
      .post('/v1/organizations')
      .send({ name: '', slug: 'X', timezone: 'Nowhere/Else' });
    expectProblem(response, 400, 'validation-failed');
    const paths = (response.body.errors as { path: string }[]).map((error) => error.path).sort();
    expect(paths).toEqual(['body.contactEmail', 'body.name', 'body.slug', 'body.timezone']);
  });

  it('400 validation-failed for malformed JSON', async () => {
    const response = await suite.http
      .post('/v1/organizations')
      .set('content-type', 'application/json')
      .send('{"name": "unterminated');
    expectProblem(response, 400, 'validation-failed');
  });

  it('400 validation-failed for a missing body and for a JSON array body', async () => {
    expectProblem(await suite.http.post('/v1/organizations'), 400, 'validation-failed');
    expectProblem(await suite.http.post('/v1/organizations').send([1, 2]), 400, 'validation-failed');
  });

  it('415 unsupported-media-type for a non-JSON body', async () => {
    const response = await suite.http
      .post('/v1/organizations')
      .set('content-type', 'text/plain')
      .send('name=x');
    expectProblem(response, 415, 'unsupported-media-type');
    const form = await suite.http.post('/v1/organizations').type('form').send({ name: 'x' });
    expectProblem(form, 415, 'unsupported-media-type');
  });

  it('413 payload-too-large above 1 MiB', async () => {
    const response = await suite.http
      .post('/v1/organizations')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) }));
    expectProblem(response, 413, 'payload-too-large');
  });
});

describe('authentication and authorisation', () => {
  it('401 unauthenticated without a token, with a malformed header, with an unknown token', async () => {
    expectProblem(await suite.http.get('/v1/organization'), 401, 'unauthenticated');
    expectProblem(
      await suite.http.get('/v1/organization').set('authorization', 'Basic abc'),
      401,
      'unauthenticated',
    );
    expectProblem(
      await suite.http.get('/v1/organization').set(bearer(`tg_key_${'A'.repeat(43)}`)),
      401,
      'unauthenticated',
    );
    expectProblem(await suite.http.get('/v1/organization').set(bearer('garbage')), 401, 'unauthenticated');
  });

  it('answers 401 before looking at the body', async () => {
    const response = await suite.http.post('/v1/api-keys').set('content-type', 'text/plain').send('not json');
    expectProblem(response, 401, 'unauthenticated');
  });

  it('403 forbidden for a role that lacks the right', async () => {
    const org = await createOrg(suite.http);
    const viewer = await createKey(suite.http, org.adminToken, 'viewer');
    const response = await suite.http
      .post('/v1/api-keys')
      .set(bearer(viewer.token))
      .send({ name: 'x', role: 'viewer' });
    expectProblem(response, 403, 'forbidden');
  });
});

describe('everything else', () => {
  it('404 not-found for an unknown route', async () => {
    expectProblem(await suite.http.get('/v1/nothing-here'), 404, 'not-found');
    expectProblem(await suite.http.delete('/nope'), 404, 'not-found');
  });

  it('answers a malformed URL with a problem too', async () => {
    expectProblem(await suite.http.get('/v1/%zz'), 400, 'validation-failed');
  });

  it('keeps extension members of a domain problem', async () => {
    const response = await suite.http.get('/test/refused');
    expectProblem(response, 409, 'invalid-state');
    expect(response.body.hint).toBe('extra member');
  });

  it('500 internal says only that, with the request id, never the stack or the message', async () => {
    const response = await suite.http.get('/test/boom').set('x-request-id', 'req-boom-1');
    expectProblem(response, 500, 'internal');
    expect(response.body.requestId).toBe('req-boom-1');
    expect(response.body.detail).toContain('req-boom-1');
    expect(JSON.stringify(response.body)).not.toContain('hunter2');
    expect(JSON.stringify(response.body)).not.toContain('/srv/app.js');
  });

  it('echoes X-Request-Id, or generates one, on every response', async () => {
    const given = await suite.http.get('/health/live').set('x-request-id', 'abc-123');
    expect(given.headers['x-request-id']).toBe('abc-123');
    const generated = await suite.http.get('/v1/nothing');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const unsafe = await suite.http.get('/health/live').set('x-request-id', 'x'.repeat(300));
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const onError = await suite.http.get('/v1/organization').set('x-request-id', 'err-1');
    expect(onError.status).toBe(401);
    expect(onError.headers['x-request-id']).toBe('err-1');
    expect(onError.body.requestId).toBe('err-1');
  });
});

describe('429 rate-limited', () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startTestApp(suite.database, { RATE_LIMIT_PER_MINUTE: 3 });
  });
  afterAll(() => limited.close());

  it('counts per token, sends RateLimit headers, and answers 429 with Retry-After', async () => {
    const org = await createOrg(limited.http);
    const other = await createOrg(limited.http);
    const first = await limited.http.get('/v1/organization').set(bearer(org.adminToken)).expect(200);
    expect(first.headers['ratelimit-limit']).toBe('3');
    expect(first.headers['ratelimit-remaining']).toBe('2');
    expect(first.headers['ratelimit-reset']).toMatch(/^\d+$/);
    await limited.http.get('/v1/organization').set(bearer(org.adminToken)).expect(200);
    await limited.http.get('/v1/organization').set(bearer(org.adminToken)).expect(200);
    const over = await limited.http.get('/v1/organization').set(bearer(org.adminToken));
    expectProblem(over, 429, 'rate-limited');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // Another token has its own budget.
    await limited.http.get('/v1/organization').set(bearer(other.adminToken)).expect(200);
    // Probes are never limited.
    for (let i = 0; i < 5; i++) await limited.http.get('/health/live').expect(200);
    // Unknown paths are (per IP address): probing them costs the prober.
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await limited.http.get('/v1/no-such-thing')).status);
    expect(statuses).toContain(404);
    expect(statuses).toContain(429);
  });
});

describe('429 per IP address, behind a trusted proxy', () => {
  let limited: TestApp;
  beforeAll(async () => {
    // The test's connection is the proxy (loopback), X-Forwarded-For names the client.
    limited = await startTestApp(suite.database, {
      RATE_LIMIT_PER_MINUTE: 3,
      LOGIN_ATTEMPTS_PER_15_MINUTES: 1,
      TRUST_PROXY: ['127.0.0.1'],
    });
  });
  afterAll(() => limited.close());
  const from = (address: string) => ({ 'x-forwarded-for': address });

  it('counts anonymous requests per client address: the 4th from one address is 429, another address goes on', async () => {
    const org = await createOrg(limited.http, from('198.51.100.1'));
    const client = from('203.0.113.7');
    for (let request = 1; request <= 3; request++) {
      const answer = await limited.http.get(`/v1/public/${org.slug}`).set(client).expect(200);
      expect(answer.headers['ratelimit-remaining']).toBe(String(3 - request));
    }
    const over = await limited.http.get(`/v1/public/${org.slug}`).set(client);
    expectProblem(over, 429, 'rate-limited');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.headers['ratelimit-limit']).toBe('3');
    expect(over.headers['ratelimit-remaining']).toBe('0');
    // Another client behind the same proxy has its own budget; a token counts on its own too.
    await limited.http.get(`/v1/public/${org.slug}`).set(from('203.0.113.8')).expect(200);
    await limited.http.get('/v1/organization').set(client).set(bearer(org.adminToken)).expect(200);
  });

  it('slows sign-in per client address across emails: past ten times the per-email limit, 429 for that address only', async () => {
    const org = await createOrg(limited.http, from('198.51.100.2'));
    const attacker = from('203.0.113.66');
    const statuses: number[] = [];
    // A new email each time, so that only the per-address limit (10 × 1) can stop them.
    for (let attempt = 0; attempt < 11; attempt++) {
      const answer = await limited.http
        .post(`/v1/public/${org.slug}/sessions`)
        .set(attacker)
        .send({ email: `guess${attempt}@example.org`, password: 'a guessed password' });
      statuses.push(answer.status);
      if (answer.status === 429) {
        expectProblem(answer, 429, 'rate-limited');
        expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      }
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses[10]).toBe(429);
    const bystander = await limited.http
      .post(`/v1/public/${org.slug}/sessions`)
      .set(from('203.0.113.67'))
      .send({ email: 'guess0b@example.org', password: 'a guessed password' });
    expect(bystander.status).toBe(401);
  });
});

describe('X-Forwarded-For from a peer that is not a trusted proxy', () => {
  it('is ignored: clients cannot pick their own address, and so their own budget', async () => {
    const untrusting = await startTestApp(suite.database, {
      RATE_LIMIT_PER_MINUTE: 2,
      TRUST_PROXY: ['10.0.0.0/8'],
    });
    try {
      const org = await createOrg(untrusting.http);
      const statuses: number[] = [];
      for (let request = 0; request < 3; request++) {
        const forged = { 'x-forwarded-for': `203.0.113.${100 + request}` };
        statuses.push((await untrusting.http.get(`/v1/public/${org.slug}`).set(forged)).status);
      }
      // The creation and the first read spend the loopback address's budget of 2.
      expect(statuses).toEqual([200, 429, 429]);
    } finally {
      await untrusting.close();
    }
  });
});

describe('503 unavailable', () => {
  let offline: TestApp;
  beforeAll(async () => {
    // Nothing listens on port 1: every query fails to connect, as during a database outage.
    const unreachable = await createDatabase(
      {
        DATABASE_URL: 'postgres://together@127.0.0.1:1/together',
        DATA_DIR: 'unused',
        DATABASE_POOL_SIZE: 2,
      },
      { info: () => {}, warn: () => {} },
    );
    offline = await startTestApp(unreachable);
  });
  afterAll(async () => {
    await offline.close();
    await offline.database.close();
  });

  it('readiness is 503 while the database is unreachable, liveness stays 200', async () => {
    expectProblem(await offline.http.get('/health/ready'), 503, 'unavailable');
    await offline.http.get('/health/live').expect(200);
  });

  it('requests get 503 unavailable with Retry-After, not 500', async () => {
    const authenticated = await offline.http.get('/v1/organization').set(bearer(`tg_key_${'B'.repeat(43)}`));
    expectProblem(authenticated, 503, 'unavailable');
    expect(authenticated.headers['retry-after']).toBe('5');
    const write = await offline.http
      .post('/v1/organizations')
      .send({ name: 'x', slug: 'offline-org', timezone: 'UTC', contactEmail: 'a@example.org' });
    expectProblem(write, 503, 'unavailable');
  });
});
