import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import {
  location,
  pageOf,
  pageQuery,
  responseTimestamp,
  searchTerm,
  timeZone,
  updatedSince,
  uuid,
  withRange,
} from '../../core/schemas.ts';

const title = z.string().trim().min(1).max(200);
const description = z.string().max(10_000);
const visibility = z
  .enum(['public', 'unlisted', 'private'])
  .describe('public: listed on the public schedule; unlisted: readable there by id; private: never public.');
const tags = z
  .array(z.string().trim().min(1).max(50))
  .max(20)
  .transform((list) => [...new Set(list)])
  .describe('Up to 20 labels for filtering, e.g. ["food", "weekend"].');

export const createEventBody = z
  .strictObject({
    title,
    description: description.optional(),
    timezone: timeZone.optional().describe("An IANA time zone (default: the organisation's)."),
    location: location.optional(),
    visibility: visibility.optional(),
    status: z.enum(['draft', 'published']).optional().describe('Default draft.'),
    tags: tags.optional(),
  })
  .meta({
    examples: [
      {
        title: 'Saturday food sort',
        timezone: 'Europe/Berlin',
        location: { name: 'Riverside Hall' },
        status: 'published',
        tags: ['food'],
      },
    ],
  });

export const updateEventBody = z
  .strictObject({
    title: title.optional(),
    description: description.nullable().optional(),
    timezone: timeZone.optional(),
    location: location.nullable().optional(),
    visibility: visibility.optional(),
    status: z
      .enum(['draft', 'published'])
      .optional()
      .describe('Publish or unpublish; cancel with POST /v1/events/{id}/cancel.'),
    tags: tags.optional(),
  })
  .meta({ examples: [{ status: 'published' }] });

export const event = z
  .object({
    id: uuid,
    title: z.string(),
    description: z.string().nullable(),
    timezone: z.string(),
    location: location.nullable(),
    visibility,
    status: z.enum(['draft', 'published', 'cancelled']),
    tags: z.array(z.string()),
    startsAt: responseTimestamp.nullable().describe('The start of its first shift; null without shifts.'),
    endsAt: responseTimestamp.nullable().describe('The end of its last shift; null without shifts.'),
    shiftCount: z.int().describe('Shifts that are not cancelled.'),
    capacity: z.int().describe('Places over the shifts that are not cancelled.'),
    confirmedCount: z.int().describe('Confirmed volunteers over the shifts that are not cancelled.'),
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
  })
  .meta({
    id: 'Event',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d81',
        title: 'Saturday food sort',
        description: null,
        timezone: 'Europe/Berlin',
        location: { name: 'Riverside Hall' },
        visibility: 'public',
        status: 'published',
        tags: ['food'],
        startsAt: '2027-03-20T08:00:00.000Z',
        endsAt: '2027-03-20T11:00:00.000Z',
        shiftCount: 1,
        capacity: 8,
        confirmedCount: 3,
        createdAt: '2026-11-26T09:00:00.000Z',
        updatedAt: '2026-11-26T09:00:00.000Z',
      },
    ],
  });

export const listEventsQuery = withRange({
  ...pageQuery,
  status: z.enum(['draft', 'published', 'cancelled']).optional(),
  q: searchTerm.describe('Case-insensitive substring of the title.'),
  tag: z.string().min(1).max(50).optional().describe('Only events carrying this tag.'),
  updatedSince,
});

export const eventPage = pageOf(event).meta({ id: 'EventPage' });

/** How the event routes are tagged and answer (core/operations.ts). */
export const eventApi = resourceApi({ tags: ['events'], resource: 'event', collection: '/v1/events' });
