import { domainRoutes } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import {
  claimBody,
  listSignupsQuery,
  mySignupPage,
  mySignupsQuery,
  rosterPage,
  rosterQuery,
  shiftIdParams,
  signup,
  signupApi,
  signupPage,
  updateSignupBody,
} from './schemas.ts';
import {
  cancelSignup,
  checkIn,
  checkOut,
  claimShift,
  listMySignups,
  listRoster,
  listSignups,
  readSignup,
  updateSignup,
} from './service.ts';

/** API.md §7: claims, cancellations, attendance and the signup lists. */
export const signupRoutes = domainRoutes(signupApi, (route, app) => {
  route.write({
    url: '/shifts/:id/signups',
    auth: 'organiser-or-volunteer',
    operationId: 'claimShift',
    summary: 'Claim a place on a shift',
    description:
      'A volunteer token claims for itself (body `{}` or `{ note }`); an organiser assigns someone (`{ volunteerId, note? }`) ' +
      'and skips the publication and signup-window rules. `201` with status `confirmed`, or `waitlisted` when the shift is ' +
      'full and keeps a waitlist. Rules, in order, each its own 409: shift-cancelled, event-not-published, signup-closed, ' +
      'not-qualified, too-young, already-signed-up, overlapping-signup (with `conflictingSignupId`), shift-full.',
    params: shiftIdParams,
    body: claimBody,
    answer: signup,
    status: 201,
    sends: ['Location'],
    refusals: {
      409: [
        'shift-cancelled',
        'event-not-published',
        'signup-closed',
        'not-qualified',
        'too-young',
        'already-signed-up',
        'overlapping-signup',
        'shift-full',
      ],
    },
    // One statement takes the place: without an Idempotency-Key no transaction is needed.
    atomicEffect: true,
    run: async (db, principal, request) => {
      const claimed = await claimShift(db, principal, request.params.id, request.body ?? {}, app.db);
      return { body: claimed, headers: { location: `/v1/signups/${claimed.id}` } };
    },
  });

  route.get({
    url: '/shifts/:id/signups',
    auth: 'viewer',
    operationId: 'listShiftSignups',
    summary: "A shift's roster",
    description:
      "Every signup of the shift with the volunteer's name and contact, ordered by signup time, then id.",
    params: shiftIdParams,
    querystring: rosterQuery,
    answer: rosterPage,
    run: (db, principal, query, request) => listRoster(db, principal, request.params.id, query),
  });

  route.get({
    url: '/signups',
    auth: 'viewer',
    operationId: 'listSignups',
    summary: 'List signups across shifts',
    description:
      'Ordered by signup time, then id. `from`/`to` select signups whose shift overlaps [from, to).',
    querystring: listSignupsQuery,
    answer: signupPage,
    run: listSignups,
  });

  route.get({
    url: '/me/signups',
    auth: 'volunteer',
    operationId: 'listMySignups',
    tags: ['volunteer-accounts', 'signups'],
    summary: 'Your own signups',
    description: "Each with its shift (and the shift's event), ordered by the shift's start, then id.",
    querystring: mySignupsQuery,
    answer: mySignupPage,
    run: listMySignups,
  });

  route.read({
    url: '/signups/:id',
    auth: 'viewer-or-volunteer',
    operationId: 'getSignup',
    summary: 'Read a signup',
    description:
      'Viewers read any signup of the organisation; a volunteer only their own (another one is 404).',
    params: idParams,
    answer: signup,
    run: readSignup,
  });

  route.act({
    url: '/signups/:id/cancel',
    auth: 'organiser-or-volunteer',
    operationId: 'cancelSignup',
    summary: 'Cancel a signup',
    description:
      "By the volunteer who owns it (until the shift's `cancelUntil`, or its start: then 409 `cancellation-closed`) or by an " +
      'organiser. `lateCancellation` is true within 24 h of the start. The first eligible waitlisted volunteer is promoted at once.',
    params: idParams,
    answer: signup,
    refusals: { 409: ['cancellation-closed', 'invalid-state'] },
    run: cancelSignup,
  });

  route.act({
    url: '/signups/:id/check-in',
    auth: 'organiser',
    operationId: 'checkInSignup',
    summary: 'Record arrival',
    description: 'From 2 hours before the start, for a confirmed signup (else 409 `invalid-state`).',
    params: idParams,
    answer: signup,
    refusals: { 409: 'invalid-state' },
    run: checkIn,
  });

  route.act({
    url: '/signups/:id/check-out',
    auth: 'organiser',
    operationId: 'checkOutSignup',
    summary: 'Record departure',
    description:
      'Needs a check-in, no check-out yet and a started shift (else 409 `invalid-state`); marks the signup attended (if it is not yet) with the checked-in time as its hours, rounded to quarter hours.',
    params: idParams,
    answer: signup,
    refusals: { 409: 'invalid-state' },
    run: checkOut,
  });

  route.update({
    url: '/signups/:id',
    auth: 'organiser',
    operationId: 'updateSignup',
    summary: 'Record attendance, hours or the note',
    description:
      '`attended`/`no_show` only once the shift has started (else 409 `invalid-state`). `hours` defaults to the checked-in time, ' +
      'else the shift length, for attended signups. Honours `If-Match` (a stale ETag is 412).',
    params: idParams,
    body: updateSignupBody,
    answer: signup,
    refusals: { 409: 'invalid-state', 412: 'precondition-failed' },
    run: updateSignup,
  });
});
