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
import { fanOut, fanOutBatch } from './fan-out.ts';
import { failingDisablesAfterMs, retryDelayMs } from './retries.ts';
import { type AttemptResult, keptConnections, sendAttempt } from './sender.ts';
import { disableWebhook, dropPendingMessages, signingSecrets } from './service.ts';

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
  next_attempt_at: string;
}

/**
 * Messages sent to one endpoint before it is given back and taken anew at once (so that an
 * endpoint with a steady stream does not keep one process's slot for ever).
 */
const turnLength = 1_000;
const batchSize = 50;
/** How stale the lease and the list of due messages may be when a message is sent. */
const recheckMs = 250;

interface Success {
  id: string;
  responseStatus: number | null;
  durationMs: number;
}

export class WebhookDispatcher {
  /** The lease holder's name in `webhook_queues.leased_by`. */
  readonly id = randomUUID();
  readonly #db: Db;
  readonly #log: FastifyBaseLogger;
  readonly #options: Required<Omit<DispatcherOptions, 'db' | 'logger'>>;
  readonly #serving = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  readonly #agents: ReturnType<typeof keptConnections>;
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
    // A socket for every endpoint served at once, so that no attempt waits for one (its 15 s run
    // from the start): many organisations may point at one host.
    this.#agents = keptConnections(this.#options.concurrency);
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
    this.#agents.http.destroy();
    this.#agents.https.destroy();
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
    // Apart, so that a failing fan-out does not stop the delivery of what is queued already.
    try {
      // Catch up with a backlog in one tick, a batch at a time.
      for (let batches = 0; batches < 20 && !this.#stopping; batches++) {
        const read = await fanOut(this.#db);
        if (read === null || read < fanOutBatch) break;
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'webhook fan-out failed; trying again at the next poll');
    }
    try {
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
      .then((turnEnded) => {
        if (turnEnded) this.wake();
      })
      .catch((error) =>
        this.#log.warn({ err: error, webhookId: endpoint.webhookId }, 'webhook delivery failed'),
      )
      .finally(() => this.#serving.delete(key));
    this.#serving.set(key, serving);
  }

  /**
   * Sends the endpoint's due messages, oldest first; true when it stopped at the end of its turn.
   *
   * The bookkeeping is batched, not the sending: the lease is renewed, and the messages still due
   * are read (one disabled or retried by hand meanwhile is not sent), at most every
   * `recheckMs`; successes are written together at each such check. A failure is written at once,
   * since it decides about the endpoint. A crash before a write sends those messages again, with
   * the same `webhook-id` (at least once).
   */
  async #serveEndpoint(endpoint: Endpoint): Promise<boolean> {
    let sent = 0;
    const succeeded: Success[] = [];
    const flush = async () => {
      if (succeeded.length > 0) await recordSuccesses(this.#db, endpoint, succeeded.splice(0));
    };
    try {
      while (sent < turnLength && !this.#stopping) {
        const [target] = await queryRows<{ url: string; enabled: boolean }>(
          this.#db,
          sql`select url, enabled from webhooks where org_id = ${endpoint.orgId} and id = ${endpoint.webhookId}`,
        );
        if (!target) return false;
        // Disabled meanwhile: nothing is sent, and nothing may stay pending (a safety net: the
        // disabling drops them itself).
        if (!target.enabled) {
          await dropPendingMessages(this.#db, endpoint.orgId, endpoint.webhookId);
          return false;
        }
        // The due attempts first, in the order of the partial index of pending ones (by due time,
        // then message: the first attempts of one fan-out in the order written), then each one's
        // message by key: a plan bounded by the batch whatever the statistics say (a plain join,
        // planned from stale ones, walked every message of the organisation for each batch).
        const batch = await queryRows<DueDelivery>(
          this.#db,
          sql`
            with due as materialized (
              select id, message_id, attempt, next_attempt_at from webhook_deliveries
              where org_id = ${endpoint.orgId} and webhook_id = ${endpoint.webhookId}
                and status = 'pending' and next_attempt_at <= now()
              order by next_attempt_at, message_id
              limit ${batchSize}
            )
            select due.id, due.message_id, due.attempt, due.next_attempt_at, m.type, m.occurred_at, m.data
            from due cross join lateral (
              select type, occurred_at, data from webhook_messages
              where org_id = ${endpoint.orgId} and id = due.message_id
              limit 1 -- kept a subquery of its own: one lookup by key per due attempt
            ) m
            order by due.next_attempt_at, due.message_id`,
        );
        if (batch.length === 0) return false;
        // Read once a batch: a rotation signs from the next batch on.
        const secrets = await signingSecrets(this.#db, endpoint.orgId, endpoint.webhookId);
        let stillDue = new Set<string>();
        let checkedAt = Number.NEGATIVE_INFINITY;
        for (const [index, delivery] of batch.entries()) {
          if (this.#stopping) return false;
          if (performance.now() - checkedAt > recheckMs) {
            await flush();
            const check = await this.#check(
              endpoint,
              batch.slice(index).map((item) => item.id),
            );
            if (!check.held) return false;
            stillDue = check.due;
            checkedAt = performance.now();
          }
          if (!stillDue.has(delivery.id)) continue;
          const result = await this.#send(target.url, secrets, delivery);
          if (this.#abort.signal.aborted) return false;
          sent++;
          if (result.ok) {
            succeeded.push({
              id: delivery.id,
              responseStatus: result.responseStatus,
              durationMs: result.durationMs,
            });
            continue;
          }
          await flush();
          const outcome = await recordFailure(this.#db, endpoint, delivery, result);
          this.#log.info(
            {
              webhookId: endpoint.webhookId,
              messageId: delivery.message_id,
              attempt: delivery.attempt,
              status: result.responseStatus,
              error: result.error,
              outcome,
            },
            'webhook attempt failed',
          );
          if (outcome === 'disabled') return false;
        }
        await flush();
      }
      return sent >= turnLength;
    } finally {
      await flush().catch((error) =>
        this.#log.warn({ err: error }, 'could not record delivered webhooks; they will be sent again'),
      );
      await this.#release(endpoint);
    }
  }

  /**
   * Renews this endpoint's lease (`held` is false when another process has it now) and says which
   * of `deliveryIds` are still pending and due, in one round trip.
   */
  async #check(endpoint: Endpoint, deliveryIds: string[]): Promise<{ held: boolean; due: Set<string> }> {
    const [state] = await queryRows<{ held: boolean; due: string[] }>(
      this.#db,
      sql`
        with renewed as (
          update webhook_queues set lease_until = now() + make_interval(secs => ${this.#options.leaseMs / 1000})
          where org_id = ${endpoint.orgId} and webhook_id = ${endpoint.webhookId} and leased_by = ${this.id}
          returning 1
        )
        select exists (select 1 from renewed) as held, array(
          select id from webhook_deliveries
          where org_id = ${endpoint.orgId} and id = any(${`{${deliveryIds.join(',')}}`}::uuid[])
            and status = 'pending' and next_attempt_at <= now()
        ) as due`,
    );
    return { held: state?.held ?? false, due: new Set(state?.due ?? []) };
  }

  /**
   * Renews the leases of the endpoints being served, and only those: a lease whose release failed
   * runs out and the endpoint is taken again.
   */
  async #renewLeases(): Promise<void> {
    if (this.#serving.size === 0) return;
    const served = [...this.#serving.keys()].map((key) => key.split('/'));
    await this.#db
      .execute(
        sql`
          update webhook_queues set lease_until = now() + make_interval(secs => ${this.#options.leaseMs / 1000})
          where leased_by = ${this.id}
            and (org_id, webhook_id) in (select * from unnest(
              ${`{${served.map(([orgId]) => orgId).join(',')}}`}::uuid[],
              ${`{${served.map(([, webhookId]) => webhookId).join(',')}}`}::uuid[]))`,
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

  #send(url: string, secrets: string[], delivery: DueDelivery): Promise<AttemptResult> {
    return sendAttempt(
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
        agents: this.#agents,
      },
    );
  }
}

/**
 * Writes delivered attempts, in one statement: each succeeded, its message finished, and the
 * endpoint no longer failing. One that is no longer pending (the endpoint disabled meanwhile)
 * stays as it is.
 */
export async function recordSuccesses(db: Db, endpoint: Endpoint, successes: Success[]): Promise<void> {
  const { orgId, webhookId } = endpoint;
  await db.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(successes)}::jsonb)
        as i(id uuid, "responseStatus" int, "durationMs" int)
    ), succeeded as (
      update webhook_deliveries d set status = 'succeeded', response_status = i."responseStatus",
        duration_ms = i."durationMs", error = null, next_attempt_at = null
      from input i
      where d.org_id = ${orgId} and d.id = i.id and d.status = 'pending'
      returning d.message_id
    ), finished as (
      update webhook_messages set finished_at = now()
      where org_id = ${orgId} and id in (select message_id from succeeded) and finished_at is null
    )
    update webhook_queues set failing_since = null
    where org_id = ${orgId} and webhook_id = ${webhookId} and failing_since is not null
      and exists (select 1 from succeeded)`);
}

/**
 * Writes a failed attempt's result, in one transaction, after which
 * the next attempt is pending (retries.ts) or the message is given up; a `410`, or failures for
 * five days without a success, disable the endpoint. An attempt that is no longer pending (the
 * endpoint was disabled meanwhile) changes nothing: 'stale'.
 */
export async function recordFailure(
  db: Db,
  endpoint: Endpoint,
  delivery: Pick<DueDelivery, 'id' | 'message_id' | 'attempt'>,
  result: AttemptResult,
): Promise<'failed' | 'disabled' | 'stale'> {
  const { orgId, webhookId } = endpoint;
  return db.transaction(async (tx) => {
    // The webhook's share lock orders this against a disabling PATCH and a manual retry: either
    // waits for the other, and a disabled endpoint gets no next attempt.
    const [live] = await queryRows<{ age_ms: number }>(
      tx,
      sql`
        select (extract(epoch from now() - m.created_at) * 1000)::float8 as age_ms
        from webhooks w join webhook_messages m on m.org_id = w.org_id and m.id = ${delivery.message_id}
        where w.org_id = ${orgId} and w.id = ${webhookId} and w.enabled
        for share of w`,
    );
    if (!live) return 'stale';
    const finish = (nextAttemptMs: number | null) =>
      queryRows(
        tx,
        sql`
          update webhook_deliveries set status = 'failed', response_status = ${result.responseStatus},
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

    const [failing] = await queryRows<{ too_long: boolean }>(
      tx,
      sql`
        update webhook_queues set failing_since = coalesce(failing_since, now()) where ${queueKey}
        returning failing_since <= now() - make_interval(secs => ${failingDisablesAfterMs / 1000}) as too_long`,
    );
    const reason = result.responseStatus === 410 ? 'gone' : failing?.too_long ? 'failing' : null;
    if (reason) {
      if ((await finish(null)).length === 0) return 'stale';
      await finishMessage();
      await disableWebhook(tx, orgId, webhookId, reason);
      return 'disabled';
    }
    const delay = retryDelayMs(delivery.attempt, result.retryAfterSeconds, live.age_ms);
    const [failed] = await finish(delay);
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
