import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { keyPrincipalOf, principalOf } from '../../core/auth.ts';
import { etagOf, ifMatchVersions } from '../../core/http-cache.ts';
import { respondToWrite } from '../../core/idempotency.ts';
import { problems } from '../../core/openapi.ts';
import { idParams, noContent } from '../../core/schemas.ts';
import {
  bulkCreateShiftsBody,
  createShiftBody,
  eventIdParams,
  listEventShiftsQuery,
  listShiftsQuery,
  shift,
  shiftList,
  shiftPage,
  updateShiftBody,
} from './schemas.ts';
import {
  assertEventVisible,
  cancelShift,
  createRecurringShifts,
  createShift,
  createShifts,
  deleteShift,
  getShift,
  listShifts,
  updateShift,
} from './service.ts';

/** API.md §6: shifts, per event and across events. */
export const shiftRoutes: FastifyPluginAsyncZod = async (app) => {
  const tags = ['shifts'];

  app.post(
    '/events/:eventId/shifts',
    {
      config: { auth: 'organiser', sends: ['Location', 'ETag'] },
      schema: {
        operationId: 'createShift',
        tags,
        summary: 'Create a shift',
        description:
          '`endsAt > startsAt`, at most 7 days, `capacity` 1–10000; `signupClosesAt` defaults to `startsAt`, ' +
          '`cancelUntil` to the start. An unknown `roleId` is a validation failure.',
        params: eventIdParams,
        body: createShiftBody,
        response: { 201: shift, ...problems({ 409: 'invalid-state' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const created = await createShift(tx, keyPrincipalOf(request), request.params.eventId, request.body);
        return {
          status: 201,
          body: created.shift,
          headers: { location: `/v1/shifts/${created.shift.id}`, etag: etagOf(created.version) },
        };
      }),
  );

  app.post(
    '/events/:eventId/shifts/bulk',
    {
      config: { auth: 'organiser' },
      schema: {
        operationId: 'createShiftsInBulk',
        tags,
        summary: 'Create many shifts at once',
        description:
          'Either `{ shifts: [...] }` (up to 500) or a `template` repeated by an RFC 5545 `recurrence` from ' +
          "`startDate` at `startTime`, wall-clock in the event's time zone (DST-correct), up to 500 occurrences " +
          '(COUNT or UNTIL required). All or nothing. Returned in start order.',
        params: eventIdParams,
        body: bulkCreateShiftsBody,
        response: { 201: shiftList, ...problems({ 409: 'invalid-state' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const principal = keyPrincipalOf(request);
        const { eventId } = request.params;
        const body = request.body;
        const created = body.shifts
          ? await createShifts(tx, principal, eventId, body.shifts, (index) => `body.shifts.${index}.roleId`)
          : await createRecurringShifts(tx, principal, eventId, body.template ?? { capacity: 1 }, {
              startDate: body.startDate ?? '',
              startTime: body.startTime ?? '',
              durationMinutes: body.durationMinutes ?? 0,
              recurrence: body.recurrence ?? '',
            });
        return { status: 201, body: { data: created } };
      }),
  );

  app.get(
    '/events/:eventId/shifts',
    {
      config: { auth: 'viewer-or-volunteer' },
      schema: {
        operationId: 'listEventShifts',
        tags,
        summary: "List an event's shifts",
        description:
          'Ordered by `startsAt`, then id. Volunteers see published events only, and each shift carries their `eligibility`.',
        params: eventIdParams,
        querystring: listEventShiftsQuery,
        response: { 200: shiftPage },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await assertEventVisible(app.db, principal, request.params.eventId);
      return listShifts(app.db, principal, { ...request.query, eventId: request.params.eventId });
    },
  );

  app.get(
    '/shifts',
    {
      config: { auth: 'viewer-or-volunteer' },
      schema: {
        operationId: 'listShifts',
        tags,
        summary: 'List shifts across events',
        description:
          'Ordered by `startsAt`, then id. Volunteers see the shifts of published events only, each with their `eligibility`.',
        querystring: listShiftsQuery,
        response: { 200: shiftPage },
      },
    },
    (request) => listShifts(app.db, principalOf(request), request.query),
  );

  app.get(
    '/shifts/:id',
    {
      config: { auth: 'viewer-or-volunteer', sends: ['ETag'] },
      schema: {
        operationId: 'getShift',
        tags,
        summary: 'Read a shift',
        description: 'Volunteers can read the shifts of published events, with their `eligibility`.',
        params: idParams,
        response: { 200: shift },
      },
    },
    async (request, reply) => {
      const found = await getShift(app.db, principalOf(request), request.params.id);
      return reply.header('etag', etagOf(found.version)).send(found.shift);
    },
  );

  app.patch(
    '/shifts/:id',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'updateShift',
        tags,
        summary: 'Update a shift',
        description:
          'Send `If-Match`. Raising `capacity` promotes waitlisted volunteers at once; lowering it below ' +
          '`confirmedCount` is 409 `capacity-below-confirmed`; new times that would make a confirmed volunteer ' +
          'overlap another of their shifts are 409 `overlapping-signup`.',
        params: idParams,
        body: updateShiftBody,
        response: {
          200: shift,
          ...problems({
            409: ['capacity-below-confirmed', 'overlapping-signup', 'invalid-state'],
            412: 'precondition-failed',
          }),
        },
      },
    },
    async (request, reply) => {
      const updated = await app.db.transaction((tx) =>
        updateShift(tx, keyPrincipalOf(request), request.params.id, request.body, ifMatchVersions(request)),
      );
      return reply.header('etag', etagOf(updated.version)).send(updated.shift);
    },
  );

  app.post(
    '/shifts/:id/cancel',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'cancelShift',
        tags,
        summary: 'Cancel a shift',
        description: 'Cancels the shift and its active signups.',
        params: idParams,
        response: { 200: shift, ...problems({ 409: 'invalid-state' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const cancelled = await cancelShift(tx, keyPrincipalOf(request), request.params.id);
        return { status: 200, body: cancelled.shift, headers: { etag: etagOf(cancelled.version) } };
      }),
  );

  app.delete(
    '/shifts/:id',
    {
      config: { auth: 'organiser' },
      schema: {
        operationId: 'deleteShift',
        tags,
        summary: 'Delete a shift',
        description:
          'Only a shift that never had a signup (else 409 `shift-has-signups`: cancel it instead).',
        params: idParams,
        response: { 204: noContent, ...problems({ 409: 'shift-has-signups' }) },
      },
    },
    async (request, reply) => {
      await app.db.transaction((tx) => deleteShift(tx, keyPrincipalOf(request), request.params.id));
      return reply.code(204).send();
    },
  );
};
