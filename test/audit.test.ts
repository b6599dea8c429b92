/**
 * API.md §10, the audit log: every write of an organisation as an event with its actor (the key's
 * name, "volunteer", or the system), newest first, filtered and keyset-paginated, admins only, no
 * personal values, kept 400 days. (That every write operation leaves an event is checked
 * operation by operation in openapi-conformance.test.ts.)
 */
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { describe, expect, it } from 'vitest';
import { auditRetentionDays, purgeOldAuditEvents } from '../src/domains/audit/service.ts';
import { expectProblem, fixtures, useTestApp } from './support/fixtures.ts';

const suite = useTestApp();
const { setupOrg, createEvent, createShift, createVolunteer, volunteerToken, rows, pageThrough } =
  fixtures(suite);

interface AuditBody {
  id: string;
  type: string;
  resourceType: string;
  resourceId: string;
  actor: { kind: string; id: string | null; name: string };
  at: string;
  data: { changed?: string[] };
}

const inAWeek = (hours: number) =>
  new Date(Date.now() + 7 * 24 * 3_600_000 + hours * 3_600_000).toISOString();

describe('the audit log', () => {
  it('shows each write with its actor and changed field names, newest first, and never a personal value', async () => {
    const org = await setupOrg();
    const key = await suite.http
      .post('/v1/api-keys')
      .set(org.admin)
      .send({ name: 'Front desk', role: 'organiser' })
      .expect(201);
    const desk = { authorization: `Bearer ${key.body.token}` };
    const volunteerId = await createVolunteer(desk, {
      name: 'Persephone Marker',
      email: 'persephone.marker@example.org',
      phone: '+49 30 5550199',
    });
    await suite.http
      .patch(`/v1/volunteers/${volunteerId}`)
      .set(desk)
      .send({ phone: '+49 30 5550200', notes: 'Allergic to bees' })
      .expect(200);
    const event = await createEvent(desk, { status: 'published', title: 'Harvest' });
    const shift = await createShift(desk, event.id, { startsAt: inAWeek(0), endsAt: inAWeek(3) });
    const volunteer = await volunteerToken(desk, volunteerId);
    const claim = await suite.http.post(`/v1/shifts/${shift.id}/signups`).set(volunteer).send({}).expect(201);
    await suite.http.post(`/v1/signups/${claim.body.id}/cancel`).set(volunteer).send({}).expect(200);

    const log = await suite.http.get('/v1/audit-events').query({ limit: 200 }).set(org.admin).expect(200);
    const events = log.body.data as AuditBody[];
    expect(events.map((item) => item.type)).toEqual([
      'signup.cancelled',
      'signup.confirmed',
      'volunteer_token.created',
      'shift.created',
      'event.published',
      'event.created',
      'volunteer.updated',
      'volunteer.created',
      'api_key.created',
      'api_key.created', // setupOrg's viewer key
      'api_key.created', // setupOrg's organiser key
      'organization.created',
    ]);
    const times = events.map((item) => item.at);
    expect([...times].sort().reverse()).toEqual(times);

    const byType = (type: string) => events.find((item) => item.type === type) as AuditBody;
    expect(byType('volunteer.updated')).toMatchObject({
      resourceType: 'volunteer',
      resourceId: volunteerId,
      actor: { kind: 'key', id: key.body.id, name: 'Front desk' },
      data: { changed: ['phone', 'notes'] },
    });
    expect(byType('signup.cancelled')).toMatchObject({
      resourceType: 'signup',
      resourceId: claim.body.id,
      actor: { kind: 'volunteer', id: volunteerId, name: 'volunteer' },
      data: {},
    });
    expect(byType('organization.created').actor).toEqual({ kind: 'system', id: null, name: 'system' });
    const text = JSON.stringify(log.body);
    for (const personal of ['Persephone', 'persephone.marker', '5550199', '5550200', 'Allergic'])
      expect(text).not.toContain(personal);
  });

  it('filters by resource and time, pages newest first by keyset, and is for admins only', async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    for (const title of ['One', 'Two', 'Three'])
      await suite.http.patch(`/v1/events/${event.id}`).set(org.organiser).send({ title }).expect(200);
    const mine = await suite.http
      .get('/v1/audit-events')
      .query({ resourceId: event.id })
      .set(org.admin)
      .expect(200);
    const all = mine.body.data as AuditBody[];
    expect(all.map((item) => item.type)).toEqual([
      'event.updated',
      'event.updated',
      'event.updated',
      'event.created',
    ]);
    expect(all.every((item) => item.resourceId === event.id)).toBe(true);

    // Two at a time: every event once, in the same order.
    const { seen } = await pageThrough(org.admin, '/v1/audit-events', { resourceId: event.id });
    expect(seen).toEqual(all.map((item) => item.id));

    // [from, to): from the second update's instant, before the newest one's.
    const [newest, , second] = all as [AuditBody, AuditBody, AuditBody];
    const ranged = await suite.http
      .get('/v1/audit-events')
      .query({ resourceId: event.id, from: second.at, to: newest.at })
      .set(org.admin)
      .expect(200);
    expect(ranged.body.data.map((item: AuditBody) => item.id)).toEqual([all[1]?.id, second.id]);

    // Another organisation's admin sees none of it.
    const other = await setupOrg();
    const foreign = await suite.http.get('/v1/audit-events').query({ resourceId: event.id }).set(other.admin);
    expect(foreign.body.data).toEqual([]);

    expect((await suite.http.get('/v1/audit-events').set(org.organiser)).status).toBe(403);
    expect((await suite.http.get('/v1/audit-events').set(org.viewer)).status).toBe(403);
    const volunteer = await volunteerToken(org.organiser, await createVolunteer(org.organiser));
    expect((await suite.http.get('/v1/audit-events').set(volunteer)).status).toBe(403);
    expectProblem(
      await suite.http.get('/v1/audit-events').query({ from: newest.at, to: newest.at }).set(org.admin),
      400,
      'validation-failed',
      'querystring.to',
    );
    expectProblem(
      await suite.http.get('/v1/audit-events').query({ cursor: 'garbage' }).set(org.admin),
      400,
      'invalid-cursor',
    );
  });

  it(`keeps events for ${auditRetentionDays} days, then purges them`, async () => {
    const org = await setupOrg();
    const event = await createEvent(org.organiser);
    const insertAged = async (days: number) => {
      const id = uuidv7();
      await suite.database.db.execute(sql`
        insert into outbox (org_id, id, type, resource_type, resource_id, actor, payload, created_at)
        values (${org.id}, ${id}, 'event.updated', 'event', ${event.id}, '{"kind":"system"}', '{}',
          now() - make_interval(days => ${days}))`);
      return id;
    };
    const expired = await insertAged(auditRetentionDays + 1);
    const kept = await insertAged(auditRetentionDays - 1);
    expect(await purgeOldAuditEvents(suite.database.db, 1)).toBeGreaterThanOrEqual(1);
    const left = await rows<{ id: string }>(
      sql`select id from outbox where org_id = ${org.id} and resource_id = ${event.id}`,
    );
    expect(left.map((row) => row.id)).toContain(kept);
    expect(left.map((row) => row.id)).not.toContain(expired);
    expect(left).toHaveLength(2); // the kept one and event.created
  });
});
