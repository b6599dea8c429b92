/**
 * The server as a user runs it: `npm start` (node --import tsx src/server.ts) on embedded PGlite,
 * persistence across restarts, graceful shutdown with a request in flight, and bad configuration.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bearer, createTestDatabase } from './support/app.ts';
import { onPostgres } from './support/postgres.ts';
import {
  killAllServers,
  repositoryRoot,
  runCli,
  spawnServer,
  startServer,
} from './support/server-process.ts';

const dataDirs: string[] = [];
afterEach(() => killAllServers());
afterAll(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

function temporaryDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'together-pglite-'));
  dataDirs.push(dir);
  return join(dir, 'pglite');
}

const organization = (slug: string) => ({
  name: 'Process Org',
  slug,
  timezone: 'Europe/Berlin',
  contactEmail: 'p@example.org',
});

describe('npm start on embedded PGlite', () => {
  it('is what the start script runs', () => {
    const packageJson = JSON.parse(readFileSync(join(repositoryRoot, 'package.json'), 'utf8'));
    expect(packageJson.scripts.start).toBe('node --import tsx src/server.ts');
  });

  it('serves /health/ready and keeps data across a restart in the default ./data/pglite', async () => {
    // A fresh working directory stands for a fresh clone: no PGLITE_DATA_DIR, so the default applies.
    const workingDir = dirname(temporaryDataDir());
    const first = await startServer({}, { cwd: workingDir });
    await request(first.url).get('/health/ready').expect(200);
    const created = await request(first.url)
      .post('/v1/organizations')
      .send(organization('kept-org'))
      .expect(201);
    expect(await first.stop()).toBe(0);
    expect(existsSync(join(workingDir, 'data/pglite/PG_VERSION'))).toBe(true);

    const second = await startServer({}, { cwd: workingDir });
    const read = await request(second.url)
      .get('/v1/organization')
      .set(bearer(created.body.apiKey.token))
      .expect(200);
    expect(read.body.slug).toBe('kept-org');
    expect(await second.stop()).toBe(0);
  });

  it('refuses a second process on the same data directory instead of losing its writes', async () => {
    const dataDir = temporaryDataDir();
    const server = await startServer({ PGLITE_DATA_DIR: dataDir });
    const seed = await runCli(['seed'], { PGLITE_DATA_DIR: dataDir });
    expect(seed.code).toBe(1);
    expect(seed.output).toContain('in use by process');
    await request(server.url).get('/health/ready').expect(200);
    expect(await server.stop()).toBe(0);
    // Once the server is gone, the command works.
    const after = await runCli(['seed'], { PGLITE_DATA_DIR: dataDir });
    expect(after.code).toBe(0);
    expect(after.output).toMatch(/Admin key \(shown once\): tg_key_/);
  });

  it('keeps nothing with memory://', async () => {
    const first = await startServer({ PGLITE_DATA_DIR: 'memory://' });
    const created = await request(first.url)
      .post('/v1/organizations')
      .send(organization('gone-org'))
      .expect(201);
    expect(await first.stop()).toBe(0);
    const second = await startServer({ PGLITE_DATA_DIR: 'memory://' });
    await request(second.url).get('/v1/organization').set(bearer(created.body.apiKey.token)).expect(401);
    await request(second.url).post('/v1/organizations').send(organization('gone-org')).expect(201);
    expect(await second.stop()).toBe(0);
  });
});

describe('graceful shutdown', () => {
  it(`SIGTERM while a slow request is in flight: the request completes, then the process exits 0 (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, async () => {
    const testDb = onPostgres ? await createTestDatabase() : undefined;
    const server = await startServer(
      testDb ? { DATABASE_URL: testDb.url } : { PGLITE_DATA_DIR: 'memory://' },
    );
    const body = JSON.stringify(organization('slow-org'));
    const url = new URL(server.url);
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const outgoing = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/v1/organizations',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (incoming) => {
          let text = '';
          incoming.on('data', (chunk) => {
            text += chunk;
          });
          incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: text }));
        },
      );
      outgoing.on('error', reject);
      // A slow client: half the body now, the rest after the server was told to stop.
      outgoing.write(body.slice(0, 20));
      setTimeout(() => {
        server.child.kill('SIGTERM');
        setTimeout(() => outgoing.end(body.slice(20)), 700);
      }, 300);
    });
    const result = await response;
    expect(result.status).toBe(201);
    expect(JSON.parse(result.body).organization.slug).toBe('slow-org');
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('shutting down');
    await testDb?.drop();
  });
});

describe('configuration', () => {
  it('a bad value stops start-up with a message naming the variable', async () => {
    const { exited, output } = spawnServer({ PORT: 'not-a-port', LOG_LEVEL: 'chatty' });
    expect(await exited).toBe(1);
    expect(output()).toContain('PORT');
    expect(output()).toContain('LOG_LEVEL');
  });
});
