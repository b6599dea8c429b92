/**
 * A signup as it is read: one column object (the query builder's selection, and the select list
 * of the hot raw statements in places.ts), the row type derived from it, and the one mapper to
 * the API's `Signup`, whose type is the response schema's.
 */
import { sql } from 'drizzle-orm';
import type { z } from 'zod';
import { columnsExcept, type RowOf } from '../../db/columns.ts';
import { signups } from '../../db/schema.ts';
import type { signup as signupSchema } from './schemas.ts';

/** A signup as the API describes it (its response schema, decoded: timestamps as Dates). */
export type Signup = z.output<typeof signupSchema>;
export type SignupStatus = Signup['status'];

export const signupColumns = {
  // `period` is the shift's interval, copied for the exclusion constraint: not part of a signup.
  ...columnsExcept(signups, ['orgId', 'period']),
  /** The 1-based rank among the shift's waitlisted signups (API.md §7); null when not waitlisted. */
  waitlistPosition: sql<number | null>`case when signups.status = 'waitlisted' then (
    select count(*)::int from signups w
    where w.org_id = signups.org_id and w.shift_id = signups.shift_id and w.status = 'waitlisted'
      and (w.created_at, w.id) <= (signups.created_at, signups.id)
  ) end`.mapWith(Number),
};

export type SignupRow = RowOf<typeof signupColumns>;

export function toSignup({ version: _, ...signup }: SignupRow): Signup {
  return signup;
}
