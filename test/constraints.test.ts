/**
 * The database itself enforces tenant isolation and the signup invariants (ARCHITECTURE.md §3):
 * these tests write rows directly, past every JavaScript check, and expect PostgreSQL to refuse.
 */
import { type SQL, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, queryRows } from '../src/db/client.ts';
import { driverErrorOf } from '../src/db/errors.ts';
import { createTestDatabase, type TestDatabase } from './support/app.ts';
import { type SignupStatus, signupInsert } from './support/fixtures.ts';

let testDb: TestDatabase;
let db: Db;

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = testDb.database.db;
});
afterAll(() => testDb?.drop());

async function rejection(statement: SQL): Promise<{ code?: string; constraint?: string }> {
  try {
    await db.execute(statement);
  } catch (error) {
    const driverError = driverErrorOf(error);
    return { code: driverError?.code, constraint: driverError?.constraint };
  }
  throw new Error('the database accepted the statement');
}

async function newOrg(): Promise<string> {
  const id = uuidv7();
  await db.execute(
    sql`insert into organizations (id, name, slug, timezone, contact_email)
        values (${id}, 'Org', ${`org-${id}`}, 'UTC', 'org@example.org')`,
  );
  return id;
}

async function newVolunteer(orgId: string): Promise<string> {
  const id = uuidv7();
  await db.execute(
    sql`insert into volunteers (org_id, id, name, email) values (${orgId}, ${id}, 'V', ${`${id}@example.org`})`,
  );
  return id;
}

async function newEvent(orgId: string): Promise<string> {
  const id = uuidv7();
  await db.execute(
    sql`insert into events (org_id, id, title, timezone) values (${orgId}, ${id}, 'Event', 'UTC')`,
  );
  return id;
}

async function newShift(
  orgId: string,
  eventId: string,
  startsAt: string,
  endsAt: string,
  capacity = 5,
): Promise<string> {
  const id = uuidv7();
  await db.execute(
    sql`insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity)
        values (${orgId}, ${id}, ${eventId}, ${startsAt}, ${endsAt}, ${capacity})`,
  );
  return id;
}

/** A signup with an explicit period, its shift's counters following it in the same statement. */
function insertSignup(
  orgId: string,
  shiftId: string,
  volunteerId: string,
  status: SignupStatus,
  period: string,
): SQL {
  return signupInsert({ orgId, shiftId, volunteerId, status, period });
}

describe('tenant isolation in the schema', () => {
  it('refuses a shift of org B that points at an event of org A', async () => {
    const a = await newOrg();
    const b = await newOrg();
    const eventOfA = await newEvent(a);
    const refused = await rejection(
      sql`insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity)
          values (${b}, ${uuidv7()}, ${eventOfA}, '2027-01-01T09:00Z', '2027-01-01T12:00Z', 3)`,
    );
    expect(refused).toEqual({ code: '23503', constraint: 'shifts_event_fk' });
  });

  it('refuses a signup of org B for a volunteer of org A', async () => {
    const a = await newOrg();
    const b = await newOrg();
    const volunteerOfA = await newVolunteer(a);
    const shiftOfB = await newShift(b, await newEvent(b), '2027-01-01T09:00Z', '2027-01-01T12:00Z');
    const refused = await rejection(
      insertSignup(b, shiftOfB, volunteerOfA, 'confirmed', '[2027-01-01T09:00Z,2027-01-01T12:00Z)'),
    );
    expect(refused).toEqual({ code: '23503', constraint: 'signups_volunteer_fk' });
  });

  it('refuses a qualification across organisations', async () => {
    const a = await newOrg();
    const b = await newOrg();
    const roleOfA = uuidv7();
    await db.execute(sql`insert into roles (org_id, id, name) values (${a}, ${roleOfA}, 'Kitchen')`);
    const refused = await rejection(
      sql`insert into qualifications (org_id, volunteer_id, role_id) values (${b}, ${await newVolunteer(b)}, ${roleOfA})`,
    );
    expect(refused).toEqual({ code: '23503', constraint: 'qualifications_role_fk' });
  });
});

describe('signup invariants in the schema', () => {
  it('refuses a second active signup for the same shift and volunteer', async () => {
    const org = await newOrg();
    const volunteer = await newVolunteer(org);
    const shift = await newShift(org, await newEvent(org), '2027-02-01T09:00Z', '2027-02-01T12:00Z');
    const period = '[2027-02-01T09:00Z,2027-02-01T12:00Z)';
    await db.execute(insertSignup(org, shift, volunteer, 'waitlisted', period));
    expect(await rejection(insertSignup(org, shift, volunteer, 'confirmed', period))).toEqual({
      code: '23505',
      constraint: 'signups_one_active_per_volunteer',
    });
    // A cancelled signup is history, not an active one: it does not block.
    await db.execute(insertSignup(org, shift, volunteer, 'cancelled', period));
  });

  it('refuses two overlapping confirmed signups of one volunteer, not touching or waitlisted ones', async () => {
    const org = await newOrg();
    const volunteer = await newVolunteer(org);
    const event = await newEvent(org);
    const morning = await newShift(org, event, '2027-03-01T09:00Z', '2027-03-01T12:00Z');
    const overlapping = await newShift(org, event, '2027-03-01T11:00Z', '2027-03-01T14:00Z');
    const afternoon = await newShift(org, event, '2027-03-01T12:00Z', '2027-03-01T15:00Z');
    await db.execute(
      insertSignup(org, morning, volunteer, 'confirmed', '[2027-03-01T09:00Z,2027-03-01T12:00Z)'),
    );
    expect(
      await rejection(
        insertSignup(org, overlapping, volunteer, 'confirmed', '[2027-03-01T11:00Z,2027-03-01T14:00Z)'),
      ),
    ).toEqual({ code: '23P01', constraint: 'signups_no_overlap' });
    // Half-open intervals: 09–12 and 12–15 touch but do not overlap.
    await db.execute(
      insertSignup(org, afternoon, volunteer, 'confirmed', '[2027-03-01T12:00Z,2027-03-01T15:00Z)'),
    );
    // Only confirmed signups are exclusive; a waitlisted one may overlap.
    await db.execute(
      insertSignup(org, overlapping, volunteer, 'waitlisted', '[2027-03-01T11:00Z,2027-03-01T14:00Z)'),
    );
    // Another volunteer may hold the same time.
    await db.execute(
      insertSignup(
        org,
        overlapping,
        await newVolunteer(org),
        'confirmed',
        '[2027-03-01T11:00Z,2027-03-01T14:00Z)',
      ),
    );
  });

  it("keeps a signup's copy of the interval equal to its shift's", async () => {
    const org = await newOrg();
    const volunteer = await newVolunteer(org);
    const shift = await newShift(org, await newEvent(org), '2027-06-01T09:00Z', '2027-06-01T12:00Z');
    expect(
      await rejection(
        insertSignup(org, shift, volunteer, 'confirmed', '[2027-06-01T09:00Z,2027-06-01T13:00Z)'),
      ),
    ).toEqual({
      code: '23503',
      constraint: 'signups_shift_period_fk',
    });
    await db.execute(
      insertSignup(org, shift, volunteer, 'confirmed', '[2027-06-01T09:00Z,2027-06-01T12:00Z)'),
    );
    await db.execute(
      sql`update shifts set ends_at = '2027-06-01T14:00Z' where org_id = ${org} and id = ${shift}`,
    );
    const [row] = await queryRows<{ same: boolean }>(
      db,
      sql`select s.period = sh.period as same from signups s join shifts sh on sh.org_id = s.org_id and sh.id = s.shift_id
          where s.org_id = ${org} and s.shift_id = ${shift}`,
    );
    expect(row?.same).toBe(true);
  });

  it('refuses to move a shift onto another confirmed shift of one of its volunteers', async () => {
    const org = await newOrg();
    const volunteer = await newVolunteer(org);
    const event = await newEvent(org);
    const early = await newShift(org, event, '2027-07-01T09:00Z', '2027-07-01T10:00Z');
    const late = await newShift(org, event, '2027-07-01T11:00Z', '2027-07-01T12:00Z');
    await db.execute(
      insertSignup(org, early, volunteer, 'confirmed', '[2027-07-01T09:00Z,2027-07-01T10:00Z)'),
    );
    await db.execute(
      insertSignup(org, late, volunteer, 'confirmed', '[2027-07-01T11:00Z,2027-07-01T12:00Z)'),
    );
    expect(
      await rejection(
        sql`update shifts set starts_at = '2027-07-01T09:30Z' where org_id = ${org} and id = ${late}`,
      ),
    ).toEqual({ code: '23P01', constraint: 'signups_no_overlap' });
  });

  it('refuses a confirmed count above capacity', async () => {
    const org = await newOrg();
    const shift = await newShift(org, await newEvent(org), '2027-04-01T09:00Z', '2027-04-01T12:00Z', 2);
    const period = '[2027-04-01T09:00Z,2027-04-01T12:00Z)';
    await db.execute(insertSignup(org, shift, await newVolunteer(org), 'confirmed', period));
    await db.execute(insertSignup(org, shift, await newVolunteer(org), 'confirmed', period));
    expect(await rejection(insertSignup(org, shift, await newVolunteer(org), 'confirmed', period))).toEqual({
      code: '23514',
      constraint: 'shifts_capacity_not_exceeded',
    });
    // Nor can the count be written past it: the counters are the database's own (migration 0016).
    expect(
      await rejection(sql`update shifts set confirmed_count = 3 where org_id = ${org} and id = ${shift}`),
    ).toEqual({
      code: '23514',
      constraint: 'shift_counters_match_signups',
    });
  });

  it('refuses shifts that end before they start, last over 7 days, or have capacity outside 1–10000', async () => {
    const org = await newOrg();
    const event = await newEvent(org);
    const insert = (startsAt: string, endsAt: string, capacity: number) =>
      rejection(
        sql`insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity)
            values (${org}, ${uuidv7()}, ${event}, ${startsAt}, ${endsAt}, ${capacity})`,
      );
    expect((await insert('2027-05-01T12:00Z', '2027-05-01T09:00Z', 1)).constraint).toBe('shifts_time_order');
    expect((await insert('2027-05-01T09:00Z', '2027-05-08T09:01Z', 1)).constraint).toBe(
      'shifts_max_duration',
    );
    expect((await insert('2027-05-01T09:00Z', '2027-05-01T10:00Z', 0)).constraint).toBe(
      'shifts_capacity_range',
    );
    expect((await insert('2027-05-01T09:00Z', '2027-05-01T10:00Z', 10001)).constraint).toBe(
      'shifts_capacity_range',
    );
  });

  it('refuses a second volunteer with the same email in any letter case, within one organisation only', async () => {
    const org = await newOrg();
    await db.execute(
      sql`insert into volunteers (org_id, id, name, email) values (${org}, ${uuidv7()}, 'A', 'Sam@Example.org')`,
    );
    expect(
      await rejection(
        sql`insert into volunteers (org_id, id, name, email) values (${org}, ${uuidv7()}, 'B', 'sam@example.ORG')`,
      ),
    ).toEqual({ code: '23505', constraint: 'volunteers_email_unique' });
    const other = await newOrg();
    await db.execute(
      sql`insert into volunteers (org_id, id, name, email) values (${other}, ${uuidv7()}, 'C', 'sam@example.org')`,
    );
  });
});

describe("a shift's counters are its signups (kept by the database)", () => {
  const period = '[2027-09-01T09:00Z,2027-09-01T12:00Z)';
  const counterMismatch = { code: '23514', constraint: 'shift_counters_match_signups' };

  async function shiftWithVolunteer() {
    const org = await newOrg();
    const shift = await newShift(org, await newEvent(org), '2027-09-01T09:00Z', '2027-09-01T12:00Z');
    return { org, shift, volunteer: await newVolunteer(org) };
  }

  function bareSignup(org: string, shift: string, volunteer: string, status: string) {
    return sql`insert into signups (org_id, id, shift_id, volunteer_id, status, period, cancelled_at)
               values (${org}, ${uuidv7()}, ${shift}, ${volunteer}, ${status}::signup_status, ${period}::tstzrange,
                       case when ${status} = 'cancelled' then now() end)`;
  }

  async function counts(shift: string) {
    const [row] = await queryRows<{ confirmed_count: number; waitlist_count: number; signups: number }>(
      db,
      sql`select confirmed_count, waitlist_count, (select count(*)::int from signups where shift_id = ${shift} and status <> 'cancelled') as signups
          from shifts where id = ${shift}`,
    );
    return row;
  }

  it('counts a signup written by any statement, confirmed or waitlisted; a cancelled one takes nothing', async () => {
    const { org, shift } = await shiftWithVolunteer();
    await db.execute(bareSignup(org, shift, await newVolunteer(org), 'confirmed'));
    await db.execute(bareSignup(org, shift, await newVolunteer(org), 'waitlisted'));
    await db.execute(bareSignup(org, shift, await newVolunteer(org), 'cancelled'));
    expect(await counts(shift)).toEqual({ confirmed_count: 1, waitlist_count: 1, signups: 2 });
  });

  it('refuses a counter written directly, and a new shift that does not start at zero', async () => {
    const { org, shift } = await shiftWithVolunteer();
    expect(
      await rejection(sql`update shifts set confirmed_count = 1 where org_id = ${org} and id = ${shift}`),
    ).toEqual(counterMismatch);
    expect(
      await rejection(
        sql`update shifts set waitlist = true, waitlist_count = 1 where org_id = ${org} and id = ${shift}`,
      ),
    ).toEqual(counterMismatch);
    expect(
      await rejection(
        sql`insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity, confirmed_count)
            select org_id, ${uuidv7()}, event_id, starts_at, ends_at, capacity, 1 from shifts where id = ${shift}`,
      ),
    ).toEqual(counterMismatch);
    expect(await counts(shift)).toEqual({ confirmed_count: 0, waitlist_count: 0, signups: 0 });
  });

  it('follows cancellations, deletions and promotions; attendance keeps the place', async () => {
    const { org, shift, volunteer } = await shiftWithVolunteer();
    await db.execute(insertSignup(org, shift, volunteer, 'confirmed', period));
    const waiting = await newVolunteer(org);
    await db.execute(bareSignup(org, shift, waiting, 'waitlisted'));
    expect(await counts(shift)).toEqual({ confirmed_count: 1, waitlist_count: 1, signups: 2 });
    // attended and no_show still hold their place (API.md §7): the count stays.
    await db.execute(
      sql`update signups set status = 'attended', updated_at = now() where org_id = ${org} and volunteer_id = ${volunteer}`,
    );
    await db.execute(
      sql`update signups set status = 'no_show', updated_at = now() where org_id = ${org} and volunteer_id = ${volunteer}`,
    );
    expect(await counts(shift)).toEqual({ confirmed_count: 1, waitlist_count: 1, signups: 2 });
    await db.execute(
      sql`update signups set status = 'cancelled', cancelled_at = now(), updated_at = now() where org_id = ${org} and volunteer_id = ${volunteer}`,
    );
    await db.execute(
      sql`update signups set status = 'confirmed', updated_at = now() where org_id = ${org} and volunteer_id = ${waiting}`,
    );
    expect(await counts(shift)).toEqual({ confirmed_count: 1, waitlist_count: 0, signups: 1 });
    await db.execute(sql`delete from signups where org_id = ${org} and shift_id = ${shift}`);
    expect(await counts(shift)).toEqual({ confirmed_count: 0, waitlist_count: 0, signups: 0 });
  });

  it("refuses a change of status that leaves the signup's updatedAt behind (updatedSince finds its shift by it)", async () => {
    const { org, shift, volunteer } = await shiftWithVolunteer();
    await db.execute(insertSignup(org, shift, volunteer, 'confirmed', period));
    expect(
      await rejection(
        sql`update signups set status = 'cancelled', cancelled_at = now() where org_id = ${org} and shift_id = ${shift}`,
      ),
    ).toEqual(counterMismatch);
    expect(await counts(shift)).toEqual({ confirmed_count: 1, waitlist_count: 0, signups: 1 });
  });

  it('counts a claim with a heap-only (HOT) update of its shift: no index entry, whatever the shift holds', async () => {
    const { org, shift } = await shiftWithVolunteer();
    const volunteers = [await newVolunteer(org), await newVolunteer(org), await newVolunteer(org)];
    // One transaction, so that its own statistics (pg_stat_get_xact_*) count exactly these updates.
    const [updates] = await db.transaction(async (tx) => {
      for (const volunteer of volunteers) await tx.execute(bareSignup(org, shift, volunteer, 'confirmed'));
      return queryRows<{ updated: number; hot: number }>(
        tx,
        sql`select pg_stat_get_xact_tuples_updated('shifts'::regclass)::int as updated,
                   pg_stat_get_xact_tuples_hot_updated('shifts'::regclass)::int as hot`,
      );
    });
    expect(updates).toEqual({ updated: 3, hot: 3 });
    expect(await counts(shift)).toEqual({ confirmed_count: 3, waitlist_count: 0, signups: 3 });
  });

  it('refuses a signup moved to another shift', async () => {
    const { org, shift, volunteer } = await shiftWithVolunteer();
    // At the same times, so that only the move itself is wrong (the period's foreign key holds).
    const other = await newShift(org, await newEvent(org), '2027-09-01T09:00Z', '2027-09-01T12:00Z');
    await db.execute(insertSignup(org, shift, volunteer, 'confirmed', period));
    expect(
      await rejection(
        sql`update signups set shift_id = ${other} where org_id = ${org} and shift_id = ${shift}`,
      ),
    ).toEqual(counterMismatch);
  });

  it('refuses a confirmed signup beyond capacity, whoever writes it', async () => {
    const org = await newOrg();
    const shift = await newShift(org, await newEvent(org), '2027-09-01T09:00Z', '2027-09-01T12:00Z', 1);
    await db.execute(bareSignup(org, shift, await newVolunteer(org), 'confirmed'));
    expect(await rejection(bareSignup(org, shift, await newVolunteer(org), 'confirmed'))).toEqual({
      code: '23514',
      constraint: 'shifts_capacity_not_exceeded',
    });
  });

  it('accepts erasing a whole organisation, signups and shifts together', async () => {
    const { org, shift, volunteer } = await shiftWithVolunteer();
    await db.execute(insertSignup(org, shift, volunteer, 'confirmed', period));
    await db.execute(sql`delete from organizations where id = ${org}`);
    expect(await counts(shift)).toBeUndefined();
  });
});
