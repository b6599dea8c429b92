/**
 * ETag, If-Match and If-None-Match (API.md §1 "concurrency"). A mutable resource's ETag is its
 * `version` column; the If-Match check belongs in the `UPDATE … WHERE version = $n` of the service,
 * so this module only parses the header into the versions it allows.
 */
import { inArray, type SQL, type SQLWrapper, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';

export function etagOf(version: number): string {
  return `"v${version}"`;
}

/**
 * The versions an `If-Match` header accepts: null when there is no precondition (header absent or
 * `*`); an empty list when it names no version of ours, which then can never match (412).
 */
export function ifMatchVersions(request: FastifyRequest): number[] | null {
  const header = request.headers['if-match'];
  if (header === undefined) return null;
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text.trim() === '*') return null;
  const versions: number[] = [];
  for (const tag of text.split(',')) {
    // A weak form (W/"v3") is accepted too: proxies that compress responses weaken ETags.
    const match = /^\s*(?:W\/)?"v(\d{1,9})"\s*$/.exec(tag);
    if (match) versions.push(Number(match[1]));
  }
  return versions;
}

/** For writes that compare in JavaScript (no-op updates, or a row already locked): 412 on mismatch. */
export function assertVersion(expectedVersions: number[] | null, current: number, what: string): void {
  if (expectedVersions !== null && !expectedVersions.includes(current)) {
    throw new AppError('precondition-failed', `${what} has changed since you read it; read it again.`);
  }
}

/** The If-Match condition of a conditional UPDATE: `version` is one of the expected ones. */
export function versionIn(column: SQLWrapper, expectedVersions: number[] | null): SQL {
  if (expectedVersions === null) return sql`true`;
  if (expectedVersions.length === 0) return sql`false`;
  return inArray(column as Parameters<typeof inArray>[0], expectedVersions);
}

/**
 * True when the request's `If-None-Match` names `etag` or is `*` (RFC 9110 §13.1.2): a `GET`
 * then answers `304`. Weak comparison: `W/"x"` and `"x"` match, as a compressing proxy weakens tags.
 */
export function noneMatch(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (header === undefined) return false;
  // The usual revalidation, by a browser or the embed, names exactly the current tag: no parsing.
  if (header === etag) return true;
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const wanted = opaque(etag);
  return text.split(',').some((tag) => opaque(tag) === wanted);
}
