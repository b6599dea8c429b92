import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import {
  email,
  pageOf,
  pageQuery,
  responseTimestamp,
  searchTerm,
  updatedSince,
  uuid,
} from '../../core/schemas.ts';

const name = z.string().trim().min(1).max(200);
const phone = z.string().trim().min(1).max(50).describe('Free-form phone number.');
const birthDate = z.iso
  .date()
  .refine(
    (value) => value >= '1900-01-01' && new Date(`${value}T00:00:00Z`) <= new Date(),
    'must be a past date',
  )
  .describe('YYYY-MM-DD; used for shifts with a minimum age.');
const notes = z.string().max(5000).describe("Organisers' notes; never shown to the volunteer.");
const password = z.string().min(10, 'must be at least 10 characters').max(200);

const volunteerExample = {
  id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d70',
  name: 'Sam Rivera',
  email: 'sam@example.org',
  phone: '+49 30 1234567',
  birthDate: '1990-04-12',
  qualifications: ['0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d71'],
  createdAt: '2026-11-26T09:00:00.000Z',
  updatedAt: '2026-11-26T09:00:00.000Z',
};

/** A volunteer as the volunteer sees themself. */
export const profile = z
  .object({
    id: uuid,
    name: z.string(),
    email: z.string(),
    phone: z.string().nullable(),
    birthDate: z.string().nullable(),
    qualifications: z.array(uuid).describe('Ids of the roles this volunteer is qualified for.'),
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
  })
  .meta({ id: 'VolunteerProfile', examples: [volunteerExample] });

const calendarUrl = z
  .url()
  .describe(
    'Your private calendar feed (iCalendar): your confirmed shifts. Keep it secret; rotate it with POST /v1/me/calendar-token.',
  )
  .meta({
    example: 'https://api.together.example/v1/calendar/3q2-7wH0ZL8sY5dJ0rA1mE6xVbN4cT9uPkG2hFjW_oQ.ics',
  });

/** What a volunteer reads of themself: the profile and their calendar feed's URL. */
export const me = profile.extend({ calendarUrl }).meta({
  id: 'Me',
  examples: [
    {
      ...volunteerExample,
      calendarUrl: 'https://api.together.example/v1/calendar/3q2-7wH0ZL8sY5dJ0rA1mE6xVbN4cT9uPkG2hFjW_oQ.ics',
    },
  ],
});

export const calendarFeed = z.object({ calendarUrl }).meta({ id: 'CalendarFeed' });

/** A volunteer as organisers see them: the profile plus notes. */
export const volunteer = profile
  .extend({ notes: z.string().nullable() })
  .meta({ id: 'Volunteer', examples: [{ ...volunteerExample, notes: 'Prefers morning shifts.' }] });

export const createVolunteerBody = z
  .strictObject({
    name,
    email,
    phone: phone.optional(),
    birthDate: birthDate.optional(),
    notes: notes.optional(),
  })
  .meta({ examples: [{ name: 'Sam Rivera', email: 'sam@example.org', phone: '+49 30 1234567' }] });

export const updateVolunteerBody = z
  .strictObject({
    name: name.optional(),
    email: email.optional(),
    phone: phone.nullable().optional(),
    birthDate: birthDate.nullable().optional(),
    notes: notes.nullable().optional(),
  })
  .meta({ examples: [{ phone: null, notes: 'Has a van.' }] });

/** A volunteer's own changes: those of an organiser but the organisers' notes. */
export const updateProfileBody = updateVolunteerBody
  .omit({ notes: true })
  .meta({ examples: [{ phone: '+49 30 7654321' }] });

export const listVolunteersQuery = z.strictObject({
  ...pageQuery,
  q: searchTerm.describe('Case-insensitive substring of the name or email.'),
  qualification: z.uuid().optional().describe('Only volunteers qualified for this role id.'),
  updatedSince,
});

export const volunteerPage = pageOf(volunteer).meta({ id: 'VolunteerPage' });

export const issuedToken = z
  .object({
    id: uuid,
    token: z.string().describe('A volunteer token (`tg_vol_…`), shown this once only.'),
    createdAt: responseTimestamp,
  })
  .meta({ id: 'VolunteerToken' });

export const registerBody = z
  .strictObject({ name, email, password })
  .meta({ examples: [{ name: 'Sam Rivera', email: 'sam@example.org', password: 'correct horse battery' }] });

export const signInBody = z
  .strictObject({ email: z.string().max(254), password: z.string().max(200) })
  .meta({ examples: [{ email: 'sam@example.org', password: 'correct horse battery' }] });

export const session = z
  .object({
    volunteer: profile,
    token: z.string().describe('A volunteer token (`tg_vol_…`) for `Authorization: Bearer`; shown once.'),
  })
  .meta({ id: 'VolunteerSession' });

export const orgSlugParams = z.strictObject({ orgSlug: z.string().min(1).max(64) });
export const qualificationParams = z.strictObject({ id: z.uuid(), roleId: z.uuid() });

/** How the volunteer routes are tagged and answer (core/operations.ts). */
export const volunteerApi = resourceApi({
  tags: ['volunteers'],
  resource: 'volunteer',
  collection: '/v1/volunteers',
});
