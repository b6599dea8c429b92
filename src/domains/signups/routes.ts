import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { keyPrincipalOf, principalOf, volunteerPrincipalOf } from '../../core/auth.ts';
import { etagOf, ifMatchVersions } from '../../core/http-cache.ts';
import { respondToWrite } from '../../core/idempotency.ts';
import { problems } from '../../core/openapi.ts';
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
  type VersionedSignup,
} from './service.ts';

/** A signup write's answer: the signup, with its version as the ETag (API.md §1 "concurrency"). */
function versioned(found: VersionedSignup) {
  return { status: 200, body: found.signup, headers: { etag: etagOf(found.version) } };
}

/** API.md §7: claims, cancellations, attendance and the signup lists. */
export const signupRoutes: FastifyPluginAsyncZod = async (app) => {
  const tags = ['signups'];

  app.post(
    '/shifts/:id/signups',
    {
      config: { auth: 'viewer-or-volunteer', sends: ['Location'] },
      schema: {
        operationId: 'claimShift',
        tags,
        summary: 'Claim a place on a shift',
        description:
          'A volunteer token claims for itself (body `{}` or `{ note }`); an organiser assigns someone (`{ volunteerId, note? }`) ' +
          'and skips the publication and signup-window rules. `201` with status `confirmed`, or `waitlisted` when the shift is ' +
          'full and keeps a waitlist. Rules, in order, each its own 409: shift-cancelled, event-not-published, signup-closed, ' +
          'not-qualified, too-young, already-signed-up, overlapping-signup (with `conflictingSignupId`), shift-full.',
        params: shiftIdParams,
        body: claimBody,
        response: {
          201: signup,
          ...problems({
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
          }),
        },
      },
    },
    (request, reply) =>
      respondToWrite(
        request,
        reply,
        app.db,
        async (db) => {
          const claimed = await claimShift(
            db,
            principalOf(request),
            request.params.id,
            request.body ?? {},
            app.db,
          );
          return { status: 201, body: claimed, headers: { location: `/v1/signups/${claimed.id}` } };
        },
        // One statement takes the place: without an Idempotency-Key no transaction is needed.
        { atomicEffect: true },
      ),
  );

  app.get(
    '/shifts/:id/signups',
    {
      config: { auth: 'viewer' },
      schema: {
        operationId: 'listShiftSignups',
        tags,
        summary: "A shift's roster",
        description:
          "Every signup of the shift with the volunteer's name and contact, ordered by signup time, then id.",
        params: shiftIdParams,
        querystring: rosterQuery,
        response: { 200: rosterPage },
      },
    },
    (request) => listRoster(app.db, keyPrincipalOf(request), request.params.id, request.query),
  );

  app.get(
    '/signups',
    {
      config: { auth: 'viewer' },
      schema: {
        operationId: 'listSignups',
        tags,
        summary: 'List signups across shifts',
        description:
          'Ordered by signup time, then id. `from`/`to` select signups whose shift overlaps [from, to).',
        querystring: listSignupsQuery,
        response: { 200: signupPage },
      },
    },
    (request) => listSignups(app.db, keyPrincipalOf(request), request.query),
  );

  app.get(
    '/me/signups',
    {
      config: { auth: 'volunteer' },
      schema: {
        operationId: 'listMySignups',
        tags: ['volunteer-accounts', ...tags],
        summary: 'Your own signups',
        description: "Each with its shift (and the shift's event), ordered by the shift's start, then id.",
        querystring: mySignupsQuery,
        response: { 200: mySignupPage },
      },
    },
    (request) => listMySignups(app.db, volunteerPrincipalOf(request), request.query),
  );

  app.get(
    '/signups/:id',
    {
      config: { auth: 'viewer-or-volunteer', sends: ['ETag'] },
      schema: {
        operationId: 'getSignup',
        tags,
        summary: 'Read a signup',
        description:
          'Viewers read any signup of the organisation; a volunteer only their own (another one is 404).',
        params: idParams,
        response: { 200: signup },
      },
    },
    async (request, reply) => {
      const found = await readSignup(app.db, principalOf(request), request.params.id);
      return reply.header('etag', etagOf(found.version)).send(found.signup);
    },
  );

  app.post(
    '/signups/:id/cancel',
    {
      config: { auth: 'viewer-or-volunteer', sends: ['ETag'] },
      schema: {
        operationId: 'cancelSignup',
        tags,
        summary: 'Cancel a signup',
        description:
          "By the volunteer who owns it (until the shift's `cancelUntil`, or its start: then 409 `cancellation-closed`) or by an " +
          'organiser. `lateCancellation` is true within 24 h of the start. The first eligible waitlisted volunteer is promoted at once.',
        params: idParams,
        response: { 200: signup, ...problems({ 409: ['cancellation-closed', 'invalid-state'] }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        return versioned(await cancelSignup(tx, principalOf(request), request.params.id));
      }),
  );

  app.post(
    '/signups/:id/check-in',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'checkInSignup',
        tags,
        summary: 'Record arrival',
        description: 'From 2 hours before the start, for a confirmed signup (else 409 `invalid-state`).',
        params: idParams,
        response: { 200: signup, ...problems({ 409: 'invalid-state' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) =>
        versioned(await checkIn(tx, keyPrincipalOf(request), request.params.id)),
      ),
  );

  app.post(
    '/signups/:id/check-out',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'checkOutSignup',
        tags,
        summary: 'Record departure',
        description:
          'Needs a check-in, no check-out yet and a started shift (else 409 `invalid-state`); marks the signup attended (if it is not yet) with the checked-in time as its hours, rounded to quarter hours.',
        params: idParams,
        response: { 200: signup, ...problems({ 409: 'invalid-state' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) =>
        versioned(await checkOut(tx, keyPrincipalOf(request), request.params.id)),
      ),
  );

  app.patch(
    '/signups/:id',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'updateSignup',
        tags,
        summary: 'Record attendance, hours or the note',
        description:
          '`attended`/`no_show` only once the shift has started (else 409 `invalid-state`). `hours` defaults to the checked-in time, ' +
          'else the shift length, for attended signups. Honours `If-Match` (a stale ETag is 412).',
        params: idParams,
        body: updateSignupBody,
        response: { 200: signup, ...problems({ 409: 'invalid-state', 412: 'precondition-failed' }) },
      },
    },
    async (request, reply) => {
      const updated = await app.db.transaction((tx) =>
        updateSignup(tx, keyPrincipalOf(request), request.params.id, request.body, ifMatchVersions(request)),
      );
      return reply.header('etag', etagOf(updated.version)).send(updated.signup);
    },
  );
};
