/** Roles (API.md §4): kinds of work; a restricted role needs a qualification to claim. */
import { and, eq, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { Principal } from '../../core/auth.ts';
import { AppError, notFound, refusals } from '../../core/errors.ts';
import { assertVersion, versionIn } from '../../core/http-cache.ts';
import { actorOf, recordEvent } from '../../core/outbox.ts';
import { keysetPage, type Page, thenById } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import { columnsExcept, type RowOf } from '../../db/columns.ts';
import { qualifications, roles, shifts, volunteers } from '../../db/schema.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

const roleColumns = columnsExcept(roles, ['orgId']);
//};

type RoleRow = RowOf<typeof roleColumns>;
export type Role = Omit<RoleRow, 'version'>;

function toRole({ version: _, ...role }: RoleRow): Role {
  return role;
}

export async function getRole(db: DbOrTx, orgId: string, id: string) {
  const [row] = await db
    .select(roleColumns)
    .from(roles)
    .where(and(eq(roles.orgId, orgId), eq(roles.id, id)));
  if (!row) throw notFound('The role');
  return { role: toRole(row), version: row.version };
}

export async function createRole(
  tx: DbOrTx,
  principal: KeyPrincipal,
  input: { name: string; description?: string | undefined; restricted: boolean },
) {
  const id = uuidv7();
  await tx.insert(roles).values({ orgId: principal.orgId, id, ...input });
  await recordEvent(tx, principal.orgId, actorOf(principal), 'role.created', id, { roleId: id });
  return getRole(tx, principal.orgId, id);
}

/** Roles ordered by name, then id. */
export async function listRoles(
  db: DbOrTx,
  orgId: string,
  query: { limit: number; cursor?: string | undefined },
): Promise<Page<Role>> {
  return keysetPage(db.select(roleColumns).from(roles).$dynamic(), [eq(roles.orgId, orgId)], {
    orderBy: thenById([roles.name, 'text'], roles.id),
    page: query,
    keyOf: (row) => [row.name, row.id],
    toItem: toRole,
  });
}

export async function updateRole(
  tx: DbOrTx,
  principal: KeyPrincipal,
  id: string,
  changes: {
    name?: string | undefined;
    description?: string | null | undefined;
    restricted?: boolean | undefined;
  },
  expectedVersions: number[] | null,
) {
  const current = await getRole(tx, principal.orgId, id);
  if (Object.keys(changes).length === 0) {
    assertVersion(expectedVersions, current.version, 'The role');
    return current;
  }
  const [updated] = await tx
    .update(roles)
    .set({ ...changes, version: sql`${roles.version} + 1`, updatedAt: sql`now()` })
    .where(
      and(eq(roles.orgId, principal.orgId), eq(roles.id, id), versionIn(roles.version, expectedVersions)),
    )
    .returning({ id: roles.id });
  if (!updated)
    throw new AppError('precondition-failed', 'The role has changed since you read it; read it again.');
  await recordEvent(tx, principal.orgId, actorOf(principal), 'role.updated', id, {
    roleId: id,
    changed: Object.keys(changes),
  });
  return getRole(tx, principal.orgId, id);
}

/** Deletes a role no shift uses; its qualifications go with it. */
export async function deleteRole(tx: DbOrTx, principal: KeyPrincipal, id: string): Promise<void> {
  await getRole(tx, principal.orgId, id);
  const [used] = await tx
    .select({ id: shifts.id })
    .from(shifts)
    .where(and(eq(shifts.orgId, principal.orgId), eq(shifts.roleId, id)))
    .limit(1);
  if (used) throw refusals.roleInUse();
  // The qualifications go with the role (ON DELETE CASCADE), which changes their volunteers'
  // representation: move their version and updatedAt so that ETags and `updatedSince` syncs see it.
  await tx
    .update(volunteers)
    .set({ version: sql`${volunteers.version} + 1`, updatedAt: sql`now()` })
    .where(
      and(
        eq(volunteers.orgId, principal.orgId),
        sql`exists (select 1 from ${qualifications} where ${qualifications.orgId} = ${volunteers.orgId}
          and ${qualifications.volunteerId} = ${volunteers.id} and ${qualifications.roleId} = ${id})`,
      ),
    );
  await tx.delete(roles).where(and(eq(roles.orgId, principal.orgId), eq(roles.id, id)));
  await recordEvent(tx, principal.orgId, actorOf(principal), 'role.deleted', id, { roleId: id });
}
