/**
 * Calendar feeds (API.md §8 "Calendar feeds") as RFC 5545 text, made by ical-generator with the
 * VTIMEZONE blocks of timezones-ical-library: one VEVENT per shift, times in the event's zone.
 * Every value comes from the shifts themselves (DTSTAMP and LAST-MODIFIED are the shift's
 * `updatedAt`), so a feed's bytes, and its ETag, change only when its shifts do.
 */
import { ICalAlarmType, ICalCalendar, ICalCalendarMethod } from 'ical-generator';
import { DateTime } from 'luxon';
import { tzlib_get_ical_block } from 'timezones-ical-library';
import type { Location } from '../../db/schema.ts';

/** One shift as a feed shows it. */
export interface FeedShift {
  id: string;
  title: string | null;
  description: string | null;
  location: Location | null;
  startsAt: Date;
  endsAt: Date;
  updatedAt: Date;
  timesRevision: number;
  roleName: string | null;
  event: { title: string; timezone: string; location: Location | null };
}

/** Calendar apps poll a feed this often. */
const refreshSeconds = 60 * 60;

const vtimezones = new Map<string, string | null>();

/** The VTIMEZONE of a zone, from the maintained zone database (once per zone); none for a zone it lacks. */
function vtimezone(zone: string): string | null {
  let text = vtimezones.get(zone);
  if (text === undefined) {
    const block = tzlib_get_ical_block(zone);
    const first = Array.isArray(block) ? block[0] : undefined;
    text = first?.includes('BEGIN:VTIMEZONE') ? first : null;
    vtimezones.set(zone, text);
  }
  return text;
}

function locationText(location: Location | null): string | null {
  if (!location) return null;
  return location.address ? `${location.name}, ${location.address}` : location.name;
}

/**
 * True when the wall-clock time of `at` in `zone` occurs twice (the hour repeated when clocks go
 * back). RFC 5545 says a TZID time then means the first occurrence, but parsers differ (ical.js
 * takes the second), so such a shift's times are written in UTC, which every reader agrees on.
 */
function repeatedLocalTime(at: Date, zone: string): boolean {
  const local = DateTime.fromJSDate(at, { zone });
  // Far from a change of offset (the same three hours before and after), nothing repeats.
  if (local.minus({ hours: 3 }).offset === local.plus({ hours: 3 }).offset) return false;
  return local.getPossibleOffsets().length > 1;
}

/** The UID of a shift's VEVENT: the same in every feed, every day. */
export function shiftUid(shiftId: string): string {
  return `shift-${shiftId}@together`;
}

export function calendarText(
  name: string,
  shifts: FeedShift[],
  options: { alarmBeforeStart?: boolean } = {},
): string {
  const calendar = new ICalCalendar({
    name,
    method: ICalCalendarMethod.PUBLISH,
    ttl: refreshSeconds,
    prodId: { company: 'Together', product: 'Volunteer shifts', language: 'EN' },
  });
  // No calendar-wide zone (DTSTAMP stays UTC); a VTIMEZONE for each zone the events use.
  calendar.timezone({ name: null, generator: vtimezone });
  for (const shift of shifts) {
    const zone = shift.event.timezone;
    const inZone = !repeatedLocalTime(shift.startsAt, zone) && !repeatedLocalTime(shift.endsAt, zone);
    const event = calendar.createEvent({
      id: shiftUid(shift.id),
      sequence: shift.timesRevision,
      stamp: shift.updatedAt,
      lastModified: shift.updatedAt,
      ...(inZone
        ? {
            start: DateTime.fromJSDate(shift.startsAt, { zone }),
            end: DateTime.fromJSDate(shift.endsAt, { zone }),
            timezone: zone,
          }
        : { start: shift.startsAt, end: shift.endsAt }),
      summary: shift.title ?? shift.roleName ?? shift.event.title,
      description: shift.description,
      location: locationText(shift.location ?? shift.event.location),
    });
    if (options.alarmBeforeStart) {
      event.createAlarm({
        type: ICalAlarmType.display,
        trigger: 24 * 60 * 60,
        description: `Tomorrow: ${shift.title ?? shift.roleName ?? shift.event.title}`,
      });
    }
  }
  return calendar.toString();
}
