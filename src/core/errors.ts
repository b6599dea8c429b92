/**
 * The one error model of the API (API.md §1 "errors", §9): every failure leaves as an RFC 9457
 * `application/problem+json` body with a stable `code`. Handlers and services throw `AppError`;
 * Fastify's own errors, validation failures and database errors are translated here, in one place.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { constraintOf, driverErrorOf, isDatabaseUnavailable } from '../db/errors.ts';

export const problemCodes = {
  'validation-failed': { status: 400, title: 'The request is not valid' },
  'invalid-cursor': { status: 400, title: 'The cursor is not valid' },
  unauthenticated: { status: 401, title: 'Authentication is required' },
  'invalid-credentials': { status: 401, title: 'The credentials are not valid' },
  forbidden: { status: 403, title: 'Your role does not allow this' },
  'not-found': { status: 404, title: 'Not found' },
  'idempotency-key-in-use': { status: 409, title: 'A request with this idempotency key is in progress' },
  'slug-taken': { status: 409, title: 'The slug is taken' },
  'email-taken': { status: 409, title: 'The email address is taken' },
  'name-taken': { status: 409, title: 'The name is taken' },
  'shift-cancelled': { status: 409, title: 'The shift is cancelled' },
  'event-not-published': { status: 409, title: 'The event is not published' },
  'signup-closed': { status: 409, title: 'Signup is closed for this shift' },
  'not-qualified': { status: 409, title: 'The volunteer lacks the qualification for this role' },
  'too-young': { status: 409, title: 'The volunteer is below the minimum age' },
  'already-signed-up': { status: 409, title: 'The volunteer is already signed up' },
  'overlapping-signup': { status: 409, title: 'The volunteer has an overlapping signup' },
  'shift-full': { status: 409, title: 'The shift is full' },
  'cancellation-closed': { status: 409, title: 'Cancellation is closed for this shift' },
  'capacity-below-confirmed': { status: 409, title: 'Capacity cannot go below the confirmed count' },
  'event-has-signups': { status: 409, title: 'The event has signups' },
  'shift-has-signups': { status: 409, title: 'The shift has signups' },
  'invalid-state': { status: 409, title: 'The resource is not in a state that allows this' },
  'precondition-failed': { status: 412, title: 'The resource has changed' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'idempotency-key-reused': { status: 422, title: 'The idempotency key was used with another request' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'The service is temporarily unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problemCodes;

export interface FieldError {
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  instance?: string;
  requestId?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export interface AppErrorOptions {
  errors?: FieldError[];
  /** Extra members of the problem body (e.g. `conflictingSignupId`). */
  extensions?: Record<string, unknown>;
  /** Response headers that belong to this problem (e.g. `Retry-After`). */
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly options: AppErrorOptions = {},
  ) {
    // A problem is an answer, not a fault: its stack is never logged (a 5xx logs its cause), and
    // capturing one cost ≈ 3 % of the server's CPU under a rush of refused claims (bench/claims.ts).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(detail);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'AppError';
    this.status = problemCodes[code].status;
  }
}

export const notFound = (what: string) => new AppError('not-found', `${what} does not exist.`);

/**
 * The refusals that a friendly pre-check and a database constraint can both find. Each is built
 * here only, so that its code, detail and extensions are the same whoever finds it: a service
 * that can name more (the signup in the way) looks it up and passes it on either path.
 */
export const refusals = {
  slugTaken: () => new AppError('slug-taken', 'Another organisation already uses this slug.'),
  emailTaken: () =>
    new AppError('email-taken', 'Another volunteer of this organisation already uses this email.'),
  nameTaken: () => new AppError('name-taken', 'Another role of this organisation already has this name.'),
  alreadySignedUp: (signup?: { id: string; status: string }) =>
    new AppError(
      'already-signed-up',
      signup
        ? `The volunteer is already ${signup.status} on this shift.`
        : 'The volunteer already has an active signup on this shift.',
      signup ? { extensions: { signupId: signup.id } } : {},
    ),
  /** A claim that would overlap one of the volunteer's confirmed signups. */
  overlappingClaim: (conflictingSignupId?: string) =>
    new AppError(
      'overlapping-signup',
      'The volunteer has a confirmed signup that overlaps this shift.',
      conflictingSignupId ? { extensions: { conflictingSignupId } } : {},
    ),
  /** New shift times under which a confirmed volunteer of the shift would overlap another shift. */
  overlappingMove: (conflictingSignupId?: string) =>
    new AppError(
      'overlapping-signup',
      'A confirmed volunteer of this shift would overlap another of their shifts.',
      conflictingSignupId ? { extensions: { conflictingSignupId } } : {},
    ),
  shiftFull: () => new AppError('shift-full', 'Every place is taken and the shift keeps no waitlist.'),
  shiftCancelled: () => new AppError('shift-cancelled', 'The shift is cancelled.'),
  capacityBelowConfirmed: (confirmed?: number) =>
    new AppError(
      'capacity-below-confirmed',
      confirmed === undefined
        ? 'Capacity cannot go below the confirmed count.'
        : `${confirmed} volunteers are confirmed; capacity cannot go below that.`,
    ),
  waitlistKept: (waiting?: number) =>
    new AppError(
      'invalid-state',
      `${waiting ?? 'Some'} volunteers are on the waitlist; cancel their signups before turning the waitlist off.`,
    ),
  roleInUse: () =>
    new AppError('invalid-state', 'Shifts use this role; change their role before deleting it.'),
  shiftHasSignups: () =>
    new AppError('shift-has-signups', 'The shift has had signups; cancel it instead of deleting it.'),
  eventHasSignups: () =>
    new AppError('event-has-signups', 'The event has signups; cancel it instead of deleting it.'),
};

/**
 * Constraint name → its refusal, for a write that trips it after the friendly check passed (a
 * concurrent request won). A foreign key can stand for more than one refusal (a shift's signups
 * block deleting the shift, and through it its event): the caller that knows which passes it.
 */
const constraintProblems: Record<string, () => AppError> = {
  organizations_slug_unique: refusals.slugTaken,
  volunteers_email_unique: refusals.emailTaken,
  roles_name_unique: refusals.nameTaken,
  signups_one_active_per_volunteer: () => refusals.alreadySignedUp(),
  signups_no_overlap: () => refusals.overlappingClaim(),
  shifts_capacity_not_exceeded: () => refusals.capacityBelowConfirmed(),
  shifts_role_fk: refusals.roleInUse,
  signups_shift_fk: refusals.shiftHasSignups,
  shifts_waitlist_kept: () => refusals.waitlistKept(),
};

/** Turns a constraint violation into the AppError it stands for, or returns undefined. */
export function problemFromConstraint(error: unknown): AppError | undefined {
  const constraint = constraintOf(error);
  return constraint ? constraintProblems[constraint]?.() : undefined;
}

export function problemBody(request: FastifyRequest, error: AppError): Problem {
  return {
    type: `/problems/${error.code}`,
    title: problemCodes[error.code].title,
    status: error.status,
    detail: error.detail,
    code: error.code,
    instance: request.url,
    requestId: String(request.id),
    ...(error.options.errors ? { errors: error.options.errors } : {}),
    ...error.options.extensions,
  };
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError) {
  for (const [name, value] of Object.entries(error.options.headers ?? {})) reply.header(name, value);
  // Sent as text: the body is built here, so the route's response schema has nothing to check, and
  // serialising it through zod cost ≈ 3 % of the server's CPU under a rush of refused claims.
  return reply
    .code(error.status)
    .type('application/problem+json')
    .send(JSON.stringify(problemBody(request, error)));
}

/** Translates anything thrown while handling a request into an AppError. */
export function toAppError(error: unknown, request: FastifyRequest): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError;

  if (hasZodFastifySchemaValidationErrors(error)) {
    const errors = error.validation.map((issue) => ({
      path: [error.validationContext ?? 'body', ...pathSegments(issue.instancePath)].join('.'),
      message: issue.message ?? 'is not valid',
    }));
    return new AppError('validation-failed', describeFieldErrors(errors), { errors });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('validation-failed', `The body is not valid JSON: ${fastifyError.message}`, {
        errors: [{ path: 'body', message: 'is not valid JSON' }],
      });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload-too-large', 'The request body exceeds the limit of 1 MiB.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported-media-type', 'Send the body as application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('validation-failed', 'The Content-Length header does not match the body.');
    case 'FST_ERR_VALIDATION':
      return new AppError('validation-failed', fastifyError.message, {
        errors: [{ path: fastifyError.validationContext ?? 'request', message: fastifyError.message }],
      });
  }
  if (fastifyError.statusCode === 400 && fastifyError.code?.startsWith('FST_')) {
    return new AppError('validation-failed', fastifyError.message);
  }
  if (fastifyError.statusCode === 415) {
    return new AppError('unsupported-media-type', 'Send the body as application/json.');
  }
  const constraintProblem = problemFromConstraint(error);
  if (constraintProblem) return constraintProblem;
  const sqlState = driverErrorOf(error)?.code;
  if (sqlState === '40P01' || sqlState === '40001') {
    request.log.warn({ err: error }, 'transaction conflict');
    return new AppError('unavailable', 'The request collided with a concurrent one; retry it.', {
      headers: { 'retry-after': '1' },
    });
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: error }, 'database unavailable');
    return new AppError('unavailable', 'The database is unreachable; try again shortly.', {
      headers: { 'retry-after': '5' },
    });
  }
  if (isResponseSerializationError(error)) {
    request.log.error({ err: error, issues: error.cause.issues }, 'response did not match its schema');
  } else {
    request.log.error({ err: error }, 'unhandled error');
  }
  return new AppError(
    'internal',
    `An internal error occurred. Quote request id ${request.id} when reporting it.`,
  );
}

function pathSegments(instancePath: string | undefined): string[] {
  return (instancePath ?? '').split('/').filter((segment) => segment.length > 0);
}

function describeFieldErrors(errors: FieldError[]): string {
  const first = errors[0];
  if (!first) return 'The request is not valid.';
  const rest = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return `${first.path}: ${first.message}${rest}`;
}

/** Registers the error handler on the root instance (the not-found handler is in app.ts, rate-limited). */
export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((error, request, reply) => sendProblem(request, reply, toAppError(error, request)));
  },
  { name: 'errors' },
);

export function sendNotFound(request: FastifyRequest, reply: FastifyReply) {
  return sendProblem(
    request,
    reply,
    new AppError('not-found', `No route matches ${request.method} ${request.url}.`),
  );
}
