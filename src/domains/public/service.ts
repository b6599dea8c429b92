/**
 * Public schedules (API.md §8): what any website may read of an organisation, without a token.
 * Only published events are shown: `public` ones listed, `unlisted` ones by id; drafts, private
 * and cancelled events are 404 like unknown ones. The rules are the events' and shifts' own
 * (their services list and derive); this module only narrows what they answer to public fields.
 */
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { notFound } from '../../core/errors.ts';
import type { Page } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import { events, organizations, roles, shifts, signups } from '../../db/schema.ts';
import { type Event, getEvent, listEvents } from '../events/service.ts';
import { findOrganizationBySlug } from '../organizations/service.ts';
import { shiftPage, shiftUpdatedAt } from '../shifts/service.ts';
import { volunteerOfCalendarToken } from '../volunteers/calendar-token.ts';
import { calendarText, type FeedShift } from './calendar.ts';
import type { listPublicEventsQuery, listPublicShiftsQuery, publicEvent, publicShift } from './schemas.ts';

type PublicEvent = z.output<typeof publicEvent>;
type PublicShift = z.output<typeof publicShift>;

/** The organisation behind a slug, as the public sees it; 404 when there is none. */
/** An organisation as the public reads know it (its id for the queries, never sent). */
export interface PublicOrganization {
  id: string;
  name: string;
  slug: string;
  timezone: string;
}

export async function publicOrganization(db: DbOrTx, orgSlug: string): Promise<PublicOrganization> {
  const organization = await findOrganizationBySlug(db, orgSlug);
  if (!organization) throw notFound('The organisation');
  return {
    id: organization.id,
    name: organization.name,
    slug: organization.slug,
    timezone: organization.timezone,
  };
}

function toPublicEvent(event: Event): PublicEvent {
  const { id, title, description, timezone, location, tags, startsAt, endsAt } = event;
  const { shiftCount, capacity, confirmedCount } = event;
  return {
    id,
    title,
    description,
    timezone,
    location,
    tags,
    startsAt,
    endsAt,
    shiftCount,
    capacity,
    confirmedCount,
  };
}

/** The organisation's listed events: published and public, ordered by start, then id. */
export async function listPublicEvents(
  db: DbOrTx,
  orgId: string,
  query: z.output<typeof listPublicEventsQuery>,
): Promise<Page<PublicEvent>> {
  const page = await listEvents(db, orgId, { ...query, status: 'published', visibility: 'public' });
  return { ...page, data: page.data.map(toPublicEvent) };
}

/** Whether a reader without a token may see the event: published, and public or unlisted. */
const readable = (event: { status: Event['status']; visibility: Event['visibility'] }) =>
  event.status === 'published' && event.visibility !== 'private';

/** A readable event's title; 404 otherwise, as if it did not exist (no aggregates: a cheap check). */
async function readableEventTitle(db: DbOrTx, orgId: string, eventId: string): Promise<string> {
  const [event] = await db
    .select({ title: events.title, status: events.status, visibility: events.visibility })
    .from(events)
    .where(and(eq(events.orgId, orgId), eq(events.id, eventId)));
  if (!event || !readable(event)) throw notFound('The event');
  return event.title;
}

export async function getPublicEvent(db: DbOrTx, orgId: string, eventId: string): Promise<PublicEvent> {
  const { event } = await getEvent(db, orgId, eventId);
  if (!readable(event)) throw notFound('The event');
  return toPublicEvent(event);
}

/** A readable event's shifts, ordered by start, then id, each with its role's name. */
export async function listPublicShifts(
  db: DbOrTx,
  orgId: string,
  eventId: string,
  query: z.output<typeof listPublicShiftsQuery>,
): Promise<Page<PublicShift>> {
  await readableEventTitle(db, orgId, eventId);
  const page = await shiftPage(db, orgId, { ...query, eventId }, { now: new Date() });
  const roleIds = [...new Set(page.data.flatMap((shift) => (shift.roleId ? [shift.roleId] : [])))];
  const roleRows =
    roleIds.length === 0
      ? []
      : await db
          .select({ id: roles.id, name: roles.name })
          .from(roles)
          .where(and(eq(roles.orgId, orgId), inArray(roles.id, roleIds)));
  const roleById = new Map(roleRows.map((role) => [role.id, role]));
  return {
    ...page,
    data: page.data.map((shift) => {
      const { id, title, description, location, startsAt, endsAt, capacity, confirmedCount } = shift;
      const { available, waitlist, status } = shift;
      const role = shift.roleId ? (roleById.get(shift.roleId) ?? null) : null;
      return {
        id,
        title,
        description,
        location,
        startsAt,
        endsAt,
        capacity,
        confirmedCount,
        available,
        waitlist,
        status,
        role,
      };
    }),
  };
}

/** The shifts a feed holds: from 30 days ago on, in start order, the feed's size bounded. */
const feedFrom = sql`now() - interval '30 days'`;
const feedMaxShifts = 5_000;

/** Whose shifts a feed shows: the organisation's listed events, one readable event, or a volunteer's confirmed shifts. */
export type FeedScope = { listed: true } | { eventId: string } | { volunteerId: string };

/** The non-cancelled shifts of a feed, with what a VEVENT needs of their event and role. */
export async function feedShifts(db: DbOrTx, orgId: string, scope: FeedScope): Promise<FeedShift[]> {
  const scopeCondition =
    'listed' in scope
      ? and(eq(events.status, 'published'), eq(events.visibility, 'public'))
      : 'eventId' in scope
        ? eq(shifts.eventId, scope.eventId)
        : sql`exists (select 1 from ${signups} where ${signups.orgId} = ${shifts.orgId}
            and ${signups.shiftId} = ${shifts.id} and ${signups.volunteerId} = ${scope.volunteerId}
            and ${signups.status} = 'confirmed')`;
  const rows = await db
    .select({
      id: shifts.id,
      title: shifts.title,
      description: shifts.description,
      location: shifts.location,
      startsAt: shifts.startsAt,
      endsAt: shifts.endsAt,
      updatedAt: shiftUpdatedAt,
      timesRevision: shifts.timesRevision,
      roleName: roles.name,
      event: { title: events.title, timezone: events.timezone, location: events.location },
    })
    .from(shifts)
    .innerJoin(events, and(eq(events.orgId, shifts.orgId), eq(events.id, shifts.eventId)))
    .leftJoin(roles, and(eq(roles.orgId, shifts.orgId), eq(roles.id, shifts.roleId)))
    .where(
      and(
        eq(shifts.orgId, orgId),
        isNull(shifts.cancelledAt),
        sql`${shifts.endsAt} > ${feedFrom}`,
        scopeCondition,
      ),
    )
    .orderBy(asc(shifts.startsAt), asc(shifts.id))
    .limit(feedMaxShifts);
  return rows;
}

/** The calendar of an organisation's listed events. */
export async function organizationCalendar(db: DbOrTx, orgSlug: string) {
  const organization = await publicOrganization(db, orgSlug);
  const shiftsOfFeed = await feedShifts(db, organization.id, { listed: true });
  return { orgId: organization.id, body: calendarText(organization.name, shiftsOfFeed) };
}

/** The calendar of one readable event. */
export async function eventCalendar(db: DbOrTx, orgSlug: string, eventId: string) {
  const organization = await publicOrganization(db, orgSlug);
  const title = await readableEventTitle(db, organization.id, eventId);
  const shiftsOfFeed = await feedShifts(db, organization.id, { eventId });
  return { orgId: organization.id, body: calendarText(title, shiftsOfFeed) };
}

/**
 * A volunteer's own calendar: their confirmed shifts from 30 days ago on, each with a reminder a
 * day before. 404 for an unknown or rotated token, as for an erased volunteer.
 */
export async function volunteerCalendar(db: DbOrTx, token: string): Promise<string> {
  const owner = await volunteerOfCalendarToken(db, token);
  if (!owner) throw notFound('The calendar');
  const [organization] = await db
    .select({ name: organizations.name })
    .from(organizations)
    .where(eq(organizations.id, owner.orgId));
  const shiftsOfFeed = await feedShifts(db, owner.orgId, { volunteerId: owner.volunteerId });
  return calendarText(`My shifts, ${organization?.name ?? 'Together'}`, shiftsOfFeed, {
    alarmBeforeStart: true,
  });
}
