/**
 * The document tells the truth: every operation it lists is sent once, successfully, and the
 * status and the protocol headers (ETag, Location, X-Request-Id, RateLimit-*) it got are the ones
 * documented for that status. A new operation fails this test until a request for it is added.
 */
import { sql } from 'drizzle-orm';
import type { Response } from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { bearer, uniqueSlug } from './support/app.ts';
import { fixtures, useTestApp } from './support/fixtures.ts';

// Rate limiting on (with room), so that its headers are sent and can be compared.
const suite = useTestApp({ RATE_LIMIT_PER_MINUTE: 100_000 });
const { createEvent, createShift, createVolunteer, createRole, volunteerToken } = fixtures(suite);

const HOUR = 3_600_000;
const at = (inHours: number, hours = 2) => ({
  startsAt: new Date(Date.now() + inHours * HOUR).toISOString(),
  endsAt: new Date(Date.now() + (inHours + hours) * HOUR).toISOString(),
});

interface Operation {
  method: string;
  path: string;
  operationId: string;
  responses: Record<string, { headers?: Record<string, unknown> }>;
}

interface Call {
  path: string;
  auth?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The protocol headers this test compares with the document. */
const compared = [
  'etag',
  'cache-control',
  'location',
  'x-request-id',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
];

let operations: Operation[] = [];
let calls: Record<string, () => Promise<Call>> = {};

beforeAll(async () => {
  const document = (await suite.http.get('/openapi.json').expect(200)).body as {
    paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>;
  };
  operations = Object.entries(document.paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod).map(([method, operation]) => ({ ...operation, method, path })),
  );

  // The world the requests act on, made through the API.
  const slug = uniqueSlug();
  const created = await suite.http
    .post('/v1/organizations')
    .send({ name: 'Conformance', slug, timezone: 'Europe/Berlin', contactEmail: `${slug}@example.org` })
    .expect(201);
  const admin = bearer(created.body.apiKey.token);
  const org = { admin, organiser: admin };
  const spareKey = (await suite.http.post('/v1/api-keys').set(admin).send({ name: 'spare', role: 'viewer' }))
    .body;
  const role = await createRole(admin, true);
  const spareRole = await createRole(admin, false);
  const volunteerId = await createVolunteer(admin);
  const erasable = await createVolunteer(admin);
  const volunteer = await volunteerToken(admin, volunteerId);
  const event = await createEvent(admin, { status: 'published' });
  const spareEvent = await createEvent(admin);
  const cancellableEvent = await createEvent(admin, { status: 'published' });
  const shift = await createShift(admin, event.id, { ...at(1), capacity: 5 });
  const spareShift = await createShift(admin, event.id, { ...at(30), capacity: 5 });
  const cancellableShift = await createShift(admin, event.id, { ...at(60), capacity: 5 });
  const claimable = await createShift(admin, event.id, { ...at(90), capacity: 5 });
  const signup = (
    await suite.http.post(`/v1/shifts/${shift.id}/signups`).set(admin).send({ volunteerId }).expect(201)
  ).body;
  const other = await createVolunteer(admin);
  const cancellable = (
    await suite.http
      .post(`/v1/shifts/${spareShift.id}/signups`)
      .set(admin)
      .send({ volunteerId: other })
      .expect(201)
  ).body;
  const hook = (events: string[]) =>
    suite.http
      .post('/v1/webhooks')
      .set(admin)
      .send({ url: 'https://93.184.216.34/hook', events })
      .expect(201);
  const subscribed = (await hook(['shift.created'])).body;
  const deletable = (await hook(['shift.updated'])).body;
  const password = 'a long enough password';
  const email = `${uniqueSlug('self')}@example.org`;

  calls = {
    getLiveness: async () => ({ path: '/health/live' }),
    getReadiness: async () => ({ path: '/health/ready' }),
    createOrganization: async () => {
      const another = uniqueSlug();
      return {
        path: '/v1/organizations',
        body: { name: 'Another', slug: another, timezone: 'UTC', contactEmail: `${another}@example.org` },
      };
    },
    getOrganization: async () => ({ path: '/v1/organization', auth: admin }),
    updateOrganization: async () => ({ path: '/v1/organization', auth: admin, body: { name: 'Renamed' } }),
    createApiKey: async () => ({ path: '/v1/api-keys', auth: admin, body: { name: 'k', role: 'viewer' } }),
    listApiKeys: async () => ({ path: '/v1/api-keys', auth: admin }),
    revokeApiKey: async () => ({ path: `/v1/api-keys/${spareKey.id}`, auth: admin }),
    createVolunteer: async () => ({
      path: '/v1/volunteers',
      auth: admin,
      body: { name: 'New', email: `${uniqueSlug('n')}@example.org` },
    }),
    listVolunteers: async () => ({ path: '/v1/volunteers', auth: admin }),
    getVolunteer: async () => ({ path: `/v1/volunteers/${volunteerId}`, auth: admin }),
    updateVolunteer: async () => ({
      path: `/v1/volunteers/${volunteerId}`,
      auth: admin,
      body: { notes: 'n' },
    }),
    eraseVolunteer: async () => ({ path: `/v1/volunteers/${erasable}`, auth: admin }),
    createVolunteerToken: async () => ({
      path: `/v1/volunteers/${volunteerId}/tokens`,
      auth: admin,
      body: {},
    }),
    grantQualification: async () => ({
      path: `/v1/volunteers/${volunteerId}/qualifications/${role}`,
      auth: admin,
    }),
    revokeQualification: async () => ({
      path: `/v1/volunteers/${volunteerId}/qualifications/${role}`,
      auth: admin,
    }),
    getPublicOrganization: async () => ({ path: `/v1/public/${slug}` }),
    listPublicEvents: async () => ({ path: `/v1/public/${slug}/events` }),
    getPublicEvent: async () => ({ path: `/v1/public/${slug}/events/${event.id}` }),
    listPublicShifts: async () => ({ path: `/v1/public/${slug}/events/${event.id}/shifts` }),
    getOrganizationCalendar: async () => ({ path: `/v1/public/${slug}/calendar.ics` }),
    getEmbedScript: async () => ({ path: '/embed.js' }),
    rotateCalendarToken: async () => ({ path: '/v1/me/calendar-token', auth: volunteer }),
    getVolunteerCalendar: async () => ({
      path: new URL((await suite.http.get('/v1/me').set(volunteer).expect(200)).body.calendarUrl).pathname,
    }),
    getEventCalendar: async () => ({ path: `/v1/public/${slug}/events/${event.id}/calendar.ics` }),
    registerVolunteer: async () => ({
      path: `/v1/public/${slug}/volunteers`,
      body: { name: 'Self', email, password },
    }),
    signInVolunteer: async () => ({ path: `/v1/public/${slug}/sessions`, body: { email, password } }),
    getMe: async () => ({ path: '/v1/me', auth: volunteer }),
    updateMe: async () => ({ path: '/v1/me', auth: volunteer, body: { name: 'Me' } }),
    signOut: async () => ({ path: '/v1/me/session', auth: await volunteerToken(admin, volunteerId) }),
    createRole: async () => ({
      path: '/v1/roles',
      auth: admin,
      body: { name: uniqueSlug('r'), restricted: false },
    }),
    listRoles: async () => ({ path: '/v1/roles', auth: admin }),
    getRole: async () => ({ path: `/v1/roles/${role}`, auth: admin }),
    updateRole: async () => ({ path: `/v1/roles/${role}`, auth: admin, body: { description: 'd' } }),
    deleteRole: async () => ({ path: `/v1/roles/${spareRole}`, auth: admin }),
    createEvent: async () => ({ path: '/v1/events', auth: admin, body: { title: 'E' } }),
    listEvents: async () => ({ path: '/v1/events', auth: admin }),
    getEvent: async () => ({ path: `/v1/events/${event.id}`, auth: admin }),
    updateEvent: async () => ({ path: `/v1/events/${event.id}`, auth: admin, body: { description: 'd' } }),
    deleteEvent: async () => ({ path: `/v1/events/${spareEvent.id}`, auth: admin }),
    cancelEvent: async () => ({ path: `/v1/events/${cancellableEvent.id}/cancel`, auth: admin, body: {} }),
    createShift: async () => ({
      path: `/v1/events/${event.id}/shifts`,
      auth: admin,
      body: { ...at(120), capacity: 2 },
    }),
    listEventShifts: async () => ({ path: `/v1/events/${event.id}/shifts`, auth: admin }),
    createShiftsInBulk: async () => ({
      path: `/v1/events/${event.id}/shifts/bulk`,
      auth: admin,
      body: { shifts: [{ ...at(150), capacity: 2 }] },
    }),
    listShifts: async () => ({ path: '/v1/shifts', auth: admin }),
    getShift: async () => ({ path: `/v1/shifts/${shift.id}`, auth: admin }),
    updateShift: async () => ({ path: `/v1/shifts/${shift.id}`, auth: admin, body: { capacity: 6 } }),
    deleteShift: async () => ({
      path: `/v1/shifts/${(await createShift(admin, event.id, { ...at(200), capacity: 1 })).id}`,
      auth: admin,
    }),
    cancelShift: async () => ({ path: `/v1/shifts/${cancellableShift.id}/cancel`, auth: admin, body: {} }),
    claimShift: async () => ({ path: `/v1/shifts/${claimable.id}/signups`, auth: volunteer, body: {} }),
    listShiftSignups: async () => ({ path: `/v1/shifts/${shift.id}/signups`, auth: admin }),
    listSignups: async () => ({ path: '/v1/signups', auth: admin }),
    listMySignups: async () => ({ path: '/v1/me/signups', auth: volunteer }),
    getSignup: async () => ({ path: `/v1/signups/${signup.id}`, auth: admin }),
    updateSignup: async () => ({ path: `/v1/signups/${signup.id}`, auth: admin, body: { note: 'n' } }),
    cancelSignup: async () => ({ path: `/v1/signups/${cancellable.id}/cancel`, auth: admin, body: {} }),
    checkInSignup: async () => ({ path: `/v1/signups/${signup.id}/check-in`, auth: admin, body: {} }),
    getHoursReport: async () => ({ path: '/v1/reports/hours', auth: admin }),
    getEventRoster: async () => ({ path: `/v1/events/${event.id}/roster.csv`, auth: admin }),
    createWebhook: async () => ({
      path: '/v1/webhooks',
      auth: admin,
      body: { url: 'https://93.184.216.34/other', events: ['signup.confirmed'] },
    }),
    listWebhooks: async () => ({ path: '/v1/webhooks', auth: admin }),
    getWebhook: async () => ({ path: `/v1/webhooks/${subscribed.id}`, auth: admin }),
    updateWebhook: async () => ({
      path: `/v1/webhooks/${subscribed.id}`,
      auth: admin,
      body: { description: 'd' },
    }),
    deleteWebhook: async () => ({ path: `/v1/webhooks/${deletable.id}`, auth: admin }),
    rotateWebhookSecret: async () => ({
      path: `/v1/webhooks/${subscribed.id}/rotate-secret`,
      auth: admin,
      body: {},
    }),
    testWebhook: async () => ({ path: `/v1/webhooks/${subscribed.id}/test`, auth: admin, body: {} }),
    listWebhookDeliveries: async () => ({ path: `/v1/webhooks/${subscribed.id}/deliveries`, auth: admin }),
    retryWebhookDelivery: async () => {
      const ping = await suite.http
        .post(`/v1/webhooks/${subscribed.id}/test`)
        .set(admin)
        .send({})
        .expect(202);
      return {
        path: `/v1/webhooks/${subscribed.id}/deliveries/${ping.body.id}/retry`,
        auth: admin,
        body: {},
      };
    },
    listAuditEvents: async () => ({ path: '/v1/audit-events', auth: admin }),
    checkOutSignup: async () => {
      // Check-out needs a started shift: move it into the past, as time would (the signup's copy
      // of the period follows through its foreign key).
      await suite.database.db.execute(
        sql`update shifts set starts_at = now() - interval '1 hour', ends_at = now() + interval '1 hour' where id = ${shift.id}`,
      );
      return { path: `/v1/signups/${signup.id}/check-out`, auth: admin, body: {} };
    },
  };
  void org;

  // Another organisation, with an admin and a volunteer of its own (the BOLA test below).
  const otherSlug = uniqueSlug();
  const otherOrg = await suite.http
    .post('/v1/organizations')
    .send({ name: 'Other', slug: otherSlug, timezone: 'UTC', contactEmail: `${otherSlug}@example.org` })
    .expect(201);
  const otherAdmin = bearer(otherOrg.body.apiKey.token);
  const keyOf = async (role: string) =>
    bearer(
      (await suite.http.post('/v1/api-keys').set(admin).send({ name: role, role }).expect(201)).body.token,
    );
  rolePrincipals = {
    anonymous: undefined,
    admin,
    organiser: await keyOf('organiser'),
    viewer: await keyOf('viewer'),
    volunteer,
  };
  otherPrincipals = {
    admin: otherAdmin,
    volunteer: await volunteerToken(otherAdmin, await createVolunteer(otherAdmin)),
    ownVolunteer: volunteer,
  };
});

/** This organisation's callers by role, for the role matrix. */
type Role = 'anonymous' | 'admin' | 'organiser' | 'viewer' | 'volunteer';
let rolePrincipals: Record<Role, Record<string, string> | undefined>;

/** Who each access rule (the document's `x-access`) lets in. */
const allowedBy: Record<string, Role[]> = {
  admin: ['admin'],
  organiser: ['admin', 'organiser'],
  viewer: ['admin', 'organiser', 'viewer'],
  volunteer: ['volunteer'],
  'viewer-or-volunteer': ['admin', 'organiser', 'viewer', 'volunteer'],
  'organiser-or-volunteer': ['admin', 'organiser', 'volunteer'],
};

/** The other organisation's principals, and this one's volunteer (to tell which to use). */
let otherPrincipals: {
  admin: Record<string, string>;
  volunteer: Record<string, string>;
  ownVolunteer: Record<string, string>;
};

async function auditEventCount(): Promise<number> {
  const [row] = await queryRows<{ n: number }>(suite.database.db, sql`select count(*)::int as n from outbox`);
  return row?.n ?? 0;
}

async function send(operation: Operation, call: Call): Promise<Response> {
  const method = operation.method as 'get' | 'post' | 'patch' | 'put' | 'delete';
  let request = suite.http[method](call.path);
  if (call.auth) request = request.set(call.auth);
  if (call.headers) request = request.set(call.headers);
  return call.body === undefined ? request : request.send(call.body as object);
}

describe('every documented operation, sent', () => {
  it('answers a revalidation with its documented 304 and headers, where it documents one', async () => {
    const revalidated = operations.filter((operation) => operation.responses['304']);
    expect(revalidated.length).toBeGreaterThan(0);
    const mismatches: string[] = [];
    for (const operation of revalidated) {
      const call = await (calls[operation.operationId] as () => Promise<Call>)();
      const first = await send(operation, call);
      const again = await send(operation, {
        ...call,
        headers: { 'if-none-match': String(first.headers.etag) },
      });
      const promised = Object.keys(operation.responses['304']?.headers ?? {}).map((name) =>
        name.toLowerCase(),
      );
      if (again.status !== 304) mismatches.push(`${operation.operationId}: got ${again.status}, not 304`);
      for (const name of compared) {
        const sent = again.headers[name] !== undefined;
        if (sent !== promised.includes(name)) {
          mismatches.push(
            `${operation.operationId} 304: ${name} ${sent ? 'sent, not documented' : 'documented, not sent'}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('has a request in this test, and no request names an operation the document lacks', () => {
    expect(operations.length).toBeGreaterThan(40);
    expect(operations.map((operation) => operation.operationId).sort()).toEqual(Object.keys(calls).sort());
  });

  it("answers 404 to another organisation's principal for every id in a path (no BOLA)", async () => {
    // Ids in paths that name a resource of an organisation, reached with credentials; the public
    // routes name their organisation by slug, and a feed by its own secret.
    const addressed = operations.filter(
      (operation) =>
        /\{(?!orgSlug|feedToken)[^}]+\}/.test(operation.path) && !operation.path.startsWith('/v1/public/'),
    );
    expect(addressed.length).toBeGreaterThan(20);
    const mismatches: string[] = [];
    for (const operation of addressed) {
      const call = await (calls[operation.operationId] as () => Promise<Call>)();
      if (!call.auth) continue;
      const auth =
        call.auth === otherPrincipals.ownVolunteer ? otherPrincipals.volunteer : otherPrincipals.admin;
      const response = await send(operation, { ...call, auth });
      if (response.status !== 404 || response.body.code !== 'not-found')
        mismatches.push(
          `${operation.operationId}: ${response.status} ${JSON.stringify(response.body).slice(0, 160)}`,
        );
    }
    expect(mismatches).toEqual([]);
  });

  it('answers a documented status, with exactly the documented protocol headers', async () => {
    const mismatches: string[] = [];
    for (const operation of operations) {
      const make = calls[operation.operationId];
      if (!make) continue; // the test above names it
      const call = await make();
      const eventsBefore = await auditEventCount();
      const response = await send(operation, call);
      // Every write leaves its audit event (API.md §10: the outbox, written in its transaction).
      if (operation.method !== 'get' && response.status < 300 && (await auditEventCount()) <= eventsBefore)
        mismatches.push(`${operation.operationId}: a write without an audit event`);
      const documented = operation.responses[String(response.status)];
      if (!documented || response.status >= 300) {
        mismatches.push(
          `${operation.operationId}: got ${response.status} (${JSON.stringify(response.body).slice(0, 200)}), documented ${Object.keys(operation.responses).join(', ')}`,
        );
        continue;
      }
      const promised = Object.keys(documented.headers ?? {}).map((name) => name.toLowerCase());
      for (const name of compared) {
        const sent = response.headers[name] !== undefined;
        if (sent !== promised.includes(name)) {
          mismatches.push(
            `${operation.operationId} ${response.status}: ${name} ${sent ? 'sent, not documented' : 'documented, not sent'}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  // Last: the callers a rule lets in may change what the requests above act on.
  it('lets in exactly the roles its x-access names: 401 without a token, 403 for any other role', async () => {
    const ruled = operations.filter(
      (operation) => typeof (operation as { 'x-access'?: string })['x-access'] === 'string',
    );
    // Every route of the API says who may call it (auth.ts refuses one that does not, at start-up).
    expect(
      operations.filter((operation) => operation.path.startsWith('/v1/') && !ruled.includes(operation)),
    ).toEqual([]);
    const mismatches: string[] = [];
    for (const operation of ruled) {
      const rule = (operation as { 'x-access'?: string })['x-access'] as string;
      const allowed = allowedBy[rule];
      if (!allowed) {
        if (rule !== 'public' && rule !== 'platform')
          mismatches.push(`${operation.operationId}: rule ${rule}?`);
        continue;
      }
      const call = await (calls[operation.operationId] as () => Promise<Call>)();
      // A fresh volunteer token: the requests above sign this organisation's volunteer out.
      rolePrincipals.volunteer = await volunteerToken(
        rolePrincipals.admin as Record<string, string>,
        await createVolunteer(rolePrincipals.admin as Record<string, string>),
      );
      for (const [role, auth] of Object.entries(rolePrincipals) as [
        Role,
        Record<string, string> | undefined,
      ][]) {
        const response = await send(operation, { ...call, ...(auth ? { auth } : { auth: undefined }) });
        const expected = allowed.includes(role) ? 'in' : role === 'anonymous' ? 401 : 403;
        // Let in: any answer but 401 and 403, and never a server error.
        const got =
          response.status === 401 || response.status === 403
            ? response.status
            : response.status >= 500
              ? 500
              : 'in';
        if (got !== expected)
          mismatches.push(
            `${operation.operationId} (${rule}) as ${role}: ${response.status}, expected ${expected}`,
          );
      }
    }
    expect(mismatches).toEqual([]);
  });
});
