/**
 * The shared vocabulary of request and response schemas: ids, timestamps, time zones, list
 * envelopes and the problem body. Domain `schemas.ts` files build on these so that one field means
 * one thing everywhere in the OpenAPI document.
 */
import { z } from 'zod';

export const uuid = z
  .uuid()
  .describe('A UUID (v7, time-ordered).')
  .meta({ example: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6e' });

export const idParams = z.strictObject({ id: z.uuid().describe('The resource id.') });

/**
 * A request timestamp: RFC 3339 with an offset, decoded to a Date (a codec keeps `format:
 * date-time` in the document, where `z.coerce.date()` would become `{}` and `unknown` in clients).
 */
export const requestTimestamp = z
  .codec(z.iso.datetime({ offset: true }), z.date(), {
    decode: (text) => new Date(text),
    encode: (date) => date.toISOString(),
  })
  // What PostgreSQL's timestamptz and every client can hold: years 1 to 9999 (year 0 reached SQL
  // as a 500).
  .refine((date) => date.getUTCFullYear() >= 1 && date.getUTCFullYear() <= 9999, {
    message: 'must be between the years 1 and 9999',
  });

/** A response timestamp: a Date in the service, RFC 3339 in UTC (`…Z`) on the wire. */
export const responseTimestamp = z
  .codec(z.iso.datetime(), z.date(), {
    decode: (text) => new Date(text),
    encode: (date) => date.toISOString(),
  })
  .meta({ example: '2026-12-05T08:00:00.000Z' });

function canonicalTimeZone(name: string): string | undefined {
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
    // Reject offsets such as "+01:00": an IANA name is needed for DST-correct recurrence.
    return /^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/.test(resolved) ? resolved : undefined;
  } catch {
    return undefined;
  }
}

/** An IANA time zone, stored in its canonical spelling (`europe/berlin` → `Europe/Berlin`). */
export const timeZone = z
  .string()
  .max(64)
  .transform((name, context) => {
    const canonical = canonicalTimeZone(name);
    if (!canonical) {
      context.addIssue({ code: 'custom', message: 'must be an IANA time zone such as "Europe/Berlin"' });
      return z.NEVER;
    }
    return canonical;
  })
  .meta({ example: 'Europe/Berlin', description: 'An IANA time zone name.' });

export const email = z.email().max(254);

/** `limit` and `cursor` of every list (API.md §1 "lists"). */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50).describe('Page size, 1–200 (default 50).'),
  cursor: z.string().max(1024).optional().describe('The `nextCursor` of the previous page.'),
};

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    data: z.array(item),
    nextCursor: z
      .string()
      .nullable()
      .describe('Pass as `cursor` to read the next page; null on the last page.'),
  });
}

export const problemSchema = z
  .looseObject({
    type: z.string().meta({ example: '/problems/validation-failed' }),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.string().describe('A stable kebab-case problem code (API.md §9).'),
    instance: z.string().optional(),
    requestId: z.string().optional().describe('Quote it when reporting a problem.'),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('For validation failures: each invalid field.'),
  })
  .meta({
    id: 'Problem',
    description: 'An RFC 9457 problem.',
    examples: [
      {
        type: '/problems/validation-failed',
        title: 'The request is not valid',
        status: 400,
        detail: 'body.slug: Invalid string: must match pattern',
        code: 'validation-failed',
        instance: '/v1/organizations',
        requestId: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6e',
        errors: [{ path: 'body.slug', message: 'Invalid string: must match pattern' }],
      },
    ],
  });

export const noContent = z.undefined().describe('Done; no body.');

/** A place: an event's location, or a shift's own (null: the event's). */
export const location = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    address: z.string().max(500).optional(),
    latitude: z.number().min(-90).max(90).optional(),
    longitude: z.number().min(-180).max(180).optional(),
  })
  .meta({
    id: 'Location',
    examples: [
      { name: 'Riverside Hall', address: '1 River Road, Berlin', latitude: 52.52, longitude: 13.405 },
    ],
  });

/** `updatedSince` of every synchronisable list (API.md §1 "lists"). */
export const updatedSince = requestTimestamp
  .optional()
  .describe('Only rows with `updatedAt ≥ updatedSince` (RFC 3339), for incremental sync.');

/** An overlap filter: items whose interval overlaps `[from, to)`. */
export const rangeQuery = {
  from: requestTimestamp.optional().describe('Items whose interval overlaps [from, to) (RFC 3339).'),
  to: requestTimestamp.optional().describe('Items whose interval overlaps [from, to) (RFC 3339).'),
};

/**
 * A query's `from`/`to`, when both are given, must be in order: `to` after `from` (400 on `to`).
 * Every query with an interval takes it through `withRange`.
 */
export function fromBeforeTo<Q extends { from?: Date | undefined; to?: Date | undefined }>(
  query: Q,
): boolean {
  return !query.from || !query.to || query.from < query.to;
}
export const fromBeforeToIssue = { message: 'must be after `from`', path: ['to'] };

/** A query object with `from`/`to` (`rangeQuery`) and the rule that they are in order. */
export function withRange<S extends z.ZodRawShape>(shape: S) {
  return z
    .strictObject({ ...shape, ...rangeQuery })
    .refine((query) => fromBeforeTo(query as { from?: Date; to?: Date }), fromBeforeToIssue);
}

/** `true`/`false` in a query string. */
export const queryBoolean = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true')
  .optional();

/** A substring search term (`q`). */
export const searchTerm = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .optional()
  .describe('Case-insensitive substring match.');
