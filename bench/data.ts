/**
 * Generates large organisations in PostgreSQL for the list benchmarks (bench/lists.ts):
 *   bench-large: 100,000 volunteers, 10,000 events, 1,000,000 shifts
 *   bench-small:   1,000 volunteers,    100 events,    10,000 shifts
 * Run: BENCH_DATABASE_URL=postgres://… npm run bench:data   (default: a database named
 * together_bench on 127.0.0.1, created if missing). Writes the viewer tokens to bench/.tokens.json.
 * Rows are made by generate_series in SQL: minutes, not hours, on this machine.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { generateToken, hashToken } from '../src/core/auth.ts';
import { createDatabase } from '../src/db/client.ts';
import { freePort } from '../test/support/server-process.ts';

export const benchDatabaseUrl =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/together_bench';
export const tokensFile = new URL('./.tokens.json', import.meta.url);

interface OrgSize {
  slug: string;
  volunteers: number;
  events: number;
  shiftsPerEvent: number;
}

const sizes: OrgSize[] = [
  { slug: 'bench-small', volunteers: 1_000, events: 100, shiftsPerEvent: 100 },
  { slug: 'bench-large', volunteers: 100_000, events: 10_000, shiftsPerEvent: 100 },
];

/** The bench database, created if missing and migrated: where every bench starts. */
export async function migratedBenchDatabase(): Promise<void> {
  await ensureDatabase(benchDatabaseUrl);
  const database = await createDatabase({
    DATABASE_URL: benchDatabaseUrl,
    DATA_DIR: 'unused',
    DATABASE_POOL_SIZE: 2,
  });
  await database.migrate();
  await database.close();
}

/** The peak resident memory of a process (VmHWM), in MB. */
export function peakRssMb(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

export async function ensureDatabase(url: string) {
  const target = new URL(url);
  const name = target.pathname.slice(1);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
  if (exists.rowCount === 0) await client.query(`create database ${name}`);
  await client.end();
}

async function generate(
  client: pg.Client,
  size: OrgSize,
): Promise<{ slug: string; token: string; eventId: string }> {
  const orgId = uuidv7();
  // Fresh statistics first (no autovacuum here): with stale ones, the foreign-key check of each
  // deleted shift scans every signup instead of probing an index.
  await client.query('analyze signups');
  await client.query('delete from organizations where slug = $1', [size.slug]);
  await client.query(
    `insert into organizations (id, name, slug, timezone, contact_email) values ($1, $2, $3, 'Europe/Berlin', 'bench@example.org')`,
    [orgId, `Bench ${size.slug}`, size.slug],
  );
  const token = generateToken('key');
  await client.query(
    `insert into api_keys (org_id, id, name, role, token_hash) values ($1, $2, 'bench', 'admin', $3)`,
    [orgId, uuidv7(), hashToken(token)],
  );
  const started = Date.now();
  // gen_random_uuid() ids are v4, not v7: fine for data that only has to be realistic in size.
  await client.query(
    `insert into roles (org_id, id, name, restricted)
     select $1, gen_random_uuid(), 'Role ' || n, n % 3 = 0 from generate_series(1, 10) n`,
    [orgId],
  );
  const surnames = [
    'Smith',
    'Garcia',
    'Müller',
    'Rossi',
    'Kowalski',
    'Nguyen',
    'Okafor',
    'Silva',
    'Dubois',
    'Jensen',
  ];
  await client.query(
    `insert into volunteers (org_id, id, name, email, created_at, updated_at)
     select $1, gen_random_uuid(),
            'Volunteer ' || lpad(n::text, 6, '0') || ' ' || ($2::text[])[1 + n % 10],
            'volunteer' || n || '@bench.example',
            now() - (n || ' minutes')::interval, now() - (n || ' minutes')::interval
     from generate_series(1, $3::int) n`,
    [orgId, surnames, size.volunteers],
  );
  await client.query(
    `insert into events (org_id, id, title, timezone, status, visibility, tags)
     select $1, gen_random_uuid(), 'Event ' || n || case when n % 7 = 0 then ' food sort' else ' garden day' end,
            'Europe/Berlin', (case when n % 10 = 0 then 'draft' else 'published' end)::event_status, 'public',
            case when n % 5 = 0 then array['food'] else array['garden'] end
     from generate_series(1, $2::int) n`,
    [orgId, size.events],
  );
  // Each event gets its shifts on consecutive half days; events are spread over two years. Their
  // confirmed counts are made up, without signup rows: the list benchmarks only need `available` to
  // vary, and a million shifts' worth of real signups would take longer to make than to measure. So
  // this one bulk load runs with triggers off (session_replication_role), past the rule that
  // counters follow signups (migration 0016); no benchmark writes to these shifts.
  await client.query('set session_replication_role = replica');
  await client.query(
    `insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity, confirmed_count, waitlist_count)
     select e.org_id, gen_random_uuid(), e.id,
            timestamptz '2026-01-01 08:00Z' + ((e.rn * 7) % 730 || ' days')::interval + (s || ' hours')::interval * 12,
            timestamptz '2026-01-01 08:00Z' + ((e.rn * 7) % 730 || ' days')::interval + (s || ' hours')::interval * 12 + interval '3 hours',
            10, (e.rn + s) % 11, 0
     from (select org_id, id, row_number() over (order by id) as rn from events where org_id = $1) e,
          generate_series(0, $2::int - 1) s`,
    [orgId, size.shiftsPerEvent],
  );
  await client.query('reset session_replication_role');
  // Fresh statistics before the next statement: this machine runs without autovacuum, and with the
  // counts of an earlier, smaller table the planner joined the spans by scanning every shift once
  // per event (a statement of hours instead of seconds).
  await client.query('analyze shifts');
  await client.query(
    `update events e set starts_at = span.min_start, ends_at = span.max_end
     from (select event_id, min(starts_at) min_start, max(ends_at) max_end from shifts where org_id = $1 group by event_id) span
     where e.org_id = $1 and e.id = span.event_id`,
    [orgId],
  );
  const event = await client.query(
    `select id from events where org_id = $1 and status = 'published' order by starts_at, id limit 1 offset 10`,
    [orgId],
  );
  console.log(`${size.slug}: generated in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { slug: size.slug, token, eventId: event.rows[0].id };
}

async function main() {
  await migratedBenchDatabase();
  const client = new pg.Client({ connectionString: benchDatabaseUrl });
  await client.connect();
  const orgs: Record<string, { token: string; eventId: string }> = {};
  for (const size of sizes) {
    const result = await generate(client, size);
    orgs[result.slug] = { token: result.token, eventId: result.eventId };
  }
  await client.query('vacuum analyze');
  await client.end();
  writeFileSync(tokensFile, `${JSON.stringify(orgs, null, 2)}\n`);
  console.log('wrote bench/.tokens.json');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** User plus system jiffies of one process, from /proc/<pid>/stat. */
export function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** The id of volunteer `n` (from 1) of `insertVolunteersAndEvent`. */
export const benchVolunteerId = (n: number) => `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;

/**
 * `count` volunteers with ids a load generator can name by number (`benchVolunteerId`), and a
 * published event; returns the event's id.
 */
export async function insertVolunteersAndEvent(
  client: pg.Client,
  orgId: string,
  count: number,
): Promise<string> {
  await client.query(
    `insert into volunteers (org_id, id, name, email)
     select $1, ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'Bench ' || n, 'bench' || n || '@example.org'
     from generate_series(1, $2::int) n`,
    [orgId, count],
  );
  const eventId = uuidv7();
  await client.query(
    `insert into events (org_id, id, title, timezone, status) values ($1, $2, 'Bench', 'Europe/Berlin', 'published')`,
    [orgId, eventId],
  );
  return eventId;
}

/**
 * A ceiling in a process of its own (like the server): `source`, an ES module that resolves this
 * repository's packages (it is written next to them and run from here), listens on `PORT` and
 * prints `ceiling ready`.
 */
export async function startBareProcess(
  source: string,
  env: Record<string, string> = {},
): Promise<{ url: string; pid: number | undefined; stop: () => void }> {
  const port = await freePort();
  const script = join(process.cwd(), `.bench-ceiling-${process.pid}-${port}.mjs`);
  writeFileSync(script, source);
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('ceiling ready') && resolve());
    child.on('exit', (code) => reject(new Error(`the ceiling exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(script, { force: true });
    },
  };
}
