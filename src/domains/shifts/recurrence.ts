/**
 * Expands the recurrence form of bulk shift creation (API.md §6) with `rrule`, keeping each
 * occurrence's wall-clock time in the event's IANA time zone across DST changes.
 *
 * The rule is expanded in "floating" time (wall-clock values carried in UTC Date fields, where no
 * DST exists), then each occurrence's wall-clock time is placed in the zone with luxon. A local
 * time that does not exist (the spring-forward gap) moves forward by the gap, as luxon does.
 */
import { DateTime } from 'luxon';
import rrule from 'rrule';
import { AppError } from '../../core/errors.ts';
import { maxBulkShifts } from './schemas.ts';

const { RRule } = rrule;

export interface RecurrenceInput {
  startDate: string;
  startTime: string;
  durationMinutes: number;
  recurrence: string;
}

function invalid(message: string, path = 'body.recurrence'): AppError {
  return new AppError('validation-failed', `${path}: ${message}`, { errors: [{ path, message }] });
}

/** Wall-clock fields of `instant` in `timezone`, as a floating Date. */
function floatingFromInstant(instant: Date, timezone: string): Date {
  const local = DateTime.fromJSDate(instant, { zone: timezone });
  return new Date(Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second));
}

/**
 * The instant of a wall-clock time in `timezone`. A time that occurs twice (the autumn change) is
 * the first of the two, as RFC 5545 §3.3.5 says; one that does not occur moves forward by the gap.
 */
function instantFromFloating(floating: Date, timezone: string): Date {
  const local = DateTime.fromObject(
    {
      year: floating.getUTCFullYear(),
      month: floating.getUTCMonth() + 1,
      day: floating.getUTCDate(),
      hour: floating.getUTCHours(),
      minute: floating.getUTCMinutes(),
    },
    { zone: timezone },
  );
  for (const minutes of [60, 30]) {
    const earlier = local.minus({ minutes });
    if (earlier.day === local.day && earlier.hour === local.hour && earlier.minute === local.minute) {
      return earlier.toJSDate();
    }
  }
  return local.toJSDate();
}

export function expandRecurrence(
  input: RecurrenceInput,
  timezone: string,
): { startsAt: Date; endsAt: Date }[] {
  const text = input.recurrence.trim().replace(/^RRULE:/i, '');
  if (/DTSTART|\n|\r/i.test(text)) {
    throw invalid('give the rule without DTSTART: the first occurrence is startDate at startTime');
  }
  let options: ReturnType<typeof RRule.parseString>;
  try {
    options = RRule.parseString(text);
  } catch (error) {
    throw invalid(`is not an RFC 5545 RRULE value (${(error as Error).message})`);
  }
  if (options.freq === undefined || options.freq === null) throw invalid('needs a FREQ');
  if (options.freq === RRule.SECONDLY) throw invalid('FREQ=SECONDLY is finer than shift times (minutes)');
  if (/UNTIL=\d{8}(?!T)/i.test(text)) {
    throw invalid('UNTIL must be a date-time such as 20270601T000000Z, as the series has a start time');
  }
  if (!options.count && !options.until) throw invalid('needs COUNT or UNTIL, so that the series ends');
  if (options.count && options.count > maxBulkShifts) throw invalid(`COUNT may be at most ${maxBulkShifts}`);
  if (options.until && /UNTIL=\d{8}(T\d{6})?Z/i.test(text)) {
    // A UTC UNTIL is an instant: compare it with the floating occurrences in local wall-clock time.
    options.until = floatingFromInstant(options.until, timezone);
  }
  const [year, month, day] = input.startDate.split('-').map(Number) as [number, number, number];
  const [hour, minute] = input.startTime.split(':').map(Number) as [number, number];
  const dtstart = new Date(Date.UTC(year, month - 1, day, hour, minute));
  const rule = new RRule({ ...options, dtstart, tzid: null });
  let occurrences = rule.all((_, index) => index <= maxBulkShifts);
  // API.md §6 and RFC 5545 §3.3.10: the start (DTSTART) is always the first occurrence, and COUNT
  // counts it, even when it does not match the rule; rrule.js includes it only when it matches.
  const startsInRange = !options.until || dtstart.getTime() <= options.until.getTime();
  if (startsInRange && occurrences[0]?.getTime() !== dtstart.getTime()) {
    occurrences = [dtstart, ...occurrences].slice(0, options.count ?? undefined);
  }
  if (occurrences.length > maxBulkShifts) throw invalid(`expands to more than ${maxBulkShifts} occurrences`);
  if (occurrences.length === 0) throw invalid('has no occurrence');
  return occurrences.map((floating) => {
    const startsAt = instantFromFloating(floating, timezone);
    return { startsAt, endsAt: new Date(startsAt.getTime() + input.durationMinutes * 60_000) };
  });
}
