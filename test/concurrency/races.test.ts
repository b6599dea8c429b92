/**
 * Races on PostgreSQL (issue 4): double clicks, overlapping claims, cancellations racing claims and
 * promotions, and concurrent idempotent retries. Each loop is bounded in rounds and requests; the
 * invariants of API.md §7 are checked after every round.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startTestApp, type TestApp, type TestDatabase } from '../support/app.ts';
import {
  countBy,
  createShift,
  type HttpRequest,
  invariantViolations,
  rush,
  scalar,
  seedOrganisation,
} from './support.ts';

describe('claim races', () => {
  let testDb: TestDatabase;
  let t: TestApp;
  let url: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    url = testDb.url as string;
    t = await startTestApp(testDb.database);
  });
  afterAll(async () => {
    await t?.close();
    await testDb?.drop();
  });

  const claim = (shiftId: string, token: string, headers?: Record<string, string>): HttpRequest => ({
    base: t.baseUrl,
    method: 'POST',
    path: `/v1/shifts/${shiftId}/signups`,
    token,
    body: {},
    headers,
  });

  it('double click: 20 concurrent claims by one volunteer on one shift leave one active signup', async () => {
    for (let round = 0; round < 5; round++) {
      const org = await seedOrganisation(url, 1);
      const volunteer = org.volunteers[0] as { id: string; token: string };
      const shiftId = await createShift(url, org, { capacity: 5, waitlist: true });
      const results = await rush(
        Array.from({ length: 20 }, () => claim(shiftId, volunteer.token)),
        20,
      );
      expect(countBy(results, (result) => result.status)).toEqual({ 201: 1, 409: 19 });
      expect(new Set(results.filter((r) => r.status === 409).map((r) => r.body.code))).toEqual(
        new Set(['already-signed-up']),
      );
      // The refusal names the signup, whether the rules or the unique index found the duplicate.
      const winner = results.find((r) => r.status === 201)?.body.id;
      expect(new Set(results.filter((r) => r.status === 409).map((r) => r.body.signupId))).toEqual(
        new Set([winner]),
      );
      expect(
        await scalar<number>(
          url,
          `select count(*)::int from signups where shift_id = $1 and status in ('confirmed','waitlisted')`,
          [shiftId],
        ),
      ).toBe(1);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });

  it('overlap race: one volunteer, 20 mutually overlapping shifts, concurrent claims: exactly one confirmed', async () => {
    for (let round = 0; round < 5; round++) {
      const org = await seedOrganisation(url, 1);
      const volunteer = org.volunteers[0] as { id: string; token: string };
      const shiftIds: string[] = [];
      for (let index = 0; index < 20; index++)
        shiftIds.push(await createShift(url, org, { capacity: 5, waitlist: false }));
      const results = await rush(
        shiftIds.map((shiftId) => claim(shiftId, volunteer.token)),
        20,
      );
      expect(countBy(results, (result) => result.status)).toEqual({ 201: 1, 409: 19 });
      const refusals = results.filter((result) => result.status === 409);
      expect(new Set(refusals.map((result) => result.body.code))).toEqual(new Set(['overlapping-signup']));
      const winner = results.find((result) => result.status === 201)?.body.id;
      for (const refusal of refusals) expect(refusal.body.conflictingSignupId).toBe(winner);
      expect(
        await scalar<number>(
          url,
          `select count(*)::int from signups where org_id = $1 and status = 'confirmed'`,
          [org.orgId],
        ),
      ).toBe(1);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });

  it('cancel/promote race: cancels, duplicate cancels and new claims on a full shift with a waitlist keep invariants 1–4', async () => {
    for (let round = 0; round < 5; round++) {
      const org = await seedOrganisation(url, 60);
      const shiftId = await createShift(url, org, { capacity: 10, waitlist: true });
      const [first, rest] = [org.volunteers.slice(0, 30), org.volunteers.slice(30)];
      // 10 confirmed, 20 waitlisted.
      const initial = await rush(
        first.map((volunteer) => claim(shiftId, volunteer.token)),
        10,
      );
      expect(countBy(initial, (result) => String(result.body.status))).toEqual({
        confirmed: 10,
        waitlisted: 20,
      });
      const indexesWith = (status: string) =>
        initial.flatMap((result, index) => (result.body.status === status ? [index] : []));
      const confirmed = indexesWith('confirmed');
      const waitlisted = indexesWith('waitlisted');
      // Three of the waitlisted also hold a confirmed shift at the same time elsewhere: promotion
      // must skip them (they stay waitlisted) and take the next ones.
      const clash = await createShift(url, org, { capacity: 5, waitlist: false });
      const clashing = waitlisted.slice(0, 3).map((index) => first[index] as { id: string; token: string });
      const clashResults = await rush(
        clashing.map((volunteer) => claim(clash, volunteer.token)),
        3,
      );
      expect(countBy(clashResults, (result) => result.status)).toEqual({ 201: 3 });

      const cancelOf = (index: number): HttpRequest => ({
        base: t.baseUrl,
        method: 'POST',
        path: `/v1/signups/${String(initial[index]?.body.id)}/cancel`,
        token: (first[index] as { token: string }).token,
      });
      const requests: HttpRequest[] = [
        // every confirmed volunteer cancels, each twice
        ...confirmed.map(cancelOf),
        ...confirmed.map(cancelOf),
        // four of the eligible waitlisted cancel
        ...waitlisted.slice(3, 7).map(cancelOf),
        // 30 newcomers claim
        ...rest.map((volunteer) => claim(shiftId, volunteer.token)),
      ].sort(() => Math.random() - 0.5);
      const results = await rush(requests, 50);
      expect(results.filter((result) => result.status >= 500 || result.status === 0)).toEqual([]);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
      // The shift is full again: everyone eligible who waited was promoted.
      expect(await scalar<number>(url, 'select confirmed_count from shifts where id = $1', [shiftId])).toBe(
        10,
      );
      for (const volunteer of clashing) {
        expect(
          await scalar<string>(
            url,
            'select status::text from signups where shift_id = $1 and volunteer_id = $2',
            [shiftId, volunteer.id],
          ),
        ).toBe('waitlisted');
      }
    }
  });

  it('15 concurrent identical claims with one Idempotency-Key create one signup, with consistent answers', async () => {
    for (let round = 0; round < 5; round++) {
      const org = await seedOrganisation(url, 1);
      const volunteer = org.volunteers[0] as { id: string; token: string };
      const shiftId = await createShift(url, org, { capacity: 5, waitlist: true });
      const key = `claim-${round}`;
      const results = await rush(
        Array.from({ length: 15 }, () => claim(shiftId, volunteer.token, { 'idempotency-key': key })),
        15,
      );
      const statuses = countBy(results, (result) => result.status);
      expect(Object.keys(statuses).every((status) => status === '201' || status === '409')).toBe(true);
      const created = results.filter((result) => result.status === 201);
      expect(new Set(created.map((result) => result.body.id)).size).toBe(1);
      expect(created.filter((result) => result.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
      for (const result of results.filter((r) => r.status === 409))
        expect(result.body.code).toBe('idempotency-key-in-use');
      expect(
        await scalar<number>(url, 'select count(*)::int from signups where shift_id = $1', [shiftId]),
      ).toBe(1);
      // A retry after the storm replays the same signup.
      const [retry] = await rush([claim(shiftId, volunteer.token, { 'idempotency-key': key })], 1);
      expect(retry?.status).toBe(201);
      expect(retry?.body.id).toBe(created[0]?.body.id);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });

  it('crossed waitlists: cancelling two overlapping shifts at once, or one and a signup of the other, never deadlocks', async () => {
    for (let round = 0; round < 6; round++) {
      const org = await seedOrganisation(url, 2);
      const [v, u] = org.volunteers as [{ id: string; token: string }, { id: string; token: string }];
      // Two overlapping shifts, each with a free place and, waiting for it, a volunteer confirmed
      // on the other (skipped for the overlap): cancelling one frees its volunteer for the other.
      const w = await createShift(url, org, { capacity: 2, waitlist: true, startsInHours: 24 });
      const x = await createShift(url, org, { capacity: 2, waitlist: true, startsInHours: 25 });
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      let uOnW = '';
      try {
        await client.query('begin');
        const place = async (shiftId: string, volunteerId: string, status: string) => {
          const inserted = await client.query<{ id: string }>(
            `insert into signups (org_id, id, shift_id, volunteer_id, status, period)
             select org_id, gen_random_uuid(), id, $2, $3::signup_status, period from shifts where id = $1
             returning id`,
            [shiftId, volunteerId, status],
          );
          return inserted.rows[0]?.id as string;
        };
        uOnW = await place(w, u.id, 'confirmed');
        await place(w, v.id, 'waitlisted');
        await place(x, v.id, 'confirmed');
        await place(x, u.id, 'waitlisted');
        await client.query('commit');
      } finally {
        await client.end();
      }
      const cancelShift = (shiftId: string): HttpRequest => ({
        base: t.baseUrl,
        method: 'POST',
        path: `/v1/shifts/${shiftId}/cancel`,
        token: org.organiserToken,
      });
      const requests =
        round % 2 === 0
          ? [cancelShift(x), cancelShift(w)]
          : [cancelShift(x), { ...cancelShift(w), path: `/v1/signups/${uOnW}/cancel` }];
      const results = await rush(requests, 2);
      expect(
        results.map((result) => result.status),
        JSON.stringify(results.map((result) => result.body)),
      ).toEqual([200, 200]);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });

  it('a claim that waits for the lock of a full shift while a place is freed takes the place, not the waitlist', async () => {
    for (let round = 0; round < 3; round++) {
      const org = await seedOrganisation(url, 2);
      const [holder, claimant] = org.volunteers as [{ id: string }, { id: string; token: string }];
      const shiftId = await createShift(url, org, { capacity: 1, waitlist: true });
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const held = await client.query<{ id: string }>(
          `insert into signups (org_id, id, shift_id, volunteer_id, status, period)
           select org_id, gen_random_uuid(), id, $2, 'confirmed', period from shifts where id = $1 returning id`,
          [shiftId, holder.id],
        );
        // The place is freed in a transaction that holds the shift's row lock (the counting
        // trigger updates the shift) while the claim arrives: the claim's snapshot sees a full shift.
        await client.query('begin');
        await client.query(
          `update signups set status = 'cancelled', cancelled_at = now(), updated_at = now() where id = $1`,
          [held.rows[0]?.id],
        );
        const answer = fetch(`${t.baseUrl}/v1/shifts/${shiftId}/signups`, {
          method: 'POST',
          headers: { authorization: `Bearer ${claimant.token}`, 'content-type': 'application/json' },
          body: '{}',
        });
        // Until the claim's statement waits for that lock (seen from outside the transaction,
        // whose view of pg_stat_activity is a snapshot): otherwise the test would prove nothing.
        const watcher = new pg.Client({ connectionString: url });
        await watcher.connect();
        let seen = false;
        try {
          for (let waited = 0; waited < 200 && !seen; waited++) {
            const waiting = await watcher.query(
              `select 1 from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock' and query like '%with taken as%'`,
            );
            seen = (waiting.rowCount ?? 0) > 0;
            if (!seen) await new Promise((resolve) => setTimeout(resolve, 25));
          }
        } finally {
          await watcher.end();
        }
        expect(seen, 'the claim waited for the shift lock').toBe(true);
        await client.query('commit');
        const response = await answer;
        const body = (await response.json()) as { status?: string; code?: string };
        expect(`${response.status} ${body.status ?? body.code}`).toBe('201 confirmed');
      } finally {
        await client.end();
      }
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });

  /** The API, as the organiser of `org`. */
  async function asOrganiser(
    org: { organiserToken: string },
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, string> }> {
    const response = await fetch(`${t.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${org.organiserToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = response.status === 204 ? {} : ((await response.json()) as Record<string, string>);
    return { status: response.status, body: json };
  }

  it('a claim racing the deletion of its shift is 201 or 404, never shift-full; the delete agrees', async () => {
    for (let round = 0; round < 10; round++) {
      const org = await seedOrganisation(url, 1);
      const volunteer = org.volunteers[0] as { id: string; token: string };
      const shiftId = await createShift(url, org, { capacity: 5, waitlist: false });
      const [claimed, deleted] = await rush(
        [
          claim(shiftId, volunteer.token),
          { base: t.baseUrl, method: 'DELETE', path: `/v1/shifts/${shiftId}`, token: org.organiserToken },
        ],
        2,
      );
      const outcome = `${claimed?.status} ${claimed?.body.code ?? ''} / ${deleted?.status} ${deleted?.body.code ?? ''}`;
      expect(['201  / 409 shift-has-signups', '404 not-found / 204 ']).toContain(outcome);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });

  it("an assignment racing the deletion of a draft event: the delete is refused as the event's, never the shift's", async () => {
    for (let round = 0; round < 10; round++) {
      const org = await seedOrganisation(url, 1);
      const volunteer = org.volunteers[0] as { id: string; token: string };
      const event = await asOrganiser(org, 'POST', '/v1/events', { title: 'Draft' });
      const start = Date.now() + 48 * 3_600_000;
      const shift = await asOrganiser(org, 'POST', `/v1/events/${event.body.id}/shifts`, {
        startsAt: new Date(start).toISOString(),
        endsAt: new Date(start + 3_600_000).toISOString(),
        capacity: 3,
      });
      expect(shift.status).toBe(201);
      const [assigned, deleted] = await rush(
        [
          { ...claim(String(shift.body.id), org.organiserToken), body: { volunteerId: volunteer.id } },
          {
            base: t.baseUrl,
            method: 'DELETE',
            path: `/v1/events/${event.body.id}`,
            token: org.organiserToken,
          },
        ],
        2,
      );
      const outcome = `${assigned?.status} ${assigned?.body.code ?? ''} / ${deleted?.status} ${deleted?.body.code ?? ''}`;
      expect(['201  / 409 event-has-signups', '404 not-found / 204 ']).toContain(outcome);
      expect(await invariantViolations(url, org.orgId)).toEqual([]);
    }
  });
});
