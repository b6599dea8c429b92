/**
 * Faults mid-rush on PostgreSQL (issue 4): an API process killed with SIGKILL, and PostgreSQL going
 * away and coming back (a TCP proxy that resets every connection and refuses new ones, as a
 * restart does). Acknowledged claims (201) must survive, invariants must hold, and retries with
 * the same Idempotency-Keys must create nothing twice.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/app.ts';
import { testDatabaseUrl } from '../support/postgres.ts';
import { killAllServers, startServer } from '../support/server-process.ts';
import { startTcpProxy, type TcpProxy, throughProxy } from '../support/tcp-proxy.ts';
import {
  countBy,
  createShift,
  type HttpRequest,
  type HttpResult,
  invariantViolations,
  rush,
  scalar,
  seedOrganisation,
  waitFor,
} from './support.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('faults mid-rush', () => {
  let testDb: TestDatabase;
  let url: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    url = testDb.url;
  });
  afterEach(() => killAllServers());
  afterAll(() => testDb?.drop());

  function claims(base: string, shiftId: string, volunteers: { token: string }[]): HttpRequest[] {
    return volunteers.map((volunteer, index) => ({
      base,
      method: 'POST',
      path: `/v1/shifts/${shiftId}/signups`,
      token: volunteer.token,
      body: {},
      headers: { 'idempotency-key': `claim-${index}` },
    }));
  }

  async function signupIds(shiftId: string): Promise<string[]> {
    const ids = await scalar<string[] | null>(
      url,
      'select array_agg(id::text) from signups where shift_id = $1',
      [shiftId],
    );
    return ids ?? [];
  }

  /** Retries the requests that got no final answer, a bounded number of times. */
  async function retryUntilAnswered(requests: HttpRequest[], first: HttpResult[]): Promise<HttpResult[]> {
    const results = [...first];
    for (let attempt = 0; attempt < 20; attempt++) {
      const pending = results.flatMap((result, index) =>
        result.status === 0 || result.status >= 500 ? [index] : [],
      );
      if (pending.length === 0) break;
      const retried = await rush(
        pending.map((index) => requests[index] as HttpRequest),
        20,
      );
      pending.forEach((index, position) => {
        results[index] = retried[position] as HttpResult;
      });
      await sleep(250);
    }
    return results;
  }

  it('kill -9 of an API process mid-rush: every 201 survives, retries with the same keys create nothing twice', async () => {
    const org = await seedOrganisation(url, 600);
    const shiftId = await createShift(url, org, { capacity: 100, waitlist: true });
    const first = await startServer({ DATABASE_URL: url });
    const requests = claims(first.url, shiftId, org.volunteers);
    let acknowledgedSoFar = 0;
    const rushing = rush(requests, 50, (result) => {
      if (result.status === 201) acknowledgedSoFar += 1;
    });
    await waitFor(() => acknowledgedSoFar >= 10, 15_000, 'the first claims to be acknowledged');
    first.child.kill('SIGKILL');
    const results = await rushing;
    const acknowledged = results.filter((result) => result.status === 201);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(results.some((result) => result.status === 0)).toBe(true); // the kill really cut requests off

    const second = await startServer({ DATABASE_URL: url });
    const stored = new Set(await signupIds(shiftId));
    for (const result of acknowledged) expect(stored.has(String(result.body.id))).toBe(true);
    expect(await invariantViolations(url, org.orgId)).toEqual([]);

    // Every request again, with its key: acknowledged ones replay, the rest finish once.
    const again = await rush(
      requests.map((request) => ({ ...request, base: second.url })),
      50,
    );
    expect(again.filter((result) => result.status >= 500 || result.status === 0)).toEqual([]);
    results.forEach((result, index) => {
      if (result.status === 201) {
        expect(again[index]?.status).toBe(201);
        expect(again[index]?.body.id).toBe(result.body.id);
        expect(again[index]?.headers['idempotent-replayed']).toBe('true');
      }
    });
    expect(countBy(again, (result) => result.status)).toEqual({ 201: 600 });
    expect(
      await scalar<number>(url, 'select count(*)::int from signups where shift_id = $1', [shiftId]),
    ).toBe(600);
    expect(await scalar<number>(url, 'select confirmed_count from shifts where id = $1', [shiftId])).toBe(
      100,
    );
    expect(await invariantViolations(url, org.orgId)).toEqual([]);
    expect(await second.stop()).toBe(0);
  });

  describe('PostgreSQL restarted mid-rush', () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startTcpProxy(testDatabaseUrl);
    });
    afterAll(() => proxy?.close());

    it('the process survives, answers 503 unavailable (never 500) during the outage, recovers, and loses no 201', async () => {
      const org = await seedOrganisation(url, 800);
      const shiftId = await createShift(url, org, { capacity: 300, waitlist: true });
      const server = await startServer({ DATABASE_URL: throughProxy(url, proxy) });
      const requests = claims(server.url, shiftId, org.volunteers);
      let acknowledgedSoFar = 0;
      const rushing = rush(requests, 20, (result) => {
        if (result.status === 201) acknowledgedSoFar += 1;
      });
      await waitFor(() => acknowledgedSoFar >= 10, 15_000, 'the first claims to be acknowledged');
      await proxy.cut();
      await sleep(1_500);
      await proxy.restore();
      const results = await rushing;

      const statuses = countBy(results, (result) => result.status);
      expect(Object.keys(statuses).sort()).toEqual(expect.arrayContaining(['201']));
      expect(statuses['500']).toBeUndefined();
      expect(statuses['0']).toBeUndefined(); // the API process itself never dropped a connection
      expect(statuses['503']).toBeGreaterThan(0); // the outage was seen
      for (const result of results.filter((r) => r.status === 503)) {
        expect(result.body.code).toBe('unavailable');
        expect(result.headers['retry-after']).toBeDefined();
      }
      expect(server.child.exitCode).toBeNull();

      const stored = new Set(await signupIds(shiftId));
      for (const result of results.filter((r) => r.status === 201))
        expect(stored.has(String(result.body.id))).toBe(true);

      // Clients retry what failed, with the same keys: in the end everyone has exactly one signup.
      const final = await retryUntilAnswered(requests, results);
      expect(countBy(final, (result) => result.status)).toEqual({ 201: 800 });
      expect(
        await scalar<number>(url, 'select count(*)::int from signups where shift_id = $1', [shiftId]),
      ).toBe(800);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
      const code = await server.stop();
      if (code !== 0)
        console.log(
          'server output before its non-zero exit:',
          server
            .output()
            .split('\n')
            .filter((l) => !l.includes('"level":30'))
            .slice(-15)
            .join('\n'),
        );
      expect(code).toBe(0);
    });
  });
});
