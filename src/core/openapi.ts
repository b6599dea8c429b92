/**
 * The published OpenAPI 3.1 document (API.md §1 "OpenAPI"), generated from the routes' zod schemas.
 *
 * Every operation documents its error responses: the ones every route can produce (401/403 by its
 * auth rule, 400/413/415 by its inputs, 429, 500, 503) are added here when the route is declared, so a
 * route only lists what is particular to it with `problems({ 409: 'slug-taken' })`.
 */
import { readFileSync } from 'node:fs';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { createJsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { packagePath } from '../package-root.ts';
import type { AccessRule } from './auth.ts';
import { type ProblemCode, problemCodes } from './errors.ts';
import { problemSchema } from './schemas.ts';

const packageJson = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as {
  version: string;
};

function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: problemSchema } } };
}

/** Route-specific error responses: `{ 409: 'slug-taken' }` or `{ 409: ['slug-taken', 'name-taken'] }`. */
export function problems(byStatus: Record<number, ProblemCode | ProblemCode[]>) {
  const responses: Record<number, ReturnType<typeof problemResponse>> = {};
  for (const [status, codes] of Object.entries(byStatus)) {
    const list = Array.isArray(codes) ? codes : [codes];
    responses[Number(status)] = problemResponse(
      list.map((code) => `\`${code}\`: ${problemCodes[code].title}.`).join(' '),
    );
  }
  return responses;
}

type ResponseMap = Record<string, unknown>;

const idempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe(
      'Makes the POST safe to retry: same key, caller and body within 24 h replay the first response.',
    ),
});
const preconditionHeaders = z.looseObject({
  'if-match': z
    .string()
    .max(200)
    .optional()
    .describe('The ETag you read; a mismatch is 412 `precondition-failed`.'),
});

const headerDocs = {
  'X-Request-Id': 'The request id (yours if you sent one); quote it when reporting a problem.',
  'RateLimit-Limit': 'Requests allowed per window for this token (or IP address).',
  'RateLimit-Remaining': 'Requests left in this window.',
  'RateLimit-Reset': 'Seconds until the window resets.',
  Location: 'The path of the resource this request created.',
  ETag: 'The version of this answer: send it as If-Match to update the resource, or as If-None-Match to revalidate a public read (304 when unchanged).',
  'Cache-Control': 'How long shared caches and browsers may keep the answer.',
  'Content-Disposition': 'A download, with the file name a browser saves it under.',
  'Idempotent-Replayed':
    '`true` when this is the stored response of an earlier request with the same Idempotency-Key.',
  'Retry-After': 'Seconds to wait before retrying.',
} as const;

type HeaderName = keyof typeof headerDocs;

/** The headers a route's successful responses carry beyond the protocol's own: it says so itself. */
export type DeclaredHeader = 'ETag' | 'Location' | 'Cache-Control' | 'Content-Disposition';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route's 2xx responses send (`Location` on a 201 only); the document says exactly this. */
    sends?: DeclaredHeader[];
  }
}

/** What one operation's route declares, as the document needs it. */
interface Declaration {
  sends: DeclaredHeader[];
  rateLimited: boolean;
}

function headersFor(method: string, status: number, declared: Declaration): HeaderName[] {
  const names: HeaderName[] = ['X-Request-Id'];
  const success = status < 300;
  // A 304 repeats the validators and the caching rule of the 200 it stands for (RFC 9110 §15.4.5).
  const answered = success || status === 304;
  if (answered && declared.rateLimited)
    names.push('RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset');
  if (status === 201 && declared.sends.includes('Location')) names.push('Location');
  if (answered && declared.sends.includes('ETag')) names.push('ETag');
  if (answered && declared.sends.includes('Cache-Control')) names.push('Cache-Control');
  if (success && declared.sends.includes('Content-Disposition')) names.push('Content-Disposition');
  if (method === 'post' && success) names.push('Idempotent-Replayed');
  if (status === 409 || status === 429 || status === 503) names.push('Retry-After');
  return names;
}

/**
 * Adds the protocol response headers (API.md §1) to every operation, as shared components, from
 * what each route declared (by operationId).
 */
function withResponseHeaders<T>(document: T, declarations: Map<string, Declaration>): T {
  const doc = document as {
    components?: { headers?: Record<string, unknown> };
    paths?: Record<
      string,
      Record<string, { operationId?: string; responses?: Record<string, Record<string, unknown>> }>
    >;
  };
  doc.components ??= {};
  doc.components.headers = Object.fromEntries(
    Object.entries(headerDocs).map(([name, description]) => [
      name,
      { description, schema: name.startsWith('RateLimit') ? { type: 'integer' } : { type: 'string' } },
    ]),
  );
  for (const operations of Object.values(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const declared = declarations.get(operation.operationId ?? '') ?? { sends: [], rateLimited: true };
        const names = headersFor(method, Number(status), declared);
        response.headers = Object.fromEntries(
          names.map((name) => [name, { $ref: `#/components/headers/${name}` }]),
        );
      }
    }
  }
  return document;
}

function addDefaultProblems(route: RouteOptions): void {
  if (!route.schema) return;
  // Any URL can carry a NUL, which the app refuses before routing (core/hostile-input.ts).
  if (!(route.url.startsWith('/v1/') || route.url === '/embed.js')) {
    mergeProblems(route, problems({ 400: 'validation-failed' }));
    return;
  }
  const rule = route.config?.auth;
  const defaults: Record<number, ProblemCode | ProblemCode[]> = {};
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const hasBody = route.schema.body !== undefined;
  // Every route: any URL can carry a NUL, refused before routing (core/hostile-input.ts).
  defaults[400] = route.schema.querystring ? ['validation-failed', 'invalid-cursor'] : 'validation-failed';
  if (rule && rule !== 'public') {
    defaults[401] = 'unauthenticated';
    if (rule !== 'platform') defaults[403] = 'forbidden';
  }
  if (route.schema.params) defaults[404] = 'not-found';
  // A body is read for every POST, PATCH, PUT and DELETE (Fastify parses one whenever it has a
  // content type), whether its route takes one or not: a body too large or of another type is
  // refused before the route looks.
  if (hasBody || methods.some((method) => ['POST', 'PATCH', 'PUT', 'DELETE'].includes(method))) {
    defaults[413] = 'payload-too-large';
    defaults[415] = 'unsupported-media-type';
  }
  if (methods.includes('POST')) {
    defaults[409] = 'idempotency-key-in-use';
    defaults[422] = 'idempotency-key-reused';
  }
  // The protocol headers of API.md §1, validated and documented like any other input.
  if (!route.schema.headers && methods.includes('POST')) route.schema.headers = idempotencyHeaders;
  if (!route.schema.headers && methods.includes('PATCH')) route.schema.headers = preconditionHeaders;
  defaults[429] = 'rate-limited';
  defaults[500] = 'internal';
  defaults[503] = 'unavailable';
  mergeProblems(route, problems(defaults));
}

/** Adds generated problem answers to a route's: its own entry wins, a shared status's descriptions merge. */
function mergeProblems(route: RouteOptions, generated: ReturnType<typeof problems>): void {
  const response = (route.schema?.response ?? {}) as ResponseMap;
  for (const [status, value] of Object.entries(generated)) {
    const existing = response[status] as { description?: string } | undefined;
    response[status] =
      existing?.description && !existing.description.includes(value.description)
        ? { ...existing, description: `${existing.description} ${value.description}` }
        : (existing ?? value);
  }
  if (route.schema) route.schema.response = response;
}

const zodTransform = createJsonSchemaTransform({ skipList: [] });

/**
 * A query flag (`queryBoolean`: the strings `true` and `false` on the wire) is a boolean in the
 * document, as OpenAPI's query serialisation writes one, so that a typed client takes
 * `{ available: true }` (its generator made the strings `"true" | "false"` of it). The server
 * still validates the strings, with zod.
 */
function booleansAsBooleans(schema: { querystring?: unknown } | undefined): void {
  const properties = (
    schema?.querystring as { properties?: Record<string, Record<string, unknown>> } | undefined
  )?.properties;
  for (const [name, property] of Object.entries(properties ?? {})) {
    const values = property.enum as unknown[] | undefined;
    if (
      property.type === 'string' &&
      values?.length === 2 &&
      values.includes('true') &&
      values.includes('false')
    ) {
      const { enum: _, type: __, ...rest } = property;
      properties![name] = { ...rest, type: 'boolean' };
    }
  }
}

function securityFor(rule: AccessRule | undefined) {
  if (!rule || rule === 'public') return [];
  // Organisation sign-up needs the ADMIN_TOKEN only when the server is configured with one.
  if (rule === 'platform') return [{}, { bearerAuth: [] }];
  return [{ bearerAuth: [] }];
}

/**
 * The zod transform registers every named schema twice (an input and an output variant); drop the
 * variants no operation references, so the document lists only what is used.
 */
function withoutUnusedComponents<T>(document: T): T {
  const schemas = (document as { components?: { schemas?: Record<string, unknown> } }).components?.schemas;
  if (!schemas) return document;
  let removed = true;
  while (removed) {
    removed = false;
    const text = JSON.stringify(document);
    for (const name of Object.keys(schemas)) {
      if (!text.includes(`"#/components/schemas/${name}"`)) {
        delete schemas[name];
        removed = true;
      }
    }
  }
  return document;
}

export interface OpenApiOptions {
  /** Mounts the interactive docs at /docs. */
  docs: boolean;
  /** The document's top-level `webhooks` (OpenAPI 3.1) and the schemas they refer to. */
  webhooks?: { webhooks: Record<string, unknown>; schemas: Record<string, unknown> };
}

/** Adds the messages the API sends (its `webhooks`) and their schemas to the document. */
function withWebhooks<T>(document: T, webhooks: OpenApiOptions['webhooks']): T {
  if (!webhooks) return document;
  const doc = document as {
    webhooks?: Record<string, unknown>;
    components?: { schemas?: Record<string, unknown> };
  };
  doc.webhooks = webhooks.webhooks;
  doc.components ??= {};
  doc.components.schemas = { ...doc.components.schemas, ...webhooks.schemas };
  return document;
}

export const openApiPlugin = fp<OpenApiOptions>(
  async (app: FastifyInstance, options) => {
    app.addHook('onRoute', addDefaultProblems);
    const declarations = new Map<string, Declaration>();

    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Together API',
          version: packageJson.version,
          description:
            'Together is an open API for volunteer shift scheduling: organisers publish events and shifts, ' +
            'volunteer apps claim and cancel them, partner sites embed live schedules. ' +
            'Errors are RFC 9457 problems with a stable `code`; lists are keyset-paginated; every POST accepts `Idempotency-Key`.',
          license: { name: 'AGPL-3.0-or-later', identifier: 'AGPL-3.0-or-later' },
          contact: { name: 'Together', url: 'https://together.example/' },
        },
        servers: [{ url: '/', description: 'This server' }],
        tags: [
          { name: 'organizations', description: 'Organisations: the tenants of Together.' },
          { name: 'api-keys', description: 'Bearer keys of an organisation, with roles.' },
          { name: 'volunteers', description: 'The people who give their time, as organisers manage them.' },
          {
            name: 'volunteer-accounts',
            description: "Self-registration, sign-in and the volunteer's own profile.",
          },
          { name: 'roles', description: 'Kinds of work; restricted roles need a qualification.' },
          { name: 'events', description: 'Events and their schedules.' },
          { name: 'shifts', description: 'Time slots of an event with a number of places.' },
          { name: 'signups', description: 'Claims of places, the waitlist, cancellations and attendance.' },
          {
            name: 'public',
            description: 'Schedules any website may read without a token: cached, no personal data.',
          },
          { name: 'webhooks', description: 'Endpoints that receive signed event deliveries (admins).' },
          { name: 'audit', description: 'Who did what to which resource, when (admins).' },
          { name: 'reports', description: 'Hours and rosters, as JSON or CSV for a spreadsheet.' },
          { name: 'health', description: 'Liveness and readiness probes.' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: {
              type: 'http',
              scheme: 'bearer',
              description:
                'An API key (`tg_key_…`), a volunteer token (`tg_vol_…`) or, for organisation sign-up, the ADMIN_TOKEN.',
            },
          },
        },
      },
      transform: (document) => {
        const result = zodTransform(document);
        booleansAsBooleans(result.schema as { querystring?: unknown } | undefined);
        const rule = document.route?.config?.auth;
        const schema = result.schema as Record<string, unknown> | undefined;
        if (schema && !schema.hide) {
          schema.security = securityFor(rule);
          // Who may call it, as API.md's "who" column: admin, organiser, viewer (API keys of that
          // role or higher), volunteer, viewer-or-volunteer, public or platform.
          if (rule) schema['x-access'] = rule;
        }
        const operationId = schema?.operationId;
        if (typeof operationId === 'string') {
          const config = document.route?.config;
          declarations.set(operationId, {
            sends: config?.sends ?? [],
            rateLimited: config?.rateLimit !== false,
          });
        }
        return result;
      },
      transformObject: (document) =>
        withResponseHeaders(
          withoutUnusedComponents(withWebhooks(jsonSchemaTransformObject(document), options.webhooks)),
          declarations,
        ),
    });

    if (options.docs) {
      await app.register(fastifySwaggerUi, {
        routePrefix: '/docs',
        staticCSP: true,
        uiConfig: { deepLinking: true },
      });
    }

    app.get('/openapi.json', { schema: { hide: true }, config: { auth: 'public' } }, (_request, reply) =>
      reply.type('application/json; charset=utf-8').send(openApiText(app)),
    );
  },
  { name: 'openapi' },
);

/** The document as committed in openapi/openapi.json: the same bytes the server serves. */
export function openApiText(app: FastifyInstance): string {
  return `${JSON.stringify(app.swagger(), null, 2)}\n`;
}
