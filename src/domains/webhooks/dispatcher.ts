/**
 * The webhook dispatcher (API.md §10), run by every API process: it turns outbox rows into
 * messages (fan-out.ts) and delivers them, sharing the work with the other processes through the
 * database only. Nothing waits in memory: a process that dies loses no message.
 *
 * - **Leases.** A process takes a due endpoint (`webhook_queues`) with `FOR UPDATE SKIP LOCKED` and
 *   a lease of `leaseMs`, renewed every third of it while it works; it sends that endpoint's due
 *   messages one at a time, oldest first, so that an endpoint receives them in the order they were
 *   written. A process killed mid-delivery stops renewing, and another takes the endpoint when the
 *   lease runs out; the message it was sending goes again with the same `webhook-id` (at least
 *   once).
 * - **No head-of-line blocking.** A failed message is due again later (retries.ts), and the
 *   messages after it go now. Endpoints are served side by side, `concurrency` at a time.
 * - **Polling**, every `pollIntervalMs` (1 s): cheap, since both the fan-out and the claim read an
 *   index of what is due, and no write pays for a notification.
 * - **Stopping** finishes the attempts in flight for up to the grace time, aborts the rest (they
 *   stay pending) and gives every lease back, so that another process continues at once.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { uuidv7 } from 'uuidv7';
import { type Db, queryRows } from '../../db/client.ts';
import type { Resolver } from './destinations.ts';
import { fanOut } from './fan-out.ts';
import { failingDisablesAfterMs, retryDelayMs } from './retries.ts';
import { type AttemptResult, sendAttempt } from './sender.ts';
import { disableWebhook, signingSecrets } from './service.ts';

export interface DispatcherOptions {
  db: Db;
  logger: FastifyBaseLogger;
  /** `WEBHOOK_ALLOW_PRIVATE`: also deliver to private addresses and over http. */
  allowPrivate: boolean;
  resolve: Resolver;
  pollIntervalMs?: number;
  leaseMs?: number;
  /** Endpoints served at once by this process. */
  concurrency?: number;
  attemptTimeoutMs?: number;
}

interface Endpoint {
  orgId: string;
  webhookId: string;
}

interface DueDelivery {
  id: string;
  message_id: string;
  attempt: number;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

/** Messages sent to one endpoint before it is given back (so that other processes share it). */
const turnLength = 100;
const batchSize = 20;

export class WebhookDispatcher {
  /** The lease holder's name in `webhook_queues.leased_by`. */
  readonly id = randomUUID();
  readonly #db: Db;
  readonly #log: FastifyBaseLogger;
  readonly #options: Required<Omit<DispatcherOptions, 'db' | 'logger'>>;
  readonly #serving = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopping = false;

  constructor(options: DispatcherOptions) {
    this.#db = options.db;
    this.#log = options.logger.child({ component: 'webhooks' });
    this.#options = {
      allowPrivate: options.allowPrivate,
      resolve: options.resolve,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      leaseMs: options.leaseMs ?? 10_000,
      concurrency: options.concurrency ?? 16,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 15_000,
    };
  }

  start(): this {
    this.#heartbeat = setInterval(() => this.#renewLeases(), this.#options.leaseMs / 3);
    this.#heartbeat.unref();
    this.#schedule(0);
    return this;
  }

  /** Looks for work now rather than at the next poll (a test, or a process that just wrote). */
  wake(): void {
    if (this.#stopping || this.#ticking) return;
    clearTimeout(this.#timer);
    this.#schedule(0);
  }

  /**
   * Stops taking work, lets the attempts in flight finish for up to `graceMs`, aborts the others
   * (their messages stay pending, with the same `webhook-id`) and gives every lease back.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    await this.#ticking;
    const finished = Promise.allSettled([...this.#serving.values()]);
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise((resolve) => {
      graceTimer = setTimeout(resolve, graceMs);
    });
    await Promise.race([finished, grace]);
    clearTimeout(graceTimer);
    this.#abort.abort();
    await finished;
    clearInterval(this.#heartbeat);
    await this.#db
      .execute(
        sql`update webhook_queues set leased_by = null, lease_until = null where leased_by = ${this.id}`,
      )
      .catch((error) => this.#log.warn({ err: error }, 'could not give the webhook leases back'));
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        if (!this.#stopping) this.#schedule(this.#options.pollIntervalMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      // Catch up with a backlog in one tick, a batch at a time.
      for (let batches = 0; batches < 20 && !this.#stopping; batches++) {
        const read = await fanOut(this.#db);
        if (read === null || read < 500) break;
      }
      const free = this.#options.concurrency - this.#serving.size;
      if (free <= 0 || this.#stopping) return;
      for (const endpoint of await this.#claim(free)) this.#serve(endpoint);
    } catch (error) {
      this.#log.warn({ err: error }, 'webhook dispatch failed; trying again at the next poll');
    }
  }

  /** Leases up to `count` endpoints that have a due message and no live lease. */
  async #claim(count: number): Promise<Endpoint[]> {
    return queryRows<Endpoint>(
      this.#db,
      sql`
        update webhook_queues q
        set leased_by = ${this.id}, lease_until = now() + make_interval(secs => ${this.#options.leaseMs / 1000})
        from (
          select org_id, webhook_id from webhook_queues
          where next_due_at <= now() and (lease_until is null or lease_until < now())
          order by next_due_at
          limit ${count}
          for update skip locked
        ) due
        where q.org_id = due.org_id and q.webhook_id = due.webhook_id
        returning q.org_id as "orgId", q.webhook_id as "webhookId"`,
    );
  }

  #serve(endpoint: Endpoint): void {
    const key = `${endpoint.orgId}/${endpoint.webhookId}`;
    const serving = this.#serveEndpoint(endpoint)
      .catch((error) =>
        this.#log.warn({ err: error, webhookId: endpoint.webhookId }, 'webhook delivery failed'),
      )
      .finally(() => this.#serving.delete(key));
    this.#serving.set(key, serving);
  }

  async #serveEndpoint(endpoint: Endpoint): Promise<void> {
    let sent = 0;
    try {
      while (sent < turnLength && !this.#stopping) {
        const [target] = await queryRows<{ url: string; enabled: boolean }>(
          this.#db,
          sql`select url, enabled from webhooks where org_id = ${endpoint.orgId} and id = ${endpoint.webhookId}`,
        );
        if (!target?.enabled) return;
        const due = await queryRows<DueDelivery>(
          this.#db,
          sql`
            select d.id, d.message_id, d.attempt, m.type, m.occurred_at, m.data
            from webhook_deliveries d
            join webhook_messages m on m.org_id = d.org_id and m.id = d.message_id
            where d.org_id = ${endpoint.orgId} and d.webhook_id = ${endpoint.webhookId}
              and d.status = 'pending' and d.next_attempt_at <= now()
            order by d.message_id
            limit ${batchSize}`,
        );
        if (due.length === 0) return;
        for (const delivery of due) {
          if (this.#stopping) return;
          const { held, due } = await this.#holdsLease(endpoint, delivery.id);
          if (!held) return;
          // Disabled, or retried by hand, since the batch was read.
          if (!due) continue;
          const outcome = await this.#attempt(endpoint, target.url, delivery);
          sent++;
          if (outcome === 'disabled' || outcome === 'aborted') return;
        }
      }
    } finally {
      await this.#release(endpoint);
    }
  }

  /**
   * Renews this endpoint's lease (`held` is false when another process has it now) and says
   * whether the delivery is still pending and due, in one round trip.
   */
  async #holdsLease(endpoint: Endpoint, deliveryId: string): Promise<{ held: boolean; due: boolean }> {
    const [state] = await queryRows<{ held: boolean; due: boolean }>(
      this.#db,
      sql`
        with renewed as (
          update webhook_queues set lease_until = now() + make_interval(secs => ${this.#options.leaseMs / 1000})
          where org_id = ${endpoint.orgId} and webhook_id = ${endpoint.webhookId} and leased_by = ${this.id}
          returning 1
        )
        select exists (select 1 from renewed) as held, exists (
          select 1 from webhook_deliveries
          where org_id = ${endpoint.orgId} and id = ${deliveryId} and status = 'pending' and next_attempt_at <= now()
        ) as due`,
    );
    return state ?? { held: false, due: false };
  }

  async #renewLeases(): Promise<void> {
    if (this.#serving.size === 0) return;
    await this.#db
      .execute(
        sql`
          update webhook_queues set lease_until = now() + make_interval(secs => ${this.#options.leaseMs / 1000})
          where leased_by = ${this.id}`,
      )
      .catch((error) => this.#log.warn({ err: error }, 'could not renew the webhook leases'));
  }

  /**
   * Gives the endpoint back, due again at its earliest pending attempt. The row is locked first, in
   * a statement of its own, so that the next one's snapshot sees a message a concurrent fan-out
   * committed while we waited for the lock (a fan-out marks the endpoint due in the same row).
   */
  async #release(endpoint: Endpoint): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const key = sql`org_id = ${endpoint.orgId} and webhook_id = ${endpoint.webhookId}`;
      const [held] = await queryRows(
        tx,
        sql`select 1 from webhook_queues where ${key} and leased_by = ${this.id} for update`,
      );
      if (!held) return;
      await tx.execute(sql`
        update webhook_queues set leased_by = null, lease_until = null, next_due_at = (
          select min(next_attempt_at) from webhook_deliveries where ${key} and status = 'pending'
        )
        where ${key}`);
    });
  }

  async #attempt(
    endpoint: Endpoint,
    url: string,
    delivery: DueDelivery,
  ): Promise<'succeeded' | 'failed' | 'disabled' | 'aborted' | 'stale'> {
    const secrets = await signingSecrets(this.#db, endpoint.orgId, endpoint.webhookId);
    const result = await sendAttempt(
      url,
      {
        id: delivery.message_id,
        type: delivery.type,
        timestamp: new Date(delivery.occurred_at),
        data: delivery.data,
      },
      secrets,
      {
        allowPrivate: this.#options.allowPrivate,
        resolve: this.#options.resolve,
        timeoutMs: this.#options.attemptTimeoutMs,
        signal: this.#abort.signal,
      },
    );
    if (this.#abort.signal.aborted) return 'aborted';
    const outcome = await recordAttempt(this.#db, endpoint, delivery, result);
    const log = { webhookId: endpoint.webhookId, messageId: delivery.message_id, attempt: delivery.attempt };
    if (outcome === 'succeeded') this.#log.debug(log, 'webhook delivered');
    else
      this.#log.info(
        { ...log, status: result.responseStatus, error: result.error, outcome },
        'webhook attempt failed',
      );
    return outcome;
  }
}

/**
 * Writes an attempt's result, in one transaction: the attempt succeeded or failed; after a failure
 * the next attempt is pending (retries.ts) or the message is given up; a `410`, or failures for
 * five days without a success, disable the endpoint. An attempt that is no longer pending (the
 * endpoint was disabled meanwhile) changes nothing: 'stale'.
 */
export async function recordAttempt(
  db: Db,
  endpoint: Endpoint,
  delivery: Pick<DueDelivery, 'id' | 'message_id' | 'attempt'>,
  result: AttemptResult,
): Promise<'succeeded' | 'failed' | 'disabled' | 'stale'> {
  const { orgId, webhookId } = endpoint;
  return db.transaction(async (tx) => {
    const finish = (status: 'succeeded' | 'failed', nextAttemptMs: number | null) =>
      queryRows(
        tx,
        sql`
          update webhook_deliveries set status = ${status}, response_status = ${result.responseStatus},
            duration_ms = ${result.durationMs}, error = ${result.error},
            next_attempt_at = ${nextAttemptMs === null ? null : sql`now() + make_interval(secs => ${nextAttemptMs / 1000})`}
          where org_id = ${orgId} and id = ${delivery.id} and status = 'pending'
          returning next_attempt_at`,
      );
    const finishMessage = () =>
      tx.execute(
        sql`update webhook_messages set finished_at = now() where org_id = ${orgId} and id = ${delivery.message_id} and finished_at is null`,
      );
    const queueKey = sql`org_id = ${orgId} and webhook_id = ${webhookId}`;

    if (result.ok) {
      if ((await finish('succeeded', null)).length === 0) return 'stale';
      await finishMessage();
      await tx.execute(sql`update webhook_queues set failing_since = null where ${queueKey}`);
      return 'succeeded';
    }
    const [failing] = await queryRows<{ too_long: boolean }>(
      tx,
      sql`
        update webhook_queues set failing_since = coalesce(failing_since, now()) where ${queueKey}
        returning failing_since <= now() - make_interval(secs => ${failingDisablesAfterMs / 1000}) as too_long`,
    );
    const reason = result.responseStatus === 410 ? 'gone' : failing?.too_long ? 'failing' : null;
    if (reason) {
      if ((await finish('failed', null)).length === 0) return 'stale';
      await finishMessage();
      await disableWebhook(tx, orgId, webhookId, reason);
      return 'disabled';
    }
    const delay = retryDelayMs(delivery.attempt, result.retryAfterSeconds);
    const [failed] = await finish('failed', delay);
    if (!failed) return 'stale';
    if (delay === null) await finishMessage();
    else
      await tx.execute(sql`
        insert into webhook_deliveries (org_id, id, webhook_id, message_id, attempt, status, next_attempt_at)
        values (${orgId}, ${uuidv7()}, ${webhookId}, ${delivery.message_id}, ${delivery.attempt + 1}, 'pending',
          ${(failed as { next_attempt_at: string }).next_attempt_at})`);
    return 'failed';
  });
}
