/**
 * One webhook delivery attempt (src/domains/webhooks/sender.ts) against a local receiver on the
 * loopback: the Standard Webhooks headers and signature, verified with the `standardwebhooks`
 * package and both secrets of a rotation; failures on 5xx, on a redirect (not followed), on a
 * slow answer; Retry-After; and the connect-time check, which refuses a host whose DNS answer
 * changed to the loopback after registration (rebinding) and a literal private address.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertWebhookDestination, type Resolver } from '../src/domains/webhooks/destinations.ts';
import { bodyOf, type Message, sendAttempt } from '../src/domains/webhooks/sender.ts';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const received: Received[] = [];
let port = 0;
const receiver = http.createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => {
    body += chunk;
  });
  request.on('end', () => {
    received.push({ path: request.url ?? '', headers: request.headers, body });
    if (request.url === '/ok') return response.writeHead(204).end();
    if (request.url === '/fail') return response.writeHead(500).end('broken');
    if (request.url === '/busy') return response.writeHead(503, { 'retry-after': '120' }).end();
    if (request.url === '/moved') return response.writeHead(302, { location: '/ok' }).end();
    if (request.url === '/slow') return; // never answers
    response.writeHead(404).end();
  });
});

beforeAll(async () => {
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  port = (receiver.address() as AddressInfo).port;
});
afterAll(() => {
  receiver.closeAllConnections();
  receiver.close();
});

const secret = (fill: number) => `whsec_${Buffer.alloc(32, fill).toString('base64')}`;
const message: Message = {
  id: '01a23d06-b98b-786f-88a1-307e1408013d',
  type: 'signup.confirmed',
  timestamp: new Date('2027-03-01T09:00:00.000Z'),
  data: { signupId: '01a23d06-b98b-786f-88a1-307e14080140', shiftId: '01a23d06-b98b-786f-88a1-307e14080141' },
};
const local = { allowPrivate: true, resolve: async () => ['127.0.0.1'] };
const hits = (path: string) => received.filter((item) => item.path === path).length;

describe('a delivery attempt', () => {
  it('POSTs { type, timestamp, data } with Standard Webhooks headers, signed by every current secret', async () => {
    const current = secret(1);
    const previous = secret(2);
    const result = await sendAttempt(`http://127.0.0.1:${port}/ok`, message, [current, previous], local);
    expect(result).toMatchObject({ ok: true, responseStatus: 204, error: null });
    const delivery = received.find((item) => item.path === '/ok') as Received;
    expect(JSON.parse(delivery.body)).toEqual({
      type: 'signup.confirmed',
      timestamp: '2027-03-01T09:00:00.000Z',
      data: message.data,
    });
    expect(delivery.body).toBe(bodyOf(message));
    expect(delivery.headers['webhook-id']).toBe(message.id);
    expect(delivery.headers['content-type']).toBe('application/json');
    expect(Math.abs(Number(delivery.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect((delivery.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
    // A partner verifies with the published library, with either secret (the rotation's 24 h).
    for (const key of [current, previous])
      expect(new Webhook(key).verify(delivery.body, delivery.headers as Record<string, string>)).toEqual(
        JSON.parse(delivery.body),
      );
    expect(() =>
      new Webhook(secret(3)).verify(delivery.body, delivery.headers as Record<string, string>),
    ).toThrow();
  });

  it('fails on a 5xx, keeps a Retry-After, and does not follow a redirect', async () => {
    const failing = await sendAttempt(`http://127.0.0.1:${port}/fail`, message, [secret(1)], local);
    expect(failing).toMatchObject({
      ok: false,
      responseStatus: 500,
      error: 'answered 500',
      retryAfterSeconds: null,
    });
    const busy = await sendAttempt(`http://127.0.0.1:${port}/busy`, message, [secret(1)], local);
    expect(busy).toMatchObject({ ok: false, responseStatus: 503, retryAfterSeconds: 120 });
    const okBefore = hits('/ok');
    const moved = await sendAttempt(`http://127.0.0.1:${port}/moved`, message, [secret(1)], local);
    expect(moved).toMatchObject({ ok: false, responseStatus: 302 });
    expect(moved.error).toContain('not followed');
    expect(hits('/ok')).toBe(okBefore);
  });

  it('fails when the whole answer does not come in time', async () => {
    const slow = await sendAttempt(`http://127.0.0.1:${port}/slow`, message, [secret(1)], {
      ...local,
      timeoutMs: 300,
    });
    expect(slow).toMatchObject({ ok: false, responseStatus: null, error: 'no whole answer within 0.3 s' });
    expect(slow.durationMs).toBeGreaterThanOrEqual(250);
  });

  it('refuses, at connect time, a host that resolved to a public address at registration and to the loopback now', async () => {
    let lookups = 0;
    // Public at registration, the loopback at delivery: DNS rebinding.
    const rebinding: Resolver = async () => (lookups++ === 0 ? ['93.184.216.34'] : ['127.0.0.1']);
    const url = `https://rebind.example:${port}/ok`;
    await expect(
      assertWebhookDestination(url, { allowPrivate: false, resolve: rebinding }),
    ).resolves.toBeUndefined();
    const before = received.length;
    const attempt = await sendAttempt(`http://rebind.example:${port}/ok`, message, [secret(1)], {
      allowPrivate: false,
      resolve: rebinding,
    });
    expect(attempt).toMatchObject({ ok: false, responseStatus: null });
    expect(attempt.error).toContain('127.0.0.1, a loopback address');
    expect(lookups).toBe(2);
    expect(received.length).toBe(before); // nothing reached the receiver
  });

  it('refuses a literal private address without connecting', async () => {
    const before = received.length;
    for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]']) {
      const attempt = await sendAttempt(`http://${host}:${port}/ok`, message, [secret(1)], {
        allowPrivate: false,
        resolve: async () => {
          throw new Error('a literal address is not looked up');
        },
      });
      expect(attempt.ok).toBe(false);
      expect(attempt.error).toMatch(/^refused: /);
    }
    expect(received.length).toBe(before);
  });
});
