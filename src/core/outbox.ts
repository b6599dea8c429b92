/**
 * Writes domain events to the outbox in the caller's transaction (ARCHITECTURE.md §3): the event
 * exists exactly when the change it describes was committed. Webhook delivery and the audit log
 * read from this table; every write records one (openapi-conformance.test.ts checks each write
 * operation), and rows are kept for the audit log's 400 days (domains/audit/service.ts).
 */
import { uuidv7 } from 'uuidv7';
import type { DbOrTx } from '../db/client.ts';
import { outbox } from '../db/schema.ts';
import type { Principal } from './auth.ts';

export type Actor = { kind: 'key' | 'volunteer' | 'admin' | 'anonymous' | 'system'; id?: string };

export function actorOf(principal: Principal | null): Actor {
  if (!principal) return { kind: 'anonymous' };
  return principal.kind === 'key'
    ? { kind: 'key', id: principal.keyId }
    : { kind: 'volunteer', id: principal.volunteerId };
}

/**
 * The resource an event is about is named by its type's prefix (`shift.created` → `shift`), but
 * for the events about a volunteer's qualifications and tokens, which are the volunteer's.
 */
const resourceOfPrefix: Record<string, string> = {
  qualification: 'volunteer',
  volunteer_token: 'volunteer',
  session: 'volunteer',
  calendar_token: 'volunteer',
};

function resourceTypeOf(type: string): string {
  const prefix = type.slice(0, type.indexOf('.'));
  return resourceOfPrefix[prefix] ?? prefix;
}

/** Writes the event `type` about `resourceId` (of the type's resource), done by `actor`. */
export async function recordEvent(
  tx: DbOrTx,
  orgId: string,
  actor: Actor,
  type: string,
  resourceId: string,
  payload: Record<string, unknown>,
): Promise<void> {
  await tx
    .insert(outbox)
    .values({ id: uuidv7(), orgId, type, resourceType: resourceTypeOf(type), resourceId, actor, payload });
}
