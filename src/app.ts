/**
 * buildApp(): the whole API as a Fastify instance that never listens by itself (server.ts and the
 * tests decide that). Order matters: cross-cutting plugins first (errors, request ids, security
 * headers, CORS, OpenAPI, auth, rate limits), then one plugin per domain.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import helmet from 'helmet';
import type { Config } from './config.ts';
import { authPlugin } from './core/auth.ts';
import { AppError, errorsPlugin, sendNotFound, sendProblem } from './core/errors.ts';
import { assertCleanJson, assertCleanUrl } from './core/hostile-input.ts';
import { AccessLog, createLogger, declareSecretPath } from './core/logger.ts';
import { openApiPlugin } from './core/openapi.ts';
import type { Database, Db } from './db/client.ts';
import { auditRoutes } from './domains/audit/routes.ts';
import { eventRoutes } from './domains/events/routes.ts';
import { healthRoutes } from './domains/health/routes.ts';
import { organizationRoutes } from './domains/organizations/routes.ts';
import { AnswerCache, forgetAnswersOnWrite } from './domains/public/answers.ts';
import { embedRoutes, publicRoutes } from './domains/public/routes.ts';
import { reportRoutes } from './domains/reports/routes.ts';
import { roleRoutes } from './domains/roles/routes.ts';
import { shiftRoutes } from './domains/shifts/routes.ts';
import { signupRoutes } from './domains/signups/routes.ts';
import { volunteerRoutes } from './domains/volunteers/routes.ts';
import { type Resolver, systemResolver } from './domains/webhooks/destinations.ts';
import { webhookDocs } from './domains/webhooks/payloads.ts';
import { webhookRoutes } from './domains/webhooks/routes.ts';

declare module 'fastify' {
  interface FastifyInstance {
    database: Database;
    /** The drizzle handle services take (`DbOrTx`). */
    db: Db;
    config: Config;
  }
}

export interface BuildOptions {
  config: Config;
  database: Database;
  /** A pino logger; by default one is made from the config. Pass `false` for silence. */
  logger?: FastifyBaseLogger | false;
  /** Close the database when the app closes (default true). */
  closeDatabase?: boolean;
  /** How webhook hosts resolve (default: the system's DNS); tests give a resolver of their own. */
  resolveHost?: Resolver;
}

const oneMebibyte = 1024 * 1024;
/** One string, not a list: @fastify/cors would join a list again on every request. */
const exposedHeaders = [
  'ETag',
  'Location',
  'X-Request-Id',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'Retry-After',
  'Idempotent-Replayed',
].join(', ');

/**
 * Security headers from helmet. A JSON API serves no HTML but /docs, whose page sets its own
 * policy; embed.js and the public API are read cross-origin by design. None of helmet's headers
 * here depends on the request, so its middleware runs once, at load, and every response gets the
 * resulting set in one call. (@fastify/helmet rebuilt the middleware on every request, ≈ 10 % of
 * the server's allocations under the claim benchmark; running helmet's chain of eleven
 * middlewares per request cost the public reads a few per cent more.)
 */
const securityHeaders: Record<string, string> = (() => {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: unknown) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  helmet({ contentSecurityPolicy: false, crossOriginResourcePolicy: { policy: 'cross-origin' } })(
    {} as IncomingMessage,
    response as unknown as ServerResponse,
    () => {},
  );
  return headers;
})();

function requestIdOf(request: { headers: Record<string, string | string[] | undefined> }): string {
  const given = request.headers['x-request-id'];
  // A v4 id: a request id needs no time order, and randomUUID draws from a cached entropy pool
  // (uuidv7 asked the system for random bytes on every request).
  return typeof given === 'string' && /^[\w.:@/+=-]{1,128}$/.test(given) ? given : randomUUID();
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A route's own CORS options over the global ones (read by @fastify/cors, untyped there). */
    cors?: Record<string, unknown>;
    /** The path carries a secret: logs show the route's pattern instead (core/logger.ts). */
    secretInPath?: boolean;
  }
  interface FastifyRequest {
    /** Set by @fastify/cors when it answered a preflight (untyped there). */
    corsPreflightEnabled: boolean;
  }
}

/** Paths any website may read (API.md §8): public schedules, the embed script, the OpenAPI document. */
const publicPrefix = '/v1/public/';
const publicPaths = ['/embed.js', '/openapi.json'];

function isPublicUrl(url: string): boolean {
  return url.startsWith(publicPrefix) || publicPaths.includes(url);
}

/** The CORS policy of public paths, over the authenticated one: any origin, never credentials. */
const publicCors = { origin: '*', credentials: false, maxAge: 7200 };

/**
 * Public answers are recomputed at most every 400 ms per process, the previous one served for up
 * to 300 ms more while that runs: a change made through any process shows in every process's
 * answers within 1 s (API.md §8), whatever the load, and no reader waits for a recomputation.
 */
const publicAnswersFreshForMs = 400;
const publicAnswersStaleForMs = 300;
const publicAnswersKept = 2_000;

export async function buildApp(options: BuildOptions): Promise<FastifyInstance> {
  const { config, database } = options;
  const logger = options.logger === undefined ? createLogger(config) : options.logger;
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    genReqId: requestIdOf,
    requestIdHeader: false,
    logController: new AccessLog({
      logger,
      requestIdLogLabel: 'requestId',
      // Probes would drown the log; their failures are still logged by the route.
      disableRequestLogging: (request: { url?: string }) => request.url?.startsWith('/health/') ?? false,
    }),
    bodyLimit: oneMebibyte,
    // Fastify's default (0) would let a request trickle in for ever; Node checks both limits on
    // an interval (30 s by default), made short enough to keep them.
    requestTimeout: Math.max(config.REQUEST_TIMEOUT_MS, config.HEADERS_TIMEOUT_MS + 1),
    http: {
      // Given at creation too, where Node checks headersTimeout ≤ requestTimeout.
      requestTimeout: Math.max(config.REQUEST_TIMEOUT_MS, config.HEADERS_TIMEOUT_MS + 1),
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1_000, config.HEADERS_TIMEOUT_MS),
    },
    trustProxy: config.TRUST_PROXY,
    // Requests arriving during shutdown get our own 503 problem (below), in-flight ones finish.
    return503OnClosing: false,
    // Requests Fastify rejects before routing (a malformed URL) still get a problem and a request id.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      return sendProblem(
        request,
        reply,
        new AppError('validation-failed', `The request cannot be routed: ${error.message}`),
      );
    },
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('database', database);
  app.decorate('db', database.db);
  app.decorate('config', config);
  if (options.closeDatabase !== false) app.addHook('onClose', () => database.close());

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Responses finished during shutdown close their connection, so keep-alive clients do not hold
  // the process open.
  // (Hooks that need no await take a callback: an async hook costs a promise on every request.)
  // The security headers go on every answer but a 304: a 304 only refreshes a stored answer,
  // which keeps the headers the 304 leaves out (RFC 9111 §4.3.4), and RFC 9110 §15.4.5 asks it to
  // carry little beyond its validators and caching fields; on a popular schedule's revalidations
  // the eleven headers were a third of the bytes sent.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (reply.statusCode !== 304) reply.headers(securityHeaders);
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  // Echo the request id on every response, errors included; it is on every log line already.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (closing) {
      return done(
        new AppError('unavailable', 'The server is shutting down; retry on another instance.', {
          headers: { 'retry-after': '1' },
        }),
      );
    }
    done();
  });

  await app.register(errorsPlugin);

  // Only JSON and JSON merge-patch bodies (anything else is 415). An empty body is "no body" (the
  // route's schema then decides), not a parse error: clients often send Content-Type on body-less POSTs.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/json', 'application/merge-patch+json'],
    { parseAs: 'string', bodyLimit: oneMebibyte },
    (request, body, done) => {
      const text = body.toString();
      if (text.trim() === '') return done(null, undefined);
      try {
        assertCleanJson(text);
      } catch (error) {
        return done(error as Error, undefined);
      }
      return parseJson(request, text, done);
    },
  );
  // Before routing's parameters and any hook that reads them.
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      assertCleanUrl(request.url);
    } catch (error) {
      return done(error as Error);
    }
    done();
  });

  // Public schedules and the embed are for any site; authenticated routes only for listed origins.
  // One static policy, with public routes overriding it in their route config: a delegator choosing
  // the policy per request made @fastify/cors normalise its options on every request (≈ 2 % of the
  // server's CPU and ≈ 10 % of its allocations under the claim benchmark).
  app.addHook('onRoute', (route) => {
    if (isPublicUrl(route.url)) route.config = { ...route.config, cors: publicCors };
  });
  await app.register(cors, {
    origin: config.CORS_ORIGINS.length > 0 ? config.CORS_ORIGINS : false,
    credentials: false,
    exposedHeaders,
    maxAge: 600,
  });
  // Preflights meet @fastify/cors's catch-all OPTIONS route, which carries the authenticated policy;
  // public paths get routes of their own, answered by the plugin's hook under the public policy.
  for (const url of [`${publicPrefix}*`, ...publicPaths]) {
    app.options(url, { schema: { hide: true }, config: { auth: 'public' } }, (request, reply) =>
      request.corsPreflightEnabled ? reply.send() : reply.callNotFound(),
    );
  }

  await app.register(openApiPlugin, { docs: true, webhooks: webhookDocs() });
  await app.register(authPlugin, { db: database.db, adminToken: config.ADMIN_TOKEN });

  // Counters live in each process's memory (docs/scaling.md): with N processes the effective limit
  // is up to N times higher, acceptable for abuse protection. Registered even when the general limit
  // is off, because sign-in has limits of its own.
  await app.register(rateLimit, {
    global: config.RATE_LIMIT_PER_MINUTE > 0,
    max: config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    enableDraftSpec: true,
    keyGenerator: (request) => {
      const principal = request.principal;
      if (principal?.kind === 'key') return `key:${principal.keyId}`;
      if (principal?.kind === 'volunteer') return `volunteer:${principal.tokenId}`;
      return `ip:${request.ip}`;
    },
    errorResponseBuilder: (_request, context) =>
      new AppError(
        'rate-limited',
        `Too many requests (the limit is ${context.max}); retry in ${context.after}.`,
      ),
  });

  // Unknown paths are rate-limited too: probing them must cost the prober, not us.
  app.setNotFoundHandler(
    config.RATE_LIMIT_PER_MINUTE > 0 ? { preHandler: app.rateLimit() } : {},
    sendNotFound,
  );

  // Logs mask the secret segment of a route that says its path carries one, matched or mistyped.
  app.addHook('onRoute', (route) => {
    if (route.config?.secretInPath) declareSecretPath(route.url);
  });

  // Before the routes: an onRoute hook sees the routes declared after it (it gives the write
  // routes their onSend hook, and the read-only ones nothing to run).
  const answers = new AnswerCache(publicAnswersFreshForMs, publicAnswersStaleForMs, publicAnswersKept);
  app.addHook('onRoute', forgetAnswersOnWrite(answers));

  await app.register(healthRoutes);
  await app.register(organizationRoutes, { prefix: '/v1' });
  await app.register(volunteerRoutes, { prefix: '/v1' });
  await app.register(roleRoutes, { prefix: '/v1' });
  await app.register(eventRoutes, { prefix: '/v1' });
  await app.register(shiftRoutes, { prefix: '/v1' });
  await app.register(signupRoutes, { prefix: '/v1' });
  await app.register(reportRoutes, { prefix: '/v1' });
  await app.register(auditRoutes, { prefix: '/v1' });
  await app.register(webhookRoutes, { prefix: '/v1', resolveHost: options.resolveHost ?? systemResolver });
  await app.register(publicRoutes, { prefix: '/v1', answers });
  await app.register(embedRoutes);

  return app;
}
