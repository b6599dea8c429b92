/**
 * What partner sites read (API.md §8): the public fields of organisations, events and shifts,
 * picked from their domains' response schemas, so that a field means the same everywhere and no
 * personal data can slip in by a second description.
 */
import { z } from 'zod';
import { pageOf, pageQuery, queryBoolean, uuid, withRange } from '../../core/schemas.ts';
import { event } from '../events/schemas.ts';
import { organization, slug } from '../organizations/schemas.ts';
import { shift } from '../shifts/schemas.ts';

export const orgSlugParams = z.strictObject({ orgSlug: slug.describe("The organisation's slug.") });
export const publicEventParams = orgSlugParams.extend({ eventId: z.uuid().describe('The event id.') });

export const publicOrganization = organization.pick({ name: true, slug: true, timezone: true }).meta({
  id: 'PublicOrganization',
  examples: [{ name: 'Riverside Food Bank', slug: 'riverside', timezone: 'Europe/Berlin' }],
});

export const publicEvent = event
  .pick({
    id: true,
    title: true,
    description: true,
    timezone: true,
    location: true,
    tags: true,
    startsAt: true,
    endsAt: true,
    shiftCount: true,
    capacity: true,
    confirmedCount: true,
  })
  .meta({ id: 'PublicEvent' });

export const publicEventPage = pageOf(publicEvent).meta({ id: 'PublicEventPage' });

export const publicShift = shift
  .pick({
    id: true,
    title: true,
    description: true,
    location: true,
    startsAt: true,
    endsAt: true,
    capacity: true,
    confirmedCount: true,
    available: true,
    waitlist: true,
    status: true,
  })
  .extend({
    role: z.object({ id: uuid, name: z.string() }).nullable().describe("The shift's role, if it has one."),
  })
  .meta({ id: 'PublicShift' });

export const publicShiftPage = pageOf(publicShift).meta({ id: 'PublicShiftPage' });

export const listPublicEventsQuery = withRange({
  ...pageQuery,
  tag: z.string().min(1).max(50).optional().describe('Only events carrying this tag.'),
});

/** A whole event in one answer (API.md §8): the default and maximum page is 1,000 shifts. */
export const publicShiftsLimit = 1000;

export const listPublicShiftsQuery = withRange({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(publicShiftsLimit)
    .default(publicShiftsLimit)
    .describe('Page size, 1–1000 (default 1000: a whole event).'),
  cursor: pageQuery.cursor,
  available: queryBoolean.describe('`true`: only shifts with a free place (not cancelled, not full).'),
});
