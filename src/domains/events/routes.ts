import { domainRoutes } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import { createEventBody, event, eventApi, eventPage, listEventsQuery, updateEventBody } from './schemas.ts';
import { cancelEvent, createEvent, deleteEvent, getEvent, listEvents, updateEvent } from './service.ts';

/** API.md §5: events. Their shifts are under /v1/events/{eventId}/shifts (shifts domain). */
export const eventRoutes = domainRoutes(eventApi, (route) => {
  route.create({
    url: '/events',
    auth: 'organiser',
    operationId: 'createEvent',
    summary: 'Create an event',
    description: "Defaults: the organisation's time zone, `public`, `draft`.",
    body: createEventBody,
    answer: event,
    run: createEvent,
  });

  route.get({
    url: '/events',
    auth: 'viewer',
    operationId: 'listEvents',
    summary: 'List events',
    description:
      'Ordered by `startsAt` (events without shifts last), then id. `from`/`to` select events with a shift overlapping [from, to).',
    querystring: listEventsQuery,
    answer: eventPage,
    run: (db, principal, query) => listEvents(db, principal.orgId, query),
  });

  route.read({
    url: '/events/:id',
    auth: 'viewer',
    operationId: 'getEvent',
    summary: 'Read an event',
    description: 'The `ETag` header is the `If-Match` value for PATCH.',
    params: idParams,
    answer: event,
    run: (db, principal, id) => getEvent(db, principal.orgId, id),
  });

  route.update({
    url: '/events/:id',
    auth: 'organiser',
    operationId: 'updateEvent',
    summary: 'Update an event',
    description: 'Send `If-Match`; a cancelled event cannot change (409 `invalid-state`).',
    params: idParams,
    body: updateEventBody,
    answer: event,
    refusals: { 409: 'invalid-state', 412: 'precondition-failed' },
    run: updateEvent,
  });

  route.act({
    url: '/events/:id/cancel',
    auth: 'organiser',
    operationId: 'cancelEvent',
    summary: 'Cancel an event',
    description: 'Cancels the event, all its shifts and all their active signups, at once.',
    params: idParams,
    answer: event,
    refusals: { 409: 'invalid-state' },
    run: cancelEvent,
  });

  route.empty({
    method: 'DELETE',
    url: '/events/:id',
    auth: 'organiser',
    operationId: 'deleteEvent',
    summary: 'Delete a draft event',
    description:
      'Only a draft (409 `invalid-state`, checked first) with no signups (409 `event-has-signups`).',
    params: idParams,
    refusals: { 409: ['invalid-state', 'event-has-signups'] },
    run: deleteEvent,
  });
});
