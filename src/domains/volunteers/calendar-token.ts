/**
 * The volunteer's private calendar feed URL (API.md §8): `/v1/calendar/<token>.ics`. The token is
 * an HMAC of the volunteer and their token revision under the installation's calendar key, so it
 * is never stored (only its SHA-256, to find the volunteer by it) and `GET /v1/me` can show it
 * again; a rotation bumps the revision, and the old URL is unknown from that moment.
 */
import { createHmac } from 'node:crypto';
import { and, eq, isNull, ne, or, sql } from 'drizzle-orm';
import { hashToken } from '../../core/auth.ts';
import { notFound } from '../../core/errors.ts';
import { recordEvent } from '../../core/outbox.ts';
import type { DbOrTx } from '../../db/client.ts';
import { volunteers } from '../../db/schema.ts';

export const calendarKeyName = 'calendar-feeds';

/** 43 characters of base64url: 256 bits. */
export const calendarTokenPattern = /^[A-Za-z0-9_-]{43}$/;

function tokenFor(key: Buffer, orgId: string, volunteerId: string, revision: number): string {
  return createHmac('sha256', key).update(`${orgId}:${volunteerId}:${revision}`).digest('base64url');
}

/**
 * The volunteer's current feed token. Its hash is stored the first time it is asked for (only
 * this shows the URL, so no URL exists whose hash is not stored).
 */
export async function calendarTokenOf(db: DbOrTx, key: Buffer, orgId: string, volunteerId: string) {
  const [row] = await db
    .select({ revision: volunteers.calendarTokenRevision, hash: volunteers.calendarTokenHash })
    .from(volunteers)
    .where(and(eq(volunteers.orgId, orgId), eq(volunteers.id, volunteerId), isNull(volunteers.erasedAt)));
  if (!row) throw notFound('The volunteer');
  const token = tokenFor(key, orgId, volunteerId, row.revision);
  const hash = hashToken(token);
  if (row.hash !== hash) {
    // Conditional on the revision read: a concurrent rotation wins, and this token is then stale.
    await db
      .update(volunteers)
      .set({ calendarTokenHash: hash })
      .where(
        and(
          eq(volunteers.orgId, orgId),
          eq(volunteers.id, volunteerId),
          eq(volunteers.calendarTokenRevision, row.revision),
          or(isNull(volunteers.calendarTokenHash), ne(volunteers.calendarTokenHash, hash)),
        ),
      );
  }
  return token;
}

/** A new feed token: the old one stops working at once. The profile's version moves (its calendarUrl changed). */
export async function rotateCalendarToken(tx: DbOrTx, key: Buffer, orgId: string, volunteerId: string) {
  const [row] = await tx
    .update(volunteers)
    .set({
      calendarTokenRevision: sql`${volunteers.calendarTokenRevision} + 1`,
      calendarTokenHash: null,
      version: sql`${volunteers.version} + 1`,
    })
    .where(and(eq(volunteers.orgId, orgId), eq(volunteers.id, volunteerId), isNull(volunteers.erasedAt)))
    .returning({ revision: volunteers.calendarTokenRevision });
  if (!row) throw notFound('The volunteer');
  await recordEvent(
    tx,
    orgId,
    { kind: 'volunteer', id: volunteerId },
    'calendar_token.updated',
    volunteerId,
    {},
  );
  return calendarTokenOf(tx, key, orgId, volunteerId);
}

/** Whose feed a token opens: null when it is unknown, rotated away, or the volunteer was erased. */
export async function volunteerOfCalendarToken(db: DbOrTx, token: string) {
  if (!calendarTokenPattern.test(token)) return null;
  const [row] = await db
    .select({ orgId: volunteers.orgId, volunteerId: volunteers.id })
    .from(volunteers)
    .where(and(eq(volunteers.calendarTokenHash, hashToken(token)), isNull(volunteers.erasedAt)));
  return row ?? null;
}
