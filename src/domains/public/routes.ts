import { readFileSync } from 'node:fs';
import type {
  FastifyContextConfig,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { noneMatch } from '../../core/http-cache.ts';
import type { RequestOf } from '../../core/operations.ts';
import { packagePath } from '../../package-root.ts';
import { type Answer, type AnswerCache, answerOf, withHookLast } from './answers.ts';
import {
  listPublicEventsQuery,
  listPublicShiftsQuery,
  orgSlugParams,
  publicEvent,
  publicEventPage,
  publicEventParams,
  publicOrganization,
  publicShiftPage,
} from './schemas.ts';
import {
  eventCalendar,
  getPublicEvent,
  listPublicEvents,
  listPublicShifts,
  organizationCalendar,
  type PublicOrganization,
  publicOrganization as readOrganization,
  volunteerCalendar,
} from './service.ts';

const notModified = z.undefined().describe('Not modified: the `ETag` you sent is current; use your copy.');
const cacheControl = 'public, max-age=30';
const calendarType = 'text/calendar; charset=utf-8';
const calendarAnswer = {
  description: 'An iCalendar feed (RFC 5545).',
  content: {
    'text/calendar': {
      schema: z.string().describe('RFC 5545 text: VCALENDAR with VTIMEZONE and VEVENT components.'),
    },
  },
};

/**
 * API.md §8: public schedules, for any website without a token. Every answer is cached bytes with
 * a hash as its ETag (answers.ts); `If-None-Match` gets `304` with the same ETag and Cache-Control.
 */
export const publicRoutes: FastifyPluginAsyncZod<{ answers: AnswerCache }> = async (app, { answers }) => {
  const tags = ['public'];
  const config: FastifyContextConfig = { auth: 'public', sends: ['ETag', 'Cache-Control'] };

  /** Sends the answer under `key` (computed by `compute`), or 304 when the client has it. */
  function send(request: FastifyRequest, response: FastifyReply, answer: Answer) {
    response.header('etag', answer.etag).header('cache-control', cacheControl);
    if (noneMatch(request, answer.etag)) return response.code(304).send();
    return response.type(answer.type).send(answer.body);
  }

  /** Answers with the cached answer of this URL, computed by `compute` when there is none. */
  async function reply(
    request: FastifyRequest,
    response: FastifyReply,
    compute: () => Promise<{ orgId: string; body: string }>,
    type?: string,
  ) {
    return send(request, response, await answers.get(request.url, compute, type));
  }

  // A ready answer for this very URL (it passed validation when it was made) is sent from the
  // route's last onRequest hook, before the access check, validation and handler: a popular
  // event's readers and revalidations cost next to nothing (bench/reads.ts, R1 and R2).
  // It is the *last* onRequest hook so that it still comes after every hook that shapes a normal
  // answer: the app's (request id, security headers, the shutdown refusal), CORS's and auth's
  // run as app-wide onRequest hooks, before any route's own; the rate limit is a route hook that
  // @fastify/rate-limit adds from its onRoute hook, which runs before this plugin's (registered
  // earlier), so a cached answer still counts and carries the RateLimit headers (public.test.ts,
  // "answers sent from the process cache"). What it skips does nothing on these routes: the
  // access check of a `public` rule (preParsing) and body parsing (none for GET). The access log
  // is written when the response finishes, whichever hook sent it.
  const sendReadyAnswer: onRequestHookHandler = (request, response, done) => {
    const answer = request.method === 'GET' ? answers.peek(request.url) : undefined;
    if (answer === undefined) return done();
    send(request, response, answer);
  };
  app.addHook('onRoute', (route) => {
    route.onRequest = withHookLast(route.onRequest, sendReadyAnswer);
  });

  /** The JSON of `data` as its response schema encodes it (timestamps as RFC 3339 text). */
  const encoded = <T extends z.ZodType>(schema: T, data: z.output<T>) =>
    JSON.stringify(z.encode(schema, data));

  /**
   * A JSON read of an organisation's public data: the organisation is found by the path's slug
   * (404 when unknown), `read` gives the data, and the answer schema both documents and encodes it.
   */
  function jsonRead<P extends z.ZodType<{ orgSlug: string }>, Q, A extends z.ZodType>(spec: {
    url: string;
    operationId: string;
    summary: string;
    description: string;
    params: P;
    querystring?: Q;
    answer: A;
    read: (organization: PublicOrganization, request: RequestOf<P, Q, undefined>) => Promise<z.output<A>>;
  }) {
    // A plain FastifyInstance: the handler's types come from `spec`, not from the provider.
    (app as FastifyInstance).route({
      method: 'GET',
      url: spec.url,
      config,
      schema: {
        operationId: spec.operationId,
        tags,
        summary: spec.summary,
        description: spec.description,
        params: spec.params,
        ...(spec.querystring && { querystring: spec.querystring }),
        response: { 200: spec.answer, 304: notModified },
      },
      handler: (request, response) =>
        reply(request, response, async () => {
          const decoded = request as RequestOf<P, Q, undefined>;
          const { orgSlug } = decoded.params as { orgSlug: string };
          const organization = await readOrganization(app.db, orgSlug);
          return {
            orgId: organization.id,
            body: encoded(spec.answer, await spec.read(organization, decoded)),
          };
        }),
    });
  }

  jsonRead({
    url: '/public/:orgSlug',
    operationId: 'getPublicOrganization',
    summary: 'An organisation, publicly',
    description: 'Its name, slug and time zone. No token needed.',
    params: orgSlugParams,
    answer: publicOrganization,
    read: async ({ id: _, ...organization }) => organization,
  });

  jsonRead({
    url: '/public/:orgSlug/events',
    operationId: 'listPublicEvents',
    summary: "An organisation's listed events",
    description:
      'Published events with visibility `public`, ordered by `startsAt` (events without shifts last), then id. ' +
      '`from`/`to` select events with a shift overlapping [from, to).',
    params: orgSlugParams,
    querystring: listPublicEventsQuery,
    answer: publicEventPage,
    read: ({ id }, request) => listPublicEvents(app.db, id, request.query),
  });

  jsonRead({
    url: '/public/:orgSlug/events/:eventId',
    operationId: 'getPublicEvent',
    summary: 'One event, publicly',
    description: 'A published event that is `public` or `unlisted`; any other is 404.',
    params: publicEventParams,
    answer: publicEvent,
    read: ({ id }, request) => getPublicEvent(app.db, id, request.params.eventId),
  });

  jsonRead({
    url: '/public/:orgSlug/events/:eventId/shifts',
    operationId: 'listPublicShifts',
    summary: "An event's shifts, publicly",
    description:
      'Ordered by `startsAt`, then id; up to 1,000 in one page (the default), so that a page gets a whole event. ' +
      '`status` is derived as for organisers; `available=true` keeps the shifts with a free place.',
    params: publicEventParams,
    querystring: listPublicShiftsQuery,
    answer: publicShiftPage,
    read: ({ id }, request) => listPublicShifts(app.db, id, request.params.eventId, request.query),
  });

  app.get(
    '/public/:orgSlug/calendar.ics',
    {
      config,
      schema: {
        operationId: 'getOrganizationCalendar',
        tags,
        summary: "An organisation's calendar feed",
        description:
          'iCalendar (RFC 5545): one VEVENT per shift of its listed events that is not cancelled, from 30 days ago on; ' +
          'UIDs stable, SEQUENCE growing when times change, a VTIMEZONE for every zone used.',
        params: orgSlugParams,
        response: { 200: calendarAnswer, 304: notModified },
      },
    },
    (request, response) =>
      reply(request, response, () => organizationCalendar(app.db, request.params.orgSlug), calendarType),
  );

  app.get(
    '/public/:orgSlug/events/:eventId/calendar.ics',
    {
      config,
      schema: {
        operationId: 'getEventCalendar',
        tags,
        summary: "An event's calendar feed",
        description:
          'iCalendar (RFC 5545) of the shifts of a public or unlisted event that are not cancelled.',
        params: publicEventParams,
        response: { 200: calendarAnswer, 304: notModified },
      },
    },
    (request, response) => {
      const { orgSlug, eventId } = request.params;
      return reply(request, response, () => eventCalendar(app.db, orgSlug, eventId), calendarType);
    },
  );

  app.get(
    '/calendar/:feedToken.ics',
    {
      config: { auth: 'public', sends: ['ETag', 'Cache-Control'], secretInPath: true },
      schema: {
        operationId: 'getVolunteerCalendar',
        tags: ['volunteer-accounts'],
        summary: "A volunteer's own calendar feed",
        description:
          'The URL is `calendarUrl` of GET /v1/me: your confirmed shifts from 30 days ago on, each with a reminder 24 h before. ' +
          'A rotated URL is 404.',
        params: z.strictObject({ feedToken: z.string().max(64).describe('The secret of the feed URL.') }),
        response: { 200: calendarAnswer, 304: notModified },
      },
    },
    async (request, response) => {
      // Not in the shared cache: a rotated URL must be 404 at once in every process.
      const answer = answerOf(await volunteerCalendar(app.db, request.params.feedToken));
      response.header('etag', answer.etag).header('cache-control', 'private, max-age=30');
      if (noneMatch(request, answer.etag)) return response.code(304).send();
      return response.type(calendarType).send(answer.body);
    },
  );
};

/** The embed script, read once: its bytes and their hash as ETag. */
const embedScript = answerOf(readFileSync(packagePath('src', 'domains', 'public', 'embed.js'), 'utf8'));

/**
 * GET /embed.js (API.md §8 "The embed"), outside /v1: the <together-schedule> web component.
 * Cached for a day and revalidated by ETag, so partner pages load it once and learn of a new
 * version within a day.
 */
export const embedRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/embed.js',
    {
      config: { auth: 'public', sends: ['ETag', 'Cache-Control'] },
      schema: {
        operationId: 'getEmbedScript',
        tags: ['public'],
        summary: 'The embeddable schedule widget',
        description:
          'A dependency-free script defining `<together-schedule org="slug" event="id" data-signup-url="…">` ' +
          "(docs/embed.md): the event's shifts in a shadow root, styled by CSS custom properties and `::part()`.",
        response: {
          200: {
            description: 'The script.',
            content: { 'application/javascript': { schema: z.string().describe('JavaScript source.') } },
          },
          304: notModified,
        },
      },
    },
    async (request, reply) => {
      reply.header('etag', embedScript.etag).header('cache-control', 'public, max-age=86400');
      if (noneMatch(request, embedScript.etag)) return reply.code(304).send();
      return reply.type('application/javascript; charset=utf-8').send(embedScript.body);
    },
  );
};
