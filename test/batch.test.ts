/**
 * Cross-request batching (src/db/batch.ts) on a real database: the loads of one turn of the event
 * loop become one statement, each caller gets its own answer, and one caller's bad input fails only
 * that caller. Then the two batched lookups of the hot path, the bearer token and the claim facts,
 * called the way concurrent requests call them: in one turn.
 */
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { principalForToken } from '../src/core/auth.ts';
import { batchLoader } from '../src/db/batch.ts';
import { queryRows, textArray } from '../src/db/client.ts';
import { loadClaimFacts } from '../src/domains/signups/rules.ts';
import { bearer, createKey, createOrg, uniqueSlug } from './support/app.ts';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp();

/** A loader that casts each key to an integer in SQL, counting the statements it sends. */
function integerLoader() {
  const batches: string[][] = [];
  const loader = batchLoader<string, number>(async (keys) => {
    batches.push([...keys]);
    const rows = await queryRows<{ n: number }>(
      suite.database.db,
      sql`select v::int as n from unnest(${textArray(keys)}) with ordinality as u(v, i) order by i`,
    );
    return rows.map((row) => row.n);
  });
  return { loader, batches };
}

describe('batchLoader', () => {
  it('sends the loads of one turn as one statement and answers each caller in order', async () => {
    const { loader, batches } = integerLoader();
    const keys = Array.from({ length: 25 }, (_, index) => String(index * 7));
    const results = await Promise.all(keys.map((key) => loader.load(key)));
    expect(results).toEqual(keys.map(Number));
    expect(batches).toEqual([keys]);
    // A later turn is a later statement: nothing is cached.
    expect(await loader.load('7')).toBe(7);
    expect(batches).toHaveLength(2);
  });

  it('retries each key alone when the batch fails on bad data, so only the bad key fails', async () => {
    const { loader, batches } = integerLoader();
    const results = await Promise.allSettled(['1', 'not a number', '3'].map((key) => loader.load(key)));
    expect(results[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(results[2]).toEqual({ status: 'fulfilled', value: 3 });
    expect(results[1]?.status).toBe('rejected');
    expect(batches).toEqual([['1', 'not a number', '3'], ['1'], ['not a number'], ['3']]);
  });

  it('fails every caller of the batch on any other error (no retry storm when the database is away)', async () => {
    let statements = 0;
    const loader = batchLoader<string, number>(async () => {
      statements++;
      await queryRows(suite.database.db, sql`select * from no_such_table`);
      return [];
    });
    const results = await Promise.allSettled(['1', '2', '3'].map((key) => loader.load(key)));
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(statements).toBe(1);
  });
});

describe('textArray', () => {
  it('carries any string through PostgreSQL array syntax unchanged', async () => {
    const values = ['plain', 'with "quotes"', 'back\\slash', 'comma, {braces}', '', 'NULL', ' spaced '];
    const rows = await queryRows<{ v: string }>(
      suite.database.db,
      sql`select v from unnest(${textArray(values)}) with ordinality as u(v, i) order by i`,
    );
    expect(rows.map((row) => row.v)).toEqual(values);
  });
});

describe('bearer tokens looked up in one batch', () => {
  it('give each caller its own principal, and null to a revoked, unknown or erased one', async () => {
    const [first, second] = await Promise.all([createOrg(suite.http), createOrg(suite.http)]);
    if (!first || !second) throw new Error('set-up failed');
    const organiser = await createKey(suite.http, second.adminToken, 'organiser');
    const revoked = await createKey(suite.http, first.adminToken, 'viewer');
    await suite.http.delete(`/v1/api-keys/${revoked.id}`).set(bearer(first.adminToken)).expect(204);
    const volunteer = await suite.http
      .post('/v1/volunteers')
      .set(bearer(first.adminToken))
      .send({ name: 'Ada', email: `${uniqueSlug('ada')}@example.org` })
      .expect(201);
    const volunteerToken = await suite.http
      .post(`/v1/volunteers/${volunteer.body.id}/tokens`)
      .set(bearer(first.adminToken))
      .expect(201);
    const erased = await suite.http
      .post('/v1/volunteers')
      .set(bearer(first.adminToken))
      .send({ name: 'Bo', email: `${uniqueSlug('bo')}@example.org` })
      .expect(201);
    const erasedToken = await suite.http
      .post(`/v1/volunteers/${erased.body.id}/tokens`)
      .set(bearer(first.adminToken))
      .expect(201);
    await suite.http.delete(`/v1/volunteers/${erased.body.id}`).set(bearer(first.adminToken)).expect(204);

    const cases: [string, unknown][] = [
      [first.adminToken, { kind: 'key', orgId: first.id, role: 'admin', keyId: first.adminKeyId }],
      [revoked.token, null],
      [organiser.token, { kind: 'key', orgId: second.id, role: 'organiser', keyId: organiser.id }],
      [`tg_key_${'A'.repeat(43)}`, null],
      [
        volunteerToken.body.token,
        { kind: 'volunteer', orgId: first.id, volunteerId: volunteer.body.id, tokenId: expect.any(String) },
      ],
      [erasedToken.body.token, null],
      [`tg_vol_${'B'.repeat(43)}`, null],
      [second.adminToken, { kind: 'key', orgId: second.id, role: 'admin', keyId: second.adminKeyId }],
    ];
    // Three rounds of every case, all called in one turn: one batch per kind of token.
    const calls = [...cases, ...cases, ...cases];
    const principals = await Promise.all(calls.map(([token]) => principalForToken(suite.database.db, token)));
    principals.forEach((principal, index) => {
      const expected = calls[index]?.[1];
      if (expected === null) expect(principal).toBeNull();
      else expect(principal).toEqual(expected);
    });
  });
});

describe('claim facts looked up in one batch', () => {
  it('answer each (volunteer, shift) for its own organisation, and nothing for a stranger', async () => {
    const orgs = await Promise.all([createOrg(suite.http), createOrg(suite.http)]);
    const setups = await Promise.all(
      orgs.map(async (org, index) => {
        const auth = bearer(org.adminToken);
        const event = await suite.http
          .post('/v1/events')
          .set(auth)
          .send({ title: 'Sort', status: 'published' })
          .expect(201);
        const shifts = [];
        for (const [capacity, day] of [
          [2 + index, 10],
          [5 + index, 11],
        ] as const) {
          const shift = await suite.http
            .post(`/v1/events/${event.body.id}/shifts`)
            .set(auth)
            .send({ capacity, startsAt: `2034-03-${day}T09:00:00Z`, endsAt: `2034-03-${day}T12:00:00Z` })
            .expect(201);
          shifts.push(shift.body as { id: string; capacity: number });
        }
        const volunteer = await suite.http
          .post('/v1/volunteers')
          .set(auth)
          .send({ name: 'Cy', email: `${uniqueSlug('cy')}@example.org` })
          .expect(201);
        return { orgId: org.id, shifts, volunteerId: volunteer.body.id as string, auth };
      }),
    );
    const [a, b] = setups;
    if (!a || !b) throw new Error('set-up failed');
    const [aFirst, aSecond] = a.shifts;
    const [bFirst] = b.shifts;
    if (!aFirst || !aSecond || !bFirst) throw new Error('set-up failed');
    // One signup, so that one pair has an active signup and the other volunteer's does not.
    const signup = await suite.http
      .post(`/v1/shifts/${aFirst.id}/signups`)
      .set(a.auth)
      .send({ volunteerId: a.volunteerId })
      .expect(201);

    // The strangers come first and in between, so that an answer given to the wrong caller shows.
    const [crossVolunteer, aFacts, crossShift, bFacts, aBothFacts] = await Promise.all([
      // b's volunteer on a's shift, asked as a: a stranger to a's organisation.
      loadClaimFacts(suite.database.db, a.orgId, b.volunteerId, [aFirst.id]),
      loadClaimFacts(suite.database.db, a.orgId, a.volunteerId, [aFirst.id]),
      // a's shift asked as b: not b's.
      loadClaimFacts(suite.database.db, b.orgId, b.volunteerId, [aFirst.id]),
      loadClaimFacts(suite.database.db, b.orgId, b.volunteerId, [bFirst.id]),
      loadClaimFacts(suite.database.db, a.orgId, a.volunteerId, [aFirst.id, aSecond.id]),
    ]);
    expect(aFacts.get(aFirst.id)).toMatchObject({
      capacity: aFirst.capacity,
      confirmedCount: 1,
      activeSignupId: signup.body.id,
      activeSignupStatus: 'confirmed',
    });
    expect([...aBothFacts.keys()].sort()).toEqual([aFirst.id, aSecond.id].sort());
    expect(aBothFacts.get(aSecond.id)).toMatchObject({
      capacity: aSecond.capacity,
      confirmedCount: 0,
      activeSignupId: null,
    });
    expect(bFacts.get(bFirst.id)).toMatchObject({ capacity: bFirst.capacity, confirmedCount: 0 });
    expect(crossVolunteer.size).toBe(0);
    expect(crossShift.size).toBe(0);
  });
});
