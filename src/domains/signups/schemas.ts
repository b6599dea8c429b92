import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import { pageOf, pageQuery, responseTimestamp, updatedSince, uuid, withRange } from '../../core/schemas.ts';
import { shift } from '../shifts/schemas.ts';

export const signupStatus = z.enum(['confirmed', 'waitlisted', 'cancelled', 'attended', 'no_show']);

const note = z.string().max(1000).describe("A note for the organisers, e.g. 'I can bring a van'.");

export const signup = z
  .object({
    id: uuid,
    shiftId: uuid,
    volunteerId: uuid,
    status: signupStatus,
    waitlistPosition: z
      .int()
      .nullable()
      .describe('1-based rank among those now waitlisted on the shift; null when not waitlisted.'),
    note: z.string().nullable(),
    lateCancellation: z.boolean().describe('Cancelled within 24 h of the start.'),
    checkedInAt: responseTimestamp.nullable(),
    checkedOutAt: responseTimestamp.nullable(),
    hours: z.number().nullable().describe('Hours credited, in quarter hours.'),
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
    cancelledAt: responseTimestamp.nullable(),
  })
  .meta({
    id: 'Signup',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d90',
        shiftId: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d80',
        volunteerId: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d70',
        status: 'confirmed',
        waitlistPosition: null,
        note: null,
        lateCancellation: false,
        checkedInAt: null,
        checkedOutAt: null,
        hours: null,
        createdAt: '2026-11-26T09:00:00.000Z',
        updatedAt: '2026-11-26T09:00:00.000Z',
        cancelledAt: null,
      },
    ],
  });

export const rosterEntry = signup
  .extend({
    volunteer: z
      .object({
        id: uuid,
        name: z.string().nullable(),
        email: z.string().nullable(),
        phone: z.string().nullable(),
      })
      .describe('Contact details for the organisers; null for an erased volunteer.'),
  })
  .meta({ id: 'RosterEntry' });

export const mySignup = signup
  .extend({
    shift: shift.omit({ eligibility: true }).extend({
      event: z.object({ id: uuid, title: z.string() }),
    }),
  })
  .meta({ id: 'MySignup' });

export const claimBody = z
  .strictObject({
    volunteerId: z.uuid().optional().describe('Organisers: whom to sign up. Volunteers leave it out.'),
    note: note.optional(),
  })
  .meta({
    examples: [{}, { note: 'Happy to drive' }, { volunteerId: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d70' }],
  });

export const updateSignupBody = z
  .strictObject({
    status: z.enum(['attended', 'no_show']).optional(),
    hours: z
      .number()
      .min(0)
      .max(24)
      .refine((value) => Number.isInteger(value * 4), 'must be in quarter hours (0.25 steps)')
      .optional(),
    note: note.nullable().optional(),
  })
  .meta({ examples: [{ status: 'attended', hours: 3.5 }] });

export const shiftIdParams = z.strictObject({ id: z.uuid().describe('The shift id.') });

export const rosterQuery = z.strictObject({ ...pageQuery, status: signupStatus.optional(), updatedSince });

export const listSignupsQuery = withRange({
  ...pageQuery,
  volunteerId: z.uuid().optional(),
  eventId: z.uuid().optional(),
  status: signupStatus.optional(),
  updatedSince,
});

export const mySignupsQuery = withRange({
  ...pageQuery,
  status: signupStatus.optional(),
  updatedSince,
});

export const rosterPage = pageOf(rosterEntry).meta({ id: 'RosterPage' });
export const signupPage = pageOf(signup).meta({ id: 'SignupPage' });
export const mySignupPage = pageOf(mySignup).meta({ id: 'MySignupPage' });

/** How the signup routes are tagged and answer (core/operations.ts). */
export const signupApi = resourceApi({ tags: ['signups'], resource: 'signup' });
