/**
 * API.md §10, webhook subscriptions: create (the secret once), read, list, update and re-enable,
 * delete, rotate the secret (two sign for 24 h), admins only; and where a webhook may point, by
 * literal address and through a resolver the test controls.
 */
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import type { Resolver } from '../src/domains/webhooks/destinations.ts';
import { signingSecrets } from '../src/domains/webhooks/service.ts';
import { bearer, createOrg, startTestApp } from './support/app.ts';
import { expectProblem, fixtures, useTestApp } from './support/fixtures.ts';

/** A DNS the test writes: names to addresses. */
const dns: Record<string, string[]> = {
  'partner.example': ['93.184.216.34'],
  'internal.example': ['10.0.0.5'],
  'metadata.example': ['169.254.169.254'],
  'mixed.example': ['93.184.216.34', '127.0.0.1'],
  'six.example': ['2606:2800:220:1:248:1893:25c8:1946'],
  'six-local.example': ['fd12:3456::1'],
};
const resolveHost: Resolver = async (host) => dns[host] ?? [];

const suite = useTestApp({}, { resolveHost });
const { setupOrg } = fixtures(suite);

const secretPattern = /^whsec_[A-Za-z0-9+/]{43}=$/;

async function create(auth: Record<string, string>, body: Record<string, unknown>) {
  return suite.http.post('/v1/webhooks').set(auth).send(body);
}

describe('webhook subscriptions', () => {
  it('show the secret once, then never; list, update with If-Match, re-enable, delete', async () => {
    const org = await setupOrg();
    const created = await create(org.admin, {
      url: 'https://partner.example/hooks/together',
      events: ['signup.confirmed', 'shift.filled'],
      description: 'Partner site',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      url: 'https://partner.example/hooks/together',
      events: ['signup.confirmed', 'shift.filled'],
      description: 'Partner site',
      enabled: true,
      disabledReason: null,
    });
    expect(created.body.secret).toMatch(secretPattern);
    expect(created.headers.location).toBe(`/v1/webhooks/${created.body.id}`);
    const id = created.body.id as string;

    const read = await suite.http.get(`/v1/webhooks/${id}`).set(org.admin).expect(200);
    expect(read.body.secret).toBeUndefined();
    const list = await suite.http.get('/v1/webhooks').set(org.admin).expect(200);
    expect(list.body.data.map((item: { id: string }) => item.id)).toEqual([id]);
    expect(JSON.stringify(list.body)).not.toContain('whsec_');

    // Disabled by hand: no reason. Disabled by the service (say a 410), then re-enabled: cleared.
    const disabled = await suite.http
      .patch(`/v1/webhooks/${id}`)
      .set(org.admin)
      .set('if-match', read.headers.etag as string)
      .send({ enabled: false })
      .expect(200);
    expect(disabled.body).toMatchObject({ enabled: false, disabledReason: null });
    expectProblem(
      await suite.http
        .patch(`/v1/webhooks/${id}`)
        .set(org.admin)
        .set('if-match', read.headers.etag as string)
        .send({ description: 'stale' }),
      412,
      'precondition-failed',
    );
    await suite.database.db.execute(sql`update webhooks set disabled_reason = 'gone' where id = ${id}`);
    const enabled = await suite.http
      .patch(`/v1/webhooks/${id}`)
      .set(org.admin)
      .send({ enabled: true })
      .expect(200);
    expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null });
    // The database refuses a reason on an enabled webhook, whatever the code does.
    await expect(
      suite.database.db.execute(sql`update webhooks set disabled_reason = 'failing' where id = ${id}`),
    ).rejects.toThrow();

    const other = await setupOrg();
    expectProblem(await suite.http.get(`/v1/webhooks/${id}`).set(other.admin), 404, 'not-found');
    await suite.http.delete(`/v1/webhooks/${id}`).set(org.admin).expect(204);
    expectProblem(await suite.http.get(`/v1/webhooks/${id}`).set(org.admin), 404, 'not-found');
    expect(await signingSecrets(suite.database.db, org.id, id)).toEqual([]);
  });

  it('refuse unknown, repeated or no event types, and are for admins only', async () => {
    const org = await setupOrg();
    const url = 'https://partner.example/hook';
    expectProblem(await create(org.admin, { url, events: ['signup.exploded'] }), 400, 'validation-failed');
    expectProblem(
      await create(org.admin, { url, events: ['shift.created', 'shift.created'] }),
      400,
      'validation-failed',
      'body.events',
    );
    expectProblem(await create(org.admin, { url, events: [] }), 400, 'validation-failed', 'body.events');
    expect((await create(org.organiser, { url, events: ['shift.created'] })).status).toBe(403);
    expect((await suite.http.get('/v1/webhooks').set(org.viewer)).status).toBe(403);
  });

  it('rotate the secret: the previous one signs for 24 h, and after a second rotation only the two newest do', async () => {
    const org = await setupOrg();
    const created = await create(org.admin, { url: 'https://partner.example/h', events: ['shift.created'] });
    const id = created.body.id as string;
    const first = created.body.secret as string;
    expect(await signingSecrets(suite.database.db, org.id, id)).toEqual([first]);

    const rotated = await suite.http
      .post(`/v1/webhooks/${id}/rotate-secret`)
      .set(org.admin)
      .send({})
      .expect(200);
    const second = rotated.body.secret as string;
    expect(second).toMatch(secretPattern);
    expect(second).not.toBe(first);
    expect(await signingSecrets(suite.database.db, org.id, id)).toEqual([second, first]);
    const [expiry] = await queryRows<{ seconds: number }>(
      suite.database.db,
      sql`select extract(epoch from expires_at - now())::int as seconds from webhook_secrets where secret = ${first}`,
    );
    expect(expiry?.seconds).toBeGreaterThan(24 * 3600 - 60);
    expect(expiry?.seconds).toBeLessThanOrEqual(24 * 3600);

    const third = (
      await suite.http.post(`/v1/webhooks/${id}/rotate-secret`).set(org.admin).send({}).expect(200)
    ).body.secret as string;
    expect(await signingSecrets(suite.database.db, org.id, id)).toEqual([third, second]);

    // Once the 24 hours are over, only the current one.
    await suite.database.db.execute(
      sql`update webhook_secrets set expires_at = now() - interval '1 second' where secret = ${second}`,
    );
    expect(await signingSecrets(suite.database.db, org.id, id)).toEqual([third]);
  });
});

describe('where a webhook may point', () => {
  const refusedUrls = [
    'https://127.0.0.1/hook', // loopback
    'https://localhost.localdomain.invalid/hook', // does not resolve
    'https://[::1]/hook',
    'https://10.1.2.3/hook', // RFC 1918
    'https://172.16.0.1/hook',
    'https://192.168.1.1/hook',
    'https://100.64.0.1/hook', // carrier-grade NAT
    'https://169.254.169.254/latest/meta-data/', // link-local: the cloud metadata service
    'https://[fe80::1]/hook',
    'https://[fd00:ec2::254]/hook', // unique-local (AWS's IPv6 metadata address)
    'https://[::ffff:127.0.0.1]/hook', // IPv4-mapped IPv6
    'https://[::ffff:7f00:1]/hook',
    'https://[::169.254.169.254]/hook', // IPv4-compatible IPv6 (::/96)
    'https://[::127.0.0.1]/hook',
    'https://168.63.129.16/metadata', // Azure's host and metadata endpoint
    'https://0.0.0.0/hook', // unspecified
    'https://[::]/hook',
    'https://224.0.0.1/hook', // multicast
    'https://0x7f.1/hook', // 127.0.0.1, as the URL parser reads it
    'https://2130706433/hook', // 127.0.0.1 as one number
    'https://internal.example/hook', // resolves to a private address
    'https://metadata.example/hook',
    'https://mixed.example/hook', // one of its addresses is the loopback
    'https://six-local.example/hook',
    'http://partner.example/hook', // plain http
  ];

  it('refuses loopback, private, CGNAT, link-local, unique-local, mapped, unspecified and multicast hosts, and http', async () => {
    const org = await setupOrg();
    for (const url of refusedUrls) {
      const response = await create(org.admin, { url, events: ['shift.created'] });
      expect(response.status, `${url}: ${JSON.stringify(response.body)}`).toBe(400);
      expectProblem(response, 400, 'validation-failed', 'body.url');
    }
    expectProblem(
      await create(org.admin, { url: 'ftp://partner.example/hook', events: ['shift.created'] }),
      400,
      'validation-failed',
      'body.url',
    );
    // A change of URL is checked as a new one is.
    const created = await create(org.admin, { url: 'https://six.example/hook', events: ['shift.created'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expectProblem(
      await suite.http
        .patch(`/v1/webhooks/${created.body.id}`)
        .set(org.admin)
        .send({ url: 'https://10.0.0.1/' }),
      400,
      'validation-failed',
      'body.url',
    );
    for (const url of ['https://93.184.216.34/hook', 'https://[2606:4700:4700::1111]/hook'])
      expect((await create(org.admin, { url, events: ['shift.created'] })).status).toBe(201);
  });

  it('allows private addresses and plain http with WEBHOOK_ALLOW_PRIVATE=true', async () => {
    const open = await startTestApp(suite.database, { WEBHOOK_ALLOW_PRIVATE: true });
    try {
      const org = await createOrg(open.http);
      const response = await open.http
        .post('/v1/webhooks')
        .set(bearer(org.adminToken))
        .send({ url: 'http://127.0.0.1:9999/hook', events: ['shift.created'] });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
    } finally {
      await open.close();
    }
  });
});
