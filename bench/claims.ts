/**
 * Claim throughput (issue 4): autocannon against a real server process on PostgreSQL, and pgbench
 * running the same SQL with the same concurrency in the same run.
 *
 *   B1  claim rush on one hot 50-place shift (no waitlist): 50 succeed, the rest are refused
 *   B2  claims spread over 1,000 shifts with room: nearly every claim inserts a signup
 *
 * "The same SQL" is captured, not rewritten: one claim runs through the service with drizzle's
 * logger on, and its statements (the token lookup of the auth hook, the rule facts, the guarded
 * claim statement with its outbox rows) become the pgbench script, with the same parameters. The
 * server batches the token lookups and the facts of concurrent requests into one statement per
 * turn of its event loop (src/db/batch.ts); pgbench runs each claim's statements alone, in the
 * form the server uses for a single claim.
 *
 *   npm run bench:claims        (BENCH_DATABASE_URL, BENCH_SECONDS=10, BENCH_CONNECTIONS=50,
 *                                BENCH_ROUNDS=4, BENCH_POOL_SIZE=20 for the server's pool,
 *                                BENCH_PGBENCH_SWEEP=1,2,4,8,20,50 to also run B1's pgbench script
 *                                at other client counts)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { generateToken, hashToken, principalForToken } from '../src/core/auth.ts';
import type { Db } from '../src/db/client.ts';
import * as schema from '../src/db/schema.ts';
import { claimShift } from '../src/domains/signups/service.ts';
import { freePort, startServer } from '../test/support/server-process.ts';
import {
  benchDatabaseUrl,
  insertVolunteersAndEvent,
  machineTicks,
  migratedBenchDatabase,
  peakRssMb,
  processTicks,
} from './data.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const poolSize = Number(process.env.BENCH_POOL_SIZE ?? 20);
const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
/**
 * The ceiling is pgbench at the API's concurrency, as issue 4 defines it. How far that is from
 * pgbench's best depends on the machine: 50 backends on 2 cores contend for the same buffers and
 * the CPU, so the sweep shows the whole curve beside the ratio.
 */
const pgbenchSweep = (process.env.BENCH_PGBENCH_SWEEP ?? '')
  .split(',')
  .filter((entry) => entry.trim() !== '')
  .map(Number);
const volunteerCount = 100_000;
const spreadShifts = 1_000;

/** Deterministic ids, so that pgbench can name a random volunteer or shift by its number. */
const idFor = (kind: 'volunteer' | 'shift', set: number, n: number) =>
  `00000000-0000-7000-${kind === 'volunteer' ? '8000' : `9${String(set).padStart(3, '0')}`}-${n.toString(16).padStart(12, '0')}`;
const idSql = (kind: 'volunteer' | 'shift', set: number, variable: string) =>
  `('00000000-0000-7000-${kind === 'volunteer' ? '8000' : `9${String(set).padStart(3, '0')}`}-' || lpad(to_hex(:${variable}::int), 12, '0'))::uuid`;

interface BenchOrg {
  orgId: string;
  token: string;
  tokenHash: string;
}

/** Shift sets: 0 hot shift for the API, 1 hot shift for pgbench, 2 spread for the API, 3 spread for pgbench. */
async function setUp(client: pg.Client): Promise<BenchOrg> {
  // Fresh statistics first: the previous run's signups were counted when the table was empty (this
  // machine runs without autovacuum), and the foreign-key checks of the cascade would then scan
  // them for each deleted shift (≈ 35 s instead of ≈ 1 s).
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
    [0, 1, 50],
    [1, 1, 50],
    [2, spreadShifts, 10_000],
    [3, spreadShifts, 10_000],
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
  return { orgId, token, tokenHash: hashToken(token) };
}

/**
 * The statements one claim runs, with their parameters, from drizzle's logger. (On a single pooled
 * client, so that the hot path's prepared statements go through drizzle, and its logger, too.)
 */
async function captureClaimSql(org: BenchOrg): Promise<{ sql: string; params: unknown[] }[]> {
  const pool = new pg.Pool({ connectionString: benchDatabaseUrl, max: 1 });
  const client = await pool.connect();
  const captured: { sql: string; params: unknown[] }[] = [];
  const db = drizzle({
    client,
    schema,
    logger: { logQuery: (sql, params) => captured.push({ sql, params }) },
  }) as unknown as Db;
  try {
    const principal = await principalForToken(db, org.token);
    if (!principal) throw new Error('bench key not found');
    // In a transaction, so that the facts query takes its single-claim form (the server batches it
    // across the requests of one event-loop turn, which pgbench, one claim per client, cannot). The
    // script drops BEGIN and COMMIT: without an Idempotency-Key the server runs no transaction.
    await db.transaction((tx) =>
      claimShift(
        tx,
        principal,
        idFor('shift', 3, spreadShifts),
        { volunteerId: idFor('volunteer', 0, volunteerCount) },
        db,
      ),
    );
  } finally {
    client.release();
    await pool.end();
  }
  return captured;
}

/** A pgbench script and the variables (`-D name=value`) it reads. */
interface PgbenchScript {
  text: string;
  variables: Map<string, string>;
}

/**
 * Turns the captured statements into a pgbench script drawing a random volunteer and shift. Like
 * the server, it runs the guarded claim only when the rule facts leave a place (a full shift is
 * refused after the facts query): the facts go into pgbench variables and an \if decides.
 *
 * Every value the server sends as a parameter stays a parameter: constants become `-D` variables,
 * which `-M prepared` binds like the server's named statements do, so that PostgreSQL caches (or
 * re-plans) the statements alike. The drawn volunteer and shift are expressions of pgbench's
 * random numbers; the ids the server makes per claim come from one `gen_random_uuid()` select,
 * run only when the claim runs.
 */
function pgbenchScript(
  captured: { sql: string; params: unknown[] }[],
  org: BenchOrg,
  shiftSet: number,
  shiftCount: number,
): PgbenchScript {
  const capturedShift = idFor('shift', 3, spreadShifts);
  const capturedVolunteer = idFor('volunteer', 0, volunteerCount);
  const variables = new Map<string, string>();
  const freshIds = new Map<string, string>();
  const statements: { text: string; usesFreshIds: boolean; isFacts: boolean }[] = [];
  for (const [statementIndex, { sql, params }] of captured.entries()) {
    if (/^\s*(begin|commit|rollback)\b/i.test(sql)) continue; // the server runs the claim without a transaction
    let text = sql;
    let usesFreshIds = false;
    // Replace from the highest number down, so that $1 does not eat the start of $12.
    for (let index = params.length; index >= 1; index--) {
      const value = params[index - 1];
      let replacement: string;
      if (value === capturedShift) replacement = idSql('shift', shiftSet, 's');
      else if (value === capturedVolunteer) replacement = idSql('volunteer', 0, 'v');
      // A batch of one (db/batch.ts): the same array, drawn.
      else if (value === `{"${capturedShift}"}`) replacement = `array[${idSql('shift', shiftSet, 's')}]`;
      else if (value === `{"${capturedVolunteer}"}`) replacement = `array[${idSql('volunteer', 0, 'v')}]`;
      else if (
        typeof value === 'string' &&
        (value.includes(capturedShift) || value.includes(capturedVolunteer))
      ) {
        // Inside an array or a document, the drawn id could not be substituted: the script would
        // keep claiming the captured shift. Fail rather than measure something else.
        throw new Error(`statement ${statementIndex} carries the drawn shift or volunteer inside ${value}`);
      } else if (value === null) replacement = 'null';
      else if (
        typeof value === 'string' &&
        /^[0-9a-f]{8}-[0-9a-f-]{27}$/.test(value) &&
        value !== org.orgId
      ) {
        if (!freshIds.has(value)) freshIds.set(value, `u${freshIds.size + 1}`);
        replacement = `:${freshIds.get(value)}`;
        usesFreshIds = true;
      } else {
        const name = `p${statementIndex}_${index}`;
        variables.set(name, value instanceof Date ? value.toISOString() : String(value));
        replacement = `:${name}`;
      }
      text = text.replaceAll(`$${index}`, replacement);
    }
    const statement = text.replace(/\s+/g, ' ').trim();
    statements.push({ text: statement, usesFreshIds, isFacts: statement.includes('"overlappingSignupId"') });
  }
  const lines = [`\\set v random(1, ${volunteerCount})`, `\\set s random(1, ${shiftCount})`];
  let factsSeen = false;
  let freshIdsDrawn = false;
  for (const statement of statements) {
    if (statement.usesFreshIds && !freshIdsDrawn) {
      freshIdsDrawn = true;
      const columns = [...freshIds.values()].map((name) => `gen_random_uuid() as ${name}`);
      lines.push(`select ${columns.join(', ')} \\gset`);
    }
    if (statement.isFacts && !factsSeen) {
      factsSeen = true;
      lines.push(`${statement.text} \\gset f_`, '\\if :f_confirmedCount < :f_capacity');
      continue;
    }
    lines.push(`${statement.text};`);
  }
  if (!factsSeen) throw new Error('the captured claim has no facts query');
  lines.push('\\endif');
  return { text: `${lines.join('\n')}\n`, variables };
}

function runPgbench(
  script: PgbenchScript,
  label: string,
  clients = connections,
): { tps: number; p50: number; p99: number; aborted: number } {
  const dir = mkdtempSync(join(tmpdir(), 'together-pgbench-'));
  const file = join(dir, `${label}.sql`);
  writeFileSync(file, script.text);
  const url = new URL(benchDatabaseUrl);
  // A random volunteer drawn twice at the same moment makes pgbench's client fail on the unique
  // index (the server would answer 409); pgbench then stops that client. Rare with 100,000
  // volunteers; the run's figures stand, and the count of such clients is reported.
  let output: string;
  let aborted = 0;
  try {
    output = execFileSync(
      'pgbench',
      [
        '-n',
        '-M',
        'prepared',
        '-c',
        String(clients),
        '-j',
        '2',
        '-T',
        String(seconds),
        '-f',
        file,
        ...[...script.variables].flatMap(([name, value]) => ['-D', `${name}=${value}`]),
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
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    if (!failed.stdout?.includes('tps =')) throw error;
    output = failed.stdout;
    aborted = (failed.stderr?.match(/aborted in command/g) ?? []).length;
  }
  const tps = Number(/tps = ([\d.]+)/.exec(output)?.[1] ?? Number.NaN);
  // Per-transaction log: latency in microseconds is the third column.
  const latencies: number[] = [];
  for (const name of execFileSync('ls', [dir], { encoding: 'utf8' })
    .split('\n')
    .filter((entry) => entry.startsWith('log'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      const micros = Number(line.split(' ')[2]);
      if (Number.isFinite(micros)) latencies.push(micros / 1000);
    }
  }
  latencies.sort((a, b) => a - b);
  const at = (quantile: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(quantile * latencies.length))] ?? Number.NaN;
  return { tps, p50: at(0.5), p99: at(0.99), aborted };
}

async function runAutocannon(url: string, token: string, shiftSet: number, shiftCount: number) {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => {
          const volunteer = 1 + Math.floor(Math.random() * volunteerCount);
          const shift = 1 + Math.floor(Math.random() * shiftCount);
          return {
            ...request,
            path: `/v1/shifts/${idFor('shift', shiftSet, shift)}/signups`,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ volunteerId: idFor('volunteer', 0, volunteer) }),
          };
        },
      },
    ],
  });
  const serverErrors = Object.entries(result.statusCodeStats ?? {})
    .filter(([status]) => Number(status) >= 500)
    .reduce((sum, [, stats]) => sum + (stats as { count: number }).count, 0);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + serverErrors,
    codes: result.statusCodeStats,
  };
}

interface CpuShare {
  /** Share of all cores busy during the run (0–1). */
  machine: number;
  /** CPU time of the API process over the run's wall time (1 = one core). */
  server?: number;
}

/** Runs one load and reports where the CPU went: is the machine saturated, and how much is Node's? */
async function measured<T>(
  serverPid: number | undefined,
  run: () => Promise<T>,
): Promise<T & { cpu: CpuShare }> {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const machineBefore = machineTicks();
  const serverBefore = serverPid ? processTicks(serverPid) : 0;
  const started = performance.now();
  const result = await run();
  const wallSeconds = (performance.now() - started) / 1000;
  const machineAfter = machineTicks();
  const cpu: CpuShare = {
    machine: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
  };
  if (serverPid) cpu.server = (processTicks(serverPid) - serverBefore) / ticksPerSecond / wallSeconds;
  return { ...result, cpu };
}

async function main() {
  await migratedBenchDatabase();
  const client = new pg.Client({ connectionString: benchDatabaseUrl });
  await client.connect();
  const org = await setUp(client);
  const captured = await captureClaimSql(org);
  if (process.env.BENCH_SHOW_SQL) console.log(JSON.stringify(captured, null, 2));
  // One transaction: the database checks at commit that every shift's counters are its signups.
  await client.query('begin');
  await client.query(`delete from signups where org_id = $1`, [org.orgId]);
  await client.query(`update shifts set confirmed_count = 0, waitlist_count = 0 where org_id = $1`, [
    org.orgId,
  ]);
  await client.query('commit');
  await client.end();

  const server = await startServer(
    {
      DATABASE_URL: benchDatabaseUrl,
      LOG_LEVEL: 'warn',
      DATABASE_POOL_SIZE: String(poolSize),
      PORT: String(await freePort()),
      // For diagnosis, e.g. BENCH_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    },
    { compiled: true },
  );
  const resetClient = new pg.Client({ connectionString: benchDatabaseUrl });
  await resetClient.connect();
  try {
    type Round = {
      app: Awaited<ReturnType<typeof runAutocannon>> & { cpu: CpuShare };
      bench: ReturnType<typeof runPgbench> & { cpu: CpuShare };
    };
    const scenarios = [
      { name: 'B1 hot 50-place shift', target: 0.9, sets: [0, 1], shiftCount: 1, rounds: [] as Round[] },
      {
        name: 'B2 spread over 1,000 shifts',
        target: 0.6,
        sets: [2, 3],
        shiftCount: spreadShifts,
        rounds: [] as Round[],
      },
    ];
    let rssAfterB1 = Number.NaN;
    const sweep: { clients: number; tps: number }[] = [];
    for (const scenario of scenarios) {
      const [appSet, benchSet] = scenario.sets as [number, number];
      // API and pgbench take turns, so that a slow moment of the machine (this 2-core box has
      // neighbours: the same build's CPU per request varied 2× between minutes) falls on one pair
      // and not on one side of every ratio; the median pair is the figure. (Runs of 10 s: in
      // shorter ones pgbench's 50 fresh backends spend a larger share warming their caches, while
      // the server's pool is warm, which flatters the API.)
      for (let round = 0; round < rounds; round++) {
        await emptyShifts(resetClient, org.orgId, scenario.sets);
        const app = await measured(server.child.pid, () =>
          runAutocannon(server.url, org.token, appSet, scenario.shiftCount),
        );
        const bench = await measured(undefined, async () =>
          runPgbench(pgbenchScript(captured, org, benchSet, scenario.shiftCount), `s${benchSet}r${round}`),
        );
        scenario.rounds.push({ app, bench });
      }
      if (scenario.shiftCount === 1) {
        rssAfterB1 = peakRssMb(server.child.pid);
        // The hot shift is full by now: every claim of the sweep is refused, as in the rounds.
        for (const clients of pgbenchSweep) {
          const { tps } = runPgbench(pgbenchScript(captured, org, benchSet, 1), `sweep${clients}`, clients);
          sweep.push({ clients, tps });
        }
      }
    }
    const rss = peakRssMb(server.child.pid);
    console.log(
      `${connections} connections, ${seconds} s per run, ${rounds} rounds, server pool ${poolSize}, pgbench -M prepared -c ${connections}`,
    );
    console.log('');
    console.log(
      '| scenario | round | API req/s | API p50 / p99 (ms) | pgbench tps | pgbench p50 / p99 (ms) | ratio | machine busy (API / pgbench) | API process CPU |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const scenario of scenarios) {
      scenario.rounds.forEach(({ app, bench }, index) => {
        console.log(
          `| ${scenario.name} | ${index + 1} | ${app.rps.toFixed(0)} | ${app.p50} / ${app.p99} | ${bench.tps.toFixed(0)} | ${bench.p50.toFixed(1)} / ${bench.p99.toFixed(1)} | ${(app.rps / bench.tps).toFixed(2)} | ${percent(app.cpu.machine)} / ${percent(bench.cpu.machine)} | ${percent(app.cpu.server ?? Number.NaN)} of a core |`,
        );
      });
    }
    console.log('');
    for (const scenario of scenarios) {
      const ratios = scenario.rounds.map(({ app, bench }) => app.rps / bench.tps);
      const worstP99 = Math.max(...scenario.rounds.map(({ app }) => app.p99));
      console.log(
        `${scenario.name}: median ratio ${median(ratios).toFixed(2)} (target ≥ ${scenario.target}; rounds ${ratios.map((ratio) => ratio.toFixed(2)).join(', ')}), API p99 at most ${worstP99} ms`,
      );
    }
    console.log(
      `server peak RSS ${rss.toFixed(0)} MB (${rssAfterB1.toFixed(0)} MB by the end of B1; target ≤ 150); B1 p99 target ≤ 150 ms`,
    );
    if (sweep.length > 0) {
      const b1Rates = scenarios[0]?.rounds.map(({ app }) => app.rps) ?? [];
      const best = Math.max(...sweep.map(({ tps }) => tps));
      console.log(
        `B1's pgbench script by client count: ${sweep.map(({ clients, tps }) => `${clients}: ${tps.toFixed(0)} tps`).join(', ')}; the API's median B1 rate is ${(median(b1Rates) / best).toFixed(2)} of the best of these`,
      );
    }
    const codes = (scenario: (typeof scenarios)[number]) =>
      JSON.stringify(scenario.rounds.map(({ app }) => app.codes));
    console.log(
      `status codes: ${scenarios.map((scenario) => `${scenario.name} ${codes(scenario)}`).join('; ')}`,
    );
    const aborted = scenarios.map((scenario) =>
      scenario.rounds.reduce((sum, { bench }) => sum + bench.aborted, 0),
    );
    console.log(
      `pgbench clients stopped by a duplicate draw: B1 ${aborted[0]}, B2 ${aborted[1]} (of ${connections} per run)`,
    );
    const errors = scenarios.reduce(
      (sum, scenario) => sum + scenario.rounds.reduce((inner, { app }) => inner + app.errors, 0),
      0,
    );
    if (errors > 0) {
      console.log('errors or 5xx during the runs: the figures are not valid');
      process.exitCode = 1;
    }
  } finally {
    await resetClient.end();
    await server.stop();
  }
}

/**
 * Each round starts from the same state: B1's hot shifts empty (50 places to take, as in a rush),
 * B2's shifts without the previous rounds' signups (whose volunteers a later draw could pick again:
 * the server answers 409, but pgbench stops the client).
 */
async function emptyShifts(client: pg.Client, orgId: string, sets: number[]) {
  const ids = `(${sets.map((set) => `'00000000-0000-7000-9${String(set).padStart(3, '0')}'`).join(', ')})`;
  // One transaction: the database checks at commit that every shift's counters are its signups.
  await client.query('begin');
  await client.query(`delete from signups where org_id = $1 and left(shift_id::text, 23) in ${ids}`, [orgId]);
  await client.query(
    `update shifts set confirmed_count = 0, waitlist_count = 0 where org_id = $1 and left(id::text, 23) in ${ids}`,
    [orgId],
  );
  await client.query('commit');
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const percent = (share: number) => `${(share * 100).toFixed(0)} %`;

await main();
