/**
 * List latency at 10k and at 1M shifts (issue 3): autocannon against a real server process on
 * PostgreSQL, each list read for the small and the large bench organisation, with the ratio of
 * their p50s and the ratio to a bare route measured in the same run.
 * Run after `npm run bench:data`:  npm run bench:lists   (BENCH_SECONDS=10 per scenario)
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { freePort, startServer } from '../test/support/server-process.ts';
import { benchDatabaseUrl, peakRssMb, tokensFile } from './data.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

interface Measurement {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function measure(url: string, token?: string): Promise<Measurement> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

async function main() {
  const orgs = JSON.parse(readFileSync(tokensFile, 'utf8')) as Record<
    string,
    { token: string; eventId: string }
  >;
  const small = orgs['bench-small'];
  const large = orgs['bench-large'];
  if (!small || !large) throw new Error('run npm run bench:data first');
  const server = await startServer(
    {
      DATABASE_URL: benchDatabaseUrl,
      LOG_LEVEL: 'warn',
      DATABASE_POOL_SIZE: '10',
      PORT: String(await freePort()),
    },
    { compiled: true },
  );
  try {
    const scenarios: { name: string; path: (org: { eventId: string }) => string }[] = [
      // A window in which the small organisation too has a full page (25 events), so that both
      // sizes read, aggregate and serialise the same number of rows.
      {
        name: 'events by date',
        path: () => '/v1/events?from=2026-04-01T00:00:00Z&to=2026-10-01T00:00:00Z&limit=25',
      },
      { name: 'shifts by event', path: (org) => `/v1/events/${org.eventId}/shifts?limit=50` },
      {
        name: 'shifts, available, across events',
        path: () => '/v1/shifts?available=true&from=2026-06-01T00:00:00Z&limit=50',
      },
      { name: 'volunteers by q', path: () => '/v1/volunteers?q=smith&limit=50' },
    ];
    // Warm up caches and the pool before measuring.
    for (const scenario of scenarios) {
      for (const org of [small, large])
        await fetch(server.url + scenario.path(org), { headers: { authorization: `Bearer ${org.token}` } });
    }
    const ceiling = await measure(`${server.url}/health/live`);
    console.log(
      `ceiling (bare route /health/live): ${ceiling.requestsPerSecond.toFixed(0)} req/s, p50 ${ceiling.p50} ms, p99 ${ceiling.p99} ms`,
    );
    console.log('');
    console.log(
      '| list | 10k shifts p50 / p99 (ms) | 1M shifts p50 / p99 (ms) | 1M req/s | p50 ratio 1M/10k | 1M req/s vs ceiling |',
    );
    console.log('| --- | --- | --- | --- | --- | --- |');
    let failed = false;
    for (const scenario of scenarios) {
      const atSmall = await measure(server.url + scenario.path(small), small.token);
      const atLarge = await measure(server.url + scenario.path(large), large.token);
      const ratio = atLarge.p50 / Math.max(atSmall.p50, 0.5);
      if (atSmall.non2xx + atLarge.non2xx + atSmall.errors + atLarge.errors > 0) failed = true;
      console.log(
        `| ${scenario.name} | ${atSmall.p50} / ${atSmall.p99} | ${atLarge.p50} / ${atLarge.p99} | ${atLarge.requestsPerSecond.toFixed(0)} | ${ratio.toFixed(2)} | ${(atLarge.requestsPerSecond / ceiling.requestsPerSecond).toFixed(3)} |`,
      );
    }
    console.log('');
    console.log(
      `server peak RSS: ${peakRssMb(server.child.pid).toFixed(0)} MB; ${connections} connections, ${seconds} s per scenario`,
    );
    if (failed) {
      console.log('some requests failed (non-2xx or errors): the figures are not valid');
      process.exitCode = 1;
    }
  } finally {
    await server.stop();
  }
}

await main();
