/**
 * Several API processes on one PostgreSQL (DATABASE_URL), and PostgreSQL going away under a
 * serving process.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_LOCK_KEY } from '../src/db/client.ts';
import { bearer } from './support/app.ts';
import { databaseUrl, testDatabaseUrl } from './support/postgres.ts';
import {
  eventually,
  killAllServers,
  repositoryRoot,
  type ServerProcess,
  spawnServer,
  startServer,
} from './support/server-process.ts';
import { startTcpProxy, type TcpProxy, throughProxy } from './support/tcp-proxy.ts';

const created: string[] = [];

async function adminQuery(text: string) {
  const client = new pg.Client({ connectionString: testDatabaseUrl });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

/** A brand-new, unmigrated database. */
async function emptyDatabase(): Promise<string> {
  const name = `together_proc_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  await adminQuery(`create database ${name}`);
  created.push(name);
  return name;
}

afterEach(() => killAllServers());
afterAll(async () => {
  for (const name of created) await adminQuery(`drop database if exists ${name} with (force)`);
});

describe('three processes on one database', () => {
  it('apply the migrations exactly once when started at the same moment, then all serve', async () => {
    const name = await emptyDatabase();
    const url = databaseUrl(testDatabaseUrl, name);
    const servers = await Promise.all([1, 2, 3].map(() => startServer({ DATABASE_URL: url })));
    for (const server of servers) await request(server.url).get('/health/ready').expect(200);

    const journal = JSON.parse(readFileSync(join(repositoryRoot, 'migrations/meta/_journal.json'), 'utf8'));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const applied = await client.query('select hash from drizzle.__drizzle_migrations');
      expect(applied.rowCount).toBe(journal.entries.length);
      expect(new Set(applied.rows.map((row) => row.hash)).size).toBe(journal.entries.length);
    } finally {
      await client.end();
    }

    // One process's write is visible to the others: they share the database, not memory.
    const [first, , third] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const org = await request(first.url)
      .post('/v1/organizations')
      .send({ name: 'Shared', slug: 'shared-org', timezone: 'UTC', contactEmail: 's@example.org' })
      .expect(201);
    await request(third.url).get('/v1/organization').set(bearer(org.body.apiKey.token)).expect(200);
    for (const server of servers) expect(await server.stop()).toBe(0);
  });
});

describe('a stop asked for during start-up', () => {
  it('SIGTERM while waiting for another process to migrate: the migration completes, nothing listens, exit 0', async () => {
    const name = await emptyDatabase();
    const url = databaseUrl(testDatabaseUrl, name);
    // Another process is migrating: this one waits for the lock, after its app is built.
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      await other.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const server = spawnServer({ DATABASE_URL: url });
      await eventually(
        async () =>
          (
            await other.query(
              "select 1 from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())",
            )
          ).rowCount === 1,
        30_000,
        'the server to wait for the migration lock',
      );
      server.child.kill('SIGTERM');
      await eventually(
        async () => server.output().includes('stopping during start-up'),
        10_000,
        'the signal',
      );
      expect(server.child.exitCode).toBeNull(); // a migration is never cut short
      await other.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      expect(await server.exited).toBe(0);
      expect(server.output()).not.toContain('Server listening');
      expect(server.output()).not.toContain('Together is serving');
      const journal = JSON.parse(readFileSync(join(repositoryRoot, 'migrations/meta/_journal.json'), 'utf8'));
      const applied = await other.query('select count(*)::int as n from drizzle.__drizzle_migrations');
      expect(applied.rows[0].n).toBe(journal.entries.length);
    } finally {
      await other.end();
    }
  });
});

describe("PostgreSQL terminating the server's connections", () => {
  it('the process survives the admin-shutdown errors (57P01) of its idle connections and carries on', async () => {
    const name = await emptyDatabase();
    const server = await startServer({ DATABASE_URL: databaseUrl(testDatabaseUrl, name) });
    const org = await request(server.url)
      .post('/v1/organizations')
      .send({ name: 'Terminated', slug: 'terminated-org', timezone: 'UTC', contactEmail: 't@example.org' })
      .expect(201);
    const token = org.body.apiKey.token as string;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        request(server.url).get('/v1/organization').set(bearer(token)).expect(200),
      ),
    );

    const terminated = await adminQuery(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`,
    );
    expect(terminated.rowCount).toBeGreaterThan(0);
    await eventually(
      async () => (await request(server.url).get('/v1/organization').set(bearer(token))).status === 200,
      10_000,
      'recovery',
    );
    await request(server.url)
      .post('/v1/api-keys')
      .set(bearer(token))
      .send({ name: 'after', role: 'viewer' })
      .expect(201);
    expect(server.child.exitCode).toBeNull();
    expect(server.output()).toContain('idle database connection lost');
    expect(await server.stop()).toBe(0);
  });
});

describe('PostgreSQL restart while serving', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy(testDatabaseUrl);
  });
  afterAll(() => proxy?.close());

  it('the process survives, answers 503 unavailable during the outage, and recovers', async () => {
    const name = await emptyDatabase();
    const server = await startServer({
      DATABASE_URL: throughProxy(databaseUrl(testDatabaseUrl, name), proxy),
    });
    const org = await request(server.url)
      .post('/v1/organizations')
      .send({ name: 'Outage', slug: 'outage-org', timezone: 'UTC', contactEmail: 'o@example.org' })
      .expect(201);
    const token = org.body.apiKey.token as string;
    // Warm the pool so that idle connections exist when the database goes away.
    await Promise.all(
      Array.from({ length: 5 }, () =>
        request(server.url).get('/v1/organization').set(bearer(token)).expect(200),
      ),
    );

    await proxy.cut();
    await eventually(
      async () => (await request(server.url).get('/health/ready')).status === 503,
      10_000,
      'readiness 503',
    );
    for (let attempt = 0; attempt < 5; attempt++) {
      const during = await request(server.url).get('/v1/organization').set(bearer(token));
      expect(during.status).toBe(503);
      expect(during.body.code).toBe('unavailable');
      expect(during.headers['retry-after']).toBeDefined();
      const write = await request(server.url)
        .post('/v1/api-keys')
        .set(bearer(token))
        .send({ name: 'x', role: 'viewer' });
      expect(write.status).toBe(503);
    }
    expect(server.child.exitCode).toBeNull();

    await proxy.restore();
    await eventually(
      async () => (await request(server.url).get('/health/ready')).status === 200,
      20_000,
      'readiness 200',
    );
    await request(server.url).get('/v1/organization').set(bearer(token)).expect(200);
    await request(server.url)
      .post('/v1/api-keys')
      .set(bearer(token))
      .send({ name: 'after', role: 'viewer' })
      .expect(201);
    expect(server.output()).not.toMatch(/"level":50.*unhandled error/);
    expect(await server.stop()).toBe(0);
  });
});
