/**
 * EXPLAIN (ANALYZE, BUFFERS) of the main list queries on the bench data: the exact SQL the
 * services run, captured from drizzle's logger, for the small and the large organisation.
 * Run after `npm run bench:data`:  npm run bench:explain
 */
import { readFileSync } from 'node:fs';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Principal } from '../src/core/auth.ts';
import type { Db } from '../src/db/client.ts';
import * as schema from '../src/db/schema.ts';
import { listEvents } from '../src/domains/events/service.ts';
import { listShifts } from '../src/domains/shifts/service.ts';
import { listVolunteers } from '../src/domains/volunteers/service.ts';
import { benchDatabaseUrl, tokensFile } from './data.ts';

const pool = new pg.Pool({ connectionString: benchDatabaseUrl, max: 2 });
let captured: { sql: string; params: unknown[] }[] = [];
const db = drizzle({
  client: pool,
  schema,
  logger: { logQuery: (sql, params) => captured.push({ sql, params }) },
}) as unknown as Db;

async function orgOf(slug: string): Promise<{ orgId: string; eventId: string }> {
  const tokens = JSON.parse(readFileSync(tokensFile, 'utf8')) as Record<string, { eventId: string }>;
  const result = await pool.query('select id from organizations where slug = $1', [slug]);
  return { orgId: result.rows[0].id, eventId: tokens[slug]?.eventId ?? '' };
}

async function explain(title: string, run: () => Promise<unknown>) {
  captured = [];
  await run();
  if (captured.length === 0) throw new Error(`no query captured for ${title}`);
  console.log(`### ${title}\n`);
  for (const query of captured) {
    const plan = await pool.query(`explain (analyze, buffers, costs off) ${query.sql}`, query.params);
    // Long id lists (the second query of a page) are shortened for reading.
    const text = plan.rows
      .map((row) => String(row['QUERY PLAN']).replace(/'\{[0-9a-f,-]{200,}\}'/g, "'{…}'"))
      .join('\n');
    console.log(`\`\`\`\n${text}\n\`\`\`\n`);
  }
}

for (const slug of ['bench-small', 'bench-large']) {
  const { orgId, eventId } = await orgOf(slug);
  const viewer: Principal = {
    kind: 'key',
    orgId,
    role: 'viewer',
    keyId: '00000000-0000-7000-8000-000000000000',
  };
  console.log(`## ${slug}\n`);
  await explain('events by date', () =>
    listEvents(db, orgId, {
      limit: 25,
      from: new Date('2026-04-01T00:00:00Z'),
      to: new Date('2026-10-01T00:00:00Z'),
    }),
  );
  await explain('shifts by event', () => listShifts(db, viewer, { limit: 50, eventId }));
  await explain('shifts, available, across events', () =>
    listShifts(db, viewer, { limit: 50, available: true, from: new Date('2026-06-01T00:00:00Z') }),
  );
  await explain('volunteers by q', () => listVolunteers(db, orgId, { limit: 50, q: 'smith' }));
}
await pool.end();
