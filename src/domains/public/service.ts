/**
 * Public schedules (API.md §8): what any website may read of an organisation, without a token.
 * Only published events are shown: `public` ones listed, `unlisted` ones by id; drafts, private
 * and cancelled events are 404 like unknown ones. The rules are the events' and shifts' own
 * (their services list and derive); this module only narrows what they answer to public fields.
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { z } from 'zod';
import { notFound } from '../../core/errors.ts';
import type { Page } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import { roles } from '../../db/schema.ts';
import { type Event, getEvent, listEvents } from '../events/service.ts';
import { findOrganizationBySlug } from '../organizations/service.ts';
import { shiftPage } from '../shifts/service.ts';
import type { listPublicEventsQuery, listPublicShiftsQuery, publicEvent, publicShift } from './schemas.ts';

type PublicEvent = z.output<typeof publicEvent>;
type PublicShift = z.output<typeof publicShift>;

/** The organisation behind a slug, as the public sees it; 404 when there is none. */
export async function publicOrganization(db: DbOrTx, orgSlug: string) {
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

/** A published event that is public or unlisted; 404 otherwise, as if it did not exist. */
async function readableEvent(db: DbOrTx, orgId: string, eventId: string): Promise<Event> {
  const { event } = await getEvent(db, orgId, eventId);
  if (event.status !== 'published' || event.visibility === 'private') throw notFound('The event');
  return event;
}

export async function getPublicEvent(db: DbOrTx, orgId: string, eventId: string): Promise<PublicEvent> {
  return toPublicEvent(await readableEvent(db, orgId, eventId));
}

/** A readable event's shifts, ordered by start, then id, each with its role's name. */
export async function listPublicShifts(
  db: DbOrTx,
  orgId: string,
  eventId: string,
  query: z.output<typeof listPublicShiftsQuery>,
): Promise<Page<PublicShift>> {
  await readableEvent(db, orgId, eventId);
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
