/**
 * Hostile input never reaches a 5xx (issue 14), class by class, over every operation the served
 * OpenAPI document lists (so that a new route is covered without editing this file):
 *
 * - a `from` after its `to`, and a timestamp outside the years 1–9999, in every query that takes them;
 * - a NUL character in a path, a query or a JSON string;
 * - a JSON body nested thousands deep, with an Idempotency-Key, to operations that take no body;
 * - every POST, PATCH and PUT declares the 413 and 415 that any of them can answer;
 * - every list's largest page is its documented maximum, and a bulk create keeps its cap.
 */
import { describe, expect, it } from 'vitest';
import { expectProblem, fixtures, useTestApp } from './support/fixtures.ts';

const suite = useTestApp();
const { setupOrg, createEvent, createVolunteer, volunteerToken } = fixtures(suite);

interface Operation {
  method: string;
  path: string;
  parameters?: { name: string; in: string }[];
  responses: Record<string, unknown>;
  security?: unknown[];
}

async function operations(): Promise<Operation[]> {
  const document = (await suite.http.get('/openapi.json').expect(200)).body as {
    paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>;
  };
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
      .map(([method, operation]) => ({ ...operation, method, path })),
  );
}

/** A path of the operation with every parameter filled with something well-formed. */
const concrete = (path: string, slug: string) =>
  path.replace('{orgSlug}', slug).replace(/\{[^}]+\}/g, '01a23d06-b98b-786f-88a1-307e1408013d');

describe('hostile input', () => {
  it('a `from` after its `to`, or a year PostgreSQL cannot hold, is 400 in every query that takes them', async () => {
    const org = await setupOrg();
    const volunteer = await volunteerToken(org.admin, await createVolunteer(org.admin));
    const slug = (await suite.http.get('/v1/organization').set(org.admin).expect(200)).body.slug as string;
    const ranged = (await operations()).filter(
      (operation) =>
        operation.method === 'get' &&
        ['from', 'to'].every((name) =>
          operation.parameters?.some((p) => p.in === 'query' && p.name === name),
        ),
    );
    // The lists of API.md that take an interval, at least.
    expect(ranged.map((operation) => operation.path)).toEqual(
      expect.arrayContaining([
        '/v1/signups',
        '/v1/me/signups',
        '/v1/shifts',
        '/v1/events',
        '/v1/audit-events',
      ]),
    );
    for (const operation of ranged) {
      const auth = operation.path.startsWith('/v1/me/') ? volunteer : org.admin;
      const path = concrete(operation.path, slug);
      for (const query of [
        'from=2027-02-01T00:00:00Z&to=2027-01-01T00:00:00Z',
        'from=0000-01-01T00:00:00Z',
        'to=0000-01-01T00:00:00Z',
      ]) {
        const response = await suite.http.get(`${path}?${query}`).set(auth);
        expect(response.status, `${path}?${query}: ${JSON.stringify(response.body)}`).toBe(400);
        expect(response.body.code).toBe('validation-failed');
      }
    }
  });

  it('a NUL in a path, a query or a JSON string is 400, never a query', async () => {
    const org = await setupOrg();
    const refusedForNul = (response: { status: number; body: { code?: string; detail?: string } }) => {
      expect(response.status, JSON.stringify(response.body)).toBe(400);
      expect(response.body.code).toBe('validation-failed');
      expect(response.body.detail).toMatch(/NUL/);
    };
    for (const path of [
      '/v1/public/%00/events',
      '/v1/roles/%00',
      '/v1/volunteers?q=a%00b',
      '/v1/public/a%00b/sessions',
    ])
      refusedForNul(await suite.http.get(path).set(org.admin));
    refusedForNul(
      await suite.http
        .post('/v1/roles')
        .set(org.admin)
        .send({ name: 'before\u0000after', restricted: false }),
    );
    // Escaped in the JSON text as \u0000, also when another digit follows (a NUL, then a "1").
    for (const text of ['{"name":"x\\u0000","restricted":false}', '{"name":"x\\u00001","restricted":false}'])
      refusedForNul(
        await suite.http.post('/v1/roles').set(org.admin).set('content-type', 'application/json').send(text),
      );
    // An escaped backslash followed by the letters u0000 is ordinary text.
    await suite.http
      .post('/v1/roles')
      .set(org.admin)
      .set('content-type', 'application/json')
      .send('{"name":"a backslash then u0000: \\\\u0000","restricted":false}')
      .expect((response) => expect(response.status, JSON.stringify(response.body)).toBe(201));
    // Inside a cursor (base64 of JSON, which neither check above sees): the list refuses it.
    const cursor = Buffer.from(JSON.stringify(['a\u0000b', '01a23d06-b98b-786f-88a1-307e1408013d'])).toString(
      'base64url',
    );
    for (const list of ['/v1/volunteers', '/v1/roles']) {
      const response = await suite.http.get(`${list}?cursor=${cursor}`).set(org.admin);
      expect(response.status, `${list}: ${JSON.stringify(response.body)}`).toBe(400);
    }
  });

  it('a lone UTF-16 surrogate in a JSON string is 400; a whole pair is text', async () => {
    const org = await setupOrg();
    const post = (text: string) =>
      suite.http.post('/v1/roles').set(org.admin).set('content-type', 'application/json').send(text);
    for (const name of ['x\\ud800', 'x\\udc00', 'x\\ud800y', 'x\\ud800\\u0041']) {
      const response = await post(`{"name":"${name}","restricted":false}`);
      expect(response.status, name).toBe(400);
      expect(response.body.detail).toMatch(/surrogate/);
    }
    const pair = await post('{"name":"x\\ud83d\\ude00","restricted":false}');
    expect(pair.status, JSON.stringify(pair.body)).toBe(201);
    expect(pair.body.name).toBe('x😀');
  });

  it('a body nested thousands deep is 400 before anything recurses, with or without an Idempotency-Key', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    for (const path of [`/v1/events/${event.id}/cancel`, '/v1/roles'])
      for (const key of [undefined, 'nested-1'])
        expectProblem(
          await suite.http
            .post(path)
            .set(org.admin)
            .set(key ? { 'idempotency-key': key } : {})
            .set('content-type', 'application/json')
            .send(nested),
          400,
          'validation-failed',
        );
    // The scanner's own refusal, at one level past its limit and not at it.
    const deep = (levels: number) =>
      `{"name":${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)},"restricted":false}`;
    const over = await suite.http
      .post('/v1/roles')
      .set(org.admin)
      .set('content-type', 'application/json')
      .send(deep(33));
    expect(over.body.detail).toMatch(/nests deeper than 32/);
    const at = await suite.http
      .post('/v1/roles')
      .set(org.admin)
      .set('content-type', 'application/json')
      .send(deep(32));
    expect(at.status).toBe(400); // a name is not an array: zod's refusal, not the scanner's
    expect(at.body.detail).not.toMatch(/nests deeper/);
    // The event is untouched.
    expect((await suite.http.get(`/v1/events/${event.id}`).set(org.admin).expect(200)).body.status).toBe(
      'published',
    );
  });

  it('every POST, PATCH and PUT declares 413 and 415, and a bodyless POST answers 415 to another type', async () => {
    const writes = (await operations()).filter((operation) =>
      ['post', 'patch', 'put'].includes(operation.method),
    );
    for (const operation of writes.filter((operation) => operation.path.startsWith('/v1/'))) {
      expect(Object.keys(operation.responses), `${operation.method} ${operation.path}`).toEqual(
        expect.arrayContaining(['413', '415']),
      );
    }
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    expectProblem(
      await suite.http
        .post(`/v1/events/${event.id}/cancel`)
        .set(org.admin)
        .set('content-type', 'text/plain')
        .send('cancel it'),
      415,
      'unsupported-media-type',
    );
  });

  it('the largest page is the documented one, for every list: one more is 400', async () => {
    const org = await setupOrg();
    const volunteer = await volunteerToken(org.admin, await createVolunteer(org.admin));
    const slug = (await suite.http.get('/v1/organization').set(org.admin).expect(200)).body.slug as string;
    const event = await createEvent(org.organiser, { status: 'published' });
    const paged = (await operations()).filter((operation) =>
      operation.parameters?.some((p) => p.in === 'query' && p.name === 'limit'),
    );
    expect(paged.length).toBeGreaterThan(10);
    // Most answer their largest page (those whose path names another kind of id are 404 here).
    let served = 0;
    for (const operation of paged) {
      const limit = operation.parameters?.find((p) => p.name === 'limit') as {
        schema?: { maximum?: number };
      };
      const maximum = limit.schema?.maximum;
      expect(maximum, `${operation.path}: limit has no maximum`).toBeGreaterThan(0);
      const auth = operation.path.startsWith('/v1/me/') ? volunteer : org.admin;
      // Real ids where the path takes them, so that the largest page is answered, not a 404.
      const path = operation.path
        .replace('{orgSlug}', slug)
        .replace('{eventId}', event.id)
        .replace(/\{[^}]+\}/g, event.id);
      const largest = await suite.http.get(`${path}?limit=${maximum}`).set(auth);
      expect([200, 404], `${path}?limit=${maximum}: ${largest.status}`).toContain(largest.status);
      if (largest.status === 200) served++;
      expectProblem(
        await suite.http.get(`${path}?limit=${(maximum as number) + 1}`).set(auth),
        400,
        'validation-failed',
      );
    }
    expect(served).toBeGreaterThan(10);
  });

  it('a bulk create over its cap is 400, and writes nothing', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const one = {
      startsAt: new Date(Date.now() + 86_400_000).toISOString(),
      endsAt: new Date(Date.now() + 90_000_000).toISOString(),
      capacity: 1,
    };
    const response = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({ shifts: Array.from({ length: 501 }, () => one) });
    expectProblem(response, 400, 'validation-failed');
    const listed = await suite.http.get(`/v1/events/${event.id}/shifts`).set(org.admin).expect(200);
    expect(listed.body.data).toEqual([]);
  });
});
