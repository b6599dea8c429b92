/**
 * Volunteers (API.md §3): organiser-managed records, erasure, tokens, self-registration and
 * sign-in with argon2id passwords, and the volunteer's own profile.
 */
import { hash, verify } from '@node-rs/argon2';
import { and, eq, gte, isNull, or, type SQL, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import { generateToken, hashToken, type Principal } from '../../core/auth.ts';
import { AppError, notFound } from '../../core/errors.ts';
import { assertVersion, versionIn } from '../../core/http-cache.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import { keysetPage, type Page, thenById } from '../../core/pagination.ts';
import { containsPattern, type DbOrTx } from '../../db/client.ts';
import { columnsExcept, qualified, type RowOf } from '../../db/columns.ts';
import { qualifications, roles, volunteers, volunteerTokens } from '../../db/schema.ts';
import { findOrganizationBySlug } from '../organizations/service.ts';
import { cancelSignups } from '../signups/places.ts';
import type {
  createVolunteerBody,
  profile as profileSchema,
  updateProfileBody,
  updateVolunteerBody,
  volunteer as volunteerSchema,
} from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;
type VolunteerPrincipal = Extract<Principal, { kind: 'volunteer' }>;

/** A volunteer as organisers see them, and as themselves (response schemas, decoded). */
export type Volunteer = z.output<typeof volunteerSchema>;
export type Profile = z.output<typeof profileSchema>;

export type VolunteerInput = z.output<typeof createVolunteerBody>;
type VolunteerChanges = z.output<typeof updateVolunteerBody>;

/** A volunteer's own data (never their secrets' hashes), with the roles they are qualified for. */
const volunteerColumns = {
  ...columnsExcept(volunteers, [
    'orgId',
    'passwordHash',
    'calendarTokenHash',
    'calendarTokenRevision',
    'erasedAt',
  ]),
  qualifications: sql<string[]>`coalesce((
    select array_agg(${qualifications.roleId}::text order by ${qualifications.roleId})
    from ${qualifications}
    where ${qualified(qualifications.orgId)} = ${qualified(volunteers.orgId)}
      and ${qualified(qualifications.volunteerId)} = ${qualified(volunteers.id)}
  ), '{}'::text[])`,
};

type VolunteerRow = RowOf<typeof volunteerColumns>;

function toVolunteer(row: VolunteerRow): Volunteer {
  return {
    id: row.id,
    name: row.name ?? '',
    email: row.email ?? '',
    phone: row.phone,
    birthDate: row.birthDate,
    notes: row.notes,
    qualifications: row.qualifications,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function toProfile(volunteer: Volunteer): Profile {
  const { notes: _, ...profile } = volunteer;
  return profile;
}

const active = (orgId: string, id: string) =>
  and(eq(volunteers.orgId, orgId), eq(volunteers.id, id), isNull(volunteers.erasedAt));

export async function getVolunteer(db: DbOrTx, orgId: string, id: string) {
  const [row] = await db.select(volunteerColumns).from(volunteers).where(active(orgId, id));
  if (!row) throw notFound('The volunteer');
  return { volunteer: toVolunteer(row), version: row.version };
}

export async function createVolunteer(tx: DbOrTx, principal: KeyPrincipal, input: VolunteerInput) {
  const id = uuidv7();
  await tx.insert(volunteers).values({ orgId: principal.orgId, id, ...input });
  await recordEvent(tx, principal.orgId, actorOf(principal), 'volunteer.created', id, {});
  return getVolunteer(tx, principal.orgId, id);
}

/** Volunteers ordered by name, then id; erased volunteers are never listed. */
export async function listVolunteers(
  db: DbOrTx,
  orgId: string,
  query: {
    limit: number;
    cursor?: string | undefined;
    q?: string | undefined;
    qualification?: string | undefined;
    updatedSince?: Date | undefined;
  },
): Promise<Page<Volunteer>> {
  const filters: (SQL | undefined)[] = [eq(volunteers.orgId, orgId), isNull(volunteers.erasedAt)];
  if (query.q) {
    const pattern = containsPattern(query.q);
    filters.push(or(sql`${volunteers.name} ilike ${pattern}`, sql`${volunteers.email} ilike ${pattern}`));
  }
  if (query.qualification) {
    filters.push(sql`exists (select 1 from ${qualifications}
      where ${qualifications.orgId} = ${volunteers.orgId} and ${qualifications.volunteerId} = ${volunteers.id}
        and ${qualifications.roleId} = ${query.qualification})`);
  }
  if (query.updatedSince) filters.push(gte(volunteers.updatedAt, query.updatedSince));
  return keysetPage(db.select(volunteerColumns).from(volunteers).$dynamic(), filters, {
    orderBy: thenById([volunteers.name, 'text'], volunteers.id),
    page: query,
    keyOf: (row) => [row.name ?? '', row.id],
    toItem: toVolunteer,
  });
}

async function applyVolunteerUpdate(
  tx: DbOrTx,
  orgId: string,
  id: string,
  changes: VolunteerChanges,
  expectedVersions: number[] | null,
) {
  if (Object.keys(changes).length === 0) {
    const current = await getVolunteer(tx, orgId, id);
    assertVersion(expectedVersions, current.version, 'The volunteer');
    return current;
  }
  const [updated] = await tx
    .update(volunteers)
    .set({ ...changes, version: sql`${volunteers.version} + 1`, updatedAt: sql`now()` })
    .where(and(active(orgId, id), versionIn(volunteers.version, expectedVersions)))
    .returning({ id: volunteers.id });
  if (!updated) {
    await getVolunteer(tx, orgId, id); // 404 when it is gone; otherwise the version did not match
    throw new AppError('precondition-failed', 'The volunteer has changed since you read it; read it again.');
  }
  return getVolunteer(tx, orgId, id);
}

export async function updateVolunteer(
  tx: DbOrTx,
  principal: KeyPrincipal,
  id: string,
  changes: VolunteerChanges,
  expectedVersions: number[] | null,
) {
  const result = await applyVolunteerUpdate(tx, principal.orgId, id, changes, expectedVersions);
  if (Object.keys(changes).length === 0) return result;
  await recordEvent(tx, principal.orgId, actorOf(principal), 'volunteer.updated', id, {
    changed: Object.keys(changes),
  });
  return result;
}

/**
 * Erasure: personal data becomes null, tokens and qualifications go, future signups are
 * cancelled (freeing their places); past signups stay, attached to the anonymous row, so that
 * reports keep their hours.
 */
export async function eraseVolunteer(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<void> {
  const [erased] = await tx
    .update(volunteers)
    .set({
      name: null,
      email: null,
      phone: null,
      birthDate: null,
      notes: null,
      passwordHash: null,
      calendarTokenHash: null,
      erasedAt: sql`now()`,
      version: sql`${volunteers.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(active(principal.orgId, id))
    .returning({ id: volunteers.id });
  if (!erased) throw notFound('The volunteer');
  await tx
    .delete(volunteerTokens)
    .where(and(eq(volunteerTokens.orgId, principal.orgId), eq(volunteerTokens.volunteerId, id)));
  await tx
    .delete(qualifications)
    .where(and(eq(qualifications.orgId, principal.orgId), eq(qualifications.volunteerId, id)));
  // Their places go to the waitlists at once, as on any other cancellation (API.md §7, invariant 4).
  await cancelSignups(tx, principal.orgId, actorOf(principal), { volunteerId: id }, { countLate: false });
  await recordEvent(tx, principal.orgId, actorOf(principal), 'volunteer.erased', id, {});
}

async function insertToken(tx: DbOrTx, orgId: string, volunteerId: string, kind: 'app' | 'session') {
  const token = generateToken('vol');
  const [row] = await tx
    .insert(volunteerTokens)
    .values({ orgId, id: uuidv7(), volunteerId, kind, tokenHash: hashToken(token) })
    .returning({ id: volunteerTokens.id, createdAt: volunteerTokens.createdAt });
  if (!row) throw new Error('insert returned no token');
  return { ...row, token };
}

/** A token for an app that does its own sign-in (API.md §3). */
export async function issueVolunteerToken(tx: DbOrTx, principal: KeyPrincipal, volunteerId: string) {
  await getVolunteer(tx, principal.orgId, volunteerId);
  const issued = await insertToken(tx, principal.orgId, volunteerId, 'app');
  await recordEvent(tx, principal.orgId, actorOf(principal), 'volunteer_token.created', volunteerId, {
    tokenId: issued.id,
  });
  return issued;
}

// ── Passwords and sessions ───────────────────────────────────────────────────────────────────

// 2 is Algorithm.Argon2id (a const enum, which isolated modules cannot import); the other
// parameters are the library's defaults (m = 19 MiB, t = 2, p = 1), OWASP's recommendation.
const argon2Options = { algorithm: 2 } as const;
let dummyHash: Promise<string> | undefined;

export function hashPassword(password: string): Promise<string> {
  return hash(password, argon2Options);
}

/**
 * Verifies a password against a hash, or against a fixed dummy hash when there is none, so that an
 * unknown email costs the same time as a wrong password.
 */
async function passwordMatches(password: string, passwordHash: string | null): Promise<boolean> {
  dummyHash ??= hash('together-dummy-password', argon2Options);
  const matches = await verify(passwordHash ?? (await dummyHash), password).catch(() => false);
  return passwordHash !== null && matches;
}

async function organizationIdBySlug(db: DbOrTx, slug: string): Promise<string> {
  const organization = await findOrganizationBySlug(db, slug);
  if (!organization) throw notFound('The organisation');
  return organization.id;
}

export async function registerVolunteer(
  tx: DbOrTx,
  orgSlug: string,
  input: { name: string; email: string; password: string },
) {
  const orgId = await organizationIdBySlug(tx, orgSlug);
  const id = uuidv7();
  await tx.insert(volunteers).values({
    orgId,
    id,
    name: input.name,
    email: input.email,
    passwordHash: await hashPassword(input.password),
  });
  const issued = await insertToken(tx, orgId, id, 'session');
  await recordEvent(tx, orgId, { kind: 'volunteer', id }, 'volunteer.registered', id, {});
  const { volunteer } = await getVolunteer(tx, orgId, id);
  return { volunteer: toProfile(volunteer), token: issued.token };
}

export async function signIn(tx: DbOrTx, orgSlug: string, input: { email: string; password: string }) {
  const orgId = await organizationIdBySlug(tx, orgSlug);
  const [candidate] = await tx
    .select({ id: volunteers.id, passwordHash: volunteers.passwordHash })
    .from(volunteers)
    .where(
      and(
        eq(volunteers.orgId, orgId),
        sql`lower(${volunteers.email}) = lower(${input.email})`,
        isNull(volunteers.erasedAt),
      ),
    );
  if (!candidate || !(await passwordMatches(input.password, candidate.passwordHash ?? null))) {
    throw new AppError('invalid-credentials', 'The email or the password is not right.');
  }
  const issued = await insertToken(tx, orgId, candidate.id, 'session');
  await recordEvent(tx, orgId, { kind: 'volunteer', id: candidate.id }, 'session.created', candidate.id, {});
  const { volunteer } = await getVolunteer(tx, orgId, candidate.id);
  return { volunteer: toProfile(volunteer), token: issued.token };
}

export async function getProfile(db: DbOrTx, principal: VolunteerPrincipal) {
  const { volunteer, version } = await getVolunteer(db, principal.orgId, principal.volunteerId);
  return { profile: toProfile(volunteer), version };
}

export async function updateProfile(
  tx: DbOrTx,
  principal: VolunteerPrincipal,
  changes: z.output<typeof updateProfileBody>,
  expectedVersions: number[] | null,
) {
  const { volunteer, version } = await applyVolunteerUpdate(
    tx,
    principal.orgId,
    principal.volunteerId,
    changes,
    expectedVersions,
  );
  await recordEvent(tx, principal.orgId, actorOf(principal), 'volunteer.updated', principal.volunteerId, {
    changed: Object.keys(changes),
  });
  return { profile: toProfile(volunteer), version };
}

export async function revokeSession(tx: DbOrTx, principal: VolunteerPrincipal): Promise<void> {
  await tx
    .update(volunteerTokens)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(volunteerTokens.orgId, principal.orgId), eq(volunteerTokens.id, principal.tokenId)));
  await recordEvent(tx, principal.orgId, actorOf(principal), 'session.deleted', principal.volunteerId, {});
}

// ── Qualifications ───────────────────────────────────────────────────────────────────────────

async function touchVolunteer(tx: DbOrTx, orgId: string, id: string) {
  await tx
    .update(volunteers)
    .set({ version: sql`${volunteers.version} + 1`, updatedAt: sql`now()` })
    .where(active(orgId, id));
}

async function assertRoleExists(tx: DbOrTx, orgId: string, roleId: string) {
  const [role] = await tx
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.id, roleId)));
  if (!role) throw notFound('The role');
}

export async function grantQualification(
  tx: DbOrTx,
  principal: KeyPrincipal,
  volunteerId: string,
  roleId: string,
) {
  await getVolunteer(tx, principal.orgId, volunteerId);
  await assertRoleExists(tx, principal.orgId, roleId);
  const inserted = await tx
    .insert(qualifications)
    .values({ orgId: principal.orgId, volunteerId, roleId })
    .onConflictDoNothing()
    .returning({ roleId: qualifications.roleId });
  if (inserted.length === 0) return; // already held: PUT is idempotent
  await touchVolunteer(tx, principal.orgId, volunteerId);
  await recordEvent(tx, principal.orgId, actorOf(principal), 'qualification.granted', volunteerId, {
    roleId,
  });
}

export async function revokeQualification(
  tx: DbOrTx,
  principal: KeyPrincipal,
  volunteerId: string,
  roleId: string,
) {
  await getVolunteer(tx, principal.orgId, volunteerId);
  const deleted = await tx
    .delete(qualifications)
    .where(
      and(
        eq(qualifications.orgId, principal.orgId),
        eq(qualifications.volunteerId, volunteerId),
        eq(qualifications.roleId, roleId),
      ),
    )
    .returning({ roleId: qualifications.roleId });
  if (deleted.length === 0) throw notFound('The qualification');
  await touchVolunteer(tx, principal.orgId, volunteerId);
  await recordEvent(tx, principal.orgId, actorOf(principal), 'qualification.revoked', volunteerId, {
    roleId,
  });
}
