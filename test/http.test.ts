/** Cross-cutting HTTP behaviour: CORS split, security headers, health probes, logs. */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { configWith } from '../src/config.ts';
import { createLogger, linesPerTurn } from '../src/core/logger.ts';
import { bearer, createOrg, type StartOptions, startTestApp } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp({ CORS_ORIGINS: ['https://admin.example'] });

describe('CORS', () => {
  it('allows any origin on public paths, without credentials', async () => {
    const response = await suite.http
      .get('/openapi.json')
      .set('origin', 'https://partner.example')
      .expect(200);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
    const preflight = await suite.http
      .options('/v1/public/some-org')
      .set('origin', 'https://partner.example')
      .set('access-control-request-method', 'GET');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
  });

  it('allows only configured origins on authenticated routes, and exposes the documented headers', async () => {
    const org = await createOrg(suite.http);
    const allowed = await suite.http
      .get('/v1/organization')
      .set(bearer(org.adminToken))
      .set('origin', 'https://admin.example')
      .expect(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://admin.example');
    const exposed = allowed.headers['access-control-expose-headers'] ?? '';
    for (const header of ['ETag', 'Location', 'X-Request-Id', 'RateLimit-Limit', 'Retry-After'])
      expect(exposed).toContain(header);
    const other = await suite.http
      .get('/v1/organization')
      .set(bearer(org.adminToken))
      .set('origin', 'https://evil.example')
      .expect(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await suite.http
      .options('/v1/organization')
      .set('origin', 'https://evil.example')
      .set('access-control-request-method', 'PATCH');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    const allowedPreflight = await suite.http
      .options('/v1/organization')
      .set('origin', 'https://admin.example')
      .set('access-control-request-method', 'PATCH');
    expect(allowedPreflight.status).toBe(204);
    expect(allowedPreflight.headers['access-control-allow-origin']).toBe('https://admin.example');
    expect(allowedPreflight.headers['access-control-max-age']).toBe('600');
    // The answer depends on the Origin, so shared caches must key on it.
    expect(allowed.headers.vary).toMatch(/origin/i);
  });

  it('allows no origin on authenticated routes by default', async () => {
    const closed = await startTestApp(suite.database);
    try {
      const response = await closed.http
        .get('/health/live')
        .set('origin', 'https://admin.example')
        .expect(200);
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await closed.close();
    }
  });
});

describe('security headers and probes', () => {
  it('sets helmet headers and lets embeds load cross-origin', async () => {
    const response = await suite.http.get('/health/live').expect(200);
    expect(response.body).toEqual({ status: 'ok' });
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['cross-origin-resource-policy']).toBe('cross-origin');
  });

  it('is ready while the database answers', async () => {
    expect((await suite.http.get('/health/ready').expect(200)).body).toEqual({ status: 'ok' });
  });
});

/** An app logging at `info` into `lines`, one JSON line each. */
async function loggedApp(extend?: StartOptions['extend']) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      callback();
    },
  });
  const logged = await startTestApp(
    suite.database,
    {},
    { logger: createLogger(configWith({ LOG_LEVEL: 'info' }), sink), ...(extend && { extend }) },
  );
  return { logged, lines };
}

describe('logs', () => {
  it('are written once per turn of the event loop, in order, and at once when flushed', async () => {
    const writes: string[] = [];
    const destination = linesPerTurn({ write: (text) => writes.push(text) }) as unknown as {
      write(line: string): void;
      flushSync(): void;
    };
    destination.write('a\n');
    destination.write('b\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\n']);
    destination.write('c\n');
    destination.flushSync();
    expect(writes).toEqual(['a\nb\n', 'c\n']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(2);
  });

  it('reach stdout when the process exits right after them (a fatal line, then process.exit)', () => {
    const logger = new URL('../src/core/logger.ts', import.meta.url).href;
    const config = new URL('../src/config.ts', import.meta.url).href;
    const script = `
      const { createLogger } = await import(${JSON.stringify(logger)});
      const { loadConfig } = await import(${JSON.stringify(config)});
      const log = createLogger(loadConfig({ LOG_LEVEL: 'info' }));
      for (let line = 0; line < 3000; line++) log.info({ line }, 'a line before the end');
      setImmediate(() => {
        for (let line = 3000; line < 3100; line++) log.info({ line }, 'a line of the last turn');
        log.fatal('the reason the process stops');
        process.exit(1);
      });`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(run.status).toBe(1);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(3101);
    expect(JSON.parse(lines[3100] as string).msg).toBe('the reason the process stops');
    expect(lines.map((line) => JSON.parse(line).line).slice(0, 3100)).toEqual(
      Array.from({ length: 3100 }, (_, line) => line),
    );
  });

  it('never carry SQL parameters or authorization headers, whatever is logged', async () => {
    const { logged, lines } = await loggedApp((app) => {
      app.get('/test/failing-query', { config: { auth: 'public' } }, async (request) => {
        request.log.info({ headers: request.headers }, 'headers, logged on purpose');
        // Fails in the database (not a uuid) with a marker value among its parameters.
        await app.db.execute(sql`select ${'PERSONAL-MARKER-4711'}::uuid`);
        return {};
      });
    });
    try {
      const response = await logged.http
        .get('/test/failing-query')
        .set(bearer('tg_key_secret-marker'))
        .expect(500);
      expect(response.body.code).toBe('internal');
      const text = lines.join('');
      expect(text).toContain('database query failed');
      expect(text).toContain('22P02');
      expect(text).not.toContain('PERSONAL-MARKER-4711');
      expect(text).not.toContain('secret-marker');
    } finally {
      await logged.close();
    }
  });

  it('carry the request id on every request line and never the bearer token', async () => {
    const { logged, lines } = await loggedApp();
    try {
      const org = await createOrg(logged.http);
      await logged.http
        .get('/v1/organization')
        .set(bearer(org.adminToken))
        .set('x-request-id', 'log-req-1')
        .expect(200);
      await logged.http
        .get('/v1/organization')
        .set(bearer('tg_key_wrong'))
        .set('x-request-id', 'log-req-2')
        .expect(401);
      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const first = records.filter((record) => record.requestId === 'log-req-1');
      // One access-log line per request, carrying the request and its answer (core/logger.ts).
      expect(first.map((record) => record.msg)).toEqual(['request completed']);
      expect(first[0]).toMatchObject({
        req: {
          method: 'GET',
          url: '/v1/organization',
          remoteAddress: '127.0.0.1',
          remotePort: expect.any(Number),
        },
        res: { statusCode: 200 },
        responseTime: expect.any(Number),
      });
      expect(records.filter((record) => record.requestId === 'log-req-2').length).toBeGreaterThanOrEqual(1);
      for (const record of records.filter((record) => record.req || record.res))
        expect(record.requestId).toBeTruthy();
      const text = lines.join('\n');
      expect(text).not.toContain(org.adminToken);
      expect(text).not.toContain('tg_key_wrong');
    } finally {
      await logged.close();
    }
  });

  it("show a calendar feed's route, never its secret", async () => {
    const { logged, lines } = await loggedApp();
    try {
      const org = await createOrg(logged.http);
      const volunteer = await logged.http
        .post('/v1/volunteers')
        .set(bearer(org.adminToken))
        .send({ name: 'Feed Reader', email: 'feed.reader@example.org' })
        .expect(201);
      const issued = await logged.http
        .post(`/v1/volunteers/${volunteer.body.id}/tokens`)
        .set(bearer(org.adminToken))
        .expect(201);
      const me = await logged.http.get('/v1/me').set(bearer(issued.body.token)).expect(200);
      const path = new URL(me.body.calendarUrl as string).pathname;
      const secret = path.replace('/v1/calendar/', '').replace('.ics', '');
      expect(secret.length).toBeGreaterThan(20);
      await logged.http.get(path).set('x-request-id', 'log-feed-1').expect(200);
      // A rotated URL is 404 from then on: neither the old secret nor the new one is logged.
      const rotated = await logged.http
        .post('/v1/me/calendar-token')
        .set(bearer(issued.body.token))
        .expect(201);
      const newPath = new URL(rotated.body.calendarUrl as string).pathname;
      const newSecret = newPath.split('/').pop() as string;
      await logged.http.get(path).set('x-request-id', 'log-feed-2').expect(404);
      // Near misses reach no route, and still show no secret: a trailing slash, no extension.
      await logged.http.get(`${newPath}/`).set('x-request-id', 'log-feed-3').expect(404);
      await logged.http.get(newPath.replace('.ics', '')).set('x-request-id', 'log-feed-4').expect(404);
      // A query's values are elided: a search term can be an email address.
      await logged.http
        .get('/v1/volunteers')
        .query({ q: 'feed.reader@example.org' })
        .set(bearer(org.adminToken))
        .set('x-request-id', 'log-feed-5')
        .expect(200);

      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      for (const requestId of ['log-feed-1', 'log-feed-2'])
        expect(records.find((record) => record.requestId === requestId)).toMatchObject({
          msg: 'request completed',
          req: { method: 'GET', url: '/v1/calendar/:feedToken.ics' },
        });
      expect(lines.join('\n')).not.toContain(secret);
      expect(lines.join('\n')).not.toContain(newSecret.replace('.ics', ''));
      expect(records.find((record) => record.requestId === 'log-feed-3')).toMatchObject({
        req: { url: '/v1/calendar/[secret]/' },
      });
      expect(records.find((record) => record.requestId === 'log-feed-5')).toMatchObject({
        req: { url: '/v1/volunteers?q=…' },
      });
      expect(lines.join('\n')).not.toContain('feed.reader@example.org');
    } finally {
      await logged.close();
    }
  });
});
