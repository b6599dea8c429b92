/**
 * Bearer tokens → `request.principal`, and the access rule each route declares in
 * `config.auth`. Tokens look like `tg_<kind>_<random>` and are stored only as SHA-256 hashes: they
 * carry 256 random bits, so a fast hash is enough (passwords, which do not, use argon2id).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type SQL, sql } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { batchLoader, loaderPerHandle } from '../db/batch.ts';
import { type Db, preparedRows, textArray } from '../db/client.ts';
import { type ColumnObject, decodeRows, type RowOf, selectList } from '../db/columns.ts';
import { apiKeys, volunteers, volunteerTokens } from '../db/schema.ts';
import { AppError } from './errors.ts';

export type KeyRole = 'admin' | 'organiser' | 'viewer';
export type TokenKind = 'key' | 'vol';

export type Principal =
  | { kind: 'key'; orgId: string; role: KeyRole; keyId: string }
  | { kind: 'volunteer'; orgId: string; volunteerId: string; tokenId: string };

/**
 * Who may call a route. `platform` is organisation sign-up: anyone while `ADMIN_TOKEN` is unset,
 * else only its bearer. Key roles are ordered: admin ⊃ organiser ⊃ viewer.
 */
/**
 * Who may call a route (API.md's "who" column): a key role or higher, a volunteer token, or
 * either: `viewer-or-volunteer` (reads of one's own) and `organiser-or-volunteer` (a claim or a
 * cancellation by the volunteer, or by an organiser for them).
 */
export type AccessRule =
  | 'public'
  | 'platform'
  | KeyRole
  | 'volunteer'
  | 'viewer-or-volunteer'
  | 'organiser-or-volunteer';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set when the request presented ADMIN_TOKEN. */
    isPlatformAdmin: boolean;
    /** Set when an Authorization header was present but named no active credential. */
    authFailure: string | null;
  }
  interface FastifyContextConfig {
    auth?: AccessRule;
  }
}

const roleRank: Record<KeyRole, number> = { viewer: 1, organiser: 2, admin: 3 };

export function generateToken(kind: TokenKind): string {
  return `tg_${kind}_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const tokenPattern = /^tg_(key|vol)_[A-Za-z0-9_-]{43}$/;

/** What a token lookup reads: the columns that make the principal, and the hash it matched. */
const apiKeyTokenColumns = {
  tokenHash: apiKeys.tokenHash,
  orgId: apiKeys.orgId,
  id: apiKeys.id,
  role: apiKeys.role,
};
const volunteerTokenColumns = {
  tokenHash: volunteerTokens.tokenHash,
  orgId: volunteerTokens.orgId,
  id: volunteerTokens.id,
  volunteerId: volunteerTokens.volunteerId,
};

/** Rows by token hash, one per asked hash (undefined when unknown or revoked). */
function inRequestOrder<T extends { tokenHash: string }>(hashes: readonly string[], rows: T[]) {
  const byHash = new Map(rows.map((row) => [row.tokenHash, row]));
  return hashes.map((hash) => byHash.get(hash));
}

/**
 * Every authenticated request looks its token up, so the lookups of one turn of the event loop go
 * out as one prepared statement (db/batch.ts). No cache: a revoked key fails on the next request,
 * in every process.
 */
function tokenLoader<C extends ColumnObject>(name: string, columns: C, rowsFor: (hashes: SQL) => SQL) {
  return loaderPerHandle((db) =>
    batchLoader<string, RowOf<C> | undefined>(async (hashes) => {
      const rows = await preparedRows<Record<string, unknown>>(db as Db, name, rowsFor(textArray(hashes)));
      return inRequestOrder(hashes, decodeRows(columns, rows) as (RowOf<C> & { tokenHash: string })[]);
    }),
  );
}

const apiKeyLoader = tokenLoader(
  'auth-api-keys',
  apiKeyTokenColumns,
  (hashes) => sql`select ${selectList(apiKeyTokenColumns)} from ${apiKeys}
                  where ${apiKeys.tokenHash} = any(${hashes}) and ${apiKeys.revokedAt} is null`,
);

const volunteerTokenLoader = tokenLoader(
  'auth-volunteer-tokens',
  volunteerTokenColumns,
  (hashes) => sql`select ${selectList(volunteerTokenColumns)} from ${volunteerTokens}
                  join ${volunteers} on ${volunteers.orgId} = ${volunteerTokens.orgId}
                    and ${volunteers.id} = ${volunteerTokens.volunteerId}
                  where ${volunteerTokens.tokenHash} = any(${hashes}) and ${volunteerTokens.revokedAt} is null
                    and ${volunteers.erasedAt} is null`,
);

/** Looks a bearer token up; null when it is unknown, revoked or malformed. */
export async function principalForToken(db: Db, token: string): Promise<Principal | null> {
  const match = tokenPattern.exec(token);
  if (!match) return null;
  const tokenHash = hashToken(token);
  if (match[1] === 'key') {
    const key = await apiKeyLoader(db).load(tokenHash);
    return key ? { kind: 'key', orgId: key.orgId, role: key.role, keyId: key.id } : null;
  }
  const volunteerToken = await volunteerTokenLoader(db).load(tokenHash);
  return volunteerToken
    ? {
        kind: 'volunteer',
        orgId: volunteerToken.orgId,
        volunteerId: volunteerToken.volunteerId,
        tokenId: volunteerToken.id,
      }
    : null;
}

/** The bearer token of the request: undefined when absent, null when the header is malformed. */
export function bearerToken(request: FastifyRequest): string | null | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Whether a resolved caller satisfies a route's rule; throws the problem to answer otherwise. */
export function assertAccess(request: FastifyRequest, rule: AccessRule): void {
  if (rule === 'public') return;
  if (rule === 'platform') {
    if (request.isPlatformAdmin) return;
    throw new AppError(
      'unauthenticated',
      'This server requires the administrator token to create organisations.',
    );
  }
  const principal = request.principal;
  if (!principal) {
    throw new AppError(
      'unauthenticated',
      request.authFailure ?? 'Send a token in the Authorization header: "Bearer <token>".',
    );
  }
  if (principal.kind === 'volunteer') {
    if (rule === 'volunteer' || rule === 'viewer-or-volunteer' || rule === 'organiser-or-volunteer') return;
    throw new AppError('forbidden', 'A volunteer token cannot do this; use an API key.');
  }
  if (rule === 'volunteer') throw new AppError('forbidden', 'This endpoint needs a volunteer token.');
  const needed: KeyRole =
    rule === 'viewer-or-volunteer' ? 'viewer' : rule === 'organiser-or-volunteer' ? 'organiser' : rule;
  if (roleRank[principal.role] < roleRank[needed]) {
    throw new AppError('forbidden', `This needs an API key with the ${needed} role or higher.`);
  }
}

/** The caller's principal on a route whose rule guarantees one. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthenticated', 'Authentication is required.');
  return request.principal;
}

export function keyPrincipalOf(request: FastifyRequest): Extract<Principal, { kind: 'key' }> {
  const principal = principalOf(request);
  if (principal.kind !== 'key') throw new AppError('forbidden', 'This endpoint needs an API key.');
  return principal;
}

export function volunteerPrincipalOf(request: FastifyRequest): Extract<Principal, { kind: 'volunteer' }> {
  const principal = principalOf(request);
  if (principal.kind !== 'volunteer')
    throw new AppError('forbidden', 'This endpoint needs a volunteer token.');
  return principal;
}

/** The principal a route's rule guarantees: a key for key roles, a volunteer, either, or none. */
export type PrincipalUnder<R extends AccessRule> = R extends KeyRole
  ? Extract<Principal, { kind: 'key' }>
  : R extends 'volunteer'
    ? Extract<Principal, { kind: 'volunteer' }>
    : R extends 'viewer-or-volunteer' | 'organiser-or-volunteer'
      ? Principal
      : undefined;

/** The caller under a route's rule (after the auth hook has checked it). */
export function principalUnder<R extends AccessRule>(rule: R, request: FastifyRequest): PrincipalUnder<R> {
  if (rule === 'public' || rule === 'platform') return undefined as PrincipalUnder<R>;
  if (rule === 'volunteer') return volunteerPrincipalOf(request) as PrincipalUnder<R>;
  if (rule === 'viewer-or-volunteer' || rule === 'organiser-or-volunteer')
    return principalOf(request) as PrincipalUnder<R>;
  return keyPrincipalOf(request) as PrincipalUnder<R>;
}

export interface AuthOptions {
  db: Db;
  adminToken: string | undefined;
}

export const authPlugin = fp<AuthOptions>(
  async (app: FastifyInstance, options) => {
    app.decorateRequest('principal', null);
    app.decorateRequest('isPlatformAdmin', false);
    app.decorateRequest('authFailure', null);

    // Every API route must say who may call it; a forgotten rule fails at start-up, not in production.
    app.addHook('onRoute', (route) => {
      if (route.url.startsWith('/v1/') && !route.config?.auth) {
        throw new Error(`route ${route.method} ${route.url} declares no config.auth rule`);
      }
    });

    // Resolve the caller first (rate limits are keyed by it), decide access before the body is read
    // (so an anonymous caller gets 401, not a validation error).
    // A callback hook, not an async one: the requests that need no lookup (every public read, every
    // request without a token) go on at once, without a promise and a turn of the microtask queue.
    app.addHook('onRequest', (request, _reply, done) => {
      const rule = request.routeOptions.config?.auth;
      // Public routes and unknown paths never look a token up (no database work for them).
      if (!rule || rule === 'public') return done();
      const token = bearerToken(request);
      if (token === undefined) return done();
      if (token === null) {
        request.authFailure = 'The Authorization header must be "Bearer <token>".';
        return done();
      }
      if (options.adminToken && sameSecret(token, options.adminToken)) {
        request.isPlatformAdmin = true;
        return done();
      }
      principalForToken(options.db, token).then((principal) => {
        request.principal = principal;
        if (!principal) request.authFailure = 'The token is not valid or has been revoked.';
        done();
      }, done);
    });

    app.addHook('preParsing', (request, _reply, payload, done) => {
      const rule = request.routeOptions.config.auth;
      // Organisation sign-up is open while no ADMIN_TOKEN is configured.
      if (!rule || (rule === 'platform' && !options.adminToken)) return done(null, payload);
      try {
        assertAccess(request, rule);
      } catch (error) {
        return done(error as Error);
      }
      done(null, payload);
    });
  },
  { name: 'auth' },
);
