/**
 * Shared pieces of the concurrency and fault tests (PostgreSQL only): data set-up straight in SQL
 * (thousands of volunteers in a moment), a bounded HTTP rush over many sockets, and the checks of
 * the invariants of API.md §7.
 */
import http from 'node:http';
import pg from 'pg';
import { uuidv7 } from 'uuidv7';
import { generateToken, hashToken } from '../../src/core/auth.ts';

export interface RushOrg {
  orgId: string;
  eventId: string;
  organiserToken: string;
  volunteers: { id: string; token: string }[];
}

/** An organisation with an organiser key, a published event and `count` volunteers with tokens. */
export async function seedOrganisation(url: string, count: number): Promise<RushOrg> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const orgId = uuidv7();
    await client.query(
      `insert into organizations (id, name, slug, timezone, contact_email) values ($1, 'Rush', $2, 'Europe/Berlin', 'r@example.org')`,
      [orgId, `rush-${orgId}`],
    );
    const organiserToken = generateToken('key');
    await client.query(
      `insert into api_keys (org_id, id, name, role, token_hash) values ($1, $2, 'organiser', 'organiser', $3)`,
      [orgId, uuidv7(), hashToken(organiserToken)],
    );
    const eventId = uuidv7();
    await client.query(
      `insert into events (org_id, id, title, timezone, status) values ($1, $2, 'Ticket drop', 'Europe/Berlin', 'published')`,
      [orgId, eventId],
    );
    const volunteers = Array.from({ length: count }, () => ({ id: uuidv7(), token: generateToken('vol') }));
    await client.query(
      `insert into volunteers (org_id, id, name, email)
       select $1::uuid, v.id, 'Volunteer ' || v.n, 'v' || v.n || '-' || $1::text || '@example.org'
       from unnest($2::uuid[]) with ordinality as v(id, n)`,
      [orgId, volunteers.map((volunteer) => volunteer.id)],
    );
    await client.query(
      `insert into volunteer_tokens (org_id, id, volunteer_id, kind, token_hash)
       select $1, gen_random_uuid(), t.volunteer_id, 'app', t.token_hash
       from unnest($2::uuid[], $3::text[]) as t(volunteer_id, token_hash)`,
      [
        orgId,
        volunteers.map((volunteer) => volunteer.id),
        volunteers.map((volunteer) => hashToken(volunteer.token)),
      ],
    );
    return { orgId, eventId, organiserToken, volunteers };
  } finally {
    await client.end();
  }
}

/** A shift of the event starting tomorrow (so that its signup window is open). */
export async function createShift(
  url: string,
  org: RushOrg,
  options: { capacity: number; waitlist: boolean; startsInHours?: number; hours?: number },
): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const id = uuidv7();
    const startsIn = options.startsInHours ?? 24;
    await client.query(
      `insert into shifts (org_id, id, event_id, starts_at, ends_at, capacity, waitlist)
       values ($1, $2, $3, now() + make_interval(hours => $4::int), now() + make_interval(hours => $4::int + $5::int), $6, $7)`,
      [org.orgId, id, org.eventId, startsIn, options.hours ?? 3, options.capacity, options.waitlist],
    );
    await client.query(
      `update organizations set longest_shift = greatest(longest_shift, make_interval(hours => $2::int)) where id = $1`,
      [org.orgId, options.hours ?? 3],
    );
    return id;
  } finally {
    await client.end();
  }
}

export interface HttpResult {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

export interface HttpRequest {
  base: string;
  method: string;
  path: string;
  token: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Sends the requests with at most `concurrency` in flight, each on its own socket (one agent per
 * worker, no keep-alive sharing). A network error is reported as status 0. Bounded: every request
 * is sent once, with a 30 s timeout.
 */
export async function rush(
  requests: HttpRequest[],
  concurrency: number,
  onResult?: (result: HttpResult) => void,
): Promise<HttpResult[]> {
  const results: HttpResult[] = new Array(requests.length);
  let next = 0;
  const worker = async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (next < requests.length) {
        const index = next++;
        const result = await send(requests[index] as HttpRequest, agent);
        results[index] = result;
        onResult?.(result);
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  return results;
}

export function send(request: HttpRequest, agent?: http.Agent): Promise<HttpResult> {
  const url = new URL(request.path, request.base);
  const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
  return new Promise((resolve) => {
    const outgoing = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: request.method,
        agent,
        timeout: 30_000,
        headers: {
          authorization: `Bearer ${request.token}`,
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...request.headers,
        },
      },
      (incoming) => {
        let text = '';
        incoming.on('data', (chunk) => {
          text += chunk;
        });
        incoming.on('end', () => {
          let body: Record<string, unknown> = {};
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            body = { raw: text };
          }
          resolve({ status: incoming.statusCode ?? 0, body, headers: incoming.headers });
        });
        incoming.on('error', () => resolve({ status: 0, body: {}, headers: {} }));
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', () => resolve({ status: 0, body: {}, headers: {} }));
    outgoing.end(payload);
  });
}

export function countBy<T>(items: T[], key: (item: T) => string | number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) {
    const name = String(key(item));
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/**
 * Invariants 1–4 of API.md §7 over an organisation, as violations (an empty list when they hold):
 * 1. confirmed ≤ capacity, and the counters equal the rows; 2. one active signup per volunteer and
 * shift; 3. no overlapping confirmed signups of one volunteer; 4. no free place while a waitlisted
 * volunteer who could take it (no overlapping confirmed signup) waits.
 */
export async function invariantViolations(url: string, orgId: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const checks: [string, string][] = [
      [
        'capacity or counters',
        `select sh.id from shifts sh
         left join lateral (
           select count(*) filter (where s.status in ('confirmed', 'attended', 'no_show')) as taken,
                  count(*) filter (where s.status = 'waitlisted') as waiting
           from signups s where s.org_id = sh.org_id and s.shift_id = sh.id) c on true
         where sh.org_id = $1 and (c.taken > sh.capacity or c.taken <> sh.confirmed_count or c.waiting <> sh.waitlist_count)`,
      ],
      [
        'two active signups on one shift',
        `select shift_id, volunteer_id from signups where org_id = $1 and status in ('confirmed', 'waitlisted')
         group by shift_id, volunteer_id having count(*) > 1`,
      ],
      [
        'overlapping confirmed signups',
        `select a.id from signups a join signups b on b.org_id = a.org_id and b.volunteer_id = a.volunteer_id and b.id <> a.id
         where a.org_id = $1 and a.status = 'confirmed' and b.status = 'confirmed' and a.period && b.period`,
      ],
      [
        'a free place while an eligible volunteer waits',
        `select w.id from signups w join shifts sh on sh.org_id = w.org_id and sh.id = w.shift_id
         where w.org_id = $1 and w.status = 'waitlisted' and sh.cancelled_at is null and sh.confirmed_count < sh.capacity
           and not exists (select 1 from signups o where o.org_id = w.org_id and o.volunteer_id = w.volunteer_id
                           and o.status = 'confirmed' and o.period && w.period)`,
      ],
    ];
    const violations: string[] = [];
    for (const [name, query] of checks) {
      const result = await client.query(query, [orgId]);
      if (result.rowCount) violations.push(`${name}: ${JSON.stringify(result.rows.slice(0, 3))}`);
    }
    return violations;
  } finally {
    await client.end();
  }
}

export async function scalar<T>(url: string, query: string, params: unknown[] = []): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(query, params);
    return Object.values(result.rows[0] ?? {})[0] as T;
  } finally {
    await client.end();
  }
}

/**
 * Resolves once `condition` holds, polling; fails after `timeoutMs`. For "mid-rush": a fault is
 * injected once the first claims were acknowledged, not after a fixed pause, which a busy machine
 * can outlast before answering anything.
 */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
