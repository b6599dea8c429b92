/**
 * Public answers as bytes with their ETag, computed at most once per key every `freshForMs` in
 * this process, however many partner pages ask: a popular event linked from social media is read
 * thousands of times a minute, and building and hashing the answer per request would cost most
 * of the server (bench/reads.ts). The ETag is a hash of the bytes, so it changes exactly when the
 * answer does, never with the clock alone.
 *
 * Freshness: writes in this process forget their organisation's answers at once; other processes
 * recompute theirs once `freshForMs` has passed, serving the previous answer meanwhile for at
 * most `staleForMs`, so every process shows a change, or a status that changes with the clock (a
 * signup window opening), within their sum and one computation.
 */
import { createHash } from 'node:crypto';
import type { onRouteHookHandler, onSendHookHandler } from 'fastify';

export interface Answer {
  body: string;
  etag: string;
  /** Its Content-Type. */
  type: string;
}

const json = 'application/json; charset=utf-8';

interface Entry {
  /** Known once computed: whose data the answer shows. */
  orgId: string | undefined;
  answer: Promise<Answer>;
  freshUntil: number;
  /** The answer is ready (a stale one may be served while it is recomputed). */
  settled: boolean;
  /** The answer, once ready. */
  value: Answer | undefined;
  /** A recomputation of this stale entry is under way. */
  refreshing: boolean;
}

export function answerOf(body: string, type = json): Answer {
  const digest = createHash('sha256').update(body).digest('base64url').slice(0, 27);
  return { body, etag: `"${digest}"`, type };
}

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly freshForMs: number,
    /** How long past its freshness an answer is still served while it is recomputed. */
    private readonly staleForMs: number,
    private readonly maxEntries: number,
  ) {}

  /**
   * The answer under `key`, computed by `compute` when missing or stale; concurrent requests for
   * one key share one computation. For `staleForMs` past its freshness an answer is still served
   * while one request recomputes it (under load nobody waits), so no answer served is older than
   * `freshForMs + staleForMs` plus one computation. A failed computation (a 404) is not kept.
   */
  get(key: string, compute: () => Promise<{ orgId: string; body: string }>, type = json): Promise<Answer> {
    const now = Date.now();
    const entry = this.entries.get(key);
    // Fresh, or still being computed (however long that takes): everyone shares it.
    if (entry && (entry.freshUntil > now || !entry.settled)) return entry.answer;
    if (entry?.settled && entry.freshUntil + this.staleForMs > now) {
      if (!entry.refreshing) {
        entry.refreshing = true;
        const stale = entry.answer;
        this.computeInto(key, compute, type, now, entry).catch(() => {});
        return stale;
      }
      return entry.answer;
    }
    return this.computeInto(key, compute, type, now, undefined);
  }

  /**
   * Computes the answer under `key`. Without `stale` it is kept at once (everyone waits for it);
   * with it, `stale` is served until the new one is ready.
   */
  private computeInto(
    key: string,
    compute: () => Promise<{ orgId: string; body: string }>,
    type: string,
    now: number,
    stale: Entry | undefined,
  ) {
    const fresh: Entry = {
      orgId: undefined,
      answer: undefined as unknown as Promise<Answer>,
      freshUntil: now + this.freshForMs,
      settled: false,
      value: undefined,
      refreshing: false,
    };
    const answer = compute().then(({ orgId, body }) => {
      fresh.orgId = orgId;
      fresh.settled = true;
      fresh.value = answerOf(body, type);
      return fresh.value;
    });
    fresh.answer = answer;
    if (!stale) this.set(key, fresh);
    answer.then(
      () => {
        // Unless a write of this process forgot the key meanwhile (then this may be from before it).
        if (stale && this.entries.get(key) === stale) this.set(key, fresh);
      },
      () => {
        if (this.entries.get(key) === fresh) this.entries.delete(key);
        if (stale) stale.refreshing = false;
      },
    );
    return answer;
  }

  private set(key: string, entry: Entry): void {
    this.entries.delete(key);
    // The oldest entry goes first once full: the map iterates in insertion order.
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, entry);
  }

  /**
   * The answer under `key` if `get` would serve it now without computing anything: a ready, fresh
   * one, or a stale one (within `staleForMs`) whose recomputation is under way. A request can be
   * answered with it at once; otherwise `get` has work to do (compute, or start a recomputation).
   */
  peek(key: string): Answer | undefined {
    const entry = this.entries.get(key);
    if (entry?.value === undefined) return undefined;
    const now = Date.now();
    if (entry.freshUntil > now) return entry.value;
    return entry.refreshing && entry.freshUntil + this.staleForMs > now ? entry.value : undefined;
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

/** A route's hooks of one kind, from an onRoute hook, with `hook` run last (one hook or a list). */
export function withHookLast<Hook>(own: Hook | Hook[] | undefined, hook: Hook): Hook[] {
  return [...(own === undefined ? [] : Array.isArray(own) ? own : [own]), hook];
}

/**
 * An onRoute hook for the whole app, added before the routes: every route that takes a write gets
 * an onSend hook by which a write that succeeded (committed: its handler has returned) forgets its
 * organisation's public answers in this process before the client hears of it. Read-only routes
 * get none: they have nothing to forget, and public reads are the hot path (bench/reads.ts).
 */
export function forgetAnswersOnWrite(cache: AnswerCache): onRouteHookHandler {
  const forget: onSendHookHandler = (request, reply, payload, done) => {
    const orgId = request.principal?.orgId;
    if (orgId && !reads.has(request.method) && reply.statusCode < 400) cache.forgetOrganization(orgId);
    done(null, payload);
  };
  return (route) => {
    // Fastify has upper-cased the methods by now.
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((method) => reads.has(method))) return;
    route.onSend = withHookLast(route.onSend, forget);
  };
}
