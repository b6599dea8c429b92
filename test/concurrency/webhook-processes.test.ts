/**
 * Webhook delivery across API processes on one PostgreSQL (issue 12): a process killed with SIGKILL
 * after the commit, before or during the delivery, loses nothing (the next process sends it, with
 * the same `webhook-id`); three processes share the work of one database, every message arrives,
 * duplicates are counted (and rare), and each endpoint receives its messages in order.
 */
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, hashToken } from '../../src/core/auth.ts';
import { createTestDatabase, type TestDatabase } from '../support/app.ts';
import { type Receiver, startReceiver } from '../support/receiver.ts';
import { eventually, killAllServers, type ServerProcess, startServer } from '../support/server-process.ts';
import { createShift, type RushOrg, rush, scalar, seedOrganisation } from './support.ts';

describe('webhook delivery across processes', () => {
  let testDb: TestDatabase;
  let receiver: Receiver;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    receiver = await startReceiver();
  });
  afterEach(() => killAllServers());
  afterAll(async () => {
    await receiver.close();
    await testDb?.drop();
  });

  const serve = () => startServer({ DATABASE_URL: testDb.url, WEBHOOK_ALLOW_PRIVATE: 'true' });

  /** An organisation of `volunteers` with an admin key. */
  async function organisation(volunteers: number): Promise<RushOrg & { adminToken: string }> {
    const org = await seedOrganisation(testDb.url, volunteers);
    const adminToken = generateToken('key');
    const client = new pg.Client({ connectionString: testDb.url });
    await client.connect();
    try {
      await client.query(
        `insert into api_keys (org_id, id, name, role, token_hash) values ($1, $2, 'admin', 'admin', $3)`,
        [org.orgId, uuidv7(), hashToken(adminToken)],
      );
    } finally {
      await client.end();
    }
    return { ...org, adminToken };
  }

  async function subscribe(server: ServerProcess, token: string, path: string) {
    const response = await fetch(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url(path), events: ['signup.confirmed'] }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: string }).id;
  }

  const claim = (server: ServerProcess, shiftId: string, token: string) =>
    rush([{ base: server.url, method: 'POST', path: `/v1/shifts/${shiftId}/signups`, token, body: {} }], 1);

  it('SIGKILL during a delivery: after a restart the message arrives, with the same webhook-id', async () => {
    const org = await organisation(1);
    const shiftId = await createShift(testDb.url, org, { capacity: 5, waitlist: false });
    receiver.answer('/killed', (n) => (n === 1 ? 'hang' : { status: 204 }));
    const first = await serve();
    await subscribe(first, org.adminToken, '/killed');
    const [claimed] = await claim(first, shiftId, (org.volunteers[0] as { token: string }).token);
    expect(claimed?.status).toBe(201);
    // The attempt is in flight (the receiver holds it) when the process dies.
    await eventually(async () => receiver.at('/killed').length === 1, 20_000, 'the first attempt');
    first.child.kill('SIGKILL');
    await first.exited;

    await serve();
    // Its lease (10 s) runs out, and the new process sends the message again.
    await eventually(
      async () => receiver.at('/killed').length === 2,
      30_000,
      'the delivery after the restart',
    );
    const [before, after] = receiver.at('/killed');
    expect(after?.headers['webhook-id']).toBe(before?.headers['webhook-id']);
    expect(
      await scalar<string>(
        testDb.url,
        `select status from webhook_deliveries where org_id = $1 order by attempt desc limit 1`,
        [org.orgId],
      ),
    ).toBe('succeeded');
  });

  it('SIGKILL right after the commit: the next process delivers it, once', async () => {
    const org = await organisation(1);
    const shiftId = await createShift(testDb.url, org, { capacity: 5, waitlist: false });
    const first = await serve();
    await subscribe(first, org.adminToken, '/committed');
    const [claimed] = await claim(first, shiftId, (org.volunteers[0] as { token: string }).token);
    expect(claimed?.status).toBe(201);
    first.child.kill('SIGKILL');
    await first.exited;
    await serve();
    await eventually(
      async () => receiver.at('/committed').length >= 1,
      30_000,
      'the delivery after the restart',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(new Set(receiver.at('/committed').map((item) => item.headers['webhook-id'])).size).toBe(1);
  });

  it('SIGTERM mid-delivery: the process gives the endpoint back as it stops, and the next sends at once', async () => {
    const org = await organisation(1);
    const shiftId = await createShift(testDb.url, org, { capacity: 5, waitlist: false });
    receiver.answer('/stopped', (n) => (n === 1 ? 'hang' : { status: 204 }));
    const first = await startServer({
      DATABASE_URL: testDb.url,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      SHUTDOWN_GRACE_MS: '2000',
    });
    await subscribe(first, org.adminToken, '/stopped');
    await claim(first, shiftId, (org.volunteers[0] as { token: string }).token);
    await eventually(async () => receiver.at('/stopped').length === 1, 20_000, 'the first attempt');
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(
      await scalar<string | null>(
        testDb.url,
        `select leased_by::text from webhook_queues where org_id = $1`,
        [org.orgId],
      ),
    ).toBeNull();
    // Not recorded as failed: the aborted attempt is still the pending one.
    expect(
      await scalar<string>(
        testDb.url,
        `select string_agg(status, ',') from webhook_deliveries where org_id = $1`,
        [org.orgId],
      ),
    ).toBe('pending');
    await serve();
    await eventually(
      async () => receiver.at('/stopped').length === 2,
      10_000,
      'the delivery after the restart',
    );
    const [before, after] = receiver.at('/stopped');
    expect(after?.headers['webhook-id']).toBe(before?.headers['webhook-id']);
  });

  it('three processes share the work: every message arrives, in order per endpoint, duplicates rare', async () => {
    const org = await organisation(150);
    const shifts = await Promise.all(
      [1, 2, 3].map(() => createShift(testDb.url, org, { capacity: 60, waitlist: false })),
    );
    const servers = await Promise.all([1, 2, 3].map(() => serve()));
    const endpoints = ['/shared-a', '/shared-b'];
    const webhookIds: string[] = [];
    for (const path of endpoints)
      webhookIds.push(await subscribe(servers[0] as ServerProcess, org.adminToken, path));
    // Claims through all three processes, 150 signups in all, 10 at a time.
    const results = await rush(
      org.volunteers.map((volunteer, index) => ({
        base: (servers[index % 3] as ServerProcess).url,
        method: 'POST',
        path: `/v1/shifts/${shifts[index % 3]}/signups`,
        token: volunteer.token,
        body: {},
      })),
      10,
    );
    expect(results.filter((result) => result.status !== 201)).toEqual([]);
    const messages = Number(
      await scalar<string>(
        testDb.url,
        `select count(*) from outbox where org_id = $1 and type = 'signup.confirmed'`,
        [org.orgId],
      ),
    );
    expect(messages).toBe(150);
    for (const path of endpoints)
      await eventually(
        async () => new Set(receiver.at(path).map((item) => item.headers['webhook-id'])).size === messages,
        60_000,
        `every message at ${path}`,
      );
    for (const [index, path] of endpoints.entries()) {
      const ids = receiver.at(path).map((item) => item.headers['webhook-id'] as string);
      const duplicates = ids.length - new Set(ids).size;
      console.log(`${path}: ${ids.length} received, ${messages} messages, ${duplicates} duplicates`);
      expect(duplicates).toBeLessThanOrEqual(2);
      // One process at a time sends an endpoint's messages, in the order the outbox was written
      // (the writing transactions' order, which is the fan-out's).
      const written = await scalar<string[]>(
        testDb.url,
        `select array_agg(m.id::text order by o.txid, o.id) from webhook_messages m
         join outbox o on o.org_id = m.org_id and o.id = m.outbox_id
         where m.org_id = $1 and m.webhook_id = $2`,
        [org.orgId, webhookIds[index]],
      );
      expect([...new Set(ids)]).toEqual(written);
    }
  });
});
