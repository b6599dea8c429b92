import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { keyPrincipalOf } from '../../core/auth.ts';
import { etagOf, ifMatchVersions } from '../../core/http-cache.ts';
import { respondToWrite } from '../../core/idempotency.ts';
import { problems } from '../../core/openapi.ts';
import { idParams, noContent } from '../../core/schemas.ts';
import { createEventBody, event, eventPage, listEventsQuery, updateEventBody } from './schemas.ts';
import { cancelEvent, createEvent, deleteEvent, getEvent, listEvents, updateEvent } from './service.ts';

/** API.md §5: events. Their shifts are under /v1/events/{eventId}/shifts (shifts domain). */
export const eventRoutes: FastifyPluginAsyncZod = async (app) => {
  const tags = ['events'];

  app.post(
    '/events',
    {
      config: { auth: 'organiser', sends: ['Location', 'ETag'] },
      schema: {
        operationId: 'createEvent',
        tags,
        summary: 'Create an event',
        description: "Defaults: the organisation's time zone, `public`, `draft`.",
        body: createEventBody,
        response: { 201: event },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const created = await createEvent(tx, keyPrincipalOf(request), request.body);
        return {
          status: 201,
          body: created.event,
          headers: { location: `/v1/events/${created.event.id}`, etag: etagOf(created.version) },
        };
      }),
  );

  app.get(
    '/events',
    {
      config: { auth: 'viewer' },
      schema: {
        operationId: 'listEvents',
        tags,
        summary: 'List events',
        description:
          'Ordered by `startsAt` (events without shifts last), then id. `from`/`to` select events with a shift overlapping [from, to).',
        querystring: listEventsQuery,
        response: { 200: eventPage },
      },
    },
    (request) => listEvents(app.db, keyPrincipalOf(request).orgId, request.query),
  );

  app.get(
    '/events/:id',
    {
      config: { auth: 'viewer', sends: ['ETag'] },
      schema: {
        operationId: 'getEvent',
        tags,
        summary: 'Read an event',
        description: 'The `ETag` header is the `If-Match` value for PATCH.',
        params: idParams,
        response: { 200: event },
      },
    },
    async (request, reply) => {
      const found = await getEvent(app.db, keyPrincipalOf(request).orgId, request.params.id);
      return reply.header('etag', etagOf(found.version)).send(found.event);
    },
  );

  app.patch(
    '/events/:id',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'updateEvent',
        tags,
        summary: 'Update an event',
        description: 'Send `If-Match`; a cancelled event cannot change (409 `invalid-state`).',
        params: idParams,
        body: updateEventBody,
        response: { 200: event, ...problems({ 409: 'invalid-state', 412: 'precondition-failed' }) },
      },
    },
    async (request, reply) => {
      const updated = await app.db.transaction((tx) =>
        updateEvent(tx, keyPrincipalOf(request), request.params.id, request.body, ifMatchVersions(request)),
      );
      return reply.header('etag', etagOf(updated.version)).send(updated.event);
    },
  );

  app.post(
    '/events/:id/cancel',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'cancelEvent',
        tags,
        summary: 'Cancel an event',
        description: 'Cancels the event, all its shifts and all their active signups, at once.',
        params: idParams,
        response: { 200: event, ...problems({ 409: 'invalid-state' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const cancelled = await cancelEvent(tx, keyPrincipalOf(request), request.params.id);
        return { status: 200, body: cancelled.event, headers: { etag: etagOf(cancelled.version) } };
      }),
  );

  app.delete(
    '/events/:id',
    {
      config: { auth: 'organiser' },
      schema: {
        operationId: 'deleteEvent',
        tags,
        summary: 'Delete a draft event',
        description:
          'Only a draft (409 `invalid-state`, checked first) with no signups (409 `event-has-signups`).',
        params: idParams,
        response: { 204: noContent, ...problems({ 409: ['invalid-state', 'event-has-signups'] }) },
      },
    },
    async (request, reply) => {
      await app.db.transaction((tx) => deleteEvent(tx, keyPrincipalOf(request), request.params.id));
      return reply.code(204).send();
    },
  );
};
