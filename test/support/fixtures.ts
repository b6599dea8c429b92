/**
 * What the HTTP suites share: one database and one app per test file, and the requests that set up
 * an organisation with its events, shifts, volunteers and roles. A suite keeps only what it tests.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { Response } from 'supertest';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Config } from '../../src/config.ts';
import { type Database, queryRows } from '../../src/db/client.ts';
import {
  bearer,
  createKey,
  createOrg,
  createTestDatabase,
  type StartOptions,
  startTestApp,
  type TestApp,
  type TestDatabase,
  uniqueSlug,
} from './app.ts';

/** A test file's database and app; read them inside tests, once `beforeAll` has run. */
export interface Suite {
  readonly database: Database;
  /** The database's connection string, on PostgreSQL. */
  readonly url: string | undefined;
  readonly http: TestApp['http'];
  /** Where the app listens, `http://127.0.0.1:<port>`. */
  readonly baseUrl: string;
}

/** Creates the file's database and starts the app before its tests; closes both after them. */
export function useTestApp(overrides: Partial<Config> = {}, options: StartOptions = {}): Suite {
  let testDb: TestDatabase | undefined;
  let app: TestApp | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    app = await startTestApp(testDb.database, overrides, options);
  });
  afterAll(async () => {
    await app?.close();
    await testDb?.drop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the suite has not started: use it inside a test or hook');
    return value;
  };
  return {
    get database() {
      return started(testDb).database;
    },
    get url() {
      return started(testDb).url;
    },
    get http() {
      return started(app).http;
    },
    get baseUrl() {
      return started(app).baseUrl;
    },
  };
}

export type Auth = Record<string, string>;

/** An organisation with a bearer header for each role. */
export interface Org {
  id: string;
  admin: Auth;
  organiser: Auth;
  viewer: Auth;
}

export interface EventBody {
  id: string;
  title: string;
  status: string;
  startsAt: string | null;
  endsAt: string | null;
  shiftCount: number;
  capacity: number;
  confirmedCount: number;
  updatedAt: string;
  [key: string]: unknown;
}

export interface Eligibility {
  canClaim: boolean;
  reason: string | null;
  signupId: string | null;
  signupStatus: string | null;
}

export interface ShiftBody {
  id: string;
  eventId: string;
  roleId: string | null;
  startsAt: string;
  endsAt: string;
  capacity: number;
  confirmedCount: number;
  waitlistCount: number;
  available: number;
  waitlist: boolean;
  signupOpensAt: string | null;
  signupClosesAt: string;
  status: string;
  updatedAt: string;
  eligibility?: Eligibility;
  [key: string]: unknown;
}

export type SignupStatus = 'confirmed' | 'waitlisted' | 'cancelled' | 'attended' | 'no_show';

/**
 * One statement that writes a signup directly (the database counts it on its shift, migration
 * 0016): for tests that need state the API would not make. `period` defaults to the shift's; give
 * it to test the database's own checks of it.
 */
export function signupInsert(row: {
  orgId: string;
  id?: string;
  shiftId: string;
  volunteerId: string;
  status: SignupStatus;
  period?: string;
  hours?: number | null;
  createdAt?: string;
}): SQL {
  const { orgId, shiftId, status } = row;
  return sql`
    insert into signups (org_id, id, shift_id, volunteer_id, status, period, hours, created_at, cancelled_at)
    values (${orgId}, ${row.id ?? uuidv7()}, ${shiftId}, ${row.volunteerId}, ${status}::signup_status,
      coalesce(${row.period ?? null}::tstzrange, (select period from shifts where org_id = ${orgId} and id = ${shiftId})),
      ${row.hours ?? null}, coalesce(${row.createdAt ?? null}::timestamptz, now()),
      case when ${status} = 'cancelled' then now() end)`;
}

export const ids = (list: { id: string }[]) => list.map((item) => item.id);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The database's clock, which stamps `updatedAt`: comparing with Node's would mix two clocks.
 * Truncated to the millisecond, as the API's timestamps are.
 */
export async function databaseNow(database: Database): Promise<string> {
  const [row] = await queryRows<{ now: string }>(database.db, sql`select clock_timestamp()::text as now`);
  return new Date((row as { now: string }).now).toISOString();
}

/** A problem+json answer with this status and code (and, given a path, an error at that path). */
export function expectProblem(response: Response, status: number, code: string, path?: string) {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
  expect(response.body.code).toBe(code);
  expect(response.body.type).toBe(`/problems/${code}`);
  if (path) expect(response.body.errors.map((error: { path: string }) => error.path)).toContain(path);
}

/** The set-up requests and database reads of a suite, bound to it. */
export function fixtures(suite: Suite) {
  async function setupOrg(): Promise<Org> {
    const org = await createOrg(suite.http);
    const organiser = await createKey(suite.http, org.adminToken, 'organiser');
    const viewer = await createKey(suite.http, org.adminToken, 'viewer');
    return {
      id: org.id,
      admin: bearer(org.adminToken),
      organiser: bearer(organiser.token),
      viewer: bearer(viewer.token),
    };
  }

  async function createEvent(auth: Auth, body: Record<string, unknown> = {}): Promise<EventBody> {
    const response = await suite.http
      .post('/v1/events')
      .set(auth)
      .send({ title: 'Food sort', ...body });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body as EventBody;
  }

  async function createShift(auth: Auth, eventId: string, body: Record<string, unknown>): Promise<ShiftBody> {
    const response = await suite.http
      .post(`/v1/events/${eventId}/shifts`)
      .set(auth)
      .send({ capacity: 5, ...body });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body as ShiftBody;
  }

  async function createVolunteer(auth: Auth, extra: Record<string, unknown> = {}): Promise<string> {
    const response = await suite.http
      .post('/v1/volunteers')
      .set(auth)
      .send({ name: 'Vol', email: `${uniqueSlug('v')}@example.org`, ...extra });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.id as string;
  }

  async function volunteerToken(auth: Auth, volunteerId: string): Promise<Auth> {
    const response = await suite.http.post(`/v1/volunteers/${volunteerId}/tokens`).set(auth).expect(201);
    return bearer(response.body.token as string);
  }

  async function createRole(auth: Auth, restricted: boolean): Promise<string> {
    const response = await suite.http
      .post('/v1/roles')
      .set(auth)
      .send({ name: uniqueSlug('role'), restricted })
      .expect(201);
    return response.body.id as string;
  }

  function rows<T>(query: SQL) {
    return queryRows<T>(suite.database.db, query);
  }

  /**
   * A signup written directly, with the shift's counters following it: for state the claim endpoint
   * would refuse to make (a past signup, an exact creation time) or for suites about other domains.
   */
  async function insertSignup(
    orgId: string,
    shiftId: string,
    volunteerId: string,
    status: SignupStatus = 'confirmed',
    createdAt?: string,
  ): Promise<string> {
    const id = uuidv7();
    await suite.database.db.execute(signupInsert({ orgId, id, shiftId, volunteerId, status, createdAt }));
    return id;
  }

  /** Every page of a list at limit=2: each page at most 2, the ids in order of the pages. */
  async function pageThrough(auth: Auth, path: string, query: Record<string, string | number> = {}) {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response: Response = await suite.http
        .get(path)
        .query({ ...query, limit: 2, ...(cursor ? { cursor } : {}) })
        .set(auth);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      expect(response.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...ids(response.body.data));
      cursor = response.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 20);
    return { seen, pages };
  }

  /**
   * Changes through the API that write each of API.md §10's ten event types at least once: an
   * event published, a shift created and updated, a claim by `first` (shift.filled too), a
   * waitlisted claim promoted by the first's cancellation, then the shift and the event cancelled.
   */
  async function writeEveryEventType(org: Org, first: Record<string, unknown> = {}): Promise<void> {
    const inDays = (days: number, hours = 0) =>
      new Date(Date.now() + (days * 24 + hours) * 3_600_000).toISOString();
    const event = await createEvent(org.organiser); // a draft
    await suite.http
      .patch(`/v1/events/${event.id}`)
      .set(org.organiser)
      .send({ status: 'published' })
      .expect(200);
    const shift = await createShift(org.organiser, event.id, {
      startsAt: inDays(7),
      endsAt: inDays(7, 3),
      capacity: 1,
    });
    await suite.http
      .patch(`/v1/shifts/${shift.id}`)
      .set(org.organiser)
      .send({ title: 'Sorting' })
      .expect(200);
    const claimer = await volunteerToken(org.organiser, await createVolunteer(org.organiser, first));
    const waiting = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    const claimed = await suite.http.post(`/v1/shifts/${shift.id}/signups`).set(claimer).send({}).expect(201);
    await suite.http.post(`/v1/shifts/${shift.id}/signups`).set(waiting).send({}).expect(201); // waitlisted
    await suite.http.post(`/v1/signups/${claimed.body.id}/cancel`).set(claimer).send({}).expect(200); // promotes
    await suite.http.post(`/v1/shifts/${shift.id}/cancel`).set(org.organiser).send({}).expect(200);
    await suite.http.post(`/v1/events/${event.id}/cancel`).set(org.organiser).send({}).expect(200);
  }

  return {
    writeEveryEventType,
    setupOrg,
    createEvent,
    createShift,
    createVolunteer,
    volunteerToken,
    createRole,
    rows,
    insertSignup,
    pageThrough,
  };
}
