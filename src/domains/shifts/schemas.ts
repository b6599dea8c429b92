import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import {
  location,
  pageOf,
  pageQuery,
  queryBoolean,
  requestTimestamp,
  responseTimestamp,
  updatedSince,
  uuid,
  withRange,
} from '../../core/schemas.ts';

export const maxShiftDurationMs = 7 * 24 * 60 * 60 * 1000;
export const maxBulkShifts = 500;

const shiftDetails = {
  title: z.string().trim().min(1).max(200),
  description: z.string().max(5000),
  roleId: z.uuid().describe('The kind of work; a restricted role needs a qualification to claim.'),
  capacity: z.int().min(1).max(10000).describe('Places, 1–10000.'),
  waitlist: z.boolean().describe('Keep a waitlist when full (default true).'),
  minAge: z.int().min(0).max(120).describe('Minimum age at the start of the shift.'),
  location: location.describe("The shift's own place; null means the event's."),
};

const shiftTimes = {
  startsAt: requestTimestamp,
  endsAt: requestTimestamp,
  signupOpensAt: requestTimestamp.describe('Claims are accepted from this time (default: now).'),
  signupClosesAt: requestTimestamp.describe('Claims are accepted until this time (default: startsAt).'),
  cancelUntil: requestTimestamp.describe(
    'After this a volunteer can no longer cancel by themselves (default: the start).',
  ),
};

export interface ShiftTimes {
  startsAt: Date;
  endsAt: Date;
  signupOpensAt?: Date | null | undefined;
  signupClosesAt?: Date | null | undefined;
  cancelUntil?: Date | null | undefined;
}

/** The rules that tie a shift's times together; the database checks the first two again. */
export function shiftTimeProblems(times: ShiftTimes): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const duration = times.endsAt.getTime() - times.startsAt.getTime();
  if (duration <= 0) problems.push({ path: 'endsAt', message: 'must be after startsAt' });
  else if (duration > maxShiftDurationMs)
    problems.push({ path: 'endsAt', message: 'a shift lasts at most 7 days' });
  const closesAt = times.signupClosesAt ?? times.startsAt;
  if (times.signupClosesAt && times.signupClosesAt > times.endsAt) {
    problems.push({ path: 'signupClosesAt', message: 'must not be after endsAt' });
  }
  if (times.signupOpensAt && times.signupOpensAt >= closesAt) {
    problems.push({ path: 'signupOpensAt', message: 'must be before signupClosesAt (default: startsAt)' });
  }
  if (times.cancelUntil && times.cancelUntil > times.startsAt) {
    problems.push({ path: 'cancelUntil', message: 'must not be after startsAt' });
  }
  return problems;
}

const shiftInputShape = {
  title: shiftDetails.title.optional(),
  description: shiftDetails.description.optional(),
  roleId: shiftDetails.roleId.optional(),
  capacity: shiftDetails.capacity,
  waitlist: shiftDetails.waitlist.optional(),
  minAge: shiftDetails.minAge.optional(),
  location: shiftDetails.location.optional(),
};

const withTimeRules = <T extends ShiftTimes>(value: T, context: z.RefinementCtx) => {
  // Zod runs this refinement even when a time field failed to parse (its raw text then stands where
  // the Date should be): judge the times only once they all parsed, else the field's own issue is lost.
  const times = [value.startsAt, value.endsAt, value.signupOpensAt, value.signupClosesAt, value.cancelUntil];
  if (!times.every((time) => time === undefined || time === null || time instanceof Date)) return;
  for (const problem of shiftTimeProblems(value)) {
    context.addIssue({ code: 'custom', path: [problem.path], message: problem.message });
  }
};

export const createShiftBody = z
  .strictObject({
    ...shiftInputShape,
    startsAt: shiftTimes.startsAt,
    endsAt: shiftTimes.endsAt,
    signupOpensAt: shiftTimes.signupOpensAt.optional(),
    signupClosesAt: shiftTimes.signupClosesAt.optional(),
    cancelUntil: shiftTimes.cancelUntil.optional(),
  })
  .superRefine(withTimeRules)
  .meta({
    examples: [
      {
        title: 'Morning sort',
        startsAt: '2027-03-20T09:00:00+01:00',
        endsAt: '2027-03-20T12:00:00+01:00',
        capacity: 8,
        waitlist: true,
      },
    ],
  });

export type CreateShiftInput = z.output<typeof createShiftBody>;

export const updateShiftBody = z
  .strictObject({
    title: shiftDetails.title.nullable().optional(),
    description: shiftDetails.description.nullable().optional(),
    roleId: shiftDetails.roleId.nullable().optional(),
    capacity: shiftDetails.capacity.optional(),
    waitlist: shiftDetails.waitlist.optional(),
    minAge: shiftDetails.minAge.nullable().optional(),
    location: shiftDetails.location.nullable().optional(),
    startsAt: shiftTimes.startsAt.optional(),
    endsAt: shiftTimes.endsAt.optional(),
    signupOpensAt: shiftTimes.signupOpensAt.nullable().optional(),
    signupClosesAt: shiftTimes.signupClosesAt.nullable().optional(),
    cancelUntil: shiftTimes.cancelUntil.nullable().optional(),
  })
  .meta({ examples: [{ capacity: 12 }] });

export type UpdateShiftInput = z.output<typeof updateShiftBody>;

export const shiftTemplate = z
  .strictObject(shiftInputShape)
  .describe('A shift without times: every occurrence gets these fields.');

/** `{ shifts: [...] }` or `{ template, startDate, startTime, durationMinutes, recurrence }`. */
export const bulkCreateShiftsBody = z
  .strictObject({
    shifts: z.array(createShiftBody).min(1).max(maxBulkShifts).optional().describe('Up to 500 shifts.'),
    template: shiftTemplate.optional(),
    startDate: z.iso.date().optional().describe("The first occurrence's local date, YYYY-MM-DD."),
    startTime: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour)')
      .optional()
      .describe("Every occurrence's local start time, HH:MM, in the event's time zone."),
    durationMinutes: z.int().min(1).max(10080).optional(),
    recurrence: z
      .string()
      .min(1)
      .max(500)
      .optional()
      .describe(
        'An RFC 5545 RRULE value without DTSTART, e.g. FREQ=WEEKLY;BYDAY=SA;COUNT=10; COUNT or UNTIL is required.',
      ),
  })
  .superRefine((body, context) => {
    const templateFields = ['template', 'startDate', 'startTime', 'durationMinutes', 'recurrence'] as const;
    const usesTemplate = templateFields.some((field) => body[field] !== undefined);
    if (body.shifts && usesTemplate) {
      context.addIssue({
        code: 'custom',
        path: [],
        message: 'send either shifts or a template with its recurrence, not both',
      });
    } else if (!body.shifts && !usesTemplate) {
      context.addIssue({
        code: 'custom',
        path: ['shifts'],
        message: 'send shifts, or a template with its recurrence',
      });
    } else if (usesTemplate) {
      for (const field of templateFields) {
        if (body[field] === undefined)
          context.addIssue({ code: 'custom', path: [field], message: 'is required with a template' });
      }
    }
  })
  .meta({
    examples: [
      {
        template: { title: 'Saturday sort', capacity: 10 },
        startDate: '2027-03-20',
        startTime: '09:00',
        durationMinutes: 180,
        recurrence: 'FREQ=WEEKLY;BYDAY=SA;COUNT=10',
      },
    ],
  });

export const eligibility = z
  .object({
    canClaim: z.boolean(),
    reason: z
      .string()
      .nullable()
      .describe('The problem code a claim would get now; null when it would succeed.'),
    signupId: uuid.nullable().describe("The caller's active signup on this shift."),
    signupStatus: z.string().nullable(),
  })
  .meta({ id: 'Eligibility' });

export const shiftStatus = z
  .enum(['open', 'full', 'closed', 'cancelled'])
  .describe('Derived: cancelled; closed outside the signup window; full with no place left; else open.');

export const shift = z
  .object({
    id: uuid,
    eventId: uuid,
    roleId: uuid.nullable(),
    title: z.string().nullable(),
    description: z.string().nullable(),
    location: location.nullable(),
    startsAt: responseTimestamp,
    endsAt: responseTimestamp,
    capacity: z.int(),
    confirmedCount: z.int(),
    waitlistCount: z.int(),
    available: z.int().describe('capacity - confirmedCount'),
    waitlist: z.boolean(),
    signupOpensAt: responseTimestamp.nullable(),
    signupClosesAt: responseTimestamp,
    cancelUntil: responseTimestamp.nullable(),
    minAge: z.int().nullable(),
    status: shiftStatus,
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
    eligibility: eligibility.optional().describe('Present when the caller is a volunteer.'),
  })
  .meta({
    id: 'Shift',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d80',
        eventId: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d81',
        roleId: null,
        title: 'Morning sort',
        description: null,
        location: null,
        startsAt: '2027-03-20T08:00:00.000Z',
        endsAt: '2027-03-20T11:00:00.000Z',
        capacity: 8,
        confirmedCount: 3,
        waitlistCount: 0,
        available: 5,
        waitlist: true,
        signupOpensAt: null,
        signupClosesAt: '2027-03-20T08:00:00.000Z',
        cancelUntil: null,
        minAge: null,
        status: 'open',
        createdAt: '2026-11-26T09:00:00.000Z',
        updatedAt: '2026-11-26T09:00:00.000Z',
      },
    ],
  });

export const shiftList = z.object({ data: z.array(shift) }).meta({ id: 'ShiftList' });
export const shiftPage = pageOf(shift).meta({ id: 'ShiftPage' });

const shiftFilters = {
  ...pageQuery,
  roleId: z.uuid().optional(),
  available: queryBoolean.describe('true: only shifts with an open place (not cancelled).'),
  updatedSince,
};

export const listEventShiftsQuery = withRange(shiftFilters);
export const listShiftsQuery = withRange({ ...shiftFilters, eventId: z.uuid().optional() });
export const eventIdParams = z.strictObject({ eventId: z.uuid() });

/** How the shift routes are tagged and answer (core/operations.ts). */
export const shiftApi = resourceApi({ tags: ['shifts'], resource: 'shift', collection: '/v1/shifts' });
