import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import { fromBeforeTo, fromBeforeToIssue, requestTimestamp, uuid } from '../../core/schemas.ts';

export const hoursQuery = z
  .strictObject({
    from: requestTimestamp
      .optional()
      .describe('Shifts starting at or after this instant (RFC 3339); unbounded when absent.'),
    to: requestTimestamp
      .optional()
      .describe('Shifts starting before this instant (RFC 3339); unbounded when absent.'),
    format: z.enum(['json', 'csv']).default('json').describe('`csv`: `text/csv` with the same columns.'),
  })
  .refine(fromBeforeTo, fromBeforeToIssue);

/** The columns of the hours report, in the order of its CSV header row (API.md §10). */
export const hoursColumns = [
  'volunteerId',
  'name',
  'email',
  'shiftsAttended',
  'hours',
  'noShows',
  'lateCancellations',
] as const;

export const hoursRow = z
  .object({
    volunteerId: uuid,
    name: z.string().nullable().describe('Null for an erased volunteer, whose hours still count.'),
    email: z.string().nullable(),
    shiftsAttended: z.number().int(),
    hours: z.number().describe('The recorded hours of the attended signups.'),
    noShows: z.number().int(),
    lateCancellations: z.number().int(),
  })
  .meta({ id: 'HoursReportRow' });

export const hoursReport = z.object({ data: z.array(hoursRow) }).meta({ id: 'HoursReport' });

/** The columns of an event's roster CSV, in order (API.md §10). */
export const rosterColumns = [
  'shiftId',
  'shiftTitle',
  'startsAt',
  'endsAt',
  'volunteerId',
  'name',
  'email',
  'phone',
  'status',
  'checkedInAt',
  'checkedOutAt',
  'hours',
] as const;

/** The answers, as the OpenAPI document describes them. */
export const hoursAnswer = {
  description: 'The hours per volunteer: JSON, or CSV with the same columns when `format=csv`.',
  content: {
    'application/json': { schema: hoursReport },
    'text/csv': {
      schema: z.string().describe(`RFC 4180 CSV with the header row \`${hoursColumns.join(',')}\`.`),
    },
  },
};

export const rosterAnswer = {
  description: 'Every signup of the event, one CSV row each.',
  content: {
    'text/csv': {
      schema: z.string().describe(`RFC 4180 CSV with the header row \`${rosterColumns.join(',')}\`.`),
    },
  },
};

/** How the report routes are tagged (core/operations.ts). */
export const reportApi = resourceApi({ tags: ['reports'] });
