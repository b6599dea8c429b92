/**
 * API.md §10, delivery: the dispatcher (src/domains/webhooks/dispatcher.ts) against a receiver on
 * the loopback. Every event type reaches each subscribed endpoint once, verified with the
 * `standardwebhooks` package; a failure is retried with the same `webhook-id` after about 5 s and
 * holds back nothing after it; a 410 and five days of failures disable; disabling drops what is
 * pending; ping, manual retry, the deliveries list; a stopping dispatcher gives its work back; the
 * 30-day purge.
 */
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { webhookEventTypes } from '../src/db/schema.ts';
import { purgeOldDeliveries } from '../src/domains/webhooks/deliveries.ts';
import { WebhookDispatcher } from '../src/domains/webhooks/dispatcher.ts';
import { webhookMessage } from '../src/domains/webhooks/payloads.ts';
import { maxAttempts, retryDelayMs } from '../src/domains/webhooks/retries.ts';
import { retryAfterSecondsOf } from '../src/domains/webhooks/sender.ts';
import { type Auth, expectProblem, fixtures, useTestApp } from './support/fixtures.ts';
import { type Receiver, startReceiver, verified } from './support/receiver.ts';
import { eventually } from './support/server-process.ts';

const suite = useTestApp({ WEBHOOK_ALLOW_PRIVATE: true });
const { setupOrg, createEvent, createShift, createVolunteer, writeEveryEventType } = fixtures(suite);

let receiver: Receiver;
let dispatcher: WebhookDispatcher;
const silent = pino({ level: 'silent' });
const startDispatcher = () =>
  new WebhookDispatcher({
    db: suite.database.db,
    logger: silent,
    allowPrivate: true,
    resolve: async () => ['127.0.0.1'],
    pollIntervalMs: 100,
    // A receiver that never answers ('hang') fails within 2 s rather than the real 15.
    attemptTimeoutMs: 2_000,
  }).start();

beforeAll(async () => {
  receiver = await startReceiver();
  dispatcher = startDispatcher();
});
afterAll(async () => {
  await dispatcher.stop(1000);
  await receiver.close();
});

const inDays = (days: number, hours = 0) =>
  new Date(Date.now() + (days * 24 + hours) * 3_600_000).toISOString();

async function subscribe(auth: Auth, path: string, events: readonly string[]) {
  const created = await suite.http
    .post('/v1/webhooks')
    .set(auth)
    .send({ url: receiver.url(path), events })
    .expect(201);
  return { id: created.body.id as string, secret: created.body.secret as string };
}

async function deliveries(auth: Auth, webhookId: string, status?: string) {
  const query = status ? `?status=${status}` : '';
  const response = await suite.http.get(`/v1/webhooks/${webhookId}/deliveries${query}`).set(auth).expect(200);
  return response.body.data as {
    id: string;
    messageId: string;
    type: string;
    attempt: number;
    status: string;
    responseStatus: number | null;
    durationMs: number | null;
    error: string | null;
    createdAt: string;
    nextAttemptAt: string | null;
  }[];
}

/** A published event with a shift of `capacity` places, and a claim on it by a new volunteer. */
async function shiftWithClaims(org: Awaited<ReturnType<typeof setupOrg>>, claims: number, capacity = 50) {
  const event = await createEvent(org.organiser, { status: 'published' });
  const shift = await createShift(org.organiser, event.id, {
    startsAt: inDays(7),
    endsAt: inDays(7, 3),
    capacity,
  });
  for (let n = 0; n < claims; n++)
    await suite.http
      .post(`/v1/shifts/${shift.id}/signups`)
      .set(org.organiser)
      .send({ volunteerId: await createVolunteer(org.organiser) })
      .expect(201);
  return { event, shift };
}

describe('webhook delivery', () => {
  it('delivers every event type once to each endpoint subscribed to it, signed, in the order written', async () => {
    const org = await setupOrg();
    const all = await subscribe(org.admin, '/all', webhookEventTypes);
    const confirmedOnly = await subscribe(org.admin, '/confirmed', ['signup.confirmed']);

    await writeEveryEventType(org, { name: 'Ada Private' });

    const written = await queryRows<{ type: string; payload: Record<string, unknown> }>(
      suite.database.db,
      sql`select type, payload from outbox where org_id = ${org.id} and type = any(${`{${webhookEventTypes.join(',')}}`}::text[]) order by txid, id`,
    );
    expect(new Set(written.map((row) => row.type))).toEqual(new Set(webhookEventTypes));
    const confirmedCount = written.filter((row) => row.type === 'signup.confirmed').length;
    await eventually(
      async () =>
        receiver.at('/all').length >= written.length && receiver.at('/confirmed').length >= confirmedCount,
      20_000,
      'every message received',
    );
    // Once each (and not more a moment later), verified with each endpoint's own secret, in order.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const toAll = receiver.at('/all').map((item) => verified(all.secret, item));
    expect(toAll.map((message) => [message.type, message.data])).toEqual(
      written.map((row) => [row.type, row.payload]),
    );
    expect(new Set(receiver.at('/all').map((item) => item.headers['webhook-id'])).size).toBe(written.length);
    const toConfirmed = receiver.at('/confirmed').map((item) => verified(confirmedOnly.secret, item));
    expect(toConfirmed.map((message) => message.type)).toEqual(
      Array(confirmedCount).fill('signup.confirmed'),
    );
    expect(() => verified(all.secret, receiver.at('/confirmed')[0] as never)).toThrow();
    // Each body is exactly what the OpenAPI document's webhooks section says (strict schemas).
    for (const message of toAll)
      expect(() =>
        webhookMessage(message.type as (typeof webhookEventTypes)[number]).parse(message),
      ).not.toThrow();
    expect(JSON.stringify(receiver.received)).not.toContain('Ada Private');

    const listed = await deliveries(org.admin, all.id);
    expect(listed).toHaveLength(written.length);
    expect(
      listed.every(
        (item) => item.status === 'succeeded' && item.attempt === 1 && item.responseStatus === 204,
      ),
    ).toBe(true);
    expect(listed.map((item) => item.messageId).reverse()).toEqual(
      receiver.at('/all').map((item) => item.headers['webhook-id']),
    );
    expect(listed[0]?.nextAttemptAt).toBeNull();
  });

  it('an event written before an endpoint subscribed is not sent to it', async () => {
    const org = await setupOrg();
    await shiftWithClaims(org, 1);
    const late = await subscribe(org.admin, '/late', ['signup.confirmed']);
    await shiftWithClaims(org, 1);
    await eventually(async () => receiver.at('/late').length >= 1, 10_000, 'the new claim received');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.at('/late')).toHaveLength(1);
    expect((await deliveries(org.admin, late.id)).length).toBe(1);
  });

  it('retries a failed message with the same webhook-id after about 5 s, without holding back the next', async () => {
    const org = await setupOrg();
    receiver.answer('/flaky', (n) => (n === 1 ? { status: 500 } : { status: 200 }));
    const hook = await subscribe(org.admin, '/flaky', ['signup.confirmed']);
    await shiftWithClaims(org, 2);
    await eventually(async () => receiver.at('/flaky').length >= 3, 15_000, 'the retry');
    const [failed, next, retried] = receiver.at('/flaky') as [never, never, never];
    const idOf = (item: { headers: Record<string, string> }) => item.headers['webhook-id'];
    expect(idOf(retried)).toBe(idOf(failed));
    expect(idOf(next)).not.toBe(idOf(failed)); // the second message went before the first's retry
    const waited = (retried as { at: number }).at - (failed as { at: number }).at;
    expect(waited).toBeGreaterThan(3_500);
    expect(waited).toBeLessThan(9_000);
    // A fresh timestamp and signature on the retry; the body is the same.
    expect((retried as { body: string }).body).toBe((failed as { body: string }).body);
    verified(hook.secret, retried);

    const attempts = (await deliveries(org.admin, hook.id)).filter((item) => item.messageId === idOf(failed));
    expect(attempts.map((item) => [item.attempt, item.status, item.responseStatus])).toEqual([
      [2, 'succeeded', 200],
      [1, 'failed', 500],
    ]);
    expect(attempts[1]?.error).toBe('answered 500');
    expect(attempts[1]?.nextAttemptAt).not.toBeNull();
    const failedOnly = await deliveries(org.admin, hook.id, 'failed');
    expect(failedOnly.map((item) => item.attempt)).toEqual([1]);
    await suite.http.get(`/v1/webhooks/${hook.id}/deliveries?status=lost`).set(org.admin).expect(400);
  });

  it('a 410 disables the endpoint at once and drops what is pending; nothing more is sent', async () => {
    const org = await setupOrg();
    receiver.answer('/gone', () => ({ status: 410 }));
    const hook = await subscribe(org.admin, '/gone', ['signup.confirmed']);
    // Three messages queued before the first is sent (the dispatcher paused meanwhile).
    await dispatcher.stop(100);
    await shiftWithClaims(org, 3);
    dispatcher = startDispatcher();
    await eventually(
      async () => (await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin)).body.enabled === false,
      10_000,
      'disabled',
    );
    const read = await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin).expect(200);
    expect(read.body.disabledReason).toBe('gone');
    expect(receiver.at('/gone')).toHaveLength(1);
    const listed = await deliveries(org.admin, hook.id);
    expect(listed.filter((item) => item.status === 'pending')).toEqual([]);
    expect(listed.filter((item) => item.error === 'not sent: the endpoint was disabled')).toHaveLength(2);
    // The audit log shows who disabled it: the system.
    const audit = await suite.http.get(`/v1/audit-events?resourceId=${hook.id}`).set(org.admin).expect(200);
    expect(audit.body.data[0]).toMatchObject({ type: 'webhook.updated', actor: { kind: 'system' } });

    await shiftWithClaims(org, 1);
    expectProblem(
      await suite.http
        .post(`/v1/webhooks/${hook.id}/deliveries/${listed[0]?.id}/retry`)
        .set(org.admin)
        .send({}),
      409,
      'invalid-state',
    );
    expectProblem(
      await suite.http.post(`/v1/webhooks/${hook.id}/test`).set(org.admin).send({}),
      409,
      'invalid-state',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.at('/gone')).toHaveLength(1);

    // Enabled again, it starts with the next new message.
    const version = read.headers.etag as string;
    await suite.http
      .patch(`/v1/webhooks/${hook.id}`)
      .set(org.admin)
      .set('if-match', version)
      .send({ enabled: true })
      .expect(200);
    receiver.answer('/gone', () => ({ status: 204 }));
    await shiftWithClaims(org, 1);
    await eventually(async () => receiver.at('/gone').length === 2, 10_000, 'the next new message');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.at('/gone')).toHaveLength(2);
  });

  it('an endpoint whose attempts have all failed for five days is disabled as failing', async () => {
    const org = await setupOrg();
    receiver.answer('/down', () => ({ status: 503 }));
    const hook = await subscribe(org.admin, '/down', ['signup.confirmed']);
    await shiftWithClaims(org, 1);
    await eventually(async () => receiver.at('/down').length === 1, 10_000, 'the first attempt');
    // Failing since six days (as if the schedule had run that long), then one more failure.
    await suite.database.db.execute(
      sql`update webhook_queues set failing_since = now() - interval '6 days' where webhook_id = ${hook.id}`,
    );
    await shiftWithClaims(org, 1);
    await eventually(
      async () =>
        (await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin)).body.disabledReason === 'failing',
      10_000,
      'disabled as failing',
    );
    expect((await deliveries(org.admin, hook.id, 'pending')).length).toBe(0);
    // No failed attempt says any more that its message will be tried again.
    expect((await deliveries(org.admin, hook.id)).filter((item) => item.nextAttemptAt !== null)).toEqual([]);

    // Enabled again, it starts afresh: one more failure is a retry, not five days of them.
    const read = await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin).expect(200);
    await suite.http
      .patch(`/v1/webhooks/${hook.id}`)
      .set(org.admin)
      .set('if-match', read.headers.etag as string)
      .send({ enabled: true })
      .expect(200);
    const before = receiver.at('/down').length;
    await shiftWithClaims(org, 1);
    await eventually(
      async () => receiver.at('/down').length === before + 1,
      10_000,
      'the attempt after re-enabling',
    );
    await eventually(
      async () => (await deliveries(org.admin, hook.id, 'pending')).length === 1,
      5_000,
      'its retry queued',
    );
    expect((await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin)).body.enabled).toBe(true);
  });

  it('a disabled endpoint is never sent what is pending for it (a safety net behind the disabling)', async () => {
    const org = await setupOrg();
    const hook = await subscribe(org.admin, '/off', ['signup.confirmed']);
    await dispatcher.stop(100);
    await shiftWithClaims(org, 1);
    dispatcher = startDispatcher();
    await eventually(async () => (await deliveries(org.admin, hook.id)).length === 1, 5_000, 'queued');
    // Disabled behind the API's back, with the message still pending (as a lost race would leave it).
    await dispatcher.stop(100);
    await suite.database.db.execute(sql`update webhooks set enabled = false where id = ${hook.id}`);
    await suite.database.db.execute(
      sql`update webhook_deliveries set status = 'pending', next_attempt_at = now(), response_status = null
          where webhook_id = ${hook.id}`,
    );
    await suite.database.db.execute(
      sql`update webhook_queues set next_due_at = now() where webhook_id = ${hook.id}`,
    );
    const sentBefore = receiver.at('/off').length;
    dispatcher = startDispatcher();
    await eventually(
      async () => (await deliveries(org.admin, hook.id, 'pending')).length === 0,
      5_000,
      'dropped',
    );
    expect(receiver.at('/off').length).toBe(sentBefore);
  });

  it('PATCH { enabled: false } drops pending messages; re-enabling sends nothing from while it was off', async () => {
    const org = await setupOrg();
    receiver.answer('/paused', () => 'hang');
    const hook = await subscribe(org.admin, '/paused', ['signup.confirmed']);
    // The first message hangs in flight; the second waits behind it (one endpoint, in order).
    await shiftWithClaims(org, 2);
    await eventually(async () => receiver.at('/paused').length === 1, 10_000, 'the first attempt');
    const read = await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin).expect(200);
    await suite.http
      .patch(`/v1/webhooks/${hook.id}`)
      .set(org.admin)
      .set('if-match', read.headers.etag as string)
      .send({ enabled: false })
      .expect(200);
    expect(await deliveries(org.admin, hook.id, 'pending')).toEqual([]);
    await shiftWithClaims(org, 1); // while disabled
    const again = await suite.http.get(`/v1/webhooks/${hook.id}`).set(org.admin).expect(200);
    receiver.answer('/paused', () => ({ status: 204 }));
    await suite.http
      .patch(`/v1/webhooks/${hook.id}`)
      .set(org.admin)
      .set('if-match', again.headers.etag as string)
      .send({ enabled: true })
      .expect(200);
    await shiftWithClaims(org, 1);
    await eventually(async () => receiver.at('/paused').length === 2, 10_000, 'the next new message');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.at('/paused')).toHaveLength(2);
    expect(new Set(receiver.at('/paused').map((item) => item.headers['webhook-id'])).size).toBe(2);
  });

  it('ping and manual retry: 202 with the pending delivery, sent with the same webhook-id', async () => {
    const org = await setupOrg();
    const hook = await subscribe(org.admin, '/ping', ['shift.created']);
    const ping = await suite.http.post(`/v1/webhooks/${hook.id}/test`).set(org.admin).send({}).expect(202);
    expect(ping.body).toMatchObject({ type: 'ping', attempt: 1, status: 'pending', responseStatus: null });
    await eventually(async () => receiver.at('/ping').length === 1, 10_000, 'the ping');
    const [sent] = receiver.at('/ping');
    const pinged = verified(hook.secret, sent as never);
    expect(pinged).toMatchObject({ type: 'ping', data: { webhookId: hook.id } });
    expect(() => webhookMessage('ping').parse(pinged)).not.toThrow();
    expect(sent?.headers['webhook-id']).toBe(ping.body.messageId);

    const retry = await suite.http
      .post(`/v1/webhooks/${hook.id}/deliveries/${ping.body.id}/retry`)
      .set(org.admin)
      .send({})
      .expect(202);
    expect(retry.body).toMatchObject({ messageId: ping.body.messageId, attempt: 2, status: 'pending' });
    await eventually(async () => receiver.at('/ping').length === 2, 10_000, 'the retry');
    expect(receiver.at('/ping')[1]?.headers['webhook-id']).toBe(ping.body.messageId);

    const other = await setupOrg();
    expectProblem(
      await suite.http.post(`/v1/webhooks/${hook.id}/test`).set(other.admin).send({}),
      404,
      'not-found',
    );
    expectProblem(
      await suite.http
        .post(`/v1/webhooks/${hook.id}/deliveries/${ping.body.id}/retry`)
        .set(other.admin)
        .send({}),
      404,
      'not-found',
    );
    await suite.http.get(`/v1/webhooks/${hook.id}/deliveries`).set(org.organiser).expect(403);
    expectProblem(
      await suite.http.get(`/v1/webhooks/${hook.id}/deliveries`).set(other.admin),
      404,
      'not-found',
    );
  });

  it('a stopping dispatcher gives its in-flight work back; another sends it with the same webhook-id', async () => {
    const org = await setupOrg();
    receiver.answer('/slow', (n) => (n === 1 ? 'hang' : { status: 204 }));
    await subscribe(org.admin, '/slow', ['signup.confirmed']);
    await dispatcher.stop(300); // the first attempt hangs, and is aborted
    const own = startDispatcher();
    await shiftWithClaims(org, 1);
    await eventually(async () => receiver.at('/slow').length === 1, 10_000, 'the first attempt');
    await own.stop(300);
    const [leased] = await queryRows<{ leased_by: string | null }>(
      suite.database.db,
      sql`select leased_by from webhook_queues where org_id = ${org.id}`,
    );
    expect(leased?.leased_by).toBeNull();
    dispatcher = startDispatcher();
    await eventually(async () => receiver.at('/slow').length === 2, 10_000, 'the message sent again');
    const [first, second] = receiver.at('/slow');
    expect(second?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
  });

  it('purges messages finished more than 30 days ago, with their attempts; pending ones stay', async () => {
    const org = await setupOrg();
    receiver.answer('/purge', () => ({ status: 204 }));
    const hook = await subscribe(org.admin, '/purge', ['signup.confirmed']);
    await shiftWithClaims(org, 2);
    await eventually(async () => receiver.at('/purge').length === 2, 10_000, 'both delivered');
    const [old] = await queryRows<{ id: string }>(
      suite.database.db,
      sql`update webhook_messages set created_at = now() - interval '31 days', finished_at = now() - interval '31 days'
          where id = (select id from webhook_messages where webhook_id = ${hook.id} order by id limit 1) returning id`,
    );
    await purgeOldDeliveries(suite.database.db);
    const left = await deliveries(org.admin, hook.id);
    expect(left).toHaveLength(1);
    expect(left[0]?.messageId).not.toBe(old?.id);
  });
});

describe('the retry schedule', () => {
  it('5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each ±20 %; Retry-After up to 1 h instead; ten attempts', () => {
    const hours = [5 / 3600, 5 / 60, 0.5, 2, 5, 10, 14, 20, 24];
    hours.forEach((base, index) => {
      expect(retryDelayMs(index + 1, null, 0, () => 0)).toBe(Math.round(base * 3_600_000 * 0.8));
      expect(retryDelayMs(index + 1, null, 0, () => 0.999_999)).toBeCloseTo(base * 3_600_000 * 1.2, -2);
    });
    expect(maxAttempts).toBe(10);
    expect(retryDelayMs(1, 120, 0)).toBe(120_000);
    expect(retryDelayMs(1, 7200, 0, () => 0.5)).toBe(5_000); // over an hour: the schedule
    // The schedule without jitter, attempt by attempt, is about three days: at least 24 h.
    let total = 0;
    for (let attempt = 1; attempt < maxAttempts; attempt++)
      total += retryDelayMs(attempt, null, total, () => 0.5) ?? 0;
    expect(total / 3_600_000).toBeGreaterThan(72);
    expect(retryDelayMs(maxAttempts, null, total)).toBeNull();
  });

  it('reads Retry-After as seconds or as an HTTP date, and nothing else', () => {
    expect(retryAfterSecondsOf('120')).toBe(120);
    expect(retryAfterSecondsOf(' 0 ')).toBe(0);
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    expect(retryAfterSecondsOf(inAMinute)).toBeGreaterThanOrEqual(58);
    expect(retryAfterSecondsOf(inAMinute)).toBeLessThanOrEqual(61);
    for (const bad of ['', 'soon', '-5', '1.5', undefined]) expect(retryAfterSecondsOf(bad)).toBeNull();
  });

  it('short Retry-Afters that use the ten attempts up early leave one more at 24 h', () => {
    const tenSeconds = 10_000;
    expect(retryDelayMs(maxAttempts, 1, tenSeconds)).toBe(24 * 3_600_000 - tenSeconds);
    expect(retryDelayMs(maxAttempts, 1, 24 * 3_600_000)).toBeNull();
  });
});
