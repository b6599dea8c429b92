/**
 * Test harness: a real database (a fresh PostgreSQL database per file, copied from the migrated
 * template on the run's server) and the real app listening on an ephemeral port. No mocks.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import pg from 'pg';
import request from 'supertest';
import { inject } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { type Config, configWith } from '../../src/config.ts';
import { createDatabase, type Database } from '../../src/db/client.ts';
import type { Resolver } from '../../src/domains/webhooks/destinations.ts';
import { databaseUrl, testDatabaseUrl } from './postgres.ts';

export interface TestDatabase {
  database: Database;
  /** The connection string (for child processes and raw clients). */
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `together_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: testDatabaseUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${inject('postgresTemplate')}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(testDatabaseUrl, name);
  const database = await createDatabase(
    { DATABASE_URL: url, DATA_DIR: 'unused', DATABASE_POOL_SIZE: 20 },
    { info: () => {}, warn: () => {} },
  );
  return {
    database,
    url,
    drop: async () => {
      await database.close();
      const cleanup = new pg.Client({ connectionString: testDatabaseUrl });
      await cleanup.connect();
      try {
        await cleanup.query(`drop database if exists ${name} with (force)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

export interface TestApp {
  app: FastifyInstance;
  database: Database;
  baseUrl: string;
  http: ReturnType<typeof request>;
  config: Config;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Adds test-only routes (outside /v1) before the app starts. */
  extend?: (app: FastifyInstance) => void;
  logger?: FastifyBaseLogger | false;
  /** How webhook hosts resolve (default: the system's DNS). */
  resolveHost?: Resolver;
}

/** The app on an existing test database; closing it leaves the database open. */
export async function startTestApp(
  database: Database,
  overrides: Partial<Config> = {},
  options: StartOptions = {},
): Promise<TestApp> {
  const config = configWith({ RATE_LIMIT_PER_MINUTE: 0, LOG_LEVEL: 'silent', ...overrides });
  const app = await buildApp({
    config,
    database,
    logger: options.logger ?? false,
    closeDatabase: false,
    ...(options.resolveHost && { resolveHost: options.resolveHost }),
  });
  options.extend?.(app);
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, database, baseUrl, http: request(baseUrl), config, close: () => app.close() };
}

let counter = 0;
export function uniqueSlug(prefix = 'org'): string {
  counter += 1;
  return `${prefix}-${counter}-${randomUUID().slice(0, 8)}`;
}

export interface CreatedOrg {
  id: string;
  slug: string;
  adminToken: string;
  adminKeyId: string;
}

export async function createOrg(
  http: TestApp['http'],
  headers: Record<string, string> = {},
): Promise<CreatedOrg> {
  const slug = uniqueSlug();
  const response = await http
    .post('/v1/organizations')
    .set(headers)
    .send({ name: `Org ${slug}`, slug, timezone: 'Europe/Berlin', contactEmail: `${slug}@example.org` })
    .expect(201);
  return {
    id: response.body.organization.id,
    slug,
    adminToken: response.body.apiKey.token,
    adminKeyId: response.body.apiKey.id,
  };
}

export async function createKey(
  http: TestApp['http'],
  adminToken: string,
  role: 'admin' | 'organiser' | 'viewer',
): Promise<{ id: string; token: string }> {
  const response = await http
    .post('/v1/api-keys')
    .set('authorization', `Bearer ${adminToken}`)
    .send({ name: `${role} key`, role })
    .expect(201);
  return { id: response.body.id, token: response.body.token };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
