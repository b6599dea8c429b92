import { domainRoutes } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import {
  bulkCreateShiftsBody,
  createShiftBody,
  eventIdParams,
  listEventShiftsQuery,
  listShiftsQuery,
  shift,
  shiftApi,
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
export const shiftRoutes = domainRoutes(shiftApi, (route) => {
  route.create({
    url: '/events/:eventId/shifts',
    auth: 'organiser',
    operationId: 'createShift',
    summary: 'Create a shift',
    description:
      '`endsAt > startsAt`, at most 7 days, `capacity` 1–10000; `signupClosesAt` defaults to `startsAt`, ' +
      '`cancelUntil` to the start. An unknown `roleId` is a validation failure.',
    params: eventIdParams,
    body: createShiftBody,
    answer: shift,
    refusals: { 409: 'invalid-state' },
    run: (tx, principal, body, request) => createShift(tx, principal, request.params.eventId, body),
  });

  route.write({
    url: '/events/:eventId/shifts/bulk',
    auth: 'organiser',
    operationId: 'createShiftsInBulk',
    summary: 'Create many shifts at once',
    description:
      'Either `{ shifts: [...] }` (up to 500) or a `template` repeated by an RFC 5545 `recurrence` from ' +
      "`startDate` at `startTime`, wall-clock in the event's time zone (DST-correct), up to 500 occurrences " +
      '(COUNT or UNTIL required). All or nothing. Returned in start order.',
    params: eventIdParams,
    body: bulkCreateShiftsBody,
    answer: shiftList,
    status: 201,
    sends: [],
    refusals: { 409: 'invalid-state' },
    run: async (tx, principal, { params: { eventId }, body }) => {
      const created = body.shifts
        ? await createShifts(tx, principal, eventId, body.shifts, (index) => `body.shifts.${index}.roleId`)
        : await createRecurringShifts(tx, principal, eventId, body.template ?? { capacity: 1 }, {
            startDate: body.startDate ?? '',
            startTime: body.startTime ?? '',
            durationMinutes: body.durationMinutes ?? 0,
            recurrence: body.recurrence ?? '',
          });
      return { body: { data: created } };
    },
  });

  route.get({
    url: '/events/:eventId/shifts',
    auth: 'viewer-or-volunteer',
    operationId: 'listEventShifts',
    summary: "List an event's shifts",
    description:
      'Ordered by `startsAt`, then id. Volunteers see published events only, and each shift carries their `eligibility`.',
    params: eventIdParams,
    querystring: listEventShiftsQuery,
    answer: shiftPage,
    run: async (db, principal, query, { params: { eventId } }) => {
      await assertEventVisible(db, principal, eventId);
      return listShifts(db, principal, { ...query, eventId });
    },
  });

  route.get({
    url: '/shifts',
    auth: 'viewer-or-volunteer',
    operationId: 'listShifts',
    summary: 'List shifts across events',
    description:
      'Ordered by `startsAt`, then id. Volunteers see the shifts of published events only, each with their `eligibility`.',
    querystring: listShiftsQuery,
    answer: shiftPage,
    run: listShifts,
  });

  route.read({
    url: '/shifts/:id',
    auth: 'viewer-or-volunteer',
    operationId: 'getShift',
    summary: 'Read a shift',
    description: 'Volunteers can read the shifts of published events, with their `eligibility`.',
    params: idParams,
    answer: shift,
    run: getShift,
  });

  route.update({
    url: '/shifts/:id',
    auth: 'organiser',
    operationId: 'updateShift',
    summary: 'Update a shift',
    description:
      'Send `If-Match`. Raising `capacity` promotes waitlisted volunteers at once; lowering it below ' +
      '`confirmedCount` is 409 `capacity-below-confirmed`; new times that would make a confirmed volunteer ' +
      'overlap another of their shifts are 409 `overlapping-signup`.',
    params: idParams,
    body: updateShiftBody,
    answer: shift,
    refusals: {
      409: ['capacity-below-confirmed', 'overlapping-signup', 'invalid-state'],
      412: 'precondition-failed',
    },
    run: updateShift,
  });

  route.act({
    url: '/shifts/:id/cancel',
    auth: 'organiser',
    operationId: 'cancelShift',
    summary: 'Cancel a shift',
    description: 'Cancels the shift and its active signups.',
    params: idParams,
    answer: shift,
    refusals: { 409: 'invalid-state' },
    run: cancelShift,
  });

  route.empty({
    method: 'DELETE',
    url: '/shifts/:id',
    auth: 'organiser',
    operationId: 'deleteShift',
    summary: 'Delete a shift',
    description: 'Only a shift that never had a signup (else 409 `shift-has-signups`: cancel it instead).',
    params: idParams,
    refusals: { 409: 'shift-has-signups' },
    run: deleteShift,
  });
});
