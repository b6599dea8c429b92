import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { volunteerPrincipalOf } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { etagOf, ifMatchVersions } from '../../core/http-cache.ts';
import { respondToWrite } from '../../core/idempotency.ts';
import { instanceSecret } from '../../core/instance-secrets.ts';
import { problems } from '../../core/openapi.ts';
import { domainRoutes, operations } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import { calendarKeyName, calendarTokenOf, rotateCalendarToken } from './calendar-token.ts';
import {
  calendarFeed,
  createVolunteerBody,
  issuedToken,
  listVolunteersQuery,
  me,
  orgSlugParams,
  qualificationParams,
  registerBody,
  session,
  signInBody,
  updateProfileBody,
  updateVolunteerBody,
  volunteer,
  volunteerApi,
  volunteerPage,
} from './schemas.ts';
import {
  createVolunteer,
  eraseVolunteer,
  getProfile,
  getVolunteer,
  grantQualification,
  issueVolunteerToken,
  listVolunteers,
  type Profile,
  registerVolunteer,
  revokeQualification,
  revokeSession,
  signIn,
  updateProfile,
  updateVolunteer,
} from './service.ts';

const fifteenMinutes = 15 * 60 * 1000;

type SignInLimiter = ReturnType<FastifyInstance['createRateLimit']>;

/** Counts a sign-in attempt against its email; over the limit: 429 `rate-limited` with Retry-After. */
async function limitSignInsPerEmail(limiter: SignInLimiter, request: FastifyRequest, reply: FastifyReply) {
  const limit = await limiter(request);
  if (limit.isAllowed || !limit.isExceeded) return;
  reply
    .header('ratelimit-limit', limit.max)
    .header('ratelimit-remaining', 0)
    .header('ratelimit-reset', limit.ttlInSeconds);
  throw new AppError(
    'rate-limited',
    `Too many sign-in attempts for this email (the limit is ${limit.max}); retry in ${limit.ttlInSeconds} seconds.`,
    { headers: { 'retry-after': String(limit.ttlInSeconds) } },
  );
}

/** The API's own origin as the client reached it (behind a proxy: as TRUST_PROXY allows). */
function originOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

const calendarPath = (token: string) => `/v1/calendar/${token}.ics`;

/** API.md §3: volunteers, their tokens, self-registration and sign-in, and /v1/me. */
export const volunteerRoutes = domainRoutes(volunteerApi, (route, app) => {
  /** GET and PATCH /v1/me: the profile with its calendar feed URL, its version as the ETag. */
  const sendMe = async (
    request: FastifyRequest,
    reply: FastifyReply,
    own: { profile: Profile; version: number },
  ) =>
    reply
      .header('etag', etagOf(own.version))
      .send({ ...own.profile, calendarUrl: await calendarUrlOf(request) });

  /** The volunteer's private feed URL, as this request reached the API. */
  const calendarUrlOf = async (request: FastifyRequest) => {
    const principal = volunteerPrincipalOf(request);
    const key = await instanceSecret(app.db, calendarKeyName);
    const token = await calendarTokenOf(app.db, key, principal.orgId, principal.volunteerId);
    return `${originOf(request)}${calendarPath(token)}`;
  };

  route.create({
    url: '/volunteers',
    auth: 'organiser',
    operationId: 'createVolunteer',
    summary: 'Add a volunteer',
    description: 'Email addresses are unique per organisation, whatever their letter case.',
    body: createVolunteerBody,
    answer: volunteer,
    refusals: { 409: 'email-taken' },
    run: createVolunteer,
  });

  route.get({
    url: '/volunteers',
    auth: 'viewer',
    operationId: 'listVolunteers',
    summary: 'List volunteers',
    description: 'Ordered by name, then id. Erased volunteers are never listed.',
    querystring: listVolunteersQuery,
    answer: volunteerPage,
    run: (db, principal, query) => listVolunteers(db, principal.orgId, query),
  });

  route.read({
    url: '/volunteers/:id',
    auth: 'organiser',
    operationId: 'getVolunteer',
    summary: 'Read a volunteer',
    description: 'The `ETag` header is the `If-Match` value for PATCH.',
    params: idParams,
    answer: volunteer,
    run: (db, principal, id) => getVolunteer(db, principal.orgId, id),
  });

  route.update({
    url: '/volunteers/:id',
    auth: 'organiser',
    operationId: 'updateVolunteer',
    summary: 'Update a volunteer',
    description: 'Send `If-Match` with the ETag you read; null clears phone, birth date or notes.',
    params: idParams,
    body: updateVolunteerBody,
    answer: volunteer,
    refusals: { 409: 'email-taken', 412: 'precondition-failed' },
    run: updateVolunteer,
  });

  route.empty({
    method: 'DELETE',
    url: '/volunteers/:id',
    auth: 'organiser',
    operationId: 'eraseVolunteer',
    summary: "Erase a volunteer's personal data",
    description:
      'Name, email, phone, birth date and notes are erased, tokens revoked, future signups cancelled; past ' +
      'signups stay, anonymised, so that reports keep their hours. The volunteer is 404 from then on.',
    params: idParams,
    run: eraseVolunteer,
  });

  route.write({
    url: '/volunteers/:id/tokens',
    auth: 'organiser',
    operationId: 'createVolunteerToken',
    summary: 'Issue a volunteer token',
    description: 'For apps that do their own sign-in. The token is shown this once only.',
    params: idParams,
    answer: issuedToken,
    status: 201,
    sends: [],
    run: async (tx, principal, request) => ({
      body: await issueVolunteerToken(tx, principal, request.params.id),
    }),
  });

  route.empty({
    method: 'PUT',
    url: '/volunteers/:id/qualifications/:roleId',
    auth: 'organiser',
    operationId: 'grantQualification',
    summary: 'Grant a qualification',
    description: 'Idempotent: granting a held qualification changes nothing.',
    params: qualificationParams,
    run: (tx, principal, id, request) => grantQualification(tx, principal, id, request.params.roleId),
  });

  route.empty({
    method: 'DELETE',
    url: '/volunteers/:id/qualifications/:roleId',
    auth: 'organiser',
    operationId: 'revokeQualification',
    summary: 'Revoke a qualification',
    description: '404 when the volunteer does not hold it. Existing signups stay.',
    params: qualificationParams,
    run: (tx, principal, id, request) => revokeQualification(tx, principal, id, request.params.roleId),
  });

  // ── Self-service ───────────────────────────────────────────────────────────────────────────
  const accountRoute = operations(app, { tags: ['volunteer-accounts'] });

  accountRoute.write({
    url: '/public/:orgSlug/volunteers',
    auth: 'public',
    operationId: 'registerVolunteer',
    summary: 'Register as a volunteer',
    description: 'Creates the volunteer and signs them in. Passwords have at least 10 characters.',
    params: orgSlugParams,
    body: registerBody,
    answer: session,
    status: 201,
    sends: ['Location'],
    refusals: { 404: 'not-found', 409: 'email-taken' },
    run: async (tx, _nobody, request) => ({
      body: await registerVolunteer(tx, request.params.orgSlug, request.body),
      headers: { location: '/v1/me' },
    }),
  });

  const loginLimit = app.config.LOGIN_ATTEMPTS_PER_15_MINUTES;
  // Not `app.rateLimit()`: its handler is skipped on a request that another limiter of the plugin
  // (the per-IP one above) has already run on, so the per-email limit would never apply.
  const emailLimiter =
    loginLimit > 0
      ? app.createRateLimit({
          max: loginLimit,
          timeWindow: fifteenMinutes,
          keyGenerator: (request) => {
            const body = request.body as { email?: unknown } | undefined;
            const email = typeof body?.email === 'string' ? body.email.trim().toLowerCase() : '';
            return `sign-in-email:${(request.params as { orgSlug?: string }).orgSlug}:${email}`;
          },
        })
      : undefined;
  app.post(
    '/public/:orgSlug/sessions',
    {
      config: {
        auth: 'public',
        sends: ['Location'],
        // Per IP address (before the body is read) …
        rateLimit:
          loginLimit > 0
            ? {
                max: loginLimit * 10,
                timeWindow: fifteenMinutes,
                keyGenerator: (request) => `sign-in-ip:${request.ip}`,
              }
            : false,
      },
      // … and per email, whichever address it comes from.
      preHandler: emailLimiter ? (request, reply) => limitSignInsPerEmail(emailLimiter, request, reply) : [],
      schema: {
        operationId: 'signInVolunteer',
        tags: ['volunteer-accounts'],
        summary: 'Sign in as a volunteer',
        description:
          'Wrong email and wrong password get the same answer (401 `invalid-credentials`) in similar time. ' +
          `Attempts are limited per email and per IP address.`,
        params: orgSlugParams,
        body: signInBody,
        response: { 201: session, ...problems({ 401: 'invalid-credentials', 404: 'not-found' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => ({
        status: 201,
        body: await signIn(tx, request.params.orgSlug, request.body),
        headers: { location: '/v1/me' },
      })),
  );

  app.get(
    '/me',
    {
      config: { auth: 'volunteer', sends: ['ETag'] },
      schema: {
        operationId: 'getMe',
        tags: ['volunteer-accounts'],
        summary: 'Read your own profile',
        description: 'For volunteer tokens. The `ETag` header is the `If-Match` value for PATCH.',
        response: { 200: me },
      },
    },
    async (request, reply) => {
      const own = await getProfile(app.db, volunteerPrincipalOf(request));
      return sendMe(request, reply, own);
    },
  );

  app.patch(
    '/me',
    {
      config: { auth: 'volunteer', sends: ['ETag'] },
      schema: {
        operationId: 'updateMe',
        tags: ['volunteer-accounts'],
        summary: 'Update your own profile',
        description: 'For volunteer tokens; send `If-Match` with the ETag you read.',
        body: updateProfileBody,
        response: { 200: me, ...problems({ 409: 'email-taken', 412: 'precondition-failed' }) },
      },
    },
    async (request, reply) => {
      const own = await app.db.transaction((tx) =>
        updateProfile(tx, volunteerPrincipalOf(request), request.body, ifMatchVersions(request)),
      );
      return sendMe(request, reply, own);
    },
  );

  accountRoute.write({
    url: '/me/calendar-token',
    auth: 'volunteer',
    operationId: 'rotateCalendarToken',
    summary: 'Replace your calendar feed URL',
    description: 'A new private feed URL; the old one is 404 from now on (a leaked URL is thus revoked).',
    answer: calendarFeed,
    status: 201,
    sends: ['Location'],
    run: async (tx, principal, request) => {
      const key = await instanceSecret(app.db, calendarKeyName);
      const token = await rotateCalendarToken(tx, key, principal.orgId, principal.volunteerId);
      const path = calendarPath(token);
      return {
        body: { calendarUrl: `${originOf(request)}${path}` },
        headers: { location: path },
      };
    },
  });

  accountRoute.empty({
    method: 'DELETE',
    url: '/me/session',
    auth: 'volunteer',
    operationId: 'signOut',
    summary: 'Sign out: revoke this token',
    description: 'The token stops working at once; other tokens of the volunteer keep working.',
    run: revokeSession,
  });
});
