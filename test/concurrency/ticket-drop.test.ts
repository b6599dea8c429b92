/**
 * Ticket drop (issue 4): 2,000 volunteers claim one 50-place shift at once, through two API
 * processes on one PostgreSQL database, 100 requests in flight on separate sockets.
 *
 * Teeth: with TOGETHER_NAIVE_CLAIMS=1 the same assertions run against a deliberately naive claim
 * (read the count, then insert and write count + 1, in a transaction: the way the schedulers we
 * studied do it), and they fail. Before migration 0009 the shift overfilled (1,974 confirmed on 50
 * places); since migration 0016 the database keeps the counters itself and refuses the naive
 * claim's own write of one, so those claims fail with 5xx instead.
 *   TOGETHER_NAIVE_CLAIMS=1 TEST_DATABASE_URL=postgres://… npx vitest run test/concurrency/ticket-drop.test.ts
 */
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/app.ts';
import { killAllServers, type ServerProcess, startServer } from '../support/server-process.ts';
import {
  countBy,
  createShift,
  type HttpResult,
  invariantViolations,
  rush,
  seedOrganisation,
} from './support.ts';

const naive = process.env.TOGETHER_NAIVE_CLAIMS === '1';
const claimants = 2_000;
const places = 50;
const concurrency = 100;

/** The naive claim, kept to prove that these tests catch overbooking. Never use it elsewhere. */
async function naiveClaim(
  pool: pg.Pool,
  orgId: string,
  shiftId: string,
  volunteerId: string,
): Promise<HttpResult> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const shift = await client.query(
      'select confirmed_count, waitlist_count, capacity, waitlist, period from shifts where org_id = $1 and id = $2',
      [orgId, shiftId],
    );
    const { confirmed_count: confirmed, waitlist_count: waiting, capacity, waitlist, period } = shift.rows[0];
    const status = confirmed < capacity ? 'confirmed' : waitlist ? 'waitlisted' : null;
    if (!status) {
      await client.query('rollback');
      return { status: 409, body: { code: 'shift-full' }, headers: {} };
    }
    const id = uuidv7();
    await client.query(
      `insert into signups (org_id, id, shift_id, volunteer_id, status, period) values ($1, $2, $3, $4, $5, $6)`,
      [orgId, id, shiftId, volunteerId, status, period],
    );
    await client.query(
      'update shifts set confirmed_count = $3, waitlist_count = $4 where org_id = $1 and id = $2',
      [
        orgId,
        shiftId,
        status === 'confirmed' ? confirmed + 1 : confirmed,
        status === 'waitlisted' ? waiting + 1 : waiting,
      ],
    );
    await client.query('commit');
    return { status: 201, body: { id, status }, headers: {} };
  } catch (error) {
    await client.query('rollback').catch(() => {});
    return { status: 500, body: { message: String(error) }, headers: {} };
  } finally {
    client.release();
  }
}

describe('ticket drop over two API processes', () => {
  let testDb: TestDatabase;
  let servers: ServerProcess[] = [];
  let url: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    url = testDb.url as string;
    servers = await Promise.all([startServer({ DATABASE_URL: url }), startServer({ DATABASE_URL: url })]);
  });
  afterAll(async () => {
    for (const server of servers) await server.stop();
    killAllServers();
    await testDb?.drop();
  });

  async function claimAll(waitlist: boolean) {
    const org = await seedOrganisation(url, claimants);
    const shiftId = await createShift(url, org, { capacity: places, waitlist });
    let results: HttpResult[];
    if (naive) {
      const pool = new pg.Pool({ connectionString: url, max: 40 });
      try {
        let next = 0;
        results = new Array(claimants);
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < claimants) {
              const index = next++;
              results[index] = await naiveClaim(
                pool,
                org.orgId,
                shiftId,
                (org.volunteers[index] as { id: string }).id,
              );
            }
          }),
        );
      } finally {
        await pool.end();
      }
    } else {
      results = await rush(
        org.volunteers.map((volunteer, index) => ({
          base: (servers[index % servers.length] as ServerProcess).url,
          method: 'POST',
          path: `/v1/shifts/${shiftId}/signups`,
          token: volunteer.token,
          body: {},
        })),
        concurrency,
      );
    }
    return { org, shiftId, results };
  }

  async function signupRows(shiftId: string) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const rows = await client.query(
        `select s.status::text, (select count(*)::int from signups w where w.shift_id = s.shift_id and w.status = 'waitlisted'
           and (w.created_at, w.id) <= (s.created_at, s.id)) as position
         from signups s where s.shift_id = $1`,
        [shiftId],
      );
      const shift = await client.query('select confirmed_count, waitlist_count from shifts where id = $1', [
        shiftId,
      ]);
      return { rows: rows.rows as { status: string; position: number }[], shift: shift.rows[0] };
    } finally {
      await client.end();
    }
  }

  it('without a waitlist: exactly 50 × 201, the rest 409 shift-full, confirmedCount 50, no 5xx', async () => {
    const { org, shiftId, results } = await claimAll(false);
    const statuses = countBy(results, (result) => result.status);
    expect(statuses).toEqual({ 201: places, 409: claimants - places });
    expect(
      countBy(
        results.filter((result) => result.status === 409),
        (result) => String(result.body.code),
      ),
    ).toEqual({
      'shift-full': claimants - places,
    });
    const { rows, shift } = await signupRows(shiftId);
    expect(rows.filter((row) => row.status === 'confirmed')).toHaveLength(places);
    expect(rows).toHaveLength(places);
    expect(shift.confirmed_count).toBe(places);
    expect(await invariantViolations(url, org.orgId)).toEqual([]);
  });

  it('with a waitlist: 50 confirmed, everyone else waitlisted with positions 1…N, each once', async () => {
    const { org, shiftId, results } = await claimAll(true);
    expect(countBy(results, (result) => result.status)).toEqual({ 201: claimants });
    expect(countBy(results, (result) => String(result.body.status))).toEqual({
      confirmed: places,
      waitlisted: claimants - places,
    });
    const odd = results.filter(
      (result) => result.body.status === 'waitlisted' && !(Number(result.body.waitlistPosition) > 0),
    );
    // Evidence for a failure seen once (a waitlisted answer without a position), printed if it recurs.
    if (odd.length > 0)
      console.log('waitlisted answers without a position:', JSON.stringify(odd.slice(0, 2)));
    const answered = results
      .filter((result) => result.body.status === 'waitlisted')
      .map((result) => Number(result.body.waitlistPosition))
      .sort((a, b) => a - b);
    expect(answered).toEqual(Array.from({ length: claimants - places }, (_, index) => index + 1));
    const { rows, shift } = await signupRows(shiftId);
    const positions = rows
      .filter((row) => row.status === 'waitlisted')
      .map((row) => row.position)
      .sort((a, b) => a - b);
    expect(positions).toEqual(Array.from({ length: claimants - places }, (_, index) => index + 1));
    expect(shift).toEqual({ confirmed_count: places, waitlist_count: claimants - places });
    expect(await invariantViolations(url, org.orgId)).toEqual([]);
  });
});
