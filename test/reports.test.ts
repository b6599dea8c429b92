/**
 * API.md §10, reports: the hours report (JSON and CSV) and an event's roster CSV, with exact
 * values, the period's edges, CSV safety (RFC 4180 quoting, formula injection) and a roster of
 * 10,000 signups read batch by batch. Attendance states the API only reaches over time are written
 * by SQL (`signupInsert`).
 */
import { parse } from 'csv-parse/sync';
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import { rosterBatch, rosterOf } from '../src/domains/reports/service.ts';
import { expectProblem, fixtures, type SignupStatus, signupInsert, useTestApp } from './support/fixtures.ts';

const suite = useTestApp();
const { setupOrg, createEvent, createShift, createVolunteer, volunteerToken } = fixtures(suite);

const hour = 3_600_000;
/** A shift's times `days` days after a fixed start in 2027, lasting 3 hours. */
const on = (days: number, startHour = 9) => {
  const startsAt = new Date(Date.UTC(2027, 2, 1, startHour) + days * 24 * hour);
  return { startsAt: startsAt.toISOString(), endsAt: new Date(startsAt.getTime() + 3 * hour).toISOString() };
};

async function signup(
  orgId: string,
  shiftId: string,
  volunteerId: string,
  status: SignupStatus,
  extra: { hours?: number; lateCancellation?: boolean; createdAt?: string } = {},
) {
  const id = uuidv7();
  await suite.database.db.execute(
    signupInsert({ orgId, id, shiftId, volunteerId, status, hours: extra.hours, createdAt: extra.createdAt }),
  );
  if (extra.lateCancellation)
    await suite.database.db.execute(sql`update signups set late_cancellation = true where id = ${id}`);
  return id;
}

const csvRows = (text: string) => parse(text, { relax_column_count: false }) as string[][];

describe('the hours report', () => {
  it('counts attended shifts, hours, no-shows and late cancellations per volunteer, over shifts starting in [from, to)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const before = await createShift(org.organiser, event.id, on(-1)); // starts before `from`
    const first = await createShift(org.organiser, event.id, on(0)); // starts at `from`: in
    const second = await createShift(org.organiser, event.id, on(1));
    const third = await createShift(org.organiser, event.id, on(2));
    const atTo = await createShift(org.organiser, event.id, on(3)); // starts at `to`: out
    const ada = await createVolunteer(org.organiser, { name: 'Ada', email: 'ada@example.org' });
    const bea = await createVolunteer(org.organiser, { name: 'Bea', email: 'bea@example.org' });
    const erased = await createVolunteer(org.organiser, { name: 'Cleo', email: 'cleo@example.org' });
    const outside = await createVolunteer(org.organiser, { name: 'Dan', email: 'dan@example.org' });

    await signup(org.id, first.id, ada, 'attended', { hours: 3 });
    await signup(org.id, second.id, ada, 'attended', { hours: 2.5 });
    await signup(org.id, third.id, ada, 'no_show', { hours: 0 });
    await signup(org.id, before.id, ada, 'attended', { hours: 3 }); // not in the period
    await signup(org.id, first.id, bea, 'cancelled', { lateCancellation: true });
    await signup(org.id, second.id, bea, 'confirmed');
    await signup(org.id, third.id, erased, 'attended', { hours: 1.75 });
    await signup(org.id, atTo.id, outside, 'attended', { hours: 3 });
    await suite.http.delete(`/v1/volunteers/${erased}`).set(org.organiser).expect(204);

    const query = { from: on(0).startsAt, to: on(3).startsAt };
    const report = await suite.http.get('/v1/reports/hours').query(query).set(org.viewer).expect(200);
    expect(report.body).toEqual({
      data: [
        {
          volunteerId: ada,
          name: 'Ada',
          email: 'ada@example.org',
          shiftsAttended: 2,
          hours: 5.5,
          noShows: 1,
          lateCancellations: 0,
        },
        {
          volunteerId: bea,
          name: 'Bea',
          email: 'bea@example.org',
          shiftsAttended: 0,
          hours: 0,
          noShows: 0,
          lateCancellations: 1,
        },
        // Erased: anonymised, the hours kept, sorted after the named.
        {
          volunteerId: erased,
          name: null,
          email: null,
          shiftsAttended: 1,
          hours: 1.75,
          noShows: 0,
          lateCancellations: 0,
        },
      ],
    });

    // Unbounded: every shift counts, Dan's too.
    const all = await suite.http.get('/v1/reports/hours').set(org.viewer).expect(200);
    expect(all.body.data.map((row: { volunteerId: string }) => row.volunteerId)).toEqual([
      ada,
      bea,
      outside,
      erased,
    ]);
    expect(all.body.data[0]).toMatchObject({ shiftsAttended: 3, hours: 8.5 });

    // The CSV has exactly the JSON's columns and values, an empty cell for null.
    const csv = await suite.http
      .get('/v1/reports/hours')
      .query({ ...query, format: 'csv' })
      .set(org.viewer)
      .expect(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.text.split('\r\n')[0]).toBe(
      'volunteerId,name,email,shiftsAttended,hours,noShows,lateCancellations',
    );
    expect(csvRows(csv.text).slice(1)).toEqual([
      [ada, 'Ada', 'ada@example.org', '2', '5.5', '1', '0'],
      [bea, 'Bea', 'bea@example.org', '0', '0', '0', '1'],
      [erased, '', '', '1', '1.75', '0', '0'],
    ]);
  });

  it('is empty for an organisation without signups, and another organisation sees none of these', async () => {
    const org = await setupOrg();
    const other = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const shift = await createShift(org.organiser, event.id, on(0));
    await signup(org.id, shift.id, await createVolunteer(org.organiser), 'attended', { hours: 2 });
    expect((await suite.http.get('/v1/reports/hours').set(other.viewer).expect(200)).body).toEqual({
      data: [],
    });
    const empty = await suite.http.get('/v1/reports/hours?format=csv').set(other.viewer).expect(200);
    expect(empty.text).toBe('volunteerId,name,email,shiftsAttended,hours,noShows,lateCancellations\r\n');
  });

  it('refuses a period that ends before it starts, an unknown format, and a volunteer token', async () => {
    const org = await setupOrg();
    const at = on(0).startsAt;
    expectProblem(
      await suite.http.get('/v1/reports/hours').query({ from: at, to: at }).set(org.viewer),
      400,
      'validation-failed',
      'querystring.to',
    );
    expectProblem(
      await suite.http.get('/v1/reports/hours').query({ format: 'xlsx' }).set(org.viewer),
      400,
      'validation-failed',
      'querystring.format',
    );
    expectProblem(
      await suite.http.get('/v1/reports/hours').query({ from: 'yesterday' }).set(org.viewer),
      400,
      'validation-failed',
      'querystring.from',
    );
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    expect((await suite.http.get('/v1/reports/hours').set(volunteer)).status).toBe(403);
    expect((await suite.http.get('/v1/reports/hours')).status).toBe(401);
  });
});

describe("an event's roster", () => {
  it('lists every signup, whatever its status, by shift start then creation, with empty cells for nulls', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    const late = await createShift(org.organiser, event.id, { ...on(1), title: 'Afternoon' });
    const early = await createShift(org.organiser, event.id, on(0)); // no title: an empty cell
    const phoned = await createVolunteer(org.organiser, {
      name: 'Zoë Quinn',
      email: 'zoe@example.org',
      phone: '+49 30 1234567',
    });
    const plain = await createVolunteer(org.organiser, { name: 'Yan', email: 'yan@example.org' });
    const second = await signup(org.id, early.id, plain, 'cancelled', { createdAt: '2027-01-01T10:00:02Z' });
    const first = await signup(org.id, early.id, phoned, 'attended', {
      hours: 2.25,
      createdAt: '2027-01-01T10:00:01Z',
    });
    await suite.database.db.execute(
      sql`update signups set checked_in_at = '2027-03-01T08:58:00Z', checked_out_at = '2027-03-01T11:13:00Z' where id = ${first}`,
    );
    await signup(org.id, late.id, plain, 'waitlisted');
    expect(second).toBeTruthy();

    const roster = await suite.http.get(`/v1/events/${event.id}/roster.csv`).set(org.viewer).expect(200);
    expect(roster.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(roster.headers['content-disposition']).toBe(`attachment; filename="roster-${event.id}.csv"`);
    const [header, ...lines] = csvRows(roster.text);
    expect(header).toEqual([
      'shiftId',
      'shiftTitle',
      'startsAt',
      'endsAt',
      'volunteerId',
      'name',
      'email',
      'phone',
      'status',
      'checkedInAt',
      'checkedOutAt',
      'hours',
    ]);
    expect(lines).toEqual([
      [
        early.id,
        '',
        on(0).startsAt,
        on(0).endsAt,
        phoned,
        'Zoë Quinn',
        'zoe@example.org',
        "'+49 30 1234567", // begins with `+`: prefixed like every formula-like cell (API.md §10)
        'attended',
        '2027-03-01T08:58:00.000Z',
        '2027-03-01T11:13:00.000Z',
        '2.25',
      ],
      [
        early.id,
        '',
        on(0).startsAt,
        on(0).endsAt,
        plain,
        'Yan',
        'yan@example.org',
        '',
        'cancelled',
        '',
        '',
        '',
      ],
      [
        late.id,
        'Afternoon',
        on(1).startsAt,
        on(1).endsAt,
        plain,
        'Yan',
        'yan@example.org',
        '',
        'waitlisted',
        '',
        '',
        '',
      ],
    ]);
  });

  it('is 404 for an unknown event or another organisation’s, and needs a key', async () => {
    const org = await setupOrg();
    const other = await setupOrg();
    const event = await createEvent(org.organiser);
    expectProblem(
      await suite.http.get(`/v1/events/${event.id}/roster.csv`).set(other.viewer),
      404,
      'not-found',
    );
    expectProblem(
      await suite.http.get(`/v1/events/${uuidv7()}/roster.csv`).set(org.viewer),
      404,
      'not-found',
    );
    expectProblem(
      await suite.http.get('/v1/events/not-a-uuid/roster.csv').set(org.viewer),
      400,
      'validation-failed',
    );
    expect((await suite.http.get(`/v1/events/${event.id}/roster.csv`)).status).toBe(401);
  });

  it('neutralises formula-like cells and quotes commas, quotes and line breaks (RFC 4180)', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const shift = await createShift(org.organiser, event.id, {
      ...on(0),
      title: '=HYPERLINK("http://x.example")',
    });
    // Written by SQL: the API trims names, and these are what an import from elsewhere could hold.
    const hostile = [
      { name: '=1+2', phone: '+49 30 7654321' },
      { name: '@SUM(A1)', phone: '-1' },
      { name: 'Doe, "Jo"\nSecond line', phone: null },
      { name: '\tTabbed', phone: null },
    ];
    for (const [index, { name, phone }] of hostile.entries()) {
      const id = await createVolunteer(org.organiser);
      await suite.database.db.execute(
        sql`update volunteers set name = ${name}, phone = ${phone} where id = ${id}`,
      );
      await signup(org.id, shift.id, id, 'confirmed', { createdAt: `2027-01-01T10:00:0${index}Z` });
    }
    const roster = await suite.http.get(`/v1/events/${event.id}/roster.csv`).set(org.viewer).expect(200);
    const lines = csvRows(roster.text).slice(1);
    expect(lines.map((line) => [line[1], line[5], line[7]])).toEqual([
      [`'=HYPERLINK("http://x.example")`, "'=1+2", "'+49 30 7654321"],
      [`'=HYPERLINK("http://x.example")`, "'@SUM(A1)", "'-1"],
      [`'=HYPERLINK("http://x.example")`, 'Doe, "Jo"\nSecond line', ''],
      [`'=HYPERLINK("http://x.example")`, "'\tTabbed", ''],
    ]);
    // Quoted per RFC 4180: the doubled quotes and the line break inside one quoted cell.
    expect(roster.text).toContain('"Doe, ""Jo""\nSecond line"');
    expect(roster.text.split('\r\n')).toHaveLength(hostile.length + 2); // header, rows, final CRLF
  });

  it('streams a roster of 10,000 signups batch by batch, each once and in order', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser, { status: 'published' });
    // 100 shifts of 100 places, one after another, each full (a roster of many shifts, as a large
    // event has).
    const count = 10_000;
    const perShift = 100;
    const created = await suite.http
      .post(`/v1/events/${event.id}/shifts/bulk`)
      .set(org.organiser)
      .send({
        shifts: Array.from({ length: count / perShift }, (_, index) => ({
          ...on(index),
          capacity: perShift,
        })),
      })
      .expect(201);
    const shiftIds = (created.body.data as { id: string }[]).map((shift) => shift.id);
    await suite.database.db.transaction(async (tx) => {
      await tx.execute(sql`
        insert into volunteers (org_id, id, name, email)
        select ${org.id}, gen_random_uuid(), 'Volunteer ' || n, 'v' || n || '@large.example'
        from generate_series(1, ${count}) as n`);
      // Volunteer n on shift (n - 1) / 100, created n microseconds after a fixed instant.
      await tx.execute(sql`
        with numbered as (
          select v.id, substr(split_part(v.email, '@', 1), 2)::int as n
          from volunteers v where v.org_id = ${org.id} and v.email like '%@large.example'
        ), placed as (
          select numbered.*, (${`{${shiftIds.join(',')}}`}::uuid[])[(n - 1) / ${perShift} + 1] as shift_id from numbered
        )
        insert into signups (org_id, id, shift_id, volunteer_id, status, period, created_at)
        select ${org.id}, gen_random_uuid(), p.shift_id, p.id, 'confirmed', sh.period,
          timestamptz '2027-01-01T00:00:00Z' + p.n * interval '1 microsecond'
        from placed p join shifts sh on sh.org_id = ${org.id} and sh.id = p.shift_id`);
    });

    const roster = await suite.http.get(`/v1/events/${event.id}/roster.csv`).set(org.viewer).expect(200);
    expect(roster.headers['content-length']).toBeUndefined(); // sent as it is read, chunked
    const names = csvRows(roster.text)
      .slice(1)
      .map((line) => line[5]);
    // Created one microsecond apart, in volunteer order: a keyset that dropped the microseconds
    // would repeat or skip rows at the batch edges.
    expect(names).toEqual(Array.from({ length: count }, (_, index) => `Volunteer ${index + 1}`));

    // Read lazily: a signup that sorts last, written after the first batch was read, is in it.
    const rows = await rosterOf(
      suite.database.db,
      { kind: 'key', orgId: org.id, keyId: uuidv7(), role: 'viewer' },
      event.id,
    );
    let seen = 0;
    let lastName: string | null = null;
    const laterVolunteer = await createVolunteer(org.organiser, { name: 'Latecomer' });
    for await (const row of rows) {
      seen += 1;
      if (seen === 1) {
        const lastShift = shiftIds.at(-1) as string;
        await signup(org.id, lastShift, laterVolunteer, 'waitlisted', { createdAt: '2030-01-01T00:00:00Z' });
      }
      lastName = row.name;
    }
    expect(rosterBatch).toBeLessThan(count);
    expect(seen).toBe(count + 1);
    expect(lastName).toBe('Latecomer');
  });
});
