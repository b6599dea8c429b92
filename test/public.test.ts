/**
 * Public schedules (API.md §8): what any website reads without a token, how it is cached, and
 * that it never carries anyone's personal data.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { sql } from 'drizzle-orm';
import ICAL from 'ical.js';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { configWith } from '../src/config.ts';
import { createLogger } from '../src/core/logger.ts';
import { queryRows } from '../src/db/client.ts';
import { bearer, createOrg, startTestApp, uniqueSlug } from './support/app.ts';
import { type Auth, expectProblem, fixtures, ids, sleep, useTestApp } from './support/fixtures.ts';
import { killAllServers, type ServerProcess, startServer } from './support/server-process.ts';

const suite = useTestApp({ RATE_LIMIT_PER_MINUTE: 0 });
const { createEvent, createShift, createVolunteer, volunteerToken, createRole, pageThrough } =
  fixtures(suite);

/** `[start, start + hours)` on 2033-06-<day> (UTC), as request fields. */
function at(day: number, startHour: number, hours = 2) {
  const start = Date.UTC(2033, 5, day) + startHour * 3_600_000;
  return {
    startsAt: new Date(start).toISOString(),
    endsAt: new Date(start + hours * 3_600_000).toISOString(),
  };
}

async function publicOrg() {
  const org = await createOrg(suite.http);
  return { id: org.id, slug: org.slug, admin: bearer(org.adminToken) as Auth };
}

async function publishedEvent(auth: Auth, body: Record<string, unknown> = {}) {
  return createEvent(auth, { status: 'published', visibility: 'public', ...body });
}

const publicShiftFields = [
  'available',
  'capacity',
  'confirmedCount',
  'description',
  'endsAt',
  'id',
  'location',
  'role',
  'startsAt',
  'status',
  'title',
  'waitlist',
];

describe('GET /v1/public/{orgSlug}', () => {
  it('is the name, slug and time zone, without a token; an unknown slug is 404', async () => {
    const org = await publicOrg();
    const response = await suite.http.get(`/v1/public/${org.slug}`).expect(200);
    expect(response.body).toEqual({ name: `Org ${org.slug}`, slug: org.slug, timezone: 'Europe/Berlin' });
    expectProblem(await suite.http.get(`/v1/public/${uniqueSlug('nobody')}`), 404, 'not-found');
    expectProblem(await suite.http.get('/v1/public/NOT_A_SLUG'), 400, 'validation-failed');
  });
});

describe('public events', () => {
  it('lists only published public events, by start then id, filtered by from/to and tag, paged', async () => {
    const org = await publicOrg();
    const listed: string[] = [];
    for (const day of [3, 1, 2]) {
      const event = await publishedEvent(org.admin, { title: `Day ${day}`, tags: day === 2 ? ['kids'] : [] });
      await createShift(org.admin, event.id, at(day, 9));
      listed.push(event.id);
    }
    const hidden = [
      await createEvent(org.admin, { visibility: 'public' }),
      await publishedEvent(org.admin, { visibility: 'unlisted' }),
      await publishedEvent(org.admin, { visibility: 'private' }),
    ];
    const cancelled = await publishedEvent(org.admin);
    await suite.http.post(`/v1/events/${cancelled.id}/cancel`).set(org.admin).expect(200);
    for (const event of hidden) await createShift(org.admin, event.id, at(1, 12));

    const response = await suite.http.get(`/v1/public/${org.slug}/events`).expect(200);
    expect(response.body.data.map((event: { title: string }) => event.title)).toEqual([
      'Day 1',
      'Day 2',
      'Day 3',
    ]);
    expect(Object.keys(response.body.data[0]).sort()).toEqual(
      [
        'capacity',
        'confirmedCount',
        'description',
        'endsAt',
        'id',
        'location',
        'shiftCount',
        'startsAt',
        'tags',
        'timezone',
        'title',
      ].sort(),
    );
    const paged = await pageThrough({}, `/v1/public/${org.slug}/events`);
    expect(paged.seen).toEqual(ids(response.body.data));
    expect(paged.pages).toBe(2);
    const tagged = await suite.http.get(`/v1/public/${org.slug}/events`).query({ tag: 'kids' }).expect(200);
    expect(tagged.body.data.map((event: { title: string }) => event.title)).toEqual(['Day 2']);
    const ranged = await suite.http
      .get(`/v1/public/${org.slug}/events`)
      .query({ from: at(2, 10).startsAt, to: at(3, 10).startsAt })
      .expect(200);
    expect(ranged.body.data.map((event: { title: string }) => event.title)).toEqual(['Day 2', 'Day 3']);
  });

  it('reads a public or unlisted event by id; private, draft, cancelled, unknown and other organisations are 404', async () => {
    const org = await publicOrg();
    const other = await publicOrg();
    const unlisted = await publishedEvent(org.admin, { visibility: 'unlisted', title: 'By link' });
    const read = await suite.http.get(`/v1/public/${org.slug}/events/${unlisted.id}`).expect(200);
    expect(read.body).toMatchObject({ id: unlisted.id, title: 'By link' });
    expect(read.body.visibility).toBeUndefined();
    const cancelled = await publishedEvent(org.admin);
    await suite.http.post(`/v1/events/${cancelled.id}/cancel`).set(org.admin).expect(200);
    const refused = [
      (await publishedEvent(org.admin, { visibility: 'private' })).id,
      (await createEvent(org.admin, { visibility: 'public' })).id,
      cancelled.id,
      '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6e',
    ];
    for (const id of refused) {
      expectProblem(await suite.http.get(`/v1/public/${org.slug}/events/${id}`), 404, 'not-found');
      expectProblem(await suite.http.get(`/v1/public/${org.slug}/events/${id}/shifts`), 404, 'not-found');
    }
    expectProblem(await suite.http.get(`/v1/public/${other.slug}/events/${unlisted.id}`), 404, 'not-found');
  });
});

describe('public shifts', () => {
  it('have exactly the public fields, the derived status and the role; available=true and from/to filter', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    const roleId = await createRole(org.admin, false);
    const open = await createShift(org.admin, event.id, { ...at(1, 9), capacity: 1, roleId });
    const later = await createShift(org.admin, event.id, { ...at(2, 9), capacity: 3, title: 'Later' });
    const cancelled = await createShift(org.admin, event.id, { ...at(3, 9), title: 'Off' });
    await suite.http.post(`/v1/shifts/${cancelled.id}/cancel`).set(org.admin).expect(200);
    const volunteer = await createVolunteer(org.admin);
    await suite.http
      .post(`/v1/shifts/${open.id}/signups`)
      .set(org.admin)
      .send({ volunteerId: volunteer })
      .expect(201);

    const response = await suite.http.get(`/v1/public/${org.slug}/events/${event.id}/shifts`).expect(200);
    expect(ids(response.body.data)).toEqual([open.id, later.id, cancelled.id]);
    for (const shift of response.body.data) expect(Object.keys(shift).sort()).toEqual(publicShiftFields);
    const [first, second, third] = response.body.data;
    expect(first).toMatchObject({ status: 'full', available: 0, confirmedCount: 1, role: { id: roleId } });
    expect(typeof first.role.name).toBe('string');
    expect(second).toMatchObject({ status: 'open', available: 3, role: null, title: 'Later' });
    expect(third.status).toBe('cancelled');
    // The organisers' view derives the same status: one rule.
    const organisers = await suite.http.get(`/v1/events/${event.id}/shifts`).set(org.admin).expect(200);
    expect(organisers.body.data.map((shift: { status: string }) => shift.status)).toEqual(
      response.body.data.map((shift: { status: string }) => shift.status),
    );

    const available = await suite.http
      .get(`/v1/public/${org.slug}/events/${event.id}/shifts`)
      .query({ available: 'true' })
      .expect(200);
    expect(ids(available.body.data)).toEqual([later.id]);
    const ranged = await suite.http
      .get(`/v1/public/${org.slug}/events/${event.id}/shifts`)
      .query({ from: at(2, 0).startsAt, to: at(3, 0).startsAt })
      .expect(200);
    expect(ids(ranged.body.data)).toEqual([later.id]);
  });

  it('come in one page of up to 1,000 by default; a larger limit is 400', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    const shifts = Array.from({ length: 260 }, (_, index) => ({
      startsAt: new Date(Date.UTC(2033, 0, 1) + index * 3_600_000).toISOString(),
      endsAt: new Date(Date.UTC(2033, 0, 1) + (index + 1) * 3_600_000).toISOString(),
      capacity: 2,
    }));
    await suite.http.post(`/v1/events/${event.id}/shifts/bulk`).set(org.admin).send({ shifts }).expect(201);
    const response = await suite.http.get(`/v1/public/${org.slug}/events/${event.id}/shifts`).expect(200);
    expect(response.body.data).toHaveLength(260);
    expect(response.body.nextCursor).toBeNull();
    const paged = await pageThrough({}, `/v1/public/${org.slug}/events/${event.id}/shifts`);
    expect(paged.pages).toBe(20); // pageThrough stops at 20 pages of 2: keyset pages go on
    expectProblem(
      await suite.http.get(`/v1/public/${org.slug}/events/${event.id}/shifts`).query({ limit: 1001 }),
      400,
      'validation-failed',
      'querystring.limit',
    );
  });
});

describe('HTTP caching of public answers', () => {
  it('ETag and Cache-Control; If-None-Match (one tag, a list, weak, *) is 304 with both headers again', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    await createShift(org.admin, event.id, at(1, 9));
    const path = `/v1/public/${org.slug}/events/${event.id}/shifts`;
    const first = await suite.http.get(path).expect(200);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers['cache-control']).toBe('public, max-age=30');
    for (const header of [etag, `"other", ${etag}`, `W/${etag}`, '*']) {
      const revalidated = await suite.http.get(path).set('if-none-match', header).expect(304);
      expect(revalidated.headers.etag).toBe(etag);
      expect(revalidated.headers['cache-control']).toBe('public, max-age=30');
      expect(revalidated.text).toBe('');
    }
    await suite.http.get(path).set('if-none-match', '"other"').expect(200);
  });

  it('the ETag comes from the data: the same while nothing changes, new after a write', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    const shift = await createShift(org.admin, event.id, at(1, 9));
    const paths = [
      `/v1/public/${org.slug}/events/${event.id}/shifts`,
      `/v1/public/${org.slug}/events/${event.id}`,
      `/v1/public/${org.slug}/events`,
    ];
    const before = await Promise.all(paths.map(async (path) => (await suite.http.get(path)).headers.etag));
    await sleep(700); // past the process's freshness: computed again, from unchanged data
    const again = await Promise.all(paths.map(async (path) => (await suite.http.get(path)).headers.etag));
    expect(again).toEqual(before);
    const volunteer = await createVolunteer(org.admin);
    await suite.http
      .post(`/v1/shifts/${shift.id}/signups`)
      .set(org.admin)
      .send({ volunteerId: volunteer })
      .expect(201);
    const after = await Promise.all(paths.map(async (path) => (await suite.http.get(path)).headers.etag));
    for (const [index, etag] of after.entries()) expect(etag).not.toBe(before[index]);
    const shifts = await suite.http
      .get(paths[0] as string)
      .set('if-none-match', before[0] as string)
      .expect(200);
    expect(shifts.body.data[0].confirmedCount).toBe(1);
  });

  it('the ETag changes when a signup window opens with the clock, without any write', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    const opensAt = new Date(Date.now() + 2_000);
    await createShift(org.admin, event.id, { ...at(1, 9), signupOpensAt: opensAt.toISOString() });
    const path = `/v1/public/${org.slug}/events/${event.id}/shifts`;
    const closed = await suite.http.get(path).expect(200);
    expect(closed.body.data[0].status).toBe('closed');
    await sleep(opensAt.getTime() - Date.now() + 700);
    const open = await suite.http
      .get(path)
      .set('if-none-match', closed.headers.etag as string)
      .expect(200);
    expect(open.body.data[0].status).toBe('open');
    expect(open.headers.etag).not.toBe(closed.headers.etag);
  });

  it('CORS: any origin without credentials, the exposed headers, preflights cached for 2 h', async () => {
    const org = await publicOrg();
    const response = await suite.http
      .get(`/v1/public/${org.slug}`)
      .set('origin', 'https://partner.example')
      .expect(200);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
    expect(response.headers['access-control-expose-headers']).toContain('ETag');
    const preflight = await suite.http
      .options(`/v1/public/${org.slug}/events`)
      .set('origin', 'https://partner.example')
      .set('access-control-request-method', 'GET')
      .set('access-control-request-headers', 'if-none-match');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    expect(preflight.headers['access-control-max-age']).toBe('7200');
  });
});

describe('answers sent from the process cache', () => {
  it('carry every header of a computed answer, count against the rate limit, and are logged', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    await createShift(org.admin, event.id, at(1, 9));
    const records: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) records.push(JSON.parse(line));
        callback();
      },
    });
    // Its own app: a rate limit of 6 a minute for this test's address, and an access log.
    const limited = await startTestApp(
      suite.database,
      { RATE_LIMIT_PER_MINUTE: 6 },
      { logger: createLogger(configWith({ LOG_LEVEL: 'info' }), sink) },
    );
    try {
      const path = `/v1/public/${org.slug}/events/${event.id}/shifts`;
      const origin = { origin: 'https://partner.example' };
      // The first read computes the answer; the next ones, well within its freshness, are sent
      // from the cache by the route's last onRequest hook (routes.ts), before validation and
      // handler: they must look the same, count the same, and be logged the same.
      const computed = await limited.http.get(path).set(origin).expect(200);
      const etag = computed.headers.etag as string;
      const ready = await limited.http.get(path).set(origin).expect(200);
      const revalidated = await limited.http.get(path).set(origin).set('if-none-match', etag).expect(304);
      expect(ready.text).toBe(computed.text);
      const perResponse = ['date', 'x-request-id', 'ratelimit-remaining', 'ratelimit-reset'];
      const fixed = (headers: Record<string, string>, without: string[] = []) =>
        Object.fromEntries(
          Object.entries(headers).filter(([name]) => ![...perResponse, ...without].includes(name)),
        );
      expect(fixed(ready.headers)).toEqual(fixed(computed.headers));
      // A 304 refreshes the stored answer, which keeps the headers the 304 leaves out: it carries
      // its validators, caching, CORS, rate-limit and connection fields, with the computed
      // answer's values, and neither the body's fields nor the security headers (app.ts).
      const revalidatedFixed = fixed(revalidated.headers);
      expect(Object.keys(revalidatedFixed).sort()).toEqual([
        'access-control-allow-origin',
        'access-control-expose-headers',
        'cache-control',
        'connection',
        'etag',
        'ratelimit-limit',
      ]);
      for (const [name, value] of Object.entries(revalidatedFixed))
        expect(computed.headers[name]).toBe(value);
      expect(computed.headers['x-content-type-options']).toBe('nosniff');
      expect(ready.headers['x-content-type-options']).toBe('nosniff');
      for (const response of [computed, ready, revalidated]) {
        expect(response.headers['access-control-allow-origin']).toBe('*');
        expect(response.headers['access-control-expose-headers']).toContain('ETag');
        expect(response.headers['cache-control']).toBe('public, max-age=30');
        expect(response.headers.etag).toBe(etag);
        expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
        expect(response.headers['ratelimit-limit']).toBe('6');
      }
      expect(
        [computed, ready, revalidated].map((response) => response.headers['ratelimit-remaining']),
      ).toEqual(['5', '4', '3']);
      for (let i = 0; i < 3; i++) await limited.http.get(path).set('if-none-match', etag).expect(304);
      expectProblem(await limited.http.get(path).set('if-none-match', etag), 429, 'rate-limited');
      const completed = records.filter(
        (record) =>
          record.msg === 'request completed' && record.requestId === revalidated.headers['x-request-id'],
      );
      expect(completed).toHaveLength(1);
      expect(completed[0]?.res).toMatchObject({ statusCode: 304 });
    } finally {
      await limited.close();
    }
  });
});

describe('no personal data in public answers', () => {
  it('walks every public route and finds no volunteer name, email or phone; the roster has them all', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin, { visibility: 'unlisted' });
    const listed = await publishedEvent(org.admin);
    const roleId = await createRole(org.admin, false);
    const secrets: string[] = [];
    const shiftIds: string[] = [];
    for (const [index, target] of [event, listed, event].entries()) {
      const shift = await createShift(org.admin, target.id, { ...at(index + 1, 9), capacity: 1, roleId });
      shiftIds.push(shift.id);
      for (const person of [0, 1]) {
        const marker = `Zq${index}${person}${uniqueSlug('x').replaceAll('-', '')}`;
        const volunteerId = await createVolunteer(org.admin, {
          name: `${marker} Name`,
          email: `${marker.toLowerCase()}@private.example`,
          phone: `+49 30 ${100000 + index * 10 + person}${index}${person}`,
        });
        secrets.push(`${marker} Name`, `${marker.toLowerCase()}@private.example`);
        secrets.push(`+49 30 ${100000 + index * 10 + person}${index}${person}`);
        const token = await volunteerToken(org.admin, volunteerId);
        await suite.http.post(`/v1/shifts/${shift.id}/signups`).set(token).send({}).expect(201);
      }
    }
    const routes = [
      `/v1/public/${org.slug}`,
      `/v1/public/${org.slug}/events`,
      `/v1/public/${org.slug}/events/${event.id}`,
      `/v1/public/${org.slug}/events/${event.id}/shifts`,
      `/v1/public/${org.slug}/events/${listed.id}`,
      `/v1/public/${org.slug}/events/${listed.id}/shifts`,
      `/v1/public/${org.slug}/calendar.ics`,
      `/v1/public/${org.slug}/events/${event.id}/calendar.ics`,
      `/v1/public/${org.slug}/events/${listed.id}/calendar.ics`,
    ];
    for (const route of routes) {
      const response = await suite.http.get(route).expect(200);
      for (const secret of secrets) expect(response.text, `${route} shows ${secret}`).not.toContain(secret);
    }
    // The positive control: the same people are in the organisers' rosters, so the search above can find them.
    let roster = '';
    for (const shiftId of shiftIds) {
      roster += (await suite.http.get(`/v1/shifts/${shiftId}/signups`).set(org.admin).expect(200)).text;
    }
    for (const secret of secrets) expect(roster).toContain(secret);
  });
});

describe('several API processes', () => {
  let other: ServerProcess | undefined;
  afterAll(async () => {
    await other?.stop();
    killAllServers();
  });

  it('a change made through one process shows in the public answers of another within 1 s', async () => {
    const url = suite.url;
    if (!url) throw new Error('the suite runs on PostgreSQL');
    const server = await startServer({ DATABASE_URL: url, RATE_LIMIT_PER_MINUTE: '0' });
    other = server;
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    const shift = await createShift(org.admin, event.id, { ...at(1, 9), capacity: 4 });
    const path = `/v1/public/${org.slug}/events/${event.id}/shifts`;
    const seenThere = async () =>
      (await request(server.url).get(path).expect(200)).body.data[0].confirmedCount;
    expect(await seenThere()).toBe(0); // cached there now
    const volunteer = await createVolunteer(org.admin);
    await suite.http
      .post(`/v1/shifts/${shift.id}/signups`)
      .set(org.admin)
      .send({ volunteerId: volunteer })
      .expect(201);
    const written = Date.now();
    let count = await seenThere();
    while (count !== 1 && Date.now() - written < 3_000) {
      await sleep(50);
      count = await seenThere();
    }
    expect(count).toBe(1);
    expect(Date.now() - written).toBeLessThan(1_000);
  });
});

/** A feed parsed with ical.js, its times resolved only through the VTIMEZONEs the feed itself carries. */
function parseFeed(text: string) {
  const calendar = new ICAL.Component(ICAL.parse(text));
  ICAL.TimezoneService.reset();
  const zones = calendar
    .getAllSubcomponents('vtimezone')
    .map((zone) => String(zone.getFirstPropertyValue('tzid')));
  for (const zone of calendar.getAllSubcomponents('vtimezone')) ICAL.TimezoneService.register(zone);
  const events = calendar.getAllSubcomponents('vevent').map((vevent) => {
    const start = vevent.getFirstProperty('dtstart');
    const end = vevent.getFirstProperty('dtend');
    return {
      uid: String(vevent.getFirstPropertyValue('uid')),
      sequence: Number(vevent.getFirstPropertyValue('sequence') ?? 0),
      summary: String(vevent.getFirstPropertyValue('summary')),
      tzids: [start?.getParameter('tzid'), end?.getParameter('tzid')],
      start: (vevent.getFirstPropertyValue('dtstart') as ICAL.Time).toJSDate().toISOString(),
      end: (vevent.getFirstPropertyValue('dtend') as ICAL.Time).toJSDate().toISOString(),
      alarms: vevent
        .getAllSubcomponents('valarm')
        .map((alarm) => String(alarm.getFirstPropertyValue('trigger'))),
    };
  });
  return {
    method: calendar.getFirstPropertyValue('method'),
    name: calendar.getFirstPropertyValue('x-wr-calname'),
    refresh: calendar.getFirstPropertyValue('refresh-interval'),
    ttl: calendar.getFirstPropertyValue('x-published-ttl'),
    zones,
    events,
  };
}

/** Shifts across the spring and autumn DST changes of Europe/Berlin and America/New_York (2033). */
const acrossDst = {
  'Europe/Berlin': [
    { startsAt: '2033-03-27T00:30:00.000Z', endsAt: '2033-03-27T02:30:00.000Z' },
    { startsAt: '2033-10-30T00:30:00.000Z', endsAt: '2033-10-30T02:30:00.000Z' },
  ],
  'America/New_York': [
    { startsAt: '2033-03-13T06:30:00.000Z', endsAt: '2033-03-13T07:30:00.000Z' },
    { startsAt: '2033-11-06T05:30:00.000Z', endsAt: '2033-11-06T07:30:00.000Z' },
  ],
};

describe('calendar feeds', () => {
  it("the organisation's and an event's feeds: their shifts at the right instants across DST, each TZID with its VTIMEZONE", async () => {
    const org = await publicOrg();
    const created: { id: string; startsAt: string; endsAt: string; eventId: string }[] = [];
    const eventIds: string[] = [];
    for (const [timezone, times] of Object.entries(acrossDst)) {
      const event = await publishedEvent(org.admin, { timezone, title: `In ${timezone}` });
      eventIds.push(event.id);
      for (const time of times) {
        const shift = await createShift(org.admin, event.id, { ...time, title: `Shift ${time.startsAt}` });
        created.push({ id: shift.id, ...time, eventId: event.id });
      }
    }
    const hidden = await publishedEvent(org.admin, { visibility: 'private' });
    const hiddenShift = await createShift(org.admin, hidden.id, at(1, 9));

    const feed = await suite.http.get(`/v1/public/${org.slug}/calendar.ics`).expect(200);
    expect(feed.headers['content-type']).toBe('text/calendar; charset=utf-8');
    expect(feed.headers['cache-control']).toBe('public, max-age=30');
    const parsed = parseFeed(feed.text);
    expect(parsed.method).toBe('PUBLISH');
    expect(parsed.name).toBe(`Org ${org.slug}`);
    expect(String(parsed.refresh)).toBe('PT1H');
    expect(String(parsed.ttl)).toBe('PT1H');
    expect(parsed.zones.sort()).toEqual(['America/New_York', 'Europe/Berlin']);
    expect(parsed.events.map((event) => event.uid).sort()).toEqual(
      created.map((shift) => `shift-${shift.id}@together`).sort(),
    );
    expect(feed.text).not.toContain(hiddenShift.id);
    for (const shift of created) {
      const event = parsed.events.find((candidate) => candidate.uid === `shift-${shift.id}@together`);
      expect(event, shift.id).toMatchObject({
        start: shift.startsAt,
        end: shift.endsAt,
        summary: `Shift ${shift.startsAt}`,
      });
      for (const tzid of event?.tzids.filter(Boolean) ?? []) expect(parsed.zones).toContain(tzid);
    }
    // The same bytes and UIDs in a second fetch; 304 on revalidation.
    const again = await suite.http.get(`/v1/public/${org.slug}/calendar.ics`).expect(200);
    expect(again.text).toBe(feed.text);
    await suite.http
      .get(`/v1/public/${org.slug}/calendar.ics`)
      .set('if-none-match', feed.headers.etag as string)
      .expect(304);

    const eventFeed = await suite.http
      .get(`/v1/public/${org.slug}/events/${eventIds[0]}/calendar.ics`)
      .expect(200);
    const eventParsed = parseFeed(eventFeed.text);
    expect(eventParsed.name).toBe('In Europe/Berlin');
    expect(eventParsed.zones).toEqual(['Europe/Berlin']);
    expect(eventParsed.events.map((event) => event.start).sort()).toEqual(
      acrossDst['Europe/Berlin'].map((time) => time.startsAt),
    );
    expectProblem(
      await suite.http.get(`/v1/public/${org.slug}/events/${hidden.id}/calendar.ics`),
      404,
      'not-found',
    );
  });

  it('UIDs stay across an update, SEQUENCE grows when the times change, a cancelled shift leaves every feed', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin, { timezone: 'Europe/Berlin' });
    const shift = await createShift(org.admin, event.id, at(1, 9));
    const other = await createShift(org.admin, event.id, at(2, 9));
    const feeds = [
      `/v1/public/${org.slug}/calendar.ics`,
      `/v1/public/${org.slug}/events/${event.id}/calendar.ics`,
    ];
    const read = async (path: string) => parseFeed((await suite.http.get(path).expect(200)).text);
    const uid = `shift-${shift.id}@together`;
    const sequenceIn = async (path: string) =>
      (await read(path)).events.find((item) => item.uid === uid)?.sequence;
    for (const path of feeds) expect(await sequenceIn(path)).toBe(0);

    const update = async (body: Record<string, unknown>) => {
      const current = await suite.http.get(`/v1/shifts/${shift.id}`).set(org.admin).expect(200);
      await suite.http
        .patch(`/v1/shifts/${shift.id}`)
        .set(org.admin)
        .set('if-match', current.headers.etag as string)
        .send(body)
        .expect(200);
    };
    await update({ title: 'Renamed' });
    for (const path of feeds) {
      const parsed = await read(path);
      expect(parsed.events.find((item) => item.uid === uid)).toMatchObject({
        sequence: 0,
        summary: 'Renamed',
      });
    }
    await update(at(1, 10));
    for (const path of feeds) {
      const moved = (await read(path)).events.find((item) => item.uid === uid);
      expect(moved).toMatchObject({ sequence: 1, start: at(1, 10).startsAt });
    }
    await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.admin).expect(200);
    for (const path of feeds) {
      const uids = (await read(path)).events.map((item) => item.uid);
      expect(uids).toEqual([`shift-${other.id}@together`]);
    }
  });
});

describe('calendar feed window', () => {
  it('a feed holds the shifts from 30 days ago on, not older ones', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin);
    const day = 24 * 3_600_000;
    const daysAgo = (days: number) => ({
      startsAt: new Date(Date.now() - days * day).toISOString(),
      endsAt: new Date(Date.now() - days * day + 3_600_000).toISOString(),
    });
    const old = await createShift(org.admin, event.id, daysAgo(40));
    const recent = await createShift(org.admin, event.id, daysAgo(10));
    const feed = await suite.http.get(`/v1/public/${org.slug}/events/${event.id}/calendar.ics`).expect(200);
    const uids = parseFeed(feed.text).events.map((item) => item.uid);
    expect(uids).toEqual([`shift-${recent.id}@together`]);
    expect(feed.text).not.toContain(old.id);
  });
});

describe("the volunteer's calendar feed", () => {
  it('GET /v1/me carries its URL; the feed holds their confirmed shifts with a reminder; only a hash is stored', async () => {
    const org = await publicOrg();
    const event = await publishedEvent(org.admin, { timezone: 'Europe/Berlin', visibility: 'private' });
    const volunteerId = await createVolunteer(org.admin);
    const someoneElse = await createVolunteer(org.admin);
    const token = await volunteerToken(org.admin, volunteerId);
    const mine = await createShift(org.admin, event.id, { ...at(1, 9), title: 'Mine' });
    const full = await createShift(org.admin, event.id, { ...at(2, 9), capacity: 1, title: 'Waitlisted' });
    const dropped = await createShift(org.admin, event.id, { ...at(3, 9), title: 'Dropped' });
    const theirs = await createShift(org.admin, event.id, { ...at(4, 9), title: 'Theirs' });
    const claim = (shiftId: string, volunteer: string) =>
      suite.http
        .post(`/v1/shifts/${shiftId}/signups`)
        .set(org.admin)
        .send({ volunteerId: volunteer })
        .expect(201);
    await claim(mine.id, volunteerId);
    await claim(full.id, someoneElse);
    await claim(full.id, volunteerId); // waitlisted
    const cancelled = await claim(dropped.id, volunteerId);
    await suite.http.post(`/v1/signups/${cancelled.body.id}/cancel`).set(org.admin).expect(200);
    await claim(theirs.id, someoneElse);

    const me = await suite.http.get('/v1/me').set(token).expect(200);
    const calendarUrl = me.body.calendarUrl as string;
    expect(calendarUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/calendar\/[A-Za-z0-9_-]{43}\.ics$/);
    expect((await suite.http.get('/v1/me').set(token).expect(200)).body.calendarUrl).toBe(calendarUrl);
    const path = new URL(calendarUrl).pathname;
    const feed = await suite.http.get(path).expect(200);
    expect(feed.headers['content-type']).toBe('text/calendar; charset=utf-8');
    expect(feed.headers['cache-control']).toBe('private, max-age=30');
    const parsed = parseFeed(feed.text);
    expect(parsed.events.map((item) => item.summary)).toEqual(['Mine']);
    expect(parsed.events[0]).toMatchObject({ uid: `shift-${mine.id}@together`, start: at(1, 9).startsAt });
    expect(parsed.events[0]?.alarms).toEqual(['-P1D']);
    await suite.http
      .get(path)
      .set('if-none-match', feed.headers.etag as string)
      .expect(304);

    const secret = path.slice('/v1/calendar/'.length, -'.ics'.length);
    const [row] = await rowsOf(volunteerId);
    expect(row?.calendar_token_hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(secret);
  });

  it('POST /v1/me/calendar-token replaces the URL: the old one is 404 at once, as is an erased volunteer’s', async () => {
    const org = await publicOrg();
    const volunteerId = await createVolunteer(org.admin);
    const token = await volunteerToken(org.admin, volunteerId);
    const before = (await suite.http.get('/v1/me').set(token).expect(200)).body.calendarUrl as string;
    await suite.http.get(new URL(before).pathname).expect(200);
    const rotated = await suite.http.post('/v1/me/calendar-token').set(token).expect(201);
    const after = rotated.body.calendarUrl as string;
    expect(after).not.toBe(before);
    expect(rotated.headers.location).toBe(new URL(after).pathname);
    expectProblem(await suite.http.get(new URL(before).pathname), 404, 'not-found');
    await suite.http.get(new URL(after).pathname).expect(200);
    expect((await suite.http.get('/v1/me').set(token).expect(200)).body.calendarUrl).toBe(after);
    expectProblem(await suite.http.get('/v1/calendar/not-a-token.ics'), 404, 'not-found');
    await suite.http.delete(`/v1/volunteers/${volunteerId}`).set(org.admin).expect(204);
    expectProblem(await suite.http.get(new URL(after).pathname), 404, 'not-found');
  });
});

async function rowsOf(volunteerId: string) {
  return queryRows<Record<string, unknown>>(
    suite.database.db,
    sql`select * from volunteers where id = ${volunteerId}`,
  );
}

describe('GET /embed.js', () => {
  it('is one script under 12 KB gzipped, cached a day with an ETag, for any origin, with no eval, storage, cookie or inline style', async () => {
    const response = await suite.http.get('/embed.js').set('origin', 'https://partner.example').expect(200);
    expect(response.headers['content-type']).toBe('application/javascript; charset=utf-8');
    expect(response.headers['cache-control']).toBe('public, max-age=86400');
    expect(response.headers['access-control-allow-origin']).toBe('*');
    const source = response.text;
    expect(gzipSync(source).length).toBeLessThan(12 * 1024);
    for (const forbidden of [
      /\beval\s*\(/,
      /new\s+Function\b/,
      /document\.cookie/,
      /localStorage|sessionStorage|indexedDB/,
      /\.style\b/,
      /createElement\(\s*['"]style['"]/,
      /innerHTML|outerHTML|insertAdjacentHTML/,
      /setAttribute\(\s*['"]style['"]/,
    ]) {
      expect(source, String(forbidden)).not.toMatch(forbidden);
    }
    expect(source).toContain('adoptedStyleSheets');
    await suite.http
      .get('/embed.js')
      .set('if-none-match', response.headers.etag as string)
      .expect(304);
  });
});
