/**
 * Public answers as bytes with their ETag, computed at most once per key every `freshForMs` in
 * this process, however many partner pages ask: a popular event linked from social media is read
 * thousands of times a minute, and building and hashing the answer per request would cost most
 * of the server (bench/reads.ts). The ETag is a hash of the bytes, so it changes exactly when the
 * answer does, never with the clock alone.
 *
 * Freshness: writes in this process forget their organisation's answers at once; other processes
 * recompute theirs within `freshForMs`, so every process shows a change within that time, and a
 * status that changes with the clock (a signup window opening) is seen as soon.
 */
import { createHash } from 'node:crypto';
import type { onSendHookHandler } from 'fastify';

export interface Answer {
  body: string;
  etag: string;
}

interface Entry {
  /** Known once computed: whose data the answer shows. */
  orgId: string | undefined;
  answer: Promise<Answer>;
  freshUntil: number;
}

export function answerOf(body: string): Answer {
  const digest = createHash('sha256').update(body).digest('base64url').slice(0, 27);
  return { body, etag: `"${digest}"` };
}

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly freshForMs: number,
    private readonly maxEntries: number,
  ) {}

  /**
   * The answer under `key`, computed by `compute` when missing or stale; concurrent requests for
   * one key share one computation. A failed computation (a 404, say) is not kept.
   */
  get(key: string, compute: () => Promise<{ orgId: string; body: string }>): Promise<Answer> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.freshUntil > now) return entry.answer;
    const answer = compute().then(({ orgId, body }) => {
      fresh.orgId = orgId;
      return answerOf(body);
    });
    this.entries.delete(key);
    // The oldest entry goes first once full: the map iterates in insertion order.
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    const fresh: Entry = { orgId: undefined, answer, freshUntil: now + this.freshForMs };
    this.entries.set(key, fresh);
    answer.catch(() => {
      if (this.entries.get(key) === fresh) this.entries.delete(key);
    });
    return answer;
  }

  /** Forgets the organisation's answers: a write of this process changed its data. */
  forgetOrganization(orgId: string): void {
    // One still computing may have read the data before the write: forgotten too.
    for (const [key, entry] of this.entries) {
      if (entry.orgId === orgId || entry.orgId === undefined) this.entries.delete(key);
    }
  }
}

const reads = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * An onSend hook for the whole app: a write that succeeded (committed: its handler has returned)
 * forgets its organisation's public answers in this process before the client hears of it.
 */
export function forgetAnswersOnWrite(cache: AnswerCache): onSendHookHandler {
  return (request, reply, payload, done) => {
    const orgId = request.principal?.orgId;
    if (orgId && !reads.has(request.method) && reply.statusCode < 400) cache.forgetOrganization(orgId);
    done(null, payload);
  };
}
