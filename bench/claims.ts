/**
 * Claim throughput (issues 4 and 13): autocannon against a real server process on PostgreSQL, each
 * scenario beside a ceiling measured in the same run with the same connection count:
 *
 *   B1  one hot shift with 10,000 places, every claim by a new volunteer: every claim succeeds
 *       ceiling: pgbench doing the claim in one statement on a minimal schema
 *   B2  claims by random volunteers spread over 1,000 shifts with room
 *       ceiling: the same one statement over 1,000 shifts
 *   R   a refusal rush on a full shift (409 shift-full)
 *       ceiling: a bare Fastify hello-world in its own process
 *
 * The ceilings never run the project's SQL (a ceiling that moves with the code cannot judge it).
 * The minimal schema has what the claim's guarantees need: a places row guarded by `filled <
 * capacity` under a CHECK, and the signups with the same unique index and btree_gist exclusion
 * constraint. Every claim is an organiser's assignment (`{ volunteerId }`). Rounds alternate API
 * and ceiling; medians of the ratios. When pg_stat_statements is loaded, the top statements of the
 * API's runs by total time are printed.
 *
 *   npm run bench:claims   (BENCH_DATABASE_URL, BENCH_SECONDS=10, BENCH_CONNECTIONS=50,
 *                           BENCH_ROUNDS=3, BENCH_POOL_SIZE=20 for the server's pool)
 *
 * Targets (issue 13): B1 ≥ 90 % with p99 ≤ 150 ms; B2 ≥ 40 %; R ≥ 15 % with p99 ≤ 100 ms; the
 * server's peak RSS ≤ 150 MB; no overbooking and no 5xx.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { generateToken, hashToken } from '../src/core/auth.ts';
import { freePort, startServer } from '../test/support/server-process.ts';
import {
  benchDatabaseUrl,
  benchVolunteerId,
  ensureDatabase,
  insertVolunteersAndEvent,
  machineTicks,
  migratedBenchDatabase,
  peakRssMb,
  startBareProcess,
} from './data.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const poolSize = Number(process.env.BENCH_POOL_SIZE ?? 20);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const volunteerCount = 100_000;
const hotCapacity = 10_000;
const spreadShifts = 1_000;
const ceilingDatabaseUrl = (() => {
  const url = new URL(benchDatabaseUrl);
  url.pathname = `${url.pathname}_ceiling`;
  return url.toString();
})();

/** Deterministic ids, so that a load generator can name a volunteer or shift by its number. */
const volunteerId = benchVolunteerId;
const shiftId = (set: number, n: number) =>
  `00000000-0000-7000-9${String(set).padStart(3, '0')}-${n.toString(16).padStart(12, '0')}`;

/** Shift sets: 1 the hot shift, 2 the spread shifts, 3 the full shift of the refusal rush. */
async function setUp(client: pg.Client) {
  // Fresh statistics first (this machine runs without autovacuum): the cascade's foreign-key checks
  // would otherwise scan the previous run's signups for each deleted shift.
  await client.query('analyze signups');
  await client.query(`delete from organizations where slug = 'bench-claims'`);
  const orgId = uuidv7();
  await client.query(
    `insert into organizations (id, name, slug, timezone, contact_email, longest_shift)
     values ($1, 'Bench claims', 'bench-claims', 'Europe/Berlin', 'b@example.org', interval '1 hour')`,
    [orgId],
  );
  const token = generateToken('key');
  await client.query(
    `insert into api_keys (org_id, id, name, role, token_hash) values ($1, $2, 'bench', 'organiser', $3)`,
    [orgId, uuidv7(), hashToken(token)],
  );
  const eventId = await insertVolunteersAndEvent(client, orgId, volunteerCount);
  for (const [set, count, capacity] of [
    [1, 1, hotCapacity],
    [2, spreadShifts, hotCapacity],
    [3, 1, 1],
  ] as const) {
    // Consecutive hours, a year apart per set: no two shifts a volunteer could hold overlap.
    await client.query(
      `insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity, waitlist)
       select $1, ('00000000-0000-7000-9' || lpad($3::text, 3, '0') || '-' || lpad(to_hex(n), 12, '0'))::uuid, $2,
              date_trunc('hour', now()) + make_interval(days => 30 + 365 * $3::int, hours => n),
              date_trunc('hour', now()) + make_interval(days => 30 + 365 * $3::int, hours => n + 1),
              $5, false
       from generate_series(1, $4::int) n`,
      [orgId, eventId, set, count, capacity],
    );
  }
  await client.query('analyze');
  return { orgId, token };
}

/** Empties the claim scenarios' shifts (the database counts the signups away). */
async function emptyShifts(client: pg.Client, orgId: string) {
  await client.query(
    `delete from signups where org_id = $1 and left(shift_id::text, 23) in ('00000000-0000-7000-9001', '00000000-0000-7000-9002')`,
    [orgId],
  );
}

/** The full shift of the refusal rush: its one place taken. */
async function fillRefusalShift(client: pg.Client, orgId: string) {
  await client.query(`delete from signups where org_id = $1 and shift_id = $2`, [orgId, shiftId(3, 1)]);
  await client.query(
    `insert into signups (org_id, id, shift_id, volunteer_id, status, period)
     select org_id, $3, id, $4, 'confirmed', period from shifts where org_id = $1 and id = $2`,
    [orgId, shiftId(3, 1), uuidv7(), volunteerId(volunteerCount)],
  );
}

const fillSamples = 300;

/**
 * A claim's cost as its shift fills (issue 13: the same on the 9,000th place as on the first):
 * claims one at a time through the API on the hot shift, emptied, then with 9,000 confirmed
 * signups written straight into it; the medians of their latencies.
 */
async function costByFill(client: pg.Client, url: string, orgId: string, token: string) {
  const claimOnce = async (volunteer: number) => {
    const started = performance.now();
    const response = await fetch(`${url}/v1/shifts/${shiftId(1, 1)}/signups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ volunteerId: volunteerId(volunteer) }),
    });
    await response.arrayBuffer();
    if (response.status !== 201) throw new Error(`claim by fill: ${response.status}`);
    return performance.now() - started;
  };
  const sample = async (from: number) => {
    const latencies: number[] = [];
    for (let n = 0; n < fillSamples; n++) latencies.push(await claimOnce(from + n));
    return median(latencies);
  };
  await emptyShifts(client, orgId);
  await sample(90_000); // warm-up
  await emptyShifts(client, orgId);
  const at0 = await sample(90_000);
  await emptyShifts(client, orgId);
  await client.query(
    `insert into signups (org_id, id, shift_id, volunteer_id, status, period)
     select $1, gen_random_uuid(), $2, ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'confirmed', sh.period
     from generate_series(1, 9000) n, shifts sh where sh.org_id = $1 and sh.id = $2`,
    [orgId, shiftId(1, 1)],
  );
  await client.query('analyze signups');
  const at9000 = await sample(90_000);
  return { at0, at9000 };
}

// ── The ceilings ─────────────────────────────────────────────────────────────────────────────

/** The minimal schema of a claim, in a database of its own. */
async function setUpCeiling(): Promise<void> {
  await ensureDatabase(ceilingDatabaseUrl);
  const client = new pg.Client({ connectionString: ceilingDatabaseUrl });
  await client.connect();
  try {
    await client.query(`
      create extension if not exists btree_gist;
      drop table if exists claims, places;
      drop sequence if exists volunteer_numbers;
      create sequence volunteer_numbers;
      create table places (
        id int primary key,
        capacity int not null,
        filled int not null default 0 check (filled between 0 and capacity),
        period tstzrange not null
      );
      create table claims (
        shift_id int not null references places,
        volunteer_id bigint not null,
        period tstzrange not null,
        unique (shift_id, volunteer_id),
        exclude using gist (volunteer_id with =, period with &&)
      );
      insert into places (id, capacity, period)
      select n, ${hotCapacity}, tstzrange(now() + make_interval(hours => n), now() + make_interval(hours => n + 1))
      from generate_series(0, ${spreadShifts}) n;
      analyze;`);
  } finally {
    await client.end();
  }
}

async function resetCeiling(): Promise<void> {
  const client = new pg.Client({ connectionString: ceilingDatabaseUrl });
  await client.connect();
  try {
    await client.query('truncate claims');
    await client.query('update places set filled = 0');
    await client.query('vacuum analyze places, claims');
  } finally {
    await client.end();
  }
}

/**
 * The claim in one statement: the guarded UPDATE takes a place and the row lock, the INSERT adds
 * the signup under the unique index and the exclusion constraint. Shift 0 is B1's hot shift; B2
 * draws one of 1,000. Each claim is a new volunteer (a sequence), as in B1.
 */
const ceilingScript = (hot: boolean) => `${hot ? '\\set s 0' : `\\set s random(1, ${spreadShifts})`}
with taken as (
  update places set filled = filled + 1 where id = :s and filled < capacity returning period
)
insert into claims (shift_id, volunteer_id, period) select :s, nextval('volunteer_numbers'), period from taken;
`;

function runPgbench(script: string, label: string): { rps: number; p50: number; p99: number } {
  const dir = mkdtempSync(join(tmpdir(), 'together-pgbench-'));
  const file = join(dir, `${label}.sql`);
  writeFileSync(file, script);
  const url = new URL(ceilingDatabaseUrl);
  const output = execFileSync(
    'pgbench',
    [
      '-n',
      '-M',
      'prepared',
      '-c',
      String(connections),
      '-j',
      '2',
      '-T',
      String(seconds),
      '-f',
      file,
      '-l',
      '--log-prefix',
      join(dir, 'log'),
      '-h',
      url.hostname,
      '-p',
      url.port || '5432',
      '-U',
      decodeURIComponent(url.username) || 'postgres',
      url.pathname.slice(1),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(output)?.[1] ?? Number.NaN);
  // Per-transaction log: the latency in microseconds is the third column.
  const latencies: number[] = [];
  for (const name of execFileSync('ls', [dir], { encoding: 'utf8' })
    .split('\n')
    .filter((entry) => entry.startsWith('log'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      const micros = Number(line.split(' ')[2]);
      if (Number.isFinite(micros)) latencies.push(micros / 1000);
    }
  }
  return { rps: tps, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** A bare Fastify answering a hello-world: the ceiling of a request that does almost nothing. */
const helloSource = `
import Fastify from 'fastify';
const app = Fastify({ logger: false });
app.post('/*', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
console.log('ceiling ready');
`;

// ── Load ─────────────────────────────────────────────────────────────────────────────────────

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  codes: Record<string, number>;
}

/** autocannon POSTs; `counted` is the status whose answers make the rate (201 claims, 409 refusals). */
async function runAutocannon(
  url: string,
  token: string,
  request: () => { path: string; volunteer: number },
  counted: number | null,
): Promise<Load> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (base) => {
          const { path, volunteer } = request();
          return {
            ...base,
            path,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ volunteerId: volunteerId(volunteer) }),
          };
        },
      },
    ],
  });
  const codes: Record<string, number> = {};
  for (const [status, stats] of Object.entries(result.statusCodeStats ?? {}))
    codes[status] = (stats as { count: number }).count;
  const serverErrors = Object.entries(codes)
    .filter(([status]) => Number(status) >= 500)
    .reduce((sum, [, count]) => sum + count, 0);
  return {
    rps: counted === null ? result.requests.average : (codes[String(counted)] ?? 0) / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + serverErrors,
    codes,
  };
}

/** Share of the machine's cores busy while `run` ran. */
async function machineBusy<T>(run: () => Promise<T> | T): Promise<T & { busy: number }> {
  const before = machineTicks();
  const result = await run();
  const after = machineTicks();
  return { ...result, busy: (after.busy - before.busy) / (after.total - before.total) };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
const median = (values: number[]) => percentile(values, 50);
const percent = (share: number) => `${(share * 100).toFixed(0)} %`;

async function topStatements(client: pg.Client): Promise<string[] | null> {
  try {
    const rows = await client.query(
      `select calls, round(total_exec_time::numeric, 0) as total_ms, round(mean_exec_time::numeric, 3) as mean_ms,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 140) as query
       from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
       order by total_exec_time desc limit 8`,
    );
    return rows.rows.map(
      (row) => `${row.calls} calls, ${row.total_ms} ms, ${row.mean_ms} ms each: ${row.query}`,
    );
  } catch {
    return null;
  }
}

async function main() {
  await migratedBenchDatabase();
  await setUpCeiling();
  const client = new pg.Client({ connectionString: benchDatabaseUrl });
  await client.connect();
  const org = await setUp(client);
  const server = await startServer(
    {
      DATABASE_URL: benchDatabaseUrl,
      LOG_LEVEL: 'warn',
      DATABASE_POOL_SIZE: String(poolSize),
      PORT: String(await freePort()),
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    },
    { compiled: true },
  );
  const hello = await startBareProcess(helloSource);
  const statementsAvailable = await client
    .query('select pg_stat_statements_reset()')
    .then(() => true)
    .catch(() => false);
  type Round = { api: Load & { busy: number }; ceiling: { rps: number; p99: number; busy: number } };
  const scenarios: { name: string; target: number; p99Target: number | null; rounds: Round[] }[] = [
    { name: 'B1 hot shift, 10,000 places', target: 0.9, p99Target: 150, rounds: [] },
    { name: 'B2 spread over 1,000 shifts', target: 0.4, p99Target: null, rounds: [] },
    { name: 'R refusal rush, full shift', target: 0.15, p99Target: 100, rounds: [] },
  ];
  const [b1, b2, refusals] = scenarios as [
    (typeof scenarios)[0],
    (typeof scenarios)[0],
    (typeof scenarios)[0],
  ];
  try {
    await fillRefusalShift(client, org.orgId);
    for (let round = 0; round < rounds; round++) {
      await emptyShifts(client, org.orgId);
      await resetCeiling();
      // B1: volunteers 1, 2, 3, … in turn, each new.
      let next = 0;
      b1.rounds.push({
        api: await machineBusy(() =>
          runAutocannon(
            server.url,
            org.token,
            () => ({ path: `/v1/shifts/${shiftId(1, 1)}/signups`, volunteer: ++next }),
            201,
          ),
        ),
        ceiling: await machineBusy(() => runPgbench(ceilingScript(true), `b1r${round}`)),
      });
      // B2: random volunteers on random shifts (a repeated pair is a 409, not counted).
      b2.rounds.push({
        api: await machineBusy(() =>
          runAutocannon(
            server.url,
            org.token,
            () => ({
              path: `/v1/shifts/${shiftId(2, 1 + Math.floor(Math.random() * spreadShifts))}/signups`,
              volunteer: 1 + Math.floor(Math.random() * (volunteerCount - 1)),
            }),
            201,
          ),
        ),
        ceiling: await machineBusy(() => runPgbench(ceilingScript(false), `b2r${round}`)),
      });
      refusals.rounds.push({
        api: await machineBusy(() =>
          runAutocannon(
            server.url,
            org.token,
            () => ({
              path: `/v1/shifts/${shiftId(3, 1)}/signups`,
              volunteer: 1 + Math.floor(Math.random() * 1000),
            }),
            409,
          ),
        ),
        ceiling: await machineBusy(() =>
          runAutocannon(hello.url, org.token, () => ({ path: '/hello', volunteer: 1 }), null),
        ),
      });
    }
    const byFill = await costByFill(client, server.url, org.orgId, org.token);
    const rss = peakRssMb(server.child.pid);
    const overbooked = await client.query(
      `select count(*)::int as n from shifts s
       where s.org_id = $1 and (select count(*) from signups g where g.org_id = s.org_id and g.shift_id = s.id
         and g.status in ('confirmed', 'attended', 'no_show')) > s.capacity`,
      [org.orgId],
    );
    console.log(
      `${connections} connections, ${seconds} s per run, ${rounds} rounds, server pool ${poolSize}, pgbench -M prepared -c ${connections}`,
    );
    console.log('');
    console.log(
      '| scenario | round | API /s | API p50 / p99 (ms) | ceiling /s | ceiling p99 (ms) | ratio | machine busy (API / ceiling) |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const scenario of scenarios)
      scenario.rounds.forEach(({ api, ceiling }, index) => {
        console.log(
          `| ${scenario.name} | ${index + 1} | ${api.rps.toFixed(0)} | ${api.p50} / ${api.p99} | ${ceiling.rps.toFixed(0)} | ${ceiling.p99.toFixed(1)} | ${(api.rps / ceiling.rps).toFixed(2)} | ${percent(api.busy)} / ${percent(ceiling.busy)} |`,
        );
      });
    console.log('');
    let met = true;
    for (const scenario of scenarios) {
      const ratio = median(scenario.rounds.map(({ api, ceiling }) => api.rps / ceiling.rps));
      const p99 = median(scenario.rounds.map(({ api }) => api.p99));
      const ok = ratio >= scenario.target && (scenario.p99Target === null || p99 <= scenario.p99Target);
      met &&= ok;
      console.log(
        `${scenario.name}: ${percent(ratio)} of its ceiling (target ≥ ${percent(scenario.target)}), API p99 ${p99} ms${scenario.p99Target === null ? '' : ` (target ≤ ${scenario.p99Target})`} ${ok ? '✓' : '✗'}`,
      );
    }
    const errors = scenarios.reduce(
      (sum, s) => sum + s.rounds.reduce((inner, { api }) => inner + api.errors, 0),
      0,
    );
    const overbookedShifts = overbooked.rows[0].n as number;
    met &&= rss <= 150 && errors === 0 && overbookedShifts === 0;
    console.log(
      `server peak RSS ${rss.toFixed(0)} MB (target ≤ 150); overbooked shifts ${overbookedShifts}; 5xx or errors ${errors}`,
    );
    console.log(
      `status codes: ${scenarios.map((s) => `${s.name.split(' ')[0]} ${JSON.stringify(s.rounds.map(({ api }) => api.codes))}`).join('; ')}`,
    );
    const top = statementsAvailable ? await topStatements(client) : null;
    if (top) {
      console.log('');
      console.log('top statements by total time (pg_stat_statements, the API runs and the set-up):');
      for (const line of top) console.log(`  ${line}`);
    } else {
      console.log('(pg_stat_statements is not loaded: see STACK.md "Measuring" for the per-statement costs)');
    }
    const fillRatio = byFill.at9000 / byFill.at0;
    met &&= fillRatio <= 1.2;
    console.log(
      `a claim's cost by fill (one connection, ${fillSamples} claims each, median): ${byFill.at0.toFixed(2)} ms on an empty shift, ` +
        `${byFill.at9000.toFixed(2)} ms with 9,000 confirmed signups: ${fillRatio.toFixed(2)}× (target ≤ 1.2×) ${fillRatio <= 1.2 ? '✓' : '✗'}`,
    );
    console.log(met ? 'targets met' : 'targets missed');
  } finally {
    hello.stop();
    await server.stop();
    await client.end();
  }
}

await main();
