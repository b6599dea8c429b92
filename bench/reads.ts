/**
 * Public read throughput (issue 11): a partner's popular event, linked from social media, read by
 * many browsers at once. autocannon against a real server process on PostgreSQL, and against a
 * bare Fastify process serving the same bytes from memory, in the same run with the same settings.
 *
 *   R1  full reads of an event's public shifts (200 shifts)   ceiling: bare Fastify, same bytes
 *   R2  revalidations with the current ETag, answered 304      ceiling: bare Fastify answering 304
 *   R3  the event's calendar.ics                               ceiling: bare Fastify, same bytes
 *
 * Targets: R1 ≥ 50 % of its ceiling, R2 ≥ 60 %, no 5xx, the server's peak RSS ≤ 150 MB.
 *
 *   npm run bench:reads     (BENCH_DATABASE_URL, BENCH_SECONDS=10, BENCH_CONNECTIONS=50, BENCH_ROUNDS=3)
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { freePort, startServer } from '../test/support/server-process.ts';
import { benchDatabaseUrl, migratedBenchDatabase, peakRssMb, startBareProcess } from './data.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'info';
const rateLimit = process.env.BENCH_RATE_LIMIT ?? '100000000';
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const shiftCount = 200;
const slug = 'bench-reads';

async function setUp(): Promise<{ eventId: string }> {
  await migratedBenchDatabase();
  const client = new pg.Client({ connectionString: benchDatabaseUrl });
  await client.connect();
  try {
    await client.query('begin');
    await client.query(`delete from shifts where org_id in (select id from organizations where slug = $1)`, [
      slug,
    ]);
    await client.query(`delete from events where org_id in (select id from organizations where slug = $1)`, [
      slug,
    ]);
    await client.query(`delete from roles where org_id in (select id from organizations where slug = $1)`, [
      slug,
    ]);
    await client.query(`delete from organizations where slug = $1`, [slug]);
    const orgId = uuidv7();
    await client.query(
      `insert into organizations (id, name, slug, timezone, contact_email, longest_shift)
       values ($1, 'Bench reads', $2, 'Europe/Berlin', 'reads@example.org', interval '3 hours')`,
      [orgId, slug],
    );
    const roleId = uuidv7();
    await client.query(`insert into roles (org_id, id, name) values ($1, $2, 'Sorting')`, [orgId, roleId]);
    const eventId = uuidv7();
    await client.query(
      `insert into events (org_id, id, title, timezone, status, visibility, published_at)
       values ($1, $2, 'Harvest festival', 'Europe/Berlin', 'published', 'public', now())`,
      [orgId, eventId],
    );
    // 200 shifts over the coming weeks, every third one with a role, some with a title.
    await client.query(
      `insert into shifts (org_id, id, event_id, role_id, title, starts_at, ends_at, capacity, confirmed_count, waitlist)
       select $1, gen_random_uuid(), $2, case when n % 3 = 0 then $3::uuid end,
              case when n % 2 = 0 then 'Shift ' || n end,
              date_trunc('hour', now()) + make_interval(days => 7, hours => 3 * n),
              date_trunc('hour', now()) + make_interval(days => 7, hours => 3 * n + 2),
              10, 0, n % 4 = 0
       from generate_series(1, $4::int) n`,
      [orgId, eventId, roleId, shiftCount],
    );
    await client.query(
      `update events set starts_at = s.lo, ends_at = s.hi
       from (select min(starts_at) lo, max(ends_at) hi from shifts where event_id = $1) s where id = $1`,
      [eventId],
    );
    await client.query('commit');
    await client.query('analyze');
    return { eventId };
  } finally {
    await client.end();
  }
}

/**
 * The ceiling: a bare Fastify in its own process (like the server), answering every request from
 * memory with the bytes and headers the server sent, or with 304 to a revalidation.
 */
const ceilingSource = `
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
const answers = JSON.parse(readFileSync(process.env.CEILING_ANSWERS, 'utf8'));
const app = Fastify({ logger: false });
for (const [path, answer] of Object.entries(answers)) {
  app.get(path, (request, reply) => {
    reply.header('etag', answer.etag).header('cache-control', answer.cacheControl);
    if (request.headers['if-none-match'] === answer.etag) return reply.code(304).send();
    return reply.type(answer.contentType).send(answer.body);
  });
  // For diagnosis only: the same 304 with every header the server sends (security, CORS, ids).
  app.get('/with-headers' + path, (request, reply) => {
    reply.headers(answer.headers304);
    return reply.code(304).send();
  });
}
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
console.log('ceiling ready');
`;

async function startCeiling(answers: Record<string, unknown>): Promise<{ url: string; stop: () => void }> {
  const folder = mkdtempSync(join(tmpdir(), 'together-ceiling-'));
  const answersFile = join(folder, 'answers.json');
  writeFileSync(answersFile, JSON.stringify(answers));
  return startBareProcess(ceilingSource, { CEILING_ANSWERS: answersFile });
}

interface Load {
  rps: number;
  p99: number;
  serverErrors: number;
  statuses: Record<string, number>;
}

async function load(url: string, headers: Record<string, string> = {}): Promise<Load> {
  const result = await autocannon({ url, connections, duration: seconds, headers });
  const statuses = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([status, stats]) => [
      status,
      (stats as { count: number }).count,
    ]),
  );
  const serverErrors =
    Object.entries(statuses)
      .filter(([status]) => Number(status) >= 500)
      .reduce((sum, [, count]) => sum + count, 0) + result.errors;
  return { rps: result.requests.average, p99: result.latency.p99, serverErrors, statuses };
}

/** The lines and bytes of a file too large to read as one string. */
function linesOf(file: string): { lines: number; bytes: number } {
  const fd = openSync(file, 'r');
  const chunk = Buffer.alloc(1 << 20);
  let lines = 0;
  let bytes = 0;
  try {
    for (let read = readSync(fd, chunk); read > 0; read = readSync(fd, chunk)) {
      bytes += read;
      for (let at = chunk.indexOf(10); at !== -1 && at < read; at = chunk.indexOf(10, at + 1)) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return { lines, bytes };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

async function main() {
  const { eventId } = await setUp();
  // The server logs to a file, as a deployed one does: were its log piped into this process, the
  // load generator would also be reading every access-log line it is measuring.
  const logFolder = mkdtempSync(join(tmpdir(), 'together-bench-log-'));
  const logFile = join(logFolder, 'server.log');
  const server = await startServer(
    {
      DATABASE_URL: benchDatabaseUrl,
      // As deployed: the default level logs every request (STACK.md: measure the scenario users
      // live), and the rate limiter runs (with a limit one load generator never reaches: its
      // work, not its 429s). BENCH_LOG_LEVEL=warn BENCH_RATE_LIMIT=0 measure without them.
      LOG_LEVEL: logLevel,
      RATE_LIMIT_PER_MINUTE: rateLimit,
      PORT: String(await freePort()),
      // For diagnosis, Node options (a CPU profile takes node flags instead: BENCH_NODE_FLAGS,
      // read by test/support/server-process.ts, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof').
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    },
    { compiled: true, logFile },
  );
  const shiftsPath = `/v1/public/${slug}/events/${eventId}/shifts`;
  const calendarPath = `/v1/public/${slug}/events/${eventId}/calendar.ics`;
  const answers: Record<string, unknown> = {};
  for (const path of [shiftsPath, calendarPath]) {
    const response = await fetch(`${server.url}${path}`);
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    const etag = response.headers.get('etag') ?? '';
    const revalidated = await fetch(`${server.url}${path}`, { headers: { 'if-none-match': etag } });
    const headers304 = Object.fromEntries(
      [...revalidated.headers].filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name)),
    );
    answers[path] = {
      body: await response.text(),
      etag,
      cacheControl: response.headers.get('cache-control'),
      contentType: response.headers.get('content-type'),
      headers304,
    };
  }
  const shiftsAnswer = answers[shiftsPath] as { body: string; etag: string };
  const calendarAnswer = answers[calendarPath] as { body: string };
  console.log(
    `event with ${shiftCount} shifts: shifts answer ${shiftsAnswer.body.length} B, calendar ${calendarAnswer.body.length} B; ` +
      `${connections} connections, ${seconds} s per run, ${rounds} rounds; server LOG_LEVEL=${logLevel}, RATE_LIMIT_PER_MINUTE=${rateLimit}`,
  );
  const ceiling = await startCeiling(answers);
  const revalidate = { 'if-none-match': shiftsAnswer.etag };
  const runs: Record<string, Load[]> = {};
  const record = (name: string, result: Load) => {
    runs[name] ??= [];
    runs[name].push(result);
  };
  try {
    for (let round = 1; round <= rounds; round++) {
      // Alternating, so that a noisy moment of the machine falls on both sides.
      record('R1 ours', await load(`${server.url}${shiftsPath}`));
      record('R1 ceiling', await load(`${ceiling.url}${shiftsPath}`));
      record('R2 ours', await load(`${server.url}${shiftsPath}`, revalidate));
      record('R2 ceiling', await load(`${ceiling.url}${shiftsPath}`, revalidate));
      record('R2 bare + our headers', await load(`${ceiling.url}/with-headers${shiftsPath}`, revalidate));
      record('R3 ours', await load(`${server.url}${calendarPath}`));
      record('R3 ceiling', await load(`${ceiling.url}${calendarPath}`));
    }
  } finally {
    ceiling.stop();
  }
  const rss = peakRssMb(server.child.pid);
  await server.stop();
  const log = linesOf(logFile);
  rmSync(logFolder, { recursive: true, force: true });

  for (const [name, results] of Object.entries(runs)) {
    const statuses = results.map((result) => JSON.stringify(result.statuses)).join(' ');
    console.log(
      `${name.padEnd(22)} ${median(results.map((result) => result.rps))
        .toFixed(0)
        .padStart(7)} req/s  ` +
        `p99 ${median(results.map((result) => result.p99)).toFixed(0)} ms  5xx/errors ${results.reduce((sum, result) => sum + result.serverErrors, 0)}  ${statuses}`,
    );
  }
  const ratio = (name: string) =>
    median((runs[`${name} ours`] ?? []).map((result) => result.rps)) /
    median((runs[`${name} ceiling`] ?? []).map((result) => result.rps));
  const serverErrors = ['R1 ours', 'R2 ours', 'R3 ours']
    .flatMap((name) => runs[name] ?? [])
    .reduce((sum, result) => sum + result.serverErrors, 0);
  const r1 = ratio('R1');
  const r2 = ratio('R2');
  const r3 = ratio('R3');
  console.log(`R1 full reads:     ${(r1 * 100).toFixed(0)} % of the same-bytes ceiling (target ≥ 50 %)`);
  console.log(`R2 revalidations:  ${(r2 * 100).toFixed(0)} % of the bare-304 ceiling (target ≥ 60 %)`);
  console.log(`R3 calendar.ics:   ${(r3 * 100).toFixed(0)} % of the same-bytes ceiling`);
  const withHeaders = median((runs['R2 bare + our headers'] ?? []).map((result) => result.rps));
  console.log(
    `(diagnosis: the bare 304 with our ${Object.keys((answers[shiftsPath] as { headers304: object }).headers304).length} response headers: ` +
      `${((withHeaders / median((runs['R2 ceiling'] ?? []).map((result) => result.rps))) * 100).toFixed(0)} % of the bare 304; ` +
      `ours is ${((median((runs['R2 ours'] ?? []).map((result) => result.rps)) / withHeaders) * 100).toFixed(0)} % of it)`,
  );
  console.log(`server log: ${log.lines} lines, ${(log.bytes / 1e6).toFixed(0)} MB, written to a file`);
  console.log(`server peak RSS:   ${rss.toFixed(0)} MB (target ≤ 150 MB); 5xx or errors: ${serverErrors}`);
  const met = r1 >= 0.5 && r2 >= 0.6 && rss <= 150 && serverErrors === 0;
  console.log(met ? 'targets met' : 'targets missed');
  process.exitCode = met ? 0 : 1;
}

await main();
