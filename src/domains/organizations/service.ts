/**
 * Organisations and their API keys (API.md §2). Plain functions over a database handle: the
 * routes open transactions (through `respondToWrite`) and pass them in.
 */
import { and, eq, isNull, sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import type { z } from 'zod';
import { generateToken, hashToken, type KeyRole, type Principal } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { assertVersion, versionIn } from '../../core/http-cache.ts';
import { type Actor, recordEvent } from '../../core/outbox.ts';
import { cursorTime, keysetPage, type Page, thenById } from '../../core/pagination.ts';
import type { DbOrTx } from '../../db/client.ts';
import { columnsExcept } from '../../db/columns.ts';
import { apiKeys, organizations } from '../../db/schema.ts';
import type {
  apiKey as apiKeySchema,
  createOrganizationBody,
  organization as organizationSchema,
} from './schemas.ts';

type KeyPrincipal = Extract<Principal, { kind: 'key' }>;

/** An organisation and an API key as the API describes them (response schemas, decoded). */
export type Organization = z.output<typeof organizationSchema>;
export type ApiKey = z.output<typeof apiKeySchema>;
export type ApiKeyWithToken = ApiKey & { token: string };

export type OrganizationInput = z.output<typeof createOrganizationBody>;

/** `longestShift` is bookkeeping for the shift lists' overlap bound (shifts service). */
const organizationColumns = columnsExcept(organizations, ['longestShift', 'version']);

/** A key as it is listed: never its token's hash. */
const apiKeyColumns = columnsExcept(apiKeys, ['orgId', 'tokenHash', 'revokedAt']);
//};

/** Creates an organisation with its first admin key; the only moment that key's token is known. */
export async function createOrganization(
  tx: DbOrTx,
  actor: Actor,
  input: OrganizationInput,
): Promise<{ organization: Organization; version: number; apiKey: ApiKeyWithToken }> {
  const [created] = await tx
    .insert(organizations)
    .values({ id: uuidv7(), ...input })
    .returning({ ...organizationColumns, version: organizations.version });
  if (!created) throw new Error('insert returned no organisation');
  const { version, ...organization } = created;
  const apiKey = await insertApiKey(tx, organization.id, { name: 'Initial admin key', role: 'admin' });
  await recordEvent(tx, organization.id, actor, 'organization.created', organization.id, {
    slug: organization.slug,
  });
  return { organization, version, apiKey };
}

export async function getOrganization(db: DbOrTx, orgId: string) {
  const [row] = await db
    .select({ ...organizationColumns, version: organizations.version })
    .from(organizations)
    .where(eq(organizations.id, orgId));
  if (!row) throw new AppError('not-found', 'The organisation does not exist.');
  const { version, ...organization } = row;
  return { organization, version };
}

/**
 * Applies a partial update. `expectedVersions` comes from If-Match: the check is part of the
 * UPDATE, so two concurrent writers cannot both win.
 */
export async function updateOrganization(
  tx: DbOrTx,
  principal: KeyPrincipal,
  changes: Partial<OrganizationInput>,
  expectedVersions: number[] | null,
) {
  if (Object.keys(changes).length === 0) {
    const current = await getOrganization(tx, principal.orgId);
    assertVersion(expectedVersions, current.version, 'The organisation');
    return current;
  }
  const [row] = await tx
    .update(organizations)
    .set({ ...changes, version: sql`${organizations.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(organizations.id, principal.orgId), versionIn(organizations.version, expectedVersions)))
    .returning({ ...organizationColumns, version: organizations.version });
  if (!row) {
    await getOrganization(tx, principal.orgId); // 404 if it is gone, else the version did not match
    throw new AppError(
      'precondition-failed',
      'The organisation has changed since you read it; read it again.',
    );
  }
  await recordEvent(
    tx,
    principal.orgId,
    { kind: 'key', id: principal.keyId },
    'organization.updated',
    principal.orgId,
    { changed: Object.keys(changes) },
  );
  const { version, ...organization } = row;
  return { organization, version };
}

async function insertApiKey(
  tx: DbOrTx,
  orgId: string,
  input: { name: string; role: KeyRole },
): Promise<ApiKeyWithToken> {
  const token = generateToken('key');
  const [key] = await tx
    .insert(apiKeys)
    .values({ orgId, id: uuidv7(), name: input.name, role: input.role, tokenHash: hashToken(token) })
    .returning(apiKeyColumns);
  if (!key) throw new Error('insert returned no key');
  return { ...key, token };
}

export async function createApiKey(
  tx: DbOrTx,
  principal: KeyPrincipal,
  input: { name: string; role: KeyRole },
): Promise<ApiKeyWithToken> {
  return createApiKeyAs(tx, principal.orgId, { kind: 'key', id: principal.keyId }, input);
}

/** Active keys, oldest first (created_at, id). */
export async function listApiKeys(
  db: DbOrTx,
  principal: KeyPrincipal,
  query: { limit: number; cursor?: string | undefined },
): Promise<Page<ApiKey>> {
  return keysetPage(
    db
      .select({ ...apiKeyColumns, createdAtText: cursorTime(apiKeys.createdAt) })
      .from(apiKeys)
      .$dynamic(),
    [eq(apiKeys.orgId, principal.orgId), isNull(apiKeys.revokedAt)],
    {
      orderBy: thenById([apiKeys.createdAt, 'timestamptz'], apiKeys.id),
      page: query,
      keyOf: (row) => [row.createdAtText, row.id],
      toItem: ({ createdAtText: _, ...key }) => key,
    },
  );
}

/**
 * Revokes a key at once. The last active admin key cannot be revoked: the organisation would be
 * locked out of its own settings. The admin keys are locked first, so two concurrent revocations
 * of the last two admin keys cannot both pass the check.
 */
export async function revokeApiKey(tx: DbOrTx, principal: KeyPrincipal, keyId: string): Promise<void> {
  const activeAdmins = await tx
    .select({ id: apiKeys.id })
    .from(apiKeys)
    .where(and(eq(apiKeys.orgId, principal.orgId), eq(apiKeys.role, 'admin'), isNull(apiKeys.revokedAt)))
    .for('update');
  const [revoked] = await tx
    .update(apiKeys)
    .set({ revokedAt: sql`now()` })
    .where(and(eq(apiKeys.orgId, principal.orgId), eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id, role: apiKeys.role });
  if (!revoked) throw new AppError('not-found', 'The API key does not exist or is already revoked.');
  if (revoked.role === 'admin' && activeAdmins.filter((admin) => admin.id !== keyId).length === 0) {
    throw new AppError(
      'invalid-state',
      'This is the last admin key; create another admin key before revoking it.',
    );
  }
  await recordEvent(tx, principal.orgId, { kind: 'key', id: principal.keyId }, 'api_key.revoked', keyId, {});
}

/** For the operator's CLI (`npm run keys:create`), which acts outside any organisation's key. */
export async function findOrganizationBySlug(db: DbOrTx, slug: string) {
  const [row] = await db.select(organizationColumns).from(organizations).where(eq(organizations.slug, slug));
  return row;
}

export async function createApiKeyAs(
  tx: DbOrTx,
  orgId: string,
  actor: Actor,
  input: { name: string; role: KeyRole },
): Promise<ApiKeyWithToken> {
  const key = await insertApiKey(tx, orgId, input);
  await recordEvent(tx, orgId, actor, 'api_key.created', key.id, { name: key.name, role: key.role });
  return key;
}
