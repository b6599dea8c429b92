/**
 * Writes domain events to the outbox in the caller's transaction (ARCHITECTURE.md §3): the event
 * exists exactly when the change it describes was committed. Webhook delivery and the audit log
 * read from this table.
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

export interface DomainEvent {
  orgId: string;
  type: string;
  resourceType: string;
  resourceId: string;
  actor: Actor;
  payload: Record<string, unknown>;
}

export async function recordEvent(tx: DbOrTx, event: DomainEvent): Promise<void> {
  await tx.insert(outbox).values({ id: uuidv7(), ...event });
}
