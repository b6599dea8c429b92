/**
 * The project fuzzes itself (issue 14): for every operation of the served /openapi.json and every
 * principal (anonymous, admin, organiser, viewer, volunteer), requests generated from the
 * document's schemas, valid and spoiled (mutations.ts), with this organisation's ids, another
 * organisation's and made-up ones. Every answer must be one the document promises:
 *
 * - never a 5xx;
 * - a status the operation declares, with a content type declared for that status;
 * - a 2xx JSON body valid against the declared schema;
 * - a problem body that is RFC 9457 (type, title, status, detail) with a code of API.md §9 for
 *   its status, and one the document names for that answer.
 *
 * Seeded: every run prints its seed, and `FUZZ_SEED=<seed> npx vitest run test/fuzz` sends the
 * same requests again (the ids of the world differ, the choices among them do not). CI runs a
 * fixed seed, so that a red run is reproducible; other runs draw one. FUZZ_RUNS (24) sets the requests
 * per operation and principal (8,400 requests, about a minute on PostgreSQL with fsync). A new
 * operation is fuzzed without a change here.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, uniqueSlug } from '../support/app.ts';
import { type Auth, fixtures, useTestApp } from '../support/fixtures.ts';
import { answerChecker, type Operation, type Parameter, type Sent } from './checks.ts';
import { type FuzzRequest, mutation } from './mutations.ts';
import { allowedValue, type Document, outOfBounds } from './schema-arbitraries.ts';

const suite = useTestApp({ RATE_LIMIT_PER_MINUTE: 0 });
const { createEvent, createShift, createVolunteer, createRole, volunteerToken } = fixtures(suite);

const seed = Number(
  process.env.FUZZ_SEED ?? (process.env.CI ? 20261204 : Math.floor(Math.random() * 2 ** 31)),
);
const runs = Number(process.env.FUZZ_RUNS ?? 24);

type Principal = 'anonymous' | 'admin' | 'organiser' | 'viewer' | 'volunteer';

let document: Document;
let operations: Operation[] = [];
let principals: Record<Principal, Auth | undefined>;
/** Real ids by the collection a path names them under (`/v1/shifts/{id}` → shifts). */
let idsOf: Record<string, string[]> = {};
let slugs: string[] = [];
let findings: ReturnType<typeof answerChecker>;

beforeAll(async () => {
  console.log(`fuzz seed ${seed}, ${runs} requests per operation and principal (replay: FUZZ_SEED=${seed})`);
  document = (await suite.http.get('/openapi.json').expect(200)).body as Document;
  operations = Object.entries(
    document.paths as Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>,
  )
    .flatMap(([path, byMethod]) =>
      Object.entries(byMethod).map(([method, operation]) => ({ ...operation, method, path })),
    )
    // Writes that take the world away last, so that the requests before them find it.
    .sort((a, b) => Number(isDestructive(a)) - Number(isDestructive(b)));
  findings = answerChecker(document);

  const world = async (name: string) => {
    const slug = uniqueSlug();
    const created = await suite.http
      .post('/v1/organizations')
      .send({ name, slug, timezone: 'Europe/Berlin', contactEmail: `${slug}@example.org` })
      .expect(201);
    const admin = bearer(created.body.apiKey.token);
    const key = async (role: string) =>
      (await suite.http.post('/v1/api-keys').set(admin).send({ name: role, role }).expect(201)).body as {
        id: string;
        token: string;
      };
    const organiser = await key('organiser');
    const viewer = await key('viewer');
    const spare = await key('viewer');
    const role = await createRole(admin, false);
    const volunteerId = await createVolunteer(admin);
    const otherVolunteer = await createVolunteer(admin);
    const event = await createEvent(admin, { status: 'published' });
    const draft = await createEvent(admin);
    const hour = 3_600_000;
    const at = (inHours: number) => ({
      startsAt: new Date(Date.now() + inHours * hour).toISOString(),
      endsAt: new Date(Date.now() + (inHours + 2) * hour).toISOString(),
    });
    const shift = await createShift(admin, event.id, { ...at(24), capacity: 5, roleId: role });
    const later = await createShift(admin, event.id, { ...at(48), capacity: 1 });
    const signup = (
      await suite.http.post(`/v1/shifts/${shift.id}/signups`).set(admin).send({ volunteerId }).expect(201)
    ).body as { id: string };
    const webhook = (
      await suite.http
        .post('/v1/webhooks')
        .set(admin)
        .send({ url: 'https://93.184.216.34/hook', events: ['shift.created'] })
        .expect(201)
    ).body as { id: string };
    return {
      slug,
      admin,
      organiser: bearer(organiser.token),
      viewer: bearer(viewer.token),
      volunteer: await volunteerToken(admin, volunteerId),
      ids: {
        events: [event.id, draft.id],
        shifts: [shift.id, later.id],
        signups: [signup.id],
        volunteers: [volunteerId, otherVolunteer],
        roles: [role],
        webhooks: [webhook.id],
        'api-keys': [spare.id],
      } as Record<string, string[]>,
    };
  };
  const own = await world('Fuzzed');
  const other = await world('Other');
  principals = {
    anonymous: undefined,
    admin: own.admin,
    organiser: own.organiser,
    viewer: own.viewer,
    volunteer: own.volunteer,
  };
  slugs = [own.slug, own.slug, other.slug];
  // Mostly this organisation's ids, some of the other's (they must be 404, never another answer).
  idsOf = Object.fromEntries(
    Object.entries(own.ids).map(([collection, list]) => [
      collection,
      [...list, ...list, ...(other.ids[collection] ?? [])],
    ]),
  );
});

function isDestructive(operation: Operation): boolean {
  return (
    operation.method === 'delete' ||
    /revoke|sign-?out|erase|cancel|rotate/i.test(operation.operationId) ||
    operation.path.endsWith('/calendar-token')
  );
}

/** The collection whose ids a path parameter holds: by its name, or the segment before it. */
function collectionOf(path: string, name: string): string | undefined {
  const byName: Record<string, string> = {
    eventId: 'events',
    shiftId: 'shifts',
    signupId: 'signups',
    volunteerId: 'volunteers',
    roleId: 'roles',
    webhookId: 'webhooks',
    resourceId: 'events',
  };
  if (byName[name]) return byName[name];
  const segments = path.split('/');
  const at = segments.indexOf(`{${name}}`);
  return at > 0 ? segments[at - 1] : undefined;
}

function parameterValue(operation: Operation, parameter: Parameter): fc.Arbitrary<string> {
  const fromSchema = allowedValue(parameter.schema, document).map((value) =>
    typeof value === 'string' ? value : JSON.stringify(value),
  );
  if (parameter.name === 'orgSlug') return fc.constantFrom(...slugs);
  const collection = collectionOf(operation.path, parameter.name);
  const known = collection ? idsOf[collection] : undefined;
  return known?.length
    ? fc.oneof({ arbitrary: fc.constantFrom(...known), weight: 4 }, fromSchema)
    : fromSchema;
}

/** Valid requests for `operation`, from its parameters' and body's schemas. */
function validRequest(operation: Operation): fc.Arbitrary<FuzzRequest> {
  const parameters = operation.parameters ?? [];
  const path = parameters.filter((parameter) => parameter.in === 'path');
  const query = parameters.filter((parameter) => parameter.in === 'query');
  const headers = parameters.filter((parameter) => parameter.in === 'header');
  const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
  return fc
    .record({
      pathValues: fc.record(
        Object.fromEntries(path.map((parameter) => [parameter.name, parameterValue(operation, parameter)])),
      ),
      query: fc.tuple(
        ...query.map((parameter) =>
          parameter.required
            ? parameterValue(operation, parameter).map((value) => [[parameter.name, value]])
            : fc.option(
                parameterValue(operation, parameter).map((value) => [[parameter.name, value]]),
                { nil: [] },
              ),
        ),
      ),
      headers: fc.tuple(
        ...headers.map((parameter) =>
          fc.option(
            parameter.name === 'idempotency-key'
              ? fc.uuid().map((key) => [parameter.name, key])
              : fc.constantFrom('"x"', 'W/"x"', '*').map((value) => [parameter.name, value]),
            { nil: undefined },
          ),
        ),
      ),
      body: bodySchema ? allowedValue(bodySchema, document) : fc.constant(undefined),
    })
    .map(({ pathValues, query: pairs, headers: headerPairs, body }) => ({
      method: operation.method.toUpperCase(),
      template: operation.path,
      pathValues: Object.fromEntries(
        Object.entries(pathValues).map(([name, value]) => [name, encodeURIComponent(value as string)]),
      ),
      query: (pairs as [string, string][][]).flat(),
      headers: Object.fromEntries(
        (headerPairs as ([string, string] | undefined)[]).filter((pair) => pair !== undefined),
      ),
      body:
        body === undefined ? undefined : { contentType: 'application/json', content: JSON.stringify(body) },
      kind: 'valid',
    }));
}

async function send(request: FuzzRequest, auth: Auth | undefined): Promise<Sent> {
  const path = request.template.replace(/\{([^}]+)\}/g, (_, name: string) => request.pathValues[name] ?? '');
  const search = request.query
    .map(
      ([name, value]) =>
        `${encodeURIComponent(name)}=${value.includes('%') ? value : encodeURIComponent(value)}`,
    )
    .join('&');
  const hasBody = request.body !== undefined && request.method !== 'GET' && request.method !== 'HEAD';
  const response = await fetch(`${suite.baseUrl}${path}${search ? `?${search}` : ''}`, {
    method: request.method,
    headers: {
      ...(auth ?? {}),
      // A mutation's own Authorization (an empty or foreign scheme) wins over the principal's.
      ...request.headers,
      ...(hasBody && request.body?.contentType ? { 'content-type': request.body.contentType } : {}),
    },
    body: hasBody ? (request.body?.content as string | Uint8Array as BodyInit) : undefined,
    redirect: 'manual',
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type')?.split(';')[0]?.trim(),
    text: await response.text(),
  };
}

function describeRequest(request: FuzzRequest, principal: Principal): string {
  const body = request.body
    ? ` ${request.body.contentType ?? ''} ${String(typeof request.body.content === 'string' ? request.body.content : `<${request.body.content.length} bytes>`).slice(0, 120)}`
    : '';
  const query = request.query.length
    ? `?${request.query.map(([name, value]) => `${name}=${value}`).join('&')}`
    : '';
  const path = request.template.replace(/\{([^}]+)\}/g, (_, name: string) => request.pathValues[name] ?? '');
  return `${request.method} ${path.slice(0, 200)}${query.slice(0, 200)} as ${principal} [${request.kind}]${Object.keys(request.headers).length ? ` headers ${JSON.stringify(request.headers).slice(0, 100)}` : ''}${body}`;
}

describe('the fuzzer, driven by the served document', () => {
  it('finds each kind of broken promise in a made-up answer, and none in a kept one', () => {
    const operation = operations.find((one) => one.operationId === 'getEvent') as Operation;
    const problem = (status: number, code: string) => ({
      status,
      contentType: 'application/problem+json',
      text: JSON.stringify({ type: `/problems/${code}`, title: 't', status, detail: 'd', code }),
    });
    const judged = (sent: Sent) => findings(operation, sent);
    expect(judged(problem(404, 'not-found'))).toEqual([]);
    expect(judged(problem(500, 'internal'))[0]).toMatch(/server error/);
    expect(judged(problem(418, 'not-found'))[0]).toMatch(/not declared/);
    expect(judged(problem(404, 'forbidden'))[0]).toMatch(/not one of API.md §9/);
    expect(judged({ ...problem(404, 'not-found'), text: '{"code":"not-found","status":404}' })).toContain(
      'a problem without a string title',
    );
    expect(judged({ status: 200, contentType: 'text/html', text: '<p>' })[0]).toMatch(/content type/);
    expect(judged({ status: 200, contentType: 'application/json', text: '{"id":1}' })[0]).toMatch(
      /does not match its schema/,
    );
  });

  it('gets only answers the document promises, for every operation, principal and mutation', async () => {
    expect(operations.length).toBeGreaterThan(40);
    const failures = new Map<string, string>();
    let sentCount = 0;
    const statuses = new Map<number, number>();
    const succeeded = new Set<string>();
    for (const [index, operation] of operations.entries()) {
      const pathParameters = (operation.parameters ?? [])
        .filter((parameter) => parameter.in === 'path')
        .map((parameter) => parameter.name);
      const boundaries = outOfBounds(operation.requestBody?.content?.['application/json']?.schema, document);
      const spoiled = fc
        .tuple(validRequest(operation), mutation(pathParameters, boundaries))
        .map(([request, spoil]) => spoil(request));
      for (const [at, principal] of (Object.keys(principals) as Principal[]).entries()) {
        const ownSeed = (seed + index * 7919 + at * 104_729) | 0;
        const requests = [
          ...fc.sample(validRequest(operation), { seed: ownSeed, numRuns: Math.ceil(runs / 2) }),
          ...fc.sample(spoiled, { seed: ownSeed + 1, numRuns: Math.floor(runs / 2) }),
        ];
        for (const request of requests) {
          const sent = await send(request, principals[principal]);
          sentCount++;
          statuses.set(sent.status, (statuses.get(sent.status) ?? 0) + 1);
          if (sent.status < 300) succeeded.add(operation.operationId);
          for (const finding of findings(operation, sent)) {
            // One example per operation and kind of finding is enough to act on.
            const key = `${operation.operationId}: ${finding.replace(/\d+/g, 'N').slice(0, 80)}`;
            if (!failures.has(key))
              failures.set(
                key,
                `${operation.operationId}: ${finding}\n    ${describeRequest(request, principal)}`,
              );
          }
        }
      }
    }
    console.log(
      `fuzz seed ${seed}: ${sentCount} requests, ${failures.size} distinct findings; answers by status ` +
        `${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}; ` +
        `${succeeded.size} of ${operations.length} operations answered a 2xx at least once`,
    );
    // The generator must reach the routes' work, not only their validation.
    expect(succeeded.size).toBeGreaterThan(operations.length / 2);
    expect([...failures.values()], `seed ${seed}`).toEqual([]);
  }, 600_000);
});
