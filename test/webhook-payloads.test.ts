/**
 * The webhook messages the OpenAPI document promises (its top-level `webhooks`, made from
 * src/domains/webhooks/payloads.ts) are what the changes really write: every one of API.md §10's
 * event types is produced through the API here, and each outbox payload parses with its documented,
 * strict schema (no undocumented field, no personal data).
 */
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { webhookEventTypes } from '../src/db/schema.ts';
import { webhookData } from '../src/domains/webhooks/payloads.ts';
import { fixtures, useTestApp } from './support/fixtures.ts';

const suite = useTestApp();
const { setupOrg, writeEveryEventType } = fixtures(suite);

describe('webhook payloads', () => {
  it('every event type is written by its change, with exactly the documented data', async () => {
    const org = await setupOrg();
    await writeEveryEventType(org, { name: 'Quentin Private', email: 'quentin.private@example.org' });

    const written = await queryRows<{ type: string; payload: Record<string, unknown> }>(
      suite.database.db,
      sql`select type, payload from outbox where org_id = ${org.id} order by created_at, id`,
    );
    for (const type of webhookEventTypes) {
      const payloads = written.filter((row) => row.type === type).map((row) => row.payload);
      expect(payloads.length, `${type} was not written`).toBeGreaterThan(0);
      for (const payload of payloads) {
        const parsed = webhookData[type].data.safeParse(payload);
        expect(parsed.success, `${type}: ${JSON.stringify(payload)} ${parsed.error?.message ?? ''}`).toBe(
          true,
        );
      }
    }
    const text = JSON.stringify(written);
    expect(text).not.toContain('Quentin');
    expect(text).not.toContain('quentin.private');
  });

  it('are all in the OpenAPI document, each with its schema', async () => {
    const document = (await suite.http.get('/openapi.json').expect(200)).body as {
      webhooks: Record<
        string,
        { post: { requestBody: { content: Record<string, { schema: { $ref: string } }> } } }
      >;
      components: { schemas: Record<string, unknown> };
    };
    expect(Object.keys(document.webhooks).sort()).toEqual([...webhookEventTypes, 'ping'].sort());
    for (const type of webhookEventTypes) {
      const ref = document.webhooks[type]?.post.requestBody.content['application/json']?.schema.$ref ?? '';
      expect(document.components.schemas[ref.replace('#/components/schemas/', '')], type).toBeDefined();
    }
  });
});
