/**
 * Idempotency-Key (API.md §1 "idempotency"). Every POST handler runs its effect through
 * `respondToWrite`, which opens the transaction the effect uses:
 *
 * - without a key, the effect simply runs in a transaction;
 * - with a key, the transaction first takes a transaction-scoped advisory lock on (caller, key).
 *   A duplicate that arrives while the first is still running cannot take it and is answered at
 *   once with `409 idempotency-key-in-use` and `Retry-After` (it holds no connection while
 *   waiting). Then the key's row is inserted, the effect runs, and the row is completed with the
 *   response before the transaction commits: a later duplicate finds it and replays it. An effect
 *   can never happen twice.
 * - 4xx outcomes are stored and replayed like successes; the effect's partial writes are undone by
 *   a savepoint. A 5xx rolls everything back, key included, so the key may be used again.
 *
 * A stored response may carry a token shown once (a new API key, a volunteer session), so the key
 * is stored as a hash and the body sealed (AES-256-GCM) under a key derived from what only the
 * caller can bring back: its bearer token, the idempotency key and the request body. A database
 * dump reveals no token.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Db, type DbOrTx, queryRows } from '../db/client.ts';
import { idempotencyKeys } from '../db/schema.ts';
import { bearerToken } from './auth.ts';
import { AppError, problemBody, problemFromConstraint } from './errors.ts';

export interface WriteResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const keyLifetimeHours = 24;

/** Whom a key belongs to: the same key from two credentials names two different requests. */
function callerOf(request: FastifyRequest): string {
  const principal = request.principal;
  if (principal?.kind === 'key') return `key:${principal.keyId}`;
  // Per token, not per volunteer: the sealed response can only be opened with the same token.
  if (principal?.kind === 'volunteer') return `volunteer-token:${principal.tokenId}`;
  if (request.isPlatformAdmin) return 'platform-admin';
  return `anonymous:${request.ip}`;
}

function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, item]) => `${JSON.stringify(name)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (!key || key.length > 255) {
    throw new AppError('validation-failed', 'Idempotency-Key must be 1 to 255 characters.', {
      errors: [{ path: 'headers.idempotency-key', message: 'must be 1 to 255 characters' }],
    });
  }
  return key;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

function seal(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', ...[iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64url'))].join('.');
}

/** The plaintext, or undefined when this key cannot open it (another token or body). */
function unseal(key: Buffer, sealed: string): string | undefined {
  const [version, iv, tag, ciphertext] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || ciphertext === undefined) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    return undefined;
  }
}

interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  payload: string | undefined;
}

/** Serialises a response exactly as it will be sent, so that a replay is byte-identical. */
function storedResponseOf(reply: FastifyReply, response: WriteResponse): StoredResponse {
  reply.code(response.status);
  const payload = response.body === undefined ? undefined : String(reply.serialize(response.body));
  return {
    status: response.status,
    headers: {
      ...(payload === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      ...response.headers,
    },
    payload,
  };
}

function storedProblemOf(request: FastifyRequest, error: AppError): StoredResponse {
  return {
    status: error.status,
    headers: { 'content-type': 'application/problem+json', ...error.options.headers },
    payload: JSON.stringify(problemBody(request, error)),
  };
}

function send(reply: FastifyReply, response: StoredResponse, replayed: boolean) {
  reply.code(response.status).headers(response.headers);
  if (replayed) reply.header('idempotent-replayed', 'true');
  return reply.send(response.payload);
}

const reused = () =>
  new AppError(
    'idempotency-key-reused',
    'This Idempotency-Key was used with a different request; use a new key for a new request.',
  );

/** Forgets keys past their 24 hours; run periodically by the server (any number of processes may). */
export async function purgeExpiredIdempotencyKeys(db: Db): Promise<void> {
  await db.delete(idempotencyKeys).where(sql`${idempotencyKeys.expiresAt} <= now()`);
}

/**
 * Runs a POST's effect in a transaction and sends its response, honouring `Idempotency-Key`.
 * The effect throws AppError for a refusal; anything else is a 5xx.
 */
export async function respondToWrite(
  request: FastifyRequest,
  reply: FastifyReply,
  db: Db,
  effect: (tx: DbOrTx) => Promise<WriteResponse>,
  options: {
    /**
     * The effect's writes are one statement, atomic by itself: without an Idempotency-Key it runs
     * without a transaction (two round trips fewer on hot paths such as claims).
     */
    atomicEffect?: boolean;
  } = {},
) {
  const key = idempotencyKeyOf(request);
  if (key === undefined) {
    const response = options.atomicEffect ? await effect(db) : await db.transaction(effect);
    reply.code(response.status).headers(response.headers ?? {});
    return reply.send(response.body);
  }

  const caller = callerOf(request);
  const keyHash = sha256(key).toString('hex');
  const body = canonicalJson(request.body);
  const requestHash = sha256(`${request.method} ${request.url}\n${body}`).toString('hex');
  const secret = bearerToken(request) ?? caller;
  const sealingKey = sha256(`together/idempotency/v1\0${secret}\0${key}\0${body}`);
  // A 64-bit advisory lock id for (caller, key): concurrent duplicates meet on it.
  const lockId = BigInt.asIntN(
    64,
    BigInt(`0x${sha256(`${caller}\0${keyHash}`).subarray(0, 8).toString('hex')}`),
  );
  const orgId = request.principal?.orgId ?? null;
  const expiresAt = sql`now() + make_interval(hours => ${keyLifetimeHours})`;

  type Outcome = { fresh: StoredResponse; replay?: never } | { replay: StoredResponse; fresh?: never };
  const outcome = await db.transaction(async (tx): Promise<Outcome> => {
    const [lock] = await queryRows<{ acquired: boolean }>(
      tx,
      sql`select pg_try_advisory_xact_lock(${lockId.toString()}::bigint) as acquired`,
    );
    if (!lock?.acquired) {
      throw new AppError(
        'idempotency-key-in-use',
        'A request with this Idempotency-Key is still running; retry shortly.',
        {
          headers: { 'retry-after': '1' },
        },
      );
    }
    // Take the key, or take over an expired one. Placeholder response columns are completed
    // below, before commit: no other transaction ever sees them.
    const claimed = await tx
      .insert(idempotencyKeys)
      .values({ caller, keyHash, orgId, requestHash, responseStatus: 0, responseHeaders: {}, expiresAt })
      .onConflictDoUpdate({
        target: [idempotencyKeys.caller, idempotencyKeys.keyHash],
        set: {
          orgId,
          requestHash,
          responseStatus: 0,
          responseHeaders: {},
          sealedResponseBody: null,
          createdAt: sql`now()`,
          expiresAt,
        },
        setWhere: sql`${idempotencyKeys.expiresAt} <= now()`,
      })
      .returning({ caller: idempotencyKeys.caller });

    if (claimed.length === 0) {
      const [stored] = await tx
        .select()
        .from(idempotencyKeys)
        .where(and(eq(idempotencyKeys.caller, caller), eq(idempotencyKeys.keyHash, keyHash)));
      if (!stored) throw new Error('idempotency record vanished while locked');
      if (stored.requestHash !== requestHash) throw reused();
      const payload =
        stored.sealedResponseBody === null ? undefined : unseal(sealingKey, stored.sealedResponseBody);
      // Same caller and body but a key that cannot open it (e.g. a rotated ADMIN_TOKEN): not the same request.
      if (stored.sealedResponseBody !== null && payload === undefined) throw reused();
      return { replay: { status: stored.responseStatus, headers: stored.responseHeaders, payload } };
    }

    let response: StoredResponse;
    try {
      response = storedResponseOf(reply, await tx.transaction(effect));
    } catch (error) {
      const refusal = error instanceof AppError ? error : problemFromConstraint(error);
      if (!refusal || refusal.status >= 500) throw error;
      response = storedProblemOf(request, refusal);
    }
    await tx
      .update(idempotencyKeys)
      .set({
        responseStatus: response.status,
        responseHeaders: response.headers,
        sealedResponseBody: response.payload === undefined ? null : seal(sealingKey, response.payload),
      })
      .where(and(eq(idempotencyKeys.caller, caller), eq(idempotencyKeys.keyHash, keyHash)));
    return { fresh: response };
  });

  return outcome.fresh ? send(reply, outcome.fresh, false) : send(reply, outcome.replay, true);
}
